//! The governed engine: builds a consumer's catalog from its active protocols, plans its SQL,
//! checks and rewrites the plan, checks the optimized plan again, and runs it within limits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_domain::{OrgId, Timestamp};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast as cast_array, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SQLOptions, SessionContext, SessionState};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableScanBuilder, cast, col, lit,
};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionConfig;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::check::{self, Binding, Checker, SharedRule};
use crate::error::{Error, Refusal, Result};
use crate::history::{RecordedGroup, ResultHistory, differs_too_little};
use crate::protocol::{
    AnalysisType, ColumnClass, ContentHash, Protocol, is_purpose_name, strictest,
};
use crate::rewrite::{
    self, Aggregation, HIDDEN_PREFIX, RELEASED_TABLE, Remainder, Rewritten, SuppressionReason,
};

/// Limits on every query. Each is a documented setting; the unit is the last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Longest SQL text accepted.
    pub sql_bytes_max: usize,
    /// Deepest nesting the SQL parser follows (DataFusion's `sql_parser.recursion_limit`).
    pub sql_parse_depth_max: usize,
    /// Memory one query may hold (DataFusion memory pool).
    pub memory_bytes_max: usize,
    /// Wall time one query may run.
    pub query_timeout_ms: u64,
    /// Rows one result may hold.
    pub result_rows_max: usize,
    /// Threads one query may use.
    pub partitions_max: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            sql_bytes_max: 64 * 1024,
            sql_parse_depth_max: 64,
            memory_bytes_max: 1024 * 1024 * 1024,
            query_timeout_ms: 30_000,
            result_rows_max: 100_000,
            partitions_max: 4,
        }
    }
}

/// A dataset version the consumer may reach, as a DataFusion table.
#[derive(Clone)]
pub struct Dataset {
    pub provider: OrgId,
    /// The name the consumer writes in SQL (lower case, unique among what it sees).
    pub name: String,
    pub table: Arc<dyn TableProvider>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A binding and, for shared data, the dataset behind its view.
type BoundTable = (Binding, Option<Dataset>);

/// A consumer's query.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub consumer: OrgId,
    /// The coalitions the consumer acts within: protocols naming one of them as a consumer apply
    /// to the consumer too, and their datasets (pooled data) are never the consumer's own, even
    /// when the consumer is the coalition itself, so their rules always apply.
    pub coalitions: Vec<OrgId>,
    pub purpose: String,
    pub sql: String,
    pub now: Timestamp,
}

/// A protocol version a query ran under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolRef {
    pub name: String,
    pub version: u32,
    pub hash: ContentHash,
}

/// Output rows (groups) withheld, by reason. A group is counted once, under the first reason
/// that applies in this order: entity threshold, contributor count, contributor dominance,
/// differencing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressedGroups {
    /// Fewer distinct entities than `min_entities_per_row`.
    pub entity_threshold: u64,
    /// Fewer distinct contributors than `min_contributors_per_statistic`.
    pub contributor_count: u64,
    /// One contributor over `contributor_share_percent_max` of a statistic of the row.
    pub contributor_dominance: u64,
    /// Too close to a group of one of the consumer's earlier results.
    pub differencing: u64,
}

impl SuppressedGroups {
    pub fn total(&self) -> u64 {
        self.entity_threshold
            + self.contributor_count
            + self.contributor_dominance
            + self.differencing
    }

    fn add(&mut self, reason: SuppressionReason) {
        match reason {
            SuppressionReason::EntityThreshold => self.entity_threshold += 1,
            SuppressionReason::ContributorCount => self.contributor_count += 1,
            SuppressionReason::ContributorDominance => self.contributor_dominance += 1,
            SuppressionReason::Differencing => self.differencing += 1,
        }
    }
}

/// The remainder row, when a protocol asked for one (`output.suppressed_remainder`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemainderReport {
    /// Withheld groups folded into the remainder.
    pub groups_folded: u64,
    /// Whether the remainder row was released; `false` when it was itself under a threshold
    /// (it is then withheld, and not counted in `SuppressedGroups`).
    pub released: bool,
}

