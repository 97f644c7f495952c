//! Orders: refunds' proportional arithmetic and sources, and every illegal transition refused with the state unchanged.

use agora_domain::{Error, OrgId, PaymentId, RefundId, Timestamp, UserId};
use agora_market::account_id;
use agora_market::accounts::AccountPurpose;
use agora_market::commission::{CommissionRule, RuleScope};
use agora_market::order::{
    self, Capture, Order, OrderStatus, PartStatus, RefundPolicy, RefundRequest, SellerFunds,
};
use agora_market::wallet;
use uuid::Uuid;

use crate::books::{Books, Submitted};
use crate::fixtures::{DAY, at, cart, euro, listing, org, user};

const A: u128 = 1;
const B: u128 = 2;

fn rules() -> Vec<CommissionRule> {
    vec![crate::fixtures::rule(
        1,
        RuleScope::Default,
        crate::fixtures::terms(1_550, 0, 0, None),
    )]
}

fn payment(n: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(0x1000 + n))
}

fn refund_id(n: u128) -> RefundId {
    RefundId::from_uuid(Uuid::from_u128(0x2000 + n))
}

/// A shop with the ledger, a customer with money in the wallet.
struct Shop {
    books: Books,
    customer: UserId,
    now: Timestamp,
}

impl Shop {
    fn new() -> Self {
        let mut shop = Self {
            books: Books::default(),
            customer: user(1),
            now: at(0),
        };
        let plan = wallet::top_up(shop.customer, euro(), 100_000, payment(999), shop.now).unwrap();
        assert_eq!(shop.books.submit(&plan, shop.now), Submitted::Created);
        shop
    }

    fn submit(&mut self, plan: &agora_market::Plan) {
        assert_eq!(
            self.books.submit(plan, self.now),
            Submitted::Created,
            "{}",
            plan.step
        );
        self.books.check().unwrap();
    }

    /// Order `n`: one line of 1 000 from A (policy for A), one of 2 × 500 from B; paid from the wallet.
    fn paid_order(&mut self, n: u128, policy: RefundPolicy) -> Order {
        let placed = order::place(
            cart(
                n,
                self.customer,
                &[
                    (listing(n * 10 + 1, org(A), "books", 1_000), 1, policy),
                    (
                        listing(n * 10 + 2, org(B), "toys", 500),
                        2,
                        RefundPolicy::Proportional,
                    ),
                ],
            ),
            &rules(),
            self.now,
        )
        .unwrap();
        assert_eq!(placed.status, OrderStatus::Placed);
        let (paid, plan) = order::pay_from_wallet(&placed, payment(n), self.now).unwrap();
        self.submit(&plan);
        assert_eq!(paid.status, OrderStatus::Paid);
        paid
    }

    fn fulfil(&mut self, order: &Order, seller: u128, hold_days: u32) -> Order {
        let (next, plan) = order::fulfil(order, org(seller), self.now, hold_days).unwrap();
        self.submit(&plan);
        next
    }

    fn release(&mut self, order: &Order, seller: u128) -> Order {
        let (next, plan) = order::release(order, org(seller), self.now).unwrap();
        self.submit(&plan);
        next
    }

    fn funds(&self, seller: OrgId) -> SellerFunds {
        SellerFunds {
            available: self.books.balance(account_id(
                &AccountPurpose::SellerAvailable { seller },
                euro(),
            )),
            reserve: self.books.balance(account_id(
                &AccountPurpose::SellerReserve { seller },
                euro(),
            )),
        }
    }

    fn refund(
        &mut self,
        order: &Order,
        id: u128,
        line: usize,
        amount: i64,
    ) -> (Order, order::RefundRecord) {
        let request = RefundRequest {
            id: refund_id(id),
            line: order.lines[line].id,
            amount,
            reason: "damaged".into(),
        };
        let seller = order.lines[line].seller;
        let (next, record, plan) =
            order::refund(order, request, self.funds(seller), self.now).unwrap();
        self.submit(&plan);
        (next, record)
    }

    fn clearing(&self, order: &Order) -> i64 {
        self.books.balance(account_id(
            &AccountPurpose::OrderClearing { order: order.id },
            euro(),
        ))
    }

