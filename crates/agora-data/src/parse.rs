//! Reading uploaded files into Arrow record batches: CSV, JSON lines and Parquet, each checked
//! value by value, so that the first malformed value is reported with its line and column.
//!
//! Everything here is synchronous and reads a staged file; callers run it on a blocking thread.
//! Text files are read with Agora's own small set of types ([`ColumnType`]): the first
//! `schema_infer_rows` rows choose each column's type, and every later row must fit it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use agora_domain::dataset::{ColumnSchema, ColumnType, DatasetSchema, UploadFormat};
use agora_domain::{Error, Result};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// The first malformed thing in a file: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line of a text file; for Parquet, the 1-based row.
    pub line: u64,
    /// 1-based column position and name, when the fault lies in one column.
    pub column: Option<(usize, String)>,
    pub message: String,
}

impl Malformed {
    fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            column: None,
            message: message.into(),
        }
    }

    fn in_column(line: u64, position: usize, name: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            column: Some((position, name.to_owned())),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some((position, name)) => write!(
                f,
                "line {}, column {position} (`{name}`): {}",
                self.line, self.message
            ),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl From<Malformed> for Error {
    fn from(malformed: Malformed) -> Self {
        Error::invalid("file", malformed.to_string())
    }
}

/// How much to read and how.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Rows of a text file that choose its column types on a first upload.
    pub schema_infer_rows: usize,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// The most rows one upload may carry (`upload_rows_max`).
    pub rows_max: u64,
}

/// The Arrow type that stores a column type.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The Arrow schema of a dataset: every column nullable.
pub fn arrow_schema(schema: &DatasetSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .columns
            .iter()
            .map(|column| Field::new(&column.name, arrow_type(column.column_type), true))
            .collect::<Vec<_>>(),
    ))
}

/// Reads the whole file: the schema it has (inferred, or `expected` checked against it) and the
/// rows, handed over one batch at a time to `sink`. Stops at the first malformed value.
pub fn read_file(
    path: &Path,
    format: UploadFormat,
    expected: Option<&DatasetSchema>,
    limits: ReadLimits,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<(DatasetSchema, u64)> {
    match format {
        UploadFormat::Csv => read_csv(path, expected, limits, sink),
        UploadFormat::JsonLines => read_json_lines(path, expected, limits, sink),
        UploadFormat::Parquet => read_parquet(path, expected, limits, sink),
    }
}

fn io_error(error: std::io::Error) -> Error {
    Error::Internal(format!("reading the staged upload: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");
const DATE_TIME_SPACE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const DATE_TIME_T: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
/// Days from the Julian day epoch to 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_integer(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// A finite decimal number; `NaN` and `inf` are not numbers a dataset should hold.
fn parse_float(text: &str) -> Option<f64> {
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn parse_date(text: &str) -> Option<i32> {
    time::Date::parse(text, DATE)
        .ok()
        .map(|date| date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY)
}

/// RFC 3339 with an offset, or a date and time without one, taken as UTC; in microseconds.
fn parse_timestamp(text: &str) -> Option<i64> {
    let instant = time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| {
            time::PrimitiveDateTime::parse(text, DATE_TIME_T)
                .or_else(|_| time::PrimitiveDateTime::parse(text, DATE_TIME_SPACE))
                .ok()
                .map(time::PrimitiveDateTime::assume_utc)
        })?;
    i64::try_from(instant.unix_timestamp_nanos() / 1_000).ok()
}

/// The narrowest type a text value fits.
fn type_of_text(text: &str) -> ColumnType {
    if parse_bool(text).is_some() {
        ColumnType::Boolean
    } else if parse_integer(text).is_some() {
        ColumnType::Integer
    } else if parse_float(text).is_some() {
        ColumnType::Float
    } else if parse_date(text).is_some() {
        ColumnType::Date
    } else if parse_timestamp(text).is_some() {
        ColumnType::Timestamp
    } else {
        ColumnType::String
    }
}

/// The type that holds values of both types: integers widen to floats, anything else mixed is text.
fn widen(a: ColumnType, b: ColumnType) -> ColumnType {
    use ColumnType::{Float, Integer};
    match (a, b) {
        _ if a == b => a,
        (Integer, Float) | (Float, Integer) => Float,
        _ => ColumnType::String,
    }
}

fn describe(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Boolean => "a boolean (true or false)",
        ColumnType::Integer => "an integer",
        ColumnType::Float => "a number",
        ColumnType::String => "text",
        ColumnType::Date => "a date (YYYY-MM-DD)",
        ColumnType::Timestamp => "a timestamp (RFC 3339)",
    }
}

fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// One column's values as they are read.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Integer(Int64Builder),
    Float(Float64Builder),
    String(StringBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::new()),
            ColumnType::Integer => Self::Integer(Int64Builder::new()),
            ColumnType::Float => Self::Float(Float64Builder::new()),
            ColumnType::String => Self::String(StringBuilder::new()),
            ColumnType::Date => Self::Date(Date32Builder::new()),
            ColumnType::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
        }
    }

    fn null(&mut self) {
        match self {
            Self::Boolean(builder) => builder.append_null(),
            Self::Integer(builder) => builder.append_null(),
            Self::Float(builder) => builder.append_null(),
            Self::String(builder) => builder.append_null(),
            Self::Date(builder) => builder.append_null(),
            Self::Timestamp(builder) => builder.append_null(),
        }
    }

    /// Appends a text value; `Err` says what the column expected.
    fn text(&mut self, text: &str) -> Result<(), &'static str> {
        match self {
            Self::Boolean(builder) => builder.append_value(parse_bool(text).ok_or("a boolean")?),
            Self::Integer(builder) => {
                builder.append_value(parse_integer(text).ok_or(describe(ColumnType::Integer))?)
            }
            Self::Float(builder) => {
                builder.append_value(parse_float(text).ok_or(describe(ColumnType::Float))?)
            }
            Self::String(builder) => builder.append_value(text),
            Self::Date(builder) => {
                builder.append_value(parse_date(text).ok_or(describe(ColumnType::Date))?)
            }
            Self::Timestamp(builder) => {
                builder.append_value(parse_timestamp(text).ok_or(describe(ColumnType::Timestamp))?)
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(builder) => Arc::new(builder.finish()),
            Self::Integer(builder) => Arc::new(builder.finish()),
            Self::Float(builder) => Arc::new(builder.finish()),
            Self::String(builder) => Arc::new(builder.finish()),
            Self::Date(builder) => Arc::new(builder.finish()),
            Self::Timestamp(builder) => Arc::new(builder.finish()),
        }
    }
}

