//! `agora settlement`: record what your organisation owes another partner, set net debit caps,
//! close the settlement window, read its report, and list windows.

use agora_domain::ledger::Currency;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{self, Format, Table};
use super::{ClientArgs, ListArgs, connect, org_or_acting, resolve_org};
use crate::Failure;

/// Partner-to-partner settlement: obligations, net debit caps, windows and reports.
#[derive(Debug, Subcommand)]
pub enum SettlementCommand {
    /// Record that your organisation owes another partner, in the open window.
    ///
    /// The reference (an invoice number) is unique per debtor: recording it again answers the
    /// first obligation. Refused beyond your net debit cap.
    #[command(
        after_help = "Example:\n  agora settlement record --to Books --amount 1250 --currency EUR --reference INV-2026-001"
    )]
    Record(RecordArgs),
    /// Set a partner's net debit cap in a currency (operators).
    #[command(after_help = "Example:\n  agora settlement cap Bakery --currency EUR --cap 100000")]
    Cap(CapArgs),
    /// Close the open window (operators): positions settle against the house and sum to zero.
    #[command(
        after_help = "Examples:\n  agora settlement close\n  agora settlement close --window stw_0196…   (a retry answers the same report)"
    )]
    Close(CloseArgs),
    /// Show a window's report: yours only, unless you are the operator.
    #[command(after_help = "Example:\n  agora settlement report stw_0196…")]
    Report(ReportArgs),
    /// List the settlement windows, oldest first.
    #[command(after_help = "Example:\n  agora settlement windows")]
    Windows(WindowsArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The partner owed, by id or name.
    #[arg(long)]
    pub to: String,
    /// In minor units (1250 is 12.50 EUR).
    #[arg(long)]
    pub amount: i64,
    #[arg(long)]
    pub currency: Currency,
    /// What it is for; unique per debtor.
    #[arg(long)]
    pub reference: String,
    /// The debtor, by id or name; default: the organisation the token acts for.
    #[arg(long)]
    pub org: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct CapArgs {
    /// The partner, by id or name.
    pub partner: String,
    #[arg(long)]
    pub currency: Currency,
    /// In minor units, 0 or more.
    #[arg(long)]
    pub cap: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The window to close (stw_…); default: whichever is open.
    #[arg(long)]
    pub window: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window (stw_…).
    pub window: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct WindowsArgs {
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn print_report(format: Format, report: &Value) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(report),
        Format::Table => {
            let mut table = Table::new(&["partner", "currency", "net"]);
            for position in report["positions"].as_array().into_iter().flatten() {
                let net = position["net"].as_i64().unwrap_or_default();
                let formatted = match position["currency"].as_str().map(Currency::parse) {
                    Some(Ok(currency)) => currency.format(net),
                    _ => net.to_string(),
                };
                table.row(vec![
                    text(&position["partner"]),
                    text(&position["currency"]),
                    formatted,
                ]);
            }
            output::print(&format!(
                "Window {} ({}), {} obligations, opened {}, closed {}.\n{}",
                text(&report["window"]),
                text(&report["status"]),
                text(&report["obligations"]),
                text(&report["opened_at"]),
                text(&report["closed_at"]),
                table.render("No positions.")
            ))
        }
    }
}

pub async fn settlement(command: SettlementCommand) -> Result<(), Failure> {
    match command {
        SettlementCommand::Record(args) => {
            let api = connect(&args.client.connect)?;
            let debtor = org_or_acting(&api, args.org.as_deref()).await?;
            let creditor = resolve_org(&api, &args.to).await?;
            let body = json!({ "creditor": creditor, "amount": args.amount,
                               "currency": args.currency, "reference": args.reference });
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{debtor}/obligations"),
                    Some(&body),
                    None,
                )
                .await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Recorded {} in window {}: {} owes {} {}.\n",
                    text(&answer["id"]),
                    text(&answer["window"]),
                    text(&answer["debtor"]),
                    text(&answer["creditor"]),
                    args.currency.format(args.amount),
                )),
            }
        }
        SettlementCommand::Cap(args) => {
            let api = connect(&args.client.connect)?;
            let partner = resolve_org(&api, &args.partner).await?;
            let body = json!({ "currency": args.currency, "cap": args.cap });
            let answer = api
                .put(&format!("/api/v1/orgs/{partner}/net-debit-cap"), &body)
                .await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "{partner} may owe at most {} net per window.\n",
                    args.currency.format(args.cap)
                )),
            }
        }
        SettlementCommand::Close(args) => {
            let api = connect(&args.client.connect)?;
            let window = args.window.as_deref().unwrap_or("current");
            let answer = api
                .post(
                    &format!("/api/v1/settlement/windows/{window}/close"),
                    None,
                    None,
                )
                .await?;
            print_report(args.client.format, &answer)
        }
        SettlementCommand::Report(args) => {
            let api = connect(&args.client.connect)?;
            let answer: Value = api
                .get(&format!("/api/v1/settlement/windows/{}", args.window), &[])
                .await?;
            print_report(args.client.format, &answer)
        }
        SettlementCommand::Windows(args) => {
            let api = connect(&args.client.connect)?;
            let windows: Vec<Value> = api
                .all("/api/v1/settlement/windows", args.list.limit())
                .await?;
            match args.client.format {
                Format::Json => output::print_json(&Value::Array(windows)),
                Format::Table => {
                    let mut table =
                        Table::new(&["id", "status", "opened at", "closed at", "obligations"]);
                    for window in &windows {
                        table.row(vec![
                            text(&window["id"]),
                            text(&window["status"]),
                            text(&window["opened_at"]),
                            text(&window["closed_at"]),
                            text(&window["obligations"]),
                        ]);
                    }
                    output::print(&table.render("No settlement windows yet."))
                }
            }
        }
    }
}
