//! Agora's datasets engine: uploads checked in full, stored as Delta Lake tables, read as of any version.
//!
//! An upload is streamed to a staging file (counted against `upload_bytes_max`), read once in full
//! to find its schema and its first malformed value, and only then written as a new Delta version:
//! a refused file leaves the table and its log exactly as they were.
//! Tables live at `<base>/<org id>/<dataset id>` of one [`ObjectStore`]: the local data folder
//! today, an S3-compatible bucket once one is configured.
//!
//! This crate and `agora-query` are the only ones that know Arrow, Parquet, Delta and DataFusion;
//! its API speaks the domain's types ([`DatasetSchema`], [`UploadFormat`]) except
//! [`Datasets::table_provider`], which hands the query engine a DataFusion table.
//! It keeps no metadata: names, classes and versions are the metadata database's, through `agora-app`.

mod parse;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agora_domain::dataset::{ColumnType, Dataset, DatasetSchema, UploadFormat};
use agora_domain::{DatasetId, Error, OrgId, Result};
use arrow_array::RecordBatch;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::{DataType as DeltaType, PrimitiveType, StructField};
use deltalake::protocol::SaveMode;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures_util::{Stream, StreamExt};
use object_store::ObjectStore;
use tokio::io::AsyncWriteExt;
use url::Url;

pub use parse::Malformed;

/// How the engine stores and reads uploads; the CLI fills it from the `[data]` settings.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// The data folder: tables go to `<data_dir>/datasets`, uploads are staged in `<data_dir>/staging`.
    pub data_dir: PathBuf,
    /// The largest upload, in bytes, as sent.
    pub upload_bytes_max: u64,
    /// The most rows one upload may add.
    pub upload_rows_max: u64,
    /// Rows of a text file that choose its column types on a first upload.
    pub schema_infer_rows: usize,
    /// Rows read and written at a time.
    pub batch_rows: usize,
}

impl DataOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            upload_bytes_max: 1 << 30,
            upload_rows_max: 100_000_000,
            schema_infer_rows: 1_000,
            batch_rows: 8_192,
        }
    }

    fn read_limits(&self) -> parse::ReadLimits {
        parse::ReadLimits {
            schema_infer_rows: self.schema_infer_rows.max(1),
            batch_rows: self.batch_rows.max(1),
            rows_max: self.upload_rows_max,
        }
    }
}

/// Where one dataset's table lives. Ids, not names: a deleted dataset's name may be used again,
/// its table never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableLocation {
    pub org_id: OrgId,
    pub dataset_id: DatasetId,
}

impl TableLocation {
    pub fn of(dataset: &Dataset) -> Self {
        Self {
            org_id: dataset.org_id,
            dataset_id: dataset.id,
        }
    }
}

/// An upload kept whole in the staging folder until it is written or refused; removed on drop.
#[derive(Debug)]
pub struct StagedUpload {
    path: PathBuf,
    format: UploadFormat,
    bytes: u64,
}

impl StagedUpload {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn format(&self) -> UploadFormat {
        self.format
    }
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "could not remove a staged upload");
        }
    }
}

/// What reading a staged upload in full found: its schema and how many rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub schema: DatasetSchema,
    pub rows: u64,
}

/// Rows of a dataset: the column names, and each row's values in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A column the platform sets on every row it writes, never read from the file: a pooled
/// dataset's contributor, set to the member that contributed the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub column: String,
    pub value: String,
}

/// The datasets engine: one per instance, cheap to clone.
#[derive(Clone)]
pub struct Datasets {
    inner: Arc<Inner>,
}

struct Inner {
    options: DataOptions,
    /// The store that holds every table, and the URL of the folder the tables live under.
    store: Arc<dyn ObjectStore>,
    base_url: Url,
    staging_dir: PathBuf,
}

impl std::fmt::Debug for Datasets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datasets")
            .field("base_url", &self.inner.base_url.as_str())
            .finish_non_exhaustive()
    }
}

fn delta_error(context: &str, error: DeltaTableError) -> Error {
    Error::Internal(format!("{context}: {error}"))
}

