//! Data-sharing protocols: a provider drafts a document over its own datasets, proposes it, every
//! party approves that exact version (approvals bind to its content hash), and queries run under
//! it while it is active. Any party can pause it, the provider can revoke it, a change is a new
//! version that needs every approval again, and it expires at the end of its window.
//!
//! The rules of each step are `agora-query`'s (`ProtocolVersion`); this module loads and stores
//! versions, authorizes each step (`protocol.create` on the provider, `protocol.manage` for the
//! provider's steps, `protocol.decide` for a party's, `protocol.read` to read), checks documents
//! against the provider's datasets, and writes every step with its audit entry and event.

use std::collections::BTreeSet;

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::dataset::{ColumnClass as OwnerClass, Dataset, DatasetName};
use agora_domain::{Error, OrgId, ProtocolId, Result, Timestamp};
use agora_query::{ColumnClass, Protocol, ProtocolState, ProtocolVersion, Transition};
use agora_store::{ProtocolRecord, ProtocolVersionRecord, WriteTx};
use serde::{Deserialize, Serialize};

use crate::{App, Call, Done, Page, event};

/// How a protocol document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DocumentFormat {
    Toml,
    Json,
}

/// Reads a protocol document in TOML or JSON; without a format, text starting with `{` is JSON.
pub fn parse_document(text: &str, format: Option<DocumentFormat>) -> Result<Protocol> {
    let format = format.unwrap_or(if text.trim_start().starts_with('{') {
        DocumentFormat::Json
    } else {
        DocumentFormat::Toml
    });
    match format {
        DocumentFormat::Toml => Protocol::from_toml(text),
        DocumentFormat::Json => Protocol::from_json(text),
    }
    .map_err(query_error)
}

/// One version of a protocol as the parties see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolVersionView {
    pub version: i64,
    /// `draft`, `proposed`, `active`, `paused`, `revoked`, `expired` or `superseded`.
    pub state: String,
    /// The SHA-256 of the canonical document: what an approval names.
    pub content_hash: String,
    /// The document as canonical JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub document: serde_json::Value,
    pub approvals: Vec<OrgId>,
    /// Parties whose approval this version still needs.
    pub awaiting: Vec<OrgId>,
    pub paused_by: Vec<OrgId>,
    /// Why the engine paused it, when no party did (a dataset it uses was deleted).
    pub suspended_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A protocol with its newest version and the one queries run under.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolView {
    pub id: ProtocolId,
    pub name: String,
    pub provider: OrgId,
    pub latest_version: i64,
    pub active_version: Option<i64>,
    pub latest: ProtocolVersionView,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Two versions of a protocol and the lines that differ between their documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolDiff {
    pub from: i64,
    pub to: i64,
    /// A unified diff of the two documents, pretty-printed as JSON: lines starting with `-`
    /// are only in `from`, `+` only in `to`, a space in both.
    pub lines: Vec<String>,
}

/// A version loaded from the store, with its document read back.
struct Loaded {
    record: ProtocolVersionRecord,
    version: ProtocolVersion,
}

fn state_name(state: ProtocolState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_state(text: &str) -> Result<ProtocolState> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| Error::Internal(format!("unknown protocol state `{text}`")))
}

/// Maps the query crate's errors onto the domain's.
pub(crate) fn query_error(error: agora_query::Error) -> Error {
    match error {
        agora_query::Error::Invalid { field, message } => Error::Invalid { field, message },
        agora_query::Error::Refused(refusal) => Error::Refused {
            rule: refusal.rule.to_owned(),
            expression: refusal.expression,
            message: refusal.message,
        },
        agora_query::Error::Forbidden(message) => Error::forbidden("protocol-lifecycle", message),
        agora_query::Error::Conflict(message) => Error::Conflict(message),
        agora_query::Error::LimitExceeded { limit, message } => Error::LimitExceeded {
            limit: limit.to_owned(),
            message,
        },
        agora_query::Error::QueryFailed { detail } => {
            // The detail can quote shared values (a failed cast names the text): it goes to the
            // log only at debug level, which the default `info` filter leaves out.
            tracing::debug!(%detail, "governed query failed while running");
            Error::Unprocessable(
                "the query failed while running; the engine does not say why, so that errors cannot reveal shared data"
                    .into(),
            )
        }
        agora_query::Error::Internal(message) => Error::Internal(message),
    }
}

