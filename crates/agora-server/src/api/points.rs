//! Points: the operator's rules and rate, grants by funders, a customer's balance and redemptions, and expiry.
//!
//! Requests that grant or redeem take a `reference` (or else the `Idempotency-Key`): the ids and
//! the ledger step are derived from it, so a retry answers the first result and moves nothing.

use agora_app::{
    GrantPoints, NewPointsRule, PointsBalance, PointsExpiry, PointsGrant, PointsRedemption,
    PointsRuleView, PointsSettings, RedeemPoints,
};
use agora_domain::{OrgId, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json};

type ApiResult<T> = Result<T, ApiError>;

/// Sets an accrual rule: a new one, or a replacement of the rule named by `id`. Operators only.
#[utoipa::path(post, path = "/api/v1/points/rules", tag = "points",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response")),
    request_body = NewPointsRule,
    responses(
        (status = 200, body = PointsRuleView),
        (status = 403, body = Problem),
        (status = 409, description = "The funder already has a rule for this action", body = Problem),
    ))]
pub async fn set_rule(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<NewPointsRule>,
) -> ApiResult<Json<PointsRuleView>> {
    let rule = state
        .app
        .set_points_rule(&caller.call(), input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(rule))
}

/// The accrual rules; anyone signed in reads them.
#[utoipa::path(get, path = "/api/v1/points/rules", tag = "points",
    responses((status = 200, body = Vec<PointsRuleView>)))]
pub async fn list_rules(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<PointsRuleView>>> {
    let rules = state
        .app
        .points_rules(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(rules))
}

/// Sets the rate at which funders owe the partner where their points are spent. Operators only.
#[utoipa::path(put, path = "/api/v1/points/settings", tag = "points",
    request_body = PointsSettings,
    responses((status = 200, body = PointsSettings), (status = 403, body = Problem)))]
pub async fn set_settings(
    State(state): State<ServerState>,
    caller: Caller,
    Json(settings): Json<PointsSettings>,
) -> ApiResult<Json<PointsSettings>> {
    let settings = state
        .app
        .set_points_settings(&caller.call(), settings)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(settings))
}

/// The redemption rate; 404 until the operator sets it.
#[utoipa::path(get, path = "/api/v1/points/settings", tag = "points",
    responses((status = 200, body = PointsSettings), (status = 404, body = Problem)))]
pub async fn get_settings(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<PointsSettings>> {
    let settings = state
        .app
        .points_settings(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?
        .ok_or_else(|| {
            caller.fail(agora_domain::Error::not_found(
                "points settings: the operator has not set the rate yet",
            ))
        })?;
    Ok(Json(settings))
}

/// Grants a customer the points the organisation's `per_action` rule gives for an action,
/// funded by the organisation. Its owners and admins (the operator's for operator-funded points).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/points/grants", tag = "points",
    params(("org_id" = String, Path, description = "The funder"),
           ("Idempotency-Key" = Option<String>, Header, description = "The reference when the body has none")),
    request_body = GrantPoints,
    responses(
        (status = 201, body = PointsGrant),
        (status = 403, body = Problem),
        (status = 404, description = "No rule of this funder for the action, or no such customer", body = Problem),
        (status = 422, description = "The reference was used for a different grant", body = Problem),
    ))]
pub async fn grant(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<GrantPoints>,
) -> ApiResult<(StatusCode, Json<PointsGrant>)> {
    let funder: OrgId = org_id.parse().map_err(|e| caller.fail(e))?;
    let grant = state
        .app
        .grant_points(&caller.call(), funder, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// A customer's points: liability, spendable now, soonest expiry and lots. The customer
/// (through the portal, not a token) and the operator.
#[utoipa::path(get, path = "/api/v1/customers/{user_id}/points", tag = "points",
    params(("user_id" = String, Path)),
    responses((status = 200, body = PointsBalance), (status = 403, body = Problem)))]
pub async fn balance(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Json<PointsBalance>> {
    let customer: UserId = user_id.parse().map_err(|e| caller.fail(e))?;
    let balance = state
        .app
        .points_balance(&caller.call(), customer)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(balance))
}

/// Spends a customer's points at a partner, soonest-expiring lots first; the lots' funders owe
/// the partner at the operator's rate. The customer themself (not through a token) and the operator.
#[utoipa::path(post, path = "/api/v1/customers/{user_id}/points/redemptions", tag = "points",
    params(("user_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "The reference when the body has none")),
    request_body = RedeemPoints,
    responses(
        (status = 201, body = PointsRedemption),
        (status = 403, body = Problem),
        (status = 409, description = "Not enough spendable points; nothing was redeemed", body = Problem),
        (status = 429, description = "A funder would exceed its net debit cap; nothing was redeemed", body = Problem),
    ))]
pub async fn redeem(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(input): Json<RedeemPoints>,
) -> ApiResult<(StatusCode, Json<PointsRedemption>)> {
    let customer: UserId = user_id.parse().map_err(|e| caller.fail(e))?;
    let redemption = state
        .app
        .redeem_points(&caller.call(), customer, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(redemption)))
}

/// Moves the remainders of every lot past its expiry to breakage. Operators only; safe to repeat.
#[utoipa::path(post, path = "/api/v1/points/expire", tag = "points",
    responses((status = 200, body = PointsExpiry), (status = 403, body = Problem)))]
pub async fn expire(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<PointsExpiry>> {
    let expiry = state
        .app
        .expire_points(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(expiry))
}
