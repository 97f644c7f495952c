//! The rewrite: splits a checked aggregate (or list) plan in two.
//!
//! The *aggregation* is the consumer's one aggregation over shared data, given the hidden
//! distinct-entity and contributor counts and, on pooled data, each statistic's total and largest
//! contributor part. The engine runs it, withholds the groups under a threshold in Rust (so it
//! can count them by reason, fold them into a remainder row, and apply the differencing
//! defence), and hands the released groups to the *above* plan: the consumer's projections,
//! filters, sorts and limits over the aggregation, which now read a scan of released groups and
//! nothing else. Expressions above the aggregation therefore never see a withheld group, so they
//! cannot fail on one (an error oracle) or order by one.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, NullEquality, Result as DfResult, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::functions::math::expr_fn::abs;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, sum};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias, cast,
    lit,
};
use serde::{Deserialize, Serialize};

use crate::check::{Binding, strip_alias_and_casts, touches_shared};
use crate::error::{Error, Refusal, Result};
use crate::protocol::{AggregateName, ColumnClass};

/// Prefix of every column the engine adds; the consumer's SQL may not use it.
pub(crate) const HIDDEN_PREFIX: &str = "__agora_";
/// The scan the above plan reads the released groups from.
pub(crate) const RELEASED_TABLE: &str = "__agora_released";

/// Why a group was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// Fewer distinct entities than `min_entities_per_row`.
    EntityThreshold,
    /// Fewer distinct contributors than `min_contributors_per_statistic`.
    ContributorCount,
    /// One contributor holds more than `contributor_share_percent_max` of a statistic.
    ContributorDominance,
    /// The group differs too little from one of the consumer's earlier results.
    Differencing,
}

/// A minimum on a hidden distinct count of the aggregation's output.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// The field of the aggregation holding the count.
    pub index: usize,
    /// Its expected name, checked again on the optimized plan.
    pub name: String,
    /// For the report: `entities_0`, `contributors_2`.
    pub label: String,
    pub minimum: u32,
    pub reason: SuppressionReason,
}

/// A maximum share of one contributor in one statistic.
#[derive(Debug, Clone)]
pub(crate) struct ShareGuard {
    /// The field holding the statistic's total over all contributors (a magnitude).
    pub total: usize,
    /// The field holding the largest part of one contributor.
    pub largest: usize,
    pub percent_max: u32,
    /// For the report: `contributor_share_percent_max=25 on sum(shipments.parcels)`.
    pub label: String,
}

/// The guarded aggregation: what the engine runs first.
#[derive(Debug, Clone)]
pub(crate) struct Aggregation {
    /// The consumer's aggregation and its hidden columns.
    pub plan: LogicalPlan,
    /// How many leading fields are the consumer's (group keys, then aggregates).
    pub visible: usize,
    /// How many leading fields are group keys.
    pub keys: usize,
    /// The grouping columns' names, for the differencing scope.
    pub key_labels: Vec<String>,
    pub guards: Vec<Guard>,
    pub shares: Vec<ShareGuard>,
    /// The schema of the released-groups scan (`c0`, `c1`, … with the visible fields' types).
    pub released_schema: SchemaRef,
    /// Set when a protocol asks for withheld groups to be folded into one labelled row.
    pub remainder: Option<Remainder>,
}

/// How to compute the remainder row: the same aggregation without keys, over the rows of the
/// withheld groups only (a semi-join of the aggregation's input with their keys).
#[derive(Debug, Clone)]
pub(crate) struct Remainder {
    pub label: String,
    /// The aggregation's input, with the group keys computed as `__agora_key_{i}` columns.
    pub input: LogicalPlan,
    /// The consumer's aggregate expressions and the hidden ones, over `input`.
    pub aggr_expr: Vec<Expr>,
    /// The contributor columns of `input` that dominance is checked for, with their share.
    pub contributors: Vec<(Column, u32)>,
    /// The key field (of the visible ones) the label goes into: the first text key.
    pub label_key: Option<usize>,
}

pub(crate) struct Rewritten {
    pub aggregation: Aggregation,
    /// The consumer's plan above the aggregation, reading the released groups.
    pub above: LogicalPlan,
}

/// A source column the aggregation must count, and its guard.
#[derive(Debug, Clone)]
struct Wanted {
    scan_name: String,
    column: String,
    alias: String,
    label: String,
    minimum: u32,
    reason: SuppressionReason,
    /// For contributor columns: the maximum share of one contributor, in percent.
    share_percent_max: Option<u32>,
}

