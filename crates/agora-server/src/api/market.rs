//! The marketplace's orders and money: the operator's commission rules and seller settings,
//! checkout, fulfilment, refunds and cancellation, wallets, seller balances and payouts, and the
//! operator's periodic steps (release after the hold, scheduled payouts) and revenue.
//!
//! Every route takes a bearer token. Customers shop from the portal: the built-in policies let a
//! person place orders and use their wallet only through a session, never through an API token
//! (`customer-self`), so here checkout and top-ups are for the operator acting for a customer.

use agora_app::agora_market::commission::CommissionRule;
use agora_app::agora_market::order::RefundRecord;
use agora_app::agora_market::payout::{PayoutRecord, SellerSettings};
use agora_app::{
    NewCommissionRule, NewOrder, NewPayout, NewRefund, OrderView, Page, PayoutRun, RevenueView,
    SellerBalance, WalletView,
};
use agora_domain::ledger::Currency;
use agora_domain::{Error, OrderId, OrgId, Timestamp, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::PageParams;
use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: std::str::FromStr<Err = Error>>(caller: &Caller, text: &str) -> ApiResult<T> {
    text.parse().map_err(|error| caller.fail(error))
}

/// Which currency to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CurrencyParams {
    /// An ISO 4217 code such as `EUR`.
    pub currency: String,
}

impl CurrencyParams {
    fn currency(&self, caller: &Caller) -> ApiResult<Currency> {
        parse(caller, &self.currency)
    }
}

/// Whose part of an order to fulfil.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    /// The seller whose part is fulfilled; the organisation the caller acts for when absent.
    pub seller: Option<OrgId>,
}

/// Money to add to a customer's wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    pub currency: Currency,
    /// In minor units: 5000 is 50.00 EUR.
    pub amount: i64,
    /// A sandbox card token (`tok_visa`) to charge; absent: the operator's cash desk.
    pub card_token: Option<String>,
}

/// Which currency a payout run pays in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRunRequest {
    pub currency: Currency,
}

/// What releasing the due holds did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseReport {
    /// Seller parts whose hold ended and whose pending funds became available.
    pub released: usize,
}

const IDEMPOTENCY: &str = "Makes a retry return the first response instead of moving money again";

// ---------------------------------------------------------------------------------------------
// The operator's rules
// ---------------------------------------------------------------------------------------------

/// Every commission rule in force. Public to signed-in users, so that sellers know the terms.
#[utoipa::path(get, path = "/api/v1/commission-rules", tag = "marketplace",
    responses((status = 200, description = "Commission rules: `id`, `scope`, `currency`, `terms` (`rate_bps`, `fixed`, `floor`, `cap`)", body = Vec<serde_json::Value>)))]
pub async fn list_commission_rules(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CommissionRule>>> {
    let rules = state
        .app
        .commission_rules(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(rules))
}

/// Sets a commission rule (the operator). It applies to orders placed from now on; lines sold
/// already keep the terms frozen on them. The most specific rule wins: listing, seller and
/// category, seller, category, default.
#[utoipa::path(post, path = "/api/v1/commission-rules", tag = "marketplace",
    request_body = NewCommissionRule,
    responses(
        (status = 201, description = "The rule as set", body = serde_json::Value),
        (status = 400, description = "A term out of range, named in `field`", body = Problem),
        (status = 403, body = Problem),
    ))]
pub async fn set_commission_rule(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<NewCommissionRule>,
) -> ApiResult<(StatusCode, Json<CommissionRule>)> {
    let rule = state
        .app
        .set_commission_rule(&caller.call(), input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// A seller's hold period, payout schedule and minimum, refund policy and net debit cap: the
/// defaults until the operator sets them. The seller's owners, admins and analysts, and the operator.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/seller-settings", tag = "marketplace",
    params(("org_id" = String, Path)),
    responses(
        (status = 200, description = "`hold_days`, `schedule` (`{\"every\":\"weekly\",\"weekday\":\"monday\"}`, `daily`, `manual`), `minimum`, `refund_policy` (`proportional`, `keep_commission`), `net_debit_cap`", body = serde_json::Value),
        (status = 403, body = Problem),
    ))]
pub async fn get_seller_settings(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<SellerSettings>> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let settings = state
        .app
        .seller_settings(&caller.call(), seller)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(settings))
}

/// Sets a seller's settings, every field (the operator).
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/seller-settings", tag = "marketplace",
    params(("org_id" = String, Path)),
    request_body(content = serde_json::Value, description = "`{\"hold_days\":7,\"schedule\":{\"every\":\"manual\"},\"minimum\":1000,\"refund_policy\":\"proportional\",\"net_debit_cap\":0}`"),
    responses(
        (status = 200, body = serde_json::Value),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such organisation", body = Problem),
    ))]
