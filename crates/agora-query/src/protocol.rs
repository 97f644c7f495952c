//! Protocol documents: what a provider shares with which consumers, for which purposes, under
//! which output constraints; their validation, their content hash, and their lifecycle.
//!
//! Everything here is pure: no I/O, no clock (callers pass `now`).

use std::collections::{BTreeMap, BTreeSet};

use agora_domain::{OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Default minimum of distinct entities per output row where an `entity_id` column exists.
pub const MIN_ENTITIES_DEFAULT: u32 = 50;
/// Default minimum of distinct contributors per statistic on pooled data.
pub const MIN_CONTRIBUTORS_DEFAULT: u32 = 5;
/// Default maximum share of one contributor in a statistic on pooled data, in percent.
pub const CONTRIBUTOR_SHARE_PERCENT_MAX_DEFAULT: u32 = 25;

/// A protocol document, as written in TOML or JSON (see `docs/protocols.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub name: String,
    /// Starts at 1; a change is a new version.
    pub version: u32,
    pub provider: OrgId,
    pub consumers: Vec<OrgId>,
    pub purposes: Vec<String>,
    pub analysis: AnalysisType,
    pub datasets: Vec<DatasetRule>,
    #[serde(default)]
    pub output: OutputConstraints,
    #[serde(default)]
    pub joins: JoinRules,
    /// Organisations that receive results; empty means the consumer that ran the query.
    #[serde(default)]
    pub recipients: Vec<OrgId>,
    #[serde(default)]
    pub quotas: Quotas,
    pub validity: Validity,
}

/// What may leave the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisType {
    /// Row-level access to allowed columns and rows.
    Rows,
    /// Distinct values of allowed columns (grouping without aggregates), per-row thresholds apply.
    List,
    /// Only aggregates leave, each output row meeting the thresholds.
    Aggregate,
}

/// One of the provider's datasets and the class of each of its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRule {
    pub name: String,
    pub columns: Vec<ColumnRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    pub name: String,
    pub class: ColumnClass,
    /// Whether the consumer may see the column at all; `blocked` columns never are.
    #[serde(default = "default_true")]
    pub allowed: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnClass {
    /// May be output, grouped on and filtered on.
    Dimension,
    /// May be aggregated.
    Metric,
    /// May only be used to join, with the allowed operators.
    JoinKey,
    /// Identifies a person or customer: never output, used to count distinct entities.
    EntityId,
    /// Which organisation a row of pooled data comes from.
    Contributor,
    /// A time column: a dimension, and the column the minimum data age filters on.
    Timestamp,
    /// Never visible.
    Blocked,
}

impl ColumnClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dimension => "dimension",
            Self::Metric => "metric",
            Self::JoinKey => "join_key",
            Self::EntityId => "entity_id",
            Self::Contributor => "contributor",
            Self::Timestamp => "timestamp",
            Self::Blocked => "blocked",
        }
    }
}

/// An aggregate function a protocol may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateName {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    Stddev,
    Variance,
}

impl AggregateName {
    pub const ALL: [Self; 9] = [
        Self::Count,
        Self::CountDistinct,
        Self::Sum,
        Self::Avg,
        Self::Min,
        Self::Max,
        Self::Median,
        Self::Stddev,
        Self::Variance,
    ];

    /// The protocol's name for a DataFusion aggregate UDF (`func.name()`), if any.
    pub fn from_datafusion(name: &str, distinct: bool) -> Option<Self> {
        Some(match (name.to_ascii_lowercase().as_str(), distinct) {
            ("count", false) => Self::Count,
            ("count", true) => Self::CountDistinct,
            ("sum", false) => Self::Sum,
            ("avg" | "mean", false) => Self::Avg,
            ("min", _) => Self::Min,
            ("max", _) => Self::Max,
            ("median", false) => Self::Median,
            ("stddev" | "stddev_samp" | "stddev_pop", false) => Self::Stddev,
            ("var" | "var_samp" | "var_pop" | "variance", false) => Self::Variance,
            _ => return None,
        })
    }
}

