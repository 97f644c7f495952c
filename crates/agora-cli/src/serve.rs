//! `agora serve`: wires the configuration, the store, the policies and the key into a server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_app::agora_policy::Authorizer;
use agora_app::agora_store::{Store, StoreOptions};
use agora_app::{App, InstanceKey};
use agora_server::ServerState;
use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use crate::Failure;
use crate::config::{Config, redact_url};

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Folder for the embedded database and the instance key [default: ./agora-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Run on PostgreSQL instead of the embedded SQLite (postgres://user:password@host/database).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Extra Cedar policies of the operator, validated against the schema at start-up.
    #[arg(long, value_name = "FILE")]
    pub policies: Option<PathBuf>,
    /// Where people reach the portal, for printed links [default: http://<listen>].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

impl ServeArgs {
    /// The flags given, as a partial configuration that overrides every other source.
    pub fn overrides(&self) -> serde_json::Value {
        let mut server = serde_json::Map::new();
        let mut storage = serde_json::Map::new();
        let mut policy = serde_json::Map::new();
        if let Some(listen) = &self.listen {
            server.insert("listen".into(), listen.clone().into());
        }
        if let Some(url) = &self.public_url {
            server.insert("public_url".into(), url.clone().into());
        }
        if let Some(dir) = &self.data_dir {
            storage.insert("data_dir".into(), dir.display().to_string().into());
        }
        if let Some(url) = &self.database_url {
            storage.insert("database_url".into(), url.clone().into());
        }
        if let Some(file) = &self.policies {
            policy.insert("policies_file".into(), file.display().to_string().into());
        }
        serde_json::json!({ "server": server, "storage": storage, "policy": policy })
    }
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format.as_str() {
        "json" => builder.json().try_init(),
        _ => builder.try_init(),
    };
}

/// Opens everything the application needs, creating the data folder and key on first use.
pub async fn open_app(config: &Config) -> anyhow::Result<App> {
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.storage.data_dir.display()
        )
    })?;
    let authorizer = match config.policy.policies_file.as_str() {
        "" => Authorizer::builtin()?,
        file => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the policies file {file}"))?;
            Authorizer::with_operator_policies(file, &text)?
        }
    };
    let store = open_store(config, Migrate::Yes).await?;
    let key_path = config.storage.data_dir.join("instance.key");
    let key = match InstanceKey::load(&key_path)? {
        Some(key) => key,
        // A log that has signed checkpoints must keep its key: a new one would sign a different history.
        None if !store.checkpoints(None, 1).await?.is_empty() => anyhow::bail!(
            "the instance key {} is missing, but the audit log has checkpoints signed with it; restore it from a backup",
            key_path.display()
        ),
        None => InstanceKey::create(&key_path)?,
    };
    Ok(App::new(store, authorizer, config.app_config(), key))
}

/// Whether opening the store may change its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    Yes,
    /// For inspecting a database as it is (verifying its audit log).
    No,
}

pub async fn open_store(config: &Config, migrate: Migrate) -> anyhow::Result<Store> {
    let options = StoreOptions {
        database_url: config.database_url(),
        pool_connections_max: config.storage.pool_connections_max,
        acquire_timeout_ms: config.storage.acquire_timeout_ms,
    };
    let store = match migrate {
        Migrate::Yes => Store::open(&options).await,
        Migrate::No => Store::connect(&options).await,
    };
    store.with_context(|| {
        format!(
            "cannot open the database {}",
            redact_url(&options.database_url)
        )
    })
}

pub async fn run(config_file: Option<&Path>, args: ServeArgs) -> Result<(), Failure> {
    let mut config = Config::load(config_file, args.overrides())?;
    init_logging(&config);
    let listener = bind(&mut config).await?;
    let app = open_app(&config).await?;
    if let Some(bootstrap) = app
        .bootstrap(&config.identity.operator_name, &config.identity.owner_email)
        .await?
    {
        println!(
            "First start: created the operator organisation \"{}\" and its owner {}.",
            bootstrap.operator.name, bootstrap.owner.email
        );
        println!();
        println!(
            "  Sign in (one-time link, choose a password): {}",
            bootstrap.signin_link
        );
        println!(
            "  Owner API token (shown only now):           {}",
            bootstrap.token
        );
        println!();
    }
    serve(&config, listener, app, None).await
}

/// Binds the listening socket first, so that the links the instance prints carry the real port
/// (also when asked for port 0).
pub async fn bind(config: &mut Config) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is another server running there? choose another with --listen", config.server.listen))?;
    config.server.listen = listener.local_addr()?.to_string();
    Ok(listener)
}

