//! Agora's metadata database: SQLite (the embedded default) and PostgreSQL behind one interface.
//!
//! Only this crate knows SQL of the metadata database. Both backends run the same statements
//! through sqlx's `Any` driver (numbered `$1` parameters work on both); only the migrations differ,
//! one folder per dialect. Reads go straight to the pool; every change goes through a [`WriteTx`],
//! so that the change, its audit entry and its event commit together or not at all.

mod audit;
mod checkpoint;
mod coalition;
mod dataset;
mod identity;
mod ledger;
mod listing;
mod market;
mod miniapp;
mod outbox;
mod protocol;
mod scan;

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use agora_domain::{Error, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use audit::AuditFilter;
pub use coalition::{
    BallotRecord, CoalitionMemberRecord, CoalitionRecord, DelegationRecord, DocRecord,
    FulfilmentRecord, ProposalRecord,
};
pub use identity::{SessionRecord, TokenAuthentication, TokenRecord, UserRecord};
pub use ledger::{BatchReceipt, LedgerBatch, LedgerChainBreak};
pub use listing::{ListingChanges, ListingFilter};
pub use market::{DocumentWrite, MarketDocument, StepRecord, StepStatus};
pub use miniapp::{
    GrantRecord, LaunchRecord, MiniAppFigures, MiniAppFile, MiniAppRecord, MiniAppVersionRecord,
    NotificationRecord, OauthCodeRecord, OauthTokenRecord, PaymentRequestRecord,
};
pub use outbox::IdempotencyClaim;
pub use protocol::{ProtocolRecord, ProtocolVersionRecord, QueryRecord};
pub use scan::AuditVisitor;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to reach the database and how much of it to use.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    pub pool_connections_max: u32,
    pub acquire_timeout_ms: u64,
}

/// A pool of connections to the metadata database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The connection the ledger's single writer writes through ([`Store::write_ledger`]): on
    /// SQLite a pool of one, on PostgreSQL the shared pool.
    ledger_pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; writers queue here instead of spinning on `SQLITE_BUSY`.
    write_lock: Option<Arc<Mutex<()>>>,
    /// The SQLite file, for scans that read it directly on a blocking thread.
    sqlite_path: Option<std::path::PathBuf>,
    /// On SQLite, the thread that checkpoints the WAL off the commit path; it stops when the
    /// last clone of the store is dropped.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub connections: u32,
    pub idle: u32,
    pub connections_max: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

static INSTALL_DRIVERS: Once = Once::new();

/// The most page cache, in KiB, each SQLite connection keeps (SQLite's default is 2,000). The
/// ledger's writes touch one page per account and batch, and a miss is a read from the WAL or the
/// file inside the write transaction; memory is taken only as pages are read.
const SQLITE_CACHE_KIB: u32 = 65_536;