/// The counts an aggregation over these bindings must carry, strictest per dataset.
fn wanted_counts(bindings: &[Binding], plan: &LogicalPlan) -> (Vec<Wanted>, Option<String>) {
    let mut wanted = Vec::new();
    let mut first_label = None;
    let mut every_one_asks = true;
    for (index, binding) in bindings.iter().enumerate() {
        let Some(shared) = &binding.shared else {
            continue;
        };
        if !scans(plan, &binding.scan_name) {
            continue;
        }
        let protocol = &shared.protocol;
        let counts = [
            (
                ColumnClass::EntityId,
                "entities",
                protocol.min_entities_per_row(),
                SuppressionReason::EntityThreshold,
            ),
            (
                ColumnClass::Contributor,
                "contributors",
                protocol.min_contributors_per_statistic(),
                SuppressionReason::ContributorCount,
            ),
        ];
        for (class, what, minimum, reason) in counts {
            if let Some(column) = shared.dataset.column_of_class(class) {
                wanted.push(Wanted {
                    scan_name: binding.scan_name.clone(),
                    column: column.to_owned(),
                    alias: format!("{HIDDEN_PREFIX}{what}_{index}"),
                    label: format!("{what}_{index}"),
                    minimum,
                    reason,
                    share_percent_max: (class == ColumnClass::Contributor)
                        .then(|| protocol.contributor_share_percent_max()),
                });
            }
        }
        // Every shared dataset read must ask for a remainder row for there to be one.
        match &protocol.output.suppressed_remainder {
            Some(label) => {
                first_label.get_or_insert_with(|| label.clone());
            }
            None => every_one_asks = false,
        }
    }
    let remainder = if every_one_asks { first_label } else { None };
    (wanted, remainder)
}

fn scans(plan: &LogicalPlan, scan_name: &str) -> bool {
    let mut found = false;
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.table() == scan_name
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    found
}

/// Splits a checked aggregate (or list) plan. The checker guarantees its shape: above the one
/// aggregation over shared data there are only projections, filters, sorts, limits and aliases.
pub(crate) fn split(plan: LogicalPlan, bindings: &[Binding]) -> Result<Rewritten> {
    let mut found = None;
    let above = replace_aggregation(plan, bindings, &mut found)?;
    let aggregation = found.ok_or_else(|| {
        Error::Internal("rewrite: no aggregation over shared data was found".into())
    })?;
    Ok(Rewritten { aggregation, above })
}

fn replace_aggregation(
    plan: LogicalPlan,
    bindings: &[Binding],
    found: &mut Option<Aggregation>,
) -> Result<LogicalPlan> {
    let internal =
        |e: datafusion::common::DataFusionError| Error::Internal(format!("rewrite: {e}"));
    match plan {
        LogicalPlan::Aggregate(aggregate) if touches_shared(bindings, &aggregate.input) => {
            let aggregation = guarded_aggregation(&aggregate, bindings)?;
            let released =
                released_scan(&aggregate.schema, &aggregation.released_schema).map_err(internal)?;
            *found = Some(aggregation);
            Ok(released)
        }
        LogicalPlan::Projection(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_) => {
            let input = plan.inputs()[0].clone();
            let input = replace_aggregation(input, bindings, found)?;
            plan.with_new_exprs(plan.expressions(), vec![input])
                .map_err(internal)
        }
        other => Err(Error::Internal(format!(
            "rewrite: unexpected node above the aggregation: {}",
            other.display()
        ))),
    }
}

