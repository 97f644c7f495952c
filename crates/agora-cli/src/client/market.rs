//! `agora commission`, `agora seller`, `agora order`, `agora payout`, `agora wallet` and
//! `agora market`: the marketplace's orders and money over the API.
//!
//! Amounts are typed and shown in the currency's notation (`12.50` for 1250 cents of EUR); the
//! API itself speaks in minor units, which `--format json` prints unchanged.

use agora_app::agora_market::commission::{CommissionRule, RuleScope};
use agora_app::agora_market::order::{Order, RefundRecord};
use agora_app::agora_market::payout::{PayoutRecord, PayoutSchedule, SellerSettings, Weekday};
use agora_app::{OrderView, PayoutRun, RevenueView, SellerBalance, WalletView};
use agora_domain::ledger::Currency;
use agora_domain::{Error, ListingId, OrderId, OrderLineId, UserId};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::http::Api;
use super::orgs::{print_list, print_one};
use super::output::{self, Format, Table};
use super::{
    ClientArgs, IdempotencyArgs, ListArgs, connect, org_or_acting, resolve_org, typed,
    with_retry_hint,
};
use crate::Failure;

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// Commission rules: the operator's cut of each sale.
#[derive(Debug, Subcommand)]
pub enum CommissionCommand {
    /// List the commission rules in force (public to everyone signed in).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set a commission rule (the operator). The most specific rule wins: listing, seller and
    /// category, seller, category, default. Lines sold already keep the terms frozen on them.
    #[command(
        after_help = "Examples:\n  agora commission set --rate 5%\n  agora commission set --scope category --category groceries --rate 3.5%\n  agora commission set --scope seller --seller FreshMart --rate 4% --currency EUR --fixed 0.30 --cap 5.00"
    )]
    Set(SetCommissionArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Default,
    Category,
    Seller,
    SellerCategory,
    Listing,
}

