//! `agora miniapp`: register mini-apps from bundle zips, upload and roll back versions, read
//! their review and figures; the operator reviews versions.

use std::path::PathBuf;

use clap::Subcommand;
use indicatif::ProgressBar;
use serde_json::{Value, json};

use super::http::Api;
use super::output::{self, Format, Table};
use super::{ClientArgs, connect, org_or_acting};
use crate::Failure;

/// Mini-apps: register, upload, list, show, review, rollback.
#[derive(Debug, Subcommand)]
pub enum MiniAppCommand {
    /// Register a mini-app from a bundle: a zip with manifest.json at its root (or a manifest
    /// .json with an external entry). Prints the OpenID Connect client secret, once.
    #[command(after_help = "Examples:\n  \
        agora miniapp register clinic.zip\n  \
        agora miniapp register external.json --org 'Vila Clinic'")]
    Register {
        /// The bundle (.zip) or manifest (.json).
        file: PathBuf,
        /// The owning organisation, by id or name (default: the one the token acts for).
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Upload a new version of a mini-app; it waits for the operator's review.
    Upload {
        /// The mini-app's id (app_…).
        app: String,
        /// The bundle (.zip) or manifest (.json); the slug must stay the same.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the organisation's mini-apps with their review state and figures.
    List {
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one mini-app: versions, review, installs, active users, payments received.
    Show {
        app: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve or reject a version (the operator's owners and admins).
    #[command(after_help = "Examples:\n  \
        agora miniapp review app_… 2 approve\n  \
        agora miniapp review app_… 3 reject --reason 'asks for e-mail without saying why'")]
    Review {
        app: String,
        /// The version's number.
        #[arg(value_name = "VERSION")]
        number: i64,
        /// approve or reject.
        #[arg(value_parser = ["approve", "reject"])]
        decision: String,
        /// Why; required to reject, shown to the partner.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Serve an earlier approved version again.
    Rollback {
        app: String,
        /// An approved version's number.
        #[arg(value_name = "VERSION")]
        number: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn miniapp(command: MiniAppCommand) -> Result<(), Failure> {
    match command {
        MiniAppCommand::Register { file, org, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.as_deref()).await?;
            let answer = upload(&api, &format!("/api/v1/orgs/{org_id}/miniapps"), &file).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Registered {} ({}) at {}, version 1: {}.\nOpenID Connect client_id {}\nclient_secret {}\nKeep the secret now: it is stored only as a hash and never shown again.",
                    answer["app"]["name"].as_str().unwrap_or_default(),
                    answer["app"]["id"].as_str().unwrap_or_default(),
                    answer["app"]["origin"].as_str().unwrap_or_default(),
                    answer["version"]["state"].as_str().unwrap_or_default(),
                    answer["app"]["id"].as_str().unwrap_or_default(),
                    answer["client_secret"].as_str().unwrap_or_default(),
                )),
            }
        }
        MiniAppCommand::Upload { app, file, client } => {
            let api = connect(&client.connect)?;
            let answer = upload(&api, &format!("/api/v1/miniapps/{app}/versions"), &file).await?;
            print_version(client.format, &answer)
        }
        MiniAppCommand::List { org, client } => {
            let api = connect(&client.connect)?;
            let org_id = org_or_acting(&api, org.as_deref()).await?;
            let answer: Value = api
                .get(&format!("/api/v1/orgs/{org_id}/miniapps"), &[])
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&apps_table(
                    answer.as_array().map(Vec::as_slice).unwrap_or_default(),
                )),
            }
        }
        MiniAppCommand::Show { app, client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api.get(&format!("/api/v1/miniapps/{app}"), &[]).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let mut text = apps_table(std::slice::from_ref(&answer));
                    text.push('\n');
                    text.push_str(&versions_table(&answer["versions"]));
                    output::print(&text)
                }
            }
        }
        MiniAppCommand::Review {
            app,
            number: version,
            decision,
            reason,
            client,
        } => {
            let api = connect(&client.connect)?;
            let answer = api
                .post(
                    &format!("/api/v1/miniapps/{app}/versions/{version}/review"),
                    Some(&json!({ "decision": decision, "reason": reason })),
                    None,
                )
                .await?;
            print_version(client.format, &answer)
        }
        MiniAppCommand::Rollback {
            app,
            number: version,
            client,
        } => {
            let api = connect(&client.connect)?;
            let answer = api
                .post(
                    &format!("/api/v1/miniapps/{app}/rollback"),
                    Some(&json!({ "version": version })),
                    None,
                )
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "{} now serves version {}.",
                    answer["name"].as_str().unwrap_or_default(),
                    answer["live_version"]
                )),
            }
        }
    }
}

async fn upload(api: &Api, path: &str, file: &PathBuf) -> Result<Value, Failure> {
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("zip") => "application/zip",
        Some("json") => "application/json",
        _ => {
            return Err(Failure::from(anyhow::anyhow!(
                "{} is neither a bundle (.zip) nor a manifest (.json)",
                file.display()
            )));
        }
    };
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| Failure::from(anyhow::anyhow!("cannot open {}: {e}", file.display())))?;
    api.upload(path, content_type, opened, ProgressBar::hidden())
        .await
}

fn print_version(format: Format, answer: &Value) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => output::print(&versions_table(&Value::Array(vec![answer.clone()]))),
    }
}

fn apps_table(apps: &[Value]) -> String {
    let mut table = Table::new(&[
        "id",
        "slug",
        "name",
        "live",
        "installs",
        "active 30d",
        "payments",
        "received",
    ]);
    for entry in apps {
        let app = &entry["app"];
        let figures = &entry["figures"];
        let received = figures["received"]
            .as_array()
            .map(|amounts| {
                amounts
                    .iter()
                    .filter_map(|amount| amount["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.row(vec![
            app["id"].as_str().unwrap_or_default().to_owned(),
            app["slug"].as_str().unwrap_or_default().to_owned(),
            app["name"].as_str().unwrap_or_default().to_owned(),
            app["live_version"]
                .as_i64()
                .map_or("none".to_owned(), |v| v.to_string()),
            figures["installs"].to_string(),
            figures["active_users_30d"].to_string(),
            figures["payments"].to_string(),
            received,
        ]);
    }
    table.render("No mini-apps.")
}

fn versions_table(versions: &Value) -> String {
    let mut table = Table::new(&["version", "state", "live", "reason", "bundle sha-256"]);
    for version in versions.as_array().map(Vec::as_slice).unwrap_or_default() {
        table.row(vec![
            version["version"].to_string(),
            version["state"].as_str().unwrap_or_default().to_owned(),
            if version["live"] == true { "yes" } else { "" }.to_owned(),
            version["review_reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            version["bundle_sha256"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(16)
                .collect(),
        ]);
    }
    table.render("No versions.")
}
