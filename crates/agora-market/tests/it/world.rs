//! A small marketplace world for the property test: three sellers, two customers, a few listings and rules, the sandbox provider and the real ledger.
//!
//! Each operation runs one step the way the application would: call the pure function; on a
//! refusal check that nothing changed; otherwise submit the plan to the ledger and keep the new
//! state only if the ledger applied it; then submit the same plan again and check that it answers
//! `Exists` and moves nothing.

use std::collections::BTreeMap;

use agora_domain::PointsRuleId;
use agora_domain::ledger::Currency;
use agora_domain::{
    Error, LotId, ObligationId, OrgId, PaymentId, PayoutId, RefundId, Result, Timestamp, UserId,
    WindowId,
};
use agora_market::accounts::AccountPurpose;
use agora_market::commission::{CommissionRule, RuleScope};
use agora_market::order::{
    self, Capture, ListingFacts, Order, OrderStatus, Part, PartStatus, Payment, PaymentMethod,
    RefundPolicy, RefundRequest, SellerFunds,
};
use agora_market::payout::{self, PayoutRequest, PayoutSchedule, SellerSettings, Weekday};
use agora_market::points::{self, Earning, Funder, Lot, PointsRule};
use agora_market::sandbox::{PROVIDER, PaymentStatus, Sandbox};
use agora_market::settlement::{self, Obligation, Window};
use agora_market::{Plan, account_id, points_currency, wallet};
use uuid::Uuid;

use crate::books::{Books, Submitted};
use crate::fixtures::{at, euro, listing, org, rule, terms, user};

pub const SELLERS: usize = 3;
pub const CUSTOMERS: usize = 2;
pub const TOKENS: [&str; 4] = [
    "tok_visa",
    "tok_mastercard",
    "tok_declined",
    "tok_insufficient_funds",
];

/// One thing that happens in the world; indices are taken modulo what exists.
#[derive(Debug, Clone)]
pub enum Operation {
    Place {
        customer: usize,
        items: Vec<(usize, u32)>,
    },
    PayByCard {
        order: usize,
        token: usize,
    },
    PayFromWallet {
        order: usize,
    },
    TopUp {
        customer: usize,
        amount: i64,
    },
    Deliver,
    Advance {
        hours: u32,
    },
    Fulfil {
        order: usize,
        seller: usize,
    },
    Release {
        order: usize,
        seller: usize,
    },
    Refund {
        order: usize,
        line: usize,
        per_mille: u32,
    },
    Cancel {
        order: usize,
    },
    Payout {
        seller: usize,
    },
    Accrue {
        customer: usize,
        rule: usize,
        amount: i64,
    },
    Redeem {
        customer: usize,
        partner: usize,
        points: i64,
    },
    Expire,
    Oblige {
        debtor: usize,
        creditor: usize,
        amount: i64,
    },
    CloseWindow,
    Replay {
        index: usize,
    },
}