/// What the audit entry records about a query that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryReport {
    /// Every protocol version the query ran under: all of those that share a dataset it read
    /// with the consumer for the purpose (the strictest of their rules applied).
    pub protocols: Vec<ProtocolRef>,
    /// Datasets the query read, shared and own.
    pub datasets: Vec<String>,
    /// Rules applied, for example `min_entities_per_row=50 on sales`.
    pub rules_applied: Vec<String>,
    /// The consumer read only its own data: full SQL, no rewrite.
    pub own_data_only: bool,
    /// Time spent parsing, planning, checking, rewriting and optimizing.
    pub planning_micros: u64,
    /// Groups withheld, by reason; filled in when the query has run.
    pub groups_suppressed: SuppressedGroups,
    /// Filled in when the query has run, if a remainder row was asked for.
    pub remainder: Option<RemainderReport>,
}

/// A query checked, rewritten and optimized, ready to run.
pub struct PreparedQuery {
    state: SessionState,
    /// The consumer's plan; above the aggregation only, when there is one.
    plan: LogicalPlan,
    /// The guarded aggregation, optimized, run first.
    aggregation: Option<Aggregation>,
    key_scope: String,
    consumer: OrgId,
    pub report: QueryReport,
}

impl PreparedQuery {
    /// The optimized plan that runs last (for the engine's own log, never for consumers): the
    /// whole query, or the part above the guarded aggregation.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The optimized guarded aggregation that runs first, if the query has one.
    pub fn aggregation_plan(&self) -> Option<&LogicalPlan> {
        self.aggregation
            .as_ref()
            .map(|aggregation| &aggregation.plan)
    }
}

/// A result and what was done to it.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub report: QueryReport,
    /// Groups withheld because they differ too little from an earlier result (also in
    /// `report.groups_suppressed.differencing`).
    pub groups_suppressed_by_differencing: usize,
}

impl QueryOutput {
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The engine. One per process; cheap to share.
pub struct GovernedEngine {
    limits: QueryLimits,
    runtime: Arc<RuntimeEnv>,
    history: Arc<dyn ResultHistory>,
}

impl GovernedEngine {
    pub fn new(limits: QueryLimits, history: Arc<dyn ResultHistory>) -> Result<Self> {
        // Spilling is off: a query that needs more memory than allowed fails instead of
        // filling the disk.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes_max, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| Error::Internal(format!("runtime: {e}")))?;
        Ok(Self {
            limits,
            runtime,
            history,
        })
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Checks and runs a query. `protocols` are the active protocol versions the app found for
    /// the consumer; `datasets` the dataset versions they name plus the consumer's own.
    pub async fn run(
        &self,
        request: &QueryRequest,
        protocols: &[Protocol],
        datasets: &[Dataset],
    ) -> Result<QueryOutput> {
        let prepared = self.prepare(request, protocols, datasets).await?;
        self.execute(prepared).await
    }

    /// Parses, plans, checks, rewrites and optimizes; runs nothing.
    pub async fn prepare(
        &self,
        request: &QueryRequest,
        protocols: &[Protocol],
        datasets: &[Dataset],
    ) -> Result<PreparedQuery> {
        let started = Instant::now();
        if !is_purpose_name(&request.purpose) {
            return Err(Error::invalid(
                "purpose",
                "a purpose is 1 to 64 characters of a-z, 0-9, `_` or `-`",
            ));
        }
        if request.sql.len() > self.limits.sql_bytes_max {
            return Err(Error::LimitExceeded {
                limit: "sql_bytes_max",
                message: format!("the SQL is longer than {} bytes", self.limits.sql_bytes_max),
            });
        }
        if request.sql.to_ascii_lowercase().contains(HIDDEN_PREFIX) {
            return Err(Refusal::new(
                "reserved_name",
                HIDDEN_PREFIX,
                "names starting with `__agora_` are reserved for the engine",
            )
            .into());
        }
        let pairs = self.bindings(request, protocols, datasets)?;
        let state = self.session(&pairs, datasets, request.now)?;
        let bindings: Vec<Binding> = pairs.into_iter().map(|(binding, _)| binding).collect();

        let statement = state
            .sql_to_statement(&request.sql, &datafusion::config::Dialect::Generic)
            .map_err(|e| parse_error(&e, self.limits.sql_parse_depth_max))?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| parse_error(&e, self.limits.sql_parse_depth_max))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| Refusal::new("statement", "statement", e.to_string()))?;
        let analyzed = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .map_err(|e| Error::invalid("sql", e.to_string()))?;

