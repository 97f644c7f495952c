//! Orders: a cart of lines from one or more sellers, paid once, split into one part per seller, and every step on them.
//!
//! # States
//!
//! Each seller's [`Part`] moves on its own:
//!
//! ```text
//!                   pay / capture          fulfil                release (now ≥ hold_until)
//! awaiting_payment ───────────────▶ paid ─────────▶ fulfilled ──────────────────────────▶ released
//!        │                          │  │                 │
//!        │ cancel                   │  └─ every line ────┴─ every line refunded ──▶ refunded
//!        ▼                          │     refunded
//!    cancelled ◀────────────────────┘ cancel (no part of the order was ever fulfilled)
//! ```
//!
//! The [`OrderStatus`] is derived from the parts and the amounts after every step, never set by
//! hand, so it cannot disagree with them. In order of precedence:
//!
//! - `cancelled`: the order was cancelled (before payment, or after payment with nothing fulfilled, everything refunded);
//! - `placed`: not paid yet;
//! - `refunded`: everything paid went back;
//! - `completed`: every part is released or refunded;
//! - `partially_refunded`: some money went back;
//! - `fulfilled`: every part is fulfilled, released or refunded;
//! - `paid`.
//!
//! ```text
//! placed ──pay──▶ paid ──fulfil all──▶ fulfilled ──release all──▶ completed
//!   │              │  ╲                    │                         │
//!   cancel       cancel  refund some ──▶ partially_refunded ──────────┤
//!   ▼              ▼                       refund all ──▶ refunded ◀──┘
//! cancelled ◀──────┘
//! ```
//!
//! Refunds are tracked as amounts on each line (`refunded`, `commission_reversed`), so a partial
//! refund of a completed order leaves it `completed` with a non-zero [`Order::refunded`].
//! Every step checks the state it starts from and refuses, naming the state and what to do
//! instead; a refusal changes nothing because every step takes the order by reference.
//!
//! # Money
//!
//! - Paying (card capture or wallet) moves the total into the order's clearing account.
//! - Fulfilling a part moves its current net to the seller's pending account and its current
//!   commission to commission revenue. A part's *current* commission is, over its lines,
//!   `C - commission_reversed`, and its net `gross - refunded - current commission`.
//! - Releasing a part moves what of it is still pending to the seller's available account.
//! - Once every part is fulfilled or refunded, the clearing account is zero.
//! - Invariant: `paid = Σ part net + Σ part commission + refunded`.
//!
//! # Refunds and their remainders
//!
//! A refund is of an amount of one line, `1 ..= gross - refunded`.
//!
//! - **Proportional** (the default): after refunds totalling `R` of a line of gross `G` and
//!   commission `C`, the commission reversed so far is `floor(C × R / G)`; each refund reverses the
//!   difference from before, and the seller's share is the rest. The floor leaves the fraction
//!   with the operator until the last refund: a full refund reverses exactly `C`.
//! - **Keep commission** (chosen per seller by the operator, frozen on the line at sale): after
//!   the part is fulfilled, no commission is reversed and the seller's share is the whole amount;
//!   under it a part's net can go below zero (the seller paid the kept commission from other
//!   funds). Before fulfilment nothing was earned yet, so every refund is proportional.
//! - **Where the money comes from.** Before the part is fulfilled, the amount is in the order's
//!   clearing account and goes straight back to the payer. After, the seller's share comes back
//!   first from this part's own pending funds, then from the seller's available balance, then
//!   from the seller's reserve (balances the application reads from the ledger and passes in as
//!   [`SellerFunds`]); the commission's share comes from commission revenue; then the whole
//!   amount goes to the payer: provider clearing for a card, the wallet for a wallet payment.
//!   All legs are one chain; a share the seller's funds cannot cover is refused whole.
//!   A part's pending funds are never used for another part's refund, so every release can still move what it owes.

use agora_domain::ledger::Currency;
use agora_domain::{
    Error, ListingId, OrderId, OrderLineId, OrgId, PaymentId, RefundId, Result, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountPurpose, TransferCode};
use crate::commission::{CommissionRule, FrozenCommission, LineFacts};
use crate::plan::{Leg, Plan, StepKey, add, sub};

