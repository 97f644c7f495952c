//! `agora dataset`: upload CSV, JSON lines or Parquet files as datasets and their new versions,
//! see their schema, classes and versions, read rows as of a version, classify columns, delete.

use std::path::{Path, PathBuf};

use agora_domain::Timestamp;
use agora_domain::dataset::{ColumnClass, ColumnType, DatasetVersion, UploadFormat};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::Api;
use super::orgs::{print_list, print_one};
use super::output::{self, Format, Table};
use super::{ClientArgs, ListArgs, connect, org_or_acting};
use crate::{Failure, exit};

/// Datasets: upload, list, show, versions, rows, classify, delete.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Upload a file as a new dataset, or as the next version of the dataset of that name.
    ///
    /// The format follows the file's extension (.csv, .jsonl or .ndjson, .parquet) unless
    /// --file-format says otherwise. A malformed file is refused with the line and column of its
    /// first error, and nothing of it is written.
    #[command(after_help = "Examples:\n  \
        agora dataset upload store_sales sales-2026-01.csv\n  \
        agora dataset upload shipments shipments.parquet --org FreshMart")]
    Upload {
        /// The dataset's name: a-z, 0-9 and _, starting with a letter.
        name: String,
        /// The file to upload.
        file: PathBuf,
        /// The file's format, when its extension does not say.
        #[arg(long, value_enum, value_name = "FORMAT")]
        file_format: Option<FileFormat>,
        #[command(flatten)]
        org: OrgArgs,
        /// Print no progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the organisation's datasets.
    List {
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a dataset's columns, their types and classes.
    Show {
        name: String,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a dataset's versions, newest first.
    Versions {
        name: String,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print rows of a dataset, as of a version (the current one by default).
    Rows {
        name: String,
        /// The version to read as of.
        #[arg(long, value_name = "N")]
        version: Option<i64>,
        /// At most this many rows (1 to 1000).
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give columns their classes, as COLUMN=CLASS pairs; columns left out are unclassified
    /// (blocked). Classes: dimension, metric, join_key, entity_id, contributor, timestamp, blocked.
    #[command(after_help = "Example:\n  \
        agora dataset classify store_sales store=dimension units=metric customer_id=entity_id day=timestamp")]
    Classify {
        name: String,
        /// COLUMN=CLASS, one per column.
        #[arg(required = true, value_name = "COLUMN=CLASS")]
        classes: Vec<String>,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a dataset: it is no longer listed, read or queried, and protocols using it are suspended.
    Delete {
        name: String,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Which organisation's datasets.
#[derive(Debug, Clone, Args)]
pub struct OrgArgs {
    /// The owning organisation, by id or name (default: the one the token acts for).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Csv,
    Jsonl,
    Parquet,
}

impl From<FileFormat> for UploadFormat {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::Csv => UploadFormat::Csv,
            FileFormat::Jsonl => UploadFormat::JsonLines,
            FileFormat::Parquet => UploadFormat::Parquet,
        }
    }
}

pub(super) fn format_of(path: &Path, given: Option<FileFormat>) -> Result<UploadFormat, Failure> {
    if let Some(given) = given {
        return Ok(given.into());
    }
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => Ok(UploadFormat::Csv),
        Some("jsonl" | "ndjson") => Ok(UploadFormat::JsonLines),
        Some("parquet") => Ok(UploadFormat::Parquet),
        _ => Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!(
                "cannot tell the format of {} from its extension; pass --file-format csv|jsonl|parquet",
                path.display()
            ),
        }),
    }
}

/// A column as the API shows it.
#[derive(Debug, Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    column_type: ColumnType,
    class: ColumnClass,
    classified: bool,
}

/// A dataset as the API shows it.
#[derive(Debug, Deserialize)]
struct Dataset {
    id: String,
    name: String,
    current_version: i64,
    columns: Vec<Column>,
    updated_at: Timestamp,
}

#[derive(Debug, Deserialize)]
struct Uploaded {
    created: bool,
    dataset: Dataset,
    version: DatasetVersion,
}

fn path(org_id: &agora_domain::OrgId, name: &str) -> String {
    format!("/api/v1/orgs/{org_id}/datasets/{name}")
}

pub async fn dataset(command: DatasetCommand) -> Result<(), Failure> {
    match command {
        DatasetCommand::Upload {
            name,
            file,
            file_format,
            org,
            quiet,
            client,
        } => {
            let format = format_of(&file, file_format)?;
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let answer = upload(&api, &path(&org_id, &name), &file, format, quiet).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let uploaded: Uploaded = super::typed(&answer)?;
                    let verb = if uploaded.created {
                        "Created"
                    } else {
                        "Appended to"
                    };
                    output::print(&format!(
                        "{verb} dataset {} ({}): version {}, {} rows, {} bytes.\n\n{}",
                        uploaded.dataset.name,
                        uploaded.dataset.id,
                        uploaded.version.version,
                        uploaded.version.rows_added,
                        uploaded.version.bytes,
                        columns_table(&uploaded.dataset.columns)
                    ))
                }
            }
        }
        DatasetCommand::List { org, list, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            print_list(
                &api,
                &format!("/api/v1/orgs/{org_id}/datasets"),
                &list,
                client.format,
                datasets_table,
            )
            .await
        }
        DatasetCommand::Show { name, org, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let answer: Value = api.get(&path(&org_id, &name), &[]).await?;
            print_one(client.format, &answer, |datasets: &[Dataset]| {
                datasets
                    .iter()
                    .map(|dataset| {
                        format!(
                            "{} ({}), version {}\n\n{}",
                            dataset.name,
                            dataset.id,
                            dataset.current_version,
                            columns_table(&dataset.columns)
                        )
                    })
                    .collect()
            })
        }
        DatasetCommand::Versions {
            name,
            org,
            list,
            client,
        } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            print_list(
                &api,
                &format!("{}/versions", path(&org_id, &name)),
                &list,
                client.format,
                versions_table,
            )
            .await
        }
        DatasetCommand::Rows {
            name,
            version,
            limit,
            org,
            client,
        } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let limit = limit.to_string();
            let version = version.map(|version| version.to_string());
            let mut query = vec![("limit", limit.as_str())];
            if let Some(version) = &version {
                query.push(("version", version.as_str()));
            }
            let answer: Value = api
                .get(&format!("{}/rows", path(&org_id, &name)), &query)
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&rows_table(&answer)),
            }
        }
        DatasetCommand::Classify {
            name,
            classes,
            org,
            client,
        } => {
            let mut classings = Vec::with_capacity(classes.len());
            for pair in &classes {
                let Some((column, class)) = pair.split_once('=') else {
                    return Err(Failure {
                        code: exit::USAGE,
                        error: anyhow::anyhow!("`{pair}` is not COLUMN=CLASS"),
                    });
                };
                classings.push(json!({ "column": column, "class": class }));
            }
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let answer = api
                .put(
                    &format!("{}/classes", path(&org_id, &name)),
                    &Value::Array(classings),
                )
                .await?;
            print_one(client.format, &answer, |datasets: &[Dataset]| {
                datasets
                    .iter()
                    .map(|dataset| columns_table(&dataset.columns))
                    .collect()
            })
        }
        DatasetCommand::Delete { name, org, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let answer = api.delete(&path(&org_id, &name)).await?.unwrap_or_default();
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!("Deleted dataset {name}.")),
            }
        }
    }
}

