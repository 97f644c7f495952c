//! The customer's pages: buying from a listing, the order history (`/orders`), one order with
//! its cancel button (`/orders/{id}`), and the wallet with its top-up form (`/wallet`).
//!
//! Every page acts as the signed-in person for themselves; the application decides what they may.

use agora_app::{Call, CartLine, NewOrder, PayWith, PortalSession};
use agora_domain::ledger::Currency;
use agora_domain::listing::parse_price;
use agora_domain::{Error, OrderId, RequestId};
use agora_market::order::{Order, OrderLine, OrderStatus, PartStatus, PaymentMethod};
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{
    CsrfForm, Nav, PortalForm, alert_text, error_page, incomplete, page, request_id, session,
    signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// The sandbox card the portal pays with: the provider authorizes and captures it.
const SANDBOX_CARD: &str = "tok_visa";
/// How many orders a history page shows.
const ORDERS_PER_PAGE: u32 = 50;

/// The currency a page shows, from `?currency=`; EUR unless asked otherwise.
#[derive(Deserialize, Default)]
pub struct CurrencyParams {
    pub currency: Option<String>,
    pub cursor: Option<String>,
}

impl CurrencyParams {
    pub fn currency(&self) -> Result<Currency, Error> {
        match self.currency.as_deref().map(str::trim) {
            None | Some("") => Currency::parse("EUR"),
            Some(code) => Currency::parse(&code.to_ascii_uppercase()),
        }
    }
}

/// Reads an amount typed in major units (`12.50`) as minor units, naming `field` when it does not parse.
pub fn parse_amount(field: &str, text: &str, currency: Currency) -> Result<i64, Error> {
    parse_price(text, currency).map_err(|error| match error {
        Error::Invalid { message, .. } => Error::invalid(field, message),
        other => other,
    })
}

pub fn order_status(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "awaiting payment",
        OrderStatus::Paid => "paid",
        OrderStatus::Fulfilled => "fulfilled",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::PartiallyRefunded => "partially refunded",
        OrderStatus::Refunded => "refunded",
    }
}

pub fn part_status(status: PartStatus) -> &'static str {
    match status {
        PartStatus::AwaitingPayment => "awaiting payment",
        PartStatus::Paid => "paid, to fulfil",
        PartStatus::Fulfilled => "fulfilled, on hold",
        PartStatus::Released => "released",
        PartStatus::Refunded => "refunded",
        PartStatus::Cancelled => "cancelled",
    }
}

fn payment_text(order: &Order) -> String {
    match &order.payment {
        None => "not paid yet: the card payment is being confirmed".to_owned(),
        Some(payment) => {
            let method = match payment.method {
                PaymentMethod::Card { .. } => "card",
                PaymentMethod::Wallet { .. } => "wallet",
            };
            format!(
                "{} by {method} on {}",
                order.currency.format(payment.amount),
                payment.paid_at
            )
        }
    }
}

/// A line of an order, in words.
pub struct LineRow {
    pub id: String,
    pub listing_id: String,
    pub title: String,
    pub quantity: u32,
    pub unit_price: String,
    pub gross: String,
    pub refunded: String,
    /// Shown to the seller only.
    pub commission: String,
    /// Shown to the seller only.
    pub net: String,
    /// What can still be refunded, in major units, for the refund form's limit.
    pub refundable: String,
    pub is_refundable: bool,
}

impl LineRow {
    pub fn new(line: &OrderLine, currency: Currency) -> Self {
        let refundable = line.refundable();
        Self {
            id: line.id.to_string(),
            listing_id: line.listing.to_string(),
            title: line.title.clone(),
            quantity: line.quantity,
            unit_price: currency.format(line.unit_price),
            gross: currency.format(line.gross),
            refunded: currency.format(line.refunded),
            commission: currency.format(line.current_commission()),
            net: currency.format(line.current_net()),
            refundable: currency
                .format(refundable)
                .trim_end_matches(currency.code())
                .trim_end()
                .to_owned(),
            is_refundable: refundable > 0,
        }
    }
}

/// An order in a list, in words.
pub struct OrderRow {
    pub id: String,
    pub placed_at: String,
    pub status: &'static str,
    pub total: String,
    pub titles: String,
}

impl OrderRow {
    pub fn new(order: &Order) -> Self {
        Self {
            id: order.id.to_string(),
            placed_at: order.placed_at.to_string(),
            status: order_status(order.status),
            total: order.currency.format(order.total),
            titles: order
                .lines
                .iter()
                .map(|line| line.title.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

// -------------------------------------------------------------------------------------------
// Buying
// -------------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct BuyForm {
    csrf_token: String,
    quantity: Option<String>,
    slot_id: Option<String>,
    pay_with: String,
}

portal_form!(BuyForm, incomplete("buy form"));

impl BuyForm {
    fn to_new_order(&self, listing_id: &str) -> Result<NewOrder, Error> {
        let slot_id = match self.slot_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(slot_id) => Some(slot_id.parse()?),
        };
        let quantity = match self.quantity.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(quantity) => quantity
                .parse::<u32>()
                .ok()
                .filter(|quantity| *quantity >= 1)
                .ok_or_else(|| Error::invalid("quantity", "must be a whole number from 1"))?,
        };
        let pay_with = match self.pay_with.as_str() {
            "wallet" => PayWith::Wallet,
            "card" => PayWith::Card {
                token: SANDBOX_CARD.to_owned(),
            },
            _ => return Err(Error::invalid("pay_with", "must be wallet or card")),
        };
        Ok(NewOrder {
            lines: vec![CartLine {
                listing_id: listing_id.parse()?,
                quantity,
                slot_id,
            }],
            pay_with,
            expected_total: None,
        })
    }
}

/// Buys from one listing as the signed-in person, then shows the order.
pub async fn buy(
    State(state): State<ServerState>,
    Path(listing_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, BuyForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let placed = match form.to_new_order(&listing_id) {
        Ok(input) => state.app.place_order(&call, session.user.id, input).await,
        Err(error) => Err(error),
    };
    match placed {
        Ok(view) => Redirect::to(&format!("/orders/{}", view.order.id)).into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                super::market::listing(&state, &session, request_id, &listing_id, Some(message))
                    .await
            }
            None => error_page(error, request_id),
        },
    }
}