        let mode = check::strictest_mode(&bindings, &analyzed);
        let read = tables_read(&bindings, &analyzed);
        let mut report = QueryReport {
            protocols: Vec::new(),
            datasets: read
                .iter()
                .map(|i| bindings[*i].table_name.clone())
                .collect(),
            rules_applied: Vec::new(),
            own_data_only: mode.is_none(),
            planning_micros: 0,
            groups_suppressed: SuppressedGroups::default(),
            remainder: None,
        };
        let Some(mode) = mode else {
            // Own data only: full SQL, with the limits.
            if let LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) = analyzed {
                // Allowed on own data; planned like any other statement.
            }
            let optimized = state
                .optimize(&analyzed)
                .map_err(|e| Error::invalid("sql", e.to_string()))?;
            report.planning_micros = elapsed_micros(started);
            return Ok(PreparedQuery {
                state,
                plan: optimized,
                aggregation: None,
                key_scope: String::new(),
                consumer: request.consumer,
                report,
            });
        };

        let analyzed = check::distinct_to_aggregate(analyzed)
            .map_err(|e| Error::Internal(format!("distinct: {e}")))?;
        let mut checker = Checker::new(&bindings, mode);
        checker.check(&analyzed)?;
        let shared_read = checker.findings.shared_bindings.clone();

        let optimize = |plan: &LogicalPlan| {
            state
                .optimize(plan)
                .map_err(|e| Error::invalid("sql", e.to_string()))
        };
        let (plan, aggregation) = if mode == AnalysisType::Rows {
            let optimized = optimize(&analyzed)?;
            check::verify_rows(&optimized, &bindings)?;
            (optimized, None)
        } else {
            let Rewritten {
                mut aggregation,
                above,
            } = rewrite::split(analyzed, &bindings)?;
            let fields = aggregation.plan.schema().fields().len();
            aggregation.plan = optimize(&aggregation.plan)?;
            let above = optimize(&above)?;
            check::verify_optimized(
                &aggregation.plan,
                &above,
                &bindings,
                &aggregation.guards,
                fields,
                mode,
            )?;
            (above, Some(aggregation))
        };