impl Store {
    /// Connects, creating a SQLite file if it does not exist. Does not migrate.
    pub async fn connect(options: &StoreOptions) -> Result<Self> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if options.database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if options.database_url.starts_with("postgres:")
            || options.database_url.starts_with("postgresql:")
        {
            Backend::Postgres
        } else {
            return Err(Error::invalid(
                "database_url",
                "must start with sqlite: or postgres: (for example sqlite://agora-data/agora.db or postgres://user@host/agora)",
            ));
        };
        let url = match backend {
            Backend::Sqlite if !options.database_url.contains("mode=") => {
                let separator = if options.database_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{separator}mode=rwc", options.database_url)
            }
            _ => options.database_url.clone(),
        };
        let connect_options = AnyConnectOptions::from_str(&url).map_err(|e| {
            Error::invalid(
                "database_url",
                format!("cannot parse the database URL: {e}"),
            )
        })?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(options.pool_connections_max.max(1))
            .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
            // An embedded SQLite connection cannot drop like a network one, and the ping before
            // every acquisition would be one more round trip to its worker thread per query.
            .test_before_acquire(backend == Backend::Postgres);
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|connection, _meta| {
                Box::pin(async move {
                    // WAL lets readers go on while one writer commits; FULL makes every
                    // acknowledged commit survive a power cut.
                    // The page cache is sized for the ledger's writes, which touch a page per
                    // account and batch; the checkpointer thread, not a commit, copies the WAL
                    // back into the database.
                    let cache_size = format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}");
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 5000",
                        "PRAGMA wal_autocheckpoint = 0",
                        "PRAGMA temp_store = MEMORY",
                        &cache_size,
                    ] {
                        sqlx::query(pragma).execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let unavailable = |e: sqlx::Error| {
            Error::Unavailable(format!(
                "cannot connect to the database: {e}; check the URL and that the server is running"
            ))
        };
        let ledger_pool_options = pool_options
            .clone()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        let pool = pool_options
            .connect_with(connect_options.clone())
            .await
            .map_err(unavailable)?;
        // SQLite drops a connection's page cache whenever another connection has written since
        // its last transaction: a writer that took any pooled connection would start cold. The
        // ledger's writer keeps one connection, so the pages it touches stay cached.
        let ledger_pool = match backend {
            Backend::Sqlite => ledger_pool_options
                .connect_with(connect_options)
                .await
                .map_err(unavailable)?,
            Backend::Postgres => pool.clone(),
        };
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let sqlite_path = (backend == Backend::Sqlite).then(|| sqlite_file(&options.database_url));
        let checkpointer = sqlite_path
            .as_deref()
            .map(checkpoint::Checkpointer::start)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            pool,
            ledger_pool,
            backend,
            write_lock,
            sqlite_path,
            _checkpointer: checkpointer,
        })
    }

    /// Connects and brings the schema up to date.
    pub async fn open(options: &StoreOptions) -> Result<Self> {
        let store = Self::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations this build knows and the database has not seen.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| Error::Internal(format!("database migration failed: {e}")))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            connections: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            connections_max: self.pool.options().get_max_connections(),
        }
    }

    /// Begins a write transaction. On SQLite it takes the write lock first, then `BEGIN IMMEDIATE`,
    /// so that a transaction never fails half-way because another writer got in between.
    pub async fn write(&self) -> Result<WriteTx> {
        self.write_through(&self.pool).await
    }

    /// Begins a write transaction on the connection kept for the ledger's single writer, which
    /// keeps its pages cached between batches; otherwise as [`Store::write`].
    pub async fn write_ledger(&self) -> Result<WriteTx> {
        self.write_through(&self.ledger_pool).await
    }

    async fn write_through(&self, pool: &AnyPool) -> Result<WriteTx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => pool.begin().await,
        }
        .map_err(db_error)?;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub async fn close(&self) {
        self.ledger_pool.close().await;
        self.pool.close().await;
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A write transaction: everything done through it commits together, or not at all.
///
/// Dropping it without [`WriteTx::commit`] rolls it back.
pub struct WriteTx {
    // Field order matters: the transaction is dropped (rolled back) before the lock is released.
    tx: sqlx::Transaction<'static, Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(db_error)
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// The file a `sqlite:` URL names (`sqlite://PATH?options` or `sqlite:PATH`).
fn sqlite_file(url: &str) -> std::path::PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// Maps a database failure to a category the caller can act on.
pub(crate) fn db_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(database_error) if database_error.is_unique_violation() => {
            Error::Conflict(format!("already exists ({})", database_error.message()))
        }
        sqlx::Error::Database(database_error) if database_error.is_foreign_key_violation() => {
            Error::Conflict(format!(
                "refers to something that does not exist ({})",
                database_error.message()
            ))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::Unavailable(format!("the database is not answering: {error}"))
        }
        _ => Error::Internal(format!("database: {error}")),
    }
}

/// Reads a text column and parses it into a domain type.
pub(crate) fn column<T: FromStr<Err = Error>>(row: &AnyRow, name: &str) -> Result<T> {
    let text: String = row.try_get(name).map_err(db_error)?;
    text.parse()
        .map_err(|e| Error::Internal(format!("column {name} holds `{text}`: {e}")))
}

/// Reads a nullable text column and parses it into a domain type.
pub(crate) fn optional_column<T: FromStr<Err = Error>>(
    row: &AnyRow,
    name: &str,
) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(name).map_err(db_error)?;
    text.map(|text| {
        text.parse()
            .map_err(|e| Error::Internal(format!("column {name} holds `{text}`: {e}")))
    })
    .transpose()
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name).map_err(db_error)
}