/// Output constraints. `None` thresholds take the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConstraints {
    /// Minimum distinct entities per output row; default 50 where an `entity_id` column exists.
    pub min_entities_per_row: Option<u32>,
    /// Minimum distinct contributors per statistic on pooled data; default 5.
    pub min_contributors_per_statistic: Option<u32>,
    /// Maximum share of one contributor in a statistic on pooled data, in percent; default 25.
    pub contributor_share_percent_max: Option<u32>,
    /// Rows younger than this (by the `timestamp` column) are invisible.
    pub min_data_age_days: Option<u32>,
    /// Allowed aggregate functions; default COUNT, COUNT DISTINCT, SUM, AVG.
    pub allowed_aggregates: Option<BTreeSet<AggregateName>>,
    /// When set, the groups withheld by the thresholds are folded into one row with this label,
    /// whose aggregates are recomputed from those groups' rows and which must itself meet every
    /// threshold. Unset: withheld groups are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_remainder: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JoinOperator {
    #[serde(rename = "=")]
    Equal,
}

impl JoinOperator {
    pub const ALL: [Self; 1] = [Self::Equal];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRules {
    /// `join_key` columns that may join; empty means every `join_key` column.
    #[serde(default)]
    pub joinable_columns: Vec<String>,
    #[serde(default = "default_join_operators")]
    pub operators: Vec<JoinOperator>,
    /// The query must join the shared data with the consumer's own data (only the overlap is analysed).
    #[serde(default)]
    pub join_required_with_own_data: bool,
}

fn default_join_operators() -> Vec<JoinOperator> {
    vec![JoinOperator::Equal]
}

impl Default for JoinRules {
    fn default() -> Self {
        Self {
            joinable_columns: Vec::new(),
            operators: default_join_operators(),
            join_required_with_own_data: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    pub queries_per_day_max: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            queries_per_day_max: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// The schema a dataset really has, to validate a protocol against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSchema {
    pub name: String,
    pub columns: Vec<String>,
}

/// The SHA-256 of a protocol's canonical JSON, in hex. Approvals bind to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Protocol {
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::invalid("protocol", e.to_string()))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::invalid("protocol", e.to_string()))
    }

    /// The canonical JSON: keys sorted (serde_json's map is ordered), no whitespace.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a protocol always serializes to JSON");
        serde_json::to_string(&value).expect("a JSON value always serializes")
    }

    pub fn content_hash(&self) -> ContentHash {
        ContentHash(hex::encode(Sha256::digest(
            self.canonical_json().as_bytes(),
        )))
    }

    /// Provider first, then consumers, without duplicates.
    pub fn parties(&self) -> BTreeSet<OrgId> {
        let mut parties: BTreeSet<OrgId> = self.consumers.iter().copied().collect();
        parties.insert(self.provider);
        parties
    }

    pub fn min_entities_per_row(&self) -> u32 {
        self.output
            .min_entities_per_row
            .unwrap_or(MIN_ENTITIES_DEFAULT)
    }

    pub fn min_contributors_per_statistic(&self) -> u32 {
        self.output
            .min_contributors_per_statistic
            .unwrap_or(MIN_CONTRIBUTORS_DEFAULT)
    }

    pub fn contributor_share_percent_max(&self) -> u32 {
        self.output
            .contributor_share_percent_max
            .unwrap_or(CONTRIBUTOR_SHARE_PERCENT_MAX_DEFAULT)
    }

    pub fn allows_aggregate(&self, name: AggregateName) -> bool {
        match &self.output.allowed_aggregates {
            Some(allowed) => allowed.contains(&name),
            None => matches!(
                name,
                AggregateName::Count
                    | AggregateName::CountDistinct
                    | AggregateName::Sum
                    | AggregateName::Avg
            ),
        }
    }

    pub fn dataset(&self, name: &str) -> Option<&DatasetRule> {
        self.datasets.iter().find(|dataset| dataset.name == name)
    }

    /// Whether `column` of a dataset may be used as a join key under this protocol.
    pub fn is_joinable(&self, dataset: &DatasetRule, column: &str) -> bool {
        dataset.class_of(column) == Some(ColumnClass::JoinKey)
            && (self.joins.joinable_columns.is_empty()
                || self.joins.joinable_columns.iter().any(|c| c == column))
    }

    /// Checks the document on its own and against the datasets' real schemas.
    ///
    /// Returns every problem found, each naming its field, so a draft can be fixed in one pass.
    pub fn validate(&self, schemas: &[DatasetSchema]) -> Result<(), Vec<Error>> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| {
            problems.push(Error::Invalid { field, message });
        };
        if self.name.trim().is_empty() || self.name.len() > 200 {
            problem("name".into(), "must be 1 to 200 characters".into());
        }
        if self.version == 0 {
            problem("version".into(), "versions start at 1".into());
        }
        if self.consumers.is_empty() {
            problem("consumers".into(), "name at least one consumer".into());
        }
        if self.consumers.contains(&self.provider) {
            problem(
                "consumers".into(),
                "the provider cannot be its own consumer".into(),
            );
        }
        if self.purposes.is_empty() {
            problem("purposes".into(), "name at least one purpose".into());
        }
        for purpose in &self.purposes {
            if !is_purpose_name(purpose) {
                problem(
                    "purposes".into(),
                    format!("`{purpose}` must be 1 to 64 characters of a-z, 0-9, `_` or `-`"),
                );
            }
        }
        if self.datasets.is_empty() {
            problem("datasets".into(), "name at least one dataset".into());
        }
        let mut seen_datasets = BTreeSet::new();
        for dataset in &self.datasets {
            let field = format!("datasets.{}", dataset.name);
            if !seen_datasets.insert(dataset.name.as_str()) {
                problem(field.clone(), "named twice".into());
            }
            let Some(schema) = schemas.iter().find(|schema| schema.name == dataset.name) else {
                problem(field, "no such dataset of the provider".into());
                continue;
            };
            let mut seen_columns = BTreeMap::new();
            for column in &dataset.columns {
                let column_field = format!("{field}.columns.{}", column.name);
                if !schema.columns.contains(&column.name) {
                    problem(
                        column_field.clone(),
                        format!(
                            "the dataset has no column `{}` (it has: {})",
                            column.name,
                            schema.columns.join(", ")
                        ),
                    );
                }
                if let Some(previous) = seen_columns.insert(column.name.as_str(), column.class) {
                    problem(
                        column_field.clone(),
                        format!(
                            "classed twice: as `{}` and as `{}`; a column has one class \
                             (a `{}` cannot also be a `{}`)",
                            previous.as_str(),
                            column.class.as_str(),
                            previous.as_str(),
                            column.class.as_str()
                        ),
                    );
                }
                if column.class == ColumnClass::Blocked && column.allowed {
                    // Not an error: blocked wins. Said here so the document reads true.
                }
            }
            for column in &schema.columns {
                if !seen_columns.contains_key(column.as_str()) {
                    problem(
                        format!("{field}.columns.{column}"),
                        "every column needs a class (use `blocked` to hide it)".into(),
                    );
                }
            }
            let classes: Vec<ColumnClass> = seen_columns.values().copied().collect();
            if classes
                .iter()
                .filter(|class| **class == ColumnClass::EntityId)
                .count()
                > 1
            {
                problem(field.clone(), "at most one `entity_id` column".into());
            }
            if classes
                .iter()
                .filter(|class| **class == ColumnClass::Timestamp)
                .count()
                > 1
                && self.output.min_data_age_days.is_some()
            {
                problem(
                    field.clone(),
                    "a minimum data age needs exactly one `timestamp` column".into(),
                );
            }
            if self.output.min_data_age_days.is_some() && !classes.contains(&ColumnClass::Timestamp)
            {
                problem(
                    "output.min_data_age_days".into(),
                    format!(
                        "dataset `{}` has no `timestamp` column to filter on",
                        dataset.name
                    ),
                );
            }
        }
        for column in &self.joins.joinable_columns {
            let is_join_key = self
                .datasets
                .iter()
                .any(|dataset| dataset.class_of(column) == Some(ColumnClass::JoinKey));
            if !is_join_key {
                problem(
                    format!("joins.joinable_columns.{column}"),
                    "only a `join_key` column may join".into(),
                );
            }
        }
        if self.joins.operators.is_empty() {
            problem("joins.operators".into(), "allow at least `=`".into());
        }
        let thresholds = [
            (
                "output.min_entities_per_row",
                self.output.min_entities_per_row,
            ),
            (
                "output.min_contributors_per_statistic",
                self.output.min_contributors_per_statistic,
            ),
        ];
        for (field, value) in thresholds {
            if let Some(value) = value {
                if value < 2 {
                    problem(
                        field.into(),
                        format!("{value} is below 2: a threshold of 1 reveals single rows"),
                    );
                } else if value > 100_000 {
                    problem(field.into(), format!("{value} is above 100000"));
                }
            }
        }
        if let Some(share) = self.output.contributor_share_percent_max
            && !(1..=100).contains(&share)
        {
            problem(
                "output.contributor_share_percent_max".into(),
                format!("{share} is not a percentage between 1 and 100"),
            );
        }
        if let Some(label) = &self.output.suppressed_remainder
            && (label.trim().is_empty()
                || label.chars().count() > 64
                || label.chars().any(char::is_control))
        {
            problem(
                "output.suppressed_remainder".into(),
                "the label must be 1 to 64 printable characters".into(),
            );
        }
        if let Some(allowed) = &self.output.allowed_aggregates
            && allowed.is_empty()
            && self.analysis == AnalysisType::Aggregate
        {
            problem(
                "output.allowed_aggregates".into(),
                "an aggregate protocol must allow at least one aggregate".into(),
            );
        }
        if self.quotas.queries_per_day_max == 0 {
            problem(
                "quotas.queries_per_day_max".into(),
                "must be at least 1".into(),
            );
        }
        if self.validity.not_after <= self.validity.not_before {
            problem(
                "validity".into(),
                "`not_after` must be after `not_before`".into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The strictest combination of several protocols that share one dataset with the same consumer
/// for the same purpose: the rules the engine applies to that dataset.
///
/// Highest thresholds and minimum data age, lowest contributor share, strictest analysis type,
/// the aggregates and operators every protocol allows, the join columns every protocol lets
/// join, a join with own data if any protocol requires it, a column visible only if every
/// protocol shows it. A column classed differently by two protocols is `entity_id` or
/// `contributor` if any protocol says so (it must still be counted), otherwise `blocked`.
/// `None` when no protocol names the dataset.
pub fn strictest(protocols: &[&Protocol], dataset: &str) -> Option<Protocol> {
    let covering: Vec<(&Protocol, &DatasetRule)> = protocols
        .iter()
        .filter_map(|protocol| protocol.dataset(dataset).map(|rule| (*protocol, rule)))
        .collect();
    let (first, first_rule) = covering.first()?;
    if covering.len() == 1 {
        let mut only = (*first).clone();
        only.datasets = vec![(*first_rule).clone()];
        return Some(only);
    }
    let all = || covering.iter().map(|(protocol, _)| *protocol);
    let mut merged = (*first).clone();
    merged.name = all()
        .map(|protocol| protocol.name.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    merged.analysis = all()
        .map(|protocol| protocol.analysis)
        .max()
        .expect("at least one protocol");
    merged.output = OutputConstraints {
        min_entities_per_row: all().map(Protocol::min_entities_per_row).max(),
        min_contributors_per_statistic: all().map(Protocol::min_contributors_per_statistic).max(),
        contributor_share_percent_max: all().map(Protocol::contributor_share_percent_max).min(),
        min_data_age_days: all().filter_map(|p| p.output.min_data_age_days).max(),
        allowed_aggregates: Some(
            AggregateName::ALL
                .into_iter()
                .filter(|name| all().all(|protocol| protocol.allows_aggregate(*name)))
                .collect(),
        ),
        // A remainder row only if every protocol asks for one; the first one's label.
        suppressed_remainder: if all().all(|p| p.output.suppressed_remainder.is_some()) {
            first.output.suppressed_remainder.clone()
        } else {
            None
        },
    };
    let mut names: Vec<&str> = Vec::new();
    for (_, rule) in &covering {
        for column in &rule.columns {
            if !names.contains(&column.name.as_str()) {
                names.push(column.name.as_str());
            }
        }
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut joinable = Vec::new();
    for name in names {
        let rules: Vec<Option<&ColumnRule>> = covering
            .iter()
            .map(|(_, rule)| rule.columns.iter().find(|column| column.name == name))
            .collect();
        let classes: BTreeSet<ColumnClass> = rules
            .iter()
            .map(|rule| rule.map_or(ColumnClass::Blocked, |rule| rule.class))
            .collect();
        let class = if classes.contains(&ColumnClass::EntityId) {
            ColumnClass::EntityId
        } else if classes.contains(&ColumnClass::Contributor) {
            ColumnClass::Contributor
        } else if classes.len() == 1 {
            *classes.first().expect("one class")
        } else {
            ColumnClass::Blocked
        };
        let allowed = rules
            .iter()
            .all(|rule| rule.is_some_and(|rule| rule.allowed));
        // A join key joins only if every protocol lets it join; otherwise it is of no use.
        let class = if class == ColumnClass::JoinKey
            && !covering
                .iter()
                .all(|(protocol, rule)| protocol.is_joinable(rule, name))
        {
            ColumnClass::Blocked
        } else {
            class
        };
        if class == ColumnClass::JoinKey {
            joinable.push(name.to_owned());
        }
        columns.push(ColumnRule {
            name: name.to_owned(),
            class,
            allowed,
        });
    }
    merged.joins = JoinRules {
        joinable_columns: joinable,
        operators: JoinOperator::ALL
            .into_iter()
            .filter(|operator| all().all(|p| p.joins.operators.contains(operator)))
            .collect(),
        join_required_with_own_data: all().any(|p| p.joins.join_required_with_own_data),
    };
    merged.datasets = vec![DatasetRule {
        name: dataset.to_owned(),
        columns,
    }];
    Some(merged)
}

impl DatasetRule {
    pub fn class_of(&self, column: &str) -> Option<ColumnClass> {
        self.columns
            .iter()
            .find(|rule| rule.name == column)
            .map(|rule| rule.class)
    }

    /// The column of a class, when the dataset has exactly one (entity id, contributor, timestamp).
    pub fn column_of_class(&self, class: ColumnClass) -> Option<&str> {
        self.columns
            .iter()
            .find(|rule| rule.class == class)
            .map(|rule| rule.name.as_str())
    }

    /// Whether the consumer's catalog shows the column.
    pub fn is_visible(&self, column: &str) -> bool {
        self.columns.iter().any(|rule| {
            rule.name == column
                && rule.class != ColumnClass::Blocked
                // Entity and contributor columns stay visible to the engine's rewrite even when
                // not allowed for output: the checker keeps them out of output anyway.
                && (rule.allowed
                    || matches!(rule.class, ColumnClass::EntityId | ColumnClass::Contributor))
        })
    }
}

/// A purpose is a short token, so that it can never carry SQL or markup into logs or plans.
pub fn is_purpose_name(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where a protocol version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolState {
    Draft,
    Proposed,
    Active,
    Paused,
    Revoked,
    Expired,
    /// A newer version became active in its place.
    Superseded,
}

/// One version of a protocol and its approvals.
///
/// Invariant: `Active` only when every party approved exactly `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolVersion {
    pub document: Protocol,
    pub hash: ContentHash,
    pub state: ProtocolState,
    pub approvals: BTreeSet<OrgId>,
    /// Parties that paused it; it resumes when every one of them resumed.
    pub paused_by: BTreeSet<OrgId>,
}

/// What a lifecycle step did, for the audit entry and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub step: &'static str,
    pub by: OrgId,
    pub from: ProtocolState,
    pub to: ProtocolState,
    pub hash: ContentHash,
}

impl ProtocolVersion {
    /// A new draft. The document is not validated here: validation needs the schemas.
    pub fn draft(document: Protocol) -> Self {
        let hash = document.content_hash();
        Self {
            document,
            hash,
            state: ProtocolState::Draft,
            approvals: BTreeSet::new(),
            paused_by: BTreeSet::new(),
        }
    }

    /// A change: a new draft with the next version number and no approvals.
    pub fn revise(&self, mut document: Protocol) -> Result<Self> {
        if matches!(self.state, ProtocolState::Revoked) {
            return Err(Error::Conflict("a revoked protocol cannot change".into()));
        }
        document.version = self.document.version + 1;
        Ok(Self::draft(document))
    }

    fn require_party(&self, by: OrgId) -> Result<()> {
        if self.document.parties().contains(&by) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{by} is not a party to protocol `{}`",
                self.document.name
            )))
        }
    }

    fn step(&mut self, step: &'static str, by: OrgId, to: ProtocolState) -> Transition {
        let from = self.state;
        self.state = to;
        Transition {
            step,
            by,
            from,
            to,
            hash: self.hash.clone(),
        }
    }

    fn expect_state(&self, step: &str, allowed: &[ProtocolState]) -> Result<()> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "cannot {step} a protocol that is {:?}",
                self.state
            )))
        }
    }

    pub fn propose(&mut self, by: OrgId) -> Result<Transition> {
        self.require_party(by)?;
        self.expect_state("propose", &[ProtocolState::Draft])?;
        Ok(self.step("propose", by, ProtocolState::Proposed))
    }

    /// Approves the version whose hash the party saw; it becomes active once every party approved.
    pub fn approve(&mut self, by: OrgId, hash: &ContentHash, now: Timestamp) -> Result<Transition> {
        self.require_party(by)?;
        self.expect_state("approve", &[ProtocolState::Proposed])?;
        if *hash != self.hash {
            return Err(Error::Conflict(format!(
                "approval is for {hash} but this version is {}: review the current version",
                self.hash
            )));
        }
        if now >= self.document.validity.not_after {
            return Err(Error::Conflict("the validity window has ended".into()));
        }
        self.approvals.insert(by);
        let to = if self.approvals == self.document.parties() {
            ProtocolState::Active
        } else {
            ProtocolState::Proposed
        };
        Ok(self.step("approve", by, to))
    }

    pub fn pause(&mut self, by: OrgId) -> Result<Transition> {
        self.require_party(by)?;
        self.expect_state("pause", &[ProtocolState::Active, ProtocolState::Paused])?;
        self.paused_by.insert(by);
        Ok(self.step("pause", by, ProtocolState::Paused))
    }

    pub fn resume(&mut self, by: OrgId) -> Result<Transition> {
        self.require_party(by)?;
        self.expect_state("resume", &[ProtocolState::Paused])?;
        if !self.paused_by.remove(&by) {
            return Err(Error::Forbidden(format!(
                "{by} did not pause this protocol"
            )));
        }
        let to = if self.paused_by.is_empty() {
            ProtocolState::Active
        } else {
            ProtocolState::Paused
        };
        Ok(self.step("resume", by, to))
    }

    pub fn revoke(&mut self, by: OrgId) -> Result<Transition> {
        if by != self.document.provider {
            return Err(Error::Forbidden("only the provider can revoke".into()));
        }
        self.expect_state(
            "revoke",
            &[
                ProtocolState::Draft,
                ProtocolState::Proposed,
                ProtocolState::Active,
                ProtocolState::Paused,
            ],
        )?;
        Ok(self.step("revoke", by, ProtocolState::Revoked))
    }

    /// Moves to `Expired` once the window has ended; `None` when nothing changes.
    pub fn expire(&mut self, now: Timestamp) -> Option<Transition> {
        let live = !matches!(
            self.state,
            ProtocolState::Revoked | ProtocolState::Expired | ProtocolState::Superseded
        );
        if live && now >= self.document.validity.not_after {
            let provider = self.document.provider;
            Some(self.step("expire", provider, ProtocolState::Expired))
        } else {
            None
        }
    }

    /// Whether queries may run under it at `now`.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        self.state == ProtocolState::Active
            && self.document.validity.not_before <= now
            && now < self.document.validity.not_after
    }
}