pub async fn set_seller_settings(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(settings): Json<SellerSettings>,
) -> ApiResult<Json<SellerSettings>> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let settings = state
        .app
        .set_seller_settings(&caller.call(), seller, settings)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(settings))
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// Places an order for a customer: one payment split across every seller of the cart. From the
/// wallet, it is paid before this answers, or refused and not kept; by sandbox card, it is paid
/// when the provider's capture notification arrives. Through the API only the operator acts for a
/// customer; customers check out in the portal.
#[utoipa::path(post, path = "/api/v1/customers/{user_id}/orders", tag = "marketplace",
    params(("user_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = NewOrder,
    responses(
        (status = 201, body = OrderView),
        (status = 400, description = "A line's quantity or slot is wrong", body = Problem),
        (status = 403, description = "Not allowed, or the card was declined", body = Problem),
        (status = 404, description = "A listing does not exist", body = Problem),
        (status = 409, description = "Sold out, a slot taken, a listing archived, or the same key still in progress", body = Problem),
        (status = 422, description = "The wallet cannot pay, or the key was used with another body", body = Problem),
    ))]
pub async fn place_order(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(input): Json<NewOrder>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let customer: UserId = parse(&caller, &user_id)?;
    let order = state
        .app
        .place_order(&caller.call(), customer, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// A customer's orders, in the order they were placed.
#[utoipa::path(get, path = "/api/v1/customers/{user_id}/orders", tag = "marketplace",
    params(("user_id" = String, Path), PageParams),
    responses((status = 200, body = Page<OrderView>), (status = 403, body = Problem)))]
pub async fn customer_orders(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<OrderView>>> {
    let customer: UserId = parse(&caller, &user_id)?;
    let orders = state
        .app
        .customer_orders(&caller.call(), customer, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(orders))
}

/// One order: its lines with the commission frozen at sale, each seller's part, its payment.
/// Its customer, the owners, admins and analysts of its sellers, and the operator read it.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "marketplace",
    params(("order_id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_order(
    State(state): State<ServerState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let order_id: OrderId = parse(&caller, &order_id)?;
    let order = state
        .app
        .order(&caller.call(), order_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(order))
}

/// A seller fulfils its part of a paid order: the part's net goes to the seller's pending funds,
/// the commission to the operator, and the hold period starts. Send `{}` to fulfil the part of
/// the organisation the token acts for.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/fulfil", tag = "marketplace",
    params(("order_id" = String, Path)),
    request_body = Fulfilment,
    responses(
        (status = 200, body = OrderView),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Not paid yet, or this part was fulfilled already", body = Problem),
    ))]
pub async fn fulfil_order(
    State(state): State<ServerState>,
    caller: Caller,
    Path(order_id): Path<String>,
    Json(input): Json<Fulfilment>,
) -> ApiResult<Json<OrderView>> {
    let order_id: OrderId = parse(&caller, &order_id)?;
    let seller = input
        .seller
        .or_else(|| caller.actor.org_id())
        .ok_or_else(|| {
            caller.fail(Error::invalid(
                "seller",
                "is needed: this credential acts for no organisation, so name the seller whose part to fulfil",
            ))
        })?;
    let order = state
        .app
        .fulfil_order(&caller.call(), order_id, seller)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(order))
}

/// Refunds an amount of one line. Before fulfilment the money simply goes back; after, the
/// seller's share and the commission are reversed as the line's frozen refund policy says. A line
/// is never refunded beyond what was paid for it.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refunds", tag = "marketplace",
    params(("order_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = NewRefund,
    responses(
        (status = 201, description = "The refund: `amount`, `commission_reversed`, `seller_share`, and where the share came from", body = serde_json::Value),
        (status = 400, description = "An amount below 1 or beyond what is left of the line", body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such order or line", body = Problem),
        (status = 422, description = "The seller's balances cannot cover the refund", body = Problem),
    ))]
pub async fn refund_order(
    State(state): State<ServerState>,
    caller: Caller,
    Path(order_id): Path<String>,
    Json(input): Json<NewRefund>,
) -> ApiResult<(StatusCode, Json<RefundRecord>)> {
    let order_id: OrderId = parse(&caller, &order_id)?;
    let refund = state
        .app
        .refund_order(&caller.call(), order_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(refund)))
}

/// Cancels an order that nothing of was fulfilled: a placed one at once, a paid one by refunding
/// it whole. Its sellers' owners and admins and the operator cancel through the API.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "marketplace",
    params(("order_id" = String, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "A part was fulfilled already, or the order is cancelled", body = Problem),
    ))]
pub async fn cancel_order(
    State(state): State<ServerState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let order_id: OrderId = parse(&caller, &order_id)?;
    let order = state
        .app
        .cancel_order(&caller.call(), order_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(order))
}

/// The orders a seller sells on, in the order they were placed.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/orders", tag = "marketplace",
    params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<OrderView>), (status = 403, body = Problem)))]
pub async fn seller_orders(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<OrderView>>> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let orders = state
        .app
        .seller_orders(&caller.call(), seller, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(orders))
}

// ---------------------------------------------------------------------------------------------
// Wallets
// ---------------------------------------------------------------------------------------------

