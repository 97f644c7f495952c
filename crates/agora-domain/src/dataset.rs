//! Datasets: versioned tables an organisation owns, the schema Agora infers for them, and the class
//! of each column, which later decides what a protocol lets leave the engine.
//!
//! Pure types and their rules; reading files and storing tables is `agora-data`'s work.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{DatasetId, Error, OrgId, Result, Timestamp, UserId};

/// The most columns a dataset may have.
pub const DATASET_COLUMNS_MAX: usize = 1_000;

/// A dataset's name, unique within its organisation: 1 to 63 characters, lower-case ASCII letters,
/// digits and `_`, starting with a letter, so that it is also a plain SQL table name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetName(String);

impl DatasetName {
    pub const CHARS_MAX: usize = 63;

    pub fn parse(text: &str) -> Result<Self> {
        let field = "dataset name";
        let mut chars = text.chars();
        match chars.next() {
            None => return Err(Error::invalid(field, "must not be empty")),
            Some(first) if !first.is_ascii_lowercase() => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "`{}` must start with a lower-case letter a-z",
                        shorten(text)
                    ),
                ));
            }
            Some(_) => {}
        }
        if text.len() > Self::CHARS_MAX {
            return Err(Error::invalid(
                field,
                format!(
                    "must have at most {} characters, has {}",
                    Self::CHARS_MAX,
                    text.chars().count()
                ),
            ));
        }
        if let Some(bad) =
            chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(Error::invalid(
                field,
                format!(
                    "`{}` may contain only a-z, 0-9 and `_`, not {bad:?}",
                    shorten(text)
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DatasetName {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl Serialize for DatasetName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What a column is, which decides what a protocol may let out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ColumnClass {
    /// A category to group and filter by (region, store, brand).
    Dimension,
    /// A number to aggregate (units, revenue).
    Metric,
    /// Usable only to join with another dataset, never output.
    JoinKey,
    /// Identifies a person or customer: never output, used to count distinct entities.
    EntityId,
    /// Which organisation a row comes from, in pooled data.
    Contributor,
    /// When the row happened; minimum data age filters on it.
    Timestamp,
    /// Never used by any query of another organisation.
    Blocked,
}

impl ColumnClass {
    pub const ALL: [ColumnClass; 7] = [
        ColumnClass::Dimension,
        ColumnClass::Metric,
        ColumnClass::JoinKey,
        ColumnClass::EntityId,
        ColumnClass::Contributor,
        ColumnClass::Timestamp,
        ColumnClass::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnClass::Dimension => "dimension",
            ColumnClass::Metric => "metric",
            ColumnClass::JoinKey => "join_key",
            ColumnClass::EntityId => "entity_id",
            ColumnClass::Contributor => "contributor",
            ColumnClass::Timestamp => "timestamp",
            ColumnClass::Blocked => "blocked",
        }
    }
}

impl fmt::Display for ColumnClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ColumnClass {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "class",
                    format!(
                        "`{}` is not a column class; expected one of dimension, metric, join_key, entity_id, contributor, timestamp, blocked",
                        shorten(text)
                    ),
                )
            })
    }
}

/// The type of a column's values. Uploads are read into these few types only, so that every
/// dataset speaks the same small vocabulary whatever file it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ColumnType {
    Boolean,
    /// A 64-bit signed integer.
    Integer,
    /// A 64-bit floating-point number.
    Float,
    /// UTF-8 text.
    String,
    /// A calendar day, `YYYY-MM-DD`.
    Date,
    /// An instant with microseconds, in UTC (RFC 3339 in text files).
    Timestamp,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::String => "string",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of a dataset's schema. Every column may hold nulls (an empty CSV field).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// A dataset's columns, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetSchema {
    pub columns: Vec<ColumnSchema>,
}

