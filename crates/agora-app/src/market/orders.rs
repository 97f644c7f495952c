//! Orders end to end: the operator's commission rules and seller settings, wallets, checkout
//! with a card (through the payment provider) or the wallet, the provider's notifications,
//! fulfilment, release after the hold, refunds, cancellation and payouts.
//!
//! Every money step goes through [`App::carry_out`] under the marketplace lock; what is read to
//! decide a step (the order, the seller's balances) is read under the same lock, so no other
//! step can change it in between.

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::Currency;
use agora_domain::listing::{ListingKind, ListingStatus};
use agora_domain::{
    CommissionRuleId, Error, ListingId, OrderId, OrderLineId, OrgId, PaymentId, PayoutId, RefundId,
    Result, SlotId, Timestamp, UserId,
};
use agora_market::commission::{CommissionRule, CommissionTerms, RuleScope};
use agora_market::order::{
    self, Capture, LineInput, ListingFacts, Order, OrderStatus, PartStatus, PaymentMethod,
    PlaceOrder, RefundRecord, RefundRequest, SellerFunds,
};
use agora_market::payout::{self, PayoutRecord, PayoutRequest, SellerSettings};
use agora_market::sandbox::Notification;
use agora_market::{AccountPurpose, Plan, StepKey, account_id, wallet};
use serde::{Deserialize, Serialize};

use super::provider::{PaymentProvider, SandboxProvider};
use super::{Doc, Step, StepEvent};
use crate::{App, Call, Page};

/// The payment provider built into Agora: it authorizes, captures and refunds, and notifies late,
/// twice and out of order, as real providers do.
pub const SANDBOX_PROVIDER: &str = "sandbox";

const ORDER: &str = "order";
const RULE: &str = "commission_rule";
const SETTINGS: &str = "seller_settings";
const REFUND: &str = "refund";
const PAYOUT: &str = "payout";
/// Rules are few: all of them are read for every order.
const RULES_MAX: u32 = 10_000;

/// A commission rule to set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCommissionRule {
    /// What the rule covers: `{"scope":"default"}`, `{"scope":"category","category":"…"}`,
    /// `{"scope":"seller","seller":"org_…"}`, `{"scope":"seller_category",…}`, `{"scope":"listing","listing":"lst_…"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub scope: RuleScope,
    /// Only lines in this currency; any currency when absent (then `fixed`, `floor` and `cap` must be 0/absent).
    pub currency: Option<Currency>,
    /// The percentage in basis points: 500 is 5%.
    pub rate_bps: u32,
    /// A fixed amount added per line, in minor units.
    #[serde(default)]
    pub fixed: i64,
    /// The least commission per line, in minor units.
    #[serde(default)]
    pub floor: i64,
    /// The most commission per line, in minor units.
    pub cap: Option<i64>,
}

/// A line of a cart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    pub listing_id: ListingId,
    /// Units of a product (at least 1); 1 for a service.
    pub quantity: u32,
    /// For a service: the slot to book.
    pub slot_id: Option<SlotId>,
}

/// How the customer pays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "method", deny_unknown_fields)]
pub enum PayWith {
    /// A card at the sandbox provider: `tok_visa` and `tok_mastercard` pay; `tok_declined` and
    /// `tok_insufficient_funds` are refused. The order is paid when the provider's capture
    /// notification arrives (late, maybe twice).
    Card { token: String },
    /// The customer's wallet: paid at once, or refused if the wallet cannot cover the total.
    Wallet,
}

/// A checkout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub lines: Vec<CartLine>,
    pub pay_with: PayWith,
    /// The total, in minor units, the customer was shown. When set, the checkout is refused
    /// (409, nothing kept) if the listings' prices now make another total, so that what is paid is
    /// always what was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_total: Option<i64>,
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[serde(flatten)]
    pub order: Order,
    /// The total in the currency's usual notation.
    pub total_formatted: String,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        Self {
            total_formatted: order.currency.format(order.total),
            order,
        }
    }
}

/// A refund to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    pub line_id: OrderLineId,
    /// In minor units; at most what is left of the line.
    pub amount: i64,
    pub reason: String,
}

/// A payout to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPayout {
    pub currency: Currency,
    /// In minor units; everything available when absent.
    pub amount: Option<i64>,
    /// What the seller will see on the bank transfer.
    pub reference: String,
}

/// A seller's money in one currency, as the ledger holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SellerBalance {
    pub seller: OrgId,
    pub currency: Currency,
    /// Earned, within the hold period.
    pub pending: i64,
    /// Payable now.
    pub available: i64,
    /// Held back by the operator.
    pub reserve: i64,
    /// What was paid out so far.
    pub paid_out: i64,
    pub pending_formatted: String,
    pub available_formatted: String,
}

/// A customer's wallet in one currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletView {
    pub customer: UserId,
    pub currency: Currency,
    pub balance: i64,
    pub formatted: String,
}

/// The operator's commission revenue in one currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevenueView {
    pub currency: Currency,
    pub commission: i64,
    pub formatted: String,
}

/// What a payout run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutRun {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub payouts: Vec<PayoutRecord>,
    /// Sellers whose payout was refused, and why.
    pub refused: Vec<String>,
}

impl App {
    // ---------------------------------------------------------------------------------------
    // The operator's rules
    // ---------------------------------------------------------------------------------------

