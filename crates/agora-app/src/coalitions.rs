//! Coalitions: organisations gathered around goals, with pledges, a charter, proposals whose
//! typed actions run when they pass, pooled data held to competition-safe rules, and a register
//! of every decision.
//!
//! A coalition is an organisation of its own (kind `partner`, recorded in `coalitions`), so that
//! it can own pooled datasets, be a party to protocols and hold a treasury account. No person is
//! a member of it: it acts only through passed proposals, with the actor
//! [`Credential::Proposal`], and the authorizer decides those actions like any other.
//! The rules (charter bounds, tally, pledges' activation, goals' roll-up, the register's shape)
//! are pure functions in `agora-coalition`; this module keeps them and the stores in step.

use std::collections::{BTreeMap, BTreeSet};

use agora_coalition::{
    Ballot, Charter, Choice, Clock, Condition, Decision, Delegation, Electorate, GoalNode,
    PledgeState, Tally, TallyRules, VoteWeight,
};
use agora_domain::actor::Acting;
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::dataset::{
    ColumnClass as OwnerClass, ColumnClassing, DatasetName, DatasetStatus, UploadFormat,
};
use agora_domain::ledger::{Currency, TransferKind, TransferResult};
use agora_domain::model::{OrgKind, OrgStatus, Organisation};
use agora_domain::{
    Actor, Credential, Error, GoalId, OrgId, OrgName, PledgeId, ProposalId, ProtocolId, Result,
    Role, Timestamp,
};
use agora_market::accounts::{AccountPurpose, account, account_id};
use agora_query::{AggregateName, AnalysisType, ColumnClass, ColumnRule, DatasetRule, Protocol};
use agora_store::{
    BallotRecord, CoalitionMemberRecord, CoalitionRecord, DelegationRecord, DocRecord,
    FulfilmentRecord, ProposalRecord, WriteTx,
};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{App, Call, Done, event};

/// The query purpose pooled data answers when a coalition names none.
pub const DEFAULT_POOLED_PURPOSE: &str = "coordination";
/// The column of a pooled dataset that the platform fills with the contributing member.
pub const CONTRIBUTOR_COLUMN: &str = "contributor";
/// Limits on what members write.
const TITLE_CHARS_MAX: usize = 200;
const TEXT_CHARS_MAX: usize = 10_000;
const ACTIONS_MAX: usize = 20;
const GOALS_MAX: usize = 200;
/// Ledger transfer code of coalition treasury movements.
const TREASURY_TRANSFER_CODE: u16 = 30;

/// A coalition's document, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CoalitionDoc {
    name: String,
    purpose: String,
    /// The purposes members may declare when they query pooled data.
    query_purposes: Vec<String>,
    charter: Charter,
    /// 1 at founding, one more for each amendment.
    charter_version: u32,
}

/// A goal, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GoalDoc {
    id: GoalId,
    parent: Option<GoalId>,
    title: String,
    metric: String,
    unit: String,
    target: i64,
    weight: u32,
    deadline: Timestamp,
    created_at: Timestamp,
}

/// A pledge, as stored: its state in the rules' terms plus what people read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PledgeDoc {
    state: PledgeState,
    note: String,
    created_at: Timestamp,
}

/// One ballot, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BallotDoc {
    choice: Choice,
    reason: String,
    cast_by: Option<agora_domain::UserId>,
}

/// What a passed proposal does. Each action runs once, in order, and its outcome is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ProposalAction {
    /// Admits an organisation as a member (`role` `member` by default; `stake` weighs its vote
    /// under a charter that weighs by stake).
    AdmitMember {
        org_id: OrgId,
        #[serde(default)]
        steward: bool,
        #[serde(default)]
        stake: i64,
    },
    /// Removes a member, and the delegations from and to it.
    RemoveMember { org_id: OrgId },
    /// Approves a protocol version, with this content hash, in which the coalition is a party.
    AdoptProtocol {
        protocol_id: ProtocolId,
        content_hash: String,
    },
    /// Runs a governed query over the pooled data as the coalition, held to the charter's pooled
    /// rules, and publishes its result on the coalition's page.
    PublishStatistics {
        title: String,
        purpose: String,
        sql: String,
    },
    /// Moves money from the coalition's treasury to an organisation's available balance.
    ReleaseFunds {
        to: OrgId,
        /// Minor units (cents).
        amount: i64,
        currency: String,
        memo: String,
    },
    /// Replaces the charter; needs the charter's amendment threshold.
    AmendCharter {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        charter: serde_json::Value,
    },
}

impl ProposalAction {
    fn kind(&self) -> &'static str {
        match self {
            ProposalAction::AdmitMember { .. } => "admit_member",
            ProposalAction::RemoveMember { .. } => "remove_member",
            ProposalAction::AdoptProtocol { .. } => "adopt_protocol",
            ProposalAction::PublishStatistics { .. } => "publish_statistics",
            ProposalAction::ReleaseFunds { .. } => "release_funds",
            ProposalAction::AmendCharter { .. } => "amend_charter",
        }
    }
}

/// The outcome of one action of an executed proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionView {
    pub index: u32,
    pub action: String,
    pub succeeded: bool,
    /// What it did, or why it failed.
    pub detail: String,
    pub at: Timestamp,
}

/// A proposal, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProposalDoc {
    title: String,
    body: String,
    topic: String,
    actions: Vec<ProposalAction>,
    proposed_by: OrgId,
    /// The electorate frozen when it opened: member → weight.
    electorate: BTreeMap<OrgId, u64>,
    /// The rules frozen when it opened.
    rules: TallyRules,
    early_close: bool,
    quorum_extension_seconds: i64,
    execution_delay_seconds: i64,
    charter_version: u32,
    clock: Clock,
    decided_at: Option<Timestamp>,
    executable_at: Option<Timestamp>,
    /// The tally when it was decided.
    final_tally: Option<Tally>,
    executions: Vec<ExecutionView>,
}

/// A new coalition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewCoalition {
    /// Unique among organisations.
    pub name: String,
    pub purpose: String,
    /// The charter; defaults for every field left out.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub charter: Option<serde_json::Value>,
    /// Purposes members may declare when querying pooled data; default `coordination`.
    #[serde(default)]
    pub query_purposes: Vec<String>,
    #[serde(default)]
    pub goals: Vec<NewGoal>,
}

/// A goal or sub-goal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewGoal {
    pub title: String,
    /// What is counted, such as `masks produced per week`.
    pub metric: String,
    pub unit: String,
    pub target: i64,
    pub deadline: Timestamp,
    /// A sub-goal's parent; its progress rolls up into the parent's.
    #[serde(default)]
    pub parent: Option<GoalId>,
    /// The sub-goal's weight in its parent's average (0 everywhere: a plain average).
    #[serde(default)]
    pub weight: u32,
}

/// A pledge towards a goal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPledge {
    pub goal_id: GoalId,
    pub quantity: i64,
    pub due: Timestamp,
    /// `{"others_at_least": {"count": 3}}` or `{"total_at_least": {"quantity": 100000}}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub condition: Option<Condition>,
    #[serde(default)]
    pub note: String,
}

/// A proposal to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewProposal {
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// The topic delegations follow (`membership`, `data`, `funds`…); default `general`.
    #[serde(default)]
    pub topic: Option<String>,
    pub actions: Vec<ProposalAction>,
    /// Within the charter's bounds; default the charter's default.
    #[serde(default)]
    pub voting_seconds: Option<i64>,
}

/// A member organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoalitionMemberView {
    pub org_id: OrgId,
    pub name: String,
    pub role: String,
    pub stake: i64,
    pub joined_at: Timestamp,
}

/// A goal and its progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoalView {
    pub id: GoalId,
    pub parent: Option<GoalId>,
    pub title: String,
    pub metric: String,
    pub unit: String,
    pub target: i64,
    pub weight: u32,
    pub deadline: Timestamp,
    /// Active pledges' quantities (the sub-goals' included).
    pub pledged: i64,
    pub fulfilled: i64,
    /// Progress in basis points (10,000 = the target); a parent's is its sub-goals' weighted average.
    pub pledged_bps: u32,
    pub fulfilled_bps: u32,
    /// Pledged and fulfilled over time, one point per change.
    pub history: Vec<ProgressPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressPoint {
    pub at: Timestamp,
    pub pledged: i64,
    pub fulfilled: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PledgeView {
    pub id: PledgeId,
    pub goal_id: GoalId,
    pub member: OrgId,
    pub member_name: String,
    pub quantity: i64,
    pub fulfilled: i64,
    pub due: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub condition: Option<Condition>,
    /// Unconditional, or its condition is met.
    pub active: bool,
    /// Due and not fulfilled in full.
    pub overdue: bool,
    pub note: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DelegationView {
    pub from: OrgId,
    pub to: OrgId,
    /// Absent: every topic.
    pub topic: Option<String>,
    pub since: Timestamp,
}

/// Statistics a passed proposal published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicationView {
    pub id: String,
    pub proposal_id: ProposalId,
    pub title: String,
    pub sql: String,
    pub columns: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<Object>>))]
    pub rows: Vec<Vec<serde_json::Value>>,
    pub rows_suppressed: u64,
    pub published_at: Timestamp,
}