#[derive(Debug, Args)]
pub struct SetCommissionArgs {
    /// Which lines the rule covers.
    #[arg(long, value_enum, default_value_t = ScopeArg::Default)]
    pub scope: ScopeArg,
    /// The percentage of each line's gross, up to two decimals: `5%`, `2.5`.
    #[arg(long, value_name = "PERCENT")]
    pub rate: String,
    /// For `category` and `seller-category`: the listing category.
    #[arg(long)]
    pub category: Option<String>,
    /// For `seller` and `seller-category`: the seller, by id or name.
    #[arg(long, value_name = "ORG")]
    pub seller: Option<String>,
    /// For `listing`: the listing (lst_…).
    #[arg(long)]
    pub listing: Option<ListingId>,
    /// Only lines in this currency; needed with --fixed, --floor or --cap.
    #[arg(long)]
    pub currency: Option<Currency>,
    /// An amount added per line, such as `0.30`.
    #[arg(long, value_name = "AMOUNT", requires = "currency")]
    pub fixed: Option<String>,
    /// The least commission per line.
    #[arg(long, value_name = "AMOUNT", requires = "currency")]
    pub floor: Option<String>,
    /// The most commission per line.
    #[arg(long, value_name = "AMOUNT", requires = "currency")]
    pub cap: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A seller's side of the marketplace: settings, balance and orders.
#[derive(Debug, Subcommand)]
pub enum SellerCommand {
    /// Show a seller's hold period, payout schedule, minimum and refund policy.
    #[command(after_help = "Example:\n  agora seller settings --org FreshMart")]
    Settings {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a seller's settings (the operator); options not given keep their current value.
    #[command(
        after_help = "Examples:\n  agora seller set-settings --org FreshMart --hold-days 14\n  agora seller set-settings --org FreshMart --schedule weekly --weekday friday --minimum 2500\n  agora seller set-settings --org FreshMart --refund-policy keep-commission"
    )]
    SetSettings(SetSettingsArgs),
    /// Show a seller's pending, available and reserved money and what it was paid out.
    #[command(after_help = "Example:\n  agora seller balance --org FreshMart --currency EUR")]
    Balance {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        currency: CurrencyArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the orders a seller sells on.
    #[command(
        after_help = "Examples:\n  agora seller orders\n  agora seller orders --org FreshMart --format json | jq -r '.[] | select(.status == \"paid\") | .id'"
    )]
    Orders {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    Daily,
    Weekly,
    Manual,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RefundPolicyArg {
    Proportional,
    KeepCommission,
}

#[derive(Debug, Args)]
pub struct SetSettingsArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// Days a fulfilled sale's money stays pending before it can be paid out (0 to 365).
    #[arg(long)]
    pub hold_days: Option<u32>,
    /// When payouts run.
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// For a weekly schedule: the day (monday … sunday).
    #[arg(long, value_parser = parse_weekday)]
    pub weekday: Option<Weekday>,
    /// The least a payout may be, in minor units of its currency (1000 is 10.00 EUR).
    #[arg(long, value_name = "MINOR_UNITS")]
    pub minimum: Option<i64>,
    /// How a refund after fulfilment treats the commission.
    #[arg(long, value_enum)]
    pub refund_policy: Option<RefundPolicyArg>,
    /// How far the partner's settlement position may go below zero, in minor units.
    #[arg(long, value_name = "MINOR_UNITS")]
    pub net_debit_cap: Option<i64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Orders: show, fulfil, refund, cancel.
#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Show an order: its lines with the commission frozen at sale, and each seller's part.
    Show {
        /// The order (ord_…).
        order: OrderId,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fulfil your organisation's part of a paid order (its owners and admins): the money goes to
    /// the seller's pending balance and the hold starts.
    #[command(
        after_help = "Examples:\n  agora order fulfil ord_0196…\n  agora order fulfil ord_0196… --seller FreshMart      (the operator, for a seller)"
    )]
    Fulfil {
        /// The order (ord_…).
        order: OrderId,
        /// The seller whose part to fulfil, by id or name; default: the organisation you act for.
        #[arg(long, value_name = "ORG")]
        seller: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Refund an amount of one line; after fulfilment the commission is reversed as the line's
    /// refund policy says and the rest comes from the seller's balance.
    #[command(
        after_help = "Example:\n  agora order refund ord_0196… --line oln_0196… --amount 10.00 --reason \"one bottle broken\""
    )]
    Refund {
        /// The order (ord_…).
        order: OrderId,
        /// The line (oln_…), as `agora order show` lists it.
        #[arg(long)]
        line: OrderLineId,
        /// How much, in the order's currency: `10.00`.
        #[arg(long)]
        amount: String,
        /// Why, for the customer and the audit log.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel an order nothing of which was fulfilled; a paid one is refunded whole.
    Cancel {
        /// The order (ord_…).
        order: OrderId,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Payouts: a seller's money sent to its bank.
#[derive(Debug, Subcommand)]
pub enum PayoutCommand {
    /// List a seller's payouts.
    List {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pay out a seller's available money now (its owners and admins, or the operator).
    #[command(
        after_help = "Examples:\n  agora payout request --currency EUR --reference \"FreshMart week 47\"\n  agora payout request --org FreshMart --currency EUR --amount 50.00 --reference \"advance\""
    )]
    Request {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        currency: CurrencyArg,
        /// How much; default: everything available.
        #[arg(long)]
        amount: Option<String>,
        /// What the seller will see on the bank transfer.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pay every seller whose schedule says a payout is due (the operator).
    #[command(after_help = "Example:\n  agora payout run --currency EUR")]
    Run {
        #[command(flatten)]
        currency: CurrencyArg,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Customers' wallets.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Show a customer's wallet balance.
    #[command(after_help = "Example:\n  agora wallet show usr_0196… --currency EUR")]
    Show {
        /// The customer (usr_…).
        customer: UserId,
        #[command(flatten)]
        currency: CurrencyArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add money to a customer's wallet (the operator's cash desk, or a sandbox card).
    #[command(
        after_help = "Examples:\n  agora wallet top-up usr_0196… --amount 50.00 --currency EUR\n  agora wallet top-up usr_0196… --amount 20 --currency EUR --card tok_visa"
    )]
    TopUp {
        /// The customer (usr_…).
        customer: UserId,
        /// How much: `50.00`.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        currency: CurrencyArg,
        /// Charge this sandbox card token instead of taking cash.
        #[arg(long, value_name = "TOKEN")]
        card: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The operator's marketplace duties.
#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// Release every sale whose hold has ended: pending money becomes available to pay out.
    ReleaseDue {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the operator's commission revenue: earned minus reversed by refunds.
    #[command(after_help = "Example:\n  agora market revenue --currency EUR")]
    Revenue {
        #[command(flatten)]
        currency: CurrencyArg,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct OrgArg {
    /// The seller, by id (org_…) or name; default: the organisation you act for.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CurrencyArg {
    /// An ISO 4217 currency: EUR, USD, JPY…
    #[arg(long)]
    pub currency: Currency,
}

fn parse_weekday(text: &str) -> Result<Weekday, String> {
    serde_json::from_value(json!(text.to_lowercase()))
        .map_err(|_| format!("`{text}` is not a day of the week: monday … sunday"))
}

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

/// Reads a decimal such as `12.5` as an integer of `exponent` decimals (`1250` for 2).
fn parse_decimal(text: &str, exponent: u8, field: &str) -> Result<i64, Error> {
    let invalid = || {
        Error::invalid(
            field,
            format!(
                "`{text}` is not an amount with at most {exponent} decimals, such as {}",
                if exponent == 0 { "12" } else { "12.50" }
            ),
        )
    };
    let (whole, fraction) = match text.trim().split_once('.') {
        Some((_, "")) => return Err(invalid()),
        Some(split) => split,
        None => (text.trim(), ""),
    };
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > usize::from(exponent)
    {
        return Err(invalid());
    }
    let scale = 10i64.pow(u32::from(exponent));
    let padded = format!("{fraction:0<width$}", width = usize::from(exponent));
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| invalid())?
    };
    whole
        .checked_mul(scale)
        .and_then(|units| units.checked_add(fraction))
        .ok_or_else(invalid)
}

/// An amount in `currency`'s notation, in minor units.
pub(super) fn parse_amount(text: &str, currency: Currency, field: &str) -> Result<i64, Error> {
    parse_decimal(text, currency.exponent(), field)
}

/// A percentage such as `5%` or `2.5`, in basis points.
fn parse_rate(text: &str) -> Result<u32, Error> {
    let bps = parse_decimal(text.trim().trim_end_matches('%'), 2, "rate")?;
    u32::try_from(bps).map_err(|_| Error::invalid("rate", "is at most 100%"))
}

fn percent(bps: u32) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

pub async fn commission(command: CommissionCommand) -> Result<(), Failure> {
    match command {
        CommissionCommand::List { client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api.get("/api/v1/commission-rules", &[]).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&rules_table(&typed::<Vec<_>>(&answer)?)),
            }
        }
        CommissionCommand::Set(args) => {
            let api = connect(&args.client.connect)?;
            let scope = rule_scope(&api, &args).await?;
            let minor = |amount: &Option<String>, field| -> Result<Option<i64>, Failure> {
                match (amount, args.currency) {
                    (Some(text), Some(currency)) => Ok(Some(parse_amount(text, currency, field)?)),
                    _ => Ok(None),
                }
            };
            let body = json!({
                "scope": scope,
                "currency": args.currency,
                "rate_bps": parse_rate(&args.rate)?,
                "fixed": minor(&args.fixed, "fixed")?.unwrap_or(0),
                "floor": minor(&args.floor, "floor")?.unwrap_or(0),
                "cap": minor(&args.cap, "cap")?,
            });
            let answer = api
                .post("/api/v1/commission-rules", Some(&body), None)
                .await?;
            match args.client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&rules_table(&[typed(&answer)?])),
            }
        }
    }
}