    /// Sets a commission rule (the operator). It applies to orders placed from now on; lines
    /// already sold keep the terms frozen on them.
    pub async fn set_commission_rule(
        &self,
        call: &Call<'_>,
        input: NewCommissionRule,
    ) -> Result<CommissionRule> {
        let resource = Resource::Instance;
        self.authorize(call, Action::MarketOperate, &resource, &Context::default())
            .await?;
        let rule = CommissionRule {
            id: CommissionRuleId::new(),
            scope: input.scope,
            currency: input.currency,
            terms: CommissionTerms {
                rate_bps: input.rate_bps,
                fixed: input.fixed,
                floor: input.floor,
                cap: input.cap,
            },
        };
        let result = rule.validate();
        self.audited(call, Action::MarketOperate, &resource, result)
            .await?;
        let _guard = self.market_lock().await?;
        let detail = serde_json::json!({ "rule": rule });
        let step = Step::new(
            "commission_rule",
            rule.id,
            Plan::empty(StepKey::new(&[&"commission-rule", &rule.id])),
            Action::MarketOperate,
            &resource,
            detail.clone(),
        )
        .doc(Doc::new(RULE, rule.id, &rule)?.status("active"))
        .event(StepEvent::new("commission.rule_set", rule.id, None, detail));
        self.carry_out(call, step).await?;
        Ok(rule)
    }

    /// Every commission rule in force: public, so that sellers know the terms before they sell.
    pub async fn commission_rules(&self, call: &Call<'_>) -> Result<Vec<CommissionRule>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        self.load_rules().await
    }

    async fn load_rules(&self) -> Result<Vec<CommissionRule>> {
        self.store()
            .documents(RULE, None, None, RULES_MAX)
            .await?
            .iter()
            .map(|doc| parse(&doc.body, RULE))
            .collect()
    }

    /// Sets a seller's hold period, payout schedule and minimum, refund policy and net debit cap (the operator).
    pub async fn set_seller_settings(
        &self,
        call: &Call<'_>,
        seller: OrgId,
        settings: SellerSettings,
    ) -> Result<SellerSettings> {
        let resource = Resource::Instance;
        self.authorize(call, Action::MarketOperate, &resource, &Context::default())
            .await?;
        let result = async {
            settings.validate()?;
            self.org_exists(seller).await
        }
        .await;
        self.audited(call, Action::MarketOperate, &resource, result)
            .await?;
        let _guard = self.market_lock().await?;
        let detail = serde_json::json!({ "seller": seller, "settings": settings });
        let key = StepKey::new(&[&"seller-settings", &seller, &agora_domain::EventId::new()]);
        let step = Step::new(
            "seller_settings",
            seller,
            Plan::empty(key),
            Action::MarketOperate,
            &Resource::Organisation(seller),
            detail.clone(),
        )
        .doc(Doc::new(SETTINGS, seller, &settings)?.owner(seller))
        .event(StepEvent::new(
            "seller.settings_set",
            seller,
            Some(seller),
            detail,
        ));
        self.carry_out(call, step).await?;
        Ok(settings)
    }

    /// A seller's settings (its own, or the operator's view); the defaults until the operator sets them.
    pub async fn seller_settings(&self, call: &Call<'_>, seller: OrgId) -> Result<SellerSettings> {
        self.authorize(
            call,
            Action::SellerRead,
            &Resource::Organisation(seller),
            &Context::default(),
        )
        .await?;
        self.load_settings(seller).await
    }

    async fn load_settings(&self, seller: OrgId) -> Result<SellerSettings> {
        match self.store().document(SETTINGS, &seller.to_string()).await? {
            Some(doc) => parse(&doc.body, SETTINGS),
            None => Ok(SellerSettings::default()),
        }
    }

