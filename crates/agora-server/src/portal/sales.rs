//! The seller's pages, for the organisation the signed-in person acts for: the orders it sells
//! on (`/shop/orders`) with their Fulfil buttons, one order's lines of this seller with their
//! commission and refund forms (`/shop/orders/{id}`), and its balance and payouts (`/shop/balance`).

use agora_app::{Call, NewPayout, NewRefund, PortalSession};
use agora_domain::ledger::Currency;
use agora_domain::{Error, OrderId, OrgId, RequestId};
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::orders::{CurrencyParams, LineRow, OrderRow, parse_amount, part_status};
use super::{
    CsrfForm, Nav, PortalForm, alert_text, error_page, incomplete, page, request_id, session,
    signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// How many orders a page of the shop's orders shows.
const ORDERS_PER_PAGE: u32 = 50;

/// The partner organisation the person acts for, or the refusal to show instead.
fn seller_of(session: &PortalSession) -> Result<OrgId, Error> {
    match session.actor.acting {
        Some(acting) if !acting.is_operator => Ok(acting.org_id),
        _ => Err(Error::Forbidden {
            rule: "portal-seller".to_owned(),
            message: "you act for no partner organisation, so there is no shop; partners add you by e-mail".to_owned(),
        }),
    }
}

/// An order in the shop's list: the seller's own part of it.
struct SaleRow {
    order: OrderRow,
    part_status: &'static str,
    our_total: String,
    may_fulfil: bool,
}

#[derive(Template)]
#[template(path = "shop_orders.html")]
struct ShopOrdersPage {
    nav: Nav,
    sales: Vec<SaleRow>,
    next_cursor: Option<String>,
}

pub async fn orders_page(
    State(state): State<ServerState>,
    Query(params): Query<CurrencyParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let seller = match seller_of(&session) {
        Ok(seller) => seller,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let found = match state
        .app
        .seller_orders(
            &call,
            seller,
            params.cursor.as_deref(),
            Some(ORDERS_PER_PAGE),
        )
        .await
    {
        Ok(found) => found,
        Err(error) => return error_page(error, request_id),
    };
    let sales = found
        .items
        .iter()
        .filter_map(|view| {
            let order = &view.order;
            let part = order.part(seller)?;
            let our_total: i64 = order
                .lines
                .iter()
                .filter(|line| line.seller == seller)
                .map(|line| line.gross)
                .sum();
            let mut row = OrderRow::new(order);
            row.titles = order
                .lines
                .iter()
                .filter(|line| line.seller == seller)
                .map(|line| line.title.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Some(SaleRow {
                order: row,
                part_status: part_status(part.status),
                our_total: order.currency.format(our_total),
                may_fulfil: part.status == agora_market::order::PartStatus::Paid,
            })
        })
        .collect();
    let view = ShopOrdersPage {
        nav: Nav::new(&session, "shop-orders"),
        sales,
        next_cursor: found.next_cursor,
    };
    page(StatusCode::OK, &view)
}

#[derive(Template)]
#[template(path = "shop_order.html")]
struct ShopOrderPage {
    nav: Nav,
    id: String,
    placed_at: String,
    part_status: &'static str,
    currency: String,
    net: String,
    commission: String,
    hold_until: Option<String>,
    lines: Vec<LineRow>,
    may_fulfil: bool,
    may_refund: bool,
    error: Option<String>,
}

/// Renders the seller's part of one order, with `error` in its alert.
async fn order(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    order_id: &str,
    error: Option<String>,
) -> Response {
    let seller = match seller_of(session) {
        Ok(seller) => seller,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = match order_id.parse::<OrderId>() {
        Ok(id) => state.app.order(&call, id).await,
        Err(error) => Err(error),
    };
    let order = match loaded {
        Ok(view) => view.order,
        Err(error) => return error_page(error, request_id),
    };
    let Some(part) = order.part(seller) else {
        return error_page(
            Error::not_found(format!("order {order_id} among your shop's orders")),
            request_id,
        );
    };
    use agora_market::order::PartStatus;
    let view = ShopOrderPage {
        nav: Nav::new(session, "shop-orders"),
        id: order.id.to_string(),
        placed_at: order.placed_at.to_string(),
        part_status: part_status(part.status),
        currency: order.currency.code().to_owned(),
        net: order.currency.format(part.net),
        commission: order.currency.format(part.commission),
        hold_until: part.hold_until.map(|until| until.to_string()),
        lines: order
            .lines
            .iter()
            .filter(|line| line.seller == seller)
            .map(|line| LineRow::new(line, order.currency))
            .collect(),
        may_fulfil: part.status == PartStatus::Paid,
        may_refund: matches!(
            part.status,
            PartStatus::Paid | PartStatus::Fulfilled | PartStatus::Released
        ),
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    page(status, &view)
}

pub async fn order_page(
    State(state): State<ServerState>,
    Path(order_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    order(&state, &session, request_id, &order_id, None).await
}

/// Answers a step on an order: back to the order, or the order again with what refused it.
async fn after_step<T>(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    order_id: &str,
    done: Result<T, Error>,
) -> Response {
    match done {
        Ok(_) => Redirect::to(&format!("/shop/orders/{order_id}")).into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => order(state, session, request_id, order_id, Some(message)).await,
            None => error_page(error, request_id),
        },
    }
}

/// Fulfils the seller's part of an order, then shows it.
pub async fn fulfil(
    State(state): State<ServerState>,
    Path(order_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let seller = match seller_of(&session) {
        Ok(seller) => seller,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let done = match order_id.parse::<OrderId>() {
        Ok(id) => state.app.fulfil_order(&call, id, seller).await,
        Err(error) => Err(error),
    };
    after_step(&state, &session, request_id, &order_id, done).await
}

#[derive(Deserialize)]
pub struct RefundForm {
    csrf_token: String,
    line_id: String,
    currency: String,
    amount: String,
    reason: String,
}

portal_form!(RefundForm, incomplete("refund form"));

/// Refunds an amount of one of the seller's lines, then shows the order.
pub async fn refund(
    State(state): State<ServerState>,
    Path(order_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RefundForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let parsed = (|| {
        let currency = Currency::parse(form.currency.trim())?;
        Ok::<_, Error>((
            order_id.parse::<OrderId>()?,
            NewRefund {
                line_id: form.line_id.trim().parse()?,
                amount: parse_amount("amount", &form.amount, currency)?,
                reason: form.reason.clone(),
            },
        ))
    })();
    let done = match parsed {
        Ok((id, input)) => state.app.refund_order(&call, id, input).await,
        Err(error) => Err(error),
    };
    after_step(&state, &session, request_id, &order_id, done).await
}

// -------------------------------------------------------------------------------------------
// Balance and payouts
// -------------------------------------------------------------------------------------------

struct PayoutRow {
    paid_at: String,
    amount: String,
    reference: String,
}

#[derive(Template)]
#[template(path = "shop_balance.html")]
struct BalancePage {
    nav: Nav,
    org_name: String,
    currency: String,
    pending: String,
    available: String,
    reserve: String,
    paid_out: String,
    payouts: Vec<PayoutRow>,
    may_request: bool,
    amount: String,
    reference: String,
    error: Option<String>,
}

/// What the payout form last held, to show again with its error.
#[derive(Default)]
struct PayoutInput {
    amount: String,
    reference: String,
}

/// Renders the seller's balance in `currency`, with `input` and `error` in the payout form.
async fn balance(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    currency: Result<Currency, Error>,
    input: PayoutInput,
    error: Option<String>,
) -> Response {
    let seller = match seller_of(session) {
        Ok(seller) => seller,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let currency = currency?;
        let org = state.app.org(&call, seller).await?;
        let balance = state.app.seller_balance(&call, seller, currency).await?;
        let payouts = state.app.payouts(&call, seller).await?;
        Ok::<_, Error>((org, balance, payouts))
    }
    .await;
    let (org, found, payouts) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let currency = found.currency;
    let view = BalancePage {
        nav: Nav::new(session, "balance"),
        org_name: org.name.to_string(),
        currency: currency.code().to_owned(),
        pending: found.pending_formatted,
        available: found.available_formatted,
        reserve: currency.format(found.reserve),
        paid_out: currency.format(found.paid_out),
        payouts: payouts
            .iter()
            .rev()
            .filter(|payout| payout.currency == currency)
            .map(|payout| PayoutRow {
                paid_at: payout.paid_at.to_string(),
                amount: currency.format(payout.amount),
                reference: payout.reference.clone(),
            })
            .collect(),
        may_request: session.actor.acting.is_some_and(|acting| {
            matches!(
                acting.role,
                agora_domain::Role::Owner | agora_domain::Role::Admin
            )
        }),
        amount: input.amount,
        reference: input.reference,
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(status, &view)
}

pub async fn balance_page(
    State(state): State<ServerState>,
    Query(params): Query<CurrencyParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    balance(
        &state,
        &session,
        request_id,
        params.currency(),
        PayoutInput::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct PayoutForm {
    csrf_token: String,
    currency: String,
    #[serde(default)]
    amount: String,
    reference: String,
}

portal_form!(PayoutForm, incomplete("payout form"));

/// Pays out the seller's available funds (all, or the amount asked), then shows the balance.
pub async fn request_payout(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, PayoutForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let seller = match seller_of(&session) {
        Ok(seller) => seller,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let currency = Currency::parse(form.currency.trim());
    let parsed = currency.clone().and_then(|currency| {
        let amount = match form.amount.trim() {
            "" => None,
            amount => Some(parse_amount("amount", amount, currency)?),
        };
        Ok(NewPayout {
            currency,
            amount,
            reference: form.reference.clone(),
        })
    });
    let done = match parsed {
        Ok(input) => state.app.request_payout(&call, seller, input).await,
        Err(error) => Err(error),
    };
    match done {
        Ok(record) => Redirect::to(&format!(
            "/shop/balance?currency={}",
            record.currency.code()
        ))
        .into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                let input = PayoutInput {
                    amount: form.amount,
                    reference: form.reference,
                };
                balance(&state, &session, request_id, currency, input, Some(message)).await
            }
            None => error_page(error, request_id),
        },
    }
}
