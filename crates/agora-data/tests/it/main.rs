//! The datasets engine against real Delta tables in a temporary folder: each format, versions,
//! reads as of a version, and every kind of malformed file refused with its line and column while
//! the table's files, its log included, stay exactly as they were.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agora_data::{DataOptions, Datasets, StagedUpload, TableLocation};
use agora_domain::dataset::{ColumnType, DatasetSchema, UploadFormat};
use agora_domain::{DatasetId, Error, OrgId};
use arrow_array::{Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

const SALES: &str = "store,units,price,day,open\n\
    Lisbon,3,1.5,2026-01-02,true\n\
    Porto,,2.25,2026-01-03,false\n";

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    datasets: Datasets,
    location: TableLocation,
    /// The schema, as the metadata database would remember it.
    schema: Mutex<Option<DatasetSchema>>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(change: impl FnOnce(&mut DataOptions)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().to_path_buf();
        let mut options = DataOptions::new(&root);
        // Several batches even for small files, so that batch edges are exercised.
        options.batch_rows = 2;
        change(&mut options);
        Self {
            datasets: Datasets::open_local(options).expect("the engine opens"),
            root,
            _dir: dir,
            location: TableLocation {
                org_id: OrgId::new(),
                dataset_id: DatasetId::new(),
            },
            schema: Mutex::new(None),
        }
    }

    async fn stage(
        &self,
        format: UploadFormat,
        bytes: &[u8],
    ) -> agora_domain::Result<StagedUpload> {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(7).map(|chunk| Ok(chunk.to_vec())).collect();
        self.datasets
            .stage(format, futures_util::stream::iter(chunks))
            .await
    }

    /// Creates the table on the first upload, appends afterwards; answers the version written.
    async fn upload(&self, format: UploadFormat, bytes: &[u8]) -> agora_domain::Result<i64> {
        let staged = self.stage(format, bytes).await?;
        let known = self.schema.lock().unwrap().clone();
        match known {
            None => {
                let checked = self.datasets.check(&staged, None).await?;
                let version = self
                    .datasets
                    .create(&self.location, &staged, &checked)
                    .await?;
                *self.schema.lock().unwrap() = Some(checked.schema);
                Ok(version)
            }
            Some(schema) => {
                let checked = self.datasets.check(&staged, Some(&schema)).await?;
                let current = self.datasets.latest_version(&self.location).await?;
                self.datasets
                    .append(&self.location, current, &staged, &checked)
                    .await
            }
        }
    }

    /// The rows as of `version`, each as an object, for assertions by column name.
    async fn rows(&self, version: i64) -> Vec<serde_json::Value> {
        let rows = self
            .datasets
            .rows(&self.location, version, 100)
            .await
            .expect("rows");
        rows.rows
            .into_iter()
            .map(|row| serde_json::Value::Object(rows.columns.iter().cloned().zip(row).collect()))
            .collect()
    }

    fn table_dir(&self) -> PathBuf {
        self.root
            .join("datasets")
            .join(self.location.org_id.to_string())
            .join(self.location.dataset_id.to_string())
    }

    /// Every file under the table's folder, to show that a refusal wrote nothing.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, into: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, into);
                } else {
                    into.push(path.display().to_string());
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.table_dir(), &mut files);
        files.sort();
        files
    }

    fn staged_files(&self) -> usize {
        std::fs::read_dir(self.root.join("staging"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }
}

fn types(schema: &DatasetSchema) -> Vec<(String, ColumnType)> {
    schema
        .columns
        .iter()
        .map(|column| (column.name.clone(), column.column_type))
        .collect()
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
    bytes
}

#[tokio::test]
async fn csv_upload_infers_the_schema_and_reads_back() {
    let fixture = Fixture::new();
    let staged = fixture
        .stage(UploadFormat::Csv, SALES.as_bytes())
        .await
        .unwrap();
    let checked = fixture.datasets.check(&staged, None).await.unwrap();
    assert_eq!(checked.rows, 2);
    assert_eq!(
        types(&checked.schema),
        [
            ("store".into(), ColumnType::String),
            ("units".into(), ColumnType::Integer),
            ("price".into(), ColumnType::Float),
            ("day".into(), ColumnType::Date),
            ("open".into(), ColumnType::Boolean),
        ]
    );
    drop(staged);
    assert_eq!(
        fixture.upload(UploadFormat::Csv, SALES.as_bytes()).await,
        Ok(1)
    );
    let rows = fixture
        .datasets
        .rows(&fixture.location, 1, 100)
        .await
        .unwrap();
    assert_eq!(rows.columns, ["store", "units", "price", "day", "open"]);
    assert_eq!(
        serde_json::Value::from(rows.rows).to_string(),
        r#"[["Lisbon",3,1.5,"2026-01-02",true],["Porto",null,2.25,"2026-01-03",false]]"#
    );
    assert_eq!(fixture.staged_files(), 0, "staged uploads are removed");
}

#[tokio::test]
async fn appending_makes_version_2_and_version_1_stays_readable() {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.upload(UploadFormat::Csv, SALES.as_bytes()).await,
        Ok(1)
    );
    // Columns in another order still match by name.
    let more = "units,store,price,day,open\n7,Faro,3.0,2026-01-04,true\n";
    assert_eq!(
        fixture.upload(UploadFormat::Csv, more.as_bytes()).await,
        Ok(2)
    );
    assert_eq!(fixture.rows(1).await.len(), 2);
    let latest = fixture.rows(2).await;
    assert_eq!(latest.len(), 3);
    assert!(
        latest
            .iter()
            .any(|row| row["store"] == "Faro" && row["units"] == 7)
    );
    assert_eq!(
        fixture.datasets.latest_version(&fixture.location).await,
        Ok(2)
    );
    // The query engine's door: a DataFusion table as of version 1.
    let provider = fixture
        .datasets
        .table_provider(&fixture.location, Some(1))
        .await
        .expect("a provider");
    assert_eq!(provider.schema().fields().len(), 5);
}