async fn rule_scope(api: &Api, args: &SetCommissionArgs) -> Result<RuleScope, Failure> {
    let needed = |what: &str| -> Failure {
        Error::invalid(what, format!("is needed with --scope {:?}", args.scope)).into()
    };
    let category = || args.category.clone().ok_or_else(|| needed("category"));
    let seller = async {
        match &args.seller {
            Some(seller) => resolve_org(api, seller).await,
            None => Err(needed("seller")),
        }
    };
    Ok(match args.scope {
        ScopeArg::Default => RuleScope::Default,
        ScopeArg::Category => RuleScope::Category {
            category: category()?,
        },
        ScopeArg::Seller => RuleScope::Seller {
            seller: seller.await?,
        },
        ScopeArg::SellerCategory => RuleScope::SellerCategory {
            category: category()?,
            seller: seller.await?,
        },
        ScopeArg::Listing => RuleScope::Listing {
            listing: args.listing.ok_or_else(|| needed("listing"))?,
        },
    })
}

fn rules_table(rules: &[CommissionRule]) -> String {
    let mut table = Table::new(&["id", "scope", "currency", "rate", "fixed", "floor", "cap"]);
    for rule in rules {
        let scope = match &rule.scope {
            RuleScope::Default => "default".to_owned(),
            RuleScope::Category { category } => format!("category {category}"),
            RuleScope::Seller { seller } => format!("seller {seller}"),
            RuleScope::SellerCategory { seller, category } => {
                format!("seller {seller}, category {category}")
            }
            RuleScope::Listing { listing } => format!("listing {listing}"),
        };
        let money = |amount: i64| match rule.currency {
            Some(currency) => currency.format(amount),
            None => amount.to_string(),
        };
        table.row(vec![
            rule.id.to_string(),
            scope,
            rule.currency
                .map_or_else(|| "any".to_owned(), |c| c.to_string()),
            percent(rule.terms.rate_bps),
            money(rule.terms.fixed),
            money(rule.terms.floor),
            rule.terms.cap.map_or_else(|| "-".to_owned(), money),
        ]);
    }
    table.render("No commission rules: sales carry no commission.")
}

