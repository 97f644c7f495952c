//! Agora's HTTP edge: the JSON API under `/api/v1` with its OpenAPI document, problem+json
//! errors, health and metrics endpoints, and the portal's server-rendered pages.
//!
//! This is the only crate that knows HTTP. Handlers turn requests into a `Call` and a typed input,
//! hand them to `agora_app::App`, and turn the result or error into a response; they decide nothing.

mod api;
mod error;
mod extract;
mod metrics;
mod miniapp_host;
mod portal;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_app::App;
use agora_domain::RequestId;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

pub use api::openapi;
pub use error::{ApiError, Problem};

/// Limits and switches of the HTTP edge.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub request_body_bytes_max: usize,
    pub request_timeout_ms: u64,
    /// Mark cookies `Secure`; on whenever the portal is served over TLS (a TLS proxy in front).
    pub cookie_secure: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            request_body_bytes_max: 1024 * 1024,
            request_timeout_ms: 30_000,
            cookie_secure: false,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ServerState {
    pub app: App,
    pub config: Arc<ServerConfig>,
    metrics: Arc<metrics::Metrics>,
}

impl ServerState {
    pub fn new(app: App, config: ServerConfig) -> Self {
        Self {
            app,
            config: Arc::new(config),
            metrics: Arc::default(),
        }
    }
}

/// The whole application as one router.
pub fn router(state: ServerState) -> Router {
    let (api_router, _) = api::routes().split_for_parts();
    let body_limit = state.config.request_body_bytes_max;
    Router::new()
        .merge(api_router)
        .merge(portal::routes())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            miniapp_host::dispatch,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn no_route(request: Request) -> Response {
    error::problem_response(
        StatusCode::NOT_FOUND,
        "no-route",
        format!(
            "there is no route {} {}; see /api/v1/openapi.json",
            request.method(),
            request.uri().path()
        ),
        error::ProblemExtra {
            request_id: request.extensions().get::<RequestId>().copied(),
            ..error::ProblemExtra::default()
        },
    )
}

/// Gives every request an id (in its extensions, its response's `x-request-id` and its log span),
/// and records its status and latency for `/metrics`.
async fn observe(State(state): State<ServerState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = RequestId::new();
    request.extensions_mut().insert(request_id);
    let method = request.method().clone();
    // MatchedPath holds its text behind an Arc: cloning it does not copy the route.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!("request", %request_id, %method, %route);
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let handled = tokio::time::timeout(
        timeout,
        tracing::Instrument::instrument(next.run(request), span),
    )
    .await;
    // A handler that runs out of time is dropped, which rolls back any transaction it held.
    let mut response = handled.unwrap_or_else(|_| {
        let extra = error::ProblemExtra {
            limit: Some("request_timeout_ms".to_owned()),
            request_id: Some(request_id),
            ..error::ProblemExtra::default()
        };
        let detail = format!(
            "the request took longer than request_timeout_ms ({} ms) and was abandoned",
            timeout.as_millis()
        );
        error::problem_response(StatusCode::REQUEST_TIMEOUT, "timeout", detail, extra)
    });
    let status = response.status();
    state
        .metrics
        .record(method.as_str(), route, status.as_u16(), started.elapsed());
    if status.is_server_error() {
        tracing::error!(%request_id, %method, %route, status = status.as_u16(), "request failed");
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response.into_response()
}