    /// What every order must satisfy after every step.
    fn check(&self, order: &Order) {
        assert_eq!(self.clearing(order), order.clearing_balance(), "{order:#?}");
        let net: i64 = order.parts.iter().map(|part| part.net).sum();
        let commission: i64 = order.parts.iter().map(|part| part.commission).sum();
        assert_eq!(order.paid(), net + commission + order.refunded());
        if order.parts.iter().all(|part| part.is_cleared()) {
            assert_eq!(self.clearing(order), 0);
        }
    }
}

#[test]
fn proportional_refunds_reverse_the_floor_of_the_cumulative_share() {
    let mut shop = Shop::new();
    let order = shop.paid_order(1, RefundPolicy::Proportional);
    assert_eq!(order.lines[0].commission.amount, 155);
    let mut order = shop.fulfil(&order, A, 3);
    shop.check(&order);
    // floor(155 × 333 / 1000) = 51; floor(155 × 666 / 1000) = 103; the last reverses the rest.
    let mut reversals = Vec::new();
    for (id, amount) in [(1, 333), (2, 333), (3, 334)] {
        let (next, record) = shop.refund(&order, id, 0, amount);
        assert_eq!(record.commission_reversed + record.seller_share, amount);
        assert_eq!(record.from_pending, record.seller_share);
        reversals.push((record.commission_reversed, record.seller_share));
        order = next;
        shop.check(&order);
    }
    assert_eq!(reversals, [(51, 282), (52, 281), (52, 282)]);
    assert_eq!(order.lines[0].commission_reversed, 155);
    assert_eq!(order.parts[0].status, PartStatus::Refunded);
    assert_eq!(order.parts[0].pending, 0);
    assert_eq!(order.status, OrderStatus::PartiallyRefunded);
    let order = shop.fulfil(&order, B, 0);
    shop.check(&order);
    assert_eq!(shop.clearing(&order), 0);
    let order = shop.release(&order, B);
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.refunded(), 1_000);
    shop.check(&order);
}

#[test]
fn a_full_refund_reverses_the_whole_commission_before_or_after_fulfilment() {
    for fulfilled in [false, true] {
        let mut shop = Shop::new();
        let mut order = shop.paid_order(1, RefundPolicy::Proportional);
        if fulfilled {
            order = shop.fulfil(&order, A, 1);
        }
        let (order, record) = shop.refund(&order, 1, 0, 1_000);
        assert_eq!(
            (record.commission_reversed, record.seller_share),
            (155, 845)
        );
        assert_eq!(order.parts[0].status, PartStatus::Refunded);
        shop.check(&order);
        let (order, _) = shop.refund(&order, 2, 1, 1_000);
        assert_eq!(order.status, OrderStatus::Refunded);
        shop.check(&order);
        assert_eq!(shop.clearing(&order), 0);
        let wallet = account_id(
            &AccountPurpose::CustomerWallet {
                customer: shop.customer,
            },
            euro(),
        );
        assert_eq!(shop.books.balance(wallet), 100_000);
    }
}

#[test]
fn keep_commission_charges_the_seller_and_draws_pending_then_available() {
    let mut shop = Shop::new();
    // Order 1 fulfilled and released: A has 845 available.
    let first = shop.paid_order(1, RefundPolicy::KeepCommission);
    let first = shop.fulfil(&first, A, 0);
    let first = shop.release(&first, A);
    assert_eq!(shop.funds(org(A)).available, 845);
    // Before fulfilment nothing was earned: the refund is proportional whatever the policy.
    let second = shop.paid_order(2, RefundPolicy::KeepCommission);
    let (second, record) = shop.refund(&second, 1, 0, 100);
    assert_eq!((record.commission_reversed, record.seller_share), (15, 85));
    let second = shop.fulfil(&second, A, 5);
    assert_eq!(second.parts[0].pending, 900 - 140);
    // After fulfilment the seller bears the whole refund: this part's pending first, then available.
    let (second, record) = shop.refund(&second, 2, 0, 900);
    assert_eq!(record.commission_reversed, 0);
    assert_eq!(
        (
            record.from_pending,
            record.from_available,
            record.from_reserve
        ),
        (760, 140, 0)
    );
    assert_eq!(second.parts[0].net, -140);
    shop.check(&second);
    // A released part draws on available only: the 705 left cover 700 of first's line.
    let (first, record) = shop.refund(&first, 3, 0, 700);
    assert_eq!((record.from_pending, record.from_available), (0, 700));
    shop.check(&first);
    // What the seller's funds cannot cover is refused before the ledger sees it.
    let refused = order::refund(
        &first,
        RefundRequest {
            id: refund_id(4),
            line: first.lines[0].id,
            amount: 300,
            reason: "late".into(),
        },
        shop.funds(org(A)),
        shop.now,
    );
    assert!(
        matches!(&refused, Err(Error::Conflict(message)) if message.contains("cannot cover")),
        "{refused:?}"
    );
}

