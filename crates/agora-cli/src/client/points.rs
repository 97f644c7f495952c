//! `agora points`: the operator's accrual rules, grants by a funder, a customer's balance,
//! redemptions at a partner, and expiry into breakage.

use agora_domain::UserId;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{self, Format, Table};
use super::{ClientArgs, IdempotencyArgs, connect, org_or_acting, resolve_org};
use crate::Failure;

/// Points: rules, grants, balances, redemptions and expiry.
#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// List the accrual rules.
    #[command(after_help = "Example:\n  agora points rules")]
    Rules(RulesArgs),
    /// Set an accrual rule (operators): points for an action, or per major unit spent.
    ///
    /// A rule is funded by the operator, or by the partner named with --funder. A per-action
    /// rule is the only one of its funder for its action; pass --id to replace a rule.
    #[command(
        after_help = "Examples:\n  agora points set-rule --action idea_shipped --points 100 --expiry-days 365\n  agora points set-rule --action review_written --points 30 --funder Bakery --expiry-days 90\n  agora points set-rule --per-major-unit 1 --funder Bakery --expiry-days 365"
    )]
    SetRule(SetRuleArgs),
    /// Grant a customer the points a rule of your organisation gives for an action.
    ///
    /// A retry with the same --reference (or --idempotency-key) grants nothing twice.
    #[command(
        after_help = "Example:\n  agora points grant --customer usr_0196… --action idea_shipped --reference idea-42"
    )]
    Grant(GrantArgs),
    /// Show a customer's points: liability, spendable now, soonest expiry and lots.
    #[command(after_help = "Example:\n  agora points balance usr_0196…")]
    Balance(BalanceArgs),
    /// Spend a customer's points at a partner, soonest-expiring lots first.
    #[command(
        after_help = "Example:\n  agora points redeem usr_0196… --points 40 --at Books --reference receipt-1"
    )]
    Redeem(RedeemArgs),
    /// Move the remainders of lots past their expiry to breakage (operators; safe to repeat).
    #[command(after_help = "Example:\n  agora points expire")]
    Expire(ExpireArgs),
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct SetRuleArgs {
    /// The action that earns points (a per-action rule).
    #[arg(long, conflicts_with = "per_major_unit", requires = "points")]
    pub action: Option<String>,
    /// Points per grant of the action.
    #[arg(long)]
    pub points: Option<i64>,
    /// Points per major unit (euro, not cent) spent (a per-amount rule).
    #[arg(long, required_unless_present = "action")]
    pub per_major_unit: Option<i64>,
    /// The partner that pays for the points, by id or name; default: the operator.
    #[arg(long)]
    pub funder: Option<String>,
    /// Days from accrual to expiry, 1 to 3650.
    #[arg(long)]
    pub expiry_days: u32,
    /// The rule to replace (ptr_…).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The customer (usr_…).
    #[arg(long)]
    pub customer: UserId,
    /// The action a rule of the funder gives points for.
    #[arg(long)]
    pub action: String,
    /// The funder, by id or name; default: the organisation the token acts for.
    #[arg(long)]
    pub org: Option<String>,
    /// What the grant is for; a retry with the same reference grants nothing twice.
    #[arg(long)]
    pub reference: Option<String>,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The customer (usr_…).
    pub customer: UserId,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RedeemArgs {
    /// The customer (usr_…).
    pub customer: UserId,
    /// How many points to spend.
    #[arg(long)]
    pub points: i64,
    /// The partner where they are spent, by id or name.
    #[arg(long)]
    pub at: String,
    /// What the redemption pays for; a retry with the same reference redeems nothing twice.
    #[arg(long)]
    pub reference: Option<String>,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
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

fn print_rules(format: Format, answer: &Value) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => {
            let mut table = Table::new(&[
                "id",
                "earning",
                "action",
                "points",
                "per major unit",
                "funder",
                "expiry days",
            ]);
            let rules = answer
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![answer.clone()]);
            for rule in &rules {
                table.row(vec![
                    text(&rule["id"]),
                    text(&rule["earning"]),
                    text(&rule["action"]),
                    text(&rule["points"]),
                    text(&rule["points_per_major_unit"]),
                    match &rule["funder"] {
                        Value::Null => "operator".to_owned(),
                        funder => text(funder),
                    },
                    text(&rule["expiry_days"]),
                ]);
            }
            output::print(&table.render("No points rules."))
        }
    }
}