/// Rows gathered into batches of `batch_rows`, counted against `rows_max`.
struct Batcher<'a> {
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    pending: usize,
    rows: u64,
    limits: ReadLimits,
    sink: &'a mut dyn FnMut(RecordBatch) -> Result<()>,
}

impl<'a> Batcher<'a> {
    fn new(
        schema: &DatasetSchema,
        limits: ReadLimits,
        sink: &'a mut dyn FnMut(RecordBatch) -> Result<()>,
    ) -> Self {
        Self {
            schema: arrow_schema(schema),
            builders: schema
                .columns
                .iter()
                .map(|column| ColumnBuilder::new(column.column_type))
                .collect(),
            pending: 0,
            rows: 0,
            limits,
            sink,
        }
    }

    /// Counts a row about to be read, refusing one past `rows_max`.
    fn start_row(&mut self, line: u64) -> Result<()> {
        if self.rows >= self.limits.rows_max {
            return Err(Error::limit(
                "upload_rows_max",
                format!(
                    "line {line}: an upload may carry at most {} rows",
                    self.limits.rows_max
                ),
            ));
        }
        self.rows += 1;
        Ok(())
    }

    fn end_row(&mut self) -> Result<()> {
        self.pending += 1;
        if self.pending >= self.limits.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let columns = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::Internal(format!("building a record batch: {e}")))?;
        self.pending = 0;
        (self.sink)(batch)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

fn csv_reader(path: &Path) -> Result<csv::Reader<BufReader<File>>> {
    let file = File::open(path).map_err(io_error)?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        // Rows of the wrong length are reported by this module, with their line.
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 16, file)))
}

fn csv_error(error: csv::Error) -> Error {
    let line = error.position().map_or(0, csv::Position::line);
    match error.kind() {
        csv::ErrorKind::Io(io) => io_error(std::io::Error::new(io.kind(), io.to_string())),
        _ => Malformed::at(line, format!("not valid CSV: {error}")).into(),
    }
}

