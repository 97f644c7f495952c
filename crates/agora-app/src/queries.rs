//! Governed queries: a consumer sends SQL and a declared purpose; the engine (`agora-query`)
//! plans it against what the consumer's active protocols allow (its own datasets, and others'
//! only as views the protocols shape), checks and rewrites the plan, and runs it within limits.
//!
//! Every query, answered or refused, is recorded with its SQL, purpose, the protocol versions
//! it used, the rules applied and the rows suppressed, and is an audit entry of the consumer;
//! each provider sees the queries that used its protocols. A protocol's daily quota counts
//! every query that used it, refused ones included, so that probing costs quota too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use agora_data::TableLocation;
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::{Error, OrgId, ProtocolId, QueryId, Result, Timestamp, UserId};
use agora_query::{
    GovernedEngine, MemoryHistory, Protocol, QueryRequest, RecordedGroup, ResultHistory, ResultSet,
};
use agora_store::{ProtocolVersionRecord, QueryRecord};
use serde::Serialize;

use crate::protocols::query_error;
use crate::{App, Call, Page, audit_record};
use agora_domain::audit::Outcome;

/// How long released groups are remembered for the differencing defence.
const HISTORY_DAYS: i64 = 90;
/// The most released groups kept in memory (and loaded at start).
const HISTORY_GROUPS_MAX: usize = 200_000;

/// The released-groups history: in memory for the engine's synchronous checks, and written to
/// the store with each query's record so that it survives a restart.
pub(crate) struct StoreHistory {
    memory: MemoryHistory,
    pending: Mutex<Vec<(OrgId, RecordedGroup)>>,
}

impl StoreHistory {
    fn take_pending(&self) -> Vec<(OrgId, RecordedGroup)> {
        std::mem::take(&mut *self.pending.lock().expect("history lock is never poisoned"))
    }
}

impl ResultHistory for StoreHistory {
    fn earlier(
        &self,
        consumer: OrgId,
        keys: &[String],
    ) -> BTreeMap<String, Vec<Vec<(String, u64)>>> {
        self.memory.earlier(consumer, keys)
    }

    fn record(&self, consumer: OrgId, groups: Vec<RecordedGroup>) {
        self.pending
            .lock()
            .expect("history lock is never poisoned")
            .extend(groups.iter().cloned().map(|group| (consumer, group)));
        self.memory.record(consumer, groups);
    }
}

/// The engine and its history, made on first use.
pub(crate) struct QueryEngine {
    engine: GovernedEngine,
    history: Arc<StoreHistory>,
}

/// A query to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryInput {
    /// One of the purposes the protocols allow, such as `assortment`.
    pub purpose: String,
    pub sql: String,
    /// Read these datasets as of an earlier version (`{"store_sales": 3}`); the others at their
    /// current version.
    #[serde(default)]
    pub as_of: BTreeMap<String, i64>,
}

/// One output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultColumnView {
    pub name: String,
    /// The Arrow type, such as `Int64`, `Float64` or `Utf8`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A protocol version a query used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolUse {
    pub protocol_id: ProtocolId,
    pub version: i64,
    pub provider: OrgId,
}

/// What the engine did to a query: what the audit entry and the query log record.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryReportView {
    /// The datasets it read, shared and own.
    pub datasets: Vec<String>,
    /// Each rule applied, such as `min_entities_per_row=50 on sales`.
    pub rules_applied: Vec<String>,
    /// It read only the consumer's own data: full SQL, nothing rewritten.
    pub own_data_only: bool,
    /// Output rows (groups) withheld, every reason together.
    pub rows_suppressed: u64,
    /// Of those, rows with fewer distinct entities than `min_entities_per_row`.
    pub rows_suppressed_by_entity_threshold: u64,
    /// Rows with fewer contributors than `min_contributors_per_statistic`.
    pub rows_suppressed_by_contributor_count: u64,
    /// Rows where one contributor held more than `contributor_share_percent_max` of a statistic.
    pub rows_suppressed_by_contributor_dominance: u64,
    /// Rows too close to a group of one of the consumer's earlier results.
    pub rows_suppressed_by_differencing: u64,
    /// Withheld groups folded into the protocol's labelled remainder row, and whether that row
    /// was released (it must meet every threshold itself).
    pub remainder_groups_folded: Option<u64>,
    pub remainder_released: Option<bool>,
    /// Time spent parsing, planning, checking and rewriting, in microseconds.
    pub planning_micros: u64,
}

