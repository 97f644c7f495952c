//! Coalitions in the portal: the list (`/coalitions`), each coalition's dashboard with its goal
//! progress charts, pledges, members, published statistics and proposals with their live tallies
//! (`/coalitions/{id}`), its decision register as JSON (`/coalitions/{id}/register.json`), and
//! a proposal with every counted vote and the vote form (`/proposals/{id}`, `…/vote`).
//!
//! Every page asks the application, which authorizes; the vote form a page offers only guides,
//! and a refused vote is shown on the proposal's page with the rule or state that refused it.

use agora_app::agora_coalition::{Charter, Condition, VoteWeight};
use agora_app::{
    Call, CoalitionView, GoalView, PortalSession, ProposalAction, ProposalView, TallyView,
    parse_choice,
};
use agora_domain::{Error, OrgId, ProposalId, RequestId, Role, Timestamp};
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::directory::Directory;
use super::{
    Nav, PortalForm, alert_text, error_page, incomplete, page, request_id, session, signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// The chart's drawing area, in SVG user units; the SVG scales to the width of the screen.
const CHART_WIDTH: i64 = 640;
const CHART_HEIGHT: i64 = 220;
const CHART_LEFT: i64 = 8;
const CHART_TOP: i64 = 16;
const CHART_PLOT_WIDTH: i64 = CHART_WIDTH - 2 * CHART_LEFT;
const CHART_PLOT_HEIGHT: i64 = CHART_HEIGHT - CHART_TOP - 24;
/// The tally bar's width, in SVG user units.
const TALLY_BAR_WIDTH: u64 = 200;

/// Basis points as a percentage in words: 5000 → "50%", 6667 → "66.67%".
fn percent(bps: u32) -> String {
    if bps.is_multiple_of(100) {
        format!("{}%", bps / 100)
    } else {
        format!("{}.{:02}%", bps / 100, bps % 100)
    }
}

/// A duration in the largest whole unit that fits: "7 days", "1 hour", "90 seconds".
fn duration(seconds: i64) -> String {
    let plural = |count: i64, unit: &str| {
        if count == 1 {
            format!("1 {unit}")
        } else {
            format!("{count} {unit}s")
        }
    };
    match seconds {
        0 => "none".to_owned(),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

/// Minor units (cents) as an amount: 12345 → "123.45".
fn amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02}", minor / 100, minor % 100)
}

/// The day of an instant, for tables: "2027-06-01".
fn day(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

// -------------------------------------------------------------------------------------------
// The list
// -------------------------------------------------------------------------------------------

struct CoalitionRow {
    id: String,
    name: String,
    purpose: String,
    members: usize,
}

#[derive(Template)]
#[template(path = "coalitions.html")]
struct CoalitionsPage {
    nav: Nav,
    coalitions: Vec<CoalitionRow>,
}

pub async fn coalitions_page(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    match state.app.coalitions(&call).await {
        Ok(coalitions) => page(
            StatusCode::OK,
            &CoalitionsPage {
                nav: Nav::new(&session, "coalitions"),
                coalitions: coalitions
                    .into_iter()
                    .map(|coalition| CoalitionRow {
                        id: coalition.id.to_string(),
                        name: coalition.name,
                        purpose: coalition.purpose,
                        members: coalition.members,
                    })
                    .collect(),
            },
        ),
        Err(error) => error_page(error, request_id),
    }
}

// -------------------------------------------------------------------------------------------
// The dashboard
// -------------------------------------------------------------------------------------------

/// The charter's rules, in words.
struct CharterSummary {
    support: String,
    quorum: String,
    amendment: String,
    voting_period: String,
    voting_bounds: String,
    /// "changeable until the close" or "final once cast".
    votes: &'static str,
    early_close: bool,
    vote_weight: &'static str,
    delegation: bool,
    block_allowed: bool,
    execution_delay: String,
    quorum_extension: String,
    min_contributors: u32,
    contributor_share_max: String,
    min_age_days: u32,
}

impl CharterSummary {
    fn new(charter: &Charter) -> Self {
        Self {
            support: percent(charter.support_threshold_bps),
            quorum: percent(charter.quorum_bps),
            amendment: percent(charter.amendment_support_threshold_bps),
            voting_period: duration(charter.voting_seconds_default),
            voting_bounds: format!(
                "{} to {}",
                duration(charter.voting_seconds_min),
                duration(charter.voting_seconds_max)
            ),
            votes: if charter.votes_changeable {
                "changeable until the close"
            } else {
                "final once cast"
            },
            // Early close takes effect only where votes are final (docs/coalitions.md).
            early_close: charter.early_close && !charter.votes_changeable,
            vote_weight: match charter.vote_weight {
                VoteWeight::OnePerMember => "one vote per member",
                VoteWeight::ByPledge => "by active pledged quantity",
                VoteWeight::ByStake => "by stake",
            },
            delegation: charter.delegation,
            block_allowed: charter.block_allowed,
            execution_delay: duration(charter.execution_delay_seconds),
            quorum_extension: duration(charter.quorum_extension_seconds),
            min_contributors: charter.pooled.min_contributors,
            contributor_share_max: percent(charter.pooled.contributor_share_bps_max),
            min_age_days: charter.pooled.min_age_days,
        }
    }
}

/// The charter a coalition's view carries; the application stores it whole, so this only fails
/// on a bug, and then the defaults are shown rather than no page.
fn charter_of(coalition: &CoalitionView) -> Charter {
    serde_json::from_value(coalition.charter.clone()).unwrap_or_else(|error| {
        tracing::error!(%error, coalition = %coalition.id, "the coalition's charter does not parse");
        Charter::default()
    })
}

/// A point of the progress table beside a chart.
struct ChartRow {
    at: String,
    pledged: i64,
    fulfilled: i64,
}

/// A goal's progress over time as an SVG: pledged and fulfilled as step lines, the target as a
/// dashed line, all in user units of a `CHART_WIDTH` × `CHART_HEIGHT` view box.
struct Chart {
    pledged_points: String,
    fulfilled_points: String,
    target_y: i64,
    /// The top of the scale, for its label.
    scale_max: i64,
    from: String,
    to: String,
    /// The text alternative: what the chart shows, in one sentence.
    description: String,
    rows: Vec<ChartRow>,
}

impl Chart {
    fn new(goal: &GoalView, now: Timestamp) -> Self {
        let mut history = goal.history.clone();
        history.sort_by_key(|point| point.at);
        let peak = history
            .iter()
            .map(|point| point.pledged.max(point.fulfilled))
            .max()
            .unwrap_or(0);
        // A tenth of headroom above the higher of the target and the peak.
        let scale_max = (goal.target.max(peak).max(1) * 11 + 9) / 10;
        let y = |value: i64| {
            CHART_TOP + CHART_PLOT_HEIGHT
                - value.clamp(0, scale_max) * CHART_PLOT_HEIGHT / scale_max
        };
        let start = history.first().map_or(now, |point| point.at).as_micros();
        let end = history
            .last()
            .map_or(now, |point| point.at)
            .max(now)
            .as_micros();
        let span = (end - start).max(1);
        let x = |at: Timestamp| {
            let offset = i128::from(at.as_micros() - start) * i128::from(CHART_PLOT_WIDTH)
                / i128::from(span);
            CHART_LEFT + i64::try_from(offset).unwrap_or(CHART_PLOT_WIDTH)
        };
        let right = CHART_LEFT + CHART_PLOT_WIDTH;
        // A step line from zero: each point raises (or lowers) the value from its instant on.
        let steps = |value: fn(&agora_app::ProgressPoint) -> i64| {
            let mut points = vec![format!("{CHART_LEFT},{}", y(0))];
            let mut previous = 0;
            for point in &history {
                let at = x(point.at);
                points.push(format!("{at},{}", y(previous)));
                previous = value(point);
                points.push(format!("{at},{}", y(previous)));
            }
            points.push(format!("{right},{}", y(previous)));
            points.join(" ")
        };
        let description = format!(
            "{} of {} {} pledged and {} fulfilled, from {} pledge or fulfilment report(s) between {} and {}.",
            goal.pledged,
            goal.target,
            goal.unit,
            goal.fulfilled,
            history.len(),
            day(Timestamp::from_micros(start)),
            day(Timestamp::from_micros(end)),
        );
        Self {
            pledged_points: steps(|point| point.pledged),
            fulfilled_points: steps(|point| point.fulfilled),
            target_y: y(goal.target),
            scale_max,
            from: day(Timestamp::from_micros(start)),
            to: day(Timestamp::from_micros(end)),
            description,
            rows: history
                .iter()
                .map(|point| ChartRow {
                    at: point.at.to_string(),
                    pledged: point.pledged,
                    fulfilled: point.fulfilled,
                })
                .collect(),
        }
    }
}

struct GoalProgress {
    id: String,
    title: String,
    metric: String,
    unit: String,
    target: i64,
    weight: u32,
    deadline: String,
    pledged: i64,
    fulfilled: i64,
    pledged_bps: u32,
    fulfilled_bps: u32,
    pledged_percent: String,
    fulfilled_percent: String,
}

impl From<&GoalView> for GoalProgress {
    fn from(goal: &GoalView) -> Self {
        Self {
            id: goal.id.to_string(),
            title: goal.title.clone(),
            metric: goal.metric.clone(),
            unit: goal.unit.clone(),
            target: goal.target,
            weight: goal.weight,
            deadline: day(goal.deadline),
            pledged: goal.pledged,
            fulfilled: goal.fulfilled,
            // A bar is full at the target; beyond it the percentage says by how much.
            pledged_bps: goal.pledged_bps.min(10_000),
            fulfilled_bps: goal.fulfilled_bps.min(10_000),
            pledged_percent: percent(goal.pledged_bps),
            fulfilled_percent: percent(goal.fulfilled_bps),
        }
    }
}

/// A top-level goal: its progress, its chart, and its sub-goals.
struct GoalBlock {
    goal: GoalProgress,
    chart: Chart,
    subgoals: Vec<GoalProgress>,
}

struct PledgeRow {
    member: String,
    goal: String,
    quantity: i64,
    fulfilled: i64,
    due: String,
    /// `active`, `waiting` or `overdue`, for the class.
    state: &'static str,
    /// The state in words, with the condition a waiting pledge waits on.
    state_text: String,
    note: String,
}

fn condition_text(condition: &Condition) -> String {
    match condition {
        Condition::OthersAtLeast { count } => {
            format!("if at least {count} other member(s) pledge to this goal")
        }
        Condition::TotalAtLeast { quantity } => {
            format!("if the goal's active pledges reach {quantity}")
        }
    }
}

struct MemberRow {
    name: String,
    role: String,
    stake: i64,
    joined: String,
}

struct PublicationBlock {
    title: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    withheld: u64,
    published_at: String,
    proposal_id: String,
}

struct TreasuryRow {
    currency: String,
    balance: String,
}

/// A tally as numbers and as a bar: each choice's share of the electorate's power.
struct TallyBar {
    yes: u64,
    no: u64,
    abstain: u64,
    block: u64,
    total: u64,
    /// Widths in the bar's user units; what is left is the power that has not voted.
    yes_width: u64,
    no_width: u64,
    abstain_width: u64,
    block_width: u64,
    /// Where each segment starts.
    no_x: u64,
    abstain_x: u64,
    block_x: u64,
    support_reached: bool,
    quorum_reached: bool,
    /// The bar in words, for its `aria-label`.
    summary: String,
}

impl From<&TallyView> for TallyBar {
    fn from(tally: &TallyView) -> Self {
        let total = tally.total_power;
        let width = |value: u64| (value * TALLY_BAR_WIDTH).checked_div(total).unwrap_or(0);
        let (yes_width, no_width, abstain_width) =
            (width(tally.yes), width(tally.no), width(tally.abstain));
        Self {
            yes: tally.yes,
            no: tally.no,
            abstain: tally.abstain,
            block: tally.block,
            total,
            yes_width,
            no_width,
            abstain_width,
            block_width: width(tally.block),
            no_x: yes_width,
            abstain_x: yes_width + no_width,
            block_x: yes_width + no_width + abstain_width,
            support_reached: tally.support_reached,
            quorum_reached: tally.quorum_reached,
            summary: format!(
                "{} yes, {} no, {} abstain, {} block of {} votes",
                tally.yes, tally.no, tally.abstain, tally.block, total
            ),
        }
    }
}

struct ProposalRow {
    id: String,
    number: i64,
    title: String,
    status: String,
    closes_at: String,
    tally: TallyBar,
}

impl From<&ProposalView> for ProposalRow {
    fn from(proposal: &ProposalView) -> Self {
        Self {
            id: proposal.id.to_string(),
            number: proposal.number,
            title: proposal.title.clone(),
            status: proposal.status.clone(),
            closes_at: proposal.closes_at.to_string(),
            tally: TallyBar::from(&proposal.tally),
        }
    }
}

struct DelegationRow {
    from: String,
    to: String,
    topic: String,
}

#[derive(Template)]
#[template(path = "coalition.html")]
struct CoalitionPage {
    nav: Nav,
    id: String,
    name: String,
    purpose: String,
    founded_by: String,
    charter_version: u32,
    charter: CharterSummary,
    query_purposes: Vec<String>,
    goals: Vec<GoalBlock>,
    pledges: Vec<PledgeRow>,
    members: Vec<MemberRow>,
    delegations: Vec<DelegationRow>,
    publications: Vec<PublicationBlock>,
    pooled_datasets: Vec<String>,
    treasury: Vec<TreasuryRow>,
    proposals: Vec<ProposalRow>,
    chart_width: i64,
    chart_height: i64,
    chart_left: i64,
    chart_right: i64,
    chart_bottom: i64,
    tally_bar_width: u64,
}

pub async fn coalition_page(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let id: OrgId = id.parse()?;
        let coalition = state.app.coalition(&call, id).await?;
        let proposals = state.app.proposals(&call, id).await?;
        Ok::<_, Error>((coalition, proposals))
    }
    .await;
    let (coalition, proposals) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let now = Timestamp::now();
    let member_name = |org: OrgId| {
        coalition
            .members
            .iter()
            .find(|member| member.org_id == org)
            .map_or_else(|| org.to_string(), |member| member.name.clone())
    };
    let goal_title = |goal_id| {
        coalition
            .goals
            .iter()
            .find(|goal| goal.id == goal_id)
            .map_or_else(String::new, |goal| goal.title.clone())
    };
    let goals = coalition
        .goals
        .iter()
        .filter(|goal| goal.parent.is_none())
        .map(|goal| GoalBlock {
            goal: GoalProgress::from(goal),
            chart: Chart::new(goal, now),
            subgoals: coalition
                .goals
                .iter()
                .filter(|sub| sub.parent == Some(goal.id))
                .map(GoalProgress::from)
                .collect(),
        })
        .collect();
    let pledges = coalition
        .pledges
        .iter()
        .map(|pledge| {
            let (state, state_text) = if pledge.overdue {
                ("overdue", format!("overdue since {}", day(pledge.due)))
            } else if !pledge.active {
                let condition = pledge
                    .condition
                    .as_ref()
                    .map_or_else(|| "its condition".to_owned(), condition_text);
                ("waiting", format!("waiting: {condition}"))
            } else {
                ("active", "active".to_owned())
            };
            PledgeRow {
                member: pledge.member_name.clone(),
                goal: goal_title(pledge.goal_id),
                quantity: pledge.quantity,
                fulfilled: pledge.fulfilled,
                due: day(pledge.due),
                state,
                state_text,
                note: pledge.note.clone(),
            }
        })
        .collect();
    let view = CoalitionPage {
        nav: Nav::new(&session, "coalitions"),
        id: coalition.id.to_string(),
        name: coalition.name.clone(),
        purpose: coalition.purpose.clone(),
        founded_by: member_name(coalition.founded_by),
        charter_version: coalition.charter_version,
        charter: CharterSummary::new(&charter_of(&coalition)),
        query_purposes: coalition.query_purposes.clone(),
        goals,
        pledges,
        members: coalition
            .members
            .iter()
            .map(|member| MemberRow {
                name: member.name.clone(),
                role: member.role.clone(),
                stake: member.stake,
                joined: day(member.joined_at),
            })
            .collect(),
        delegations: coalition
            .delegations
            .iter()
            .map(|delegation| DelegationRow {
                from: member_name(delegation.from),
                to: member_name(delegation.to),
                topic: delegation
                    .topic
                    .clone()
                    .unwrap_or_else(|| "every topic".to_owned()),
            })
            .collect(),
        publications: coalition
            .publications
            .iter()
            .map(|publication| PublicationBlock {
                title: publication.title.clone(),
                columns: publication.columns.clone(),
                rows: publication
                    .rows
                    .iter()
                    .map(|row| row.iter().map(cell_text).collect())
                    .collect(),
                withheld: publication.rows_suppressed,
                published_at: day(publication.published_at),
                proposal_id: publication.proposal_id.to_string(),
            })
            .collect(),
        pooled_datasets: coalition.pooled_datasets.clone(),
        treasury: coalition
            .treasury
            .iter()
            .map(|(currency, minor)| TreasuryRow {
                currency: currency.clone(),
                balance: amount(*minor),
            })
            .collect(),
        proposals: proposals.iter().map(ProposalRow::from).collect(),
        chart_width: CHART_WIDTH,
        chart_height: CHART_HEIGHT,
        chart_left: CHART_LEFT,
        chart_right: CHART_LEFT + CHART_PLOT_WIDTH,
        chart_bottom: CHART_TOP + CHART_PLOT_HEIGHT,
        tally_bar_width: TALLY_BAR_WIDTH,
    };
    page(StatusCode::OK, &view)
}

/// The decision register, as the API serves it, to download.
pub async fn register_json(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let register = match id.parse::<OrgId>() {
        Ok(id) => state.app.coalition_register(&call, id).await,
        Err(error) => Err(error),
    };
    match register {
        Ok(register) => {
            let mut response = axum::Json(register).into_response();
            let disposition = format!("attachment; filename=\"register-{id}.json\"");
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error_page(error, request_id),
    }
}

// -------------------------------------------------------------------------------------------
// A proposal
// -------------------------------------------------------------------------------------------

/// An action of a proposal in words, with the SQL or charter it carries.
struct ActionRow {
    text: String,
    code: Option<String>,
}

fn action_row(action: &ProposalAction, directory: &Directory) -> ActionRow {
    let plain = |text: String| ActionRow { text, code: None };
    match action {
        ProposalAction::AdmitMember {
            org_id,
            steward,
            stake,
        } => {
            let mut text = format!("Admit {}", directory.name(*org_id));
            if *steward {
                text.push_str(" as a steward");
            }
            if *stake != 0 {
                text.push_str(&format!(" with a stake of {stake}"));
            }
            plain(text)
        }
        ProposalAction::RemoveMember { org_id } => {
            plain(format!("Remove {}", directory.name(*org_id)))
        }
        ProposalAction::AdoptProtocol {
            protocol_id,
            content_hash,
        } => ActionRow {
            text: format!("Adopt the protocol {protocol_id} at exactly this version"),
            code: Some(content_hash.clone()),
        },
        ProposalAction::PublishStatistics {
            title,
            purpose,
            sql,
        } => ActionRow {
            text: format!("Publish statistics: {title} (purpose {purpose})"),
            code: Some(sql.clone()),
        },
        ProposalAction::ReleaseFunds {
            to,
            amount: minor,
            currency,
            memo,
        } => plain(format!(
            "Release {} {currency} from the treasury to {}: {memo}",
            amount(*minor),
            directory.name(*to)
        )),
        ProposalAction::AmendCharter { charter } => ActionRow {
            text: "Amend the charter to".to_owned(),
            code: Some(
                serde_json::to_string_pretty(charter).unwrap_or_else(|_| charter.to_string()),
            ),
        },
    }
}

struct VoteRow {
    member: String,
    choice: String,
    weight: u64,
    /// "through X → Y" when the weight travelled along delegations.
    via: Option<String>,
}

struct ExecutionRow {
    index: u32,
    action: String,
    succeeded: bool,
    detail: String,
    at: String,
}

/// Whether the page offers the vote form, or why not.
enum Ballot {
    Open { changing: bool },
    Closed(String),
}

#[derive(Template)]
#[template(path = "proposal.html")]
struct ProposalPage {
    nav: Nav,
    id: String,
    coalition_id: String,
    coalition_name: String,
    number: i64,
    title: String,
    body: String,
    topic: String,
    proposed_by: String,
    actions: Vec<ActionRow>,
    requirement: String,
    status: String,
    opened_at: String,
    closes_at: String,
    extended: bool,
    decided_at: Option<String>,
    executable_at: Option<String>,
    electorate_size: usize,
    ballots: usize,
    tally: TallyBar,
    votes: Vec<VoteRow>,
    executions: Vec<ExecutionRow>,
    /// The form, or the reason there is none.
    vote_open: bool,
    changing: bool,
    no_vote_reason: String,
    block_allowed: bool,
    tally_bar_width: u64,
    notice: Option<String>,
    error: Option<String>,
    /// The reason typed in a refused vote, to send again.
    reason: String,
}

#[derive(Deserialize, Default)]
pub struct ProposalParams {
    done: Option<String>,
}

/// Whether the acting organisation may vote now, as far as the page can tell: it acts for a
/// member (one that joined before the proposal opened) as an owner or admin, and the proposal
/// is open. The application decides.
fn ballot(
    session: &PortalSession,
    proposal: &ProposalView,
    coalition: &CoalitionView,
    votes_changeable: bool,
) -> Ballot {
    let Some(acting) = session.actor.acting else {
        return Ballot::Closed("You act for no organisation, so you do not vote.".to_owned());
    };
    if proposal.status != "open" {
        return Ballot::Closed(format!(
            "Voting is over: the proposal is {}.",
            proposal.status
        ));
    }
    let member = coalition
        .members
        .iter()
        .find(|member| member.org_id == acting.org_id);
    let Some(member) = member else {
        return Ballot::Closed(
            "Your organisation is not a member of this coalition, so it does not vote.".to_owned(),
        );
    };
    if member.joined_at > proposal.opened_at {
        return Ballot::Closed(
            "Your organisation joined after this proposal opened; its electorate is frozen then."
                .to_owned(),
        );
    }
    if !matches!(acting.role, Role::Owner | Role::Admin) {
        return Ballot::Closed("Your organisation's owners and admins vote for it.".to_owned());
    }
    let voted = proposal
        .tally
        .votes
        .iter()
        .any(|vote| vote.voter == acting.org_id && vote.via.is_empty());
    if voted && !votes_changeable {
        return Ballot::Closed(
            "Your organisation has voted; this coalition's charter makes a vote final once cast."
                .to_owned(),
        );
    }
    Ballot::Open { changing: voted }
}

async fn proposal_view(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    id: &str,
    notice: Option<String>,
    error: Option<(StatusCode, String, String)>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let id: ProposalId = id.parse()?;
        let proposal = state.app.proposal(&call, id).await?;
        let coalition = state.app.coalition(&call, proposal.coalition_id).await?;
        let directory = Directory::load(&state.app, &call).await?;
        Ok::<_, Error>((proposal, coalition, directory))
    }
    .await;
    let (proposal, coalition, directory) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let charter = charter_of(&coalition);
    let ballot = ballot(session, &proposal, &coalition, charter.votes_changeable);
    let (status, error, reason) = match error {
        Some((status, text, reason)) => (status, Some(text), reason),
        None => (StatusCode::OK, None, String::new()),
    };
    let (vote_open, changing, no_vote_reason) = match ballot {
        Ballot::Open { changing } => (true, changing, String::new()),
        Ballot::Closed(why) => (false, false, why),
    };
    let view = ProposalPage {
        nav: Nav::new(session, "coalitions"),
        id: proposal.id.to_string(),
        coalition_id: coalition.id.to_string(),
        coalition_name: coalition.name.clone(),
        number: proposal.number,
        title: proposal.title.clone(),
        body: proposal.body.clone(),
        topic: proposal.topic.clone(),
        proposed_by: directory.name(proposal.proposed_by),
        actions: proposal
            .actions
            .iter()
            .map(|action| action_row(action, &directory))
            .collect(),
        requirement: proposal.requirement.clone(),
        status: proposal.status.clone(),
        opened_at: proposal.opened_at.to_string(),
        closes_at: proposal.closes_at.to_string(),
        extended: proposal.extended,
        decided_at: proposal.decided_at.map(|at| at.to_string()),
        executable_at: proposal.executable_at.map(|at| at.to_string()),
        electorate_size: proposal.electorate_size,
        ballots: proposal.ballots,
        tally: TallyBar::from(&proposal.tally),
        votes: proposal
            .tally
            .votes
            .iter()
            .map(|vote| VoteRow {
                member: directory.name(vote.voter),
                choice: vote.choice.clone(),
                weight: vote.weight,
                via: (!vote.via.is_empty()).then(|| {
                    let path: Vec<String> =
                        vote.via.iter().map(|org| directory.name(*org)).collect();
                    format!("through {}", path.join(" → "))
                }),
            })
            .collect(),
        executions: proposal
            .executions
            .iter()
            .map(|execution| ExecutionRow {
                index: execution.index + 1,
                action: execution.action.replace('_', " "),
                succeeded: execution.succeeded,
                detail: execution.detail.clone(),
                at: execution.at.to_string(),
            })
            .collect(),
        vote_open,
        changing,
        no_vote_reason,
        block_allowed: charter.block_allowed,
        tally_bar_width: TALLY_BAR_WIDTH,
        notice,
        error,
        reason,
    };
    page(status, &view)
}

pub async fn proposal_page(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    Query(params): Query<ProposalParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match params.done.as_deref() {
        Some("vote") => Some("Your organisation's vote is counted.".to_owned()),
        _ => None,
    };
    proposal_view(&state, &session, request_id, &id, notice, None).await
}

#[derive(Deserialize)]
pub struct VoteForm {
    csrf_token: String,
    choice: String,
    #[serde(default)]
    reason: String,
}

portal_form!(VoteForm, incomplete("vote form"));

/// Casts the acting organisation's vote, then shows the proposal with a notice, or with the
/// application's reason when it refused (closed, outside the electorate, final, no blocks).
pub async fn vote(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, VoteForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let voted = async {
        let proposal: ProposalId = id.parse()?;
        let choice = parse_choice(&form.choice)?;
        state.app.vote(&call, proposal, choice, &form.reason).await
    }
    .await;
    match voted {
        Ok(proposal) => {
            Redirect::to(&format!("/proposals/{}?done=vote", proposal.id)).into_response()
        }
        Err(error @ Error::NotFound { .. }) => error_page(error, request_id),
        Err(error) => match alert_text(&error) {
            Some(text) => {
                let status = crate::error::status_of(&error);
                let text = format!("Your vote was not counted: {text}");
                proposal_view(
                    &state,
                    &session,
                    request_id,
                    &id,
                    None,
                    Some((status, text, form.reason)),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}
