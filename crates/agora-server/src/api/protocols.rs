//! Data-sharing protocols and governed queries: drafting and revising documents, each party's
//! lifecycle steps, versions and diffs, running SQL under the active protocols (JSON, CSV or an
//! Arrow IPC stream), and the query log of consumers and providers.

use agora_app::{
    DocumentFormat, Page, ProtocolDiff, ProtocolVersionView, ProtocolView, QueryAnswer, QueryInput,
    QueryLogEntry, QueryScope, parse_document,
};
use agora_domain::{Error, OrgId, ProtocolId};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::ServerState;
use crate::api::PageParams;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

fn org(caller: &Caller, text: &str) -> ApiResult<OrgId> {
    text.parse().map_err(|e| caller.fail(e))
}

fn protocol_id(caller: &Caller, text: &str) -> ApiResult<ProtocolId> {
    text.parse().map_err(|e| caller.fail(e))
}

/// A protocol document to draft or revise.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The document's text, TOML or JSON (`docs/protocols.md` has a full example).
    pub document: String,
    /// `toml` or `json`; without it, text starting with `{` is read as JSON.
    pub format: Option<DocumentFormat>,
}

/// Drafts a protocol over the organisation's datasets: version 1, in state `draft`. The
/// document is checked against the datasets (every column exists, none is shared looser than
/// its owner classed it, thresholds are at least 2, …) and refused naming the field at fault.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/protocols", tag = "protocols",
    params(("org_id" = String, Path, description = "The provider")),
    request_body = DocumentInput,
    responses(
        (status = 201, body = ProtocolView),
        (status = 400, description = "The document is invalid: `field` names where", body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "The provider already has a protocol of that name", body = Problem),
    ))]
pub async fn create(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<DocumentInput>,
) -> ApiResult<(StatusCode, Json<ProtocolView>)> {
    let org_id = org(&caller, &org_id)?;
    let document = parse_document(&input.document, input.format).map_err(|e| caller.fail(e))?;
    let view = state
        .app
        .create_protocol(&caller.call(), org_id, document)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The protocols the organisation is a party to, as provider or consumer.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/protocols", tag = "protocols",
    params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<ProtocolView>), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<ProtocolView>>> {
    let org_id = org(&caller, &org_id)?;
    let page = state
        .app
        .protocols(&caller.call(), org_id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(page))
}

/// One protocol with its latest version: the document, its content hash, its state, who
/// approved it and whose approval it awaits.
#[utoipa::path(get, path = "/api/v1/protocols/{protocol_id}", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .protocol(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Revises a protocol (its provider's step): a new draft version with no approvals. The
/// version in force stays in force until every party approved the new one.
#[utoipa::path(put, path = "/api/v1/protocols/{protocol_id}", tag = "protocols",
    params(("protocol_id" = String, Path)),
    request_body = DocumentInput,
    responses((status = 200, body = ProtocolView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revise(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<DocumentInput>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let document = parse_document(&input.document, input.format).map_err(|e| caller.fail(e))?;
    let view = state
        .app
        .revise_protocol(&caller.call(), id, document)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Every version of a protocol, newest first.
#[utoipa::path(get, path = "/api/v1/protocols/{protocol_id}/versions", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = Vec<ProtocolVersionView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn versions(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ProtocolVersionView>>> {
    let id = protocol_id(&caller, &id)?;
    let versions = state
        .app
        .protocol_versions(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(versions))
}

/// Which two versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub from: i64,
    pub to: i64,
}

/// The lines that differ between two versions' documents.
#[utoipa::path(get, path = "/api/v1/protocols/{protocol_id}/diff", tag = "protocols",
    params(("protocol_id" = String, Path), DiffParams),
    responses((status = 200, body = ProtocolDiff), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn diff(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<DiffParams>,
) -> ApiResult<Json<ProtocolDiff>> {
    let id = protocol_id(&caller, &id)?;
    let diff = state
        .app
        .protocol_diff(&caller.call(), id, params.from, params.to)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(diff))
}

/// Proposes the latest draft to every party (the provider's step).
#[utoipa::path(post, path = "/api/v1/protocols/{protocol_id}/propose", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn propose(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .propose_protocol(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// An approval of one exact version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInput {
    /// The `content_hash` of the version reviewed; an approval of any other content is refused.
    pub content_hash: String,
}

