//! Coalitions: founding, goals, pledges and their fulfilment, delegations, proposals and votes,
//! closing and executing proposals, the treasury, pooled data, and the decision register.

use agora_app::{
    CoalitionSummary, CoalitionView, NewCoalition, NewGoal, NewPledge, NewProposal, ProposalView,
    UploadOutcome, parse_choice,
};
use agora_domain::dataset::{ColumnClassing, UploadFormat};
use agora_domain::{GoalId, OrgId, PledgeId, ProposalId};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ServerState;
use crate::error::{ApiError, Problem, ProblemExtra, problem_response};
use crate::extract::{Caller, Json};

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: std::str::FromStr<Err = agora_domain::Error>>(
    caller: &Caller,
    text: &str,
) -> ApiResult<T> {
    text.parse().map_err(|e| caller.fail(e))
}

/// Founds a coalition. The caller's organisation becomes its first member and steward; the
/// charter is checked and refused if unsafe (a threshold under 50% for amending it, a vote
/// shorter than an hour, pooled rules looser than 3 contributors or a 50% share, …).
#[utoipa::path(post, path = "/api/v1/coalitions", tag = "coalitions",
    request_body = NewCoalition,
    responses(
        (status = 201, body = CoalitionView),
        (status = 400, description = "An unsafe charter or invalid goal: `field` names it", body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "An organisation has that name", body = Problem),
    ))]
pub async fn found(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<NewCoalition>,
) -> ApiResult<(StatusCode, Json<CoalitionView>)> {
    let view = state
        .app
        .found_coalition(&caller.call(), input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every coalition on the instance.
#[utoipa::path(get, path = "/api/v1/coalitions", tag = "coalitions",
    responses((status = 200, body = Vec<CoalitionSummary>), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CoalitionSummary>>> {
    let list = state
        .app
        .coalitions(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(list))
}

/// One coalition: charter, members, goals with progress over time, pledges (active, overdue),
/// delegations, pooled datasets, published statistics and treasury.
#[utoipa::path(get, path = "/api/v1/coalitions/{coalition_id}", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    responses((status = 200, body = CoalitionView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CoalitionView>> {
    let id: OrgId = parse(&caller, &id)?;
    let view = state
        .app
        .coalition(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// The id of something created.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
}

/// Adds a goal or a sub-goal (a steward's step).
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/goals", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    request_body = NewGoal,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn add_goal(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<NewGoal>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let id: OrgId = parse(&caller, &id)?;
    let goal: GoalId = state
        .app
        .add_goal(&caller.call(), id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: goal.to_string(),
        }),
    ))
}

/// Pledges a quantity towards a goal by a date, for the caller's organisation, optionally on
/// a condition (`{"others_at_least": {"count": 3}}`, `{"total_at_least": {"quantity": 100000}}`).
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/pledges", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    request_body = NewPledge,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn pledge(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<NewPledge>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let id: OrgId = parse(&caller, &id)?;
    let pledge: PledgeId = state
        .app
        .pledge(&caller.call(), id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: pledge.to_string(),
        }),
    ))
}

/// A quantity delivered against a pledge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentInput {
    pub quantity: i64,
    #[serde(default)]
    pub note: String,
}

/// Reports fulfilment of one of the caller's pledges.
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/pledges/{pledge_id}/fulfilments", tag = "coalitions",
    params(("coalition_id" = String, Path), ("pledge_id" = String, Path)),
    request_body = FulfilmentInput,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn fulfil(
    State(state): State<ServerState>,
    caller: Caller,
    Path((id, pledge)): Path<(String, String)>,
    Json(input): Json<FulfilmentInput>,
) -> ApiResult<StatusCode> {
    let id: OrgId = parse(&caller, &id)?;
    let pledge: PledgeId = parse(&caller, &pledge)?;
    state
        .app
        .report_fulfilment(&caller.call(), id, pledge, input.quantity, &input.note)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A delegation of the caller's vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationInput {
    /// The member that votes for the caller; absent to withdraw the delegation.
    pub to: Option<OrgId>,
    /// Only proposals on this topic; absent for every topic. A topic delegation overrides the
    /// every-topic one, and the caller's own vote overrides both.
    pub topic: Option<String>,
}

/// Delegates (or withdraws) the caller's vote. A delegation that would close a cycle is refused.
#[utoipa::path(put, path = "/api/v1/coalitions/{coalition_id}/delegation", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    request_body = DelegationInput,
    responses((status = 204), (status = 400, description = "A cycle, a self-delegation or a non-member", body = Problem), (status = 403, body = Problem)))]