#[test]
fn refunds_never_exceed_the_line() {
    let mut shop = Shop::new();
    let order = shop.paid_order(1, RefundPolicy::Proportional);
    let request = |id, amount| RefundRequest {
        id: refund_id(id),
        line: order.lines[0].id,
        amount,
        reason: String::new(),
    };
    for amount in [0, -5, 1_001] {
        let refused = order::refund(&order, request(1, amount), SellerFunds::default(), shop.now);
        assert!(
            matches!(&refused, Err(Error::Invalid { field, message }) if field == "amount" && message.contains("1 to 1000")),
            "{refused:?}"
        );
    }
    let (order, _) = shop.refund(&order, 2, 0, 333);
    let refused = order::refund(
        &order,
        RefundRequest {
            id: refund_id(3),
            line: order.lines[0].id,
            amount: 668,
            reason: String::new(),
        },
        SellerFunds::default(),
        shop.now,
    );
    assert!(
        matches!(&refused, Err(Error::Invalid { message, .. }) if message.contains("1 to 667")),
        "{refused:?}"
    );
}

/// Asserts a step was refused as a conflict whose message says `hint`.
fn refused<T: std::fmt::Debug>(result: agora_domain::Result<T>, hint: &str) {
    match result {
        Err(Error::Conflict(message)) | Err(Error::Unprocessable(message)) => {
            assert!(message.contains(hint), "`{message}` lacks `{hint}`")
        }
        other => panic!("expected a refusal saying `{hint}`, got {other:?}"),
    }
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let mut shop = Shop::new();
    let now = shop.now;
    let placed = order::place(
        cart(
            5,
            shop.customer,
            &[(
                listing(51, org(A), "books", 1_000),
                1,
                RefundPolicy::Proportional,
            )],
        ),
        &rules(),
        now,
    )
    .unwrap();
    let before = placed.clone();
    let ledger = shop.books.snapshot();
    refused(order::fulfil(&placed, org(A), now, 1), "not paid yet");
    refused(
        order::release(&placed, org(A), now),
        "only a fulfilled part",
    );
    refused(
        order::refund(
            &placed,
            RefundRequest {
                id: refund_id(1),
                line: placed.lines[0].id,
                amount: 1,
                reason: String::new(),
            },
            SellerFunds::default(),
            now,
        ),
        "cancel it instead",
    );
    refused(
        order::capture(&placed, payment(1), "sandbox", 999, now),
        "totals",
    );
    assert!(matches!(
        order::fulfil(&placed, org(9), now, 1),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(placed, before);
    assert_eq!(shop.books.snapshot(), ledger);

    // Paid by card: a second capture of the same payment is a no-op, another payment is refused.
    let Capture::Captured { order: paid, plan } =
        order::capture(&placed, payment(1), "sandbox", 1_000, now).unwrap()
    else {
        panic!("a first capture captures");
    };
    shop.submit(&plan);
    let paid = *paid;
    assert_eq!(
        order::capture(&paid, payment(1), "sandbox", 1_000, now).unwrap(),
        Capture::AlreadyCaptured
    );
    refused(
        order::capture(&paid, payment(2), "sandbox", 1_000, now),
        "refund payment",
    );
    refused(
        order::pay_from_wallet(&paid, payment(3), now),
        "already paid",
    );
    refused(order::release(&paid, org(A), now), "only a fulfilled part");

    let fulfilled = shop.fulfil(&paid, A, 2);
    assert_eq!(fulfilled.status, OrderStatus::Fulfilled);
    refused(
        order::fulfil(&fulfilled, org(A), now, 2),
        "only a paid part",
    );
    refused(order::release(&fulfilled, org(A), now), "held until");
    refused(order::cancel(&fulfilled, now), "refund its lines");
    shop.now = at(2 * DAY);
    let released = shop.release(&fulfilled, A);
    assert_eq!(released.status, OrderStatus::Completed);
    refused(
        order::release(&released, org(A), shop.now),
        "only a fulfilled part",
    );
    shop.check(&released);

    // Cancelled: nothing more happens to it, and a late capture must be refunded at the provider.
    let (cancelled, refunded, plan) = order::cancel(&before, now).unwrap();
    assert!(plan.is_empty() && refunded == 0);
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    refused(order::cancel(&cancelled, now), "cancelled");
    refused(
        order::pay_from_wallet(&cancelled, payment(4), now),
        "cancelled",
    );
    refused(
        order::capture(&cancelled, payment(5), "sandbox", 1_000, now),
        "refund payment",
    );
    refused(order::fulfil(&cancelled, org(A), now, 0), "cancelled");
}

#[test]
fn cancelling_a_paid_order_refunds_everything_left() {
    let mut shop = Shop::new();
    let order = shop.paid_order(1, RefundPolicy::Proportional);
    let (order, _) = shop.refund(&order, 1, 1, 250);
    let (cancelled, refunded, plan) = order::cancel(&order, shop.now).unwrap();
    assert_eq!(refunded, 2_000 - 250);
    shop.submit(&plan);
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.refunded(), 2_000);
    shop.check(&cancelled);
    assert_eq!(shop.clearing(&cancelled), 0);
}

#[test]
fn placing_validates_the_cart() {
    let customer = user(1);
    let other = agora_domain::ledger::Currency::parse("USD").unwrap();
    let mut dollars = listing(2, org(B), "toys", 500);
    dollars.currency = other;
    let cases: Vec<(Vec<(agora_market::order::ListingFacts, u32)>, &str)> = vec![
        (vec![], "lines"),
        (vec![(listing(1, org(A), "books", 100), 0)], "quantity"),
        (vec![(listing(1, org(A), "books", 0), 1)], "unit_price"),
        (
            vec![(listing(1, org(A), "books", 100), 1), (dollars, 1)],
            "currency",
        ),
        (
            vec![
                (listing(1, org(A), "books", 100), 1),
                (listing(1, org(A), "books", 100), 2),
            ],
            "lines",
        ),
        (vec![(listing(1, org(A), "books", i64::MAX), 2)], "quantity"),
    ];
    for (items, field) in cases {
        let items: Vec<_> = items
            .into_iter()
            .map(|(listing, quantity)| (listing, quantity, RefundPolicy::Proportional))
            .collect();
        let result = order::place(cart(1, customer, &items), &rules(), at(0));
        assert!(
            matches!(&result, Err(Error::Invalid { field: named, .. }) if named == field),
            "{field}: {result:?}"
        );
    }
    let too_many: Vec<_> = (0..101)
        .map(|n| {
            (
                listing(n, org(A), "books", 1),
                1,
                RefundPolicy::Proportional,
            )
        })
        .collect();
    assert!(matches!(
        order::place(cart(1, customer, &too_many), &rules(), at(0)),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn a_part_fulfilled_once_blocks_cancelling_even_when_refunded_since() {
    let mut shop = Shop::new();
    let order = shop.paid_order(1, RefundPolicy::Proportional);
    let order = shop.fulfil(&order, A, 1);
    let (order, _) = shop.refund(&order, 1, 0, 1_000);
    assert_eq!(order.parts[0].status, PartStatus::Refunded);
    refused(order::cancel(&order, shop.now), "was fulfilled");
}

#[test]
fn state_round_trips_through_json() {
    let mut shop = Shop::new();
    let order = shop.paid_order(1, RefundPolicy::KeepCommission);
    let (order, plan) = order::fulfil(&order, org(A), shop.now, 3).unwrap();
    let text = serde_json::to_string(&order).unwrap();
    assert_eq!(serde_json::from_str::<Order>(&text).unwrap(), order);
    let text = serde_json::to_string(&plan).unwrap();
    assert!(text.contains("\"step\":\"order/ord_"), "{text}");
    assert_eq!(
        serde_json::from_str::<agora_market::Plan>(&text).unwrap(),
        plan
    );
    let text = serde_json::to_string(&order.lines[0]).unwrap();
    assert!(
        text.contains("\"refund_policy\":\"keep_commission\""),
        "{text}"
    );
}