pub struct World {
    pub books: Books,
    pub now: Timestamp,
    pub sellers: Vec<OrgId>,
    pub settings: Vec<SellerSettings>,
    pub operator: OrgId,
    pub customers: Vec<UserId>,
    pub listings: Vec<ListingFacts>,
    pub rules: Vec<CommissionRule>,
    pub points_rules: Vec<PointsRule>,
    pub orders: Vec<Order>,
    pub sandbox: Sandbox,
    /// Card payments and the order each is for.
    pub card_payments: Vec<(PaymentId, usize)>,
    pub lots: Vec<Lot>,
    pub window: Window,
    pub last_payout: Vec<Option<Timestamp>>,
    pub payouts_total: i64,
    next_id: u128,
    pub stats: BTreeMap<&'static str, u32>,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let sellers: Vec<OrgId> = (1..=SELLERS as u128).map(org).collect();
        let settings = vec![
            SellerSettings {
                hold_days: 1,
                schedule: PayoutSchedule::Daily,
                minimum: 500,
                refund_policy: RefundPolicy::Proportional,
                net_debit_cap: 10_000,
            },
            SellerSettings {
                hold_days: 0,
                schedule: PayoutSchedule::Weekly {
                    weekday: Weekday::Monday,
                },
                minimum: 1_000,
                refund_policy: RefundPolicy::KeepCommission,
                net_debit_cap: 0,
            },
            SellerSettings {
                hold_days: 2,
                schedule: PayoutSchedule::Manual,
                minimum: 100,
                refund_policy: RefundPolicy::Proportional,
                net_debit_cap: 50_000,
            },
        ];
        let listings = vec![
            listing(1, sellers[0], "books", 1_999),
            listing(2, sellers[0], "toys", 333),
            listing(3, sellers[1], "books", 4_500),
            listing(4, sellers[1], "garden", 77),
            listing(5, sellers[2], "books", 12_345),
            listing(6, sellers[2], "toys", 1),
        ];
        let rules = vec![
            rule(1, RuleScope::Default, terms(1_000, 0, 0, None)),
            rule(
                2,
                RuleScope::Category {
                    category: "books".into(),
                },
                terms(500, 20, 50, Some(400)),
            ),
            rule(
                3,
                RuleScope::Seller { seller: sellers[1] },
                terms(1_250, 0, 0, None),
            ),
            rule(
                4,
                RuleScope::SellerCategory {
                    seller: sellers[2],
                    category: "books".into(),
                },
                terms(333, 0, 0, Some(300)),
            ),
            rule(
                5,
                RuleScope::Listing {
                    listing: listings[5].listing,
                },
                terms(0, 99, 0, None),
            ),
        ];
        let points_rules = vec![
            PointsRule {
                id: PointsRuleId::from_uuid(Uuid::from_u128(0x6001)),
                earning: Earning::PerAmountSpent {
                    points_per_major_unit: 1,
                },
                funder: Funder::Operator,
                expiry_days: 3,
            },
            PointsRule {
                id: PointsRuleId::from_uuid(Uuid::from_u128(0x6002)),
                earning: Earning::PerAction {
                    action: "review_written".into(),
                    points: 25,
                },
                funder: Funder::Partner(sellers[0]),
                expiry_days: 1,
            },
        ];
        let now = at(0);
        Self {
            books: Books::default(),
            now,
            sellers,
            settings,
            operator: org(0),
            customers: (1..=CUSTOMERS as u128).map(user).collect(),
            listings,
            rules,
            points_rules,
            orders: Vec::new(),
            sandbox: Sandbox::new(seed),
            card_payments: Vec::new(),
            lots: Vec::new(),
            window: Window::open(WindowId::from_uuid(Uuid::from_u128(0x7000)), now),
            last_payout: vec![None; SELLERS],
            payouts_total: 0,
            next_id: 0x9000,
            stats: BTreeMap::new(),
        }
    }

    fn fresh(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    /// The marketplace state a refused step must leave as it was.
    fn fingerprint(&self) -> String {
        serde_json::to_string(&(&self.orders, &self.lots, &self.window)).expect("serializable")
    }

    /// Runs a pure step's answer: a refusal must change nothing; a plan is carried out, replayed,
    /// and its new state kept only if the ledger applied it. Answers whether it was applied.
    fn step<T>(&mut self, what: &'static str, answer: Result<(T, Plan)>) -> Option<T> {
        let (state, plan) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                assert!(!matches!(error, Error::Internal(_)), "{what}: {error}");
                self.count("refused by the rules");
                return None;
            }
        };
        let before = self.books.snapshot();
        match self.books.submit(&plan, self.now) {
            Submitted::Created => {}
            Submitted::Exists => panic!("{what}: a new step's plan {} already existed", plan.step),
            Submitted::Refused(_) => {
                assert_eq!(
                    self.books.snapshot(),
                    before,
                    "{what} refused but moved money"
                );
                self.count("refused by the ledger");
                return None;
            }
        }
        // A retry of the same plan (a crash before the state was stored) moves nothing.
        let after = self.books.snapshot();
        assert_eq!(
            self.books.submit(&plan, self.now),
            if plan.is_empty() {
                Submitted::Created
            } else {
                Submitted::Exists
            }
        );
        assert_eq!(self.books.snapshot(), after, "{what}: a replay moved money");
        self.count(what);
        Some(state)
    }

    fn balance(&self, purpose: AccountPurpose, currency: Currency) -> i64 {
        self.books.balance(account_id(&purpose, currency))
    }

    fn card_payment_of(&self, order: usize) -> Option<PaymentId> {
        self.card_payments
            .iter()
            .rev()
            .find(|(_, index)| *index == order)
            .map(|(payment, _)| *payment)
    }

    pub fn run(&mut self, operation: &Operation) {
        let before = self.fingerprint();
        let ledger_before = self.books.snapshot();
        let changed = self.apply(operation);
        if !changed {
            assert_eq!(
                self.fingerprint(),
                before,
                "{operation:?} was refused but changed the state"
            );
            assert_eq!(
                self.books.snapshot(),
                ledger_before,
                "{operation:?} was refused but moved money"
            );
        }
        if let Err(broken) = self.check() {
            panic!("after {operation:?}: {broken}");
        }
    }

    /// Carries out one operation; answers whether it changed anything.
    fn apply(&mut self, operation: &Operation) -> bool {
        let now = self.now;
        match operation {
            Operation::Place { customer, items } => {
                let id = agora_domain::OrderId::from_uuid(self.fresh());
                let mut lines = Vec::new();
                for (listing, quantity) in items {
                    let facts = self.listings[listing % self.listings.len()].clone();
                    let seller = self
                        .sellers
                        .iter()
                        .position(|seller| *seller == facts.seller)
                        .unwrap();
                    lines.push(order::LineInput {
                        id: agora_domain::OrderLineId::from_uuid(self.fresh()),
                        listing: facts,
                        quantity: *quantity,
                        refund_policy: self.settings[seller].refund_policy,
                    });
                }
                let request = order::PlaceOrder {
                    id,
                    customer: self.customers[customer % CUSTOMERS],
                    lines,
                };
                match order::place(request, &self.rules, now) {
                    Ok(order) => {
                        self.orders.push(order);
                        self.count("place");
                        true
                    }
                    Err(_) => {
                        self.count("refused by the rules");
                        false
                    }
                }
            }
            Operation::PayByCard { order, token } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let order = &self.orders[index];
                if order.payment.is_some() || self.card_payment_of(index).is_some() {
                    return false;
                }
                let (currency, total) = (order.currency, order.total);
                let payment_id = PaymentId::from_uuid(self.fresh());
                match self.sandbox.authorize(
                    payment_id,
                    currency,
                    total,
                    TOKENS[token % TOKENS.len()],
                    now,
                ) {
                    Ok(_) => {
                        self.sandbox
                            .capture(payment_id, now)
                            .expect("an authorized payment captures");
                        self.card_payments.push((payment_id, index));
                        self.count("card authorized and captured at the provider");
                    }
                    Err(_) => self.count("card declined"),
                }
                // The order changes only when the notification arrives.
                false
            }
            Operation::PayFromWallet { order } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let payment_id = PaymentId::from_uuid(self.fresh());
                let answer = order::pay_from_wallet(&self.orders[index], payment_id, now);
                self.replace_order(index, "pay from wallet", answer)
            }
            Operation::TopUp { customer, amount } => {
                let payment_id = PaymentId::from_uuid(self.fresh());
                let plan = wallet::top_up(
                    self.customers[customer % CUSTOMERS],
                    euro(),
                    *amount,
                    payment_id,
                    now,
                );
                self.step("top up", plan.map(|plan| ((), plan))).is_some()
            }
            Operation::Deliver => self.deliver(),
            Operation::Advance { hours } => {
                self.now = self.now.plus_seconds(i64::from(*hours) * 3_600);
                self.deliver();
                true
            }
            Operation::Fulfil { order, seller } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let parts = &self.orders[index].parts;
                let seller = parts[seller % parts.len()].seller;
                let seller_index = self
                    .sellers
                    .iter()
                    .position(|known| *known == seller)
                    .expect("a known seller");
                let answer = order::fulfil(
                    &self.orders[index],
                    seller,
                    now,
                    self.settings[seller_index].hold_days,
                );
                self.replace_order(index, "fulfil", answer)
            }
            Operation::Release { order, seller } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let parts = &self.orders[index].parts;
                let seller = parts[seller % parts.len()].seller;
                let answer = order::release(&self.orders[index], seller, now);
                self.replace_order(index, "release", answer)
            }
            Operation::Refund {
                order,
                line,
                per_mille,
            } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let refund_id = RefundId::from_uuid(self.fresh());
                let order = &self.orders[index];
                let line = &order.lines[line % order.lines.len()];
                let amount = if *per_mille >= 1_000 {
                    line.refundable()
                } else {
                    line.refundable() * i64::from(*per_mille) / 1_000
                };
                let seller = line.seller;
                let request = RefundRequest {
                    id: refund_id,
                    line: line.id,
                    amount,
                    reason: "returned".into(),
                };
                let funds = SellerFunds {
                    available: self.balance(AccountPurpose::SellerAvailable { seller }, euro()),
                    reserve: self.balance(AccountPurpose::SellerReserve { seller }, euro()),
                };
                let answer = order::refund(order, request, funds, now)
                    .map(|(order, record, plan)| ((order, record), plan));
                let Some((next, record)) = self.step("refund", answer) else {
                    return false;
                };
                if record.from_available > 0 && record.from_pending > 0 {
                    self.count("refund beyond the part's pending");
                }
                if record.from_available > 0 {
                    self.count("refund from available");
                }
                if let PaymentMethod::Card { payment_id, .. } = &record.payment {
                    self.sandbox
                        .refund(*payment_id, record.id, record.amount, now)
                        .expect("the provider holds what the order was paid");
                }
                self.orders[index] = next;
                true
            }
            Operation::Cancel { order } => {
                let Some(index) = self.order_index(*order) else {
                    return false;
                };
                let answer = order::cancel(&self.orders[index], now)
                    .map(|(order, refunded, plan)| ((order, refunded), plan));
                let Some((next, refunded)) = self.step("cancel", answer) else {
                    return false;
                };
                if let Some(Payment {
                    method: PaymentMethod::Card { payment_id, .. },
                    ..
                }) = &next.payment
                    && refunded > 0
                {
                    let refund_id = RefundId::from_uuid(self.fresh());
                    self.sandbox
                        .refund(*payment_id, refund_id, refunded, now)
                        .expect("refundable");
                }
                self.orders[index] = next;
                true
            }
            Operation::Payout { seller } => {
                let seller_index = seller % SELLERS;
                let seller = self.sellers[seller_index];
                let settings = self.settings[seller_index].clone();
                let available = self.balance(AccountPurpose::SellerAvailable { seller }, euro());
                let amount = match settings.schedule {
                    PayoutSchedule::Manual => available,
                    _ => match payout::payout_due(
                        &settings,
                        self.last_payout[seller_index],
                        now,
                        available,
                    ) {
                        Some(amount) => amount,
                        None => return false,
                    },
                };
                let id = PayoutId::from_uuid(self.fresh());
                let request = PayoutRequest {
                    id,
                    seller,
                    currency: euro(),
                    amount,
                    provider: PROVIDER.into(),
                    reference: format!("AGORA-{id}"),
                };
                let answer = payout::payout(request, &settings, available, now);
                let Some(record) = self.step("payout", answer) else {
                    return false;
                };
                self.last_payout[seller_index] = Some(now);
                self.payouts_total += record.amount;
                true
            }
            Operation::Accrue {
                customer,
                rule,
                amount,
            } => {
                let rule = self.points_rules[rule % self.points_rules.len()].clone();
                let action =
                    matches!(rule.earning, Earning::PerAction { .. }).then_some("review_written");
                let points = rule.points_for(*amount, 2, action);
                let lot_id = LotId::from_uuid(self.fresh());
                let answer = points::accrue(
                    &rule,
                    lot_id,
                    self.customers[customer % CUSTOMERS],
                    points,
                    now,
                );
                let Some(lot) = self.step("accrue", answer) else {
                    return false;
                };
                self.lots.push(lot);
                true
            }
            Operation::Redeem {
                customer,
                partner,
                points,
            } => {
                let partner = self.sellers[partner % SELLERS];
                let payment_id = PaymentId::from_uuid(self.fresh());
                let answer = points::redeem(
                    &self.lots,
                    self.customers[customer % CUSTOMERS],
                    *points,
                    partner,
                    payment_id,
                    now,
                )
                .map(|(lots, redemption, plan)| ((lots, redemption), plan));
                let Some((changed, redemption)) = self.step("redeem", answer) else {
                    return false;
                };
                for lot in changed {
                    let slot = self
                        .lots
                        .iter_mut()
                        .find(|known| known.id == lot.id)
                        .expect("a known lot");
                    *slot = lot;
                }
                // Each funder owes the partner 1 cent per point, in the open window.
                let owed = settlement::obligations_for_redemption(&redemption, self.operator, 1)
                    .expect("rate");
                for (debtor, amount) in owed {
                    let obligation = Obligation {
                        id: ObligationId::from_uuid(self.fresh()),
                        debtor,
                        creditor: partner,
                        currency: euro(),
                        amount,
                        reference: format!("points/redeem/{payment_id}"),
                    };
                    self.oblige(&obligation);
                }
                true
            }
            Operation::Expire => {
                let answer = points::expire(&self.lots, now);
                let Some(changed) = self.step("expire", answer) else {
                    return false;
                };
                let any = !changed.is_empty();
                for lot in changed {
                    let slot = self
                        .lots
                        .iter_mut()
                        .find(|known| known.id == lot.id)
                        .expect("a known lot");
                    *slot = lot;
                }
                any
            }
            Operation::Oblige {
                debtor,
                creditor,
                amount,
            } => {
                let partners: Vec<OrgId> = std::iter::once(self.operator)
                    .chain(self.sellers.iter().copied())
                    .collect();
                let obligation = Obligation {
                    id: ObligationId::from_uuid(self.fresh()),
                    debtor: partners[debtor % partners.len()],
                    creditor: partners[creditor % partners.len()],
                    currency: euro(),
                    amount: *amount,
                    reference: "invoice".into(),
                };
                self.oblige(&obligation)
            }
            Operation::CloseWindow => {
                let answer = settlement::close(&self.window, now)
                    .map(|(window, report, plan)| ((window, report), plan));
                let Some((_closed, report)) = self.step("close window", answer) else {
                    return false;
                };
                for total in report.totals.values() {
                    assert_eq!(*total, 0, "a report's positions sum to zero");
                }
                let mut sums: BTreeMap<String, i64> = BTreeMap::new();
                for position in &report.positions {
                    *sums.entry(position.currency.code().to_owned()).or_default() += position.net;
                }
                assert!(sums.values().all(|sum| *sum == 0), "{report:?}");
                self.window = Window::open(WindowId::from_uuid(self.fresh()), now);
                true
            }
            Operation::Replay { index } => {
                if self.books.applied.is_empty() {
                    return false;
                }
                let plan = self.books.applied[index % self.books.applied.len()].clone();
                let before = self.books.snapshot();
                let answer = self.books.submit(&plan, now);
                let expect = if plan.is_empty() {
                    Submitted::Created
                } else {
                    Submitted::Exists
                };
                assert_eq!(answer, expect, "replay of {}", plan.step);
                assert_eq!(
                    self.books.snapshot(),
                    before,
                    "replay of {} moved money",
                    plan.step
                );
                self.count("replay");
                false
            }
        }
    }

    fn oblige(&mut self, obligation: &Obligation) -> bool {
        let cap = self
            .sellers
            .iter()
            .position(|seller| *seller == obligation.debtor)
            .map_or(1_000_000, |index| self.settings[index].net_debit_cap);
        let answer = settlement::record(&self.window, obligation, cap, self.now);
        let Some(window) = self.step("obligation", answer) else {
            return false;
        };
        self.window = window;
        true
    }

    /// The `order`-th most recent order, so that a long history keeps reaching new orders.
    fn order_index(&self, order: usize) -> Option<usize> {
        let count = self.orders.len();
        (count > 0).then(|| count - 1 - order % count)
    }

    fn replace_order(
        &mut self,
        index: usize,
        what: &'static str,
        answer: Result<(Order, Plan)>,
    ) -> bool {
        match self.step(what, answer) {
            Some(order) => {
                self.orders[index] = order;
                true
            }
            None => false,
        }
    }

    /// Delivers the notifications due now. Each is only a hint: read the payment back from the
    /// provider and act on its state, idempotently.
    fn deliver(&mut self) -> bool {
        let mut changed = false;
        for notification in self.sandbox.deliver(self.now) {
            self.count("notification");
            let Some(payment) = self.sandbox.payment(notification.payment_id).cloned() else {
                panic!("a notification for an unknown payment");
            };
            if payment.status != PaymentStatus::Captured {
                continue;
            }
            let (_, index) = *self
                .card_payments
                .iter()
                .find(|(id, _)| *id == payment.id)
                .expect("every captured payment is for an order");
            match order::capture(
                &self.orders[index],
                payment.id,
                PROVIDER,
                payment.captured,
                self.now,
            ) {
                Ok(Capture::Captured { order, plan }) => {
                    if let Some(order) = self.step("capture", Ok((*order, plan))) {
                        self.orders[index] = order;
                        changed = true;
                    }
                }
                Ok(Capture::AlreadyCaptured) => self.count("duplicate capture ignored"),
                Err(Error::Conflict(_)) => {
                    // Cancelled or paid otherwise: give the money back at the provider, once.
                    let refundable = payment.captured - payment.refunded;
                    if refundable > 0 {
                        let refund_id = RefundId::from_uuid(payment.id.as_uuid());
                        self.sandbox
                            .refund(payment.id, refund_id, refundable, self.now)
                            .expect("refundable");
                        self.count("capture refused, refunded at the provider");
                    }
                }
                Err(other) => panic!("capture answered {other}"),
            }
        }
        changed
    }

    /// Every invariant of the marketplace and the ledger.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.books.check()?;
        let mut commission = 0;
        let mut pending: BTreeMap<OrgId, i64> = BTreeMap::new();
        let mut card_outstanding = 0;
        for order in &self.orders {
            let clearing = self.balance(
                AccountPurpose::OrderClearing { order: order.id },
                order.currency,
            );
            if clearing != order.clearing_balance() {
                return Err(format!(
                    "order {} clearing {clearing}, expected {}",
                    order.id,
                    order.clearing_balance()
                ));
            }
            let all_cleared = order.parts.iter().all(|part| part.is_cleared())
                || order.status == order::OrderStatus::Cancelled;
            if all_cleared && clearing != 0 {
                return Err(format!(
                    "order {} is cleared but its clearing holds {clearing}",
                    order.id
                ));
            }
            let net: i64 = order.parts.iter().map(|part| part.net).sum();
            let kept: i64 = order.parts.iter().map(|part| part.commission).sum();
            if order.payment.is_some() && order.paid() != net + kept + order.refunded() {
                return Err(format!(
                    "order {}: paid {} != net {net} + commission {kept} + refunded {}",
                    order.id,
                    order.paid(),
                    order.refunded()
                ));
            }
            for line in &order.lines {
                if line.refunded > line.gross
                    || line.commission_reversed > line.commission.amount
                    || line.refunded < 0
                {
                    return Err(format!(
                        "line {} refunded beyond its gross or commission",
                        line.id
                    ));
                }
                // The remainder rule: a proportional line has reversed exactly floor(C × R / G);
                // a keep-commission line at most that (only refunds before fulfilment reverse).
                let proportional = i64::try_from(
                    i128::from(line.commission.amount) * i128::from(line.refunded)
                        / i128::from(line.gross),
                )
                .expect("at most the commission");
                let holds = match line.refund_policy {
                    RefundPolicy::Proportional => line.commission_reversed == proportional,
                    RefundPolicy::KeepCommission => line.commission_reversed <= proportional,
                };
                if !holds {
                    return Err(format!(
                        "line {} ({:?}) reversed {} of commission {} after refunding {} of {}",
                        line.id,
                        line.refund_policy,
                        line.commission_reversed,
                        line.commission.amount,
                        line.refunded,
                        line.gross
                    ));
                }
            }
            let statuses_hold = match order.status {
                OrderStatus::Placed => order.payment.is_none() && order.refunded() == 0,
                OrderStatus::Cancelled => order.refunded() == order.paid() && clearing == 0,
                OrderStatus::Refunded => order.refunded() == order.paid() && order.paid() > 0,
                OrderStatus::Completed => order
                    .parts
                    .iter()
                    .all(|part| matches!(part.status, PartStatus::Released | PartStatus::Refunded)),
                OrderStatus::Fulfilled => {
                    order.parts.iter().all(Part::is_cleared) && order.refunded() == 0
                }
                OrderStatus::PartiallyRefunded => {
                    order.refunded() > 0 && order.refunded() < order.paid()
                }
                OrderStatus::Paid => order.payment.is_some() && order.refunded() == 0,
            };
            if !statuses_hold {
                return Err(format!(
                    "order {} is {:?} but its parts and amounts disagree: {order:?}",
                    order.id, order.status
                ));
            }
            for part in &order.parts {
                let pending_holds = match part.status {
                    PartStatus::Fulfilled => part.pending >= 0 && part.pending <= part.net.max(0),
                    _ => part.pending == 0,
                };
                if !pending_holds {
                    return Err(format!(
                        "part of {} in order {} is {:?} with {} pending",
                        part.seller, order.id, part.status, part.pending
                    ));
                }
                if part.is_cleared() {
                    commission += part.commission;
                }
                *pending.entry(part.seller).or_default() += part.pending;
            }
            if let Some(Payment {
                method: PaymentMethod::Card { payment_id, .. },
                ..
            }) = &order.payment
            {
                let outstanding = order.paid() - order.refunded();
                card_outstanding += outstanding;
                let at_provider = self
                    .sandbox
                    .payment(*payment_id)
                    .expect("a captured payment");
                if at_provider.captured - at_provider.refunded != outstanding {
                    return Err(format!(
                        "payment {payment_id}: the provider holds {}, the order {outstanding}",
                        at_provider.captured - at_provider.refunded
                    ));
                }
            }
        }
        let revenue = self.balance(AccountPurpose::CommissionRevenue, euro());
        if revenue != commission {
            return Err(format!(
                "commission revenue {revenue}, orders say {commission}"
            ));
        }
        for seller in &self.sellers {
            let balance = self.balance(AccountPurpose::SellerPending { seller: *seller }, euro());
            let expected = pending.get(seller).copied().unwrap_or(0);
            if balance != expected {
                return Err(format!(
                    "seller {seller} pending {balance}, parts say {expected}"
                ));
            }
        }
        let provider = self.balance(
            AccountPurpose::ProviderClearing {
                provider: PROVIDER.into(),
            },
            euro(),
        );
        if provider != self.payouts_total - card_outstanding {
            return Err(format!(
                "provider clearing {provider}, expected payouts {} less card money {card_outstanding}",
                self.payouts_total
            ));
        }
        // Settlement: positions sum to zero per currency, and the ledger agrees with the window.
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for position in &self.window.positions {
            *sums.entry(position.currency.code().to_owned()).or_default() += position.net;
        }
        if sums.values().any(|sum| *sum != 0) {
            return Err(format!("window positions do not sum to zero: {sums:?}"));
        }
        let mut ledger_positions = 0;
        for partner in std::iter::once(self.operator).chain(self.sellers.iter().copied()) {
            let balance = self.balance(AccountPurpose::SettlementPosition { partner }, euro());
            if balance != self.window.position(partner, euro()) {
                return Err(format!(
                    "partner {partner} position {balance}, window {}",
                    self.window.position(partner, euro())
                ));
            }
            ledger_positions += balance;
        }
        let house = self.balance(AccountPurpose::SettlementHouse, euro());
        if ledger_positions != 0 || house != 0 {
            return Err(format!(
                "positions {ledger_positions} and house {house} should be 0"
            ));
        }
        // Points: the liability is the unexpired lots' remainders, customer by customer.
        let mut customers_points = 0;
        for customer in &self.customers {
            let balance = self.balance(
                AccountPurpose::CustomerPoints {
                    customer: *customer,
                },
                points_currency(),
            );
            let lots: Vec<Lot> = self
                .lots
                .iter()
                .filter(|lot| lot.customer == *customer)
                .cloned()
                .collect();
            if balance != points::liability(&lots) {
                return Err(format!(
                    "customer {customer} holds {balance} points, lots say {}",
                    points::liability(&lots)
                ));
            }
            customers_points += balance;
        }
        if customers_points != points::liability(&self.lots) {
            return Err("the points liability disagrees with the lots".into());
        }
        Ok(())
    }
}