/// The scan of released groups, renamed to the aggregation's qualified fields, so that the
/// plan above reads it exactly as it read the aggregation.
fn released_scan(original: &DFSchema, released: &SchemaRef) -> DfResult<LogicalPlan> {
    let table = MemTable::try_new(Arc::clone(released), vec![vec![]])?;
    let scan = LogicalPlanBuilder::scan(RELEASED_TABLE, provider_as_source(Arc::new(table)), None)?
        .build()?;
    let exprs = original
        .iter()
        .enumerate()
        .map(|(index, (qualifier, field))| {
            Expr::Column(Column::new(Some(RELEASED_TABLE), format!("c{index}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(scan),
    )?))
}

fn guarded_aggregation(aggregate: &Aggregate, bindings: &[Binding]) -> Result<Aggregation> {
    let internal =
        |e: datafusion::common::DataFusionError| Error::Internal(format!("rewrite: {e}"));
    let (wanted, remainder_label) = wanted_counts(bindings, &aggregate.input);
    let (input, columns) = expose(aggregate.input.as_ref().clone(), &wanted).map_err(internal)?;
    let visible = aggregate.schema.fields().len();
    let keys = visible - aggregate.aggr_expr.len();
    let mut aggr_expr = aggregate.aggr_expr.clone();
    let mut guards = Vec::new();
    let mut contributors = Vec::new();
    let mut reached = Vec::new();
    for (want, column) in wanted.iter().zip(columns) {
        let Some(column) = column else {
            return Err(Error::Internal(format!(
                "rewrite: column {} of {} is not reachable from the aggregation",
                want.column, want.scan_name
            )));
        };
        // Reuse the consumer's own COUNT(DISTINCT column): a second distinct set of the same
        // column would cost as much again, and keep DataFusion from its single-distinct plan.
        let existing = aggregate
            .aggr_expr
            .iter()
            .position(|expr| is_count_distinct_of(expr, &column));
        let (index, name) = match existing {
            Some(position) => (
                keys + position,
                aggregate.schema.field(keys + position).name().clone(),
            ),
            None => {
                aggr_expr.push(count_distinct(Expr::Column(column.clone())).alias(&want.alias));
                (keys + aggr_expr.len() - 1, want.alias.clone())
            }
        };
        guards.push(Guard {
            index,
            name,
            label: want.label.clone(),
            minimum: want.minimum,
            reason: want.reason,
        });
        if let Some(percent) = want.share_percent_max {
            contributors.push((column.clone(), percent));
        }
        reached.push(column);
    }
    let main = LogicalPlan::Aggregate(
        Aggregate::try_new(
            Arc::new(input.clone()),
            aggregate.group_expr.clone(),
            aggr_expr.clone(),
        )
        .map_err(internal)?,
    );
    let main_fields = main.schema().fields().len();
    let grouping_sets = matches!(aggregate.group_expr.first(), Some(Expr::GroupingSet(_)));
    let statistics: Vec<(Expr, String)> = aggregate
        .aggr_expr
        .iter()
        .filter_map(|expr| magnitude(expr).map(|part| (part, expr.schema_name().to_string())))
        .collect();
    let mut plan = main.clone();
    let mut shares = Vec::new();
    let mut share_columns = Vec::new();
    if !contributors.is_empty() && !statistics.is_empty() {
        if grouping_sets {
            return Err(Refusal::new(
                "grouping_sets",
                "GROUPING SETS",
                "GROUPING SETS, ROLLUP and CUBE are not supported on pooled data (the \
                 contributor share is checked per group); run one query per grouping",
            )
            .into());
        }
        for (number, (contributor, percent)) in contributors.iter().enumerate() {
            let alias = format!("{HIDDEN_PREFIX}dominance_{number}");
            let dominance = dominance_plan(
                &input,
                &aggregate.group_expr,
                keys,
                contributor,
                &statistics,
                &alias,
            )
            .map_err(internal)?;
            let left_keys: Vec<Column> = (0..keys)
                .map(|index| Column::from(main.schema().qualified_field(index)))
                .collect();
            let right_keys: Vec<Column> = (0..keys)
                .map(|index| Column::new(Some(alias.as_str()), main.schema().field(index).name()))
                .collect();
            let builder = LogicalPlanBuilder::from(plan);
            plan = if keys == 0 {
                builder.cross_join(dominance)
            } else {
                builder.join_detailed(
                    dominance,
                    JoinType::Inner,
                    (left_keys, right_keys),
                    None,
                    NullEquality::NullEqualsNull,
                )
            }
            .and_then(LogicalPlanBuilder::build)
            .map_err(internal)?;
            for (statistic, (_, name)) in statistics.iter().enumerate() {
                let total = format!("{HIDDEN_PREFIX}total_{statistic}");
                let largest = format!("{HIDDEN_PREFIX}largest_{statistic}");
                let position = main_fields + share_columns.len();
                share_columns.push(Expr::Column(Column::new(Some(alias.as_str()), &total)));
                share_columns.push(Expr::Column(Column::new(Some(alias.as_str()), &largest)));
                shares.push(ShareGuard {
                    total: position,
                    largest: position + 1,
                    percent_max: *percent,
                    label: format!("contributor_share_percent_max={percent} on {name}"),
                });
            }
        }
        let mut exprs: Vec<Expr> = main
            .schema()
            .iter()
            .map(|(qualifier, field)| Expr::Column(Column::from((qualifier, field))))
            .collect();
        exprs.extend(share_columns);
        plan =
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan)).map_err(internal)?);
    }
    let fields = (0..visible)
        .map(|index| {
            let field = aggregate.schema.field(index);
            Field::new(format!("c{index}"), field.data_type().clone(), true)
        })
        .collect::<Vec<_>>();
    let key_labels = (0..keys)
        .map(|index| aggregate.schema.field(index).name().clone())
        .collect();
    let remainder = match remainder_label {
        Some(label) if keys > 0 && !grouping_sets => Some(
            remainder_of(aggregate, &input, aggr_expr, &contributors, keys, label)
                .map_err(internal)?,
        ),
        _ => None,
    };
    Ok(Aggregation {
        plan,
        visible,
        keys,
        key_labels,
        guards,
        shares,
        released_schema: Arc::new(Schema::new(fields)),
        remainder,
    })
}