pub async fn delegate(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<DelegationInput>,
) -> ApiResult<StatusCode> {
    let id: OrgId = parse(&caller, &id)?;
    state
        .app
        .delegate(&caller.call(), id, input.topic.as_deref(), input.to)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens a proposal. Its actions are checked now, and the electorate and rules are frozen.
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/proposals", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    request_body = NewProposal,
    responses((status = 201, body = ProposalView), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn propose(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<NewProposal>,
) -> ApiResult<(StatusCode, Json<ProposalView>)> {
    let id: OrgId = parse(&caller, &id)?;
    let view = state
        .app
        .propose(&caller.call(), id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A coalition's proposals, newest first, with live tallies.
#[utoipa::path(get, path = "/api/v1/coalitions/{coalition_id}/proposals", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    responses((status = 200, body = Vec<ProposalView>), (status = 403, body = Problem)))]
pub async fn proposals(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ProposalView>>> {
    let id: OrgId = parse(&caller, &id)?;
    let list = state
        .app
        .proposals(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(list))
}

/// One proposal with its tally: every counted vote with its weight and delegation path.
#[utoipa::path(get, path = "/api/v1/proposals/{proposal_id}", tag = "coalitions",
    params(("proposal_id" = String, Path)),
    responses((status = 200, body = ProposalView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn proposal(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProposalView>> {
    let id: ProposalId = parse(&caller, &id)?;
    let view = state
        .app
        .proposal(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// A vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteInput {
    /// `yes`, `no`, `abstain`, or `block` where the charter allows blocks.
    pub choice: String,
    #[serde(default)]
    pub reason: String,
}

/// Casts or changes the caller's organisation's vote (the latest counts until the close).
/// Refused after the close (409), from an organisation that was not a member when the proposal
/// opened (403), and a block the charter does not allow (400).
#[utoipa::path(post, path = "/api/v1/proposals/{proposal_id}/votes", tag = "coalitions",
    params(("proposal_id" = String, Path)),
    request_body = VoteInput,
    responses((status = 200, body = ProposalView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn vote(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<VoteInput>,
) -> ApiResult<Json<ProposalView>> {
    let id: ProposalId = parse(&caller, &id)?;
    let choice = parse_choice(&input.choice).map_err(|e| caller.fail(e))?;
    let view = state
        .app
        .vote(&caller.call(), id, choice, &input.reason)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Runs a passed proposal's actions once its execution delay is over; each action's outcome is
/// recorded. The server's housekeeping does this by itself; this runs it now.
#[utoipa::path(post, path = "/api/v1/proposals/{proposal_id}/execute", tag = "coalitions",
    params(("proposal_id" = String, Path)),
    responses((status = 200, body = ProposalView), (status = 403, body = Problem), (status = 409, description = "Not passed, or not yet executable", body = Problem)))]
pub async fn execute(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProposalView>> {
    let id: ProposalId = parse(&caller, &id)?;
    let view = state
        .app
        .execute_proposal(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// Money moved into the treasury.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundingInput {
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    /// The caller's reference; the same reference moves the money once.
    pub reference: String,
}

/// The treasury's balance after funding.
#[derive(Debug, Serialize, ToSchema)]
pub struct TreasuryBalance {
    pub balance: i64,
}

/// Moves money from the caller's available balance into the coalition's treasury; only a
/// passed proposal releases it.
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/treasury", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    request_body = FundingInput,
    responses((status = 200, body = TreasuryBalance), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, description = "The caller's available balance is too low", body = Problem)))]
pub async fn fund(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(input): Json<FundingInput>,
) -> ApiResult<Json<TreasuryBalance>> {
    let id: OrgId = parse(&caller, &id)?;
    let balance = state
        .app
        .fund_treasury(
            &caller.call(),
            id,
            input.amount,
            &input.currency,
            &input.reference,
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(TreasuryBalance { balance }))
}

/// Contributes the caller's rows to a pooled dataset (the first contribution creates it). The
/// file must not have a `contributor` column: the platform sets it to the contributing member.
#[utoipa::path(post, path = "/api/v1/coalitions/{coalition_id}/datasets/{name}/contributions", tag = "coalitions",
    params(("coalition_id" = String, Path), ("name" = String, Path)),
    request_body(content = Vec<u8>, description = "The rows, as text/csv, application/x-ndjson or application/vnd.apache.parquet", content_type = "text/csv"),
    responses(
        (status = 201, description = "The pooled dataset was created", body = UploadOutcome),
        (status = 200, description = "A version was appended", body = UploadOutcome),
        (status = 400, description = "Malformed, or it holds a `contributor` column", body = Problem),
        (status = 403, body = Problem),
        (status = 415, body = Problem),
    ))]
pub async fn contribute(
    State(state): State<ServerState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let id: OrgId = parse(&caller, &id)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(format) = UploadFormat::from_media_type(media_type) else {
        return Ok(problem_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "an upload's Content-Type is {}, not `{media_type}`",
                UploadFormat::MEDIA_TYPES
            ),
            ProblemExtra {
                request_id: Some(caller.request_id),
                ..ProblemExtra::default()
            },
        ));
    };
    let outcome = state
        .app
        .contribute(&caller.call(), id, &name, format, body.into_data_stream())
        .await
        .map_err(|e| caller.fail(e))?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// The classes of a pooled dataset's columns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PooledClassesInput {
    pub columns: Vec<ColumnClassing>,
}

/// Sets the classes of a pooled dataset's columns (a steward's step); `contributor` stays the
/// contributor column.
#[utoipa::path(put, path = "/api/v1/coalitions/{coalition_id}/datasets/{name}/classes", tag = "coalitions",
    params(("coalition_id" = String, Path), ("name" = String, Path)),
    request_body = PooledClassesInput,
    responses((status = 200, body = agora_app::DatasetView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn classify(
    State(state): State<ServerState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    Json(input): Json<PooledClassesInput>,
) -> ApiResult<Json<agora_app::DatasetView>> {
    let id: OrgId = parse(&caller, &id)?;
    let view = state
        .app
        .classify_pooled(&caller.call(), id, &name, input.columns)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// The decision register: every proposal as a Popolo `Motion` with its ballots and executions,
/// and every tally as a Popolo `VoteEvent` whose counts equal the sum of its votes' weights.
#[utoipa::path(get, path = "/api/v1/coalitions/{coalition_id}/register", tag = "coalitions",
    params(("coalition_id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn register(
    State(state): State<ServerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id: OrgId = parse(&caller, &id)?;
    let register = state
        .app
        .coalition_register(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(register))
}