#[tokio::test]
async fn json_lines_upload_reads_objects_by_field_name() {
    let fixture = Fixture::new();
    let body = "{\"store\":\"Lisbon\",\"units\":3,\"at\":\"2026-01-02T10:00:00Z\"}\n\
                \n\
                {\"units\":2.5,\"store\":null}\n";
    assert_eq!(
        fixture
            .upload(UploadFormat::JsonLines, body.as_bytes())
            .await,
        Ok(1)
    );
    let schema = fixture.schema.lock().unwrap().clone().unwrap();
    assert_eq!(
        types(&schema),
        [
            ("store".into(), ColumnType::String),
            ("units".into(), ColumnType::Float),
            ("at".into(), ColumnType::Timestamp),
        ]
    );
    let rows = fixture.rows(1).await;
    assert_eq!(rows[0]["at"], "2026-01-02T10:00:00Z");
    assert_eq!(rows[1]["units"], 2.5);
    assert_eq!(rows[1]["store"], serde_json::Value::Null);
}

#[tokio::test]
async fn parquet_upload_keeps_its_schema_in_datasets_types() {
    let fixture = Fixture::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("store", DataType::Utf8, false),
        Field::new("units", DataType::Int32, true),
        Field::new("price", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["Lisbon", "Porto", "Faro"])),
            Arc::new(Int32Array::from(vec![Some(3), None, Some(1)])),
            Arc::new(Float64Array::from(vec![1.5, 2.0, 0.5])),
        ],
    )
    .unwrap();
    let bytes = parquet_bytes(&batch);
    assert_eq!(fixture.upload(UploadFormat::Parquet, &bytes).await, Ok(1));
    let schema = fixture.schema.lock().unwrap().clone().unwrap();
    assert_eq!(
        types(&schema),
        [
            ("store".into(), ColumnType::String),
            ("units".into(), ColumnType::Integer),
            ("price".into(), ColumnType::Float),
        ]
    );
    assert_eq!(fixture.upload(UploadFormat::Parquet, &bytes).await, Ok(2));
    assert_eq!(fixture.rows(2).await.len(), 6);
}

/// Uploads `good` (CSV) as version 1, then `bad` in `format`, which must be refused with
/// `expect` and leave every file of the table as it was.
async fn check_refused(format: UploadFormat, bad: &[u8], expect: &str) {
    let fixture = Fixture::new();
    assert_eq!(
        fixture.upload(UploadFormat::Csv, SALES.as_bytes()).await,
        Ok(1)
    );
    let before = fixture.files();
    let error = fixture
        .upload(format, bad)
        .await
        .expect_err("the file is refused");
    assert_eq!(error.to_string(), expect);
    assert_eq!(fixture.files(), before, "a refused file writes nothing");
    assert_eq!(
        fixture.datasets.latest_version(&fixture.location).await,
        Ok(1)
    );
    assert_eq!(fixture.staged_files(), 0);
}