pub async fn seller(command: SellerCommand) -> Result<(), Failure> {
    match command {
        SellerCommand::Settings { org, client } => {
            let api = connect(&client.connect)?;
            let seller = org_or_acting(&api, org.org.as_deref()).await?;
            let answer: Value = api
                .get(&format!("/api/v1/orgs/{seller}/seller-settings"), &[])
                .await?;
            print_one(client.format, &answer, settings_table)
        }
        SellerCommand::SetSettings(args) => {
            let api = connect(&args.client.connect)?;
            let seller = org_or_acting(&api, args.org.org.as_deref()).await?;
            let path = format!("/api/v1/orgs/{seller}/seller-settings");
            let current: Value = api.get(&path, &[]).await?;
            let mut settings: SellerSettings = typed(&current)?;
            apply_settings(&mut settings, &args)?;
            let answer = api.put(&path, &json!(settings)).await?;
            print_one(args.client.format, &answer, settings_table)
        }
        SellerCommand::Balance {
            org,
            currency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let seller = org_or_acting(&api, org.org.as_deref()).await?;
            let currency = currency.currency.to_string();
            let answer: Value = api
                .get(
                    &format!("/api/v1/orgs/{seller}/balance"),
                    &[("currency", &currency)],
                )
                .await?;
            print_one(client.format, &answer, balance_table)
        }
        SellerCommand::Orders { org, list, client } => {
            let api = connect(&client.connect)?;
            let seller = org_or_acting(&api, org.org.as_deref()).await?;
            print_list(
                &api,
                &format!("/api/v1/orgs/{seller}/orders"),
                &list,
                client.format,
                orders_table,
            )
            .await
        }
    }
}