fn csv_header(reader: &mut csv::Reader<BufReader<File>>) -> Result<Vec<String>> {
    let header = reader.byte_headers().map_err(csv_error)?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(Malformed::at(
            1,
            "the file is empty; a CSV upload starts with a header line naming its columns",
        )
        .into());
    }
    header
        .iter()
        .enumerate()
        .map(|(index, name)| {
            String::from_utf8(name.to_vec()).map_err(|_| {
                Malformed::in_column(1, index + 1, "?", "the column name is not valid UTF-8").into()
            })
        })
        .collect()
}

fn field_text<'r>(
    record: &'r csv::ByteRecord,
    line: u64,
    index: usize,
    name: &str,
) -> Result<&'r str> {
    std::str::from_utf8(&record[index]).map_err(|error| {
        Malformed::in_column(
            line,
            index + 1,
            name,
            format!(
                "not valid UTF-8 (invalid byte at offset {} of the field)",
                error.valid_up_to()
            ),
        )
        .into()
    })
}

fn check_width(record: &csv::ByteRecord, line: u64, header: &[String]) -> Result<()> {
    if record.len() == header.len() {
        return Ok(());
    }
    let position = record.len().min(header.len()) + 1;
    let name = header
        .get(position - 1)
        .map_or("(none)", String::as_str)
        .to_owned();
    Err(Malformed::in_column(
        line,
        position,
        &name,
        format!(
            "the row has {} fields, the header has {}",
            record.len(),
            header.len()
        ),
    )
    .into())
}

/// Chooses each column's type from the first rows (checking their width and encoding too).
fn infer_csv(path: &Path, limits: ReadLimits) -> Result<DatasetSchema> {
    let mut reader = csv_reader(path)?;
    let header = csv_header(&mut reader)?;
    let mut types: Vec<Option<ColumnType>> = vec![None; header.len()];
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    while rows < limits.schema_infer_rows
        && reader.read_byte_record(&mut record).map_err(csv_error)?
    {
        let line = record.position().map_or(0, csv::Position::line);
        check_width(&record, line, &header)?;
        for (index, slot) in types.iter_mut().enumerate() {
            let text = field_text(&record, line, index, &header[index])?;
            if text.is_empty() {
                continue;
            }
            let found = type_of_text(text);
            *slot = Some(slot.map_or(found, |known| widen(known, found)));
        }
        rows += 1;
    }
    let schema = DatasetSchema {
        columns: header
            .into_iter()
            .zip(types)
            .map(|(name, column_type)| ColumnSchema {
                name,
                column_type: column_type.unwrap_or(ColumnType::String),
            })
            .collect(),
    };
    schema.check().map_err(|error| match error {
        Error::Invalid { message, .. } => Malformed::at(1, message).into(),
        other => other,
    })?;
    Ok(schema)
}

/// For each column of the file, the position of that column in `schema`; the header must name
/// exactly the schema's columns, in any order.
fn map_header(header: &[String], schema: &DatasetSchema) -> Result<Vec<usize>> {
    let mut positions = Vec::with_capacity(header.len());
    for (index, name) in header.iter().enumerate() {
        let Some(position) = schema.columns.iter().position(|c| &c.name == name) else {
            return Err(Malformed::in_column(
                1,
                index + 1,
                name,
                "the dataset has no such column (its schema does not match this file)",
            )
            .into());
        };
        if positions.contains(&position) {
            return Err(
                Malformed::in_column(1, index + 1, name, "the column appears twice").into(),
            );
        }
        positions.push(position);
    }
    if let Some(missing) = schema
        .columns
        .iter()
        .enumerate()
        .find(|(position, _)| !positions.contains(position))
    {
        return Err(Malformed::at(
            1,
            format!(
                "the dataset's column `{}` is missing from the header (its schema does not match this file)",
                missing.1.name
            ),
        )
        .into());
    }
    Ok(positions)
}

