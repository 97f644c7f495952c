//! The plan checker: walks a type-coerced DataFusion plan, follows every expression back to the
//! dataset columns it comes from, and refuses what the protocols forbid.
//!
//! It checks the shape of an aggregate query (one aggregation between the shared data and the
//! output, nothing row-level leaving), the class of every column each expression touches, the
//! functions used, joins and comparisons. `verify_guards` checks the optimized plan again.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::{grouping_set_to_exprlist, split_conjunction};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Distinct, Expr, ExprSchemable, Join, JoinType, LogicalPlan, Operator,
};

use crate::engine::ProtocolRef;
use crate::error::Refusal;
use crate::protocol::{AggregateName, AnalysisType, ColumnClass, DatasetRule, Protocol};
use crate::rewrite::Guard;

/// A table the consumer's catalog can reach, and the rules it comes with.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// The name of the scan in the plan: the raw scan inside a shared dataset's view, or the
    /// consumer's own table name.
    pub scan_name: String,
    /// The name the consumer sees.
    pub table_name: String,
    /// `None` for the consumer's own data, which has full SQL.
    pub shared: Option<SharedRule>,
}

#[derive(Debug, Clone)]
pub(crate) struct SharedRule {
    /// The rules applied: the strictest of every protocol in `protocols`.
    pub protocol: Arc<Protocol>,
    pub dataset: DatasetRule,
    /// Every protocol version that shares this dataset with the consumer for the purpose.
    pub protocols: Vec<ProtocolRef>,
}

/// One column of one binding.
pub(crate) type Source = (usize, String);
/// The source columns one output field is computed from.
pub(crate) type Sources = BTreeSet<Source>;

/// The class of a source column as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Own,
    Shared(ColumnClass),
}

/// Columns that may only join or be counted.
fn is_protected(class: Class) -> bool {
    matches!(
        class,
        Class::Shared(ColumnClass::EntityId | ColumnClass::JoinKey | ColumnClass::Contributor)
    )
}

/// What the checker learnt about a plan it accepted.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub shared_bindings: BTreeSet<usize>,
    pub joined_with_own: BTreeSet<usize>,
    pub aggregates: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Between the output and the aggregation (or anywhere, for row-level protocols).
    Above,
    /// Between the aggregation and the shared data.
    Below,
}

pub(crate) struct Checker<'a> {
    bindings: &'a [Binding],
    mode: AnalysisType,
    pub findings: Findings,
}

pub(crate) fn binding_of(bindings: &[Binding], plan: &LogicalPlan) -> Option<usize> {
    match plan {
        LogicalPlan::TableScan(scan) => bindings
            .iter()
            .position(|binding| binding.scan_name == scan.table_name.table()),
        _ => None,
    }
}

/// Whether a plan reads any shared dataset.
pub(crate) fn touches_shared(bindings: &[Binding], plan: &LogicalPlan) -> bool {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        if let Some(index) = binding_of(bindings, node)
            && bindings[index].shared.is_some()
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    found
}

/// The strictest analysis type among the shared datasets a plan reads, if any.
pub(crate) fn strictest_mode(bindings: &[Binding], plan: &LogicalPlan) -> Option<AnalysisType> {
    let mut mode = None;
    plan.apply_with_subqueries(|node| {
        if let Some(index) = binding_of(bindings, node)
            && let Some(shared) = &bindings[index].shared
        {
            mode = mode.max(Some(shared.protocol.analysis));
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    mode
}

/// `SELECT DISTINCT …` becomes the equivalent `GROUP BY`, so that one rule covers both.
pub(crate) fn distinct_to_aggregate(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let group_expr = input
                .schema()
                .iter()
                .map(|(qualifier, field)| Expr::Column((qualifier, field).into()))
                .collect();
            Ok(datafusion::common::tree_node::Transformed::yes(
                LogicalPlan::Aggregate(Aggregate::try_new(input, group_expr, vec![])?),
            ))
        }
        other => Ok(datafusion::common::tree_node::Transformed::no(other)),
    })
    .map(|transformed| transformed.data)
}

impl<'a> Checker<'a> {
    pub fn new(bindings: &'a [Binding], mode: AnalysisType) -> Self {
        Self {
            bindings,
            mode,
            findings: Findings::default(),
        }
    }

    fn shared(&self, index: usize) -> Option<&SharedRule> {
        self.bindings[index].shared.as_ref()
    }