/// A coalition, whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoalitionView {
    pub id: OrgId,
    pub name: String,
    pub purpose: String,
    pub founded_by: OrgId,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub charter: serde_json::Value,
    pub charter_version: u32,
    pub query_purposes: Vec<String>,
    pub members: Vec<CoalitionMemberView>,
    pub goals: Vec<GoalView>,
    pub pledges: Vec<PledgeView>,
    pub delegations: Vec<DelegationView>,
    /// Pooled datasets the coalition holds.
    pub pooled_datasets: Vec<String>,
    pub publications: Vec<PublicationView>,
    /// Treasury balances by currency, in minor units.
    pub treasury: BTreeMap<String, i64>,
    pub created_at: Timestamp,
}

/// A coalition in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoalitionSummary {
    pub id: OrgId,
    pub name: String,
    pub purpose: String,
    pub members: usize,
    pub created_at: Timestamp,
}

/// One counted vote of a tally.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountedVoteView {
    pub voter: OrgId,
    pub choice: String,
    pub weight: u64,
    /// The delegation path from the voter to the member who voted, when delegated.
    pub via: Vec<OrgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TallyView {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
    pub block: u64,
    /// The electorate's power frozen when the proposal opened.
    pub total_power: u64,
    pub support_reached: bool,
    pub quorum_reached: bool,
    pub votes: Vec<CountedVoteView>,
}

/// A proposal with its live (or final) tally.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalView {
    pub id: ProposalId,
    pub coalition_id: OrgId,
    pub number: i64,
    pub title: String,
    pub body: String,
    pub topic: String,
    pub actions: Vec<ProposalAction>,
    pub proposed_by: OrgId,
    /// `open`, `passed`, `rejected`, `blocked`, `executed` or `execution_failed`.
    pub status: String,
    /// What passing needs, in words.
    pub requirement: String,
    pub opened_at: Timestamp,
    pub closes_at: Timestamp,
    pub extended: bool,
    pub decided_at: Option<Timestamp>,
    pub executable_at: Option<Timestamp>,
    pub electorate_size: usize,
    pub tally: TallyView,
    pub executions: Vec<ExecutionView>,
    pub ballots: usize,
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(internal(what))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(internal(what))
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(field, "must not hold control characters"));
    }
    Ok(value.to_owned())
}

fn topic_of(topic: Option<&str>) -> Result<String> {
    let topic = topic.unwrap_or("general").trim();
    if topic.is_empty()
        || topic.len() > 40
        || !topic
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            "topic",
            "must be 1 to 40 lower-case letters, digits, `-` or `_`",
        ));
    }
    Ok(topic.to_owned())
}

fn parse_charter(value: Option<&serde_json::Value>) -> Result<Charter> {
    let charter: Charter = match value {
        None => Charter::default(),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| Error::invalid("charter", e.to_string()))?,
    };
    charter.validate()?;
    Ok(charter)
}

fn choice_name(choice: Choice) -> &'static str {
    match choice {
        Choice::Yes => "yes",
        Choice::No => "no",
        Choice::Abstain => "abstain",
        Choice::Block => "block",
    }
}

/// Parses a vote's choice.
pub fn parse_choice(text: &str) -> Result<Choice> {
    match text {
        "yes" => Ok(Choice::Yes),
        "no" => Ok(Choice::No),
        "abstain" => Ok(Choice::Abstain),
        "block" => Ok(Choice::Block),
        other => Err(Error::invalid(
            "choice",
            format!("`{other}` is not one of yes, no, abstain, block"),
        )),
    }
}

fn tally_view(tally: &Tally) -> TallyView {
    TallyView {
        yes: tally.yes,
        no: tally.no,
        abstain: tally.abstain,
        block: tally.block,
        total_power: tally.total_power,
        support_reached: tally.support_reached,
        quorum_reached: tally.quorum_reached,
        votes: tally
            .votes
            .iter()
            .map(|vote| CountedVoteView {
                voter: vote.voter,
                choice: choice_name(vote.choice).to_owned(),
                weight: vote.weight,
                via: vote.via.clone(),
            })
            .collect(),
    }
}

fn requirement(doc: &ProposalDoc) -> String {
    let support = f64::from(doc.rules.support_threshold_bps) / 100.0;
    let quorum = f64::from(doc.rules.quorum_bps) / 100.0;
    let power: u64 = doc.electorate.values().sum();
    let mut text = format!(
        "support (yes over yes and no) above {support}%, and participation of at least {quorum}% of {power} votes held by the {} members when it opened",
        doc.electorate.len()
    );
    if doc.rules.block_allowed {
        text.push_str("; any block fails it");
    }
    text
}