/// Streams the file to the server with a progress bar on standard error.
async fn upload(
    api: &Api,
    dataset_path: &str,
    file: &Path,
    format: UploadFormat,
    quiet: bool,
) -> Result<Value, Failure> {
    upload_to(
        api,
        &format!("{dataset_path}/versions"),
        file,
        format,
        quiet,
    )
    .await
}

/// Streams the file to `url_path` with a progress bar on standard error.
pub(super) async fn upload_to(
    api: &Api,
    url_path: &str,
    file: &Path,
    format: UploadFormat,
    quiet: bool,
) -> Result<Value, Failure> {
    let opened = tokio::fs::File::open(file).await.map_err(|error| Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!("cannot read {}: {error}", file.display()),
    })?;
    let size = opened
        .metadata()
        .await
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(format!("uploading {}", file.display()));
        bar
    };
    let answer = api
        .upload(url_path, format.media_type(), opened, bar.clone())
        .await;
    bar.finish_and_clear();
    answer
}

fn columns_table(columns: &[Column]) -> String {
    let mut table = Table::new(&["column", "type", "class"]);
    for column in columns {
        let class = if column.classified {
            column.class.to_string()
        } else {
            format!("{} (unclassified)", column.class)
        };
        table.row(vec![
            column.name.clone(),
            column.column_type.to_string(),
            class,
        ]);
    }
    table.render("No columns.")
}

fn datasets_table(datasets: &[Dataset]) -> String {
    let mut table = Table::new(&["name", "id", "version", "columns", "updated"]);
    for dataset in datasets {
        table.row(vec![
            dataset.name.clone(),
            dataset.id.clone(),
            dataset.current_version.to_string(),
            dataset.columns.len().to_string(),
            output::time(dataset.updated_at),
        ]);
    }
    table.render("No datasets.")
}

fn versions_table(versions: &[DatasetVersion]) -> String {
    let mut table = Table::new(&["version", "rows added", "bytes", "format", "created"]);
    for version in versions {
        table.row(vec![
            version.version.to_string(),
            version.rows_added.to_string(),
            version.bytes.to_string(),
            version.format.as_str().to_owned(),
            output::time(version.created_at),
        ]);
    }
    table.render("No versions.")
}

fn rows_table(answer: &Value) -> String {
    let columns: Vec<&str> = answer["columns"]
        .as_array()
        .map(|columns| columns.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "No rows.".to_owned();
    }
    let mut table = Table::new(&columns);
    for row in &rows {
        let cells = row
            .as_array()
            .map(|cells| {
                cells
                    .iter()
                    .map(|cell| match cell {
                        Value::Null => String::new(),
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        table.row(cells);
    }
    table.render("No rows.")
}
