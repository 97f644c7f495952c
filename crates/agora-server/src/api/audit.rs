//! The audit log, its chain, checkpoints and the event feed.

use agora_app::Page;
use agora_domain::OrgId;
use agora_domain::audit::{AuditEntry, ChainLink};
use agora_domain::event::Event;
use agora_domain::model::Checkpoint;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::PageParams;
use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

/// Entries that concern one organisation: what it did, and what was done to its resources.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit", tag = "audit", params(("org_id" = String, Path), PageParams), responses(
    (status = 200, body = Page<AuditEntry>),
    (status = 403, body = Problem),
))]
pub async fn org_audit(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let org_id: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let entries = state
        .app
        .audit_entries(
            &caller.call(),
            Some(org_id),
            page.cursor.as_deref(),
            page.limit,
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(entries))
}

/// Every entry that concerns one organisation, as JSON lines (`application/x-ndjson`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit/export", tag = "audit", params(("org_id" = String, Path)), responses(
    (status = 200, description = "One JSON audit entry per line", content_type = "application/x-ndjson", body = String),
    (status = 403, body = Problem),
))]
pub async fn org_audit_export(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Response> {
    let org_id: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    // Authorize and read the first page before answering, so that a refusal is a proper problem.
    let first = state
        .app
        .audit_entries(
            &caller.call(),
            Some(org_id),
            None,
            Some(state.app.config().page_size_max),
        )
        .await
        .map_err(|e| caller.fail(e))?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let app = state.app.clone();
    let actor = caller.actor.clone();
    let request_id = caller.request_id;
    tokio::spawn(async move {
        let call = agora_app::Call::new(&actor, request_id);
        let mut page = first;
        loop {
            let mut chunk = String::new();
            for entry in &page.items {
                chunk.push_str(&serde_json::to_string(entry).expect("audit entries serialize"));
                chunk.push('\n');
            }
            if sender.send(Ok(chunk)).await.is_err() {
                return;
            }
            let Some(cursor) = page.next_cursor.take() else {
                return;
            };
            match app
                .audit_entries(
                    &call,
                    Some(org_id),
                    Some(&cursor),
                    Some(app.config().page_size_max),
                )
                .await
            {
                Ok(next) => page = next,
                Err(error) => {
                    let _ = sender
                        .send(Err(std::io::Error::other(error.to_string())))
                        .await;
                    return;
                }
            }
        }
    });
    let stream = futures_stream(receiver);
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn futures_stream(
    mut receiver: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

/// Every entry (operator auditors).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(PageParams), responses(
    (status = 200, body = Page<AuditEntry>),
    (status = 403, body = Problem),
))]
pub async fn all_audit(
    State(state): State<ServerState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let entries = state
        .app
        .audit_entries(&caller.call(), None, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(entries))
}

/// The chain of entry hashes and content digests, without contents: any party can check that
/// the log is whole and unchanged, and that its own entries are in it as it read them.
#[utoipa::path(get, path = "/api/v1/audit/chain", tag = "audit", params(PageParams), responses((status = 200, body = Page<ChainLink>)))]
pub async fn chain(
    State(state): State<ServerState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<ChainLink>>> {
    let links = state
        .app
        .audit_chain(&caller.call(), page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(links))
}

/// Signed checkpoints of the chain head, newest first. Keep one: later, check that the log still extends it.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", params(PageParams), responses((status = 200, body = Page<Checkpoint>)))]
pub async fn list_checkpoints(
    State(state): State<ServerState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<Checkpoint>>> {
    let checkpoints = state
        .app
        .checkpoints(&caller.call(), page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(checkpoints))
}

/// Signs the current chain head now (operator owners and admins; the server also does it periodically).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit", responses(
    (status = 201, body = Checkpoint),
    (status = 403, body = Problem),
))]
pub async fn create_checkpoint(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<Checkpoint>)> {
    let checkpoint = state
        .app
        .create_checkpoint(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(checkpoint)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The instance's public key, hex; checkpoints name it as `key_id`.
    pub public_key: String,
}

/// The instance's public key, to verify checkpoint signatures.
#[utoipa::path(get, path = "/api/v1/audit/key", tag = "audit", security(()), responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(state): State<ServerState>) -> Json<PublicKey> {
    Json(PublicKey {
        algorithm: "Ed25519",
        public_key: state.app.key().public_hex(),
    })
}

/// One organisation's events, oldest first; poll with the last `next_cursor` for new ones.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/events", tag = "events", params(("org_id" = String, Path), PageParams), responses(
    (status = 200, body = Page<Event>),
    (status = 403, body = Problem),
))]
pub async fn org_events(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<Event>>> {
    let org_id: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let events = state
        .app
        .events(&caller.call(), org_id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(events))
}
