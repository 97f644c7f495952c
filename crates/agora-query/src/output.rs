//! A result in the forms the edge serves: JSON rows, CSV with a header, and an Arrow IPC stream.
//! The app keeps Arrow types out of its own API by handing these bytes and values on.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::error::{Error, Result};

/// One output column: its name and its Arrow type as text (`Int64`, `Utf8`, `Float64`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A finished result: its schema and batches.
#[derive(Debug, Clone)]
pub struct ResultSet {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl ResultSet {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self { schema, batches }
    }

    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn columns(&self) -> Vec<ResultColumn> {
        self.schema
            .fields()
            .iter()
            .map(|field| ResultColumn {
                name: field.name().clone(),
                data_type: field.data_type().to_string(),
            })
            .collect()
    }

    /// Each row's values in column order; numbers stay numbers, nulls are `null`, dates and
    /// timestamps are ISO 8601 text.
    pub fn json_rows(&self) -> Result<Vec<Vec<serde_json::Value>>> {
        let mut rows = Vec::with_capacity(self.row_count());
        for batch in &self.batches {
            // Column names may repeat in SQL output (`SELECT a, a`), so write each column under
            // its position rather than its name.
            let positional: Vec<_> = (0..batch.num_columns())
                .map(|i| {
                    Arc::new(datafusion::arrow::datatypes::Field::new(
                        format!("c{i}"),
                        batch.schema().field(i).data_type().clone(),
                        true,
                    ))
                })
                .collect();
            let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(positional));
            let renamed = RecordBatch::try_new(schema, batch.columns().to_vec())
                .map_err(|e| Error::Internal(format!("result batch: {e}")))?;
            let mut writer = arrow_json::ArrayWriter::new(Vec::new());
            writer
                .write(&renamed)
                .map_err(|e| Error::Internal(format!("result as JSON: {e}")))?;
            writer
                .finish()
                .map_err(|e| Error::Internal(format!("result as JSON: {e}")))?;
            let bytes = writer.into_inner();
            if bytes.is_empty() {
                continue;
            }
            let objects: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("result as JSON: {e}")))?;
            for mut object in objects {
                rows.push(
                    (0..batch.num_columns())
                        .map(|i| {
                            object
                                .remove(&format!("c{i}"))
                                .unwrap_or(serde_json::Value::Null)
                        })
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    /// CSV with a header row.
    pub fn csv(&self) -> Result<Vec<u8>> {
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(Vec::new());
        if self.batches.is_empty() {
            let empty = RecordBatch::new_empty(Arc::clone(&self.schema));
            writer
                .write(&empty)
                .map_err(|e| Error::Internal(format!("result as CSV: {e}")))?;
        }
        for batch in &self.batches {
            writer
                .write(batch)
                .map_err(|e| Error::Internal(format!("result as CSV: {e}")))?;
        }
        Ok(writer.into_inner())
    }

    /// An Arrow IPC stream (`application/vnd.apache.arrow.stream`).
    pub fn arrow_ipc(&self) -> Result<Vec<u8>> {
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema)
            .map_err(|e| Error::Internal(format!("result as Arrow: {e}")))?;
        for batch in &self.batches {
            writer
                .write(batch)
                .map_err(|e| Error::Internal(format!("result as Arrow: {e}")))?;
        }
        writer
            .into_inner()
            .map_err(|e| Error::Internal(format!("result as Arrow: {e}")))
    }
}