#[tokio::test]
async fn malformed_files_are_refused_with_line_and_column_and_nothing_is_written() {
    let header = "store,units,price,day,open\n";
    let cases: Vec<(UploadFormat, Vec<u8>, &str)> = vec![
        (
            UploadFormat::Csv,
            format!("{header}Faro,1,1.0,2026-01-01,true\nBraga,2,1.0,2026-01-01\n").into_bytes(),
            "invalid file: line 3, column 5 (`open`): the row has 4 fields, the header has 5",
        ),
        (
            UploadFormat::Csv,
            format!("{header}Faro,1,1.0,2026-01-01,true\nFaro,1,1.0,2026-01-01,true\nBraga,two,1.0,2026-01-01,true\n").into_bytes(),
            "invalid file: line 4, column 2 (`units`): `two` is not an integer",
        ),
        (
            UploadFormat::Csv,
            [header.as_bytes(), b"Faro,1,1.0,2026-01-01,true\nBr\xffga,2,1.0,2026-01-01,true\n"].concat(),
            "invalid file: line 3, column 1 (`store`): not valid UTF-8 (invalid byte at offset 2 of the field)",
        ),
        (
            UploadFormat::Csv,
            b"store,units,price,day,closed\nFaro,1,1.0,2026-01-01,true\n".to_vec(),
            "invalid file: line 1, column 5 (`closed`): the dataset has no such column (its schema does not match this file)",
        ),
        (
            UploadFormat::Csv,
            b"store,units,price,day\nFaro,1,1.0,2026-01-01\n".to_vec(),
            "invalid file: line 1: the dataset's column `open` is missing from the header (its schema does not match this file)",
        ),
        (
            UploadFormat::JsonLines,
            b"{\"store\":\"Faro\",\"units\":1}\n{\"store\":\"Braga\",\"units\":\"2\"}\n".to_vec(),
            "invalid file: line 2, column 2 (`units`): `\"2\"` is not an integer",
        ),
        (
            UploadFormat::JsonLines,
            b"{\"store\":\"Faro\"}\n{\"store\": \"Braga\",}\n".to_vec(),
            "invalid file: line 2, column 19 (`?`): not valid JSON: trailing comma at line 1 column 19",
        ),
        (
            UploadFormat::JsonLines,
            b"{\"store\":\"Faro\",\"colour\":\"red\"}\n".to_vec(),
            "invalid file: line 1, column 6 (`colour`): the dataset has no such column (its schema does not match this file)",
        ),
        (
            UploadFormat::Parquet,
            b"PAR1 this is not parquet".to_vec(),
            "invalid file: line 1: not a readable Parquet file: Parquet error: Invalid Parquet file. Corrupt footer",
        ),
    ];
    for (format, bad, expect) in cases {
        check_refused(format, &bad, expect).await;
    }
}

#[tokio::test]
async fn a_parquet_file_whose_types_differ_from_the_dataset_is_refused() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("store", DataType::Utf8, true),
        Field::new("units", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
        Field::new("open", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["Faro"])),
            Arc::new(StringArray::from(vec!["three"])),
            Arc::new(Float64Array::from(vec![1.0])),
            Arc::new(arrow_array::Date32Array::from(vec![1])),
            Arc::new(arrow_array::BooleanArray::from(vec![true])),
        ],
    )
    .unwrap();
    check_refused(
        UploadFormat::Parquet,
        &parquet_bytes(&batch),
        "invalid file: line 1, column 2 (`units`): the file holds string, the dataset's column is integer (its schema does not match this file)",
    )
    .await;
}

#[tokio::test]
async fn limits_refuse_large_uploads_while_they_stream() {
    let fixture = Fixture::with(|options| {
        options.upload_bytes_max = 40;
        options.upload_rows_max = 2;
    });
    let error = fixture
        .stage(UploadFormat::Csv, SALES.as_bytes())
        .await
        .expect_err("too large");
    assert!(
        matches!(&error, Error::LimitExceeded { limit, .. } if limit == "upload_bytes_max"),
        "{error}"
    );
    assert_eq!(fixture.staged_files(), 0, "nothing of it is kept");

    let fixture = Fixture::with(|options| options.upload_rows_max = 1);
    let error = fixture
        .upload(UploadFormat::Csv, SALES.as_bytes())
        .await
        .expect_err("too many rows");
    assert_eq!(
        error.to_string(),
        "limit upload_rows_max exceeded: line 3: an upload may carry at most 1 rows"
    );
    assert!(fixture.files().is_empty(), "no table was created");
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let fixture = Fixture::new();
    for (format, body, expect) in [
        (
            UploadFormat::Csv,
            "",
            "invalid file: line 1: the file is empty; a CSV upload starts with a header line naming its columns",
        ),
        (
            UploadFormat::Csv,
            "a,b\n",
            "invalid file: the file holds no rows",
        ),
        (
            UploadFormat::JsonLines,
            "\n",
            "invalid file: line 1: the file holds no JSON object with a field",
        ),
    ] {
        let error = fixture
            .upload(format, body.as_bytes())
            .await
            .expect_err(body);
        assert_eq!(error.to_string(), expect);
    }
    assert!(fixture.files().is_empty());
}