pub async fn points(command: PointsCommand) -> Result<(), Failure> {
    match command {
        PointsCommand::Rules(args) => {
            let api = connect(&args.client.connect)?;
            let answer: Value = api.get("/api/v1/points/rules", &[]).await?;
            print_rules(args.client.format, &answer)
        }
        PointsCommand::SetRule(args) => {
            let api = connect(&args.client.connect)?;
            let funder = match &args.funder {
                Some(funder) => Some(resolve_org(&api, funder).await?),
                None => None,
            };
            let body = match &args.action {
                Some(action) => {
                    json!({ "earning": "per_action", "action": action, "points": args.points,
                                        "funder": funder, "expiry_days": args.expiry_days, "id": args.id })
                }
                None => {
                    json!({ "earning": "per_amount_spent", "points_per_major_unit": args.per_major_unit,
                                "funder": funder, "expiry_days": args.expiry_days, "id": args.id })
                }
            };
            let answer = api.post("/api/v1/points/rules", Some(&body), None).await?;
            print_rules(args.client.format, &answer)
        }
        PointsCommand::Grant(args) => {
            let api = connect(&args.client.connect)?;
            let funder = org_or_acting(&api, args.org.as_deref()).await?;
            let key = args.idempotency.key();
            let body = json!({ "customer": args.customer, "action": args.action, "reference": args.reference });
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{funder}/points/grants"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| super::with_retry_hint(failure, &key))?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Granted {} points to {} (lot {}, expires {}, reference {}).\n",
                    text(&answer["lot"]["points"]),
                    text(&answer["lot"]["customer"]),
                    text(&answer["lot"]["id"]),
                    text(&answer["lot"]["expires_at"]),
                    text(&answer["reference"]),
                )),
            }
        }
        PointsCommand::Balance(args) => {
            let api = connect(&args.client.connect)?;
            let answer: Value = api
                .get(&format!("/api/v1/customers/{}/points", args.customer), &[])
                .await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let mut table =
                        Table::new(&["lot", "funder", "points", "remaining", "expires at"]);
                    for lot in answer["lots"].as_array().into_iter().flatten() {
                        table.row(vec![
                            text(&lot["id"]),
                            match &lot["funder"] {
                                Value::Null => "operator".to_owned(),
                                funder => text(funder),
                            },
                            text(&lot["points"]),
                            text(&lot["remaining"]),
                            text(&lot["expires_at"]),
                        ]);
                    }
                    output::print(&format!(
                        "Liability {} points, spendable {}, soonest expiry {}.\n{}",
                        text(&answer["liability"]),
                        text(&answer["spendable"]),
                        text(&answer["soonest_expiry"]),
                        table.render("No lots with points left.")
                    ))
                }
            }
        }
        PointsCommand::Redeem(args) => {
            let api = connect(&args.client.connect)?;
            let partner = resolve_org(&api, &args.at).await?;
            let key = args.idempotency.key();
            let body = json!({ "points": args.points, "at_partner": partner, "reference": args.reference });
            let answer = api
                .post(
                    &format!("/api/v1/customers/{}/points/redemptions", args.customer),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| super::with_retry_hint(failure, &key))?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let mut table = Table::new(&["lot", "funder", "points"]);
                    for allocation in answer["allocations"].as_array().into_iter().flatten() {
                        table.row(vec![
                            text(&allocation["lot"]),
                            match &allocation["funder"] {
                                Value::Null => "operator".to_owned(),
                                funder => text(funder),
                            },
                            text(&allocation["points"]),
                        ]);
                    }
                    let mut owed = Table::new(&["debtor", "creditor", "amount", "currency"]);
                    for obligation in answer["obligations"].as_array().into_iter().flatten() {
                        owed.row(vec![
                            text(&obligation["debtor"]),
                            text(&obligation["creditor"]),
                            text(&obligation["amount"]),
                            text(&obligation["currency"]),
                        ]);
                    }
                    output::print(&format!(
                        "Redeemed {} points ({}).\n{}{}",
                        text(&answer["points"]),
                        text(&answer["id"]),
                        table.render(""),
                        owed.render("No obligations: the partner funded these points.")
                    ))
                }
            }
        }
        PointsCommand::Expire(args) => {
            let api = connect(&args.client.connect)?;
            let answer = api.post("/api/v1/points/expire", None, None).await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Expired {} lots: {} points went to breakage.\n",
                    text(&answer["lots_expired"]),
                    text(&answer["points_expired"]),
                )),
            }
        }
    }
}
