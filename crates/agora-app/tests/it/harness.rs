//! A fresh, migrated store per test (a SQLite file, or a PostgreSQL database of its own), and the
//! small vocabulary the ledger tests share.

use agora_app::agora_store::{Store, StoreOptions};
use agora_app::{LedgerOptions, LedgerWriter};
use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Currency, Transfer, TransferId, TransferKind,
};

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
    pub backend: Backend,
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
                let name = format!("agora_app_{}", AccountId::new().as_uuid().simple());
                execute(&admin, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').unwrap().0;
                (format!("{base}/{name}"), Some((admin, name)))
            }
        };
        let store = open_store(&database_url).await;
        Self {
            store,
            backend,
            database_url,
            _dir: dir,
            database,
        }
    }

    /// The URL the store was opened with, for another process to open it too.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Runs a statement on a connection of its own, outside the store, as someone with access
    /// to the database would.
    pub async fn execute(&self, sql: &str) {
        execute(&self.database_url, sql).await;
    }

    pub async fn writer(&self, options: LedgerOptions) -> LedgerWriter {
        LedgerWriter::start(self.store.clone(), options)
            .await
            .unwrap()
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

pub async fn open_store(database_url: &str) -> Store {
    Store::open(&StoreOptions {
        database_url: database_url.to_owned(),
        pool_connections_max: 8,
        acquire_timeout_ms: 10_000,
    })
    .await
    .unwrap()
}

async fn execute(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut connection).await.unwrap();
}

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// A new EUR account with code 1.
pub fn account(limit: BalanceLimit) -> Account {
    Account::new(AccountId::new(), eur(), 1, limit, Timestamp::now())
}

/// A single EUR transfer with a new id and code 1.
pub fn single(debit: AccountId, credit: AccountId, amount: i64) -> Transfer {
    Transfer {
        id: TransferId::new(),
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        currency: eur(),
        code: 1,
        kind: TransferKind::Single,
        linked: false,
    }
}

/// Runs this test binary's test `child_test` again as a child process with `env_name` set to
/// `dir`, hands each line it prints to `read` (which says whether the line acknowledged
/// something), and kills it with SIGKILL once `kill_after` lines were acknowledged and `pause`
/// more went by, so that the kill lands inside the next steps. What the child printed before it
/// died is read too: it was acknowledged as well.
pub fn kill_child_after(
    child_test: &str,
    env_name: &str,
    dir: &str,
    kill_after: usize,
    pause: std::time::Duration,
    mut read: impl FnMut(String) -> bool,
) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(env_name, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0;
    while acknowledged < kill_after {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the child stopped after {acknowledged} acknowledgements"))
            .unwrap();
        if read(line) {
            acknowledged += 1;
        }
    }
    std::thread::sleep(pause);
    child.kill().unwrap();
    for line in lines {
        read(line.unwrap());
    }
    child.wait().unwrap();
}

/// What a crash test's child sets up in its first round and finds again in the next ones: a
/// seller organisation `seller` selling bread at 3.50 EUR (unlimited stock), and `customers`
/// signed-up customers whose e-mail addresses start with `prefix`.
pub struct CrashMarket {
    pub seller: agora_domain::OrgId,
    pub bread: agora_domain::ListingId,
    pub customers: Vec<agora_domain::UserId>,
}

impl CrashMarket {
    pub async fn create(
        app: &agora_app::App,
        seller: &str,
        prefix: &str,
        customers: usize,
    ) -> Self {
        use agora_domain::listing::{
            Category, Description, Listing, ListingKind, ListingStatus, Title,
        };
        let system = agora_domain::Actor::system();
        let org = app
            .create_org(
                &agora_app::Call::new(&system, agora_domain::RequestId::new()),
                agora_app::CreateOrg {
                    name: agora_domain::OrgName::parse(seller).unwrap(),
                },
            )
            .await
            .unwrap();
        let now = Timestamp::now();
        let listing = Listing {
            id: agora_domain::ListingId::new(),
            seller: org.id,
            kind: ListingKind::Product { stock: None },
            title: Title::parse("Bread").unwrap(),
            description: Description::parse("").unwrap(),
            category: Category::parse("bakery").unwrap(),
            price: 350,
            currency: eur(),
            status: ListingStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let mut tx = app.store().write().await.unwrap();
        tx.insert_listing(&listing).await.unwrap();
        tx.commit().await.unwrap();
        let mut ids = Vec::with_capacity(customers);
        for client in 0..customers {
            let signed_up = app
                .sign_up(
                    &format!("{prefix}{client}@crash.example"),
                    "Crash customer",
                    "a crash test password",
                    agora_domain::RequestId::new(),
                )
                .await
                .unwrap();
            ids.push(signed_up.user.id);
        }
        Self {
            seller: org.id,
            bread: listing.id,
            customers: ids,
        }
    }
}

/// Keeps `value` as the document `kind`/`setup`, for the next rounds' children.
pub async fn remember<T: serde::Serialize>(app: &agora_app::App, kind: &str, value: &T) {
    let body = serde_json::to_string(value).unwrap();
    let mut tx = app.store().write().await.unwrap();
    tx.put_document(
        &agora_app::agora_store::DocumentWrite {
            kind,
            id: "setup",
            owner: None,
            status: None,
            sort_key: None,
            body: &body,
        },
        Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// What [`remember`] kept under `kind`, if an earlier round kept it.
pub async fn recall<T: serde::de::DeserializeOwned>(app: &agora_app::App, kind: &str) -> Option<T> {
    let doc = app.store().document(kind, "setup").await.unwrap()?;
    Some(serde_json::from_str(&doc.body).unwrap())
}