/// For the remainder row: the aggregation's input with the group keys as plain columns, and the
/// aggregates, to be aggregated without keys over the rows of withheld groups.
fn remainder_of(
    aggregate: &Aggregate,
    input: &LogicalPlan,
    aggr_expr: Vec<Expr>,
    contributors: &[(Column, u32)],
    keys: usize,
    label: String,
) -> DfResult<Remainder> {
    let mut exprs: Vec<Expr> = input
        .schema()
        .iter()
        .map(|(qualifier, field)| Expr::Column(Column::from((qualifier, field))))
        .collect();
    for (index, key) in aggregate.group_expr.iter().enumerate() {
        exprs.push(key.clone().alias(format!("{HIDDEN_PREFIX}key_{index}")));
    }
    let input = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input.clone()))?);
    let label_key = (0..keys).find(|index| {
        matches!(
            aggregate.schema.field(*index).data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    });
    Ok(Remainder {
        label,
        input,
        aggr_expr,
        contributors: contributors.to_vec(),
        label_key,
    })
}

/// The remainder's aggregation: `aggr_expr` over the rows of `input` whose keys are among the
/// withheld groups' (`withheld`, a scan with columns `k0`, `k1`, …), with the contributor
/// shares of each statistic joined on. Field layout as [`guarded_aggregation`]'s, without keys.
pub(crate) fn remainder_plan(
    remainder: &Remainder,
    statistics_of: &[Expr],
    withheld: LogicalPlan,
    keys: usize,
) -> DfResult<LogicalPlan> {
    let left: Vec<Column> = (0..keys)
        .map(|index| Column::from_name(format!("{HIDDEN_PREFIX}key_{index}")))
        .collect();
    let right: Vec<Column> = (0..keys)
        .map(|index| Column::new(Some("__agora_withheld"), format!("k{index}")))
        .collect();
    let rows = LogicalPlanBuilder::from(remainder.input.clone())
        .join_detailed(
            withheld,
            JoinType::LeftSemi,
            (left, right),
            None,
            NullEquality::NullEqualsNull,
        )?
        .build()?;
    let main = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(rows.clone()),
        vec![],
        remainder.aggr_expr.clone(),
    )?);
    let statistics: Vec<(Expr, String)> = statistics_of
        .iter()
        .filter_map(|expr| magnitude(expr).map(|part| (part, String::new())))
        .collect();
    if remainder.contributors.is_empty() || statistics.is_empty() {
        return Ok(main);
    }
    let mut plan = main.clone();
    let mut share_columns = Vec::new();
    for (number, (contributor, _)) in remainder.contributors.iter().enumerate() {
        let alias = format!("{HIDDEN_PREFIX}dominance_{number}");
        let dominance = dominance_plan(&rows, &[], 0, contributor, &statistics, &alias)?;
        plan = LogicalPlanBuilder::from(plan)
            .cross_join(dominance)?
            .build()?;
        for statistic in 0..statistics.len() {
            for what in ["total", "largest"] {
                share_columns.push(Expr::Column(Column::new(
                    Some(alias.as_str()),
                    format!("{HIDDEN_PREFIX}{what}_{statistic}"),
                )));
            }
        }
    }
    let mut exprs: Vec<Expr> = main
        .schema()
        .iter()
        .map(|(qualifier, field)| Expr::Column(Column::from((qualifier, field))))
        .collect();
    exprs.extend(share_columns);
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