/// The most lines one order may have.
pub const ORDER_LINES_MAX: usize = 100;
/// The most units of one listing one line may order.
pub const LINE_QUANTITY_MAX: u32 = 10_000;
/// The longest hold period, in days.
pub const HOLD_DAYS_MAX: u32 = 365;

const SECONDS_PER_DAY: i64 = 86_400;

/// How a refund after fulfilment treats the commission; frozen on each line at sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// Commission is reversed in proportion to the refunded amount.
    #[default]
    Proportional,
    /// The operator keeps the commission; the seller's share is the whole refund.
    KeepCommission,
}

/// How an order was paid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum PaymentMethod {
    /// A card payment at `provider`.
    Card {
        payment_id: PaymentId,
        provider: String,
    },
    /// The customer's wallet; the id names the attempt, so that a refused attempt never blocks the next.
    Wallet { payment_id: PaymentId },
}

impl PaymentMethod {
    pub fn payment_id(&self) -> PaymentId {
        match self {
            PaymentMethod::Card { payment_id, .. } | PaymentMethod::Wallet { payment_id } => {
                *payment_id
            }
        }
    }
}

/// The payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: PaymentMethod,
    pub amount: i64,
    pub paid_at: Timestamp,
}

/// What the application knows of a listing when the order is placed (it checks stock itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingFacts {
    pub listing: ListingId,
    pub seller: OrgId,
    pub title: String,
    pub category: String,
    pub currency: Currency,
    /// Minor units, at least 1.
    pub unit_price: i64,
}

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    pub id: OrderLineId,
    pub listing: ListingFacts,
    pub quantity: u32,
    /// The seller's refund policy now (from its settings); frozen on the line.
    pub refund_policy: RefundPolicy,
}

/// A cart to place as an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub id: OrderId,
    pub customer: UserId,
    pub lines: Vec<LineInput>,
}

/// One line of an order, with its terms frozen at sale and what was refunded of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub id: OrderLineId,
    pub listing: ListingId,
    pub seller: OrgId,
    pub title: String,
    pub category: String,
    pub unit_price: i64,
    pub quantity: u32,
    /// `unit_price × quantity`.
    pub gross: i64,
    pub commission: FrozenCommission,
    pub refund_policy: RefundPolicy,
    /// What went back to the payer so far; at most `gross`.
    pub refunded: i64,
    /// What of the commission was reversed so far; at most `commission.amount`.
    pub commission_reversed: i64,
}

impl OrderLine {
    /// What can still be refunded.
    pub fn refundable(&self) -> i64 {
        self.gross - self.refunded
    }

    /// The commission the operator keeps now.
    pub fn current_commission(&self) -> i64 {
        self.commission.amount - self.commission_reversed
    }

    /// The seller's share now; below zero only under keep commission.
    pub fn current_net(&self) -> i64 {
        self.gross - self.refunded - self.current_commission()
    }
}

/// Where a seller's part of an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    AwaitingPayment,
    Paid,
    Fulfilled,
    Released,
    /// Every line of the part was refunded in full before it was released.
    Refunded,
    Cancelled,
}

/// One seller's part of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub seller: OrgId,
    pub status: PartStatus,
    /// The seller's share of the part's lines now (see [`OrderLine::current_net`]).
    pub net: i64,
    /// The commission of the part's lines now.
    pub commission: i64,
    /// What of this part is in the seller's pending account: set at fulfilment, drawn by refunds, zeroed by release.
    pub pending: i64,
    pub fulfilled_at: Option<Timestamp>,
    pub hold_until: Option<Timestamp>,
    pub released_at: Option<Timestamp>,
}

impl Part {
    /// Whether the part's money left the order's clearing account (fulfilled, released or fully refunded).
    pub fn is_cleared(&self) -> bool {
        matches!(
            self.status,
            PartStatus::Fulfilled | PartStatus::Released | PartStatus::Refunded
        )
    }
}

/// An order's status, derived (see the module's state diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Fulfilled,
    Completed,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

/// A customer's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer: UserId,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    /// One per seller, in order of the seller's first line.
    pub parts: Vec<Part>,
    /// Σ line gross.
    pub total: i64,
    pub status: OrderStatus,
    pub payment: Option<Payment>,
    pub placed_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