        let mut protocols_read: Vec<ProtocolRef> = Vec::new();
        for index in &shared_read {
            let binding = &bindings[*index];
            let shared = binding
                .shared
                .as_ref()
                .expect("recorded bindings are shared");
            for protocol in &shared.protocols {
                if !protocols_read.contains(protocol) {
                    protocols_read.push(protocol.clone());
                }
            }
            report.rules_applied.push(format!(
                "analysis={:?} on {}",
                shared.protocol.analysis, binding.table_name
            ));
            if let Some(days) = shared.protocol.output.min_data_age_days {
                report.rules_applied.push(format!(
                    "min_data_age_days={days} on {}",
                    binding.table_name
                ));
            }
        }
        let mut key_labels: &[String] = &[];
        if let Some(aggregation) = &aggregation {
            for guard in &aggregation.guards {
                report
                    .rules_applied
                    .push(format!("{}>={}", guard.label, guard.minimum));
            }
            for share in &aggregation.shares {
                report.rules_applied.push(share.label.clone());
            }
            if let Some(remainder) = &aggregation.remainder {
                report
                    .rules_applied
                    .push(format!("suppressed_remainder={:?}", remainder.label));
                report.remainder = Some(RemainderReport::default());
            }
            key_labels = &aggregation.key_labels;
        }
        report.protocols = protocols_read;
        // Results are comparable when they read the same datasets and group by the same columns.
        let key_scope = format!("{}|{}", report.datasets.join(","), key_labels.join(","));
        report.planning_micros = elapsed_micros(started);
        Ok(PreparedQuery {
            state,
            plan,
            aggregation,
            key_scope,
            consumer: request.consumer,
            report,
        })
    }

    /// Runs a prepared query within the time, memory and row limits: the guarded aggregation
    /// first, whose groups under a threshold or too close to an earlier result are withheld
    /// (and, if asked, folded into a remainder row), then the plan above it on the rest.
    pub async fn execute(&self, prepared: PreparedQuery) -> Result<QueryOutput> {
        let PreparedQuery {
            state,
            plan,
            aggregation,
            key_scope,
            consumer,
            mut report,
        } = prepared;
        let rows_max = self.limits.result_rows_max;
        let run = async {
            let plan = match &aggregation {
                None => plan,
                Some(aggregation) => {
                    let batches = collect(&state, &aggregation.plan).await?;
                    let (released, suppressed, remainder) = self
                        .release(&state, aggregation, batches, &key_scope, consumer)
                        .await?;
                    report.groups_suppressed = suppressed;
                    if report.remainder.is_some() {
                        report.remainder = Some(remainder);
                    }
                    with_released_groups(plan, &aggregation.released_schema, released)?
                }
            };
            let physical = state
                .query_planner()
                .create_physical_plan(&plan, &state)
                .await
                .map_err(execution_error)?;
            let mut stream = execute_stream(physical, state.task_ctx()).map_err(execution_error)?;
            let mut batches = Vec::new();
            let mut rows = 0usize;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(execution_error)?;
                rows += batch.num_rows();
                if rows > rows_max {
                    return Err(Error::LimitExceeded {
                        limit: "result_rows_max",
                        message: format!(
                            "the result has more than {rows_max} rows; aggregate further or add LIMIT"
                        ),
                    });
                }
                batches.push(batch);
            }
            Ok((plan.schema().as_arrow().clone(), batches))
        };
        let timeout = Duration::from_millis(self.limits.query_timeout_ms);
        let (schema, batches) =
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| Error::LimitExceeded {
                    limit: "query_timeout_ms",
                    message: format!(
                        "the query ran longer than {} ms",
                        self.limits.query_timeout_ms
                    ),
                })??;
        let differencing = usize::try_from(report.groups_suppressed.differencing)
            .expect("a count of groups fits in usize");
        Ok(QueryOutput {
            schema: Arc::new(schema),
            batches,
            report,
            groups_suppressed_by_differencing: differencing,
        })
    }

    /// Applies the thresholds and the differencing defence to the aggregation's groups, and
    /// builds the remainder row. Returns the released groups (visible fields only).
    async fn release(
        &self,
        state: &SessionState,
        aggregation: &Aggregation,
        batches: Vec<RecordBatch>,
        key_scope: &str,
        consumer: OrgId,
    ) -> Result<(Vec<RecordBatch>, SuppressedGroups, RemainderReport)> {
        let mut suppressed = SuppressedGroups::default();
        let mut remainder_report = RemainderReport::default();
        let mut groups = Vec::new();
        let mut verdicts = Vec::new();
        for batch in &batches {
            let view = GroupView::new(batch, aggregation, 0)?;
            for row in 0..batch.num_rows() {
                verdicts.push(view.threshold_failed(row));
                groups.push(view.group(row, key_scope)?);
            }
        }
        let keys: Vec<String> = groups.iter().map(|group| group.key.clone()).collect();
        let earlier = self.history.earlier(consumer, &keys);
        let minimum_of = |column: &str| {
            aggregation
                .guards
                .iter()
                .find(|guard| guard.label == column)
                .map_or(u64::MAX, |guard| u64::from(guard.minimum))
        };
        let mut released_groups = Vec::new();
        let mut keep = Vec::with_capacity(groups.len());
        let mut withheld_by_threshold = Vec::with_capacity(groups.len());
        for (group, verdict) in groups.into_iter().zip(verdicts) {
            let verdict = verdict.or_else(|| {
                earlier
                    .get(&group.key)
                    .is_some_and(|earlier| differs_too_little(&group.counts, earlier, minimum_of))
                    .then_some(SuppressionReason::Differencing)
            });
            keep.push(verdict.is_none());
            withheld_by_threshold.push(matches!(
                verdict,
                Some(reason) if reason != SuppressionReason::Differencing
            ));
            match verdict {
                Some(reason) => suppressed.add(reason),
                None => released_groups.push(group),
            }
        }
        let mut released = Vec::with_capacity(batches.len() + 1);
        let mut withheld_keys = Vec::new();
        let mut offset = 0;
        for batch in &batches {
            let rows = batch.num_rows();
            let mask = BooleanArray::from(keep[offset..offset + rows].to_vec());
            let withheld =
                BooleanArray::from(withheld_by_threshold[offset..offset + rows].to_vec());
            offset += rows;
            let visible = batch
                .project(&(0..aggregation.visible).collect::<Vec<_>>())
                .map_err(|e| Error::Internal(format!("project: {e}")))?;
            let kept = filter_record_batch(&visible, &mask)
                .map_err(|e| Error::Internal(format!("filter: {e}")))?;
            released.push(
                RecordBatch::try_new(
                    Arc::clone(&aggregation.released_schema),
                    kept.columns().to_vec(),
                )
                .map_err(|e| Error::Internal(format!("released: {e}")))?,
            );
            if aggregation.remainder.is_some() {
                let keys = batch
                    .project(&(0..aggregation.keys).collect::<Vec<_>>())
                    .map_err(|e| Error::Internal(format!("project: {e}")))?;
                withheld_keys.push(
                    filter_record_batch(&keys, &withheld)
                        .map_err(|e| Error::Internal(format!("filter: {e}")))?,
                );
            }
        }
        if let Some(remainder) = &aggregation.remainder {
            let folded: usize = withheld_keys.iter().map(RecordBatch::num_rows).sum();
            remainder_report.groups_folded = folded as u64;
            if folded > 0
                && let Some((row, group)) = self
                    .remainder_row(state, aggregation, remainder, withheld_keys, key_scope)
                    .await?
            {
                let too_close = earlier_too_close(&*self.history, consumer, &group, &minimum_of);
                if !too_close {
                    remainder_report.released = true;
                    released_groups.push(group);
                    released.push(row);
                }
            }
        }
        self.history.record(consumer, released_groups);
        Ok((released, suppressed, remainder_report))
    }

    /// Runs the remainder's aggregation over the rows of the withheld groups; `None` when the
    /// remainder itself fails a threshold.
    async fn remainder_row(
        &self,
        state: &SessionState,
        aggregation: &Aggregation,
        remainder: &Remainder,
        withheld_keys: Vec<RecordBatch>,
        key_scope: &str,
    ) -> Result<Option<(RecordBatch, RecordedGroup)>> {
        let internal = |e: DataFusionError| Error::Internal(format!("remainder: {e}"));
        let key_fields: Vec<Field> = (0..aggregation.keys)
            .map(|index| {
                Field::new(
                    format!("k{index}"),
                    aggregation.released_schema.field(index).data_type().clone(),
                    true,
                )
            })
            .collect();
        let key_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(key_fields));
        let key_batches = withheld_keys
            .into_iter()
            .map(|batch| RecordBatch::try_new(Arc::clone(&key_schema), batch.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("remainder keys: {e}")))?;
        let table = MemTable::try_new(key_schema, vec![key_batches]).map_err(internal)?;
        let withheld = LogicalPlanBuilder::scan(
            "__agora_withheld",
            provider_as_source(Arc::new(table)),
            None,
        )
        .and_then(LogicalPlanBuilder::build)
        .map_err(internal)?;
        let statistics = &remainder.aggr_expr[..aggregation.visible - aggregation.keys];
        let plan = rewrite::remainder_plan(remainder, statistics, withheld, aggregation.keys)
            .map_err(internal)?;
        let plan = state.optimize(&plan).map_err(execution_error)?;
        let batches = collect(state, &plan).await?;
        let Some(batch) = batches.into_iter().find(|batch| batch.num_rows() == 1) else {
            return Ok(None);
        };
        let view = GroupView::new(&batch, aggregation, aggregation.keys)?;
        if view.threshold_failed(0).is_some() {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(aggregation.visible);
        for index in 0..aggregation.keys {
            let data_type = aggregation.released_schema.field(index).data_type();
            columns.push(if Some(index) == remainder.label_key {
                cast_array(
                    &(Arc::new(StringArray::from(vec![remainder.label.as_str()])) as ArrayRef),
                    data_type,
                )
                .map_err(|e| Error::Internal(format!("remainder label: {e}")))?
            } else {
                new_null_array(data_type, 1)
            });
        }
        columns.extend(
            batch.columns()[..aggregation.visible - aggregation.keys]
                .iter()
                .cloned(),
        );
        let row = RecordBatch::try_new(Arc::clone(&aggregation.released_schema), columns)
            .map_err(|e| Error::Internal(format!("remainder row: {e}")))?;
        let mut group = view.group(0, key_scope)?;
        group.key = format!("{key_scope}\u{1f}\u{0}remainder\u{1f}{}", remainder.label);
        Ok(Some((row, group)))
    }

    /// The tables the consumer may see: its own datasets, and the datasets of protocols that
    /// name it as consumer, for this purpose, within their window. First protocol wins a name.
    fn bindings(
        &self,
        request: &QueryRequest,
        protocols: &[Protocol],
        datasets: &[Dataset],
    ) -> Result<Vec<BoundTable>> {
        let mut bindings: Vec<BoundTable> = Vec::new();
        let mut names = BTreeSet::new();
        for dataset in datasets {
            if dataset.name.to_ascii_lowercase().starts_with(HIDDEN_PREFIX) {
                return Err(Error::invalid("dataset", "reserved dataset name"));
            }
        }
        for dataset in datasets
            .iter()
            .filter(|d| d.provider == request.consumer && !request.coalitions.contains(&d.provider))
        {
            if !names.insert(dataset.name.clone()) {
                return Err(Error::invalid(
                    "dataset",
                    format!("two datasets named `{}`", dataset.name),
                ));
            }
            bindings.push((
                Binding {
                    scan_name: dataset.name.clone(),
                    table_name: dataset.name.clone(),
                    shared: None,
                },
                None,
            ));
        }
        let applicable: Vec<&Protocol> = protocols
            .iter()
            .filter(|protocol| {
                (protocol.consumers.contains(&request.consumer)
                    || protocol
                        .consumers
                        .iter()
                        .any(|consumer| request.coalitions.contains(consumer)))
                    && protocol.purposes.contains(&request.purpose)
                    && protocol.validity.not_before <= request.now
                    && request.now < protocol.validity.not_after
            })
            .collect();
        // Each shared dataset, with every applicable protocol that shares it: several protocols
        // covering one dataset are held to the strictest of each of their rules.
        let mut covered: Vec<(&Dataset, Vec<&Protocol>)> = Vec::new();
        for protocol in &applicable {
            for rule in &protocol.datasets {
                let Some(dataset) = datasets
                    .iter()
                    .find(|d| d.provider == protocol.provider && d.name == rule.name)
                else {
                    continue;
                };
                match covered
                    .iter_mut()
                    .find(|(known, _)| std::ptr::eq(*known, dataset))
                {
                    Some((_, covering)) => covering.push(protocol),
                    None => covered.push((dataset, vec![protocol])),
                }
            }
        }
        for (dataset, covering) in covered {
            if !names.insert(dataset.name.clone()) {
                continue;
            }
            let effective = strictest(&covering, &dataset.name)
                .expect("every covering protocol names the dataset");
            let rule = effective.datasets[0].clone();
            let refs: Vec<ProtocolRef> = covering
                .iter()
                .map(|protocol| ProtocolRef {
                    name: protocol.name.clone(),
                    version: protocol.version,
                    hash: protocol.content_hash(),
                })
                .collect();
            let index = bindings.len();
            bindings.push((
                Binding {
                    scan_name: format!("{HIDDEN_PREFIX}scan_{index}"),
                    table_name: dataset.name.clone(),
                    shared: Some(SharedRule {
                        protocol: Arc::new(effective),
                        dataset: rule,
                        protocols: refs,
                    }),
                },
                Some(dataset.clone()),
            ));
        }
        Ok(bindings)
    }

    fn session(
        &self,
        bindings: &[BoundTable],
        datasets: &[Dataset],
        now: Timestamp,
    ) -> Result<SessionState> {
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions(self.limits.partitions_max.max(1))
            .with_default_catalog_and_schema("agora", "data")
            .with_create_default_catalog_and_schema(true);
        config
            .options_mut()
            .set(
                "datafusion.sql_parser.recursion_limit",
                &self.limits.sql_parse_depth_max.max(1).to_string(),
            )
            .map_err(|e| Error::Internal(format!("config: {e}")))?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(Arc::clone(&self.runtime))
            .with_default_features()
            // No table functions: nothing may read files, URLs or generate unbounded rows.
            .with_table_function_list(Vec::new())
            .with_table_factories(Default::default())
            .build();
        let context = SessionContext::new_with_state(state);
        for (binding, shared_dataset) in bindings {
            let table: Arc<dyn TableProvider> = match (&binding.shared, shared_dataset) {
                (Some(shared), Some(dataset)) => governed_view(binding, shared, dataset, now)?,
                _ => {
                    let own = datasets
                        .iter()
                        .find(|d| d.name == binding.table_name)
                        .expect("own bindings come from datasets");
                    Arc::clone(&own.table)
                }
            };
            context
                .register_table(binding.table_name.as_str(), table)
                .map_err(|e| Error::Internal(format!("register: {e}")))?;
        }
        Ok(context.state())
    }
}

