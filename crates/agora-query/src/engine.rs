//! The governed engine: builds a consumer's catalog from its active protocols, plans its SQL,
//! checks and rewrites the plan, checks the optimized plan again, and runs it within limits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_domain::{OrgId, Timestamp};
use datafusion::arrow::array::{Array, BooleanArray, Int64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SQLOptions, SessionContext, SessionState};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionConfig;
use futures_util::StreamExt;
use serde::Serialize;

use crate::check::{self, Binding, Checker, Guard, SharedRule};
use crate::error::{Error, Refusal, Result};
use crate::history::{RecordedGroup, ResultHistory, differs_too_little};
use crate::protocol::{AnalysisType, ColumnClass, ContentHash, Protocol, is_purpose_name};
use crate::rewrite::{self, HIDDEN_PREFIX};

/// Limits on every query. Each is a documented setting; the unit is the last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    pub purpose: String,
    pub sql: String,
    pub now: Timestamp,
}

/// A protocol version a query ran under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolRef {
    pub name: String,
    pub version: u32,
    pub hash: ContentHash,
}

/// What the audit entry records about a query that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryReport {
    pub protocols: Vec<ProtocolRef>,
    /// Datasets the query read, shared and own.
    pub datasets: Vec<String>,
    /// Rules applied, for example `min_entities_per_row=50 on sales`.
    pub rules_applied: Vec<String>,
    /// The consumer read only its own data: full SQL, no rewrite.
    pub own_data_only: bool,
    /// Time spent parsing, planning, checking, rewriting and optimizing.
    pub planning_micros: u64,
}

/// A query checked, rewritten and optimized, ready to run.
pub struct PreparedQuery {
    state: SessionState,
    plan: LogicalPlan,
    guards: Vec<Guard>,
    key_columns: Vec<String>,
    key_scope: String,
    consumer: OrgId,
    pub report: QueryReport,
}

impl PreparedQuery {
    /// The optimized plan that will run (for the engine's own log, never for consumers).
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }
}