/// A ledger transfer id derived from a proposal's action, so that running it again moves nothing.
fn action_transfer_id(proposal: ProposalId, index: usize) -> agora_domain::ledger::TransferId {
    let digest = Sha256::new()
        .chain_update(b"agora-coalition/transfer/v1")
        .chain_update(proposal.as_uuid().as_bytes())
        .chain_update((index as u64).to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    agora_domain::ledger::TransferId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// The protocol the engine holds queries over a coalition's pooled datasets to: aggregates only,
/// the charter's contributor count, contributor share and data age, for the members (and the
/// coalition itself, for statistics it publishes). It is built from the charter for each query,
/// never stored: only a charter amendment changes it.
fn pooled_protocol(
    coalition: OrgId,
    doc: &CoalitionDoc,
    datasets: &[agora_domain::dataset::Dataset],
    now: Timestamp,
) -> Protocol {
    let rules = &doc.charter.pooled;
    Protocol {
        name: format!(
            "{} pooled data (charter v{})",
            doc.name, doc.charter_version
        ),
        version: doc.charter_version,
        provider: coalition,
        consumers: vec![coalition],
        purposes: doc.query_purposes.clone(),
        analysis: AnalysisType::Aggregate,
        datasets: datasets
            .iter()
            .map(|dataset| DatasetRule {
                name: dataset.name.to_string(),
                columns: dataset
                    .schema
                    .columns
                    .iter()
                    .map(|column| {
                        let class = match dataset.classes.class_of(&column.name) {
                            OwnerClass::Dimension => ColumnClass::Dimension,
                            OwnerClass::Metric => ColumnClass::Metric,
                            OwnerClass::JoinKey => ColumnClass::JoinKey,
                            OwnerClass::EntityId => ColumnClass::EntityId,
                            OwnerClass::Contributor => ColumnClass::Contributor,
                            OwnerClass::Timestamp => ColumnClass::Timestamp,
                            OwnerClass::Blocked => ColumnClass::Blocked,
                        };
                        ColumnRule {
                            name: column.name.clone(),
                            class,
                            allowed: class != ColumnClass::Blocked,
                        }
                    })
                    .collect(),
            })
            .collect(),
        output: agora_query::OutputConstraints {
            min_entities_per_row: None,
            min_contributors_per_statistic: Some(rules.min_contributors),
            contributor_share_percent_max: Some(rules.contributor_share_bps_max.div_ceil(100)),
            min_data_age_days: Some(rules.min_age_days),
            allowed_aggregates: Some(BTreeSet::from([
                AggregateName::Count,
                AggregateName::CountDistinct,
                AggregateName::Sum,
                AggregateName::Avg,
            ])),
            suppressed_remainder: None,
        },
        joins: Default::default(),
        recipients: Vec::new(),
        quotas: Default::default(),
        validity: agora_query::Validity {
            not_before: Timestamp::from_micros(0),
            not_after: now.plus_seconds(86_400),
        },
    }
}

struct Loaded {
    record: CoalitionRecord,
    doc: CoalitionDoc,
    members: Vec<CoalitionMemberRecord>,
}

impl Loaded {
    fn resource(&self) -> Resource {
        Resource::Coalition {
            id: self.record.id,
            members: self.members.iter().map(|m| m.org_id).collect(),
            stewards: self
                .members
                .iter()
                .filter(|m| m.role == "steward")
                .map(|m| m.org_id)
                .collect(),
        }
    }

    fn is_member(&self, org: OrgId) -> bool {
        self.members.iter().any(|m| m.org_id == org)
    }
}

impl App {
    async fn load_coalition(&self, id: OrgId) -> Result<Loaded> {
        let record = self
            .store()
            .coalition(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("coalition {id}")))?;
        let doc = from_json(&record.doc_json, "stored coalition")?;
        let members = self.store().coalition_members(id).await?;
        Ok(Loaded {
            record,
            doc,
            members,
        })
    }

    /// The organisation the caller acts for, which must be a member.
    fn acting_member(call: &Call<'_>, coalition: &Loaded) -> Result<OrgId> {
        let org = call.actor.org_id().ok_or_else(|| {
            Error::forbidden(
                "coalition-decisions-stay-with-the-members",
                "act for a member organisation",
            )
        })?;
        if !coalition.is_member(org) {
            return Err(Error::forbidden(
                "coalition-decisions-stay-with-the-members",
                format!("{org} is not a member of coalition {}", coalition.record.id),
            ));
        }
        Ok(org)
    }

    /// Commits a coalition change with its audit entry and one event for the coalition (whose
    /// feed every member may read through the API) and one for the organisation that acted.
    #[allow(clippy::too_many_arguments)]
    async fn commit_coalition<T: Serialize>(
        &self,
        tx: WriteTx,
        call: &Call<'_>,
        action: Action,
        resource: &Resource,
        event_type: &'static str,
        subject: String,
        data: serde_json::Value,
        response: &T,
    ) -> Result<()> {
        let coalition = resource.org_id();
        let mut events = vec![event(event_type, subject.clone(), coalition, data.clone())];
        if let Some(actor_org) = call.actor.org_id()
            && Some(actor_org) != coalition
        {
            events.push(event(event_type, subject, Some(actor_org), data.clone()));
        }
        let done = Done {
            action: action.as_str(),
            resource,
            detail: serde_json::json!({ "event": event_type, "data": data }),
            events,
        };
        self.commit(tx, None, call, done, response).await
    }

    /// Founds a coalition: an organisation of its own, with the founder as its first steward.
    pub async fn found_coalition(
        &self,
        call: &Call<'_>,
        input: NewCoalition,
    ) -> Result<CoalitionView> {
        let action = Action::CoalitionCreate;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let founder = call.actor.org_id().ok_or_else(|| {
                Error::invalid("organisation", "found a coalition while acting for an organisation")
            })?;
            let name = OrgName::parse(&input.name)?;
            let purpose = text("purpose", &input.purpose, TEXT_CHARS_MAX, true)?;
            let charter = parse_charter(input.charter.as_ref())?;
            let mut query_purposes = input.query_purposes.clone();
            if query_purposes.is_empty() {
                query_purposes.push(DEFAULT_POOLED_PURPOSE.to_owned());
            }
            for purpose in &query_purposes {
                if !agora_query::protocol::is_purpose_name(purpose) {
                    return Err(Error::invalid(
                        "query_purposes",
                        format!("`{purpose}` is not a purpose name (lower-case letters, digits, `-`, `_`)"),
                    ));
                }
            }
            if input.goals.len() > GOALS_MAX {
                return Err(Error::invalid("goals", format!("at most {GOALS_MAX}")));
            }
            if self.store().org_by_name(&name).await?.is_some() {
                return Err(Error::Conflict(format!(
                    "an organisation named `{name}` exists; choose another name"
                )));
            }
            let now = Timestamp::now();
            let id = OrgId::new();
            let doc = CoalitionDoc {
                name: name.to_string(),
                purpose,
                query_purposes,
                charter,
                charter_version: 1,
            };
            let mut goals = Vec::new();
            for goal in &input.goals {
                if goal.parent.is_some() {
                    return Err(Error::invalid(
                        "goals",
                        "sub-goals are added once their parent exists (POST …/goals)",
                    ));
                }
                goals.push(self.goal_doc(goal, &[], now)?);
            }
            let mut tx = self.store().write().await?;
            tx.insert_org(&Organisation {
                id,
                name,
                kind: OrgKind::Partner,
                status: OrgStatus::Active,
                created_at: now,
            })
            .await?;
            let record = CoalitionRecord {
                id,
                founded_by: founder,
                doc_json: to_json(&doc, "coalition")?,
                created_at: now,
                updated_at: now,
            };
            tx.insert_coalition(&record).await?;
            tx.upsert_coalition_member(&CoalitionMemberRecord {
                coalition_id: id,
                org_id: founder,
                role: "steward".into(),
                stake: 0,
                joined_at: now,
            })
            .await?;
            for goal in &goals {
                tx.insert_coalition_goal(&DocRecord {
                    id: goal.id,
                    coalition_id: id,
                    doc_json: to_json(goal, "goal")?,
                    at: now,
                })
                .await?;
            }
            let resource = Resource::Coalition {
                id,
                members: vec![founder],
                stewards: vec![founder],
            };
            let data = serde_json::json!({ "coalition_id": id, "name": doc.name, "founded_by": founder });
            self.commit_coalition(
                tx,
                call,
                action,
                &resource,
                "coalition.founded",
                id.to_string(),
                data,
                &serde_json::Value::Null,
            )
            .await?;
            self.coalition_view(&self.load_coalition(id).await?).await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    fn goal_doc(&self, goal: &NewGoal, existing: &[GoalDoc], now: Timestamp) -> Result<GoalDoc> {
        let title = text("title", &goal.title, TITLE_CHARS_MAX, true)?;
        let metric = text("metric", &goal.metric, TITLE_CHARS_MAX, true)?;
        let unit = text("unit", &goal.unit, 40, true)?;
        if goal.target <= 0 {
            return Err(Error::invalid("target", "must be above 0"));
        }
        if goal.deadline <= now {
            return Err(Error::invalid("deadline", "must be in the future"));
        }
        if let Some(parent) = goal.parent
            && !existing.iter().any(|g| g.id == parent)
        {
            return Err(Error::invalid(
                "parent",
                format!("no goal {parent} in this coalition"),
            ));
        }
        Ok(GoalDoc {
            id: GoalId::new(),
            parent: goal.parent,
            title,
            metric,
            unit,
            target: goal.target,
            weight: goal.weight,
            deadline: goal.deadline,
            created_at: now,
        })
    }

    /// Every coalition, with its member count.
    pub async fn coalitions(&self, call: &Call<'_>) -> Result<Vec<CoalitionSummary>> {
        let mut summaries = Vec::new();
        for record in self.store().coalitions().await? {
            let loaded = self.load_coalition(record.id).await?;
            self.authorize(
                call,
                Action::CoalitionRead,
                &loaded.resource(),
                &Context::default(),
            )
            .await?;
            summaries.push(CoalitionSummary {
                id: record.id,
                name: loaded.doc.name.clone(),
                purpose: loaded.doc.purpose.clone(),
                members: loaded.members.len(),
                created_at: record.created_at,
            });
        }
        Ok(summaries)
    }

    pub async fn coalition(&self, call: &Call<'_>, id: OrgId) -> Result<CoalitionView> {
        let loaded = self.load_coalition(id).await?;
        self.authorize(
            call,
            Action::CoalitionRead,
            &loaded.resource(),
            &Context::default(),
        )
        .await?;
        self.coalition_view(&loaded).await
    }

    async fn org_name(&self, id: OrgId) -> Result<String> {
        Ok(self
            .store()
            .org(id)
            .await?
            .map(|org| org.name.to_string())
            .unwrap_or_else(|| id.to_string()))
    }

    async fn coalition_view(&self, loaded: &Loaded) -> Result<CoalitionView> {
        let id = loaded.record.id;
        let now = Timestamp::now();
        let mut names = BTreeMap::new();
        for member in &loaded.members {
            names.insert(member.org_id, self.org_name(member.org_id).await?);
        }
        let goals: Vec<GoalDoc> = self
            .store()
            .coalition_goals(id)
            .await?
            .iter()
            .map(|record| from_json(&record.doc_json, "goal"))
            .collect::<Result<_>>()?;
        let pledges: Vec<PledgeDoc> = self
            .store()
            .coalition_pledges(id)
            .await?
            .iter()
            .map(|record| from_json(&record.doc_json, "pledge"))
            .collect::<Result<_>>()?;
        let states: Vec<PledgeState> = pledges.iter().map(|p| p.state.clone()).collect();
        let active = agora_coalition::active_pledges(&states);
        let nodes: Vec<GoalNode> = goals
            .iter()
            .map(|goal| GoalNode {
                id: goal.id,
                parent: goal.parent,
                target: goal.target,
                weight: goal.weight,
            })
            .collect();
        let sums: Vec<(GoalId, i64, i64)> = states
            .iter()
            .filter(|p| active.contains(&p.id))
            .map(|p| (p.goal, p.quantity, p.fulfilled))
            .collect();
        let progress = agora_coalition::progress(&nodes, &sums)?;
        let fulfilments = self.store().coalition_fulfilments(id).await?;
        let mut pledge_views = Vec::new();
        for pledge in &pledges {
            let state = &pledge.state;
            let member_name = match names.get(&state.member) {
                Some(name) => name.clone(),
                None => self.org_name(state.member).await?,
            };
            pledge_views.push(PledgeView {
                id: state.id,
                goal_id: state.goal,
                member: state.member,
                member_name,
                quantity: state.quantity,
                fulfilled: state.fulfilled,
                due: state.due,
                condition: state.condition.clone(),
                active: active.contains(&state.id),
                overdue: agora_coalition::is_overdue(state, now),
                note: pledge.note.clone(),
                created_at: pledge.created_at,
            });
        }
        let goal_views = goals
            .iter()
            .map(|goal| {
                let p = progress.get(&goal.id);
                GoalView {
                    id: goal.id,
                    parent: goal.parent,
                    title: goal.title.clone(),
                    metric: goal.metric.clone(),
                    unit: goal.unit.clone(),
                    target: goal.target,
                    weight: goal.weight,
                    deadline: goal.deadline,
                    pledged: p.map_or(0, |p| p.pledged),
                    fulfilled: p.map_or(0, |p| p.fulfilled),
                    pledged_bps: p.map_or(0, |p| p.pledged_bps),
                    fulfilled_bps: p.map_or(0, |p| p.fulfilled_bps),
                    history: goal_history(goal.id, &goals, &pledges, &active, &fulfilments),
                }
            })
            .collect();
        let delegations = self
            .store()
            .coalition_delegations(id)
            .await?
            .into_iter()
            .map(|d| DelegationView {
                from: d.from,
                to: d.to,
                topic: (!d.topic.is_empty()).then_some(d.topic),
                since: d.created_at,
            })
            .collect();
        let pooled_datasets = self
            .store()
            .datasets(id, None, 200)
            .await?
            .into_iter()
            .filter(|d| d.status == DatasetStatus::Active)
            .map(|d| d.name.to_string())
            .collect();
        let publications = self
            .store()
            .coalition_publications(id)
            .await?
            .iter()
            .map(|record| from_json(&record.doc_json, "publication"))
            .collect::<Result<_>>()?;
        let mut treasury = BTreeMap::new();
        if let Some(writer) = self.inner.ledger.get() {
            for code in ["EUR", "USD"] {
                let currency = Currency::parse(code)?;
                let purpose = AccountPurpose::CoalitionTreasury { coalition: id };
                if let Some(account) = writer.account(account_id(&purpose, currency)).await? {
                    treasury.insert(
                        code.to_owned(),
                        account.credits_posted - account.debits_posted,
                    );
                }
            }
        }
        Ok(CoalitionView {
            id,
            name: loaded.doc.name.clone(),
            purpose: loaded.doc.purpose.clone(),
            founded_by: loaded.record.founded_by,
            charter: serde_json::to_value(&loaded.doc.charter).map_err(internal("charter"))?,
            charter_version: loaded.doc.charter_version,
            query_purposes: loaded.doc.query_purposes.clone(),
            members: loaded
                .members
                .iter()
                .map(|m| CoalitionMemberView {
                    org_id: m.org_id,
                    name: names.get(&m.org_id).cloned().unwrap_or_default(),
                    role: m.role.clone(),
                    stake: m.stake,
                    joined_at: m.joined_at,
                })
                .collect(),
            goals: goal_views,
            pledges: pledge_views,
            delegations,
            pooled_datasets,
            publications,
            treasury,
            created_at: loaded.record.created_at,
        })
    }

    /// Adds a goal or sub-goal (a steward's step).
    pub async fn add_goal(&self, call: &Call<'_>, id: OrgId, input: NewGoal) -> Result<GoalId> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionSteward;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let existing: Vec<GoalDoc> = self
                .store()
                .coalition_goals(id)
                .await?
                .iter()
                .map(|record| from_json(&record.doc_json, "goal"))
                .collect::<Result<_>>()?;
            if existing.len() >= GOALS_MAX {
                return Err(Error::limit("goals", format!("a coalition has at most {GOALS_MAX} goals")));
            }
            let now = Timestamp::now();
            let goal = self.goal_doc(&input, &existing, now)?;
            let mut tx = self.store().write().await?;
            tx.insert_coalition_goal(&DocRecord {
                id: goal.id,
                coalition_id: id,
                doc_json: to_json(&goal, "goal")?,
                at: now,
            })
            .await?;
            let data = serde_json::json!({ "coalition_id": id, "goal_id": goal.id, "title": goal.title, "target": goal.target, "unit": goal.unit });
            self.commit_coalition(tx, call, action, &resource, "coalition.goal_added", goal.id.to_string(), data, &goal.id)
                .await?;
            Ok(goal.id)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Pledges a quantity towards a goal for the caller's organisation.
    pub async fn pledge(&self, call: &Call<'_>, id: OrgId, input: NewPledge) -> Result<PledgeId> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let member = Self::acting_member(call, &loaded)?;
            let now = Timestamp::now();
            agora_coalition::validate_pledge(
                input.quantity,
                input.due,
                now,
                input.condition.as_ref(),
            )?;
            let goals = self.store().coalition_goals(id).await?;
            if !goals.iter().any(|g| g.id == input.goal_id) {
                return Err(Error::invalid(
                    "goal_id",
                    format!("no goal {} in this coalition", input.goal_id),
                ));
            }
            let note = text("note", &input.note, TEXT_CHARS_MAX, false)?;
            let state = PledgeState {
                id: PledgeId::new(),
                member,
                goal: input.goal_id,
                quantity: input.quantity,
                due: input.due,
                condition: input.condition.clone(),
                fulfilled: 0,
                withdrawn: false,
            };
            let doc = PledgeDoc {
                state: state.clone(),
                note,
                created_at: now,
            };
            let mut tx = self.store().write().await?;
            tx.insert_coalition_pledge(
                &DocRecord {
                    id: state.id,
                    coalition_id: id,
                    doc_json: to_json(&doc, "pledge")?,
                    at: now,
                },
                member,
            )
            .await?;
            let data = serde_json::json!({
                "coalition_id": id, "pledge_id": state.id, "member": member, "goal_id": state.goal,
                "quantity": state.quantity, "due": state.due, "condition": state.condition,
            });
            self.commit_coalition(
                tx,
                call,
                action,
                &resource,
                "coalition.pledged",
                state.id.to_string(),
                data,
                &state.id,
            )
            .await?;
            Ok(state.id)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Reports a quantity delivered against the caller's own pledge.
    pub async fn report_fulfilment(
        &self,
        call: &Call<'_>,
        id: OrgId,
        pledge: PledgeId,
        quantity: i64,
        note: &str,
    ) -> Result<()> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let member = Self::acting_member(call, &loaded)?;
            if quantity <= 0 {
                return Err(Error::invalid("quantity", "must be above 0"));
            }
            let note = text("note", note, TEXT_CHARS_MAX, false)?;
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let record = tx
                .lock_coalition_pledge(pledge)
                .await?
                .filter(|record| record.coalition_id == id)
                .ok_or_else(|| Error::not_found(format!("pledge {pledge}")))?;
            let mut doc: PledgeDoc = from_json(&record.doc_json, "pledge")?;
            if doc.state.member != member {
                return Err(Error::forbidden(
                    "own-pledges",
                    "a member reports fulfilment of its own pledges only",
                ));
            }
            if doc.state.withdrawn {
                return Err(Error::Conflict("the pledge was withdrawn".into()));
            }
            doc.state.fulfilled = doc
                .state
                .fulfilled
                .checked_add(quantity)
                .ok_or_else(|| Error::invalid("quantity", "too large"))?;
            tx.update_coalition_pledge(pledge, &to_json(&doc, "pledge")?, now)
                .await?;
            tx.insert_coalition_fulfilment(
                id,
                &FulfilmentRecord {
                    pledge_id: pledge,
                    quantity,
                    note: note.clone(),
                    reported_at: now,
                },
            )
            .await?;
            let data = serde_json::json!({
                "coalition_id": id, "pledge_id": pledge, "member": member, "quantity": quantity,
                "fulfilled": doc.state.fulfilled, "of": doc.state.quantity, "note": note,
            });
            self.commit_coalition(
                tx,
                call,
                action,
                &resource,
                "coalition.fulfilled",
                pledge.to_string(),
                data,
                &(),
            )
            .await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Sets or clears the caller's delegation on `topic` (all topics when `None`). A delegation
    /// that would close a cycle is refused.
    pub async fn delegate(
        &self,
        call: &Call<'_>,
        id: OrgId,
        topic: Option<&str>,
        to: Option<OrgId>,
    ) -> Result<()> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let from = Self::acting_member(call, &loaded)?;
            if !loaded.doc.charter.delegation {
                return Err(Error::Conflict("this coalition's charter does not allow delegation".into()));
            }
            let topic = match topic {
                None => String::new(),
                Some(topic) => topic_of(Some(topic))?,
            };
            if let Some(to) = to {
                if to == from {
                    return Err(Error::invalid("to", "a member cannot delegate to itself"));
                }
                if !loaded.is_member(to) {
                    return Err(Error::invalid("to", format!("{to} is not a member of this coalition")));
                }
            }
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let mut delegations = tx.coalition_delegations(id).await?;
            delegations.retain(|d| !(d.from == from && d.topic == topic));
            if let Some(to) = to {
                delegations.push(DelegationRecord { from, topic: topic.clone(), to, created_at: now });
                if let Some(cycle) = delegation_cycle(&delegations, from, &topic) {
                    return Err(Error::Invalid {
                        field: "to".into(),
                        message: format!(
                            "this delegation would close a cycle ({}); a vote must end with a member who votes",
                            cycle.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ")
                        ),
                    });
                }
            }
            tx.set_coalition_delegation(id, from, &topic, to, now).await?;
            let data = serde_json::json!({ "coalition_id": id, "from": from, "to": to, "topic": (!topic.is_empty()).then_some(&topic) });
            self.commit_coalition(tx, call, action, &resource, "coalition.delegated", from.to_string(), data, &())
                .await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Opens a proposal; the electorate and the rules are frozen now.
    pub async fn propose(
        &self,
        call: &Call<'_>,
        id: OrgId,
        input: NewProposal,
    ) -> Result<ProposalView> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let proposer = Self::acting_member(call, &loaded)?;
            let title = text("title", &input.title, TITLE_CHARS_MAX, true)?;
            let body = text("body", &input.body, TEXT_CHARS_MAX, false)?;
            let topic = topic_of(input.topic.as_deref())?;
            if input.actions.is_empty() || input.actions.len() > ACTIONS_MAX {
                return Err(Error::invalid(
                    "actions",
                    format!("give 1 to {ACTIONS_MAX} actions"),
                ));
            }
            let mut amends = false;
            for (index, proposed) in input.actions.iter().enumerate() {
                amends |= matches!(proposed, ProposalAction::AmendCharter { .. });
                self.check_action(&loaded, proposed)
                    .await
                    .map_err(|error| match error {
                        Error::Invalid { field, message } => Error::Invalid {
                            field: format!("actions[{index}].{field}"),
                            message,
                        },
                        other => other,
                    })?;
            }
            let charter = &loaded.doc.charter;
            let now = Timestamp::now();
            let clock = agora_coalition::open_clock(charter, now, input.voting_seconds)?;
            let closes_at = clock.closes_at;
            let electorate = self.electorate(&loaded).await?;
            let doc = ProposalDoc {
                title,
                body,
                topic,
                actions: input.actions.clone(),
                proposed_by: proposer,
                electorate: electorate.weights.clone(),
                rules: charter.rules_for(amends),
                early_close: charter.early_close,
                quorum_extension_seconds: charter.quorum_extension_seconds,
                execution_delay_seconds: charter.execution_delay_seconds,
                charter_version: loaded.doc.charter_version,
                clock,
                decided_at: None,
                executable_at: None,
                final_tally: None,
                executions: Vec::new(),
            };
            let mut tx = self.store().write().await?;
            let number = tx.next_proposal_number(id).await?;
            let record = ProposalRecord {
                id: ProposalId::new(),
                coalition_id: id,
                number,
                status: "open".into(),
                closes_at,
                revision: 0,
                doc_json: to_json(&doc, "proposal")?,
                created_at: now,
                updated_at: now,
            };
            tx.insert_proposal(&record).await?;
            let view = self.proposal_view(&record, &doc, &[], &[])?;
            let data = serde_json::json!({
                "coalition_id": id, "proposal_id": record.id, "number": number, "title": doc.title,
                "actions": doc.actions, "electorate": doc.electorate, "rules": doc.rules,
                "closes_at": closes_at,
            });
            self.commit_coalition(
                tx,
                call,
                action,
                &resource,
                "proposal.opened",
                record.id.to_string(),
                data,
                &view,
            )
            .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// The electorate as it stands now, weighed by the charter.
    async fn electorate(&self, loaded: &Loaded) -> Result<Electorate> {
        let mut weights = BTreeMap::new();
        match loaded.doc.charter.vote_weight {
            VoteWeight::OnePerMember => {
                for member in &loaded.members {
                    weights.insert(member.org_id, 1);
                }
            }
            VoteWeight::ByStake => {
                for member in &loaded.members {
                    weights.insert(member.org_id, u64::try_from(member.stake).unwrap_or(0));
                }
            }
            VoteWeight::ByPledge => {
                let states: Vec<PledgeState> = self
                    .store()
                    .coalition_pledges(loaded.record.id)
                    .await?
                    .iter()
                    .map(|record| {
                        from_json::<PledgeDoc>(&record.doc_json, "pledge").map(|d| d.state)
                    })
                    .collect::<Result<_>>()?;
                let active = agora_coalition::active_pledges(&states);
                for member in &loaded.members {
                    let pledged: i64 = states
                        .iter()
                        .filter(|p| p.member == member.org_id && active.contains(&p.id))
                        .map(|p| p.quantity)
                        .sum();
                    weights.insert(member.org_id, u64::try_from(pledged).unwrap_or(0));
                }
            }
        }
        Ok(Electorate { weights })
    }

    /// Checks an action when it is proposed, so that members vote on something that can run.
    async fn check_action(&self, loaded: &Loaded, action: &ProposalAction) -> Result<()> {
        match action {
            ProposalAction::AdmitMember { org_id, stake, .. } => {
                let org =
                    self.store().org(*org_id).await?.ok_or_else(|| {
                        Error::invalid("org_id", format!("no organisation {org_id}"))
                    })?;
                if org.kind == OrgKind::Operator || self.store().coalition(*org_id).await?.is_some()
                {
                    return Err(Error::invalid("org_id", "admit partner organisations only"));
                }
                if loaded.is_member(*org_id) {
                    return Err(Error::invalid(
                        "org_id",
                        format!("{} is a member already", org.name),
                    ));
                }
                if *stake < 0 {
                    return Err(Error::invalid("stake", "must not be negative"));
                }
            }
            ProposalAction::RemoveMember { org_id } => {
                if !loaded.is_member(*org_id) {
                    return Err(Error::invalid(
                        "org_id",
                        format!("{org_id} is not a member"),
                    ));
                }
                if loaded.members.len() == 1 {
                    return Err(Error::invalid(
                        "org_id",
                        "a coalition keeps at least one member",
                    ));
                }
            }
            ProposalAction::AdoptProtocol {
                protocol_id,
                content_hash,
            } => {
                let protocol = self.store().protocol(*protocol_id).await?.ok_or_else(|| {
                    Error::invalid("protocol_id", format!("no protocol {protocol_id}"))
                })?;
                let latest = self
                    .store()
                    .protocol_version(*protocol_id, protocol.latest_version)
                    .await?
                    .ok_or_else(|| Error::Internal("protocol without versions".into()))?;
                let document = Protocol::from_json(&latest.document_json)
                    .map_err(|e| Error::Internal(format!("stored protocol: {e}")))?;
                if !document.parties().contains(&loaded.record.id) {
                    return Err(Error::invalid(
                        "protocol_id",
                        "the coalition is not a party to this protocol's latest version",
                    ));
                }
                if latest.content_hash != *content_hash {
                    return Err(Error::invalid(
                        "content_hash",
                        format!(
                            "the latest version's hash is {}; members vote on the exact version",
                            latest.content_hash
                        ),
                    ));
                }
            }
            ProposalAction::PublishStatistics {
                title,
                purpose,
                sql,
            } => {
                text("title", title, TITLE_CHARS_MAX, true)?;
                if !loaded.doc.query_purposes.contains(purpose) {
                    return Err(Error::invalid(
                        "purpose",
                        format!(
                            "pooled data answers the purposes {:?}",
                            loaded.doc.query_purposes
                        ),
                    ));
                }
                text("sql", sql, self.config().query.sql_bytes_max, true)?;
            }
            ProposalAction::ReleaseFunds {
                to,
                amount,
                currency,
                memo,
            } => {
                if *amount <= 0 {
                    return Err(Error::invalid("amount", "must be above 0"));
                }
                Currency::parse(currency)?;
                text("memo", memo, TITLE_CHARS_MAX, false)?;
                if self.store().org(*to).await?.is_none() {
                    return Err(Error::invalid("to", format!("no organisation {to}")));
                }
            }
            ProposalAction::AmendCharter { charter } => {
                parse_charter(Some(charter))?;
            }
        }
        Ok(())
    }

    fn proposal_view(
        &self,
        record: &ProposalRecord,
        doc: &ProposalDoc,
        ballots: &[BallotRecord],
        delegations: &[DelegationRecord],
    ) -> Result<ProposalView> {
        // Until it is decided, the tally follows the delegations as they stand.
        let tally = match &doc.final_tally {
            Some(tally) => tally.clone(),
            None => self.live_tally_from(record.coalition_id, doc, ballots, delegations)?,
        };
        Ok(ProposalView {
            id: record.id,
            coalition_id: record.coalition_id,
            number: record.number,
            title: doc.title.clone(),
            body: doc.body.clone(),
            topic: doc.topic.clone(),
            actions: doc.actions.clone(),
            proposed_by: doc.proposed_by,
            status: record.status.clone(),
            requirement: requirement(doc),
            opened_at: doc.clock.opened_at,
            closes_at: doc.clock.closes_at,
            extended: doc.clock.extended,
            decided_at: doc.decided_at,
            executable_at: doc.executable_at,
            electorate_size: doc.electorate.len(),
            tally: tally_view(&tally),
            executions: doc.executions.clone(),
            ballots: ballots.len(),
        })
    }

    fn live_tally_from(
        &self,
        _coalition: OrgId,
        doc: &ProposalDoc,
        ballots: &[BallotRecord],
        delegations: &[DelegationRecord],
    ) -> Result<Tally> {
        let ballots: Vec<Ballot> = ballots
            .iter()
            .map(|b| {
                let d: BallotDoc = from_json(&b.doc_json, "ballot")?;
                Ok(Ballot {
                    voter: b.voter,
                    choice: d.choice,
                    at: b.cast_at,
                })
            })
            .collect::<Result<_>>()?;
        let delegations: Vec<Delegation> = delegations
            .iter()
            .map(|d| Delegation {
                from: d.from,
                to: d.to,
                topic: (!d.topic.is_empty()).then(|| d.topic.clone()),
            })
            .collect();
        Ok(agora_coalition::tally_rules(
            &doc.rules,
            &Electorate {
                weights: doc.electorate.clone(),
            },
            &delegations,
            &doc.topic,
            &ballots,
        ))
    }

    /// A proposal with its current tally (delegations as they stand now, until it closes).
    pub async fn proposal(&self, call: &Call<'_>, id: ProposalId) -> Result<ProposalView> {
        let record = self
            .store()
            .proposal(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("proposal {id}")))?;
        let loaded = self.load_coalition(record.coalition_id).await?;
        self.authorize(
            call,
            Action::CoalitionRead,
            &loaded.resource(),
            &Context::default(),
        )
        .await?;
        let doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
        let ballots = self.store().proposal_ballots(id).await?;
        let delegations = self
            .store()
            .coalition_delegations(record.coalition_id)
            .await?;
        let view = self.proposal_view(&record, &doc, &ballots, &delegations)?;
        Ok(view)
    }

    /// A coalition's proposals, newest first, with their tallies.
    pub async fn proposals(&self, call: &Call<'_>, coalition: OrgId) -> Result<Vec<ProposalView>> {
        let loaded = self.load_coalition(coalition).await?;
        self.authorize(
            call,
            Action::CoalitionRead,
            &loaded.resource(),
            &Context::default(),
        )
        .await?;
        let delegations = self.store().coalition_delegations(coalition).await?;
        let mut views = Vec::new();
        for record in self.store().proposals(coalition).await? {
            let doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
            let ballots = self.store().proposal_ballots(record.id).await?;
            views.push(self.proposal_view(&record, &doc, &ballots, &delegations)?);
        }
        Ok(views)
    }

    /// Casts (or changes) the caller's organisation's vote. Refused after the close, from an
    /// organisation outside the electorate frozen at the opening, and for a block the charter
    /// does not allow.
    pub async fn vote(
        &self,
        call: &Call<'_>,
        proposal: ProposalId,
        choice: Choice,
        reason: &str,
    ) -> Result<ProposalView> {
        let record = self
            .store()
            .proposal(proposal)
            .await?
            .ok_or_else(|| Error::not_found(format!("proposal {proposal}")))?;
        let loaded = self.load_coalition(record.coalition_id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let voter = Self::acting_member(call, &loaded)?;
            let reason = text("reason", reason, TEXT_CHARS_MAX, false)?;
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let mut record = tx
                .lock_proposal(proposal)
                .await?
                .ok_or_else(|| Error::not_found(format!("proposal {proposal}")))?;
            let mut doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
            if record.status != "open" || now >= doc.clock.closes_at {
                return Err(Error::Conflict(format!(
                    "voting on proposal #{} closed at {}; votes after the close are not counted",
                    record.number,
                    doc.clock.closes_at
                )));
            }
            if !doc.electorate.contains_key(&voter) {
                return Err(Error::forbidden(
                    "electorate-frozen-at-opening",
                    format!(
                        "{voter} was not a member when proposal #{} opened; the electorate is frozen then",
                        record.number
                    ),
                ));
            }
            if choice == Choice::Block && !doc.rules.block_allowed {
                return Err(Error::invalid("choice", "this coalition's charter does not allow blocks; vote no"));
            }
            let ballots = tx.proposal_ballots(proposal).await?;
            if !doc.rules.votes_changeable && ballots.iter().any(|b| b.voter == voter) {
                return Err(Error::Conflict(
                    "this coalition's charter makes a vote final once cast".into(),
                ));
            }
            let delegations = tx.coalition_delegations(record.coalition_id).await?;
            let before = self.live_tally_from(record.coalition_id, &doc, &ballots, &delegations)?;
            let ballot = BallotRecord {
                seq: ballots.len() as i64 + 1,
                voter,
                doc_json: to_json(&BallotDoc { choice, reason: reason.clone(), cast_by: call.actor.user_id }, "ballot")?,
                cast_at: now,
            };
            tx.insert_ballot(proposal, &ballot).await?;
            let mut all = ballots;
            all.push(ballot.clone());
            let after = self.live_tally_from(record.coalition_id, &doc, &all, &delegations)?;
            let charter_view = self.frozen_charter(&doc);
            doc.clock = agora_coalition::after_vote(&charter_view, &doc.clock, &before, &after, now);
            let decision = agora_coalition::decision(&doc.rules, &after, doc.early_close, &doc.clock, now);
            if decision != Decision::Undecided {
                self.decide(&mut record, &mut doc, decision, after.clone(), now);
            }
            record.closes_at = doc.clock.closes_at;
            record.doc_json = to_json(&doc, "proposal")?;
            record.updated_at = now;
            tx.update_proposal(&record).await?;
            let view = self.proposal_view(&record, &doc, &all, &delegations)?;
            let vote = after.votes.iter().find(|v| v.voter == voter);
            let data = serde_json::json!({
                "coalition_id": record.coalition_id, "proposal_id": proposal, "number": record.number,
                "voter": voter, "choice": choice_name(choice), "weight": vote.map(|v| v.weight),
                "reason": reason, "tally": { "yes": after.yes, "no": after.no, "abstain": after.abstain, "block": after.block, "total_power": after.total_power },
                "closes_at": doc.clock.closes_at, "status": record.status,
            });
            self.commit_coalition(tx, call, action, &resource, "proposal.voted", proposal.to_string(), data, &view)
                .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// The charter fields the clock functions read, as frozen in the proposal.
    fn frozen_charter(&self, doc: &ProposalDoc) -> Charter {
        Charter {
            early_close: doc.early_close,
            quorum_extension_seconds: doc.quorum_extension_seconds,
            execution_delay_seconds: doc.execution_delay_seconds,
            support_threshold_bps: doc.rules.support_threshold_bps,
            quorum_bps: doc.rules.quorum_bps,
            block_allowed: doc.rules.block_allowed,
            delegation: doc.rules.delegation,
            votes_changeable: doc.rules.votes_changeable,
            ..Charter::default()
        }
    }

    fn decide(
        &self,
        record: &mut ProposalRecord,
        doc: &mut ProposalDoc,
        decision: Decision,
        tally: Tally,
        now: Timestamp,
    ) {
        record.status = match decision {
            Decision::Passes => "passed",
            Decision::Blocked => "blocked",
            Decision::Fails | Decision::Undecided => "rejected",
        }
        .into();
        doc.decided_at = Some(now);
        if decision == Decision::Passes {
            doc.executable_at = Some(now.plus_seconds(doc.execution_delay_seconds));
        }
        if now < doc.clock.closes_at {
            // Closed early: the outcome could not change any more.
            doc.clock.closes_at = now;
        }
        doc.final_tally = Some(tally);
    }

    /// Closes the proposals whose voting ended and runs the actions of passed ones that are due.
    /// The server's housekeeping calls it as the system; members may call it for one coalition.
    pub async fn close_due_proposals(&self, call: &Call<'_>, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for id in self.store().proposals_due("open", now).await? {
            if self.close_proposal(call, id, now).await? {
                done += 1;
            }
        }
        for record in self
            .store()
            .proposals_due("passed", Timestamp::from_micros(i64::MAX))
            .await?
        {
            let doc: ProposalDoc = from_json(
                &self
                    .store()
                    .proposal(record)
                    .await?
                    .map(|r| r.doc_json)
                    .unwrap_or_default(),
                "proposal",
            )?;
            if doc.executable_at.is_some_and(|at| at <= now) {
                self.execute_proposal(call, record).await?;
                done += 1;
            }
        }
        Ok(done)
    }

    async fn close_proposal(
        &self,
        call: &Call<'_>,
        id: ProposalId,
        now: Timestamp,
    ) -> Result<bool> {
        let Some(record) = self.store().proposal(id).await? else {
            return Ok(false);
        };
        let loaded = self.load_coalition(record.coalition_id).await?;
        let action = Action::CoalitionExecute;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let mut tx = self.store().write().await?;
        let Some(mut record) = tx.lock_proposal(id).await? else {
            return Ok(false);
        };
        let mut doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
        if record.status != "open" || now < doc.clock.closes_at {
            return Ok(false);
        }
        let ballots = tx.proposal_ballots(id).await?;
        let delegations = tx.coalition_delegations(record.coalition_id).await?;
        let tally = self.live_tally_from(record.coalition_id, &doc, &ballots, &delegations)?;
        let decision =
            agora_coalition::decision(&doc.rules, &tally, doc.early_close, &doc.clock, now);
        self.decide(&mut record, &mut doc, decision, tally.clone(), now);
        record.doc_json = to_json(&doc, "proposal")?;
        record.updated_at = now;
        tx.update_proposal(&record).await?;
        let data = serde_json::json!({
            "coalition_id": record.coalition_id, "proposal_id": id, "number": record.number,
            "status": record.status, "tally": { "yes": tally.yes, "no": tally.no, "abstain": tally.abstain, "block": tally.block, "total_power": tally.total_power, "support_reached": tally.support_reached, "quorum_reached": tally.quorum_reached },
            "executable_at": doc.executable_at,
        });
        self.commit_coalition(
            tx,
            call,
            action,
            &resource,
            "proposal.decided",
            id.to_string(),
            data,
            &(),
        )
        .await?;
        Ok(true)
    }

    /// Runs a passed proposal's actions, once its execution delay is over. Each action's outcome
    /// is recorded; one that fails does not stop the others (Aragon's allow-failure). Every action
    /// is idempotent (ids derive from the proposal), so running again after a crash repeats nothing.
    pub async fn execute_proposal(&self, call: &Call<'_>, id: ProposalId) -> Result<ProposalView> {
        let record = self
            .store()
            .proposal(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("proposal {id}")))?;
        let loaded = self.load_coalition(record.coalition_id).await?;
        let action = Action::CoalitionExecute;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let now = Timestamp::now();
            let doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
            if record.status != "passed" {
                return Err(Error::Conflict(format!(
                    "proposal #{} is {}; only a passed proposal runs its actions",
                    record.number, record.status
                )));
            }
            if doc.executable_at.is_none_or(|at| now < at) {
                return Err(Error::Conflict(format!(
                    "proposal #{} runs its actions from {} (the charter's execution delay)",
                    record.number,
                    doc.executable_at.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
            let coalition_actor = Actor {
                user_id: None,
                acting: Some(Acting {
                    org_id: record.coalition_id,
                    role: Role::Owner,
                    is_operator: false,
                }),
                credential: Credential::Proposal(id),
            };
            let coalition_call = Call::new(&coalition_actor, call.request_id);
            let mut executions = Vec::new();
            for (index, proposed) in doc.actions.iter().enumerate() {
                let outcome = self
                    .run_action(&coalition_call, &loaded, id, index, proposed)
                    .await;
                let (succeeded, detail) = match outcome {
                    Ok(detail) => (true, detail),
                    Err(error) => (false, error.to_string()),
                };
                executions.push(ExecutionView {
                    index: index as u32,
                    action: proposed.kind().to_owned(),
                    succeeded,
                    detail,
                    at: Timestamp::now(),
                });
            }
            let mut tx = self.store().write().await?;
            let mut record = tx
                .lock_proposal(id)
                .await?
                .ok_or_else(|| Error::not_found(format!("proposal {id}")))?;
            let mut doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
            if record.status != "passed" {
                return Err(Error::Conflict(format!(
                    "proposal #{} was executed meanwhile",
                    record.number
                )));
            }
            let failed = executions.iter().filter(|e| !e.succeeded).count();
            record.status = if failed == 0 {
                "executed"
            } else {
                "execution_failed"
            }
            .into();
            doc.executions = executions;
            record.doc_json = to_json(&doc, "proposal")?;
            record.updated_at = Timestamp::now();
            tx.update_proposal(&record).await?;
            let ballots = self.store().proposal_ballots(id).await?;
            let view = self.proposal_view(&record, &doc, &ballots, &[])?;
            let data = serde_json::json!({
                "coalition_id": record.coalition_id, "proposal_id": id, "number": record.number,
                "status": record.status, "executions": doc.executions,
            });
            // The coalition's resource after its actions (a member admitted may now read).
            let resource = self.load_coalition(record.coalition_id).await?.resource();
            self.commit_coalition(
                tx,
                call,
                action,
                &resource,
                "proposal.executed",
                id.to_string(),
                data,
                &view,
            )
            .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Runs one action as the coalition; answers what it did.
    async fn run_action(
        &self,
        call: &Call<'_>,
        loaded: &Loaded,
        proposal: ProposalId,
        index: usize,
        action: &ProposalAction,
    ) -> Result<String> {
        let coalition = loaded.record.id;
        let now = Timestamp::now();
        match action {
            ProposalAction::AdmitMember {
                org_id,
                steward,
                stake,
            } => {
                let org = self
                    .store()
                    .org(*org_id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("organisation {org_id}")))?;
                let mut tx = self.store().write().await?;
                let joined_at = self
                    .store()
                    .coalition_member(coalition, *org_id)
                    .await?
                    .map_or(now, |m| m.joined_at);
                tx.upsert_coalition_member(&CoalitionMemberRecord {
                    coalition_id: coalition,
                    org_id: *org_id,
                    role: if *steward { "steward" } else { "member" }.into(),
                    stake: *stake,
                    joined_at,
                })
                .await?;
                let resource = loaded.resource();
                let data = serde_json::json!({ "coalition_id": coalition, "proposal_id": proposal, "org_id": org_id, "name": org.name });
                self.commit_coalition(
                    tx,
                    call,
                    Action::CoalitionExecute,
                    &resource,
                    "coalition.member_admitted",
                    org_id.to_string(),
                    data,
                    &(),
                )
                .await?;
                Ok(format!("admitted {}", org.name))
            }
            ProposalAction::RemoveMember { org_id } => {
                let mut tx = self.store().write().await?;
                let was = tx.delete_coalition_member(coalition, *org_id).await?;
                let resource = loaded.resource();
                let data = serde_json::json!({ "coalition_id": coalition, "proposal_id": proposal, "org_id": org_id });
                self.commit_coalition(
                    tx,
                    call,
                    Action::CoalitionExecute,
                    &resource,
                    "coalition.member_removed",
                    org_id.to_string(),
                    data,
                    &(),
                )
                .await?;
                Ok(if was {
                    format!("removed {org_id}")
                } else {
                    format!("{org_id} was no longer a member")
                })
            }
            ProposalAction::AdoptProtocol {
                protocol_id,
                content_hash,
            } => {
                match self
                    .approve_protocol(call, *protocol_id, content_hash)
                    .await
                {
                    Ok(view) => Ok(format!(
                        "approved version {} of protocol {} ({})",
                        view.latest_version, view.name, view.latest.state
                    )),
                    Err(Error::Conflict(message)) if message.contains("already") => {
                        Ok(format!("already approved: {message}"))
                    }
                    Err(error) => Err(error),
                }
            }
            ProposalAction::PublishStatistics {
                title,
                purpose,
                sql,
            } => {
                let publication_id = format!("pub_{}_{index}", proposal.as_uuid().simple());
                if self
                    .store()
                    .coalition_publications(coalition)
                    .await?
                    .iter()
                    .any(|p| p.id == publication_id)
                {
                    return Ok("published before".into());
                }
                let answer = self
                    .run_query(
                        call,
                        coalition,
                        crate::QueryInput {
                            purpose: purpose.clone(),
                            sql: sql.clone(),
                            as_of: BTreeMap::new(),
                        },
                    )
                    .await?;
                let publication = PublicationView {
                    id: publication_id.clone(),
                    proposal_id: proposal,
                    title: title.clone(),
                    sql: sql.clone(),
                    columns: answer.columns.iter().map(|c| c.name.clone()).collect(),
                    rows: answer.rows.clone(),
                    rows_suppressed: answer.report.rows_suppressed,
                    published_at: now,
                };
                let mut tx = self.store().write().await?;
                tx.insert_coalition_publication(
                    &DocRecord {
                        id: publication_id,
                        coalition_id: coalition,
                        doc_json: to_json(&publication, "publication")?,
                        at: now,
                    },
                    proposal,
                )
                .await?;
                let resource = loaded.resource();
                let data = serde_json::json!({ "coalition_id": coalition, "proposal_id": proposal, "title": title, "query_id": answer.id, "rows": publication.rows.len(), "rows_suppressed": publication.rows_suppressed });
                self.commit_coalition(
                    tx,
                    call,
                    Action::CoalitionExecute,
                    &resource,
                    "coalition.statistics_published",
                    publication.id.clone(),
                    data,
                    &(),
                )
                .await?;
                Ok(format!(
                    "published `{title}`: {} rows, {} withheld by the pooled rules (query {})",
                    publication.rows.len(),
                    publication.rows_suppressed,
                    answer.id
                ))
            }
            ProposalAction::ReleaseFunds {
                to,
                amount,
                currency,
                memo,
            } => {
                let currency = Currency::parse(currency)?;
                let from = AccountPurpose::CoalitionTreasury { coalition };
                let into = AccountPurpose::SellerAvailable { seller: *to };
                let ledger = self.ledger().await?;
                ledger
                    .create_accounts(vec![
                        account(&from, currency, now),
                        account(&into, currency, now),
                    ])
                    .await?;
                let transfer = agora_domain::ledger::Transfer {
                    id: action_transfer_id(proposal, index),
                    debit_account_id: account_id(&from, currency),
                    credit_account_id: account_id(&into, currency),
                    amount: *amount,
                    currency,
                    code: TREASURY_TRANSFER_CODE,
                    kind: TransferKind::Single,
                    linked: false,
                };
                let results = ledger.transfer(vec![transfer]).await?;
                match results.first() {
                    Some(TransferResult::Created) => {
                        Ok(format!("released {amount} {currency} to {to}: {memo}"))
                    }
                    Some(TransferResult::Exists) => {
                        Ok(format!("released before: {amount} {currency} to {to}"))
                    }
                    Some(other) => Err(Error::Unprocessable(format!(
                        "the treasury could not pay: {other}"
                    ))),
                    None => Err(Error::Internal("the ledger answered nothing".into())),
                }
            }
            ProposalAction::AmendCharter { charter } => {
                let charter = parse_charter(Some(charter))?;
                let current = self.load_coalition(coalition).await?;
                let changes = current.doc.charter.changes(&charter);
                let mut doc = current.doc.clone();
                doc.charter = charter;
                doc.charter_version += 1;
                let mut tx = self.store().write().await?;
                tx.update_coalition(
                    coalition,
                    current.record.updated_at,
                    &to_json(&doc, "coalition")?,
                    now,
                )
                .await?;
                let resource = current.resource();
                let data = serde_json::json!({ "coalition_id": coalition, "proposal_id": proposal, "charter_version": doc.charter_version, "changes": changes });
                self.commit_coalition(
                    tx,
                    call,
                    Action::CoalitionExecute,
                    &resource,
                    "coalition.charter_amended",
                    coalition.to_string(),
                    data,
                    &(),
                )
                .await?;
                Ok(format!(
                    "charter version {}: {}",
                    doc.charter_version,
                    changes.join(", ")
                ))
            }
        }
    }

    /// Moves money from the caller's available balance into the coalition's treasury.
    pub async fn fund_treasury(
        &self,
        call: &Call<'_>,
        id: OrgId,
        amount: i64,
        currency: &str,
        reference: &str,
    ) -> Result<i64> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionParticipate;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let member = Self::acting_member(call, &loaded)?;
            if amount <= 0 {
                return Err(Error::invalid("amount", "must be above 0"));
            }
            let reference = text("reference", reference, 100, true)?;
            let currency = Currency::parse(currency)?;
            let now = Timestamp::now();
            let from = AccountPurpose::SellerAvailable { seller: member };
            let into = AccountPurpose::CoalitionTreasury { coalition: id };
            let ledger = self.ledger().await?;
            ledger
                .create_accounts(vec![account(&from, currency, now), account(&into, currency, now)])
                .await?;
            let digest = Sha256::new()
                .chain_update(b"agora-coalition/funding/v1")
                .chain_update(id.as_uuid().as_bytes())
                .chain_update(member.as_uuid().as_bytes())
                .chain_update(reference.as_bytes())
                .finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            let transfer = agora_domain::ledger::Transfer {
                id: agora_domain::ledger::TransferId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid()),
                debit_account_id: account_id(&from, currency),
                credit_account_id: account_id(&into, currency),
                amount,
                currency,
                code: TREASURY_TRANSFER_CODE,
                kind: TransferKind::Single,
                linked: false,
            };
            match ledger.transfer(vec![transfer]).await?.first() {
                Some(TransferResult::Created | TransferResult::Exists) => {}
                Some(other) => {
                    return Err(Error::Unprocessable(format!("the transfer was refused: {other}")));
                }
                None => return Err(Error::Internal("the ledger answered nothing".into())),
            }
            let balance = ledger
                .account(account_id(&into, currency))
                .await?
                .map_or(0, |a| a.credits_posted - a.debits_posted);
            let tx = self.store().write().await?;
            let data = serde_json::json!({ "coalition_id": id, "member": member, "amount": amount, "currency": currency.to_string(), "reference": reference, "treasury": balance });
            self.commit_coalition(tx, call, action, &resource, "coalition.funded", id.to_string(), data, &balance)
                .await?;
            Ok(balance)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Contributes the caller's rows to a pooled dataset (created by the first contribution).
    /// The file must not hold a `contributor` column: the platform sets it to the member.
    pub async fn contribute<S, B, E>(
        &self,
        call: &Call<'_>,
        id: OrgId,
        dataset: &str,
        format: UploadFormat,
        body: S,
    ) -> Result<crate::UploadOutcome>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionContribute;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let member = Self::acting_member(call, &loaded)?;
            let name = DatasetName::parse(dataset)?;
            let stamp = agora_data::Stamp {
                column: CONTRIBUTOR_COLUMN.to_owned(),
                value: member.to_string(),
            };
            self.upload_stamped(call, id, name, format, body, stamp)
                .await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Sets the classes of a pooled dataset's columns (a steward's step). The contributor column
    /// keeps its class.
    pub async fn classify_pooled(
        &self,
        call: &Call<'_>,
        id: OrgId,
        dataset: &str,
        mut classes: Vec<ColumnClassing>,
    ) -> Result<crate::DatasetView> {
        let loaded = self.load_coalition(id).await?;
        let action = Action::CoalitionSteward;
        let resource = loaded.resource();
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            classes.retain(|classing| classing.column != CONTRIBUTOR_COLUMN);
            classes.push(ColumnClassing {
                column: CONTRIBUTOR_COLUMN.to_owned(),
                class: OwnerClass::Contributor,
            });
            self.set_dataset_classes(call, id, dataset, classes).await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// The coalitions `org` is a member of, and the protocols that hold queries over their pooled
    /// data, for the query engine.
    pub(crate) async fn coalition_scope(
        &self,
        org: OrgId,
        now: Timestamp,
    ) -> Result<(Vec<OrgId>, Vec<Protocol>)> {
        let mut coalitions = self.store().coalitions_of_member(org).await?;
        if self.store().coalition(org).await?.is_some() {
            coalitions.push(org);
        }
        let mut protocols = Vec::new();
        for coalition in &coalitions {
            let loaded = self.load_coalition(*coalition).await?;
            let datasets: Vec<_> = self
                .store()
                .datasets(*coalition, None, 200)
                .await?
                .into_iter()
                .filter(|d| d.status == DatasetStatus::Active)
                .collect();
            if !datasets.is_empty() {
                protocols.push(pooled_protocol(*coalition, &loaded.doc, &datasets, now));
            }
        }
        Ok((coalitions, protocols))
    }

    /// The decision register in the shape of Popolo's `Motion` and `VoteEvent`.
    pub async fn coalition_register(
        &self,
        call: &Call<'_>,
        id: OrgId,
    ) -> Result<serde_json::Value> {
        let loaded = self.load_coalition(id).await?;
        self.authorize(
            call,
            Action::CoalitionRead,
            &loaded.resource(),
            &Context::default(),
        )
        .await?;
        let mut motions = Vec::new();
        let mut vote_events = Vec::new();
        for record in self.store().proposals(id).await? {
            let doc: ProposalDoc = from_json(&record.doc_json, "proposal")?;
            let ballots = self.store().proposal_ballots(record.id).await?;
            let delegations = self.store().coalition_delegations(id).await?;
            let tally = match &doc.final_tally {
                Some(tally) => tally.clone(),
                None => self.live_tally_from(id, &doc, &ballots, &delegations)?,
            };
            let decision = match record.status.as_str() {
                "open" => Decision::Undecided,
                "passed" | "executed" | "execution_failed" => Decision::Passes,
                "blocked" => Decision::Blocked,
                _ => Decision::Fails,
            };
            let motion = agora_coalition::motion(
                &record.id.to_string(),
                &id,
                &doc.title,
                &doc.actions
                    .iter()
                    .map(|a| a.kind().to_owned())
                    .collect::<Vec<_>>(),
                doc.clock.opened_at,
                requirement(&doc),
                decision,
            );
            let vote_event =
                agora_coalition::vote_event(&record.id.to_string(), &doc.clock, decision, &tally);
            motions.push(serde_json::json!({
                "motion": motion,
                "proposal_number": record.number,
                "status": record.status,
                "executions": doc.executions,
                "ballots": ballots.iter().map(|b| {
                    let d: BallotDoc = serde_json::from_str(&b.doc_json).unwrap_or(BallotDoc { choice: Choice::Abstain, reason: String::new(), cast_by: None });
                    serde_json::json!({ "seq": b.seq, "voter_id": b.voter, "option": choice_name(d.choice), "reason": d.reason, "cast_at": b.cast_at })
                }).collect::<Vec<_>>(),
            }));
            vote_events.push(vote_event);
        }
        Ok(serde_json::json!({
            "organization": { "id": id, "name": loaded.doc.name, "classification": "coalition" },
            "motions": motions,
            "vote_events": vote_events,
        }))
    }
}

/// Pledged and fulfilled over time for one goal (its sub-goals' pledges included).
fn goal_history(
    goal: GoalId,
    goals: &[GoalDoc],
    pledges: &[PledgeDoc],
    active: &BTreeSet<PledgeId>,
    fulfilments: &[FulfilmentRecord],
) -> Vec<ProgressPoint> {
    let mut within = BTreeSet::from([goal]);
    loop {
        let before = within.len();
        for g in goals {
            if g.parent.is_some_and(|p| within.contains(&p)) {
                within.insert(g.id);
            }
        }
        if within.len() == before {
            break;
        }
    }
    let counted: BTreeMap<PledgeId, &PledgeDoc> = pledges
        .iter()
        .filter(|p| within.contains(&p.state.goal) && active.contains(&p.state.id))
        .map(|p| (p.state.id, p))
        .collect();
    let mut changes: Vec<(Timestamp, i64, i64)> = counted
        .values()
        .map(|p| (p.created_at, p.state.quantity, 0))
        .collect();
    changes.extend(
        fulfilments
            .iter()
            .filter(|f| counted.contains_key(&f.pledge_id))
            .map(|f| (f.reported_at, 0, f.quantity)),
    );
    changes.sort_by_key(|c| c.0);
    let (mut pledged, mut fulfilled) = (0i64, 0i64);
    changes
        .into_iter()
        .map(|(at, p, f)| {
            pledged += p;
            fulfilled += f;
            ProgressPoint {
                at,
                pledged,
                fulfilled,
            }
        })
        .collect()
}

/// The cycle a delegation graph holds through `from` on `topic`, if any, following each
/// member's delegation for the topic, or its every-topic delegation. For an every-topic
/// delegation (`topic` empty) every topic in use is checked.
fn delegation_cycle(
    delegations: &[DelegationRecord],
    from: OrgId,
    topic: &str,
) -> Option<Vec<OrgId>> {
    let mut topics: BTreeSet<&str> = BTreeSet::from([topic]);
    if topic.is_empty() {
        topics.extend(delegations.iter().map(|d| d.topic.as_str()));
    }
    for topic in topics {
        let next = |member: OrgId| -> Option<OrgId> {
            delegations
                .iter()
                .find(|d| d.from == member && d.topic == topic && !topic.is_empty())
                .or_else(|| {
                    delegations
                        .iter()
                        .find(|d| d.from == member && d.topic.is_empty())
                })
                .map(|d| d.to)
        };
        let mut path = vec![from];
        let mut current = from;
        while let Some(to) = next(current) {
            path.push(to);
            if to == from {
                return Some(path);
            }
            if path.len() > delegations.len() + 1 {
                break;
            }
            current = to;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(from: OrgId, topic: &str, to: OrgId) -> DelegationRecord {
        DelegationRecord {
            from,
            topic: topic.into(),
            to,
            created_at: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn a_delegation_cycle_is_found_through_topic_and_general_delegations() {
        let (a, b, c) = (OrgId::new(), OrgId::new(), OrgId::new());
        // a → b on funds, b → c on everything, c → a on everything: a cycle on funds.
        let graph = vec![record(a, "funds", b), record(b, "", c), record(c, "", a)];
        assert_eq!(delegation_cycle(&graph, a, "funds"), Some(vec![a, b, c, a]));
        // b's every-topic delegation closes the same cycle on `funds`.
        assert!(delegation_cycle(&graph, b, "").is_some());
        // Without c → a there is no cycle.
        let graph = vec![record(a, "funds", b), record(b, "", c)];
        assert_eq!(delegation_cycle(&graph, a, "funds"), None);
        // A topic delegation overrides the every-topic one: b votes itself on `data`.
        let graph = vec![record(a, "", b), record(b, "data", c), record(b, "", a)];
        assert!(delegation_cycle(&graph, a, "").is_some());
        assert_eq!(delegation_cycle(&graph, b, "data"), None);
    }
}