fn read_csv(
    path: &Path,
    expected: Option<&DatasetSchema>,
    limits: ReadLimits,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<(DatasetSchema, u64)> {
    let schema = match expected {
        Some(schema) => schema.clone(),
        None => infer_csv(path, limits)?,
    };
    let mut reader = csv_reader(path)?;
    let header = csv_header(&mut reader)?;
    let positions = map_header(&header, &schema)?;
    let mut batcher = Batcher::new(&schema, limits, sink);
    let mut record = csv::ByteRecord::new();
    // The file's fields in the schema's order.
    let mut order: Vec<usize> = vec![0; positions.len()];
    for (file_index, &position) in positions.iter().enumerate() {
        order[position] = file_index;
    }
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        batcher.start_row(line)?;
        check_width(&record, line, &header)?;
        for (position, &file_index) in order.iter().enumerate() {
            let name = &header[file_index];
            let text = field_text(&record, line, file_index, name)?;
            let builder = &mut batcher.builders[position];
            if text.is_empty() {
                builder.null();
            } else if let Err(expected) = builder.text(text) {
                return Err(Malformed::in_column(
                    line,
                    file_index + 1,
                    name,
                    format!("{} is not {expected}", quote(text)),
                )
                .into());
            }
        }
        batcher.end_row()?;
    }
    batcher.flush()?;
    Ok((schema, batcher.rows))
}

// ---------------------------------------------------------------------------------------------
// JSON lines
// ---------------------------------------------------------------------------------------------

/// Reads the next line as raw bytes; `None` at the end.
fn next_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> Result<Option<()>> {
    buffer.clear();
    let read = reader.read_until(b'\n', buffer).map_err(io_error)?;
    if read == 0 {
        return Ok(None);
    }
    while matches!(buffer.last(), Some(b'\n' | b'\r')) {
        buffer.pop();
    }
    Ok(Some(()))
}

/// A JSON object's fields in the order the line gives them (a map would sort them).
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedObject, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if fields.iter().any(|(known, _)| *known == name) {
                        return Err(serde::de::Error::custom(format!(
                            "the field `{name}` appears twice"
                        )));
                    }
                    fields.push((name, value));
                }
                Ok(OrderedObject(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Parses one line into an object, with the line and column of a syntax error or bad encoding.
fn json_object(buffer: &[u8], line: u64) -> Result<Option<Vec<(String, serde_json::Value)>>> {
    let text = std::str::from_utf8(buffer).map_err(|error| Malformed {
        line,
        column: Some((error.valid_up_to() + 1, "?".into())),
        message: "not valid UTF-8".into(),
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<OrderedObject>(text) {
        Ok(OrderedObject(fields)) => Ok(Some(fields)),
        Err(error) if error.is_data() => Err(Malformed::at(
            line,
            format!("each line must be one JSON object with distinct fields ({error})"),
        )
        .into()),
        Err(error) => Err(Malformed {
            line,
            column: Some((error.column(), "?".into())),
            message: format!("not valid JSON: {error}"),
        }
        .into()),
    }
}

fn type_of_json(value: &serde_json::Value) -> Option<Result<ColumnType, &'static str>> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(_) => Some(Ok(ColumnType::Boolean)),
        serde_json::Value::Number(number) if number.is_i64() => Some(Ok(ColumnType::Integer)),
        serde_json::Value::Number(number) if number.as_f64().is_some_and(f64::is_finite) => {
            Some(Ok(ColumnType::Float))
        }
        serde_json::Value::Number(_) => Some(Err("a number out of range")),
        serde_json::Value::String(text) => Some(Ok(match type_of_text(text) {
            // Quoted numbers and booleans stay text: JSON says what they are.
            ColumnType::Date => ColumnType::Date,
            ColumnType::Timestamp => ColumnType::Timestamp,
            _ => ColumnType::String,
        })),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Some(Err("a nested value (datasets hold flat rows)"))
        }
    }
}

fn infer_json_lines(path: &Path, limits: ReadLimits) -> Result<DatasetSchema> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io_error)?);
    let mut buffer = Vec::new();
    let mut columns: Vec<(String, Option<ColumnType>)> = Vec::new();
    let mut line = 0;
    let mut rows = 0;
    while rows < limits.schema_infer_rows && next_line(&mut reader, &mut buffer)?.is_some() {
        line += 1;
        let Some(object) = json_object(&buffer, line)? else {
            continue;
        };
        rows += 1;
        for (name, value) in &object {
            let index = match columns.iter().position(|(known, _)| known == name) {
                Some(index) => index,
                None => {
                    columns.push((name.clone(), None));
                    columns.len() - 1
                }
            };
            match type_of_json(value) {
                None => {}
                Some(Err(what)) => {
                    return Err(Malformed::in_column(
                        line,
                        index + 1,
                        name,
                        format!("{what} is not supported"),
                    )
                    .into());
                }
                Some(Ok(found)) => {
                    let slot = &mut columns[index].1;
                    *slot = Some(slot.map_or(found, |known| widen(known, found)));
                }
            }
        }
    }
    if columns.is_empty() {
        return Err(Malformed::at(1, "the file holds no JSON object with a field").into());
    }
    let schema = DatasetSchema {
        columns: columns
            .into_iter()
            .map(|(name, column_type)| ColumnSchema {
                name,
                column_type: column_type.unwrap_or(ColumnType::String),
            })
            .collect(),
    };
    schema.check().map_err(|error| match error {
        Error::Invalid { message, .. } => Malformed::at(1, message).into(),
        other => other,
    })?;
    Ok(schema)
}