impl Datasets {
    /// Tables in the local data folder, `<data_dir>/datasets`.
    pub fn open_local(options: DataOptions) -> Result<Self> {
        let tables = options.data_dir.join("datasets");
        std::fs::create_dir_all(&tables)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", tables.display())))?;
        let tables = tables
            .canonicalize()
            .map_err(|e| Error::Internal(format!("resolving {}: {e}", tables.display())))?;
        let base_url = Url::from_directory_path(&tables).map_err(|()| {
            Error::Internal(format!("{} is not an absolute path", tables.display()))
        })?;
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
        Self::with_store(options, store, base_url)
    }

    /// Tables in any object store: `store` is rooted at the bucket (or file system) and
    /// `base_url` names the folder the tables go under (`s3://bucket/agora/datasets/`).
    pub fn with_store(
        options: DataOptions,
        store: Arc<dyn ObjectStore>,
        base_url: Url,
    ) -> Result<Self> {
        let staging_dir = options.data_dir.join("staging");
        std::fs::create_dir_all(&staging_dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", staging_dir.display())))?;
        let mut base_url = base_url;
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                store,
                base_url,
                staging_dir,
            }),
        })
    }

    pub fn options(&self) -> &DataOptions {
        &self.inner.options
    }

    /// The URL of a dataset's Delta table.
    pub fn table_url(&self, location: &TableLocation) -> Result<Url> {
        self.inner
            .base_url
            .join(&format!("{}/{}/", location.org_id, location.dataset_id))
            .map_err(|e| Error::Internal(format!("table url: {e}")))
    }

    fn builder(&self, location: &TableLocation) -> Result<DeltaTableBuilder> {
        let url = self.table_url(location)?;
        Ok(DeltaTableBuilder::from_url(url.clone())
            .map_err(|e| delta_error("table location", e))?
            .with_storage_backend(self.inner.store.clone(), url))
    }

    async fn load(&self, location: &TableLocation, version: Option<i64>) -> Result<DeltaTable> {
        let mut builder = self.builder(location)?;
        if let Some(version) = version {
            let version = u64::try_from(version)
                .map_err(|_| Error::invalid("version", "must be at least 1"))?;
            builder = builder.with_version(version);
        }
        builder.load().await.map_err(|error| match error {
            DeltaTableError::NotATable(_) => Error::not_found("dataset table"),
            DeltaTableError::InvalidVersion(version) => {
                Error::not_found(format!("version {version} of the dataset"))
            }
            other => delta_error("opening a dataset table", other),
        })
    }

    /// Streams an upload into the staging folder, refusing it with `LimitExceeded`
    /// (`upload_bytes_max`) as soon as it grows past the limit. Nothing is parsed yet.
    pub async fn stage<S, B, E>(&self, format: UploadFormat, mut body: S) -> Result<StagedUpload>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let path = self
            .inner
            .staging_dir
            .join(format!("{}.upload", uuid::Uuid::now_v7().simple()));
        // Owning the path from here on removes the file on every early return.
        let mut staged = StagedUpload {
            path,
            format,
            bytes: 0,
        };
        let mut file = tokio::fs::File::create(&staged.path)
            .await
            .map_err(|e| Error::Internal(format!("staging an upload: {e}")))?;
        let max = self.inner.options.upload_bytes_max;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::invalid("body", format!("the upload broke off: {e}")))?;
            let chunk = chunk.as_ref();
            staged.bytes += chunk.len() as u64;
            if staged.bytes > max {
                return Err(Error::limit(
                    "upload_bytes_max",
                    format!("an upload may be at most {max} bytes"),
                ));
            }
            file.write_all(chunk)
                .await
                .map_err(|e| Error::Internal(format!("staging an upload: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| Error::Internal(format!("staging an upload: {e}")))?;
        Ok(staged)
    }

    /// Stages a file already on disk (the benchmark, tests, offline imports).
    pub async fn stage_file(&self, format: UploadFormat, path: &Path) -> Result<StagedUpload> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::invalid("file", format!("{}: {e}", path.display())))?;
        let stream = tokio_util_stream(file);
        self.stage(format, stream).await
    }

    /// Reads a staged upload in full: its schema (inferred, or the dataset's `expected` one, which
    /// every column must then match) and its row count. The first malformed value answers
    /// `Invalid` naming its line and column; nothing is written either way.
    pub async fn check(
        &self,
        staged: &StagedUpload,
        expected: Option<&DatasetSchema>,
    ) -> Result<Checked> {
        let path = staged.path.clone();
        let format = staged.format;
        let expected = expected.cloned();
        let limits = self.inner.options.read_limits();
        let (schema, rows) = tokio::task::spawn_blocking(move || {
            parse::read_file(&path, format, expected.as_ref(), limits, &mut |_batch| {
                Ok(())
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("checking an upload: {e}")))??;
        if rows == 0 {
            return Err(Error::invalid("file", "the file holds no rows"));
        }
        Ok(Checked { schema, rows })
    }

    /// Creates a dataset's table from a checked upload: version 0 holds the schema alone,
    /// version 1 the rows. Answers the version written (1).
    pub async fn create(
        &self,
        location: &TableLocation,
        staged: &StagedUpload,
        checked: &Checked,
    ) -> Result<i64> {
        self.create_stamped(location, staged, checked, None).await
    }

    /// [`Datasets::create`], with `stamp`'s column last, set on every row.
    pub async fn create_stamped(
        &self,
        location: &TableLocation,
        staged: &StagedUpload,
        checked: &Checked,
        stamp: Option<&Stamp>,
    ) -> Result<i64> {
        let table = self
            .builder(location)?
            .build()
            .map_err(|e| delta_error("table location", e))?;
        let mut columns: Vec<StructField> = checked
            .schema
            .columns
            .iter()
            .map(|column| {
                StructField::new(column.name.clone(), delta_type(column.column_type), true)
            })
            .collect();
        if let Some(stamp) = stamp {
            columns.push(StructField::new(
                stamp.column.clone(),
                delta_type(ColumnType::String),
                true,
            ));
        }
        let table = table
            .create()
            .with_columns(columns)
            .with_save_mode(SaveMode::ErrorIfExists)
            .await
            .map_err(|e| delta_error("creating a dataset table", e))?;
        self.write(table, staged, &checked.schema, 0, stamp).await
    }

    /// Appends a checked upload as the next version, provided the table is at `expected_version`
    /// (the metadata's current version). Answers the version written.
    pub async fn append(
        &self,
        location: &TableLocation,
        expected_version: i64,
        staged: &StagedUpload,
        checked: &Checked,
    ) -> Result<i64> {
        self.append_stamped(location, expected_version, staged, checked, None)
            .await
    }

    /// [`Datasets::append`] to a table created with the same `stamp`.
    pub async fn append_stamped(
        &self,
        location: &TableLocation,
        expected_version: i64,
        staged: &StagedUpload,
        checked: &Checked,
        stamp: Option<&Stamp>,
    ) -> Result<i64> {
        let table = self.load(location, None).await?;
        let found = table.version().map_or(-1, |v| v as i64);
        if found != expected_version {
            return Err(Error::Conflict(format!(
                "the dataset's table is at version {found}, its metadata at {expected_version}; retry, or repair the table"
            )));
        }
        self.write(table, staged, &checked.schema, expected_version, stamp)
            .await
    }

    /// Writes the staged rows as data files, then commits them as one new version. A failure
    /// before the commit leaves the log untouched (data files written so far are never referenced).
    async fn write(
        &self,
        mut table: DeltaTable,
        staged: &StagedUpload,
        schema: &DatasetSchema,
        from_version: i64,
        stamp: Option<&Stamp>,
    ) -> Result<i64> {
        let mut writer = RecordBatchWriter::for_table(&table)
            .map_err(|e| delta_error("opening a table writer", e))?;
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<RecordBatch>(4);
        let path = staged.path.clone();
        let format = staged.format;
        let expected = schema.clone();
        let limits = self.inner.options.read_limits();
        let reader = tokio::task::spawn_blocking(move || {
            parse::read_file(&path, format, Some(&expected), limits, &mut |batch| {
                sender
                    .blocking_send(batch)
                    .map_err(|_| Error::Internal("the table writer stopped".into()))
            })
        });
        let mut write_error = None;
        while let Some(batch) = receiver.recv().await {
            let batch = match stamp {
                None => batch,
                Some(stamp) => match stamped(batch, stamp) {
                    Ok(batch) => batch,
                    Err(error) => {
                        write_error = Some(error);
                        break;
                    }
                },
            };
            if let Err(error) = writer.write(batch).await {
                write_error = Some(delta_error("writing a dataset version", error));
                break;
            }
        }
        drop(receiver);
        let read = reader
            .await
            .map_err(|e| Error::Internal(format!("reading an upload: {e}")))?;
        if let Some(error) = write_error {
            return Err(error);
        }
        read?;
        let version = writer
            .flush_and_commit(&mut table)
            .await
            .map_err(|e| delta_error("committing a dataset version", e))?;
        let version = i64::try_from(version)
            .map_err(|_| Error::Internal(format!("version {version} out of range")))?;
        if version != from_version + 1 {
            tracing::error!(
                version,
                from_version,
                "a dataset version was committed after a concurrent one"
            );
        }
        Ok(version)
    }

    /// The newest version of a dataset's table.
    pub async fn latest_version(&self, location: &TableLocation) -> Result<i64> {
        let table = self.load(location, None).await?;
        table
            .version()
            .map(|v| v as i64)
            .ok_or_else(|| Error::not_found("dataset table"))
    }

    /// A DataFusion table of the dataset as of `version` (its newest when `None`), for the query
    /// engine. The provider reads through this engine's object store, registering it with the
    /// session that scans it; it can also `INSERT`, so planners must refuse DML before it is reached.
    pub async fn table_provider(
        &self,
        location: &TableLocation,
        version: Option<i64>,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.load(location, version).await?;
        table
            .table_provider()
            .await
            .map_err(|e| Error::Internal(format!("dataset table provider: {e}")))
    }

    /// Up to `limit` rows of a dataset as of `version`, as JSON values in column order (dates and
    /// timestamps as text).
    pub async fn rows(&self, location: &TableLocation, version: i64, limit: usize) -> Result<Rows> {
        let provider = self.table_provider(location, Some(version)).await?;
        let columns: Vec<String> = provider
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect();
        let context = SessionContext::new();
        let batches = context
            .read_table(provider)
            .and_then(|frame| frame.limit(0, Some(limit)))
            .map_err(|e| Error::Internal(format!("reading a dataset: {e}")))?
            .collect()
            .await
            .map_err(|e| Error::Internal(format!("reading a dataset: {e}")))?;
        let mut writer = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::JsonArray>(Vec::new());
        let batches: Vec<&RecordBatch> = batches.iter().collect();
        writer
            .write_batches(&batches)
            .and_then(|()| writer.finish())
            .map_err(|e| Error::Internal(format!("rows as JSON: {e}")))?;
        let bytes = writer.into_inner();
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = if bytes.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("rows as JSON: {e}")))?
        };
        let rows = objects
            .into_iter()
            .map(|mut object| {
                columns
                    .iter()
                    .map(|column| object.remove(column).unwrap_or(serde_json::Value::Null))
                    .collect()
            })
            .collect();
        Ok(Rows { columns, rows })
    }
}

fn delta_type(column_type: agora_domain::dataset::ColumnType) -> DeltaType {
    use agora_domain::dataset::ColumnType;
    DeltaType::Primitive(match column_type {
        ColumnType::Boolean => PrimitiveType::Boolean,
        ColumnType::Integer => PrimitiveType::Long,
        ColumnType::Float => PrimitiveType::Double,
        ColumnType::String => PrimitiveType::String,
        ColumnType::Date => PrimitiveType::Date,
        ColumnType::Timestamp => PrimitiveType::Timestamp,
    })
}

/// A file read as a stream of chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = std::io::Result<Vec<u8>>> + Unpin {
    use tokio::io::AsyncReadExt;
    Box::pin(futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0; 1 << 16];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(buffer), file))
            }
            Err(error) => Some((Err(error), file)),
        }
    }))
}

/// `batch` with `stamp`'s column added last, holding its value on every row.
fn stamped(batch: RecordBatch, stamp: &Stamp) -> Result<RecordBatch> {
    use arrow_array::{ArrayRef, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new(&stamp.column, DataType::Utf8, true));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(std::sync::Arc::new(StringArray::from(vec![
        stamp
            .value
            .as_str();
        batch.num_rows()
    ])));
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("stamping a batch: {e}")))
}
