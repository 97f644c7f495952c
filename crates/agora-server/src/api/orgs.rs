//! Organisations, members and API tokens.

use agora_app::{CreateOrg, CreateToken, CreatedToken, MemberAdded, NewMember, Page, UpdateOrg};
use agora_domain::model::{ApiToken, Member, Organisation};
use agora_domain::{OrgId, TokenId, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::PageParams;
use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: std::str::FromStr<Err = agora_domain::Error>>(
    caller: &Caller,
    text: &str,
) -> ApiResult<T> {
    text.parse().map_err(|error| caller.fail(error))
}

/// Creates an organisation; its creator becomes its owner. Pending until approved when admission is by approval.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organisations",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again")),
    request_body = CreateOrg,
    responses(
        (status = 201, body = Organisation),
        (status = 409, description = "The name is taken", body = Problem),
        (status = 422, description = "Wrong shape, or the Idempotency-Key was used with another body", body = Problem),
    ))]
pub async fn create_org(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<CreateOrg>,
) -> ApiResult<(StatusCode, Json<Organisation>)> {
    let org = state
        .app
        .create_org(&caller.call(), input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Lists organisations, in id order.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organisations", params(PageParams), responses((status = 200, body = Page<Organisation>)))]
pub async fn list_orgs(
    State(state): State<ServerState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<Organisation>>> {
    let orgs = state
        .app
        .orgs(&caller.call(), page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(orgs))
}

/// Reads one organisation.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "organisations", params(("org_id" = String, Path)), responses(
    (status = 200, body = Organisation),
    (status = 404, body = Problem),
))]
pub async fn get_org(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Organisation>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let org = state
        .app
        .org(&caller.call(), org_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(org))
}

/// Renames an organisation.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "organisations", params(("org_id" = String, Path)), request_body = UpdateOrg, responses(
    (status = 200, body = Organisation),
    (status = 403, body = Problem),
    (status = 409, body = Problem),
))]
pub async fn update_org(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<UpdateOrg>,
) -> ApiResult<Json<Organisation>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let org = state
        .app
        .update_org(&caller.call(), org_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(org))
}

/// Admits an organisation waiting for approval (operator owners and admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/approve", tag = "organisations", params(("org_id" = String, Path)), responses(
    (status = 200, body = Organisation),
    (status = 403, body = Problem),
))]
pub async fn approve_org(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Organisation>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let org = state
        .app
        .approve_org(&caller.call(), org_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(org))
}

/// Lists an organisation's members.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "organisations", params(("org_id" = String, Path), PageParams), responses(
    (status = 200, body = Page<Member>),
    (status = 403, body = Problem),
))]
pub async fn list_members(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<Member>>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let members = state
        .app
        .members(&caller.call(), org_id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(members))
}

/// Adds a member by e-mail, creating the user if new (the answer then carries a one-time sign-in link), or changes a member's role.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/members", tag = "organisations",
    params(("org_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = NewMember,
    responses(
        (status = 201, body = MemberAdded),
        (status = 403, description = "Refused by a policy, such as no-role-escalation", body = Problem),
    ))]
pub async fn add_member(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<NewMember>,
) -> ApiResult<(StatusCode, Json<MemberAdded>)> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let added = state
        .app
        .add_member(&caller.call(), org_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Removes a member; their tokens for this organisation are revoked with the membership.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "organisations",
    params(("org_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = Problem), (status = 409, description = "Would leave no owner", body = Problem)))]
pub async fn remove_member(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let user_id: UserId = parse(&caller, &user_id)?;
    state
        .app
        .remove_member(&caller.call(), org_id, user_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists an organisation's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/tokens", tag = "organisations", params(("org_id" = String, Path), PageParams), responses(
    (status = 200, body = Page<ApiToken>),
    (status = 403, body = Problem),
))]
pub async fn list_tokens(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<ApiToken>>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let tokens = state
        .app
        .tokens(&caller.call(), org_id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(tokens))
}

/// Creates an API token acting for the caller in this organisation. The secret is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/tokens", tag = "organisations",
    params(("org_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "A replay returns the token's record with an empty secret: secrets are never stored")),
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem)))]
pub async fn create_token(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let created = state
        .app
        .create_token(&caller.call(), org_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "organisations", params(("token_id" = String, Path)), responses(
    (status = 200, body = ApiToken),
    (status = 403, body = Problem),
    (status = 404, body = Problem),
))]
pub async fn revoke_token(
    State(state): State<ServerState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let token_id: TokenId = parse(&caller, &token_id)?;
    let token = state
        .app
        .revoke_token(&caller.call(), token_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(token))
}