fn append_json(builder: &mut ColumnBuilder, value: &serde_json::Value) -> Result<(), &'static str> {
    use serde_json::Value;
    if value.is_null() {
        builder.null();
        return Ok(());
    }
    match builder {
        ColumnBuilder::Boolean(booleans) => match value {
            Value::Bool(flag) => booleans.append_value(*flag),
            _ => return Err(describe(ColumnType::Boolean)),
        },
        ColumnBuilder::Integer(integers) => {
            integers.append_value(value.as_i64().ok_or(describe(ColumnType::Integer))?)
        }
        ColumnBuilder::Float(floats) => floats.append_value(
            value
                .as_f64()
                .filter(|number| number.is_finite())
                .ok_or(describe(ColumnType::Float))?,
        ),
        ColumnBuilder::String(strings) => match value {
            Value::String(text) => strings.append_value(text),
            _ => return Err("a JSON string"),
        },
        ColumnBuilder::Date(_) | ColumnBuilder::Timestamp(_) => match value {
            Value::String(text) => builder.text(text)?,
            _ => {
                return Err(if matches!(builder, ColumnBuilder::Date(_)) {
                    describe(ColumnType::Date)
                } else {
                    describe(ColumnType::Timestamp)
                });
            }
        },
    }
    Ok(())
}

fn read_json_lines(
    path: &Path,
    expected: Option<&DatasetSchema>,
    limits: ReadLimits,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<(DatasetSchema, u64)> {
    let schema = match expected {
        Some(schema) => schema.clone(),
        None => infer_json_lines(path, limits)?,
    };
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io_error)?);
    let mut buffer = Vec::new();
    let mut batcher = Batcher::new(&schema, limits, sink);
    let mut seen = vec![false; schema.columns.len()];
    let mut line = 0;
    while next_line(&mut reader, &mut buffer)?.is_some() {
        line += 1;
        let Some(object) = json_object(&buffer, line)? else {
            continue;
        };
        batcher.start_row(line)?;
        seen.iter_mut().for_each(|flag| *flag = false);
        for (name, value) in &object {
            let Some(position) = schema.columns.iter().position(|c| &c.name == name) else {
                return Err(Malformed::in_column(
                    line,
                    schema.columns.len() + 1,
                    name,
                    "the dataset has no such column (its schema does not match this file)",
                )
                .into());
            };
            seen[position] = true;
            if let Err(expected) = append_json(&mut batcher.builders[position], value) {
                return Err(Malformed::in_column(
                    line,
                    position + 1,
                    name,
                    format!("{} is not {expected}", quote(&value.to_string())),
                )
                .into());
            }
        }
        for (position, flag) in seen.iter().enumerate() {
            if !flag {
                batcher.builders[position].null();
            }
        }
        batcher.end_row()?;
    }
    batcher.flush()?;
    Ok((schema, batcher.rows))
}

// ---------------------------------------------------------------------------------------------
// Parquet
// ---------------------------------------------------------------------------------------------

/// The column type a Parquet file's Arrow type is read into, if datasets hold it.
fn column_type_of_arrow(data_type: &DataType) -> Option<ColumnType> {
    Some(match data_type {
        DataType::Boolean => ColumnType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnType::Float,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
        DataType::Dictionary(_, value) => match column_type_of_arrow(value)? {
            ColumnType::String => ColumnType::String,
            _ => return None,
        },
        DataType::Date32 | DataType::Date64 => ColumnType::Date,
        DataType::Timestamp(_, _) => ColumnType::Timestamp,
        _ => return None,
    })
}

