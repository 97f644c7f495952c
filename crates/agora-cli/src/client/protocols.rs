//! `agora protocol` and `agora query`: draft, propose, approve, pause, resume, revoke and revise
//! data-sharing protocols; run governed SQL; read the query log as consumer or provider.

use std::path::PathBuf;

use agora_domain::Timestamp;
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};

use super::datasets::OrgArgs;
use super::orgs::{print_list, print_one};
use super::output::{self, Format, Table};
use super::{ClientArgs, ListArgs, connect, org_or_acting};
use crate::{Failure, exit};

/// Data-sharing protocols: draft, propose, approve, pause, resume, revoke, revise.
#[derive(Debug, Subcommand)]
pub enum ProtocolCommand {
    /// Draft a protocol from a TOML or JSON document over your organisation's datasets.
    ///
    /// The document is checked against the datasets: every column exists, none is shared looser
    /// than its owner classed it, thresholds are at least 2. `docs/protocols.md` has a full example.
    #[command(after_help = "Example:\n  agora protocol create freshmart-sales.toml")]
    Create {
        /// The document (.toml or .json).
        file: PathBuf,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the protocols your organisation is a party to.
    List {
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a protocol: its latest version's document, content hash, state and approvals.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a protocol's versions, newest first.
    Versions {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show what changed between two versions.
    Diff {
        id: String,
        #[arg(long, value_name = "N")]
        from: i64,
        #[arg(long, value_name = "N")]
        to: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revise a protocol (provider): a new draft version that needs every approval again.
    Revise {
        id: String,
        /// The new document; its `version` must be the next one.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Propose the latest draft to every party (provider).
    Propose {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve the latest version for your organisation, naming the content hash you reviewed
    /// (`agora protocol show` prints it).
    Approve {
        id: String,
        /// The content hash of the version you reviewed.
        #[arg(long, value_name = "SHA256")]
        hash: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pause the version in force for your organisation.
    Pause {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lift your organisation's pause.
    Resume {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke the protocol (provider): no version of it runs again.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Run governed SQL as your organisation, or read the query log.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct QueryCommand {
    #[command(subcommand)]
    pub log: Option<QueryLogCommand>,
    /// The SQL. Your own datasets are tables by their names; shared ones appear as their
    /// protocols allow.
    #[arg(value_name = "SQL")]
    pub sql: Option<String>,
    /// The purpose you declare, one of those the protocols allow.
    #[arg(long, value_name = "PURPOSE")]
    pub purpose: Option<String>,
    /// How to write the result.
    #[arg(long, value_enum, default_value_t = ResultFormat::Table)]
    pub result: ResultFormat,
    /// Write the result to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Read a dataset as of an earlier version, as NAME=VERSION; repeat for several.
    #[arg(long = "as-of", value_name = "NAME=VERSION")]
    pub as_of: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum QueryLogCommand {
    /// The queries your organisation ran, or (--against-our-data) those that used its protocols.
    Log {
        /// List the queries other organisations ran against your data.
        #[arg(long)]
        against_our_data: bool,
        #[command(flatten)]
        org: OrgArgs,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// How to write a query's result.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResultFormat {
    /// A table (or the JSON answer with --format json).
    Table,
    /// CSV with a header row.
    Csv,
    /// An Arrow IPC stream (write it to a file with --out).
    Arrow,
}

/// One query to run.
struct QueryRun {
    sql: String,
    purpose: String,
    result: ResultFormat,
    out: Option<PathBuf>,
    as_of: Vec<String>,
    client: ClientArgs,
}

#[derive(Debug, Deserialize)]
struct VersionView {
    version: i64,
    state: String,
    content_hash: String,
    document: Value,
    approvals: Vec<String>,
    awaiting: Vec<String>,
    paused_by: Vec<String>,
    suspended_reason: Option<String>,
    updated_at: Timestamp,
}

#[derive(Debug, Deserialize)]
struct ProtocolView {
    id: String,
    name: String,
    provider: String,
    latest_version: i64,
    active_version: Option<i64>,
    latest: VersionView,
}

#[derive(Debug, Deserialize)]
struct LogEntry {
    id: String,
    consumer: String,
    purpose: String,
    sql: String,
    outcome: String,
    rule: Option<String>,
    rows_returned: i64,
    rows_suppressed: i64,
    created_at: Timestamp,
}

fn read_document(file: &PathBuf) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(file).map_err(|error| Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!("cannot read {}: {error}", file.display()),
    })?;
    let format = match file.extension().and_then(|e| e.to_str()) {
        Some("json") => Some("json"),
        Some("toml") => Some("toml"),
        _ => None,
    };
    Ok(json!({ "document": text, "format": format }))
}

fn protocols_table(protocols: &[ProtocolView]) -> String {
    let mut table = Table::new(&[
        "id", "name", "provider", "latest", "state", "in force", "awaiting",
    ]);
    for protocol in protocols {
        table.row(vec![
            protocol.id.clone(),
            protocol.name.clone(),
            protocol.provider.clone(),
            protocol.latest_version.to_string(),
            protocol.latest.state.clone(),
            protocol
                .active_version
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            protocol.latest.awaiting.len().to_string(),
        ]);
    }
    table.render("No protocols.")
}

fn version_text(version: &VersionView) -> String {
    let mut text = format!(
        "version {}: {}\ncontent hash: {}\napproved by: {}\nawaiting: {}\n",
        version.version,
        version.state,
        version.content_hash,
        list_or_dash(&version.approvals),
        list_or_dash(&version.awaiting),
    );
    if !version.paused_by.is_empty() {
        text.push_str(&format!("paused by: {}\n", version.paused_by.join(", ")));
    }
    if let Some(reason) = &version.suspended_reason {
        text.push_str(&format!("suspended: {reason}\n"));
    }
    text.push_str(&format!("updated: {}\n", output::time(version.updated_at)));
    text
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn protocol_text(protocols: &[ProtocolView]) -> String {
    protocols
        .iter()
        .map(|protocol| {
            format!(
                "{} ({}), provider {}, in force: {}\n{}\n{}\n",
                protocol.name,
                protocol.id,
                protocol.provider,
                protocol
                    .active_version
                    .map_or_else(|| "none".to_owned(), |v| format!("version {v}")),
                version_text(&protocol.latest),
                serde_json::to_string_pretty(&protocol.latest.document).unwrap_or_default()
            )
        })
        .collect()
}

pub async fn protocol(command: ProtocolCommand) -> Result<(), Failure> {
    match command {
        ProtocolCommand::Create { file, org, client } => {
            let body = read_document(&file)?;
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{org_id}/protocols"),
                    Some(&body),
                    None,
                )
                .await?;
            print_one(client.format, &answer, protocol_text)
        }
        ProtocolCommand::List { org, list, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            print_list(
                &api,
                &format!("/api/v1/orgs/{org_id}/protocols"),
                &list,
                client.format,
                protocols_table,
            )
            .await
        }
        ProtocolCommand::Show { id, client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api.get(&format!("/api/v1/protocols/{id}"), &[]).await?;
            print_one(client.format, &answer, protocol_text)
        }
        ProtocolCommand::Versions { id, client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api
                .get(&format!("/api/v1/protocols/{id}/versions"), &[])
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let versions: Vec<VersionView> = super::typed(&answer)?;
                    output::print(
                        &versions
                            .iter()
                            .map(version_text)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )
                }
            }
        }
        ProtocolCommand::Diff {
            id,
            from,
            to,
            client,
        } => {
            let api = connect(&client.connect)?;
            let (from, to) = (from.to_string(), to.to_string());
            let answer: Value = api
                .get(
                    &format!("/api/v1/protocols/{id}/diff"),
                    &[("from", from.as_str()), ("to", to.as_str())],
                )
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let lines: Vec<String> = super::typed(&answer["lines"])?;
                    let mut text = lines.join("\n");
                    text.push('\n');
                    output::print(&text)
                }
            }
        }
        ProtocolCommand::Revise { id, file, client } => {
            let body = read_document(&file)?;
            let api = connect(&client.connect)?;
            let answer = api.put(&format!("/api/v1/protocols/{id}"), &body).await?;
            print_one(client.format, &answer, protocol_text)
        }
        ProtocolCommand::Propose { id, client } => step(&id, "propose", None, client).await,
        ProtocolCommand::Approve { id, hash, client } => {
            step(
                &id,
                "approve",
                Some(json!({ "content_hash": hash })),
                client,
            )
            .await
        }
        ProtocolCommand::Pause { id, client } => step(&id, "pause", None, client).await,
        ProtocolCommand::Resume { id, client } => step(&id, "resume", None, client).await,
        ProtocolCommand::Revoke { id, client } => step(&id, "revoke", None, client).await,
    }
}

async fn step(
    id: &str,
    step: &str,
    body: Option<Value>,
    client: ClientArgs,
) -> Result<(), Failure> {
    let api = connect(&client.connect)?;
    let answer = api
        .post(
            &format!("/api/v1/protocols/{id}/{step}"),
            body.as_ref(),
            None,
        )
        .await?;
    print_one(client.format, &answer, |protocols: &[ProtocolView]| {
        protocols
            .iter()
            .map(|p| format!("{} ({})\n{}", p.name, p.id, version_text(&p.latest)))
            .collect()
    })
}

pub async fn query(command: QueryCommand) -> Result<(), Failure> {
    let run = match (command.sql, command.purpose) {
        (Some(sql), Some(purpose)) => Some(QueryRun {
            sql,
            purpose,
            result: command.result,
            out: command.out,
            as_of: command.as_of,
            client: command.client,
        }),
        _ => None,
    };
    match (command.log, run) {
        (
            Some(QueryLogCommand::Log {
                against_our_data,
                org,
                list,
                client,
            }),
            _,
        ) => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.org.as_deref()).await?;
            let scope = if against_our_data {
                "against_our_data"
            } else {
                "ran"
            };
            print_list(
                &api,
                &format!("/api/v1/orgs/{org_id}/queries?scope={scope}"),
                &list,
                client.format,
                log_table,
            )
            .await
        }
        (None, Some(run)) => run_query(run).await,
        (None, None) => Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!(
                "give SQL and --purpose (agora query --purpose assortment \"SELECT ...\"), or `agora query log`"
            ),
        }),
    }
}

async fn run_query(run: QueryRun) -> Result<(), Failure> {
    let api = connect(&run.client.connect)?;
    let mut as_of = serde_json::Map::new();
    for pair in &run.as_of {
        let parsed = pair
            .split_once('=')
            .and_then(|(name, version)| Some((name, version.parse::<i64>().ok()?)));
        let Some((name, version)) = parsed else {
            return Err(Failure {
                code: exit::USAGE,
                error: anyhow::anyhow!("`{pair}` is not NAME=VERSION"),
            });
        };
        as_of.insert(name.to_owned(), json!(version));
    }
    let body = json!({ "purpose": run.purpose, "sql": run.sql, "as_of": as_of });
    let accept = match run.result {
        ResultFormat::Table => "application/json",
        ResultFormat::Csv => "text/csv",
        ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
    };
    let bytes = api.post_bytes("/api/v1/queries", &body, accept).await?;
    let rendered: Vec<u8> = match (run.result, run.client.format) {
        (ResultFormat::Table, Format::Json) => bytes,
        (ResultFormat::Table, Format::Table) => {
            let answer: Value = serde_json::from_slice(&bytes).map_err(|error| Failure {
                code: 1,
                error: anyhow::anyhow!("the server's answer is not JSON: {error}"),
            })?;
            answer_text(&answer).into_bytes()
        }
        (_, _) => bytes,
    };
    match &run.out {
        Some(path) => std::fs::write(path, &rendered).map_err(|error| Failure {
            code: 1,
            error: anyhow::anyhow!("cannot write {}: {error}", path.display()),
        }),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&rendered)
                .and_then(|()| stdout.flush())
                .map_err(|error| Failure {
                    code: 1,
                    error: anyhow::anyhow!("cannot write the result: {error}"),
                })
        }
    }
}