    fn class(&self, (index, column): &Source) -> Class {
        match self.shared(*index) {
            None => Class::Own,
            Some(rule) => Class::Shared(
                rule.dataset
                    .class_of(column)
                    .unwrap_or(ColumnClass::Blocked),
            ),
        }
    }

    fn classes<'s>(&self, sources: &'s Sources) -> Vec<(Class, &'s Source)> {
        sources
            .iter()
            .map(|source| (self.class(source), source))
            .collect()
    }

    /// Checks the whole plan; returns the lineage of its output fields.
    pub fn check(&mut self, plan: &LogicalPlan) -> Result<Vec<Sources>, Refusal> {
        let lineage = self.visit(plan, Position::Above)?;
        // Row-level protocols: protected columns still never leave.
        for (index, sources) in lineage.iter().enumerate() {
            for (class, _) in self.classes(sources) {
                if is_protected(class) {
                    let (_, field) = plan.schema().qualified_field(index);
                    return Err(Refusal::new(
                        "protected_column_in_output",
                        field.name(),
                        "entity_id, join_key and contributor columns never appear in output",
                    ));
                }
            }
        }
        for index in &self.findings.shared_bindings {
            let shared = self
                .shared(*index)
                .expect("only shared bindings are recorded");
            if shared.protocol.joins.join_required_with_own_data
                && !self.findings.joined_with_own.contains(index)
            {
                return Err(Refusal::new(
                    "join_required",
                    &self.bindings[*index].table_name,
                    format!(
                        "protocol `{}` requires joining `{}` with your own data on a join key",
                        shared.protocol.name, self.bindings[*index].table_name
                    ),
                ));
            }
        }
        if self.mode != AnalysisType::Rows && self.findings.aggregates == 0 {
            return Err(Refusal::new(
                "row_level_output",
                "SELECT",
                "this protocol releases only aggregates: add GROUP BY and aggregate functions",
            ));
        }
        Ok(lineage)
    }

    fn visit(&mut self, plan: &LogicalPlan, position: Position) -> Result<Vec<Sources>, Refusal> {
        let shared_below = touches_shared(self.bindings, plan);
        for expr in plan.expressions() {
            refuse_subqueries_and_parameters(&expr)?;
        }
        match plan {
            LogicalPlan::TableScan(scan) => {
                let binding = binding_of(self.bindings, plan);
                if let Some(index) = binding
                    && self.shared(index).is_some()
                {
                    self.findings.shared_bindings.insert(index);
                    if position == Position::Above && self.mode != AnalysisType::Rows {
                        return Err(Refusal::new(
                            "row_level_output",
                            &self.bindings[index].table_name,
                            "this protocol releases only aggregates: rows of the dataset \
                             cannot reach the output",
                        ));
                    }
                }
                Ok(scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|field| match binding {
                        Some(index) => BTreeSet::from([(index, field.name().clone())]),
                        None => BTreeSet::new(),
                    })
                    .collect())
            }
            LogicalPlan::Projection(projection) => {
                let input = self.visit(&projection.input, position)?;
                let mut lineage = Vec::with_capacity(projection.expr.len());
                for expr in &projection.expr {
                    let sources = sources_of(expr, projection.input.schema(), &input);
                    if position == Position::Below {
                        self.check_row_expr(expr, projection.input.schema(), &input)?;
                    }
                    lineage.push(sources);
                }
                Ok(lineage)
            }
            LogicalPlan::Filter(filter) => {
                let input = self.visit(&filter.input, position)?;
                if position == Position::Below || self.mode == AnalysisType::Rows {
                    let sources = sources_of(&filter.predicate, filter.input.schema(), &input);
                    for (class, (_, column)) in self.classes(&sources) {
                        if is_protected(class) {
                            return Err(Refusal::new(
                                "filter_on_protected_column",
                                &filter.predicate,
                                format!(
                                    "`{column}` is an entity_id, join_key or contributor column: \
                                     it cannot be filtered on or compared with values; to \
                                     match rows with another table, use JOIN … ON with `=`"
                                ),
                            ));
                        }
                    }
                    self.check_row_expr(&filter.predicate, filter.input.schema(), &input)?;
                }
                Ok(input)
            }
            LogicalPlan::Sort(sort) => self.visit(&sort.input, position),
            LogicalPlan::Limit(limit) => {
                if position == Position::Below && shared_below {
                    return Err(Refusal::new(
                        "limit_below_aggregate",
                        plan.display(),
                        "LIMIT inside an aggregated subquery can single out rows",
                    ));
                }
                self.visit(&limit.input, position)
            }
            LogicalPlan::SubqueryAlias(alias) => self.visit(&alias.input, position),
            LogicalPlan::Join(join) => {
                let left = self.visit(&join.left, position)?;
                let right = self.visit(&join.right, position)?;
                if shared_below {
                    self.check_join(join, &left, &right)?;
                }
                Ok(match join.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left,
                    JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right,
                    _ => left.into_iter().chain(right).collect(),
                })
            }
            LogicalPlan::Aggregate(aggregate) => {
                if !shared_below {
                    let input = self.visit(&aggregate.input, position)?;
                    return Ok(aggregate_lineage(aggregate, &input));
                }
                if position == Position::Below && self.mode != AnalysisType::Rows {
                    return Err(Refusal::new(
                        "nested_aggregation",
                        plan.display(),
                        "aggregating shared data twice (a subquery or CTE that aggregates, then \
                         a query over it) is refused: small inner groups would escape the \
                         thresholds; write one GROUP BY",
                    ));
                }
                self.findings.aggregates += 1;
                let inner = if self.mode == AnalysisType::Rows {
                    position
                } else {
                    Position::Below
                };
                let input = self.visit(&aggregate.input, inner)?;
                self.check_aggregate(aggregate, &input)?;
                let mut lineage = aggregate_lineage(aggregate, &input);
                // An aggregate's value is a statistic: counting entities is what it is for.
                let first_aggregate = lineage.len() - aggregate.aggr_expr.len();
                for sources in &mut lineage[first_aggregate..] {
                    sources.retain(|source| !is_protected(self.class(source)));
                }
                Ok(lineage)
            }
            LogicalPlan::Window(window) => {
                if shared_below {
                    return Err(Refusal::new(
                        "window_function",
                        window
                            .window_expr
                            .first()
                            .map_or(String::new(), |e| e.to_string()),
                        "window functions return row-level values and are refused on shared data",
                    ));
                }
                let input = self.visit(&window.input, position)?;
                let mut lineage = input.clone();
                for expr in &window.window_expr {
                    lineage.push(sources_of(expr, window.input.schema(), &input));
                }
                Ok(lineage)
            }
            LogicalPlan::Union(union) => {
                if shared_below && self.mode != AnalysisType::Rows {
                    return Err(Refusal::new(
                        "union",
                        "UNION",
                        "UNION over shared data is refused: the parts could be differenced; \
                         run the parts as separate queries",
                    ));
                }
                let mut lineage: Vec<Sources> = Vec::new();
                for input in &union.inputs {
                    let part = self.visit(input, position)?;
                    if lineage.is_empty() {
                        lineage = part;
                    } else {
                        for (all, one) in lineage.iter_mut().zip(part) {
                            all.extend(one);
                        }
                    }
                }
                Ok(lineage)
            }
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                Ok(vec![BTreeSet::new(); plan.schema().fields().len()])
            }
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) | LogicalPlan::DescribeTable(_) => {
                if shared_below {
                    return Err(Refusal::new(
                        "explain",
                        "EXPLAIN",
                        "plans of queries over shared data are not shown",
                    ));
                }
                Ok(vec![BTreeSet::new(); plan.schema().fields().len()])
            }
            LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_) => Err(Refusal::new(
                "statement",
                plan.display(),
                "only SELECT queries run here",
            )),
            other => {
                if shared_below {
                    Err(Refusal::new(
                        "plan_node",
                        other.display(),
                        "this construct is not supported on shared data",
                    ))
                } else {
                    let mut lineage = Vec::new();
                    for input in other.inputs() {
                        lineage = self.visit(input, position)?;
                    }
                    lineage.resize(other.schema().fields().len(), BTreeSet::new());
                    Ok(lineage)
                }
            }
        }
    }

    /// Rules for expressions computed on rows of shared data (below the aggregation).
    fn check_row_expr(
        &self,
        expr: &Expr,
        schema: &DFSchema,
        input: &[Sources],
    ) -> Result<(), Refusal> {
        let bare = matches!(strip_alias_and_casts(expr), Expr::Column(_));
        if !bare {
            let sources = sources_of(expr, schema, input);
            if !sources
                .iter()
                .any(|(index, _)| self.shared(*index).is_some())
            {
                return Ok(());
            }
            for (class, (_, column)) in self.classes(&sources) {
                if is_protected(class) {
                    return Err(Refusal::new(
                        "protected_column_expression",
                        expr,
                        format!(
                            "`{column}` is an entity_id, join_key or contributor column: it may \
                             only be joined on or counted, not used in expressions"
                        ),
                    ));
                }
            }
        }
        let mut refusal = None;
        expr.apply(|node| {
            let found = match node {
                Expr::Case(_) if self.mode != AnalysisType::Rows => Some(Refusal::new(
                    "case_singling_out",
                    node,
                    "CASE over shared rows can single out one row inside an aggregate; \
                     group by the dimension instead",
                )),
                Expr::ScalarFunction(function)
                    if self.mode != AnalysisType::Rows
                        && matches!(function.name(), "nullif" | "nvl2" | "if") =>
                {
                    Some(Refusal::new(
                        "case_singling_out",
                        node,
                        "conditional functions over shared rows can single out one row; \
                         group by the dimension instead",
                    ))
                }
                Expr::BinaryExpr(BinaryExpr {
                    op: Operator::Divide | Operator::Modulo,
                    right,
                    ..
                }) if !is_nonzero_literal(right) => Some(Refusal::new(
                    "error_oracle",
                    node,
                    "division by a column of shared rows can fail on one row's value and so \
                     reveal it; divide aggregates instead (SUM(a) / SUM(b))",
                )),
                Expr::Cast(cast)
                    if is_string(cast.expr.get_type(schema).ok().as_ref())
                        && !is_string(Some(cast.field.data_type())) =>
                {
                    Some(Refusal::new(
                        "error_oracle",
                        node,
                        "a cast from text can fail on one row's value and so reveal it; \
                         use TRY_CAST",
                    ))
                }
                _ => None,
            };
            if let Some(found) = found {
                refusal = Some(found);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("the visitor never fails");
        refusal.map_or(Ok(()), Err)
    }

    fn check_join(
        &mut self,
        join: &Join,
        left: &[Sources],
        right: &[Sources],
    ) -> Result<(), Refusal> {
        if join.join_type != JoinType::Inner {
            return Err(Refusal::new(
                "join_type",
                format!("{} JOIN", join.join_type),
                "only INNER JOIN is allowed on shared data: outer joins reveal rows outside the overlap",
            ));
        }
        let mut pairs: Vec<(Expr, Expr)> = join.on.clone();
        if let Some(filter) = &join.filter {
            for conjunct in split_conjunction(filter) {
                match conjunct {
                    Expr::BinaryExpr(BinaryExpr {
                        left: l,
                        op: Operator::Eq,
                        right: r,
                    }) if matches!(strip_alias_and_casts(l), Expr::Column(_))
                        && matches!(strip_alias_and_casts(r), Expr::Column(_)) =>
                    {
                        pairs.push((l.as_ref().clone(), r.as_ref().clone()));
                    }
                    other => {
                        return Err(Refusal::new(
                            "join_operator",
                            other,
                            "join conditions on shared data must be `a.key = b.key`, \
                             combined with AND only (no OR, inequalities or other expressions)",
                        ));
                    }
                }
            }
        }
        if pairs.is_empty() {
            return Err(Refusal::new(
                "join_column",
                "CROSS JOIN",
                "shared data joins only on a join_key with `=`",
            ));
        }
        let left_schema = join.left.schema();
        let right_schema = join.right.schema();
        for (l, r) in &pairs {
            // Either side of the pair may come from either input.
            let mut sides = Vec::new();
            for expr in [l, r] {
                let mut sources = sources_of(expr, left_schema, left);
                sources.extend(sources_of(expr, right_schema, right));
                sides.push(sources);
            }
            let mut shared_keys = Vec::new();
            let mut own_side = false;
            for sources in &sides {
                for source in sources {
                    match self.class(source) {
                        Class::Own => own_side = true,
                        Class::Shared(class) => {
                            let shared = self.shared(source.0).expect("shared class");
                            if class != ColumnClass::JoinKey
                                || !shared.protocol.is_joinable(&shared.dataset, &source.1)
                            {
                                return Err(Refusal::new(
                                    "join_column",
                                    format!("{l} = {r}"),
                                    format!(
                                        "`{}` is a `{}` column; shared data joins only on its \
                                         allowed join_key columns",
                                        source.1,
                                        class.as_str()
                                    ),
                                ));
                            }
                            shared_keys.push(source.0);
                        }
                    }
                }
            }
            if own_side {
                self.findings.joined_with_own.extend(shared_keys);
            }
        }
        Ok(())
    }

    fn check_aggregate(&self, aggregate: &Aggregate, input: &[Sources]) -> Result<(), Refusal> {
        let schema = aggregate.input.schema();
        let protocols: Vec<&Protocol> = input
            .iter()
            .flatten()
            .filter_map(|(index, _)| self.shared(*index).map(|s| s.protocol.as_ref()))
            .collect();
        let group_exprs = grouping_set_to_exprlist(&aggregate.group_expr)
            .map_err(|e| Refusal::new("plan_node", "GROUP BY", e.to_string()))?;
        for expr in group_exprs {
            let sources = sources_of(expr, schema, input);
            for (class, (_, column)) in self.classes(&sources) {
                let refusal = match class {
                    c if is_protected(c) => Some((
                        "group_by_protected_column",
                        "entity_id, join_key and contributor columns cannot be grouped on",
                    )),
                    Class::Shared(ColumnClass::Metric) if self.mode != AnalysisType::Rows => {
                        Some((
                            "group_by_metric",
                            "metric columns are aggregated, not grouped on",
                        ))
                    }
                    _ => None,
                };
                if let Some((rule, why)) = refusal {
                    return Err(Refusal::new(rule, expr, format!("`{column}`: {why}")));
                }
            }
        }
        for expr in &aggregate.aggr_expr {
            if self.mode == AnalysisType::List {
                return Err(Refusal::new(
                    "list_output",
                    expr,
                    "a list protocol releases distinct values only: remove aggregate functions",
                ));
            }
            let Expr::AggregateFunction(AggregateFunction { func, params }) =
                strip_alias_and_casts(expr)
            else {
                return Err(Refusal::new(
                    "aggregate_function",
                    expr,
                    "not an aggregate function",
                ));
            };
            let name = AggregateName::from_datafusion(func.name(), params.distinct);
            let allowed =
                name.is_some_and(|name| protocols.iter().all(|p| p.allows_aggregate(name)));
            if !allowed && self.mode != AnalysisType::Rows {
                return Err(Refusal::new(
                    "aggregate_function",
                    expr,
                    format!(
                        "`{}` is not allowed by the protocol (allowed by default: COUNT, \
                         COUNT(DISTINCT), SUM, AVG)",
                        func.name().to_uppercase()
                    ),
                ));
            }
            if let Some(filter) = &params.filter {
                return Err(Refusal::new(
                    "aggregate_filter",
                    filter,
                    "FILTER (WHERE …) on an aggregate narrows one statistic below the row's \
                     threshold; use WHERE or GROUP BY",
                ));
            }
            let counting = matches!(
                name,
                Some(AggregateName::Count | AggregateName::CountDistinct)
            );
            for argument in &params.args {
                self.check_row_expr(argument, schema, input)?;
                let sources = sources_of(argument, schema, input);
                if !counting {
                    for (class, (_, column)) in self.classes(&sources) {
                        if !matches!(class, Class::Own | Class::Shared(ColumnClass::Metric)) {
                            return Err(Refusal::new(
                                "aggregate_argument",
                                expr,
                                format!("`{column}` is not a metric: only metrics are aggregated"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_string(data_type: Option<&DataType>) -> bool {
    matches!(
        data_type,
        Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    )
}

fn is_nonzero_literal(expr: &Expr) -> bool {
    match strip_alias_and_casts(expr) {
        Expr::Literal(value, _) => !value.is_null() && !is_zero(value),
        _ => false,
    }
}

fn is_zero(value: &ScalarValue) -> bool {
    value
        .to_string()
        .parse::<f64>()
        .is_ok_and(|number| number == 0.0)
}

pub(crate) fn strip_alias_and_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias_and_casts(&alias.expr),
        Expr::Cast(cast) => strip_alias_and_casts(&cast.expr),
        Expr::TryCast(cast) => strip_alias_and_casts(&cast.expr),
        other => other,
    }
}

fn refuse_subqueries_and_parameters(expr: &Expr) -> Result<(), Refusal> {
    let mut refusal = None;
    expr.apply(|node| {
        refusal = match node {
            Expr::ScalarSubquery(_)
            | Expr::InSubquery(_)
            | Expr::Exists(_)
            | Expr::SetComparison(_)
            | Expr::OuterReferenceColumn(..) => Some(Refusal::new(
                "subquery",
                node,
                "subqueries in expressions are refused; use a JOIN on a join key",
            )),
            Expr::Placeholder(_) => Some(Refusal::new(
                "parameter",
                node,
                "parameters are not bound here: write values in the query",
            )),
            Expr::ScalarVariable(..) => Some(Refusal::new(
                "parameter",
                node,
                "session variables are not available",
            )),
            _ => None,
        };
        Ok(if refusal.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .expect("the visitor never fails");
    refusal.map_or(Ok(()), Err)
}

/// The source columns an expression reads, through the input's lineage.
pub(crate) fn sources_of(expr: &Expr, schema: &DFSchema, input: &[Sources]) -> Sources {
    let mut sources = BTreeSet::new();
    for column in expr.column_refs() {
        if let Ok(index) = schema.index_of_column(column)
            && let Some(found) = input.get(index)
        {
            sources.extend(found.iter().cloned());
        }
    }
    sources
}

fn aggregate_lineage(aggregate: &Aggregate, input: &[Sources]) -> Vec<Sources> {
    let schema = aggregate.input.schema();
    let mut lineage: Vec<Sources> = grouping_set_to_exprlist(&aggregate.group_expr)
        .unwrap_or_default()
        .into_iter()
        .map(|expr| sources_of(expr, schema, input))
        .collect();
    let fields = aggregate.schema.fields().len();
    // A grouping set adds an internal grouping id column after the group columns.
    while lineage.len() + aggregate.aggr_expr.len() < fields {
        lineage.push(BTreeSet::new());
    }
    for expr in &aggregate.aggr_expr {
        lineage.push(sources_of(expr, schema, input));
    }
    lineage
}

/// Checks the optimized aggregation and the optimized plan above it: every hidden count is still
/// the field it was, no forbidden node appeared, the minimum-age filter still applies to each
/// scan that needs one, and the plan above reads nothing but the released groups.
pub(crate) fn verify_optimized(
    aggregation: &LogicalPlan,
    above: &LogicalPlan,
    bindings: &[Binding],
    guards: &[Guard],
    fields: usize,
    mode: AnalysisType,
) -> Result<(), Refusal> {
    let moved = |what: String| {
        Refusal::new(
            "guard_moved",
            what,
            "the optimized plan lost a protocol guard; the query was not run",
        )
    };
    let schema = aggregation.schema();
    if schema.fields().len() != fields {
        return Err(moved("the aggregation's fields".into()));
    }
    for guard in guards {
        if schema.field(guard.index).name() != &guard.name {
            return Err(moved(guard.name.clone()));
        }
    }
    if touches_shared(bindings, above) {
        return Err(moved("the plan above the aggregation".into()));
    }
    fn walk(
        plan: &LogicalPlan,
        bindings: &[Binding],
        mode: AnalysisType,
        mut filtered_columns: BTreeSet<String>,
    ) -> Result<(), String> {
        match plan {
            LogicalPlan::Filter(filter) => {
                for column in filter.predicate.column_refs() {
                    filtered_columns.insert(column.name.clone());
                }
            }
            LogicalPlan::Window(_) | LogicalPlan::Union(_) | LogicalPlan::Extension(_)
                if mode != AnalysisType::Rows && touches_shared(bindings, plan) =>
            {
                return Err(plan.display().to_string());
            }
            LogicalPlan::TableScan(scan) => {
                if let Some(index) = binding_of(bindings, plan)
                    && let Some(shared) = &bindings[index].shared
                    && shared.protocol.output.min_data_age_days.is_some()
                    && let Some(timestamp) = shared.dataset.column_of_class(ColumnClass::Timestamp)
                {
                    let in_scan = scan
                        .filters
                        .iter()
                        .any(|filter| filter.column_refs().iter().any(|c| c.name == timestamp));
                    if !in_scan && !filtered_columns.contains(timestamp) {
                        return Err(format!(
                            "minimum data age on {}",
                            bindings[index].table_name
                        ));
                    }
                }
            }
            _ => {}
        }
        for input in plan.inputs() {
            walk(input, bindings, mode, filtered_columns.clone())?;
        }
        Ok(())
    }
    walk(aggregation, bindings, mode, BTreeSet::new()).map_err(moved)?;
    walk(above, bindings, mode, BTreeSet::new()).map_err(moved)
}

/// Checks a plan that runs whole (row-level protocols): the minimum-age filter still applies.
pub(crate) fn verify_rows(plan: &LogicalPlan, bindings: &[Binding]) -> Result<(), Refusal> {
    verify_optimized(
        plan,
        &LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(DFSchema::empty()),
        }),
        bindings,
        &[],
        plan.schema().fields().len(),
        AnalysisType::Rows,
    )
}