// -------------------------------------------------------------------------------------------
// Orders
// -------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    nav: Nav,
    orders: Vec<OrderRow>,
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
    let call = Call::new(&session.actor, request_id);
    match state
        .app
        .customer_orders(
            &call,
            session.user.id,
            params.cursor.as_deref(),
            Some(ORDERS_PER_PAGE),
        )
        .await
    {
        Ok(found) => {
            let view = OrdersPage {
                nav: Nav::new(&session, "orders"),
                orders: found
                    .items
                    .iter()
                    .map(|view| OrderRow::new(&view.order))
                    .collect(),
                next_cursor: found.next_cursor,
            };
            page(StatusCode::OK, &view)
        }
        Err(error) => error_page(error, request_id),
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    nav: Nav,
    id: String,
    status: &'static str,
    placed_at: String,
    total: String,
    refunded: String,
    payment: String,
    lines: Vec<LineRow>,
    may_cancel: bool,
    error: Option<String>,
}

/// Renders one of the signed-in person's orders, with `error` in its alert.
async fn order(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    order_id: &str,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = match order_id.parse::<OrderId>() {
        Ok(id) => state.app.order(&call, id).await,
        Err(error) => Err(error),
    };
    let order = match loaded {
        // Sellers and the operator may read it too, but this page is the customer's own.
        Ok(view) if view.order.customer == session.user.id => view.order,
        // Someone else's order answers as an unknown one, so that the page tells nothing of it.
        Ok(_) | Err(Error::Forbidden { .. } | Error::NotFound { .. }) => {
            return error_page(
                Error::not_found(format!("order {order_id} among your orders")),
                request_id,
            );
        }
        Err(error) => return error_page(error, request_id),
    };
    let nothing_fulfilled = order.parts.iter().all(|part| part.fulfilled_at.is_none());
    let view = OrderPage {
        nav: Nav::new(session, "orders"),
        id: order.id.to_string(),
        status: order_status(order.status),
        placed_at: order.placed_at.to_string(),
        total: order.currency.format(order.total),
        refunded: order.currency.format(order.refunded()),
        payment: payment_text(&order),
        lines: order
            .lines
            .iter()
            .map(|line| LineRow::new(line, order.currency))
            .collect(),
        may_cancel: matches!(order.status, OrderStatus::Placed | OrderStatus::Paid)
            && nothing_fulfilled,
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

/// Cancels one of the signed-in person's orders, then shows it.
pub async fn cancel(
    State(state): State<ServerState>,
    Path(order_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let cancelled = match order_id.parse::<OrderId>() {
        Ok(id) => state.app.cancel_order(&call, id).await,
        Err(error) => Err(error),
    };
    match cancelled {
        Ok(view) => Redirect::to(&format!("/orders/{}", view.order.id)).into_response(),
        Err(Error::Forbidden { .. } | Error::NotFound { .. }) => error_page(
            Error::not_found(format!("order {order_id} among your orders")),
            request_id,
        ),
        Err(error) => match alert_text(&error) {
            Some(message) => order(&state, &session, request_id, &order_id, Some(message)).await,
            None => error_page(error, request_id),
        },
    }
}

// -------------------------------------------------------------------------------------------
// The wallet
// -------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    nav: Nav,
    currency: String,
    balance: String,
    amount: String,
    error: Option<String>,
}

/// Renders the signed-in person's wallet in `currency`, with `amount` and `error` in its form.
async fn wallet(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    currency: Result<Currency, Error>,
    amount: String,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = match currency {
        Ok(currency) => state.app.wallet(&call, session.user.id, currency).await,
        Err(error) => Err(error),
    };
    match loaded {
        Ok(found) => {
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let view = WalletPage {
                nav: Nav::new(session, "wallet"),
                currency: found.currency.code().to_owned(),
                balance: found.formatted,
                amount,
                error,
            };
            page(status, &view)
        }
        Err(error) => error_page(error, request_id),
    }
}

pub async fn wallet_page(
    State(state): State<ServerState>,
    Query(params): Query<CurrencyParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    wallet(
        &state,
        &session,
        request_id,
        params.currency(),
        String::new(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct TopUpForm {
    csrf_token: String,
    currency: String,
    amount: String,
}

portal_form!(TopUpForm, incomplete("top-up form"));

/// Tops up the signed-in person's wallet with the sandbox card, then shows the wallet.
pub async fn top_up(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, TopUpForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let currency = Currency::parse(form.currency.trim());
    let topped_up = match currency.clone() {
        Ok(currency) => match parse_amount("amount", &form.amount, currency) {
            Ok(amount) => {
                state
                    .app
                    .top_up_wallet(&call, session.user.id, currency, amount, Some(SANDBOX_CARD))
                    .await
            }
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    match topped_up {
        Ok(found) => {
            Redirect::to(&format!("/wallet?currency={}", found.currency.code())).into_response()
        }
        Err(error) => match alert_text(&error) {
            Some(message) => {
                wallet(
                    &state,
                    &session,
                    request_id,
                    currency,
                    form.amount,
                    Some(message),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}