/// Approves the latest version for the caller's organisation. It becomes active, replacing the
/// version in force, once every party approved the same content hash.
#[utoipa::path(post, path = "/api/v1/protocols/{protocol_id}/approve", tag = "protocols",
    params(("protocol_id" = String, Path)),
    request_body = ApprovalInput,
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not proposed, or the hash is not the latest version's", body = Problem)))]
pub async fn approve(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<ApprovalInput>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .approve_protocol(&caller.call(), id, &input.content_hash)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Pauses the version in force for the caller's organisation: no query runs under it until
/// every party that paused it resumed.
#[utoipa::path(post, path = "/api/v1/protocols/{protocol_id}/pause", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn pause(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .pause_protocol(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Lifts the caller's organisation's pause.
#[utoipa::path(post, path = "/api/v1/protocols/{protocol_id}/resume", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .resume_protocol(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Revokes the protocol (the provider's step): no version of it runs again.
#[utoipa::path(post, path = "/api/v1/protocols/{protocol_id}/revoke", tag = "protocols",
    params(("protocol_id" = String, Path)),
    responses((status = 200, body = ProtocolView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProtocolView>> {
    let id = protocol_id(&caller, &id)?;
    let view = state
        .app
        .revoke_protocol(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Runs SQL as the caller's organisation under its active protocols. The catalog shows the
/// organisation's own datasets (full SQL) and what its protocols share (governed: only what the
/// rules let out). `Accept: text/csv` answers CSV with a header row,
/// `application/vnd.apache.arrow.stream` an Arrow IPC stream (the query id and suppressed-row
/// count in `Agora-Query-Id` and `Agora-Rows-Suppressed`), anything else JSON. A refusal is a
/// `422` problem whose `rule` and `expression` say what to change.
#[utoipa::path(post, path = "/api/v1/queries", tag = "protocols",
    request_body = QueryInput,
    responses(
        (status = 200, description = "The result", body = QueryAnswer,
            content(
                (QueryAnswer = "application/json"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.apache.arrow.stream"),
            )),
        (status = 400, description = "Malformed SQL or purpose", body = Problem),
        (status = 403, body = Problem),
        (status = 422, description = "Refused by a protocol rule, named in `rule`, at `expression`; or failed while running (without saying why)", body = Problem),
        (status = 429, description = "A limit: `queries_per_day_max`, `query_timeout_ms`, `memory_bytes_max`, `result_rows_max`", body = Problem),
    ))]
pub async fn run(
    State(state): State<ServerState>,
    caller: Caller,
    headers: HeaderMap,
    Json(input): Json<QueryInput>,
) -> ApiResult<Response> {
    let Some(consumer) = caller.actor.org_id() else {
        return Err(caller.fail(Error::invalid(
            "organisation",
            "a query runs as an organisation: use a token of the organisation, or act for one in the portal",
        )));
    };
    let answer = state
        .app
        .run_query(&caller.call(), consumer, input)
        .await
        .map_err(|e| caller.fail(e))?;
    let accept: String = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let (media_type, body) = if accept.contains("text/csv") {
        ("text/csv; charset=utf-8", answer.csv())
    } else if accept.contains(ARROW_STREAM) {
        (ARROW_STREAM, answer.arrow_ipc())
    } else {
        return Ok(Json(answer).into_response());
    };
    let body = body.map_err(|e| caller.fail(e))?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    if let Ok(value) = HeaderValue::from_str(&answer.id.to_string()) {
        headers.insert("agora-query-id", value);
    }
    headers.insert(
        "agora-rows-suppressed",
        HeaderValue::from(answer.report.rows_suppressed),
    );
    Ok(response)
}

/// Whose queries to list, and a page of them.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QueryLogParams {
    /// `ran` (the default): queries the organisation ran; `against_our_data`: queries that
    /// used its protocols.
    pub scope: Option<QueryScope>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The organisation's query log, newest first: each query's SQL, purpose, outcome, rule,
/// protocol versions and rows suppressed.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/queries", tag = "protocols",
    params(("org_id" = String, Path), QueryLogParams),
    responses((status = 200, body = Page<QueryLogEntry>), (status = 403, body = Problem)))]
pub async fn log(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(params): Query<QueryLogParams>,
) -> ApiResult<Json<Page<QueryLogEntry>>> {
    let org_id = org(&caller, &org_id)?;
    let page = state
        .app
        .queries(
            &caller.call(),
            org_id,
            params.scope.unwrap_or(QueryScope::Ran),
            params.cursor.as_deref(),
            params.limit,
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(page))
}
