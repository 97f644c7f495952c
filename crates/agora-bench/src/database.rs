//! Fresh databases for each run (a temporary SQLite file, or a throwaway PostgreSQL database)
//! and the real `App` on them, built as `agora serve` and the server's tests build it.

use agora_app::agora_policy::Authorizer;
use agora_app::agora_store::{Store, StoreOptions};
use agora_app::{App, AppConfig, InstanceKey};
use anyhow::{Context, Result, bail};
use sqlx::Connection;

/// A database engine to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Where to run and with how many database connections.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendOptions {
    /// A PostgreSQL server on which to create (and afterwards drop) a throwaway database;
    /// `bash .ci/run --only-services -- …` sets it.
    #[arg(long, env = "AGORA_TEST_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// The databases to run on, repeatable; by default SQLite, and PostgreSQL too when a URL is set.
    #[arg(long = "backend", value_enum)]
    pub backends: Vec<Backend>,
    /// The store's connection pool size (`storage.pool_connections_max`, 16 by default in `agora.toml`).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pool_connections_max: u32,
}

impl BackendOptions {
    pub fn backends(&self) -> Result<Vec<Backend>> {
        let mut backends = if self.backends.is_empty() {
            let mut backends = vec![Backend::Sqlite];
            if self.postgres_url.is_some() {
                backends.push(Backend::Postgres);
            }
            backends
        } else {
            self.backends.clone()
        };
        backends.dedup();
        if backends.contains(&Backend::Postgres) && self.postgres_url.is_none() {
            bail!(
                "--backend postgres needs --postgres-url or AGORA_TEST_POSTGRES_URL; `bash .ci/run --only-services -- COMMAND` starts one and sets it"
            );
        }
        Ok(backends)
    }
}

/// A database that exists only for one run; [`Database::remove`] deletes it.
pub struct Database {
    url: String,
    place: Place,
}

enum Place {
    /// Deleted with the directory.
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Database {
    pub async fn create(backend: Backend, options: &BackendOptions) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let url = format!("sqlite://{}", dir.path().join("agora.db").display());
                Ok(Self {
                    url,
                    place: Place::Sqlite(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = options
                    .postgres_url
                    .clone()
                    .context("PostgreSQL needs --postgres-url or AGORA_TEST_POSTGRES_URL")?;
                let name = format!(
                    "agora_bench_{}",
                    agora_domain::OrgId::new().as_uuid().simple()
                );
                execute(&admin_url, &format!("CREATE DATABASE {name}")).await?;
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .context("the PostgreSQL URL names no database")?;
                Ok(Self {
                    url: format!("{base}/{name}"),
                    place: Place::Postgres { admin_url, name },
                })
            }
        }
    }

    /// Opens the store (migrating it) and builds the application on it.
    pub async fn open_app(&self, options: &BackendOptions) -> Result<App> {
        let store = Store::open(&StoreOptions {
            database_url: self.url.clone(),
            pool_connections_max: options.pool_connections_max,
            acquire_timeout_ms: 10_000,
        })
        .await
        .context("opening the store")?;
        let authorizer = Authorizer::builtin().context("loading the built-in policies")?;
        Ok(App::new(
            store,
            authorizer,
            AppConfig::default(),
            InstanceKey::generate(),
        ))
    }

    pub async fn remove(self) -> Result<()> {
        match self.place {
            Place::Sqlite(dir) => dir.close().context("removing the SQLite directory"),
            Place::Postgres { admin_url, name } => {
                execute(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await
            }
        }
    }
}

/// Runs one statement on the PostgreSQL server outside any transaction.
async fn execute(url: &str, sql: &str) -> Result<()> {
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(sql)
        .execute(&mut connection)
        .await
        .with_context(|| format!("running `{sql}`"))?;
    connection.close().await.context("closing")?;
    Ok(())
}