/// A result and what was done to it.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub report: QueryReport,
    /// Groups withheld because they differ too little from an earlier result.
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
        let (pairs, protocols_used) = self.bindings(request, protocols, datasets)?;
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
                guards: Vec::new(),
                key_columns: Vec::new(),
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

        let (rewritten, guards, key_columns, key_labels) = if mode == AnalysisType::Rows {
            (analyzed, Vec::new(), Vec::new(), Vec::new())
        } else {
            let rewritten = rewrite::add_guards(analyzed, &bindings)?;
            (
                rewritten.plan,
                rewritten.guards,
                rewritten.key_columns,
                rewritten.key_labels,
            )
        };
        let optimized = state
            .optimize(&rewritten)
            .map_err(|e| Error::invalid("sql", e.to_string()))?;
        check::verify_guards(&optimized, &bindings, &guards, mode)?;

        let mut names: BTreeSet<String> = BTreeSet::new();
        for index in &shared_read {
            let binding = &bindings[*index];
            let shared = binding
                .shared
                .as_ref()
                .expect("recorded bindings are shared");
            names.insert(shared.protocol.name.clone());
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
        for guard in &guards {
            report.rules_applied.push(format!(
                "{}>={}",
                guard.column.trim_start_matches(HIDDEN_PREFIX),
                guard.minimum
            ));
        }
        report.protocols = protocols_used
            .into_iter()
            .filter(|p| names.contains(&p.name))
            .collect();
        // Results are comparable when they read the same datasets and group by the same columns.
        let key_scope = format!("{}|{}", report.datasets.join(","), key_labels.join(","));
        report.planning_micros = elapsed_micros(started);
        Ok(PreparedQuery {
            state,
            plan: optimized,
            guards,
            key_columns,
            key_scope,
            consumer: request.consumer,
            report,
        })
    }

    /// Runs a prepared query within the time, memory and row limits, then applies the
    /// differencing defence and drops the hidden columns.
    pub async fn execute(&self, prepared: PreparedQuery) -> Result<QueryOutput> {
        let PreparedQuery {
            state,
            plan,
            guards,
            key_columns,
            key_scope,
            consumer,
            report,
        } = prepared;
        let rows_max = self.limits.result_rows_max;
        let run = async {
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
            Ok(batches)
        };
        let timeout = Duration::from_millis(self.limits.query_timeout_ms);
        let batches =
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| Error::LimitExceeded {
                    limit: "query_timeout_ms",
                    message: format!(
                        "the query ran longer than {} ms",
                        self.limits.query_timeout_ms
                    ),
                })??;

        let mut suppressed = 0usize;
        let batches = if guards.is_empty() {
            batches
        } else {
            let minimums: BTreeMap<String, u64> = guards
                .iter()
                .map(|guard| (guard.column.clone(), u64::from(guard.minimum)))
                .collect();
            let mut rows = Vec::new();
            for batch in &batches {
                for row in 0..batch.num_rows() {
                    rows.push(group_of(batch, row, &guards, &key_columns, &key_scope)?);
                }
            }
            let keys: Vec<String> = rows.iter().map(|group| group.key.clone()).collect();
            let earlier = self.history.earlier(consumer, &keys);
            let mut released = Vec::new();
            let mut keep = Vec::with_capacity(rows.len());
            for group in rows {
                let too_close = earlier.get(&group.key).is_some_and(|earlier| {
                    differs_too_little(&group.counts, earlier, |column| {
                        minimums.get(column).copied().unwrap_or(u64::MAX)
                    })
                });
                keep.push(!too_close);
                if too_close {
                    suppressed += 1;
                } else {
                    released.push(group);
                }
            }
            self.history.record(consumer, released);
            let mut offset = 0;
            let mut kept = Vec::with_capacity(batches.len());
            for batch in batches {
                let mask = BooleanArray::from(keep[offset..offset + batch.num_rows()].to_vec());
                offset += batch.num_rows();
                kept.push(
                    filter_record_batch(&batch, &mask)
                        .map_err(|e| Error::Internal(format!("filter: {e}")))?,
                );
            }
            kept
        };
        let schema = plan.schema().as_arrow().clone();
        let visible: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| !field.name().starts_with(HIDDEN_PREFIX))
            .map(|(index, _)| index)
            .collect();
        let schema = Arc::new(
            schema
                .project(&visible)
                .map_err(|e| Error::Internal(format!("schema: {e}")))?,
        );
        let batches = batches
            .iter()
            .map(|batch| batch.project(&visible))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("project: {e}")))?;
        Ok(QueryOutput {
            schema,
            batches,
            report,
            groups_suppressed_by_differencing: suppressed,
        })
    }

    /// The tables the consumer may see: its own datasets, and the datasets of protocols that
    /// name it as consumer, for this purpose, within their window. First protocol wins a name.
    fn bindings(
        &self,
        request: &QueryRequest,
        protocols: &[Protocol],
        datasets: &[Dataset],
    ) -> Result<(Vec<BoundTable>, Vec<ProtocolRef>)> {
        let mut bindings: Vec<BoundTable> = Vec::new();
        let mut used = Vec::new();
        let mut names = BTreeSet::new();
        for dataset in datasets {
            if dataset.name.to_ascii_lowercase().starts_with(HIDDEN_PREFIX) {
                return Err(Error::invalid("dataset", "reserved dataset name"));
            }
        }
        for dataset in datasets.iter().filter(|d| d.provider == request.consumer) {
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
        let applicable = protocols.iter().filter(|protocol| {
            protocol.consumers.contains(&request.consumer)
                && protocol.purposes.contains(&request.purpose)
                && protocol.validity.not_before <= request.now
                && request.now < protocol.validity.not_after
        });
        for protocol in applicable {
            let protocol = Arc::new(protocol.clone());
            let mut any = false;
            for rule in &protocol.datasets {
                let Some(dataset) = datasets
                    .iter()
                    .find(|d| d.provider == protocol.provider && d.name == rule.name)
                else {
                    continue;
                };
                if !names.insert(dataset.name.clone()) {
                    continue;
                }
                any = true;
                let index = bindings.len();
                bindings.push((
                    Binding {
                        scan_name: format!("{HIDDEN_PREFIX}scan_{index}"),
                        table_name: dataset.name.clone(),
                        shared: Some(SharedRule {
                            protocol: Arc::clone(&protocol),
                            dataset: rule.clone(),
                        }),
                    },
                    Some(dataset.clone()),
                ));
            }
            if any {
                used.push(ProtocolRef {
                    name: protocol.name.clone(),
                    version: protocol.version,
                    hash: protocol.content_hash(),
                });
            }
        }
        Ok((bindings, used))
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

fn group_of(
    batch: &RecordBatch,
    row: usize,
    guards: &[Guard],
    key_columns: &[String],
    key_scope: &str,
) -> Result<RecordedGroup> {
    let mut key = String::from(key_scope);
    for name in key_columns {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("hidden key {name} missing")))?;
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
    let mut counts = Vec::with_capacity(guards.len());
    for guard in guards {
        let column = batch
            .column_by_name(&guard.column)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| Error::Internal(format!("hidden count {} missing", guard.column)))?;
        counts.push((guard.column.clone(), column.value(row).max(0) as u64));
    }
    Ok(RecordedGroup { key, counts })
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