impl DatasetSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// Checks the rules every schema obeys: 1 to [`DATASET_COLUMNS_MAX`] columns with distinct,
    /// non-empty names of at most 255 bytes and no control characters.
    pub fn check(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::invalid(
                "schema",
                "a dataset needs at least one column",
            ));
        }
        if self.columns.len() > DATASET_COLUMNS_MAX {
            return Err(Error::invalid(
                "schema",
                format!(
                    "a dataset has at most {DATASET_COLUMNS_MAX} columns, this one has {}",
                    self.columns.len()
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, column) in self.columns.iter().enumerate() {
            let position = index + 1;
            if column.name.trim().is_empty() {
                return Err(Error::invalid(
                    "schema",
                    format!("column {position} has no name"),
                ));
            }
            if column.name.len() > 255 || column.name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "schema",
                    format!(
                        "column {position} `{}`: a name has at most 255 bytes and no control characters",
                        shorten(&column.name)
                    ),
                ));
            }
            if !seen.insert(column.name.as_str()) {
                return Err(Error::invalid(
                    "schema",
                    format!(
                        "column {position} `{}` has the same name as an earlier column",
                        shorten(&column.name)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One column given a class, as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ColumnClassing {
    pub column: String,
    pub class: ColumnClass,
}

/// The class of each column of a dataset. A column without a class is treated as
/// [`ColumnClass::Blocked`]: nothing leaves a column nobody has thought about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ColumnClasses(BTreeMap<String, ColumnClass>);

impl ColumnClasses {
    /// Checks a list of classings against a schema: each column exists, is classed once, and
    /// has a type its class can use (a `metric` is a number, a `timestamp` a date or a timestamp).
    pub fn parse(schema: &DatasetSchema, classings: &[ColumnClassing]) -> Result<Self> {
        let mut classes = BTreeMap::new();
        for classing in classings {
            let name = classing.column.as_str();
            let field = format!("classes.{}", shorten(name));
            let Some(column) = schema.column(name) else {
                let known: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::invalid(
                    field,
                    format!(
                        "the dataset has no column `{}`; its columns are {}",
                        shorten(name),
                        known.join(", ")
                    ),
                ));
            };
            if let Some(earlier) = classes.insert(name.to_owned(), classing.class) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "column `{}` is classed twice (`{earlier}` and `{}`); give each column one class",
                        shorten(name),
                        classing.class
                    ),
                ));
            }
            let fits = match classing.class {
                ColumnClass::Metric => column.column_type.is_numeric(),
                ColumnClass::Timestamp => {
                    matches!(column.column_type, ColumnType::Date | ColumnType::Timestamp)
                }
                ColumnClass::Dimension
                | ColumnClass::JoinKey
                | ColumnClass::EntityId
                | ColumnClass::Contributor
                | ColumnClass::Blocked => true,
            };
            if !fits {
                let needs = match classing.class {
                    ColumnClass::Metric => "type integer or float",
                    _ => "type date or timestamp",
                };
                return Err(Error::invalid(
                    field,
                    format!(
                        "column `{}` has type {}, but a `{}` column needs {needs}",
                        shorten(name),
                        column.column_type,
                        classing.class
                    ),
                ));
            }
        }
        Ok(Self(classes))
    }

    /// The class of a column; `blocked` when it has none.
    pub fn class_of(&self, column: &str) -> ColumnClass {
        self.0.get(column).copied().unwrap_or(ColumnClass::Blocked)
    }

    /// Whether the column was given a class explicitly.
    pub fn is_classed(&self, column: &str) -> bool {
        self.0.contains_key(column)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, ColumnClass)> {
        self.0.iter().map(|(name, class)| (name.as_str(), *class))
    }
}

/// Whether a dataset can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DatasetStatus {
    Active,
    /// Deleted by its owner: no longer listed, read or queried; its name is free again.
    Deleted,
}

impl DatasetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetStatus::Active => "active",
            DatasetStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for DatasetStatus {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "active" => Ok(DatasetStatus::Active),
            "deleted" => Ok(DatasetStatus::Deleted),
            other => Err(Error::Internal(format!("unknown dataset status `{other}`"))),
        }
    }
}

/// The kind of file an upload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UploadFormat {
    /// Comma-separated values with a header line (`text/csv`).
    Csv,
    /// One JSON object per line (`application/x-ndjson`).
    JsonLines,
    /// Apache Parquet (`application/vnd.apache.parquet`).
    Parquet,
}

impl UploadFormat {
    pub const MEDIA_TYPES: &'static str =
        "text/csv, application/x-ndjson or application/vnd.apache.parquet";