    /// Refuses money moves for a person who has no account here (an operator's typo would
    /// otherwise fund a wallet nobody can spend).
    async fn customer_exists(&self, customer: UserId) -> Result<()> {
        self.store()
            .user(customer)
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("customer {customer}: no such user")))
    }

    async fn org_exists(&self, org_id: OrgId) -> Result<()> {
        self.store()
            .org(org_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("organisation {org_id}")))
    }

    // ---------------------------------------------------------------------------------------
    // Wallets
    // ---------------------------------------------------------------------------------------

    /// Adds money to a customer's wallet: the operator's cash desk, or the customer with a
    /// sandbox card (authorized and captured at once). A retry with the call's idempotency key
    /// answers the first top-up instead of adding the money again.
    pub async fn top_up_wallet(
        &self,
        call: &Call<'_>,
        customer: UserId,
        currency: Currency,
        amount: i64,
        card_token: Option<&str>,
    ) -> Result<WalletView> {
        let request = serde_json::json!({ "customer": customer, "currency": currency, "amount": amount, "card_token": card_token });
        self.once(
            call,
            Action::WalletTopUp,
            &request,
            self.top_up_wallet_now(call, customer, currency, amount, card_token),
        )
        .await
    }

    async fn top_up_wallet_now(
        &self,
        call: &Call<'_>,
        customer: UserId,
        currency: Currency,
        amount: i64,
        card_token: Option<&str>,
    ) -> Result<WalletView> {
        let resource = Resource::Customer(customer);
        self.authorize(call, Action::WalletTopUp, &resource, &Context::default())
            .await?;
        let _guard = self.market_lock().await?;
        let payment_id = PaymentId::new();
        let now = Timestamp::now();
        let result = async {
            self.customer_exists(customer).await?;
            if let Some(token) = card_token {
                let provider = SandboxProvider;
                provider
                    .authorize(self, payment_id, currency, amount, token, now)
                    .await?;
                provider.capture(self, payment_id, now).await?;
            }
            wallet::top_up(customer, currency, amount, payment_id, now)
        }
        .await;
        let plan = self
            .audited(call, Action::WalletTopUp, &resource, result)
            .await?;
        let detail = serde_json::json!({ "customer": customer, "amount": amount, "currency": currency, "payment_id": payment_id });
        let step = Step::new(
            "wallet_top_up",
            customer,
            plan,
            Action::WalletTopUp,
            &resource,
            detail.clone(),
        )
        .event(StepEvent::new("wallet.topped_up", customer, None, detail));
        self.carry_out(call, step).await?;
        self.wallet_view(customer, currency).await
    }

    /// A customer's wallet balance in one currency.
    pub async fn wallet(
        &self,
        call: &Call<'_>,
        customer: UserId,
        currency: Currency,
    ) -> Result<WalletView> {
        self.authorize(
            call,
            Action::WalletRead,
            &Resource::Customer(customer),
            &Context::default(),
        )
        .await?;
        self.wallet_view(customer, currency).await
    }

    async fn wallet_view(&self, customer: UserId, currency: Currency) -> Result<WalletView> {
        let balance = self
            .credit_balance(&AccountPurpose::CustomerWallet { customer }, currency)
            .await?;
        Ok(WalletView {
            customer,
            currency,
            balance,
            formatted: currency.format(balance),
        })
    }

    /// An account's posted credits minus posted debits; 0 for an account not created yet.
    pub(crate) async fn credit_balance(
        &self,
        purpose: &AccountPurpose,
        currency: Currency,
    ) -> Result<i64> {
        let account = self
            .ledger()
            .await?
            .account(account_id(purpose, currency))
            .await?;
        Ok(account.map_or(0, |account| account.credit_balance()))
    }

    // ---------------------------------------------------------------------------------------
    // Checkout
    // ---------------------------------------------------------------------------------------

    /// Places an order for `customer`: one payment, split across every seller of the cart.
    ///
    /// With the wallet, the order is paid before this answers, or refused (and not kept) if the
    /// wallet cannot pay. With a card, the provider authorizes and captures now and the order
    /// becomes paid when its capture notification arrives; a declined card refuses the order.
    ///
    /// A retry with the call's idempotency key answers the first order instead of placing another.
    pub async fn place_order(
        &self,
        call: &Call<'_>,
        customer: UserId,
        input: NewOrder,
    ) -> Result<OrderView> {
        self.place_order_as(call, customer, input, OrderId::new())
            .await
    }

    /// [`App::place_order`] under an id chosen beforehand, so that a caller that records the id
    /// first can later tell whether the order was placed.
    pub(crate) async fn place_order_as(
        &self,
        call: &Call<'_>,
        customer: UserId,
        input: NewOrder,
        order_id: OrderId,
    ) -> Result<OrderView> {
        let request = serde_json::json!({ "customer": customer, "order": &input });
        self.once(
            call,
            Action::OrderPlace,
            &request,
            self.place_order_now(call, customer, input, order_id),
        )
        .await
    }

    async fn place_order_now(
        &self,
        call: &Call<'_>,
        customer: UserId,
        input: NewOrder,
        order_id: OrderId,
    ) -> Result<OrderView> {
        let resource = Resource::Customer(customer);
        self.authorize(call, Action::OrderPlace, &resource, &Context::default())
            .await?;
        let _guard = self.market_lock().await?;
        let now = Timestamp::now();
        let prepared = self.prepare_order(order_id, customer, &input, now).await;
        let order = self
            .audited(call, Action::OrderPlace, &resource, prepared)
            .await?;
        let sellers: Vec<OrgId> = order.parts.iter().map(|part| part.seller).collect();
        let order_resource = Resource::Order {
            id: order.id,
            customer,
            sellers: sellers.clone(),
        };
        let reserved = self.reserve_cart(order.id, &input.lines).await;
        self.audited(call, Action::OrderPlace, &resource, reserved)
            .await?;
        let paid = self
            .pay_for_order(
                call,
                &input,
                order,
                sellers,
                &resource,
                &order_resource,
                now,
            )
            .await;
        if paid.is_err() {
            self.unreserve_cart(order_id, &input.lines).await?;
        }
        paid
    }

    /// Pays a placed order (reserved already) and stores it.
    #[allow(clippy::too_many_arguments)]
    async fn pay_for_order(
        &self,
        call: &Call<'_>,
        input: &NewOrder,
        order: Order,
        sellers: Vec<OrgId>,
        resource: &Resource,
        order_resource: &Resource,
        now: Timestamp,
    ) -> Result<OrderView> {
        let cart = Doc::new("order_cart", order.id, &input.lines)?.owner(order.id);
        match &input.pay_with {
            PayWith::Wallet => {
                let payment_id = PaymentId::new();
                let (paid, plan) = order::pay_from_wallet(&order, payment_id, now)?;
                let detail = serde_json::json!({ "order": order.id, "total": order.total, "currency": order.currency, "paid_with": "wallet" });
                let step = Step::new(
                    "order_paid_from_wallet",
                    order.id,
                    plan,
                    Action::OrderPlace,
                    order_resource,
                    detail.clone(),
                )
                .doc(order_doc(&paid)?)
                .doc(cart)
                .order_sellers(order.id, sellers.clone())
                .event(StepEvent::new(
                    "order.placed",
                    order.id,
                    None,
                    detail.clone(),
                ))
                .event(StepEvent::new("order.paid", order.id, None, detail));
                let step = with_seller_events(step, &paid, "order.placed");
                self.carry_out(call, step)
                    .await
                    .map_err(|error| match error {
                        Error::Unprocessable(reason)
                            if reason.contains("exceeds_credits")
                                || reason.contains("debits would exceed") =>
                        {
                            Error::Unprocessable(format!(
                                "the wallet cannot pay {}: top it up or pay by card ({reason})",
                                order.currency.format(order.total)
                            ))
                        }
                        other => other,
                    })?;
                self.accrue_points_for(call, &paid).await;
                Ok(paid.into())
            }
            PayWith::Card { token } => {
                let payment_id = PaymentId::new();
                let provider = SandboxProvider;
                let authorized = provider
                    .authorize(self, payment_id, order.currency, order.total, token, now)
                    .await;
                self.audited(call, Action::OrderPlace, resource, authorized)
                    .await?;
                provider.capture(self, payment_id, now).await?;
                let mut placed = order.clone();
                placed.payment = None;
                let detail = serde_json::json!({ "order": order.id, "total": order.total, "currency": order.currency, "paid_with": "card", "payment_id": payment_id, "provider": SANDBOX_PROVIDER });
                let step = Step::new(
                    "order_placed",
                    order.id,
                    Plan::empty(StepKey::new(&[&"order", &order.id, &"place"])),
                    Action::OrderPlace,
                    order_resource,
                    detail.clone(),
                )
                .doc(order_doc(&placed)?)
                .doc(cart)
                .doc(Doc::new("order_payment", payment_id, &order.id)?)
                .order_sellers(order.id, sellers)
                .event(StepEvent::new("order.placed", order.id, None, detail));
                let step = with_seller_events(step, &placed, "order.placed");
                self.carry_out(call, step).await?;
                Ok(placed.into())
            }
        }
    }

    /// Grants the points the operator's per-amount rules give for a paid order. The order is
    /// paid whatever happens here: a failure is logged, and the accrual is keyed by the order, so
    /// it never counts twice.
    async fn accrue_points_for(&self, call: &Call<'_>, order: &Order) {
        let reference = format!("order:{}", order.id);
        if let Err(error) = self
            .accrue_for_purchase(
                call,
                order.customer,
                &reference,
                order.total,
                order.currency,
            )
            .await
        {
            tracing::warn!(order = %order.id, %error, "could not grant the points of a paid order");
        }
    }

    /// Reads the listings of a cart and builds the order (no money moves, nothing is stored).
    async fn prepare_order(
        &self,
        order_id: OrderId,
        customer: UserId,
        input: &NewOrder,
        now: Timestamp,
    ) -> Result<Order> {
        self.customer_exists(customer).await?;
        let rules = self.load_rules().await?;
        let mut lines = Vec::with_capacity(input.lines.len());
        for line in &input.lines {
            let facts = self.listing_facts(line).await?;
            let settings = self.load_settings(facts.seller).await?;
            lines.push(LineInput {
                id: OrderLineId::new(),
                listing: facts,
                quantity: line.quantity,
                refund_policy: settings.refund_policy,
            });
        }
        let order = order::place(
            PlaceOrder {
                id: order_id,
                customer,
                lines,
            },
            &rules,
            now,
        )?;
        match input.expected_total {
            Some(expected) if expected != order.total => Err(Error::Conflict(format!(
                "the prices changed: this order now totals {}, not the {} confirmed; nothing was paid",
                order.currency.format(order.total),
                order.currency.format(expected)
            ))),
            _ => Ok(order),
        }
    }

    // ---------------------------------------------------------------------------------------
    // The payment provider
    // ---------------------------------------------------------------------------------------

    /// Delivers the sandbox provider's notifications due at `now` (late, duplicated, reordered)
    /// and handles each. The server calls it periodically; tests call it with a later `now`.
    pub async fn deliver_payment_notifications(&self, now: Timestamp) -> Result<usize> {
        let due = {
            let _guard = self.market_lock().await?;
            SandboxProvider.due_notifications(self, now).await?
        };
        for notification in &due {
            self.payment_notification(SandboxProvider.name(), notification)
                .await?;
        }
        Ok(due.len())
    }

    /// Handles one notification from a provider. It is only a hint: the payment's state is read
    /// back from the provider and acted on idempotently, so a duplicate, late or reordered
    /// notification can neither count twice nor be missed.
    pub async fn payment_notification(
        &self,
        provider: &str,
        notification: &Notification,
    ) -> Result<()> {
        let system = agora_domain::Actor::system();
        let call = Call::new(&system, agora_domain::RequestId::new());
        let _guard = self.market_lock().await?;
        let mut tx = self.store().write().await?;
        let first = tx
            .note_provider_event(provider, &notification.event_id, Timestamp::now())
            .await?;
        tx.commit().await?;
        if !first {
            tracing::debug!(event = %notification.event_id, "a provider notification arrived again; ignored");
            return Ok(());
        }
        let Some(payment) = SandboxProvider
            .payment(self, notification.payment_id)
            .await?
        else {
            return Err(Error::not_found(format!(
                "payment {} at {provider}",
                notification.payment_id
            )));
        };
        if !payment.captured {
            return Ok(());
        }
        let Some(link) = self
            .store()
            .document("order_payment", &payment.id.to_string())
            .await?
        else {
            // A wallet top-up by card: its money moved when it was made.
            return Ok(());
        };
        let order_id: OrderId = parse(&link.body, "order_payment")?;
        let order = self.load_order(order_id).await?;
        let now = Timestamp::now();
        match order::capture(&order, payment.id, provider, payment.captured_amount, now)? {
            Capture::AlreadyCaptured => Ok(()),
            Capture::Captured { order: paid, plan } => {
                let sellers: Vec<OrgId> = paid.parts.iter().map(|part| part.seller).collect();
                let resource = Resource::Order {
                    id: paid.id,
                    customer: paid.customer,
                    sellers,
                };
                let detail = serde_json::json!({ "order": paid.id, "payment_id": payment.id, "provider": provider, "amount": payment.captured_amount, "notification": notification.event_id });
                let step = Step::new(
                    "order_captured",
                    paid.id,
                    plan,
                    Action::OrderPlace,
                    &resource,
                    detail.clone(),
                )
                .doc(order_doc(&paid)?)
                .event(StepEvent::new("order.paid", paid.id, None, detail));
                let step = with_seller_events(step, &paid, "order.paid");
                self.carry_out(&call, step).await?;
                self.accrue_points_for(&call, &paid).await;
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Reading orders
    // ---------------------------------------------------------------------------------------

    async fn load_order(&self, order_id: OrderId) -> Result<Order> {
        let doc = self
            .store()
            .document(ORDER, &order_id.to_string())
            .await?
            .ok_or_else(|| Error::not_found(format!("order {order_id}")))?;
        parse(&doc.body, ORDER)
    }

    /// Whether the order `order_id` was placed and paid.
    pub(crate) async fn paid_order_exists(&self, order_id: OrderId) -> Result<bool> {
        match self.store().document(ORDER, &order_id.to_string()).await? {
            Some(doc) => Ok(parse::<Order>(&doc.body, ORDER)?.payment.is_some()),
            None => Ok(false),
        }
    }

    /// Loads an order and authorizes `action` on it; a refusal is audited.
    async fn authorized_order(
        &self,
        call: &Call<'_>,
        action: Action,
        order_id: OrderId,
    ) -> Result<(Order, Resource)> {
        let order = self.load_order(order_id).await?;
        let resource = order_resource(&order);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        Ok((order, resource))
    }

    /// Authorizes `action` on one seller's part of an order: the order as a resource whose only
    /// seller is `seller`, so that a seller on a shared order can act on its own part and never
    /// on another seller's (the operator's admins act on any).
    async fn authorize_part(
        &self,
        call: &Call<'_>,
        action: Action,
        order: &Order,
        seller: OrgId,
    ) -> Result<()> {
        let part = Resource::Order {
            id: order.id,
            customer: order.customer,
            sellers: vec![seller],
        };
        self.authorize(call, action, &part, &Context::default())
            .await
    }

    /// One order: its customer, its sellers, and the operator read it.
    pub async fn order(&self, call: &Call<'_>, order_id: OrderId) -> Result<OrderView> {
        let (order, _) = self
            .authorized_order(call, Action::OrderRead, order_id)
            .await?;
        Ok(order.into())
    }

    /// A customer's orders, in id order (placing order).
    pub async fn customer_orders(
        &self,
        call: &Call<'_>,
        customer: UserId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<OrderView>> {
        self.authorize(
            call,
            Action::WalletRead,
            &Resource::Customer(customer),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let docs = self
            .store()
            .documents(ORDER, Some(&customer.to_string()), cursor, limit + 1)
            .await?;
        let orders = docs
            .iter()
            .map(|doc| parse::<Order>(&doc.body, ORDER).map(OrderView::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(orders, limit, |view| {
            view.order.id.to_string()
        }))
    }

    /// The orders a seller sells on, in id order.
    pub async fn seller_orders(
        &self,
        call: &Call<'_>,
        seller: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<OrderView>> {
        self.authorize(
            call,
            Action::SellerRead,
            &Resource::Organisation(seller),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let docs = self
            .store()
            .seller_orders(seller, cursor, limit + 1)
            .await?;
        let orders = docs
            .iter()
            .map(|doc| parse::<Order>(&doc.body, ORDER).map(OrderView::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(orders, limit, |view| {
            view.order.id.to_string()
        }))
    }

    // ---------------------------------------------------------------------------------------
    // Fulfilment, release, refunds, cancellation
    // ---------------------------------------------------------------------------------------

    /// A seller fulfils its part of a paid order: its net goes to the seller's pending funds and
    /// the commission to the operator; the hold period starts.
    pub async fn fulfil_order(
        &self,
        call: &Call<'_>,
        order_id: OrderId,
        seller: OrgId,
    ) -> Result<OrderView> {
        let (order, resource) = self
            .authorized_order(call, Action::OrderFulfil, order_id)
            .await?;
        if order.part(seller).is_none() {
            return Err(Error::not_found(format!(
                "seller {seller}'s part of order {order_id}"
            )));
        }
        self.authorize_part(call, Action::OrderFulfil, &order, seller)
            .await?;
        let _guard = self.market_lock().await?;
        // Read again under the lock: a step may have changed it since.
        let order = self.load_order(order_id).await?;
        let result = async {
            let settings = self.load_settings(seller).await?;
            order::fulfil(&order, seller, Timestamp::now(), settings.hold_days)
        }
        .await;
        let (next, plan) = self
            .audited(call, Action::OrderFulfil, &resource, result)
            .await?;
        let part = next.part(seller).cloned();
        let detail = serde_json::json!({ "order": order_id, "seller": seller, "part": part });
        let step = Step::new(
            "order_fulfilled",
            order_id,
            plan,
            Action::OrderFulfil,
            &resource,
            detail.clone(),
        )
        .doc(order_doc(&next)?)
        .event(StepEvent::new(
            "order.fulfilled",
            order_id,
            Some(seller),
            detail,
        ));
        self.carry_out(call, step).await?;
        Ok(next.into())
    }

    /// Releases every fulfilled part whose hold ended by `now` (the operator; the server runs it
    /// periodically): the seller's pending funds become available. Returns the parts released.
    pub async fn release_due(&self, call: &Call<'_>, now: Timestamp) -> Result<usize> {
        let resource = Resource::Instance;
        self.authorize(call, Action::MarketOperate, &resource, &Context::default())
            .await?;
        let _guard = self.market_lock().await?;
        let mut released = 0;
        loop {
            let due = self
                .store()
                .documents_due(ORDER, now.as_micros(), 100)
                .await?;
            if due.is_empty() {
                return Ok(released);
            }
            for doc in due {
                let mut order: Order = parse(&doc.body, ORDER)?;
                let ready: Vec<OrgId> = order
                    .parts
                    .iter()
                    .filter(|part| {
                        part.status == PartStatus::Fulfilled
                            && part.hold_until.is_some_and(|until| until <= now)
                    })
                    .map(|part| part.seller)
                    .collect();
                for seller in ready {
                    let (next, plan) = order::release(&order, seller, now)?;
                    let order_resource = order_resource(&next);
                    let detail = serde_json::json!({ "order": next.id, "seller": seller });
                    let mut step = Step::new(
                        "order_released",
                        next.id,
                        plan,
                        Action::MarketOperate,
                        &order_resource,
                        detail.clone(),
                    )
                    .doc(order_doc(&next)?)
                    .event(StepEvent::new(
                        "order.released",
                        next.id,
                        Some(seller),
                        detail.clone(),
                    ));
                    if next.status == OrderStatus::Completed {
                        step = step.event(StepEvent::new("order.completed", next.id, None, detail));
                    }
                    self.carry_out(call, step).await?;
                    order = next;
                    released += 1;
                }
                if order_doc(&order)?
                    .sort_key
                    .is_some_and(|key| key <= now.as_micros())
                {
                    // Nothing releasable is left due, or the loop would not end.
                    return Err(Error::Internal(format!(
                        "order {} stays due for release after releasing it",
                        order.id
                    )));
                }
            }
        }
    }

    /// Refunds an amount of one line: the seller's share and the commission are reversed as the
    /// line's frozen refund policy says, and the money goes back to the card or the wallet. A
    /// retry with the call's idempotency key answers the first refund instead of refunding again.
    pub async fn refund_order(
        &self,
        call: &Call<'_>,
        order_id: OrderId,
        input: NewRefund,
    ) -> Result<RefundRecord> {
        let request = serde_json::json!({ "order": order_id, "refund": &input });
        self.once(
            call,
            Action::OrderRefund,
            &request,
            self.refund_order_now(call, order_id, input),
        )
        .await
    }

    async fn refund_order_now(
        &self,
        call: &Call<'_>,
        order_id: OrderId,
        input: NewRefund,
    ) -> Result<RefundRecord> {
        let (order, resource) = self
            .authorized_order(call, Action::OrderRefund, order_id)
            .await?;
        // A seller refunds its own lines only: the money comes from its funds.
        let line_seller = order
            .lines
            .iter()
            .find(|line| line.id == input.line_id)
            .map(|line| line.seller)
            .ok_or_else(|| {
                Error::not_found(format!("line {} of order {order_id}", input.line_id))
            })?;
        self.authorize_part(call, Action::OrderRefund, &order, line_seller)
            .await?;
        let _guard = self.market_lock().await?;
        let order = self.load_order(order_id).await?;
        let now = Timestamp::now();
        let result = async {
            let line = order
                .lines
                .iter()
                .find(|line| line.id == input.line_id)
                .ok_or_else(|| {
                    Error::not_found(format!("line {} of order {order_id}", input.line_id))
                })?;
            let funds = SellerFunds {
                available: self
                    .credit_balance(
                        &AccountPurpose::SellerAvailable {
                            seller: line.seller,
                        },
                        order.currency,
                    )
                    .await?,
                reserve: self
                    .credit_balance(
                        &AccountPurpose::SellerReserve {
                            seller: line.seller,
                        },
                        order.currency,
                    )
                    .await?,
            };
            order::refund(
                &order,
                RefundRequest {
                    id: RefundId::new(),
                    line: input.line_id,
                    amount: input.amount,
                    reason: input.reason.clone(),
                },
                funds,
                now,
            )
        }
        .await;
        let (next, record, plan) = self
            .audited(call, Action::OrderRefund, &resource, result)
            .await?;
        let detail = serde_json::json!({ "refund": record });
        let step = Step::new(
            "order_refunded",
            order_id,
            plan,
            Action::OrderRefund,
            &resource,
            detail.clone(),
        )
        .doc(order_doc(&next)?)
        .doc(Doc::new(REFUND, record.id, &record)?.owner(order_id))
        .event(StepEvent::new(
            "order.refunded",
            order_id,
            Some(record.seller),
            detail,
        ));
        self.carry_out(call, step).await?;
        if let PaymentMethod::Card { payment_id, .. } = &record.payment {
            // The ledger holds the refund; the provider now sends the money back to the card.
            SandboxProvider
                .refund(self, *payment_id, record.id, record.amount, now)
                .await?;
        }
        Ok(record)
    }

    /// Cancels an order: a placed one at once; a paid one with nothing fulfilled by refunding it
    /// whole. The customer cancels their own; sellers and the operator cancel any they may refund.
    pub async fn cancel_order(&self, call: &Call<'_>, order_id: OrderId) -> Result<OrderView> {
        let order = self.load_order(order_id).await?;
        let resource = order_resource(&order);
        let by_customer = call.actor.user_id == Some(order.customer);
        let (action, authorized_on) = if by_customer {
            (Action::OrderPlace, Resource::Customer(order.customer))
        } else {
            (Action::OrderRefund, resource.clone())
        };
        self.authorize(call, action, &authorized_on, &Context::default())
            .await?;
        if !by_customer {
            // Cancelling refunds every part: a seller may cancel only an order that is all its own.
            for part in &order.parts {
                self.authorize_part(call, action, &order, part.seller)
                    .await?;
            }
        }
        let _guard = self.market_lock().await?;
        let order = self.load_order(order_id).await?;
        let now = Timestamp::now();
        let result = order::cancel(&order, now);
        let (next, refunded, plan) = self.audited(call, action, &resource, result).await?;
        let detail = serde_json::json!({ "order": order_id, "refunded": refunded });
        let step = Step::new(
            "order_cancelled",
            order_id,
            plan,
            action,
            &resource,
            detail.clone(),
        )
        .doc(order_doc(&next)?)
        .event(StepEvent::new("order.cancelled", order_id, None, detail));
        let step = with_seller_events(step, &next, "order.cancelled");
        self.carry_out(call, step).await?;
        if refunded > 0
            && let Some(payment) = &order.payment
            && let PaymentMethod::Card { payment_id, .. } = &payment.method
        {
            SandboxProvider
                .refund(self, *payment_id, RefundId::new(), refunded, now)
                .await?;
        }
        if let Some(doc) = self
            .store()
            .document("order_cart", &order_id.to_string())
            .await?
        {
            let cart: Vec<CartLine> = parse(&doc.body, "order_cart")?;
            self.unreserve_cart(order_id, &cart).await?;
        }
        Ok(next.into())
    }

    // ---------------------------------------------------------------------------------------
    // Seller balances and payouts
    // ---------------------------------------------------------------------------------------

    /// A seller's pending, available and reserved funds in one currency, and what it was paid.
    pub async fn seller_balance(
        &self,
        call: &Call<'_>,
        seller: OrgId,
        currency: Currency,
    ) -> Result<SellerBalance> {
        self.authorize(
            call,
            Action::SellerRead,
            &Resource::Organisation(seller),
            &Context::default(),
        )
        .await?;
        self.seller_balance_of(seller, currency).await
    }

    async fn seller_balance_of(&self, seller: OrgId, currency: Currency) -> Result<SellerBalance> {
        let pending = self
            .credit_balance(&AccountPurpose::SellerPending { seller }, currency)
            .await?;
        let available = self
            .credit_balance(&AccountPurpose::SellerAvailable { seller }, currency)
            .await?;
        let reserve = self
            .credit_balance(&AccountPurpose::SellerReserve { seller }, currency)
            .await?;
        let paid_out = self
            .payouts_of(seller)
            .await?
            .iter()
            .filter(|payout| payout.currency == currency)
            .map(|payout| payout.amount)
            .sum();
        Ok(SellerBalance {
            seller,
            currency,
            pending,
            available,
            reserve,
            paid_out,
            pending_formatted: currency.format(pending),
            available_formatted: currency.format(available),
        })
    }

    async fn payouts_of(&self, seller: OrgId) -> Result<Vec<PayoutRecord>> {
        self.store()
            .documents(PAYOUT, Some(&seller.to_string()), None, u32::MAX / 2)
            .await?
            .iter()
            .map(|doc| parse(&doc.body, PAYOUT))
            .collect()
    }

    /// A seller's payouts, newest last.
    pub async fn payouts(&self, call: &Call<'_>, seller: OrgId) -> Result<Vec<PayoutRecord>> {
        self.authorize(
            call,
            Action::SellerRead,
            &Resource::Organisation(seller),
            &Context::default(),
        )
        .await?;
        self.payouts_of(seller).await
    }

    /// Pays out a seller's available funds now (the seller's owners and admins, or the operator).
    /// A retry with the call's idempotency key answers the first payout instead of paying again.
    pub async fn request_payout(
        &self,
        call: &Call<'_>,
        seller: OrgId,
        input: NewPayout,
    ) -> Result<PayoutRecord> {
        let request = serde_json::json!({ "seller": seller, "payout": &input });
        self.once(
            call,
            Action::PayoutRequest,
            &request,
            self.request_payout_now(call, seller, input),
        )
        .await
    }

    async fn request_payout_now(
        &self,
        call: &Call<'_>,
        seller: OrgId,
        input: NewPayout,
    ) -> Result<PayoutRecord> {
        let resource = Resource::Organisation(seller);
        self.authorize(call, Action::PayoutRequest, &resource, &Context::default())
            .await?;
        let _guard = self.market_lock().await?;
        let result = async {
            let settings = self.load_settings(seller).await?;
            let available = self
                .credit_balance(&AccountPurpose::SellerAvailable { seller }, input.currency)
                .await?;
            payout::payout(
                PayoutRequest {
                    id: PayoutId::new(),
                    seller,
                    currency: input.currency,
                    amount: input.amount.unwrap_or(available),
                    provider: SANDBOX_PROVIDER.to_owned(),
                    reference: input.reference.clone(),
                },
                &settings,
                available,
                Timestamp::now(),
            )
        }
        .await;
        let (record, plan) = self
            .audited(call, Action::PayoutRequest, &resource, result)
            .await?;
        self.carry_out(call, payout_step(&record, plan, &resource)?)
            .await?;
        Ok(record)
    }

    /// Pays every seller whose schedule says a payout is due now and whose available funds reach
    /// its minimum (the operator; the server runs it periodically).
    pub async fn run_payouts(
        &self,
        call: &Call<'_>,
        currency: Currency,
        now: Timestamp,
    ) -> Result<PayoutRun> {
        let resource = Resource::Instance;
        self.authorize(call, Action::MarketOperate, &resource, &Context::default())
            .await?;
        let _guard = self.market_lock().await?;
        let mut run = PayoutRun {
            payouts: Vec::new(),
            refused: Vec::new(),
        };
        for seller in self.store().market_sellers().await? {
            let settings = self.load_settings(seller).await?;
            let available = self
                .credit_balance(&AccountPurpose::SellerAvailable { seller }, currency)
                .await?;
            let last = self
                .payouts_of(seller)
                .await?
                .iter()
                .filter(|payout| payout.currency == currency)
                .map(|payout| payout.paid_at)
                .max();
            let Some(amount) = payout::payout_due(&settings, last, now, available) else {
                continue;
            };
            let request = PayoutRequest {
                id: PayoutId::new(),
                seller,
                currency,
                amount,
                provider: SANDBOX_PROVIDER.to_owned(),
                reference: format!("Agora payout {}", now.to_string().get(..10).unwrap_or("")),
            };
            let seller_resource = Resource::Organisation(seller);
            match payout::payout(request, &settings, available, now) {
                Ok((record, plan)) => {
                    match self
                        .carry_out(call, payout_step(&record, plan, &seller_resource)?)
                        .await
                    {
                        Ok(()) => run.payouts.push(record),
                        Err(error) => run.refused.push(format!("{seller}: {error}")),
                    }
                }
                Err(error) => run.refused.push(format!("{seller}: {error}")),
            }
        }
        Ok(run)
    }

    /// The operator's commission revenue in one currency.
    pub async fn revenue(&self, call: &Call<'_>, currency: Currency) -> Result<RevenueView> {
        self.authorize(
            call,
            Action::MarketReadAll,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let commission = self
            .credit_balance(&AccountPurpose::CommissionRevenue, currency)
            .await?;
        Ok(RevenueView {
            currency,
            commission,
            formatted: currency.format(commission),
        })
    }
}

fn payout_step(record: &PayoutRecord, plan: Plan, resource: &Resource) -> Result<Step> {
    let detail = serde_json::json!({ "payout": record });
    Ok(Step::new(
        "payout",
        record.seller,
        plan,
        Action::PayoutRequest,
        resource,
        detail.clone(),
    )
    .doc(Doc::new(PAYOUT, record.id, record)?.owner(record.seller))
    .event(StepEvent::new(
        "payout.sent",
        record.id,
        Some(record.seller),
        detail,
    )))
}

fn order_resource(order: &Order) -> Resource {
    Resource::Order {
        id: order.id,
        customer: order.customer,
        sellers: order.parts.iter().map(|part| part.seller).collect(),
    }
}

/// The order as a document: owned by its customer, with its status, and due for release at the
/// earliest end of a hold among its fulfilled parts.
fn order_doc(order: &Order) -> Result<Doc> {
    let mut doc = Doc::new(ORDER, order.id, order)?
        .owner(order.customer)
        .status(
            serde_json::to_value(order.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
    let due = order
        .parts
        .iter()
        .filter(|part| part.status == PartStatus::Fulfilled)
        .filter_map(|part| part.hold_until)
        .min();
    if let Some(due) = due {
        doc = doc.sort_key(due.as_micros());
    }
    Ok(doc)
}

/// Adds one event per seller of the order, so that each seller's feed shows its orders.
fn with_seller_events(mut step: Step, order: &Order, event_type: &'static str) -> Step {
    for part in &order.parts {
        step = step.event(StepEvent::new(
            event_type,
            order.id,
            Some(part.seller),
            serde_json::json!({ "order": order.id, "net": part.net, "commission": part.commission, "currency": order.currency }),
        ));
    }
    step
}

fn parse<T: serde::de::DeserializeOwned>(body: &str, kind: &str) -> Result<T> {
    serde_json::from_str(body)
        .map_err(|e| Error::Internal(format!("a stored {kind} does not read back: {e}")))
}

impl App {
    /// What an order needs to know of a cart line's listing; refuses an archived listing, a
    /// service without a slot, and a product with a slot.
    async fn listing_facts(&self, line: &CartLine) -> Result<ListingFacts> {
        let listing = self
            .store()
            .listing(line.listing_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("listing {}", line.listing_id)))?;
        if listing.status != ListingStatus::Active {
            return Err(Error::Conflict(format!(
                "listing {} is archived by its seller; remove it from the cart",
                listing.id
            )));
        }
        match (&listing.kind, line.slot_id) {
            (ListingKind::Service { .. }, None) => {
                return Err(Error::invalid(
                    "slot_id",
                    format!(
                        "listing {} is a service: choose one of its free slots",
                        listing.id
                    ),
                ));
            }
            (ListingKind::Service { .. }, Some(_)) if line.quantity != 1 => {
                return Err(Error::invalid(
                    "quantity",
                    "a service line books one slot: order quantity 1 per slot",
                ));
            }
            (ListingKind::Product { .. }, Some(_)) => {
                return Err(Error::invalid(
                    "slot_id",
                    format!("listing {} is a product: it has no slots", listing.id),
                ));
            }
            _ => {}
        }
        Ok(ListingFacts {
            listing: listing.id,
            seller: listing.seller,
            title: listing.title.to_string(),
            category: listing.category.to_string(),
            currency: listing.currency,
            unit_price: listing.price,
        })
    }

    /// Takes the cart's stock and books its slots before any money moves, all or nothing: a
    /// product sold out or a slot booked meanwhile refuses the order.
    async fn reserve_cart(&self, order_id: OrderId, cart: &[CartLine]) -> Result<()> {
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        for line in cart {
            match line.slot_id {
                Some(slot_id) => {
                    tx.book_slot(slot_id, order_id, now)
                        .await
                        .map_err(|error| match error {
                            Error::Conflict(_) => Error::Conflict(format!(
                                "slot {slot_id} was booked meanwhile; choose another slot"
                            )),
                            other => other,
                        })?;
                }
                None => {
                    tx.take_stock(line.listing_id, line.quantity, now)
                        .await
                        .map_err(|error| match error {
                            Error::Conflict(reason) => Error::Conflict(format!(
                                "listing {}: {reason}; lower the quantity",
                                line.listing_id
                            )),
                            other => other,
                        })?;
                }
            }
        }
        // Dropped without commit on any refusal above: nothing is taken.
        tx.commit().await
    }

    /// Gives back what [`App::reserve_cart`] took (the order was refused or cancelled).
    async fn unreserve_cart(&self, order_id: OrderId, cart: &[CartLine]) -> Result<()> {
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        for line in cart {
            match line.slot_id {
                Some(slot_id) => match tx.release_slot(slot_id, order_id).await {
                    Ok(()) | Err(Error::NotFound { .. }) => {}
                    Err(other) => return Err(other),
                },
                None => {
                    tx.return_stock(line.listing_id, line.quantity, now).await?;
                }
            }
        }
        tx.commit().await
    }
}