fn apply_settings(settings: &mut SellerSettings, args: &SetSettingsArgs) -> Result<(), Failure> {
    if let Some(hold_days) = args.hold_days {
        settings.hold_days = hold_days;
    }
    match (args.schedule, args.weekday) {
        (Some(ScheduleArg::Daily), None) => settings.schedule = PayoutSchedule::Daily,
        (Some(ScheduleArg::Manual), None) => settings.schedule = PayoutSchedule::Manual,
        (Some(ScheduleArg::Weekly), weekday) => {
            settings.schedule = PayoutSchedule::Weekly {
                weekday: weekday.unwrap_or(Weekday::Monday),
            }
        }
        (None, Some(weekday)) => settings.schedule = PayoutSchedule::Weekly { weekday },
        (Some(_), Some(_)) => {
            return Err(Error::invalid("weekday", "goes only with --schedule weekly").into());
        }
        (None, None) => {}
    }
    if let Some(minimum) = args.minimum {
        settings.minimum = minimum;
    }
    if let Some(policy) = args.refund_policy {
        settings.refund_policy = match policy {
            RefundPolicyArg::Proportional => {
                agora_app::agora_market::order::RefundPolicy::Proportional
            }
            RefundPolicyArg::KeepCommission => {
                agora_app::agora_market::order::RefundPolicy::KeepCommission
            }
        };
    }
    if let Some(cap) = args.net_debit_cap {
        settings.net_debit_cap = cap;
    }
    Ok(())
}

fn json_text(value: impl serde::Serialize) -> String {
    match json!(value) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn settings_table(settings: &[SellerSettings]) -> String {
    let mut table = Table::new(&[
        "hold days",
        "schedule",
        "minimum (minor units)",
        "refund policy",
        "net debit cap",
    ]);
    for settings in settings {
        let schedule = match settings.schedule {
            PayoutSchedule::Daily => "daily".to_owned(),
            PayoutSchedule::Weekly { weekday } => format!("weekly on {}", json_text(weekday)),
            PayoutSchedule::Manual => "manual".to_owned(),
        };
        table.row(vec![
            settings.hold_days.to_string(),
            schedule,
            settings.minimum.to_string(),
            json_text(settings.refund_policy),
            settings.net_debit_cap.to_string(),
        ]);
    }
    table.render("")
}

fn balance_table(balances: &[SellerBalance]) -> String {
    let mut table = Table::new(&["seller", "pending", "available", "reserve", "paid out"]);
    for balance in balances {
        let money = |amount| balance.currency.format(amount);
        table.row(vec![
            balance.seller.to_string(),
            money(balance.pending),
            money(balance.available),
            money(balance.reserve),
            money(balance.paid_out),
        ]);
    }
    table.render("")
}

fn orders_table(orders: &[OrderView]) -> String {
    let mut table = Table::new(&["id", "status", "total", "lines", "customer", "placed"]);
    for view in orders {
        let order = &view.order;
        table.row(vec![
            order.id.to_string(),
            json_text(order.status),
            view.total_formatted.clone(),
            order.lines.len().to_string(),
            order.customer.to_string(),
            output::time(order.placed_at),
        ]);
    }
    table.render("No orders.")
}

/// An order in full: a summary, its lines, and its sellers' parts.
fn order_text(order: &Order) -> String {
    let money = |amount| order.currency.format(amount);
    let mut text = format!(
        "Order {} for {}: {}, {} (paid {}, refunded {})\n\n",
        order.id,
        order.customer,
        json_text(order.status),
        money(order.total),
        money(order.paid()),
        money(order.refunded()),
    );
    let mut lines = Table::new(&[
        "line",
        "title",
        "seller",
        "quantity",
        "gross",
        "commission",
        "refunded",
    ]);
    for line in &order.lines {
        lines.row(vec![
            line.id.to_string(),
            line.title.clone(),
            line.seller.to_string(),
            line.quantity.to_string(),
            money(line.gross),
            format!(
                "{} ({})",
                money(line.commission.amount - line.commission_reversed),
                percent(line.commission.terms.rate_bps)
            ),
            money(line.refunded),
        ]);
    }
    text.push_str(&lines.render("No lines."));
    text.push('\n');
    let mut parts = Table::new(&[
        "seller",
        "status",
        "net",
        "commission",
        "hold until",
        "released",
    ]);
    for part in &order.parts {
        parts.row(vec![
            part.seller.to_string(),
            json_text(part.status),
            money(part.net),
            money(part.commission),
            output::optional_time(part.hold_until),
            output::optional_time(part.released_at),
        ]);
    }
    text.push_str(&parts.render("No parts."));
    text
}

fn print_order(format: Format, answer: &Value) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => {
            let view: OrderView = typed(answer)?;
            output::print(&order_text(&view.order))
        }
    }
}