fn answer_text(answer: &Value) -> String {
    let columns: Vec<&str> = answer["columns"]
        .as_array()
        .map(|columns| columns.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    let mut table = Table::new(&columns);
    for row in &rows {
        table.row(
            row.as_array()
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
                .unwrap_or_default(),
        );
    }
    let report = &answer["report"];
    let mut text = table.render("No rows.");
    text.push_str(&format!(
        "\n{} rows; {} suppressed{}; query {}\n",
        rows.len(),
        report["rows_suppressed"].as_u64().unwrap_or(0),
        match report["rows_suppressed_by_differencing"].as_u64() {
            Some(n) if n > 0 => format!(" ({n} for differing too little from an earlier result)"),
            _ => String::new(),
        },
        answer["id"].as_str().unwrap_or("-"),
    ));
    if let Some(rules) = report["rules_applied"].as_array()
        && !rules.is_empty()
    {
        text.push_str("rules applied:\n");
        for rule in rules {
            text.push_str(&format!("  {}\n", rule.as_str().unwrap_or_default()));
        }
    }
    text
}

fn log_table(entries: &[LogEntry]) -> String {
    let mut table = Table::new(&[
        "id",
        "when",
        "consumer",
        "purpose",
        "outcome",
        "rule",
        "rows",
        "suppressed",
        "sql",
    ]);
    for entry in entries {
        let sql: String = entry.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let sql = if sql.chars().count() > 60 {
            format!("{}…", sql.chars().take(60).collect::<String>())
        } else {
            sql
        };
        table.row(vec![
            entry.id.clone(),
            output::time(entry.created_at),
            entry.consumer.clone(),
            entry.purpose.clone(),
            entry.outcome.clone(),
            entry.rule.clone().unwrap_or_else(|| "-".into()),
            entry.rows_returned.to_string(),
            entry.rows_suppressed.to_string(),
            sql,
        ]);
    }
    table.render("No queries.")
}