/// What the seller has in the ledger besides this part's pending funds, read by the application before a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SellerFunds {
    pub available: i64,
    pub reserve: i64,
}

/// A refund as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// New for every attempt: a refused attempt's transfer ids stay failed in the ledger.
    pub id: RefundId,
    pub line: OrderLineId,
    pub amount: i64,
    pub reason: String,
}

/// A refund as done: what went back, and where each share came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub id: RefundId,
    pub order: OrderId,
    pub line: OrderLineId,
    pub seller: OrgId,
    pub amount: i64,
    /// The payment the money goes back to; for a card, the application asks the provider to refund it.
    pub payment: PaymentMethod,
    pub commission_reversed: i64,
    pub seller_share: i64,
    pub from_pending: i64,
    pub from_available: i64,
    pub from_reserve: i64,
    pub reason: String,
    pub refunded_at: Timestamp,
}

/// What a capture did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Capture {
    /// The order is paid now; carry out the plan and store the order.
    Captured { order: Box<Order>, plan: Plan },
    /// This payment was captured before (a duplicate or late notification); nothing to do.
    AlreadyCaptured,
}

impl Order {
    /// Σ refunded over the lines.
    pub fn refunded(&self) -> i64 {
        self.lines.iter().map(|line| line.refunded).sum()
    }

    /// What was paid: the total once paid, else 0.
    pub fn paid(&self) -> i64 {
        self.payment.as_ref().map_or(0, |payment| payment.amount)
    }

    pub fn part(&self, seller: OrgId) -> Option<&Part> {
        self.parts.iter().find(|part| part.seller == seller)
    }

    /// What the order's clearing account should hold: paid, less refunds, less what cleared parts moved out.
    pub fn clearing_balance(&self) -> i64 {
        let cleared: i64 = self
            .parts
            .iter()
            .filter(|part| part.is_cleared())
            .map(|part| part.net + part.commission)
            .sum();
        self.paid() - self.refunded() - cleared
    }

    fn clearing(&self) -> AccountPurpose {
        AccountPurpose::OrderClearing { order: self.id }
    }

    fn payer(&self) -> Result<(AccountPurpose, PaymentMethod)> {
        let payment = self.payment.as_ref().ok_or_else(|| {
            Error::Conflict(format!(
                "order {} is not paid; cancel it instead of refunding",
                self.id
            ))
        })?;
        let account = match &payment.method {
            PaymentMethod::Card { provider, .. } => AccountPurpose::ProviderClearing {
                provider: provider.clone(),
            },
            PaymentMethod::Wallet { .. } => AccountPurpose::CustomerWallet {
                customer: self.customer,
            },
        };
        Ok((account, payment.method.clone()))
    }

    fn part_index(&self, seller: OrgId) -> Result<usize> {
        self.parts
            .iter()
            .position(|part| part.seller == seller)
            .ok_or_else(|| Error::not_found(format!("seller {seller} in order {}", self.id)))
    }

    /// Recomputes every part's net and commission from its lines, and the order's status.
    fn settle(&mut self) {
        for part in &mut self.parts {
            let lines = self.lines.iter().filter(|line| line.seller == part.seller);
            let (mut net, mut commission) = (0, 0);
            let mut all_refunded = true;
            for line in lines {
                net += line.current_net();
                commission += line.current_commission();
                all_refunded &= line.refundable() == 0;
            }
            part.net = net;
            part.commission = commission;
            if all_refunded && matches!(part.status, PartStatus::Paid | PartStatus::Fulfilled) {
                part.status = PartStatus::Refunded;
            }
        }
        self.status = self.derived_status();
    }

    fn derived_status(&self) -> OrderStatus {
        let all = |statuses: &[PartStatus]| {
            self.parts
                .iter()
                .all(|part| statuses.contains(&part.status))
        };
        if self.cancelled_at.is_some() {
            OrderStatus::Cancelled
        } else if self.payment.is_none() {
            OrderStatus::Placed
        } else if self.refunded() == self.paid() {
            OrderStatus::Refunded
        } else if all(&[PartStatus::Released, PartStatus::Refunded]) {
            OrderStatus::Completed
        } else if self.refunded() > 0 {
            OrderStatus::PartiallyRefunded
        } else if all(&[
            PartStatus::Fulfilled,
            PartStatus::Released,
            PartStatus::Refunded,
        ]) {
            OrderStatus::Fulfilled
        } else {
            OrderStatus::Paid
        }
    }