fn load(record: ProtocolVersionRecord) -> Result<Loaded> {
    let document = Protocol::from_json(&record.document_json).map_err(|e| {
        Error::Internal(format!(
            "stored protocol {} v{} does not read back: {e}",
            record.protocol_id, record.version
        ))
    })?;
    let version = ProtocolVersion {
        hash: document.content_hash(),
        document,
        state: parse_state(&record.state)?,
        approvals: record.approvals.iter().copied().collect(),
        paused_by: record.paused_by.iter().copied().collect(),
    };
    if version.hash.as_str() != record.content_hash {
        return Err(Error::Internal(format!(
            "stored protocol {} v{} does not match its content hash",
            record.protocol_id, record.version
        )));
    }
    Ok(Loaded { record, version })
}

fn view_version(loaded: &Loaded) -> ProtocolVersionView {
    let parties = loaded.version.document.parties();
    ProtocolVersionView {
        version: loaded.record.version,
        state: loaded.record.state.clone(),
        content_hash: loaded.record.content_hash.clone(),
        document: serde_json::from_str(&loaded.record.document_json)
            .unwrap_or(serde_json::Value::Null),
        approvals: loaded.record.approvals.clone(),
        awaiting: parties
            .difference(&loaded.version.approvals)
            .copied()
            .collect(),
        paused_by: loaded.record.paused_by.clone(),
        suspended_reason: loaded.record.suspended_reason.clone(),
        created_at: loaded.record.created_at,
        updated_at: loaded.record.updated_at,
    }
}

fn record_of(
    protocol_id: ProtocolId,
    version: &ProtocolVersion,
    at: Timestamp,
) -> ProtocolVersionRecord {
    ProtocolVersionRecord {
        protocol_id,
        version: i64::from(version.document.version),
        document_json: version.document.canonical_json(),
        content_hash: version.hash.as_str().to_owned(),
        state: state_name(version.state),
        approvals: version.approvals.iter().copied().collect(),
        paused_by: version.paused_by.iter().copied().collect(),
        suspended_reason: None,
        not_after: version.document.validity.not_after,
        created_at: at,
        updated_at: at,
    }
}

/// A line diff (longest common subsequence) of two texts.
fn diff_lines(from: &str, to: &str) -> Vec<String> {
    let a: Vec<&str> = from.lines().collect();
    let b: Vec<&str> = to.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            lines.push(format!("+{}", b[j]));
            j += 1;
        } else {
            lines.push(format!("-{}", a[i]));
            i += 1;
        }
    }
    lines
}

fn pretty(document_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(document_json)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| document_json.to_owned())
}

/// A column's class in a protocol may keep its owner's class or hide the column; it may never
/// loosen it (an `entity_id` shared as a `dimension` would put people in the output).
fn class_allowed(owner: OwnerClass, shared: ColumnClass, allowed: bool) -> bool {
    if shared == ColumnClass::Blocked || !allowed {
        return true;
    }
    let same = matches!(
        (owner, shared),
        (OwnerClass::Dimension, ColumnClass::Dimension)
            | (OwnerClass::Metric, ColumnClass::Metric)
            | (OwnerClass::JoinKey, ColumnClass::JoinKey)
            | (OwnerClass::EntityId, ColumnClass::EntityId)
            | (OwnerClass::Contributor, ColumnClass::Contributor)
            | (OwnerClass::Timestamp, ColumnClass::Timestamp)
    );
    // A timestamp may be shared as a plain dimension (its minimum data age still applies only
    // where it is a timestamp); nothing else changes class.
    same || (owner == OwnerClass::Timestamp && shared == ColumnClass::Dimension)
}

