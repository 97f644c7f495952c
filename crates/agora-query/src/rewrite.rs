//! The rewrite: adds to the aggregation the hidden distinct-entity and contributor counts,
//! suppresses rows under the thresholds, and carries the hidden counts and group keys to the
//! output so the engine can compare results for differencing.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column, Result as DfResult, TableReference};
use datafusion::functions_aggregate::expr_fn::count_distinct;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, LogicalPlan, Projection, SubqueryAlias, lit,
};

use crate::check::{Binding, Guard, touches_shared};
use crate::error::{Error, Result};
use crate::protocol::ColumnClass;

/// Prefix of every column the engine adds; the consumer's SQL may not use it.
pub(crate) const HIDDEN_PREFIX: &str = "__agora_";

/// A source column the aggregation must count, and its guard.
#[derive(Debug, Clone)]
struct Wanted {
    scan_name: String,
    column: String,
    alias: String,
}

pub(crate) struct Rewritten {
    pub plan: LogicalPlan,
    pub guards: Vec<Guard>,
    /// Hidden output columns holding the group key, in group order.
    pub key_columns: Vec<String>,
    /// The grouping columns' names, in the same order.
    pub key_labels: Vec<String>,
}

/// The counts an aggregation over these bindings must carry, strictest per dataset.
fn wanted_counts(bindings: &[Binding], plan: &LogicalPlan) -> (Vec<Wanted>, Vec<Guard>) {
    let mut wanted = Vec::new();
    let mut guards = Vec::new();
    for (index, binding) in bindings.iter().enumerate() {
        let Some(shared) = &binding.shared else {
            continue;
        };
        if !scans(plan, &binding.scan_name) {
            continue;
        }
        let counts = [
            (
                ColumnClass::EntityId,
                "entities",
                shared.protocol.min_entities_per_row(),
            ),
            (
                ColumnClass::Contributor,
                "contributors",
                shared.protocol.min_contributors_per_statistic(),
            ),
        ];
        for (class, what, minimum) in counts {
            if let Some(column) = shared.dataset.column_of_class(class) {
                let alias = format!("{HIDDEN_PREFIX}{what}_{index}");
                wanted.push(Wanted {
                    scan_name: binding.scan_name.clone(),
                    column: column.to_owned(),
                    alias: alias.clone(),
                });
                guards.push(Guard {
                    column: alias,
                    minimum,
                });
            }
        }
    }
    (wanted, guards)
}

fn scans(plan: &LogicalPlan, scan_name: &str) -> bool {
    let mut found = false;
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.table() == scan_name
        {
            found = true;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    found
}

/// Rewrites a checked aggregate (or list) plan. The checker guarantees its shape: above the one
/// aggregation over shared data there are only projections, filters, sorts, limits and aliases.
pub(crate) fn add_guards(plan: LogicalPlan, bindings: &[Binding]) -> Result<Rewritten> {
    let mut guards = Vec::new();
    let mut key_columns = Vec::new();
    let mut key_labels = Vec::new();
    let plan = rewrite_above(
        plan,
        bindings,
        &mut guards,
        &mut (&mut key_columns, &mut key_labels),
    )
    .map_err(|e| Error::Internal(format!("rewrite: {e}")))?
    .0;
    Ok(Rewritten {
        plan,
        guards,
        key_columns,
        key_labels,
    })
}

fn rewrite_above(
    plan: LogicalPlan,
    bindings: &[Binding],
    guards: &mut Vec<Guard>,
    keys: &mut (&mut Vec<String>, &mut Vec<String>),
) -> DfResult<(LogicalPlan, Vec<String>)> {
    match plan {
        LogicalPlan::Aggregate(aggregate) if touches_shared(bindings, &aggregate.input) => {
            let (wanted, found_guards) = wanted_counts(bindings, &aggregate.input);
            let (input, columns) = expose(aggregate.input.as_ref().clone(), &wanted)?;
            let mut aggr_expr = aggregate.aggr_expr.clone();
            let mut hidden = Vec::new();
            for ((want, guard), column) in wanted.iter().zip(found_guards).zip(columns) {
                let Some(column) = column else {
                    return datafusion::common::plan_err!(
                        "column {} of {} is not reachable from the aggregation",
                        want.column,
                        want.scan_name
                    );
                };
                aggr_expr.push(count_distinct(Expr::Column(column)).alias(&want.alias));
                hidden.push(want.alias.clone());
                guards.push(guard);
            }
            let group_count = aggregate.schema.fields().len() - aggregate.aggr_expr.len();
            let original = aggregate.schema.clone();
            let guarded = LogicalPlan::Aggregate(Aggregate::try_new(
                Arc::new(input),
                aggregate.group_expr.clone(),
                aggr_expr,
            )?);
            let guarded = match conjunction(guards.iter().map(|guard| {
                Expr::Column(Column::from_name(&guard.column)).gt_eq(lit(i64::from(guard.minimum)))
            })) {
                Some(predicate) => {
                    LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(guarded))?)
                }
                None => guarded,
            };
            let mut exprs: Vec<Expr> = original
                .iter()
                .map(|(qualifier, field)| Expr::Column(Column::from((qualifier, field))))
                .collect();
            for name in &hidden {
                exprs.push(Expr::Column(Column::from_name(name)));
            }
            for index in 0..group_count {
                let name = format!("{HIDDEN_PREFIX}key_{index}");
                let (qualifier, field) = original.qualified_field(index);
                exprs.push(Expr::Column(Column::from((qualifier, field))).alias(&name));
                keys.0.push(name.clone());
                keys.1.push(field.name().clone());
                hidden.push(name);
            }
            let projected = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(guarded))?);
            Ok((projected, hidden))
        }
        LogicalPlan::Projection(projection) => {
            let (input, hidden) =
                rewrite_above(projection.input.as_ref().clone(), bindings, guards, keys)?;
            let mut exprs = projection.expr.clone();
            for name in &hidden {
                exprs.push(Expr::Column(Column::from_name(name)));
            }
            Ok((
                LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?),
                hidden,
            ))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let (input, hidden) =
                rewrite_above(alias.input.as_ref().clone(), bindings, guards, keys)?;
            Ok((
                LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                    Arc::new(input),
                    alias.alias.clone(),
                )?),
                hidden,
            ))
        }
        LogicalPlan::Filter(_) | LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
            let input = plan.inputs()[0].clone();
            let (input, hidden) = rewrite_above(input, bindings, guards, keys)?;
            let exprs = plan.expressions();
            Ok((plan.with_new_exprs(exprs, vec![input])?, hidden))
        }
        other => Ok((other, Vec::new())),
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
                    exprs.push(Expr::Column(column).alias(&want.alias));
                    Column::from_name(&want.alias)
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