    fn refuse_if_cancelled(&self, step: &str) -> Result<()> {
        if self.status == OrderStatus::Cancelled {
            return Err(Error::Conflict(format!(
                "order {} is cancelled; it cannot be {step}",
                self.id
            )));
        }
        Ok(())
    }

    fn mark_paid(&self, method: PaymentMethod, now: Timestamp) -> Order {
        let mut order = self.clone();
        order.payment = Some(Payment {
            method,
            amount: self.total,
            paid_at: now,
        });
        for part in &mut order.parts {
            part.status = PartStatus::Paid;
        }
        order.settle();
        order
    }
}

/// Places an order: validates the cart and freezes each line's commission and refund policy. Moves no money.
pub fn place(request: PlaceOrder, rules: &[CommissionRule], now: Timestamp) -> Result<Order> {
    if request.lines.is_empty() {
        return Err(Error::invalid(
            "lines",
            "an order needs at least one line; add an item to the cart",
        ));
    }
    if request.lines.len() > ORDER_LINES_MAX {
        return Err(Error::limit(
            "order_lines_max",
            format!(
                "an order has at most {ORDER_LINES_MAX} lines; split the cart into several orders"
            ),
        ));
    }
    let currency = request.lines[0].listing.currency;
    let mut lines: Vec<OrderLine> = Vec::with_capacity(request.lines.len());
    let mut parts: Vec<Part> = Vec::new();
    let mut total: i64 = 0;
    for input in request.lines {
        let listing = input.listing;
        if listing.currency != currency {
            return Err(Error::invalid(
                "currency",
                format!(
                    "listing {} is priced in {} but the order is in {currency}; \
                     an order is paid in one currency, so place a separate order",
                    listing.listing, listing.currency
                ),
            ));
        }
        if input.quantity == 0 || input.quantity > LINE_QUANTITY_MAX {
            return Err(Error::invalid(
                "quantity",
                format!(
                    "line {} orders {} units; order 1 to {LINE_QUANTITY_MAX}",
                    input.id, input.quantity
                ),
            ));
        }
        if listing.unit_price < 1 {
            return Err(Error::invalid(
                "unit_price",
                format!(
                    "listing {} has price {}; a listing sold through an order costs at least 1 minor unit",
                    listing.listing, listing.unit_price
                ),
            ));
        }
        if listing.title.trim().is_empty() {
            return Err(Error::invalid(
                "title",
                format!("listing {} has no title", listing.listing),
            ));
        }
        if lines.iter().any(|line| line.id == input.id) {
            return Err(Error::invalid(
                "line_id",
                format!(
                    "line {} appears twice; give every line its own id",
                    input.id
                ),
            ));
        }
        if lines.iter().any(|line| line.listing == listing.listing) {
            return Err(Error::invalid(
                "lines",
                format!(
                    "listing {} appears on two lines; order it once with a larger quantity",
                    listing.listing
                ),
            ));
        }
        let gross = listing
            .unit_price
            .checked_mul(i64::from(input.quantity))
            .ok_or_else(|| {
                Error::invalid(
                    "quantity",
                    format!("line {}'s gross overflows; order fewer units", input.id),
                )
            })?;
        total = add(total, gross, "total")?;
        let facts = LineFacts {
            listing: listing.listing,
            seller: listing.seller,
            category: listing.category.clone(),
            currency,
        };
        let commission = FrozenCommission::freeze(rules, &facts, gross);
        if !parts.iter().any(|part| part.seller == listing.seller) {
            parts.push(Part {
                seller: listing.seller,
                status: PartStatus::AwaitingPayment,
                net: 0,
                commission: 0,
                pending: 0,
                fulfilled_at: None,
                hold_until: None,
                released_at: None,
            });
        }
        lines.push(OrderLine {
            id: input.id,
            listing: listing.listing,
            seller: listing.seller,
            title: listing.title,
            category: listing.category,
            unit_price: listing.unit_price,
            quantity: input.quantity,
            gross,
            commission,
            refund_policy: input.refund_policy,
            refunded: 0,
            commission_reversed: 0,
        });
    }
    let mut order = Order {
        id: request.id,
        customer: request.customer,
        currency,
        lines,
        parts,
        total,
        status: OrderStatus::Placed,
        payment: None,
        placed_at: now,
        cancelled_at: None,
    };
    order.settle();
    Ok(order)
}