pub async fn order(command: OrderCommand) -> Result<(), Failure> {
    match command {
        OrderCommand::Show { order, client } => {
            let api = connect(&client.connect)?;
            let answer: Value = api.get(&format!("/api/v1/orders/{order}"), &[]).await?;
            print_order(client.format, &answer)
        }
        OrderCommand::Fulfil {
            order,
            seller,
            client,
        } => {
            let api = connect(&client.connect)?;
            let body = match seller {
                Some(seller) => json!({ "seller": resolve_org(&api, &seller).await? }),
                None => json!({}),
            };
            let answer = api
                .post(&format!("/api/v1/orders/{order}/fulfil"), Some(&body), None)
                .await?;
            print_order(client.format, &answer)
        }
        OrderCommand::Refund {
            order,
            line,
            amount,
            reason,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            // The amount is in the order's currency, which the order tells.
            let view: OrderView = api.get(&format!("/api/v1/orders/{order}"), &[]).await?;
            let currency = view.order.currency;
            let body = json!({
                "line_id": line,
                "amount": parse_amount(&amount, currency, "amount")?,
                "reason": reason,
            });
            let key = idempotency.key();
            let answer = api
                .post(
                    &format!("/api/v1/orders/{order}/refunds"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let refund: RefundRecord = typed(&answer)?;
                    let money = |amount| currency.format(amount);
                    output::print(&format!(
                        "Refunded {} of line {} ({}): {} from the seller, {} of commission reversed.\n",
                        money(refund.amount),
                        refund.line,
                        refund.id,
                        money(refund.seller_share),
                        money(refund.commission_reversed),
                    ))
                }
            }
        }
        OrderCommand::Cancel { order, client } => {
            let api = connect(&client.connect)?;
            let answer = api
                .post(&format!("/api/v1/orders/{order}/cancel"), None, None)
                .await?;
            print_order(client.format, &answer)
        }
    }
}

pub async fn payout(command: PayoutCommand) -> Result<(), Failure> {
    match command {
        PayoutCommand::List { org, client } => {
            let api = connect(&client.connect)?;
            let seller = org_or_acting(&api, org.org.as_deref()).await?;
            let answer: Value = api
                .get(&format!("/api/v1/orgs/{seller}/payouts"), &[])
                .await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&payouts_table(&typed::<Vec<_>>(&answer)?)),
            }
        }
        PayoutCommand::Request {
            org,
            currency,
            amount,
            reference,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let seller = org_or_acting(&api, org.org.as_deref()).await?;
            let currency = currency.currency;
            let amount = amount
                .map(|text| parse_amount(&text, currency, "amount"))
                .transpose()?;
            let body = json!({ "currency": currency, "amount": amount, "reference": reference });
            let key = idempotency.key();
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{seller}/payouts"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&payouts_table(&[typed(&answer)?])),
            }
        }
        PayoutCommand::Run { currency, client } => {
            let api = connect(&client.connect)?;
            let body = json!({ "currency": currency.currency });
            let answer = api.post("/api/v1/payouts/run", Some(&body), None).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => {
                    let run: PayoutRun = typed(&answer)?;
                    let mut text = payouts_table(&run.payouts);
                    for refused in &run.refused {
                        text.push_str(&format!("refused: {refused}\n"));
                    }
                    output::print(&text)
                }
            }
        }
    }
}

