//! `agora ledger`: the double-entry ledger's raw door for operators: create accounts, post
//! transfers, read balances now or as of an instant, show a transfer, verify the hash chain.

use std::io::Read;
use std::path::PathBuf;

use agora_domain::ledger::{AccountId, BalanceLimit, Currency, TransferId};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};

use super::output::{self, Format, Table};
use super::{ClientArgs, connect, typed};
use crate::{Failure, exit};

/// The ledger: accounts, transfers, balances as of any instant, and its hash chain (operators).
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Create an account (retrying with the same --id creates nothing twice).
    #[command(
        after_help = "Example:\n  agora ledger create-account --currency EUR --code 7 --limit debits-must-not-exceed-credits"
    )]
    CreateAccount(CreateAccountArgs),
    /// Show an account's balances, now or as of an instant.
    #[command(
        after_help = "Examples:\n  agora ledger account acc_0196…\n  agora ledger account acc_0196… --as-of 2026-11-23T09:00:00Z"
    )]
    Account(AccountArgs),
    /// Move money from one account to another, or post the transfers of a JSON file.
    ///
    /// Every transfer carries an id chosen before sending: a retry with the same id answers
    /// `exists` and moves nothing. Without --id a fresh one is printed, so that you can retry.
    #[command(
        after_help = "Examples:\n  agora ledger transfer --debit acc_… --credit acc_… --amount 1250 --currency EUR --code 1\n  agora ledger transfer --file transfers.json      (a JSON array, as POST /api/v1/ledger/transfers takes)"
    )]
    Transfer(TransferArgs),
    /// Show one transfer as the ledger applied it, with both balances right after.
    ShowTransfer(ShowTransferArgs),
    /// Re-hash every batch of the ledger and check each link; exits with 8 if it was tampered with.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LimitArg {
    None,
    DebitsMustNotExceedCredits,
    CreditsMustNotExceedDebits,
}