fn refuse_unless_placed(order: &Order, what: &str) -> Result<()> {
    order.refuse_if_cancelled(what)?;
    if let Some(payment) = &order.payment {
        return Err(Error::Conflict(format!(
            "order {} is already paid by payment {}; it cannot be {what}",
            order.id,
            payment.method.payment_id()
        )));
    }
    Ok(())
}

/// Pays a placed order from the customer's wallet: wallet → order clearing, the total.
///
/// The ledger refuses the plan when the wallet cannot pay; the order then stays placed.
/// `payment_id` is new for every attempt.
pub fn pay_from_wallet(
    order: &Order,
    payment_id: PaymentId,
    now: Timestamp,
) -> Result<(Order, Plan)> {
    refuse_unless_placed(order, "paid from the wallet")?;
    let plan = Plan::build(
        StepKey::new(&[&"payment", &payment_id, &"wallet"]),
        &[Leg::new(
            AccountPurpose::CustomerWallet {
                customer: order.customer,
            },
            order.clearing(),
            order.currency,
            order.total,
            TransferCode::WalletPayment,
        )],
        now,
    )?;
    Ok((
        order.mark_paid(PaymentMethod::Wallet { payment_id }, now),
        plan,
    ))
}

/// Records a card payment the provider confirmed captured: provider clearing → order clearing, the total.
///
/// Call it with the state read back from the provider, never with a notification's claims. A
/// second capture of the same payment answers [`Capture::AlreadyCaptured`]. A capture for an
/// order that is cancelled or paid by another payment is refused: the money is at the provider
/// and the application refunds it there.
pub fn capture(
    order: &Order,
    payment_id: PaymentId,
    provider: &str,
    amount: i64,
    now: Timestamp,
) -> Result<Capture> {
    if let Some(payment) = &order.payment
        && matches!(&payment.method, PaymentMethod::Card { payment_id: paid, .. } if *paid == payment_id)
    {
        return Ok(Capture::AlreadyCaptured);
    }
    if order.status == OrderStatus::Cancelled {
        return Err(Error::Conflict(format!(
            "order {} is cancelled; refund payment {payment_id} at the provider",
            order.id
        )));
    }
    if let Some(payment) = &order.payment {
        return Err(Error::Conflict(format!(
            "order {} is already paid by payment {}; refund payment {payment_id} at the provider",
            order.id,
            payment.method.payment_id()
        )));
    }
    if amount != order.total {
        return Err(Error::Unprocessable(format!(
            "payment {payment_id} captured {} but order {} totals {}; refund the payment at the provider",
            order.currency.format(amount),
            order.id,
            order.currency.format(order.total)
        )));
    }
    let plan = Plan::build(
        StepKey::new(&[&"payment", &payment_id, &"capture"]),
        &[Leg::new(
            AccountPurpose::ProviderClearing {
                provider: provider.to_owned(),
            },
            order.clearing(),
            order.currency,
            order.total,
            TransferCode::CardCapture,
        )],
        now,
    )?;
    let method = PaymentMethod::Card {
        payment_id,
        provider: provider.to_owned(),
    };
    Ok(Capture::Captured {
        order: Box::new(order.mark_paid(method, now)),
        plan,
    })
}