/// The consumer's view of a shared dataset: visible columns only, rows older than the minimum
/// data age only. The raw table is reachable only through this view.
fn governed_view(
    binding: &Binding,
    shared: &SharedRule,
    dataset: &Dataset,
    now: Timestamp,
) -> Result<Arc<dyn TableProvider>> {
    let schema = dataset.table.schema();
    let internal = |e: DataFusionError| Error::Internal(format!("view of {}: {e}", dataset.name));
    let mut builder = LogicalPlanBuilder::scan(
        binding.scan_name.as_str(),
        provider_as_source(Arc::clone(&dataset.table)),
        None,
    )
    .map_err(internal)?;
    if let Some(days) = shared.protocol.output.min_data_age_days
        && let Some(column) = shared.dataset.column_of_class(ColumnClass::Timestamp)
    {
        let field = schema
            .field_with_name(column)
            .map_err(|e| Error::Internal(format!("view of {}: {e}", dataset.name)))?;
        let cutoff_micros = now.plus_seconds(-(i64::from(days) * 86_400)).as_micros();
        let cutoff = lit(ScalarValue::TimestampMicrosecond(Some(cutoff_micros), None));
        let cutoff = match field.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, None) => cutoff,
            other => cast(cutoff, other.clone()),
        };
        builder = builder
            .filter(col(column).lt_eq(cutoff))
            .map_err(internal)?;
    }
    let visible: Vec<Expr> = schema
        .fields()
        .iter()
        .filter(|field| shared.dataset.is_visible(field.name()))
        .map(|field| col(field.name()))
        .collect();
    if visible.is_empty() {
        return Err(Error::invalid(
            "protocol",
            format!("no visible column in `{}`", dataset.name),
        ));
    }
    let plan = builder
        .project(visible)
        .map_err(internal)?
        .build()
        .map_err(internal)?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