/// Serves until SIGTERM or Ctrl-C, and signs checkpoints periodically.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    app: App,
    banner: Option<String>,
) -> Result<(), Failure> {
    let address = listener.local_addr()?;
    let shutdown = shutdown_signal();
    if let Some(banner) = banner {
        println!("{banner}");
    }
    println!(
        "Agora is listening on http://{address} (portal at /, API at /api/v1, OpenAPI at /api/v1/openapi.json). Stop with Ctrl-C."
    );
    tracing::info!(%address, database = %redact_url(&config.database_url()), "serving");
    // Steps a crash interrupted are finished before anyone is served.
    app.resume_market()
        .await
        .context("cannot finish the marketplace steps interrupted by the last stop")?;
    settle_interrupted_payments(&app).await;
    let checkpoints = spawn_checkpoints(app.clone(), config.audit.checkpoint_interval_seconds);
    let market = spawn_market_housekeeping(
        app.clone(),
        config.market.clone(),
        config.api.idempotency_key_ttl_hours,
    );
    let state = ServerState::new(app.clone(), config.server_config());
    agora_server::serve(listener, state, shutdown)
        .await
        .context("the server stopped with an error")?;
    if let Some(task) = checkpoints {
        task.abort();
    }
    market.abort();
    // The ledger writer commits and answers what is queued before the store closes.
    app.shutdown().await;
    // A last checkpoint so that the log's final state is signed.
    if let Err(error) = app.checkpoint_if_moved().await {
        tracing::warn!(%error, "could not sign a final checkpoint");
    }
    app.store().close().await;
    println!("Agora stopped.");
    Ok(())
}

/// Delivers the sandbox provider's notifications, and now and then releases held funds, expires
/// protocols and points, forgets expired idempotency keys and runs scheduled payouts.
fn spawn_market_housekeeping(
    app: App,
    market: crate::config::Market,
    idempotency_key_ttl_hours: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker =
            tokio::time::interval(Duration::from_millis(market.notification_interval_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let housekeeping = Duration::from_secs(market.housekeeping_interval_seconds);
        let mut last_housekeeping = tokio::time::Instant::now();
        let system = agora_domain::Actor::system();
        loop {
            ticker.tick().await;
            let now = agora_domain::Timestamp::now();
            if let Err(error) = app.deliver_payment_notifications(now).await {
                tracing::warn!(%error, "could not handle the payment provider's notifications");
            }
            if housekeeping.is_zero() || last_housekeeping.elapsed() < housekeeping {
                continue;
            }
            last_housekeeping = tokio::time::Instant::now();
            let call = agora_app::Call::new(&system, agora_domain::RequestId::new());
            match app.release_due(&call, now).await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "released seller funds whose hold ended"),
                Err(error) => tracing::warn!(%error, "could not release held seller funds"),
            }
            let ttl_us = i64::try_from(idempotency_key_ttl_hours.saturating_mul(3_600_000_000))
                .unwrap_or(i64::MAX);
            let before =
                agora_domain::Timestamp::from_micros(now.as_micros().saturating_sub(ttl_us));
            match forget_idempotency_keys(&app, before).await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "forgot expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not forget expired idempotency keys"),
            }
            settle_interrupted_payments(&app).await;
            match app.expire_protocols(&call, now).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(
                    expired,
                    "protocol versions expired at the end of their window"
                ),
                Err(error) => tracing::warn!(%error, "could not expire protocols"),
            }
            match app.close_due_proposals(&call, now).await {
                Ok(0) => {}
                Ok(done) => tracing::info!(done, "closed or executed due coalition proposals"),
                Err(error) => tracing::warn!(%error, "could not close due coalition proposals"),
            }
            match app.expire_due_points().await {
                Ok(expiry) if expiry.lots_expired > 0 => tracing::info!(
                    lots = expiry.lots_expired,
                    points = expiry.points_expired,
                    "expired points into breakage"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not expire points"),
            }
            for &currency in &market.payout_currencies {
                match app.run_payouts(&call, currency, now).await {
                    Ok(run) => {
                        if !run.payouts.is_empty() {
                            tracing::info!(payouts = run.payouts.len(), %currency, "paid sellers out");
                        }
                        for refused in run.refused {
                            tracing::warn!(%refused, "a scheduled payout was refused");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not run scheduled payouts"),
                }
            }
        }
    })
}

/// Settles mini-app payment requests whose confirmation a crash interrupted (see
/// [`App::resume_payment_requests`]); one whose lease is still young waits for the next round.
async fn settle_interrupted_payments(app: &App) {
    let now = agora_domain::Timestamp::now();
    let stale_before = agora_domain::Timestamp::from_micros(
        now.as_micros() - agora_app::PAYING_LEASE_SECONDS * 1_000_000,
    );
    match app.resume_payment_requests(stale_before).await {
        Ok(0) => {}
        Ok(settled) => tracing::info!(settled, "settled interrupted mini-app payments"),
        Err(error) => tracing::warn!(%error, "could not settle interrupted mini-app payments"),
    }
}

async fn forget_idempotency_keys(
    app: &App,
    before: agora_domain::Timestamp,
) -> agora_domain::Result<u64> {
    let mut tx = app.store().write().await?;
    let forgotten = tx.expire_idempotency_keys(before).await?;
    tx.commit().await?;
    Ok(forgotten)
}

fn spawn_checkpoints(app: App, interval_seconds: u64) -> Option<tokio::task::JoinHandle<()>> {
    if interval_seconds == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(interval_seconds));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(error) = app.checkpoint_if_moved().await {
                tracing::warn!(%error, "could not sign an audit checkpoint");
            }
        }
    }))
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are registered when this is called, not when the
/// future is first polled, so a signal that arrives right after start-up is not lost.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::terminate(), SignalKind::interrupt()].map(|kind| signal(kind).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let [terminate, interrupt] = signals;
            tokio::select! {
                () = wait_for(terminate) => {}
                () = wait_for(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

#[cfg(unix)]
async fn wait_for(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