    /// The format for a media type, parameters (`; charset=utf-8`) ignored.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Some(UploadFormat::Csv),
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
                Some(UploadFormat::JsonLines)
            }
            "application/vnd.apache.parquet" | "application/x-parquet" => {
                Some(UploadFormat::Parquet)
            }
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            UploadFormat::Csv => "text/csv",
            UploadFormat::JsonLines => "application/x-ndjson",
            UploadFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UploadFormat::Csv => "csv",
            UploadFormat::JsonLines => "json_lines",
            UploadFormat::Parquet => "parquet",
        }
    }
}

impl FromStr for UploadFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "csv" => Ok(UploadFormat::Csv),
            "json_lines" => Ok(UploadFormat::JsonLines),
            "parquet" => Ok(UploadFormat::Parquet),
            other => Err(Error::invalid(
                "format",
                format!("`{}` is not csv, json_lines or parquet", shorten(other)),
            )),
        }
    }
}

/// A dataset as the metadata database holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dataset {
    pub id: DatasetId,
    pub org_id: OrgId,
    pub name: DatasetName,
    pub status: DatasetStatus,
    /// The newest version; versions count from 1 and equal the Delta table's versions.
    pub current_version: i64,
    pub schema: DatasetSchema,
    pub classes: ColumnClasses,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One version of a dataset: what an upload added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetVersion {
    pub version: i64,
    /// Rows this version added.
    pub rows_added: i64,
    /// Bytes of the uploaded file.
    pub bytes: i64,
    pub format: UploadFormat,
    pub created_at: Timestamp,
    pub created_by: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> DatasetSchema {
        DatasetSchema {
            columns: vec![
                ColumnSchema {
                    name: "store".into(),
                    column_type: ColumnType::String,
                },
                ColumnSchema {
                    name: "units".into(),
                    column_type: ColumnType::Integer,
                },
                ColumnSchema {
                    name: "day".into(),
                    column_type: ColumnType::Date,
                },
            ],
        }
    }

    fn classing(column: &str, class: ColumnClass) -> ColumnClassing {
        ColumnClassing {
            column: column.into(),
            class,
        }
    }

    fn check(classings: &[ColumnClassing], expect: &str) {
        let got = match ColumnClasses::parse(&schema(), classings) {
            Ok(classes) => format!("{classes:?}"),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn classes_name_the_column_that_breaks_a_rule() {
        check(
            &[
                classing("store", ColumnClass::Dimension),
                classing("units", ColumnClass::Metric),
            ],
            r#"ColumnClasses({"store": Dimension, "units": Metric})"#,
        );
        check(
            &[
                classing("store", ColumnClass::Dimension),
                classing("store", ColumnClass::JoinKey),
            ],
            "invalid classes.store: column `store` is classed twice (`dimension` and `join_key`); give each column one class",
        );
        check(
            &[classing("revenue", ColumnClass::Metric)],
            "invalid classes.revenue: the dataset has no column `revenue`; its columns are store, units, day",
        );
        check(
            &[classing("store", ColumnClass::Metric)],
            "invalid classes.store: column `store` has type string, but a `metric` column needs type integer or float",
        );
        check(
            &[classing("units", ColumnClass::Timestamp)],
            "invalid classes.units: column `units` has type integer, but a `timestamp` column needs type date or timestamp",
        );
    }

    #[test]
    fn an_unclassed_column_is_blocked() {
        let classes =
            ColumnClasses::parse(&schema(), &[classing("units", ColumnClass::Metric)]).unwrap();
        assert_eq!(classes.class_of("units"), ColumnClass::Metric);
        assert_eq!(classes.class_of("store"), ColumnClass::Blocked);
        assert!(!classes.is_classed("store"));
    }

    #[test]
    fn dataset_names_are_sql_table_names() {
        assert!(DatasetName::parse("store_sales_2026").is_ok());
        for bad in [
            "",
            "Sales",
            "1st",
            "store-sales",
            "store sales",
            &"a".repeat(64),
        ] {
            assert!(DatasetName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn media_types_choose_the_format() {
        assert_eq!(
            UploadFormat::from_media_type("text/csv; charset=utf-8"),
            Some(UploadFormat::Csv)
        );
        assert_eq!(
            UploadFormat::from_media_type("application/x-ndjson"),
            Some(UploadFormat::JsonLines)
        );
        assert_eq!(
            UploadFormat::from_media_type("application/vnd.apache.parquet"),
            Some(UploadFormat::Parquet)
        );
        assert_eq!(UploadFormat::from_media_type("application/json"), None);
    }
}
