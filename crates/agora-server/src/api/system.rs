//! Health, readiness, metrics, the OpenAPI document, and who the caller is.

use agora_domain::actor::Acting;
use agora_domain::{Credential, UserId};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::ServerState;
use crate::error::ApiError;
use crate::extract::{Caller, Json};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()), responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", security(()), responses(
    (status = 200, description = "Ready", body = String),
    (status = 503, description = "The database is not answering", body = crate::Problem),
))]
pub async fn readyz(State(state): State<ServerState>) -> Result<&'static str, ApiError> {
    state.app.store().ping().await?;
    Ok("ready")
}

/// Prometheus metrics: requests, latencies, errors, database pool.
#[utoipa::path(get, path = "/metrics", tag = "system", security(()), responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    let text = state.metrics.render(state.app.store().pool_stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", security(()), responses((status = 200, description = "The OpenAPI document")))]
pub async fn openapi_json() -> impl IntoResponse {
    (StatusCode::OK, axum::Json(super::openapi()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<Object>)]
    pub acting: Option<Acting>,
    #[schema(value_type = Object)]
    pub credential: Credential,
}

/// Who the token belongs to and which organisation and role it acts with.
#[utoipa::path(get, path = "/api/v1/me", tag = "organisations", responses(
    (status = 200, body = Me),
    (status = 401, body = crate::Problem),
))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        user_id: caller.actor.user_id,
        acting: caller.actor.acting,
        credential: caller.actor.credential,
    })
}