fn owner_class_name(class: OwnerClass) -> &'static str {
    match class {
        OwnerClass::Dimension => "dimension",
        OwnerClass::Metric => "metric",
        OwnerClass::JoinKey => "join_key",
        OwnerClass::EntityId => "entity_id",
        OwnerClass::Contributor => "contributor",
        OwnerClass::Timestamp => "timestamp",
        OwnerClass::Blocked => "blocked",
    }
}

/// The first problem, with the count of the others, so a draft can be fixed in few passes.
fn combine(problems: Vec<Error>) -> Error {
    let count = problems.len();
    let mut problems = problems.into_iter();
    match problems.next() {
        None => Error::Internal("no problem to report".into()),
        Some(Error::Invalid { field, message }) if count > 1 => Error::Invalid {
            field,
            message: format!(
                "{message} (and {} more: {})",
                count - 1,
                problems
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
        Some(first) => first,
    }
}

impl App {
    /// Checks a document against the provider's live datasets and the directory: every dataset
    /// and column exists, no column is shared looser than its owner classed it, and every
    /// consumer and recipient is an organisation.
    async fn check_document(&self, provider: OrgId, document: &Protocol) -> Result<()> {
        if document.provider != provider {
            return Err(Error::invalid(
                "provider",
                format!(
                    "the document names {} but is drafted by {provider}; a protocol shares only its drafter's data",
                    document.provider
                ),
            ));
        }
        let mut problems = Vec::new();
        let mut schemas = Vec::new();
        for rule in &document.datasets {
            let field = format!("datasets.{}", rule.name);
            let Ok(name) = DatasetName::parse(&rule.name) else {
                problems.push(Error::invalid(field, "is not a dataset name"));
                continue;
            };
            let Some(dataset) = self.store().dataset_by_name(provider, &name).await? else {
                problems.push(Error::invalid(
                    field,
                    format!("the provider has no dataset named `{}`", rule.name),
                ));
                continue;
            };
            schemas.push(agora_query::DatasetSchema {
                name: rule.name.clone(),
                columns: dataset
                    .schema
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            });
            for column in &rule.columns {
                if dataset.schema.column(&column.name).is_none() {
                    continue; // `validate` names it.
                }
                let owner = dataset.classes.class_of(&column.name);
                if !class_allowed(owner, column.class, column.allowed) {
                    problems.push(Error::invalid(
                        format!("datasets.{}.columns.{}", rule.name, column.name),
                        format!(
                            "its owner classes it `{}`; a protocol may keep that class or block the column, not share it as `{}`",
                            owner_class_name(owner),
                            column.class.as_str()
                        ),
                    ));
                }
            }
        }
        if let Err(more) = document.validate(&schemas) {
            problems.extend(more.into_iter().map(query_error));
        }
        for org in document.consumers.iter().chain(&document.recipients) {
            if self.store().org(*org).await?.is_none() {
                problems.push(Error::invalid(
                    "consumers",
                    format!("no organisation {org}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(combine(problems))
        }
    }

    async fn protocol_record(&self, id: ProtocolId) -> Result<ProtocolRecord> {
        self.store()
            .protocol(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("protocol {id}")))
    }

    /// The resource a protocol's decisions are about: its provider and every organisation that
    /// is a party to any of its versions.
    async fn protocol_resource(&self, protocol: &ProtocolRecord) -> Result<Resource> {
        let mut parties = BTreeSet::from([protocol.provider]);
        for record in self.store().protocol_versions(protocol.id).await? {
            parties.extend(load(record)?.version.document.parties());
        }
        Ok(Resource::Protocol {
            id: protocol.id,
            provider: protocol.provider,
            parties: parties.into_iter().collect(),
        })
    }

    async fn latest(&self, protocol: &ProtocolRecord) -> Result<Loaded> {
        let record = self
            .store()
            .protocol_version(protocol.id, protocol.latest_version)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("protocol {} has no latest version", protocol.id))
            })?;
        load(record)
    }

    fn view(&self, protocol: &ProtocolRecord, latest: &Loaded) -> ProtocolView {
        ProtocolView {
            id: protocol.id,
            name: protocol.name.clone(),
            provider: protocol.provider,
            latest_version: protocol.latest_version,
            active_version: protocol.active_version,
            latest: view_version(latest),
            created_at: protocol.created_at,
            updated_at: protocol.updated_at,
        }
    }

    /// Drafts a new protocol over the provider's datasets (version 1, a draft).
    pub async fn create_protocol(
        &self,
        call: &Call<'_>,
        provider: OrgId,
        document: Protocol,
    ) -> Result<ProtocolView> {
        let action = Action::ProtocolCreate;
        let resource = Resource::Organisation(provider);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            if document.version != 1 {
                return Err(Error::invalid(
                    "version",
                    "a new protocol starts at version 1; to change one, revise it",
                ));
            }
            self.check_document(provider, &document).await?;
            let now = Timestamp::now();
            let id = ProtocolId::new();
            let version = ProtocolVersion::draft(document);
            let protocol = ProtocolRecord {
                id,
                name: version.document.name.clone(),
                provider,
                latest_version: 1,
                active_version: None,
                created_at: now,
                updated_at: now,
            };
            let record = record_of(id, &version, now);
            let parties: Vec<OrgId> = version.document.parties().into_iter().collect();
            let mut tx = self.store().write().await?;
            tx.insert_protocol(&protocol, &record, &parties).await?;
            let loaded = Loaded { record, version };
            let view = self.view(&protocol, &loaded);
            let detail = serde_json::json!({ "step": "draft", "version": 1, "content_hash": view.latest.content_hash });
            self.commit_protocol_step(tx, call, &protocol, &parties, "protocol.drafted", detail, &view)
                .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// A change: a new draft version with no approvals. The active version, if any, stays in
    /// force until the new one is approved by every party.
    pub async fn revise_protocol(
        &self,
        call: &Call<'_>,
        id: ProtocolId,
        document: Protocol,
    ) -> Result<ProtocolView> {
        let action = Action::ProtocolManage;
        let protocol = self.protocol_record(id).await?;
        let resource = self.protocol_resource(&protocol).await?;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let latest = self.latest(&protocol).await?;
            if document.name != protocol.name {
                return Err(Error::invalid(
                    "name",
                    format!("a revision keeps the protocol's name `{}`", protocol.name),
                ));
            }
            self.check_document(protocol.provider, &document).await?;
            let next = latest.version.revise(document).map_err(query_error)?;
            let now = Timestamp::now();
            let record = record_of(id, &next, now);
            let parties: Vec<OrgId> = next.document.parties().into_iter().collect();
            let mut tx = self.store().write().await?;
            tx.add_protocol_version(protocol.latest_version, &record, &parties)
                .await?;
            // A draft that was never approved is replaced by its revision.
            if matches!(latest.version.state, ProtocolState::Draft | ProtocolState::Proposed) {
                let mut superseded = latest.record.clone();
                superseded.state = state_name(ProtocolState::Superseded);
                superseded.updated_at = now;
                tx.update_protocol_version(&latest.record, &superseded).await?;
            }
            let mut protocol = protocol.clone();
            protocol.latest_version = record.version;
            protocol.updated_at = now;
            let loaded = Loaded {
                record,
                version: next,
            };
            let view = self.view(&protocol, &loaded);
            let detail = serde_json::json!({ "step": "revise", "version": view.latest_version, "content_hash": view.latest.content_hash });
            self.commit_protocol_step(tx, call, &protocol, &parties, "protocol.revised", detail, &view)
                .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Proposes the latest draft to the parties (the provider's step).
    pub async fn propose_protocol(&self, call: &Call<'_>, id: ProtocolId) -> Result<ProtocolView> {
        self.protocol_step(call, id, Action::ProtocolManage, |version, by, _now| {
            version.propose(by)
        })
        .await
    }

    /// Approves the latest version for the caller's organisation. `content_hash` must be the
    /// hash of the version the approver reviewed: an approval binds to that exact content.
    pub async fn approve_protocol(
        &self,
        call: &Call<'_>,
        id: ProtocolId,
        content_hash: &str,
    ) -> Result<ProtocolView> {
        let hash: agora_query::ContentHash =
            serde_json::from_value(serde_json::Value::String(content_hash.to_owned()))
                .map_err(|_| Error::invalid("content_hash", "is not a content hash"))?;
        self.protocol_step(call, id, Action::ProtocolDecide, move |version, by, now| {
            version.approve(by, &hash, now)
        })
        .await
    }

    /// Pauses the active version for the caller's organisation; queries stop until every party
    /// that paused it resumed.
    pub async fn pause_protocol(&self, call: &Call<'_>, id: ProtocolId) -> Result<ProtocolView> {
        self.protocol_step(call, id, Action::ProtocolDecide, |version, by, _now| {
            version.pause(by)
        })
        .await
    }

    pub async fn resume_protocol(&self, call: &Call<'_>, id: ProtocolId) -> Result<ProtocolView> {
        self.protocol_step(call, id, Action::ProtocolDecide, |version, by, _now| {
            version.resume(by)
        })
        .await
    }

    /// Revokes the protocol (the provider's step): no version of it runs again.
    pub async fn revoke_protocol(&self, call: &Call<'_>, id: ProtocolId) -> Result<ProtocolView> {
        self.protocol_step(call, id, Action::ProtocolManage, |version, by, _now| {
            version.revoke(by)
        })
        .await
    }

    /// Runs one lifecycle step on the version it applies to: the latest for proposing and
    /// approving, the active one for pausing and resuming, every live one for revoking.
    async fn protocol_step<F>(
        &self,
        call: &Call<'_>,
        id: ProtocolId,
        action: Action,
        step: F,
    ) -> Result<ProtocolView>
    where
        F: Fn(&mut ProtocolVersion, OrgId, Timestamp) -> agora_query::Result<Transition>,
    {
        let protocol = self.protocol_record(id).await?;
        let resource = self.protocol_resource(&protocol).await?;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let by = call.actor.org_id().ok_or_else(|| {
                Error::forbidden("protocol-lifecycle", "act for a party organisation")
            })?;
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let latest_record = tx
                .protocol_version(id, protocol.latest_version)
                .await?
                .ok_or_else(|| Error::Internal(format!("protocol {id} has no latest version")))?;
            // Pausing and resuming act on the version in force, which may be older than a
            // pending revision.
            let target = match (&protocol.active_version, parse_state(&latest_record.state)?) {
                (Some(active), ProtocolState::Draft | ProtocolState::Proposed)
                    if *active != protocol.latest_version =>
                {
                    let probe = load(latest_record.clone())?;
                    let mut trial = probe.version.clone();
                    if step(&mut trial, by, now).is_ok() {
                        latest_record
                    } else {
                        tx.protocol_version(id, *active).await?.ok_or_else(|| {
                            Error::Internal(format!("protocol {id} has no version {active}"))
                        })?
                    }
                }
                _ => latest_record,
            };
            let mut loaded = load(target)?;
            let transition = step(&mut loaded.version, by, now).map_err(query_error)?;
            if let Some(reason) = &loaded.record.suspended_reason
                && matches!(transition.step, "propose" | "approve" | "resume")
            {
                return Err(Error::Conflict(format!(
                    "version {} is suspended: {reason}",
                    loaded.record.version
                )));
            }
            let mut after = loaded.record.clone();
            after.state = state_name(loaded.version.state);
            after.approvals = loaded.version.approvals.iter().copied().collect();
            after.paused_by = loaded.version.paused_by.iter().copied().collect();
            if transition.step == "resume" && loaded.version.paused_by.is_empty() {
                after.suspended_reason = None;
            }
            after.updated_at = now;
            tx.update_protocol_version(&loaded.record, &after).await?;
            let mut protocol = protocol.clone();
            protocol.updated_at = now;
            if transition.to == ProtocolState::Active && transition.step == "approve" {
                // The newly approved version replaces the one in force.
                if let Some(previous) = protocol.active_version
                    && previous != after.version
                {
                    let before = tx.protocol_version(id, previous).await?.ok_or_else(|| {
                        Error::Internal(format!("protocol {id} has no version {previous}"))
                    })?;
                    let mut superseded = before.clone();
                    superseded.state = state_name(ProtocolState::Superseded);
                    superseded.updated_at = now;
                    tx.update_protocol_version(&before, &superseded).await?;
                }
                protocol.active_version = Some(after.version);
                tx.set_active_protocol_version(id, protocol.active_version, now)
                    .await?;
            }
            if transition.to == ProtocolState::Revoked {
                // Revoking ends every live version, the one in force included.
                for record in self.store().protocol_versions(id).await? {
                    if record.version == after.version {
                        continue;
                    }
                    let state = parse_state(&record.state)?;
                    if matches!(
                        state,
                        ProtocolState::Draft
                            | ProtocolState::Proposed
                            | ProtocolState::Active
                            | ProtocolState::Paused
                    ) {
                        let mut revoked = record.clone();
                        revoked.state = state_name(ProtocolState::Revoked);
                        revoked.updated_at = now;
                        tx.update_protocol_version(&record, &revoked).await?;
                    }
                }
                protocol.active_version = None;
                tx.set_active_protocol_version(id, None, now).await?;
            }
            let latest = if after.version == protocol.latest_version {
                Loaded {
                    record: after.clone(),
                    version: loaded.version.clone(),
                }
            } else {
                load(
                    tx.protocol_version(id, protocol.latest_version)
                        .await?
                        .ok_or_else(|| {
                            Error::Internal(format!("protocol {id} has no latest version"))
                        })?,
                )?
            };
            let view = self.view(&protocol, &latest);
            let parties: Vec<OrgId> = loaded.version.document.parties().into_iter().collect();
            let event_type = match transition.step {
                "propose" => "protocol.proposed",
                "approve" if transition.to == ProtocolState::Active => "protocol.activated",
                "approve" => "protocol.approved",
                "pause" => "protocol.paused",
                "resume" => "protocol.resumed",
                "revoke" => "protocol.revoked",
                _ => "protocol.changed",
            };
            let detail = serde_json::json!({
                "step": transition.step,
                "version": after.version,
                "from": state_name(transition.from),
                "to": state_name(transition.to),
                "content_hash": transition.hash.as_str(),
                "by": transition.by,
            });
            self.commit_protocol_step(tx, call, &protocol, &parties, event_type, detail, &view)
                .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Commits a protocol step with its audit entry and one event per party, so each party's
    /// event feed shows it.
    #[allow(clippy::too_many_arguments)]
    async fn commit_protocol_step<T: Serialize>(
        &self,
        tx: WriteTx,
        call: &Call<'_>,
        protocol: &ProtocolRecord,
        parties: &[OrgId],
        event_type: &'static str,
        detail: serde_json::Value,
        response: &T,
    ) -> Result<()> {
        let resource = Resource::Protocol {
            id: protocol.id,
            provider: protocol.provider,
            parties: parties.to_vec(),
        };
        let data = serde_json::json!({
            "protocol_id": protocol.id,
            "name": protocol.name,
            "provider": protocol.provider,
            "detail": detail,
        });
        let events = parties
            .iter()
            .map(|party| event(event_type, protocol.id, Some(*party), data.clone()))
            .collect();
        let done = Done {
            action: event_type,
            resource: &resource,
            detail: serde_json::json!({ "event": event_type, "protocol": data }),
            events,
        };
        self.commit(tx, None, call, done, response).await
    }

    /// One protocol with its latest version.
    pub async fn protocol(&self, call: &Call<'_>, id: ProtocolId) -> Result<ProtocolView> {
        let protocol = self.protocol_record(id).await?;
        let resource = self.protocol_resource(&protocol).await?;
        self.authorize(call, Action::ProtocolRead, &resource, &Context::default())
            .await?;
        let latest = self.latest(&protocol).await?;
        Ok(self.view(&protocol, &latest))
    }

    /// Every version of a protocol, newest first.
    pub async fn protocol_versions(
        &self,
        call: &Call<'_>,
        id: ProtocolId,
    ) -> Result<Vec<ProtocolVersionView>> {
        let protocol = self.protocol_record(id).await?;
        let resource = self.protocol_resource(&protocol).await?;
        self.authorize(call, Action::ProtocolRead, &resource, &Context::default())
            .await?;
        self.store()
            .protocol_versions(id)
            .await?
            .into_iter()
            .map(|record| load(record).map(|loaded| view_version(&loaded)))
            .collect()
    }

    /// What changed between two versions of a protocol.
    pub async fn protocol_diff(
        &self,
        call: &Call<'_>,
        id: ProtocolId,
        from: i64,
        to: i64,
    ) -> Result<ProtocolDiff> {
        let protocol = self.protocol_record(id).await?;
        let resource = self.protocol_resource(&protocol).await?;
        self.authorize(call, Action::ProtocolRead, &resource, &Context::default())
            .await?;
        let fetch = |version: i64| async move {
            self.store()
                .protocol_version(id, version)
                .await?
                .ok_or_else(|| Error::not_found(format!("version {version} of protocol {id}")))
        };
        let a = fetch(from).await?;
        let b = fetch(to).await?;
        Ok(ProtocolDiff {
            from,
            to,
            lines: diff_lines(&pretty(&a.document_json), &pretty(&b.document_json)),
        })
    }

    /// The protocols an organisation is a party to (as provider or consumer).
    pub async fn protocols(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ProtocolView>> {
        self.authorize(
            call,
            Action::QueryRead,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let after = cursor
            .map(|cursor| cursor.parse::<ProtocolId>())
            .transpose()
            .map_err(|_| crate::orgs::invalid_cursor())?;
        let records = self
            .store()
            .protocols_of_party(org_id, after, limit + 1)
            .await?;
        let mut views = Vec::with_capacity(records.len());
        for protocol in &records {
            let latest = self.latest(protocol).await?;
            views.push(self.view(protocol, &latest));
        }
        Ok(Page::from_overfetch(views, limit, |view: &ProtocolView| {
            view.id.to_string()
        }))
    }

    /// Moves every live version whose window has ended to `expired`, each with its audit entry
    /// and events. Returns how many expired. The server's housekeeping calls it.
    pub async fn expire_protocols(&self, call: &Call<'_>, now: Timestamp) -> Result<usize> {
        let due = self
            .store()
            .protocol_versions_past_their_window(now)
            .await?;
        let mut expired = 0;
        for (id, version) in due {
            let Some(protocol) = self.store().protocol(id).await? else {
                continue;
            };
            let mut tx = self.store().write().await?;
            let Some(record) = tx.protocol_version(id, version).await? else {
                continue;
            };
            let mut loaded = load(record)?;
            let Some(transition) = loaded.version.expire(now) else {
                continue;
            };
            let mut after = loaded.record.clone();
            after.state = state_name(loaded.version.state);
            after.updated_at = now;
            tx.update_protocol_version(&loaded.record, &after).await?;
            let mut protocol = protocol.clone();
            if protocol.active_version == Some(version) {
                protocol.active_version = None;
                tx.set_active_protocol_version(id, None, now).await?;
            }
            let latest = if version == protocol.latest_version {
                Loaded {
                    record: after.clone(),
                    version: loaded.version.clone(),
                }
            } else {
                self.latest(&protocol).await?
            };
            let view = self.view(&protocol, &latest);
            let parties: Vec<OrgId> = loaded.version.document.parties().into_iter().collect();
            let detail = serde_json::json!({
                "step": "expire",
                "version": version,
                "from": state_name(transition.from),
                "to": state_name(transition.to),
                "content_hash": transition.hash.as_str(),
            });
            self.commit_protocol_step(
                tx,
                call,
                &protocol,
                &parties,
                "protocol.expired",
                detail,
                &view,
            )
            .await?;
            expired += 1;
        }
        Ok(expired)
    }

    /// Inside a dataset's deletion: pauses every live version of the provider's protocols that
    /// names the dataset, with the reason, so no query can reach it and the suspension commits
    /// with the deletion or not at all. A suspended version cannot be resumed, proposed or
    /// approved: the provider revises the protocol, and the new version replaces it.
    pub(crate) async fn suspend_protocols_using(
        &self,
        tx: &mut WriteTx,
        dataset: &Dataset,
    ) -> Result<Vec<ProtocolId>> {
        let mut suspended = Vec::new();
        for protocol in self.store().protocols_of_provider(dataset.org_id).await? {
            let mut touched = false;
            for record in self.store().protocol_versions(protocol.id).await? {
                let state = parse_state(&record.state)?;
                if !matches!(
                    state,
                    ProtocolState::Draft
                        | ProtocolState::Proposed
                        | ProtocolState::Active
                        | ProtocolState::Paused
                ) {
                    continue;
                }
                let loaded = load(record)?;
                if loaded
                    .version
                    .document
                    .dataset(dataset.name.as_str())
                    .is_none()
                {
                    continue;
                }
                let mut after = loaded.record.clone();
                // A version in force is paused; a draft or proposal keeps its state but can
                // no longer be proposed or approved.
                if matches!(state, ProtocolState::Active | ProtocolState::Paused) {
                    after.state = state_name(ProtocolState::Paused);
                }
                after.suspended_reason = Some(format!(
                    "dataset `{}` was deleted; revise the protocol to share another dataset",
                    dataset.name
                ));
                after.updated_at = Timestamp::now();
                if !after.paused_by.contains(&dataset.org_id) {
                    after.paused_by.push(dataset.org_id);
                }
                tx.update_protocol_version(&loaded.record, &after).await?;
                touched = true;
            }
            if touched {
                suspended.push(protocol.id);
            }
        }
        Ok(suspended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_keeps_common_lines_and_marks_changes() {
        let lines = diff_lines("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(lines, [" a", "-b", " c", "+d"]);
    }

    #[test]
    fn a_protocol_never_loosens_its_owner_s_class() {
        assert!(class_allowed(
            OwnerClass::EntityId,
            ColumnClass::EntityId,
            true
        ));
        assert!(class_allowed(
            OwnerClass::EntityId,
            ColumnClass::Blocked,
            true
        ));
        assert!(class_allowed(
            OwnerClass::EntityId,
            ColumnClass::Dimension,
            false
        ));
        assert!(!class_allowed(
            OwnerClass::EntityId,
            ColumnClass::Dimension,
            true
        ));
        assert!(!class_allowed(
            OwnerClass::Blocked,
            ColumnClass::Metric,
            true
        ));
        assert!(!class_allowed(
            OwnerClass::JoinKey,
            ColumnClass::Dimension,
            true
        ));
        assert!(class_allowed(
            OwnerClass::Timestamp,
            ColumnClass::Dimension,
            true
        ));
    }
}