fn parquet_error(error: impl std::fmt::Display, row: u64) -> Error {
    Malformed::at(row, format!("not a readable Parquet file: {error}")).into()
}

fn read_parquet(
    path: &Path,
    expected: Option<&DatasetSchema>,
    limits: ReadLimits,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<(DatasetSchema, u64)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let file = File::open(path).map_err(io_error)?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_error(e, 1))?;
    let file_schema = builder.schema().clone();
    let mut found = Vec::with_capacity(file_schema.fields().len());
    for (index, field) in file_schema.fields().iter().enumerate() {
        let Some(column_type) = column_type_of_arrow(field.data_type()) else {
            return Err(Malformed::in_column(
                1,
                index + 1,
                field.name(),
                format!(
                    "Parquet type {} is not one datasets hold (boolean, integer, float, string, date, timestamp)",
                    field.data_type()
                ),
            )
            .into());
        };
        found.push(ColumnSchema {
            name: field.name().clone(),
            column_type,
        });
    }
    let found = DatasetSchema { columns: found };
    let schema = match expected {
        None => {
            found.check().map_err(|error| match error {
                Error::Invalid { message, .. } => Malformed::at(1, message).into(),
                other => other,
            })?;
            found.clone()
        }
        Some(schema) => {
            let names: Vec<String> = found.columns.iter().map(|c| c.name.clone()).collect();
            map_header(&names, schema)?;
            for (index, column) in found.columns.iter().enumerate() {
                let want = schema
                    .column(&column.name)
                    .expect("map_header checked every name")
                    .column_type;
                if want != column.column_type
                    && !(want == ColumnType::Float && column.column_type == ColumnType::Integer)
                {
                    return Err(Malformed::in_column(
                        1,
                        index + 1,
                        &column.name,
                        format!(
                            "the file holds {}, the dataset's column is {} (its schema does not match this file)",
                            column.column_type, want
                        ),
                    )
                    .into());
                }
            }
            schema.clone()
        }
    };
    let target = arrow_schema(&schema);
    let reader = builder
        .with_batch_size(limits.batch_rows)
        .build()
        .map_err(|e| parquet_error(e, 1))?;
    let mut rows: u64 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(e, rows + 1))?;
        let next = rows + batch.num_rows() as u64;
        if next > limits.rows_max {
            return Err(Error::limit(
                "upload_rows_max",
                format!(
                    "row {}: an upload may carry at most {} rows",
                    limits.rows_max + 1,
                    limits.rows_max
                ),
            ));
        }
        let mut columns = Vec::with_capacity(target.fields().len());
        for field in target.fields() {
            let index = batch
                .schema()
                .index_of(field.name())
                .map_err(|e| Error::Internal(format!("parquet column: {e}")))?;
            // Unsafe casts fail rather than turn a value that does not fit into a null.
            let options = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            let array =
                arrow_cast::cast_with_options(batch.column(index), field.data_type(), &options)
                    .map_err(|e| {
                        Malformed::in_column(
                            rows + 1,
                            index + 1,
                            field.name(),
                            format!("a value does not fit {}: {e}", field.data_type()),
                        )
                    })?;
            columns.push(array);
        }
        let batch = RecordBatch::try_new(target.clone(), columns)
            .map_err(|e| Error::Internal(format!("building a record batch: {e}")))?;
        rows = next;
        sink(batch)?;
    }
    Ok((schema, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_get_the_narrowest_type() {
        let cases = [
            ("true", ColumnType::Boolean),
            ("42", ColumnType::Integer),
            ("-4.5", ColumnType::Float),
            ("2026-01-31", ColumnType::Date),
            ("2026-01-31T10:00:00Z", ColumnType::Timestamp),
            ("2026-01-31 10:00:00", ColumnType::Timestamp),
            ("NaN", ColumnType::String),
            ("inf", ColumnType::String),
            ("Lisbon", ColumnType::String),
        ];
        for (text, expect) in cases {
            assert_eq!(type_of_text(text), expect, "{text}");
        }
        assert_eq!(
            widen(ColumnType::Integer, ColumnType::Float),
            ColumnType::Float
        );
        assert_eq!(
            widen(ColumnType::Integer, ColumnType::Date),
            ColumnType::String
        );
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01+01:00"),
            Some(-3_599_000_000)
        );
    }
}