/// An answered query.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryAnswer {
    pub id: QueryId,
    pub columns: Vec<ResultColumnView>,
    /// Each row's values in column order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<Object>>))]
    pub rows: Vec<Vec<serde_json::Value>>,
    pub protocols: Vec<ProtocolUse>,
    pub report: QueryReportView,
    #[serde(skip)]
    result: Option<ResultSet>,
}

impl QueryAnswer {
    /// The result as CSV with a header row.
    pub fn csv(&self) -> Result<Vec<u8>> {
        self.result
            .as_ref()
            .ok_or_else(|| Error::Internal("the result is gone".into()))?
            .csv()
            .map_err(query_error)
    }

    /// The result as an Arrow IPC stream.
    pub fn arrow_ipc(&self) -> Result<Vec<u8>> {
        self.result
            .as_ref()
            .ok_or_else(|| Error::Internal("the result is gone".into()))?
            .arrow_ipc()
            .map_err(query_error)
    }
}

/// One recorded query, as its consumer or a provider whose data it used sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryLogEntry {
    pub id: QueryId,
    pub consumer: OrgId,
    pub actor: Option<UserId>,
    pub purpose: String,
    pub sql: String,
    /// `answered`, `refused` or `failed`.
    pub outcome: String,
    /// For a refusal or failure: the rule or limit.
    pub rule: Option<String>,
    pub message: Option<String>,
    pub rows_returned: i64,
    pub rows_suppressed: i64,
    pub protocols: Vec<ProtocolUse>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub report: serde_json::Value,
    pub created_at: Timestamp,
}

impl QueryLogEntry {
    fn new(record: QueryRecord) -> Self {
        Self {
            id: record.id,
            consumer: record.consumer,
            actor: record.actor,
            purpose: record.purpose,
            sql: record.sql,
            outcome: record.outcome,
            rule: record.rule,
            message: record.message,
            rows_returned: record.rows_returned,
            rows_suppressed: record.rows_suppressed,
            protocols: record
                .protocols
                .into_iter()
                .map(|(protocol_id, version, provider)| ProtocolUse {
                    protocol_id,
                    version,
                    provider,
                })
                .collect(),
            report: serde_json::from_str(&record.report_json).unwrap_or(serde_json::Value::Null),
            created_at: record.created_at,
        }
    }
}

/// Whose queries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QueryScope {
    /// Queries the organisation ran.
    Ran,
    /// Queries that used the organisation's protocols, that is its data.
    AgainstOurData,
}

/// The active protocol versions a consumer may query under, with where each came from.
struct Applicable {
    documents: Vec<Protocol>,
    by_hash: HashMap<String, (ProtocolId, i64, OrgId, u32)>,
}

fn start_of_day(now: Timestamp) -> Timestamp {
    const DAY_US: i64 = 24 * 3600 * 1_000_000;
    let micros = now.as_micros();
    Timestamp::from_micros(micros - micros.rem_euclid(DAY_US))
}