fn tables_read(bindings: &[Binding], plan: &LogicalPlan) -> BTreeSet<usize> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut read = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(index) = bindings
                .iter()
                .position(|binding| binding.scan_name == scan.table_name.table())
        {
            read.insert(index);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    read
}

/// Runs a plan to the end, within the session's memory limit.
async fn collect(state: &SessionState, plan: &LogicalPlan) -> Result<Vec<RecordBatch>> {
    let physical = state
        .query_planner()
        .create_physical_plan(plan, state)
        .await
        .map_err(execution_error)?;
    let mut stream = execute_stream(physical, state.task_ctx()).map_err(execution_error)?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.map_err(execution_error)?);
    }
    Ok(batches)
}

/// The optimized plan above the aggregation, its scan of released groups now holding them.
fn with_released_groups(
    plan: LogicalPlan,
    schema: &SchemaRef,
    released: Vec<RecordBatch>,
) -> Result<LogicalPlan> {
    let internal = |e: DataFusionError| Error::Internal(format!("released groups: {e}"));
    let table: Arc<dyn TableProvider> =
        Arc::new(MemTable::try_new(Arc::clone(schema), vec![released]).map_err(internal)?);
    plan.transform_up(|node| match node {
        LogicalPlan::TableScan(scan) if scan.table_name.table() == RELEASED_TABLE => {
            let filled = TableScanBuilder::new(
                scan.table_name.clone(),
                provider_as_source(Arc::clone(&table)),
            )
            .with_projection(scan.projection.clone())
            .with_filters(scan.filters.clone())
            .with_fetch(scan.fetch)
            .build()?;
            Ok(Transformed::yes(LogicalPlan::TableScan(filled)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|transformed| transformed.data)
    .map_err(internal)
}

/// The hidden columns of one batch of the aggregation (or of the remainder, whose fields are
/// the aggregation's without the `shift` key fields).
struct GroupView<'a> {
    batch: &'a RecordBatch,
    aggregation: &'a Aggregation,
    shift: usize,
    counts: Vec<&'a Int64Array>,
    shares: Vec<(ArrayRef, ArrayRef)>,
}

impl<'a> GroupView<'a> {
    fn new(batch: &'a RecordBatch, aggregation: &'a Aggregation, shift: usize) -> Result<Self> {
        let column = |index: usize| {
            batch
                .columns()
                .get(index - shift)
                .ok_or_else(|| Error::Internal(format!("hidden column {index} missing")))
        };
        let mut counts = Vec::with_capacity(aggregation.guards.len());
        for guard in &aggregation.guards {
            counts.push(
                column(guard.index)?
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| Error::Internal(format!("{} is not a count", guard.name)))?,
            );
        }
        let as_float = |array: &ArrayRef| {
            cast_array(array, &DataType::Float64)
                .map_err(|e| Error::Internal(format!("share: {e}")))
        };
        let mut shares = Vec::with_capacity(aggregation.shares.len());
        for share in &aggregation.shares {
            shares.push((
                as_float(column(share.total)?)?,
                as_float(column(share.largest)?)?,
            ));
        }
        Ok(Self {
            batch,
            aggregation,
            shift,
            counts,
            shares,
        })
    }

    /// The first threshold the row fails, if any.
    fn threshold_failed(&self, row: usize) -> Option<SuppressionReason> {
        let mut failed: Option<SuppressionReason> = None;
        for (guard, counts) in self.aggregation.guards.iter().zip(&self.counts) {
            if counts.is_null(row) || counts.value(row) < i64::from(guard.minimum) {
                failed = failed.min(Some(guard.reason)).or(Some(guard.reason));
            }
        }
        for (share, (total, largest)) in self.aggregation.shares.iter().zip(&self.shares) {
            let total = total.as_any().downcast_ref::<Float64Array>();
            let largest = largest.as_any().downcast_ref::<Float64Array>();
            let (Some(total), Some(largest)) = (total, largest) else {
                return Some(SuppressionReason::ContributorDominance);
            };
            // A statistic with no rows, or all of them zero, has no dominant contributor.
            let dominated = !total.is_null(row)
                && total.value(row) > 0.0
                && (largest.is_null(row)
                    || largest.value(row) * 100.0
                        > f64::from(share.percent_max) * total.value(row));
            if dominated {
                let reason = SuppressionReason::ContributorDominance;
                failed = failed.min(Some(reason)).or(Some(reason));
            }
        }
        failed
    }

    /// The group's key for the differencing defence, and its hidden counts.
    fn group(&self, row: usize, key_scope: &str) -> Result<RecordedGroup> {
        let mut key = String::from(key_scope);
        for index in self.shift..self.aggregation.keys {
            let column = self.batch.column(index - self.shift);
            key.push('\u{1f}');
            if column.is_null(row) {
                key.push_str("\u{0}null");
            } else {
                key.push_str(
                    &array_value_to_string(column, row)
                        .map_err(|e| Error::Internal(format!("key: {e}")))?,
                );
            }
        }
        let counts = self
            .aggregation
            .guards
            .iter()
            .zip(&self.counts)
            .map(|(guard, counts)| (guard.label.clone(), counts.value(row).max(0) as u64))
            .collect();
        Ok(RecordedGroup { key, counts })
    }
}

fn earlier_too_close(
    history: &dyn ResultHistory,
    consumer: OrgId,
    group: &RecordedGroup,
    minimum_of: &dyn Fn(&str) -> u64,
) -> bool {
    history
        .earlier(consumer, std::slice::from_ref(&group.key))
        .get(&group.key)
        .is_some_and(|earlier| differs_too_little(&group.counts, earlier, minimum_of))
}

fn elapsed_micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn parse_error(error: &DataFusionError, depth_max: usize) -> Error {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("recursion limit") || lower.contains("recursionlimitexceeded") {
        Error::LimitExceeded {
            limit: "sql_parse_depth_max",
            message: format!("the SQL nests deeper than {depth_max}"),
        }
    } else {
        Error::invalid("sql", text)
    }
}

/// Execution errors say nothing about the data to the consumer (they can be side channels).
fn execution_error(error: DataFusionError) -> Error {
    if matches!(error.find_root(), DataFusionError::ResourcesExhausted(_)) {
        return Error::LimitExceeded {
            limit: "memory_bytes_max",
            message: "the query needed more memory than allowed".into(),
        };
    }
    Error::QueryFailed {
        detail: error.to_string(),
    }
}
