//! Partner-to-partner settlement: obligations, net debit caps, windows and their reports.

use agora_app::{
    NetDebitCap, NewObligation, ObligationView, Page, SetNetDebitCap, SettlementReport,
    SettlementWindowSummary,
};
use agora_domain::{OrgId, WindowId};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::PageParams;
use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

/// Records that the organisation owes another partner, in the open window. Its owners and
/// admins. The `reference` is unique per debtor: recording it again answers the first obligation.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/obligations", tag = "settlement",
    params(("org_id" = String, Path, description = "The debtor")),
    request_body = NewObligation,
    responses(
        (status = 201, body = ObligationView),
        (status = 403, body = Problem),
        (status = 404, description = "No such creditor", body = Problem),
        (status = 422, description = "The reference was used for a different obligation", body = Problem),
        (status = 429, description = "Beyond the debtor's net debit cap (`limit`: `net_debit_cap`); nothing was recorded", body = Problem),
    ))]
pub async fn record_obligation(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<NewObligation>,
) -> ApiResult<(StatusCode, Json<ObligationView>)> {
    let debtor: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let obligation = state
        .app
        .record_obligation(&caller.call(), debtor, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(obligation)))
}

/// Sets the organisation's net debit cap in a currency: how much it may owe net within a window. Operators only.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/net-debit-cap", tag = "settlement",
    params(("org_id" = String, Path)),
    request_body = SetNetDebitCap,
    responses((status = 200, body = NetDebitCap), (status = 403, body = Problem)))]
pub async fn set_cap(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<SetNetDebitCap>,
) -> ApiResult<Json<NetDebitCap>> {
    let partner: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let cap = state
        .app
        .set_net_debit_cap(&caller.call(), partner, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(cap))
}

/// The organisation's net debit caps, one per currency; none in a currency means no cap.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/net-debit-cap", tag = "settlement",
    params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<NetDebitCap>), (status = 403, body = Problem)))]
pub async fn get_caps(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Vec<NetDebitCap>>> {
    let partner: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let caps = state
        .app
        .net_debit_caps(&caller.call(), partner)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(caps))
}

/// The settlement windows, oldest first: the operator's, or a partner's for its own reports.
#[utoipa::path(get, path = "/api/v1/settlement/windows", tag = "settlement",
    params(PageParams),
    responses((status = 200, body = Page<SettlementWindowSummary>), (status = 403, body = Problem)))]
pub async fn list_windows(
    State(state): State<ServerState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<SettlementWindowSummary>>> {
    let windows = state
        .app
        .settlement_windows(&caller.call(), page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(windows))
}

/// Closes a window: every position against the settlement house, and the report of what they
/// were (positions sum to zero per currency). `current` closes whichever is open; naming a
/// window that is already closed answers its report again. Operators only.
#[utoipa::path(post, path = "/api/v1/settlement/windows/{window_id}/close", tag = "settlement",
    params(("window_id" = String, Path, description = "`current`, or a window id (stw_…)")),
    responses(
        (status = 200, body = SettlementReport),
        (status = 403, body = Problem),
        (status = 404, description = "The named window is not the open one", body = Problem),
    ))]
pub async fn close_window(
    State(state): State<ServerState>,
    caller: Caller,
    Path(window_id): Path<String>,
) -> ApiResult<Json<SettlementReport>> {
    let window: Option<WindowId> = match window_id.as_str() {
        "current" => None,
        id => Some(id.parse().map_err(|e| caller.fail(e))?),
    };
    let report = state
        .app
        .close_settlement_window(&caller.call(), window)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(report))
}

/// A window's report: positions so far while open, as settled once closed. A partner sees only
/// its own positions; the operator sees all.
#[utoipa::path(get, path = "/api/v1/settlement/windows/{window_id}", tag = "settlement",
    params(("window_id" = String, Path)),
    responses(
        (status = 200, body = SettlementReport),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
pub async fn report(
    State(state): State<ServerState>,
    caller: Caller,
    Path(window_id): Path<String>,
) -> ApiResult<Json<SettlementReport>> {
    let window: WindowId = window_id.parse().map_err(|e| caller.fail(e))?;
    let report = state
        .app
        .settlement_report(&caller.call(), window)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(report))
}