/// Fulfils a seller's paid part: order clearing → seller pending (its net), → commission revenue (its commission); the hold ends `hold_days` later.
pub fn fulfil(
    order: &Order,
    seller: OrgId,
    now: Timestamp,
    hold_days: u32,
) -> Result<(Order, Plan)> {
    order.refuse_if_cancelled("fulfilled")?;
    if hold_days > HOLD_DAYS_MAX {
        return Err(Error::invalid(
            "hold_days",
            format!("a hold lasts at most {HOLD_DAYS_MAX} days"),
        ));
    }
    let index = order.part_index(seller)?;
    let part = &order.parts[index];
    match part.status {
        PartStatus::Paid => {}
        PartStatus::AwaitingPayment => {
            return Err(Error::Conflict(format!(
                "order {} is not paid yet; fulfil it once the payment is captured",
                order.id
            )));
        }
        status => {
            return Err(Error::Conflict(format!(
                "seller {seller}'s part of order {} is {status:?}, not paid; only a paid part can be fulfilled",
                order.id
            )));
        }
    }
    let plan = Plan::build(
        StepKey::new(&[&"order", &order.id, &"fulfil", &seller]),
        &[
            Leg::new(
                order.clearing(),
                AccountPurpose::SellerPending { seller },
                order.currency,
                part.net,
                TransferCode::SellerEarning,
            ),
            Leg::new(
                order.clearing(),
                AccountPurpose::CommissionRevenue,
                order.currency,
                part.commission,
                TransferCode::Commission,
            ),
        ],
        now,
    )?;
    let mut next = order.clone();
    let part = &mut next.parts[index];
    part.status = PartStatus::Fulfilled;
    part.pending = part.net;
    part.fulfilled_at = Some(now);
    part.hold_until = Some(now.plus_seconds(i64::from(hold_days) * SECONDS_PER_DAY));
    next.settle();
    Ok((next, plan))
}

/// Releases a fulfilled part whose hold ended: seller pending → seller available, what of the part is still pending.
pub fn release(order: &Order, seller: OrgId, now: Timestamp) -> Result<(Order, Plan)> {
    order.refuse_if_cancelled("released")?;
    let index = order.part_index(seller)?;
    let part = &order.parts[index];
    if part.status != PartStatus::Fulfilled {
        return Err(Error::Conflict(format!(
            "seller {seller}'s part of order {} is {:?}; only a fulfilled part can be released",
            order.id, part.status
        )));
    }
    let hold_until = part
        .hold_until
        .expect("a fulfilled part has its hold's end");
    if now < hold_until {
        return Err(Error::Conflict(format!(
            "seller {seller}'s part of order {} is held until {hold_until}; release it then",
            order.id
        )));
    }
    let plan = Plan::build(
        StepKey::new(&[&"order", &order.id, &"release", &seller]),
        &[Leg::new(
            AccountPurpose::SellerPending { seller },
            AccountPurpose::SellerAvailable { seller },
            order.currency,
            part.pending,
            TransferCode::Release,
        )],
        now,
    )?;
    let mut next = order.clone();
    let part = &mut next.parts[index];
    part.status = PartStatus::Released;
    part.pending = 0;
    part.released_at = Some(now);
    next.settle();
    Ok((next, plan))
}

/// The commission a refund reverses, and the seller's share (see the module's remainder rules).
///
/// `fulfilled` says whether the line's part was fulfilled (or released) before this refund.
pub fn refund_split(line: &OrderLine, amount: i64, fulfilled: bool) -> (i64, i64) {
    let keep = fulfilled && line.refund_policy == RefundPolicy::KeepCommission;
    let reversal = if keep || line.gross == 0 {
        0
    } else {
        let refunded_after = i128::from(line.refunded) + i128::from(amount);
        let target = i128::from(line.commission.amount) * refunded_after / i128::from(line.gross);
        let target = i64::try_from(target).expect("at most the commission, an i64");
        (target - line.commission_reversed).max(0)
    };
    (reversal, amount - reversal)
}