/// Whether `name` appears in `sql` as a word: which shared datasets a refused query named.
fn mentions(sql: &str, name: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(&name).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

impl App {
    /// The governed engine, made on first use with the configured limits and the released
    /// groups of the last [`HISTORY_DAYS`] days.
    async fn query_engine(&self) -> Result<&QueryEngine> {
        self.inner
            .queries
            .get_or_try_init(|| async {
                let memory = MemoryHistory::new(HISTORY_GROUPS_MAX);
                let since = Timestamp::from_micros(
                    Timestamp::now().as_micros() - HISTORY_DAYS * 24 * 3600 * 1_000_000,
                );
                let rows = self
                    .store()
                    .released_groups_since(since, HISTORY_GROUPS_MAX as u32)
                    .await?;
                let mut by_consumer: BTreeMap<OrgId, Vec<RecordedGroup>> = BTreeMap::new();
                for (consumer, key, counts_json) in rows {
                    let counts: Vec<(String, u64)> = serde_json::from_str(&counts_json)
                        .map_err(|e| Error::Internal(format!("released group counts: {e}")))?;
                    by_consumer
                        .entry(consumer)
                        .or_default()
                        .push(RecordedGroup { key, counts });
                }
                for (consumer, groups) in by_consumer {
                    memory.record(consumer, groups);
                }
                let history = Arc::new(StoreHistory {
                    memory,
                    pending: Mutex::new(Vec::new()),
                });
                let engine = GovernedEngine::new(
                    self.inner.config.query,
                    Arc::clone(&history) as Arc<dyn ResultHistory>,
                )
                .map_err(query_error)?;
                Ok::<_, Error>(QueryEngine { engine, history })
            })
            .await
    }

    /// The active protocols naming `consumer`, or one of the coalitions it is a member of, as a
    /// consumer.
    async fn applicable_protocols(
        &self,
        consumer: OrgId,
        coalitions: &[OrgId],
        now: Timestamp,
    ) -> Result<Applicable> {
        let mut records: Vec<ProtocolVersionRecord> = self
            .store()
            .active_protocol_versions_of_party(consumer)
            .await?;
        for coalition in coalitions {
            for record in self
                .store()
                .active_protocol_versions_of_party(*coalition)
                .await?
            {
                if !records
                    .iter()
                    .any(|known| known.protocol_id == record.protocol_id)
                {
                    records.push(record);
                }
            }
        }
        let mut applicable = Applicable {
            documents: Vec::new(),
            by_hash: HashMap::new(),
        };
        for record in records {
            let document = Protocol::from_json(&record.document_json).map_err(|e| {
                Error::Internal(format!(
                    "stored protocol {} does not read back: {e}",
                    record.protocol_id
                ))
            })?;
            let names_consumer = document.consumers.contains(&consumer)
                || document
                    .consumers
                    .iter()
                    .any(|named| coalitions.contains(named));
            if !names_consumer
                || now < document.validity.not_before
                || now >= document.validity.not_after
            {
                continue;
            }
            let quota = document.quotas.queries_per_day_max;
            applicable.by_hash.insert(
                document.content_hash().as_str().to_owned(),
                (record.protocol_id, record.version, document.provider, quota),
            );
            applicable.documents.push(document);
        }
        Ok(applicable)
    }

    /// The DataFusion tables the query may reach: the consumer's own live datasets and the
    /// providers' datasets the applicable protocols name, each at its current version.
    async fn query_tables(
        &self,
        consumer: OrgId,
        applicable: &Applicable,
        as_of: &BTreeMap<String, i64>,
    ) -> Result<Vec<agora_query::Dataset>> {
        let engine = self.datasets_engine()?;
        let mut tables = Vec::new();
        let mut wanted: Vec<(OrgId, String)> = Vec::new();
        let mut after = None;
        loop {
            let page = self.store().datasets(consumer, after.as_ref(), 200).await?;
            let done = page.len() < 200;
            for dataset in &page {
                wanted.push((consumer, dataset.name.to_string()));
            }
            after = page.last().map(|dataset| dataset.name.clone());
            if done {
                break;
            }
        }
        for document in &applicable.documents {
            for rule in &document.datasets {
                let key = (document.provider, rule.name.clone());
                if !wanted.contains(&key) {
                    wanted.push(key);
                }
            }
        }
        for (org_id, name) in wanted {
            let Ok(parsed) = agora_domain::dataset::DatasetName::parse(&name) else {
                continue;
            };
            let Some(dataset) = self.store().dataset_by_name(org_id, &parsed).await? else {
                continue;
            };
            let version = match as_of.get(dataset.name.as_str()) {
                None => dataset.current_version,
                Some(&version) if (1..=dataset.current_version).contains(&version) => version,
                Some(&version) => {
                    return Err(Error::invalid(
                        "as_of",
                        format!(
                            "dataset `{}` has versions 1 to {}, not {version}",
                            dataset.name, dataset.current_version
                        ),
                    ));
                }
            };
            let table = engine
                .table_provider(&TableLocation::of(&dataset), Some(version))
                .await?;
            tables.push(agora_query::Dataset {
                provider: org_id,
                name: dataset.name.to_string(),
                table,
            });
        }
        if let Some(unknown) = as_of
            .keys()
            .find(|name| !tables.iter().any(|table| &table.name == *name))
        {
            return Err(Error::invalid(
                "as_of",
                format!("no dataset named `{unknown}` is visible to this organisation"),
            ));
        }
        Ok(tables)
    }

    /// Runs a governed query as `consumer`. A refusal answers `Refused` naming the rule and the
    /// offending expression; it is recorded and audited like an answer.
    pub async fn run_query(
        &self,
        call: &Call<'_>,
        consumer: OrgId,
        input: QueryInput,
    ) -> Result<QueryAnswer> {
        let resource = Resource::Organisation(consumer);
        self.authorize(call, Action::QueryRun, &resource, &Context::default())
            .await?;
        let now = Timestamp::now();
        let id = QueryId::new();
        let query = self.query_engine().await?;
        let (coalitions, pooled) = self.coalition_scope(consumer, now).await?;
        let mut applicable = self
            .applicable_protocols(consumer, &coalitions, now)
            .await?;
        // Pooled data's protocols come from the coalitions' charters: no quota, no stored version.
        applicable.documents.extend(pooled);
        let request = QueryRequest {
            consumer,
            coalitions,
            purpose: input.purpose.clone(),
            sql: input.sql.clone(),
            now,
        };
        let unattributed = |error: Error| (error, Vec::new());
        let outcome = async {
            let tables = self
                .query_tables(consumer, &applicable, &input.as_of)
                .await
                .map_err(unattributed)?;
            let prepared = query
                .engine
                .prepare(&request, &applicable.documents, &tables)
                .await
                .map_err(|e| unattributed(query_error(e)))?;
            let used: Vec<(ProtocolId, i64, OrgId, u32)> = prepared
                .report
                .protocols
                .iter()
                .filter_map(|used| applicable.by_hash.get(used.hash.as_str()).copied())
                .collect();
            for (protocol_id, _, _, quota) in &used {
                let count = self
                    .store()
                    .queries_under_protocol_since(*protocol_id, start_of_day(now))
                    .await
                    .map_err(|e| (e, used.clone()))?;
                if count >= i64::from(*quota) {
                    return Err((
                        Error::LimitExceeded {
                            limit: "queries_per_day_max".into(),
                            message: format!(
                                "protocol {protocol_id} allows {quota} queries a day and they are used up; try again tomorrow (UTC)"
                            ),
                        },
                        used.clone(),
                    ));
                }
            }
            let recipients_refusal = prepared.report.protocols.iter().find_map(|used| {
                applicable
                    .documents
                    .iter()
                    .find(|d| d.content_hash() == used.hash)
                    .filter(|d| !d.recipients.is_empty() && !d.recipients.contains(&consumer))
            });
            if let Some(document) = recipients_refusal {
                return Err((
                    Error::Refused {
                        rule: "recipients".into(),
                        expression: document.name.clone(),
                        message: format!(
                            "protocol `{}` delivers results only to its recipients, and this organisation is not one",
                            document.name
                        ),
                    },
                    used,
                ));
            }
            let output = query
                .engine
                .execute(prepared)
                .await
                .map_err(|e| (query_error(e), used.clone()))?;
            Ok((output, used))
        }
        .await;
        match outcome {
            Ok((output, used)) => {
                let result = ResultSet::new(output.schema.clone(), output.batches.clone());
                let rows = result.json_rows().map_err(query_error)?;
                let suppressed = &output.report.groups_suppressed;
                let report = QueryReportView {
                    datasets: output.report.datasets.clone(),
                    rules_applied: output.report.rules_applied.clone(),
                    own_data_only: output.report.own_data_only,
                    rows_suppressed: suppressed.total(),
                    rows_suppressed_by_entity_threshold: suppressed.entity_threshold,
                    rows_suppressed_by_contributor_count: suppressed.contributor_count,
                    rows_suppressed_by_contributor_dominance: suppressed.contributor_dominance,
                    rows_suppressed_by_differencing: suppressed.differencing,
                    remainder_groups_folded: output
                        .report
                        .remainder
                        .as_ref()
                        .map(|remainder| remainder.groups_folded),
                    remainder_released: output
                        .report
                        .remainder
                        .as_ref()
                        .map(|remainder| remainder.released),
                    planning_micros: output.report.planning_micros,
                };
                let answer = QueryAnswer {
                    id,
                    columns: result
                        .columns()
                        .into_iter()
                        .map(|column| ResultColumnView {
                            name: column.name,
                            data_type: column.data_type,
                        })
                        .collect(),
                    rows,
                    protocols: used
                        .iter()
                        .map(|(protocol_id, version, provider, _)| ProtocolUse {
                            protocol_id: *protocol_id,
                            version: *version,
                            provider: *provider,
                        })
                        .collect(),
                    report,
                    result: Some(result),
                };
                let record = QueryRecord {
                    id,
                    consumer,
                    actor: call.actor.user_id,
                    purpose: input.purpose,
                    sql: input.sql,
                    outcome: "answered".into(),
                    rule: None,
                    message: None,
                    rows_returned: answer.rows.len() as i64,
                    rows_suppressed: answer.report.rows_suppressed as i64,
                    report_json: serde_json::to_string(&answer.report)
                        .map_err(|e| Error::Internal(format!("query report: {e}")))?,
                    created_at: now,
                    protocols: used.iter().map(|(p, v, o, _)| (*p, *v, *o)).collect(),
                };
                self.record_query(call, &resource, record, Outcome::Succeeded, query)
                    .await?;
                Ok(answer)
            }
            Err((error, used)) => {
                // A refusal in planning does not say which protocols were in play: count
                // those whose datasets the SQL names, so their providers see the attempt and
                // their quotas pay for it.
                let used: Vec<(ProtocolId, i64, OrgId)> = if used.is_empty() {
                    applicable
                        .documents
                        .iter()
                        .filter(|d| d.purposes.contains(&request.purpose))
                        .filter(|d| {
                            d.datasets
                                .iter()
                                .any(|rule| mentions(&request.sql, &rule.name))
                        })
                        .filter_map(|d| applicable.by_hash.get(d.content_hash().as_str()))
                        .map(|(p, v, o, _)| (*p, *v, *o))
                        .collect()
                } else {
                    used.iter().map(|(p, v, o, _)| (*p, *v, *o)).collect()
                };
                let (outcome_name, rule, audit_outcome) = match &error {
                    Error::Refused { rule, .. } => ("refused", Some(rule.clone()), Outcome::Denied),
                    Error::LimitExceeded { limit, .. } if limit == "queries_per_day_max" => {
                        ("refused", Some(limit.clone()), Outcome::Denied)
                    }
                    Error::LimitExceeded { limit, .. } => {
                        ("failed", Some(limit.clone()), Outcome::Failed)
                    }
                    Error::Invalid { field, .. } => {
                        ("refused", Some(format!("invalid_{field}")), Outcome::Failed)
                    }
                    other => ("failed", Some(other.kind().to_owned()), Outcome::Failed),
                };
                let report = serde_json::json!({
                    "error": error.kind(),
                    "expression": match &error { Error::Refused { expression, .. } => Some(expression.clone()), _ => None },
                });
                let record = QueryRecord {
                    id,
                    consumer,
                    actor: call.actor.user_id,
                    purpose: input.purpose.chars().take(200).collect(),
                    sql: input.sql,
                    outcome: outcome_name.into(),
                    rule,
                    message: Some(error.to_string()),
                    rows_returned: 0,
                    rows_suppressed: 0,
                    report_json: report.to_string(),
                    created_at: now,
                    protocols: used,
                };
                self.record_query(call, &resource, record, audit_outcome, query)
                    .await?;
                Err(error)
            }
        }
    }

    /// Writes the query's record, its released groups and its audit entry in one transaction.
    async fn record_query(
        &self,
        call: &Call<'_>,
        resource: &Resource,
        record: QueryRecord,
        outcome: Outcome,
        query: &QueryEngine,
    ) -> Result<()> {
        let detail = serde_json::json!({
            "query_id": record.id,
            "purpose": record.purpose,
            "sql": record.sql,
            "outcome": record.outcome,
            "rule": record.rule,
            "protocols": record.protocols.iter().map(|(p, v, o)| serde_json::json!({"protocol_id": p, "version": v, "provider": o})).collect::<Vec<_>>(),
            "rows_returned": record.rows_returned,
            "rows_suppressed": record.rows_suppressed,
            "report": serde_json::from_str::<serde_json::Value>(&record.report_json).unwrap_or_default(),
        });
        let released = query.history.take_pending();
        let mut tx = self.store().write().await?;
        tx.insert_query(&record).await?;
        let mut by_consumer: BTreeMap<OrgId, Vec<(String, String)>> = BTreeMap::new();
        for (consumer, group) in released {
            let counts = serde_json::to_string(&group.counts)
                .map_err(|e| Error::Internal(format!("released group counts: {e}")))?;
            by_consumer
                .entry(consumer)
                .or_default()
                .push((group.key, counts));
        }
        for (consumer, groups) in &by_consumer {
            tx.insert_released_groups(*consumer, groups, record.created_at)
                .await?;
        }
        tx.append_audit(&audit_record(
            call,
            Action::QueryRun.as_str(),
            resource,
            outcome,
            &detail,
        ))
        .await?;
        tx.commit().await
    }

    /// Queries an organisation ran, or that used its protocols, newest first.
    pub async fn queries(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        scope: QueryScope,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<QueryLogEntry>> {
        self.authorize(
            call,
            Action::QueryRead,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let before = cursor
            .map(|cursor| cursor.parse::<QueryId>())
            .transpose()
            .map_err(|_| crate::orgs::invalid_cursor())?;
        let records = self
            .store()
            .queries(
                org_id,
                scope == QueryScope::AgainstOurData,
                before,
                limit + 1,
            )
            .await?;
        let entries = records
            .into_iter()
            .map(QueryLogEntry::new)
            .map(|mut entry| {
                // A provider sees which organisation asked, not which of its people.
                if entry.consumer != org_id {
                    entry.actor = None;
                }
                entry
            })
            .collect();
        Ok(Page::from_overfetch(
            entries,
            limit,
            |entry: &QueryLogEntry| entry.id.to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_is_mentioned_only_as_a_whole_word() {
        assert!(mentions("SELECT region FROM sales", "sales"));
        assert!(mentions("select * from \"Sales\"", "sales"));
        assert!(!mentions("SELECT 1 FROM sales_2024", "sales"));
        assert!(!mentions("SELECT wholesales FROM t", "sales"));
    }

    #[test]
    fn the_quota_day_starts_at_midnight_utc() {
        let noon = Timestamp::from_micros(86_400_000_000 * 3 + 43_200_000_000);
        assert_eq!(start_of_day(noon).as_micros(), 86_400_000_000 * 3);
    }
}