impl From<LimitArg> for BalanceLimit {
    fn from(limit: LimitArg) -> Self {
        match limit {
            LimitArg::None => BalanceLimit::None,
            LimitArg::DebitsMustNotExceedCredits => BalanceLimit::DebitsMustNotExceedCredits,
            LimitArg::CreditsMustNotExceedDebits => BalanceLimit::CreditsMustNotExceedDebits,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateAccountArgs {
    /// ISO 4217 currency (EUR, USD, JPY…) or PTS for points.
    #[arg(long)]
    pub currency: Currency,
    /// The account's kind in your chart of accounts, 0 to 65535.
    #[arg(long)]
    pub code: u16,
    /// What the account refuses.
    #[arg(long, value_enum, default_value_t = LimitArg::None)]
    pub limit: LimitArg,
    /// The account's id (acc_…); default: a fresh one.
    #[arg(long)]
    pub id: Option<AccountId>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The account's id (acc_…).
    pub account: AccountId,
    /// An RFC 3339 instant: the balances right after the last transfer at or before it.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The account debited.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub debit: Option<AccountId>,
    /// The account credited.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub credit: Option<AccountId>,
    /// The amount in minor units (1250 is 12.50 EUR).
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub amount: Option<i64>,
    /// The currency of both accounts.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub currency: Option<Currency>,
    /// Why the money moves, in your chart (0 to 65535).
    #[arg(long, default_value_t = 0, conflicts_with = "file")]
    pub code: u16,
    /// The transfer's id (trf_…); default: a fresh one, printed so that you can retry with it.
    #[arg(long, conflicts_with = "file")]
    pub id: Option<TransferId>,
    /// Reserve the amount (two-phase) instead of moving it; it expires after this many seconds (0: never).
    #[arg(long, value_name = "SECONDS", conflicts_with = "file")]
    pub pending: Option<u32>,
    /// Post the transfers of this JSON file (an array of transfers), or of standard input with `-`.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ShowTransferArgs {
    /// The transfer's id (trf_…).
    pub transfer: TransferId,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Deserialize)]
struct AccountView {
    id: AccountId,
    currency: Currency,
    code: u16,
    limit: BalanceLimit,
    as_of: Option<agora_domain::Timestamp>,
    balances: agora_domain::ledger::Balances,
    formatted: String,
}

#[derive(Debug, Deserialize)]
struct Outcome {
    id: String,
    result: Value,
    message: String,
}

#[derive(Debug, Deserialize)]
struct VerifyReport {
    intact: bool,
    batch: i64,
    problem: Option<String>,
}

pub async fn ledger(command: LedgerCommand) -> Result<(), Failure> {
    match command {
        LedgerCommand::CreateAccount(args) => {
            let api = connect(&args.client.connect)?;
            let mut account = json!({
                "currency": args.currency,
                "code": args.code,
                "limit": BalanceLimit::from(args.limit),
            });
            if let Some(id) = args.id {
                account["id"] = json!(id);
            }
            let answer = api
                .post("/api/v1/ledger/accounts", Some(&json!([account])), None)
                .await?;
            print_outcomes(args.client.format, &answer)
        }
        LedgerCommand::Account(args) => {
            let api = connect(&args.client.connect)?;
            let path = format!("/api/v1/ledger/accounts/{}", args.account);
            let query: Vec<(&str, &str)> = args
                .as_of
                .as_deref()
                .map(|at| ("as_of", at))
                .into_iter()
                .collect();
            let answer: Value = api.get(&path, &query).await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let view: AccountView = typed(&answer)?;
                    let mut table = Table::new(&[
                        "id",
                        "currency",
                        "code",
                        "limit",
                        "as of",
                        "debits pending",
                        "debits posted",
                        "credits pending",
                        "credits posted",
                        "balance",
                    ]);
                    table.row(vec![
                        view.id.to_string(),
                        view.currency.to_string(),
                        view.code.to_string(),
                        json!(view.limit).as_str().unwrap_or_default().to_owned(),
                        view.as_of.map_or_else(|| "now".to_owned(), output::time),
                        view.balances.debits_pending.to_string(),
                        view.balances.debits_posted.to_string(),
                        view.balances.credits_pending.to_string(),
                        view.balances.credits_posted.to_string(),
                        view.formatted,
                    ]);
                    output::print(&table.render(""))
                }
            }
        }
        LedgerCommand::Transfer(args) => {
            let api = connect(&args.client.connect)?;
            let body = match &args.file {
                Some(path) => read_transfers(path)?,
                None => {
                    let id = args.id.unwrap_or_default();
                    let kind = match args.pending {
                        Some(timeout_seconds) => {
                            json!({ "kind": "pending", "timeout_seconds": timeout_seconds })
                        }
                        None => json!({ "kind": "single" }),
                    };
                    json!([{
                        "id": id,
                        "debit_account_id": args.debit,
                        "credit_account_id": args.credit,
                        "amount": args.amount,
                        "currency": args.currency,
                        "code": args.code,
                        "kind": kind,
                        "linked": false,
                    }])
                }
            };
            let answer = api
                .post("/api/v1/ledger/transfers", Some(&body), None)
                .await?;
            print_outcomes(args.client.format, &answer)?;
            let outcomes: Vec<Outcome> = typed(&answer)?;
            let refused = outcomes
                .iter()
                .filter(|outcome| !matches!(outcome.result.as_str(), Some("created" | "exists")));
            if refused.count() > 0 {
                return Err(Failure {
                    code: exit::CONFLICT,
                    error: anyhow::anyhow!(
                        "some transfers were refused: nothing of a refused transfer (or of its linked chain) moved"
                    ),
                });
            }
            Ok(())
        }
        LedgerCommand::ShowTransfer(args) => {
            let api = connect(&args.client.connect)?;
            let answer: Value = api
                .get(&format!("/api/v1/ledger/transfers/{}", args.transfer), &[])
                .await?;
            // A transfer record nests the transfer and two sets of balances: JSON reads best.
            output::print_json(&answer)
        }
        LedgerCommand::Verify(args) => {
            let api = connect(&args.client.connect)?;
            let answer: Value = api.get("/api/v1/ledger/verify", &[]).await?;
            let report: VerifyReport = typed(&answer)?;
            match args.client.format {
                Format::Json => output::print_json(&answer)?,
                Format::Table if report.intact => output::print(&format!(
                    "The ledger's hash chain is intact: {} batches re-hashed and linked.\n",
                    report.batch
                ))?,
                Format::Table => {}
            }
            if !report.intact {
                return Err(Failure {
                    code: exit::TAMPERED,
                    error: anyhow::anyhow!(
                        "the ledger was tampered with at batch {}: {}",
                        report.batch,
                        report.problem.unwrap_or_default()
                    ),
                });
            }
            Ok(())
        }
    }
}

fn read_transfers(path: &std::path::Path) -> Result<Value, Failure> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read transfers from standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let value: Value = serde_json::from_str(&text).map_err(|error| Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!(
            "{} is not JSON ({error}): expected an array of transfers",
            path.display()
        ),
    })?;
    if !value.is_array() {
        return Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!("{} must hold a JSON array of transfers", path.display()),
        });
    }
    Ok(value)
}

fn print_outcomes(format: Format, answer: &Value) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => {
            let outcomes: Vec<Outcome> = typed(answer)?;
            let mut table = Table::new(&["id", "result", "meaning"]);
            for outcome in outcomes {
                let result = match &outcome.result {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                table.row(vec![outcome.id, result, outcome.message]);
            }
            output::print(&table.render("Nothing was sent."))
        }
    }
}