/// Refunds an amount of one line (see the module's refund rules); returns the order, the refund's record and its plan.
pub fn refund(
    order: &Order,
    request: RefundRequest,
    funds: SellerFunds,
    now: Timestamp,
) -> Result<(Order, RefundRecord, Plan)> {
    order.refuse_if_cancelled("refunded")?;
    let (payer, payment) = order.payer()?;
    let line_index = order
        .lines
        .iter()
        .position(|line| line.id == request.line)
        .ok_or_else(|| Error::not_found(format!("line {} in order {}", request.line, order.id)))?;
    let line = &order.lines[line_index];
    if request.amount < 1 || request.amount > line.refundable() {
        return Err(Error::invalid(
            "amount",
            format!(
                "line {} can be refunded 1 to {} more (gross {}, refunded {}); ask for an amount in that range",
                line.id,
                line.refundable(),
                line.gross,
                line.refunded
            ),
        ));
    }
    let seller = line.seller;
    let part_index = order.part_index(seller)?;
    let part = &order.parts[part_index];
    let fulfilled = matches!(part.status, PartStatus::Fulfilled | PartStatus::Released);
    let (reversal, share) = refund_split(line, request.amount, fulfilled);
    let (mut from_pending, mut from_available, mut from_reserve) = (0, 0, 0);
    let mut legs = Vec::new();
    if fulfilled {
        let mut rest = share;
        if part.status == PartStatus::Fulfilled {
            from_pending = rest.min(part.pending);
            rest -= from_pending;
        }
        from_available = rest.min(funds.available.max(0));
        rest -= from_available;
        from_reserve = rest.min(funds.reserve.max(0));
        rest -= from_reserve;
        if rest > 0 {
            return Err(Error::Conflict(format!(
                "seller {seller} cannot cover {} of this refund (pending of the part, available and reserve are used up); \
                 top up the seller's reserve or refund less",
                order.currency.format(rest)
            )));
        }
        let clearing = order.clearing();
        for (source, amount) in [
            (AccountPurpose::SellerPending { seller }, from_pending),
            (AccountPurpose::SellerAvailable { seller }, from_available),
            (AccountPurpose::SellerReserve { seller }, from_reserve),
        ] {
            legs.push(Leg::new(
                source,
                clearing.clone(),
                order.currency,
                amount,
                TransferCode::SellerReversal,
            ));
        }
        legs.push(Leg::new(
            AccountPurpose::CommissionRevenue,
            clearing,
            order.currency,
            reversal,
            TransferCode::CommissionReversal,
        ));
    }
    legs.push(Leg::new(
        order.clearing(),
        payer,
        order.currency,
        request.amount,
        TransferCode::Refund,
    ));
    let plan = Plan::build(StepKey::new(&[&"refund", &request.id]), &legs, now)?;
    let mut next = order.clone();
    let line = &mut next.lines[line_index];
    line.refunded = add(line.refunded, request.amount, "amount")?;
    line.commission_reversed = add(line.commission_reversed, reversal, "amount")?;
    let part = &mut next.parts[part_index];
    part.pending = sub(part.pending, from_pending, "amount")?;
    next.settle();
    let record = RefundRecord {
        id: request.id,
        order: order.id,
        line: request.line,
        seller,
        amount: request.amount,
        payment,
        commission_reversed: reversal,
        seller_share: share,
        from_pending,
        from_available,
        from_reserve,
        reason: request.reason,
        refunded_at: now,
    };
    Ok((next, record, plan))
}

/// Cancels an order: a placed one at once (no money moved), a paid one whose parts are all unfulfilled by refunding what remains of every line.
///
/// Returns the cancelled order, the amount that goes back to the payer (the application refunds
/// a card payment at the provider), and the plan: order clearing → payer.
pub fn cancel(order: &Order, now: Timestamp) -> Result<(Order, i64, Plan)> {
    order.refuse_if_cancelled("cancelled again")?;
    let step = StepKey::new(&[&"order", &order.id, &"cancel"]);
    let mut next = order.clone();
    next.cancelled_at = Some(now);
    for part in &mut next.parts {
        part.status = PartStatus::Cancelled;
    }
    if order.payment.is_none() {
        next.settle();
        return Ok((next, 0, Plan::empty(step)));
    }
    // A part fulfilled once moved money to the seller and commission revenue, even if it was
    // refunded since: only refunds can undo that, line by line.
    if let Some(part) = order.parts.iter().find(|part| part.fulfilled_at.is_some()) {
        return Err(Error::Conflict(format!(
            "seller {}'s part of order {} was fulfilled; refund its lines instead of cancelling",
            part.seller, order.id
        )));
    }
    let (payer, _) = order.payer()?;
    let remaining = order.paid() - order.refunded();
    for line in &mut next.lines {
        line.refunded = line.gross;
        line.commission_reversed = line.commission.amount;
    }
    next.settle();
    let plan = Plan::build(
        step,
        &[Leg::new(
            order.clearing(),
            payer,
            order.currency,
            remaining,
            TransferCode::Refund,
        )],
        now,
    )?;
    Ok((next, remaining, plan))
}
