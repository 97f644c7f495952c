//! A fresh, migrated store per test, and a way around it to the database, as someone with access
//! to the file or the server would have.

use agora_store::{Store, StoreOptions};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `AGORA_TEST_POSTGRES_URL` is set, which CI must do.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("AGORA_TEST_POSTGRES_URL").is_ok() {
        backends.push(Backend::Postgres);
    } else if std::env::var("CI").is_ok() {
        panic!(
            "CI must set AGORA_TEST_POSTGRES_URL so that every storage test runs on PostgreSQL too"
        );
    }
    backends
}

pub struct TestStore {
    pub store: Store,
    database_url: String,
    _dir: tempfile::TempDir,
    /// The PostgreSQL server's admin URL and this test's database, dropped at the end.
    database: Option<(String, String)>,
}

impl TestStore {
    pub async fn open(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("agora.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = std::env::var("AGORA_TEST_POSTGRES_URL").unwrap();
                let name = format!(
                    "agora_store_{}",
                    agora_domain::OrgId::new().as_uuid().simple()
                );
                execute(&admin, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').unwrap().0;
                (format!("{base}/{name}"), Some((admin, name)))
            }
        };
        let store = Store::open(&StoreOptions {
            database_url: database_url.clone(),
            pool_connections_max: 8,
            acquire_timeout_ms: 10_000,
        })
        .await
        .unwrap();
        Self {
            store,
            database_url,
            _dir: dir,
            database,
        }
    }

    /// Runs a statement on a connection of its own, outside the store.
    pub async fn execute(&self, sql: &str) {
        execute(&self.database_url, sql).await;
    }

    /// Runs a query on a connection of its own, outside the store.
    pub async fn fetch_all(&self, sql: &str) -> Vec<AnyRow> {
        sqlx::any::install_default_drivers();
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url)
            .await
            .unwrap();
        sqlx::query(sql).fetch_all(&mut connection).await.unwrap()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.database.take() {
            // Dropping needs a runtime of its own: this may run while the test's runtime winds down.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(execute(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join()
            .unwrap();
        }
    }
}

async fn execute(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut connection).await.unwrap();
}