fn payouts_table(payouts: &[PayoutRecord]) -> String {
    let mut table = Table::new(&["id", "seller", "amount", "reference", "paid"]);
    for payout in payouts {
        table.row(vec![
            payout.id.to_string(),
            payout.seller.to_string(),
            payout.currency.format(payout.amount),
            payout.reference.clone(),
            output::time(payout.paid_at),
        ]);
    }
    table.render("No payouts.")
}

pub async fn wallet(command: WalletCommand) -> Result<(), Failure> {
    match command {
        WalletCommand::Show {
            customer,
            currency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let currency = currency.currency.to_string();
            let answer: Value = api
                .get(
                    &format!("/api/v1/customers/{customer}/wallet"),
                    &[("currency", &currency)],
                )
                .await?;
            print_one(client.format, &answer, wallet_table)
        }
        WalletCommand::TopUp {
            customer,
            amount,
            currency,
            card,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let currency = currency.currency;
            let body = json!({
                "currency": currency,
                "amount": parse_amount(&amount, currency, "amount")?,
                "card_token": card,
            });
            let key = idempotency.key();
            let answer = api
                .post(
                    &format!("/api/v1/customers/{customer}/wallet/top-ups"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            print_one(client.format, &answer, wallet_table)
        }
    }
}

fn wallet_table(wallets: &[WalletView]) -> String {
    let mut table = Table::new(&["customer", "balance"]);
    for wallet in wallets {
        table.row(vec![wallet.customer.to_string(), wallet.formatted.clone()]);
    }
    table.render("")
}

pub async fn market(command: MarketCommand) -> Result<(), Failure> {
    match command {
        MarketCommand::ReleaseDue { client } => {
            let api = connect(&client.connect)?;
            let answer = api.post("/api/v1/market/release-due", None, None).await?;
            match client.format {
                Format::Json => output::print_json(&answer),
                Format::Table => output::print(&format!(
                    "Released {} sellers' parts whose hold had ended.\n",
                    answer["released"]
                )),
            }
        }
        MarketCommand::Revenue { currency, client } => {
            let api = connect(&client.connect)?;
            let currency = currency.currency.to_string();
            let answer: Value = api
                .get("/api/v1/market/revenue", &[("currency", &currency)])
                .await?;
            print_one(client.format, &answer, |revenue: &[RevenueView]| {
                let mut table = Table::new(&["currency", "commission"]);
                for revenue in revenue {
                    table.row(vec![
                        revenue.currency.to_string(),
                        revenue.formatted.clone(),
                    ]);
                }
                table.render("")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_the_currencys_notation() {
        let eur = Currency::parse("EUR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let read = |text, currency| parse_amount(text, currency, "amount").ok();
        assert_eq!(read("12.50", eur), Some(1_250));
        assert_eq!(read("12.5", eur), Some(1_250));
        assert_eq!(read("12", eur), Some(1_200));
        assert_eq!(read("0.01", eur), Some(1));
        assert_eq!(read("1200", jpy), Some(1_200));
        for wrong in ["12.505", "-1", "1,50", "", ".5", "12.", "1e3"] {
            assert_eq!(read(wrong, eur), None, "{wrong}");
        }
        assert_eq!(read("12.5", jpy), None);
        assert_eq!(read("99999999999999999999", eur), None);
    }

    #[test]
    fn rates_read_as_percentages_to_basis_points() {
        assert_eq!(parse_rate("5%").ok(), Some(500));
        assert_eq!(parse_rate("2.5").ok(), Some(250));
        assert_eq!(parse_rate("0.01%").ok(), Some(1));
        assert_eq!(percent(250), "2.50%");
        assert!(parse_rate("five").is_err());
    }
}
