//! The servers under load, each on its own loopback port: the real Agora router, and a bare axum
//! handler that returns fixed bytes, the baseline for what HTTP alone costs on this machine.

use std::net::SocketAddr;
use std::time::Duration;

use agora_app::App;
use agora_server::{ServerConfig, ServerState};
use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a server may take to finish after its clients have hung up.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server running on a task of this process until [`Served::stop`].
pub struct Served {
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Asks the server to stop and waits until it has (the load generator has closed its connections).
    pub async fn stop(self) -> Result<()> {
        // The server may have ended already; its task's result says how.
        let _ = self.shutdown.send(());
        let mut task = self.task;
        match tokio::time::timeout(STOP_TIMEOUT, &mut task).await {
            Ok(joined) => joined
                .context("the server task panicked")?
                .context("the server failed"),
            Err(_) => {
                task.abort();
                anyhow::bail!(
                    "the server did not stop within {} s",
                    STOP_TIMEOUT.as_secs()
                )
            }
        }
    }
}

async fn loopback_listener() -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr().context("reading the bound port")?;
    Ok((listener, addr))
}

/// The whole Agora router with its middleware, as `agora serve` runs it.
pub async fn real(app: &App) -> Result<Served> {
    let (listener, addr) = loopback_listener().await?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let state = ServerState::new(app.clone(), ServerConfig::default());
    let task = tokio::spawn(agora_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Served {
        addr,
        shutdown,
        task,
    })
}

/// One axum route, `route` (such as `/api/v1/orgs/{org_id}`), answering every GET with `body`.
pub async fn bare(route: &str, content_type: HeaderValue, body: Bytes) -> Result<Served> {
    let (listener, addr) = loopback_listener().await?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let handler = move || {
        let content_type = content_type.clone();
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, content_type)], body) }
    };
    let router = Router::new().route(route, get(handler));
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Served {
        addr,
        shutdown,
        task,
    })
}