/// A customer's wallet balance in one currency.
#[utoipa::path(get, path = "/api/v1/customers/{user_id}/wallet", tag = "marketplace",
    params(("user_id" = String, Path), CurrencyParams),
    responses((status = 200, body = WalletView), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn get_wallet(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Query(params): Query<CurrencyParams>,
) -> ApiResult<Json<WalletView>> {
    let customer: UserId = parse(&caller, &user_id)?;
    let currency = params.currency(&caller)?;
    let wallet = state
        .app
        .wallet(&caller.call(), customer, currency)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(wallet))
}

/// Adds money to a customer's wallet: the operator's cash desk, or a sandbox card.
#[utoipa::path(post, path = "/api/v1/customers/{user_id}/wallet/top-ups", tag = "marketplace",
    params(("user_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = TopUp,
    responses(
        (status = 200, description = "The wallet after the top-up", body = WalletView),
        (status = 400, description = "An amount below 1", body = Problem),
        (status = 403, description = "Not allowed, or the card was declined", body = Problem),
    ))]
pub async fn top_up_wallet(
    State(state): State<ServerState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(input): Json<TopUp>,
) -> ApiResult<Json<WalletView>> {
    let customer: UserId = parse(&caller, &user_id)?;
    let wallet = state
        .app
        .top_up_wallet(
            &caller.call(),
            customer,
            input.currency,
            input.amount,
            input.card_token.as_deref(),
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(wallet))
}

// ---------------------------------------------------------------------------------------------
// Seller balances and payouts
// ---------------------------------------------------------------------------------------------

/// A seller's pending, available and reserved funds in one currency, and what it was paid out.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/balance", tag = "marketplace",
    params(("org_id" = String, Path), CurrencyParams),
    responses((status = 200, body = SellerBalance), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn seller_balance(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(params): Query<CurrencyParams>,
) -> ApiResult<Json<SellerBalance>> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let currency = params.currency(&caller)?;
    let balance = state
        .app
        .seller_balance(&caller.call(), seller, currency)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(balance))
}

/// A seller's payouts, oldest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/payouts", tag = "marketplace",
    params(("org_id" = String, Path)),
    responses(
        (status = 200, description = "Payouts: `id`, `seller`, `currency`, `amount`, `provider`, `reference`, `paid_at`", body = Vec<serde_json::Value>),
        (status = 403, body = Problem),
    ))]
pub async fn list_payouts(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Vec<PayoutRecord>>> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let payouts = state
        .app
        .payouts(&caller.call(), seller)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(payouts))
}

/// Pays out a seller's available funds now: everything available when `amount` is absent, never
/// less than the seller's minimum. The seller's owners and admins, and the operator.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/payouts", tag = "marketplace",
    params(("org_id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = NewPayout,
    responses(
        (status = 201, description = "The payout as made", body = serde_json::Value),
        (status = 400, description = "Below the minimum, beyond the available funds, or no reference", body = Problem),
        (status = 403, body = Problem),
    ))]
pub async fn request_payout(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(input): Json<NewPayout>,
) -> ApiResult<(StatusCode, Json<PayoutRecord>)> {
    let seller: OrgId = parse(&caller, &org_id)?;
    let payout = state
        .app
        .request_payout(&caller.call(), seller, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(payout)))
}

// ---------------------------------------------------------------------------------------------
// The operator's periodic steps and revenue
// ---------------------------------------------------------------------------------------------

/// Pays every seller whose schedule says a payout is due now and whose available funds reach its
/// minimum (the operator). Sellers refused are listed with the reason; the others are paid.
#[utoipa::path(post, path = "/api/v1/payouts/run", tag = "marketplace",
    request_body = PayoutRunRequest,
    responses((status = 200, body = PayoutRun), (status = 403, body = Problem)))]
pub async fn run_payouts(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<PayoutRunRequest>,
) -> ApiResult<Json<PayoutRun>> {
    let run = state
        .app
        .run_payouts(&caller.call(), input.currency, Timestamp::now())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(run))
}

/// Releases every fulfilled part whose hold has ended: the seller's pending funds become
/// available, and orders whose every part is released complete (the operator).
#[utoipa::path(post, path = "/api/v1/market/release-due", tag = "marketplace",
    responses((status = 200, body = ReleaseReport), (status = 403, body = Problem)))]
pub async fn release_due(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<ReleaseReport>> {
    let released = state
        .app
        .release_due(&caller.call(), Timestamp::now())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(ReleaseReport { released }))
}

/// The operator's commission revenue in one currency: commission earned minus commission
/// reversed by refunds (the operator's owners, admins and analysts).
#[utoipa::path(get, path = "/api/v1/market/revenue", tag = "marketplace",
    params(CurrencyParams),
    responses((status = 200, body = RevenueView), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn revenue(
    State(state): State<ServerState>,
    caller: Caller,
    Query(params): Query<CurrencyParams>,
) -> ApiResult<Json<RevenueView>> {
    let currency = params.currency(&caller)?;
    let revenue = state
        .app
        .revenue(&caller.call(), currency)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(revenue))
}