/// Each statistic's total and largest contributor part, per group:
/// `SELECT keys, SUM(part), MAX(part) FROM (SELECT keys, contributor, <part> … GROUP BY keys,
/// contributor) GROUP BY keys`, aliased so its columns do not clash with the aggregation's.
fn dominance_plan(
    input: &LogicalPlan,
    group_expr: &[Expr],
    keys: usize,
    contributor: &Column,
    statistics: &[(Expr, String)],
    alias: &str,
) -> DfResult<LogicalPlan> {
    let mut inner_groups = group_expr.to_vec();
    inner_groups.push(Expr::Column(contributor.clone()));
    let parts: Vec<Expr> = statistics
        .iter()
        .enumerate()
        .map(|(index, (part, _))| part.clone().alias(format!("{HIDDEN_PREFIX}part_{index}")))
        .collect();
    let inner = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input.clone()),
        inner_groups,
        parts,
    )?);
    let outer_groups: Vec<Expr> = (0..keys)
        .map(|index| Expr::Column(Column::from(inner.schema().qualified_field(index))))
        .collect();
    let mut outer_aggregates = Vec::new();
    for index in 0..statistics.len() {
        let part = Expr::Column(Column::from_name(format!("{HIDDEN_PREFIX}part_{index}")));
        outer_aggregates.push(sum(part.clone()).alias(format!("{HIDDEN_PREFIX}total_{index}")));
        outer_aggregates.push(max(part).alias(format!("{HIDDEN_PREFIX}largest_{index}")));
    }
    let outer = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(inner),
        outer_groups,
        outer_aggregates,
    )?);
    Ok(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
        Arc::new(outer),
        alias,
    )?))
}

/// One contributor's part of a statistic, as an aggregate over its rows: the rows it counts for
/// COUNT, the sum of absolute values of the argument for SUM, AVG and the other functions of a
/// metric. `None` for what is not a statistic.
fn magnitude(expr: &Expr) -> Option<Expr> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = strip_alias_and_casts(expr)
    else {
        return None;
    };
    let argument = params.args.first().cloned().unwrap_or_else(|| lit(1i64));
    match AggregateName::from_datafusion(func.name(), params.distinct)? {
        AggregateName::Count | AggregateName::CountDistinct => Some(count(argument)),
        _ => Some(sum(abs(cast(argument, DataType::Float64)))),
    }
}

fn is_count_distinct_of(expr: &Expr, column: &Column) -> bool {
    match strip_alias_and_casts(expr) {
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            func.name().eq_ignore_ascii_case("count")
                && params.distinct
                && params.filter.is_none()
                && params.order_by.is_empty()
                && matches!(params.args.as_slice(), [Expr::Column(argument)] if argument == column)
        }
        _ => false,
    }
}

/// Makes each wanted source column reachable at the output of `plan` (below the aggregation),
/// returning the column to reference it by.
fn expose(plan: LogicalPlan, wanted: &[Wanted]) -> DfResult<(LogicalPlan, Vec<Option<Column>>)> {
    match plan {
        LogicalPlan::TableScan(ref scan) => {
            let found = wanted
                .iter()
                .map(|want| {
                    (scan.table_name.table() == want.scan_name
                        && scan
                            .projected_schema
                            .has_column_with_unqualified_name(&want.column))
                    .then(|| Column::new(Some(scan.table_name.clone()), &want.column))
                })
                .collect();
            Ok((plan, found))
        }
        LogicalPlan::Projection(projection) => {
            let (input, found) = expose(projection.input.as_ref().clone(), wanted)?;
            let mut exprs = projection.expr.clone();
            let mut exposed = Vec::with_capacity(found.len());
            for (want, column) in wanted.iter().zip(found) {
                exposed.push(column.map(|column| {
                    // A column the projection already passes on as it is keeps its name, so
                    // that the consumer's COUNT(DISTINCT it) and the guard's are one.
                    let passed = projection
                        .expr
                        .iter()
                        .position(|expr| matches!(expr, Expr::Column(c) if *c == column));
                    match passed {
                        Some(index) => Column::from(projection.schema.qualified_field(index)),
                        None => {
                            exprs.push(Expr::Column(column).alias(&want.alias));
                            Column::from_name(&want.alias)
                        }
                    }
                }));
            }
            Ok((
                LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?),
                exposed,
            ))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let (input, found) = expose(alias.input.as_ref().clone(), wanted)?;
            let qualifier: TableReference = alias.alias.clone();
            let exposed = found
                .into_iter()
                .map(|column| {
                    column.map(|column| Column::new(Some(qualifier.clone()), column.name))
                })
                .collect();
            Ok((
                LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), qualifier)?),
                exposed,
            ))
        }
        LogicalPlan::Filter(_) | LogicalPlan::Sort(_) | LogicalPlan::Join(_) => {
            let mut inputs = Vec::new();
            let mut exposed: Vec<Option<Column>> = vec![None; wanted.len()];
            for input in plan.inputs() {
                let (input, found) = expose(input.clone(), wanted)?;
                for (slot, column) in exposed.iter_mut().zip(found) {
                    if slot.is_none() {
                        *slot = column;
                    }
                }
                inputs.push(input);
            }
            let exprs = plan.expressions();
            Ok((plan.with_new_exprs(exprs, inputs)?, exposed))
        }
        other => Ok((other, vec![None; wanted.len()])),
    }
}
