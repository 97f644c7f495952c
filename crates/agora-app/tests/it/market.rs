//! The marketplace through the application, on each backend: a cart from two sellers paid from
//! the wallet, fulfilled, refunded in part, released and paid out, with balances checked by
//! hand; card payments whose notifications arrive late, twice and out of order; refusals that
//! change nothing; and a step a crash interrupted, finished on the next call.

use agora_app::agora_policy::Authorizer;
use agora_app::{
    App, AppConfig, Call, CartLine, InstanceKey, NewCommissionRule, NewOrder, NewPayout, NewRefund,
    PayWith,
};
use agora_domain::listing::{Category, Description, Listing, ListingKind, ListingStatus, Title};
use agora_domain::{Actor, Error, ListingId, OrgId, RequestId, Timestamp};
use agora_market::AccountPurpose;
use agora_market::commission::RuleScope;
use agora_market::order::OrderStatus;
use agora_market::payout::{PayoutSchedule, SellerSettings};

use crate::harness::{TestStore, backends, eur};

struct Market {
    app: App,
    operator: Actor,
    customer: Actor,
    customer_id: agora_domain::UserId,
    fresh: OrgId,
    bright: OrgId,
    _store: TestStore,
}

fn call(actor: &Actor) -> Call<'_> {
    Call::new(actor, RequestId::new())
}

async fn org(app: &App, name: &str) -> OrgId {
    let system = Actor::system();
    app.create_org(
        &call(&system),
        agora_app::CreateOrg {
            name: agora_domain::OrgName::parse(name).unwrap(),
        },
    )
    .await
    .unwrap()
    .id
}

async fn listing(
    app: &App,
    seller: OrgId,
    title: &str,
    price: i64,
    stock: Option<u32>,
) -> ListingId {
    let now = Timestamp::now();
    let listing = Listing {
        id: ListingId::new(),
        seller,
        kind: ListingKind::Product { stock },
        title: Title::parse(title).unwrap(),
        description: Description::parse("").unwrap(),
        category: Category::parse("groceries").unwrap(),
        price,
        currency: eur(),
        status: ListingStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.store().write().await.unwrap();
    tx.insert_listing(&listing).await.unwrap();
    tx.commit().await.unwrap();
    listing.id
}

impl Market {
    async fn open(backend: crate::harness::Backend) -> Self {
        let store = TestStore::open(backend).await;
        let app = App::new(
            store.store.clone(),
            Authorizer::builtin().unwrap(),
            AppConfig::default(),
            InstanceKey::generate(),
        );
        let bootstrap = app
            .bootstrap("Agora Operator", "owner@agora.localhost")
            .await
            .unwrap()
            .unwrap();
        let operator = app.authenticate_token(&bootstrap.token).await.unwrap();
        let signed_up = app
            .sign_up(
                "cleo@example.org",
                "Cleo",
                "a long enough password",
                RequestId::new(),
            )
            .await
            .unwrap();
        let customer = app
            .authenticate_session(&signed_up.session_secret)
            .await
            .unwrap()
            .actor;
        let fresh = org(&app, "FreshMart").await;
        let bright = org(&app, "Brightbrew").await;
        Self {
            customer_id: signed_up.user.id,
            app,
            operator,
            customer,
            fresh,
            bright,
            _store: store,
        }
    }

    async fn balance(&self, purpose: AccountPurpose) -> i64 {
        let id = agora_market::account_id(&purpose, eur());
        let account = self.app.ledger().await.unwrap().account(id).await.unwrap();
        account.map_or(0, |account| account.credit_balance())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_refunded_in_part_and_paid_out_leaves_balances_a_reader_can_check() {
    for backend in backends() {
        let market = Market::open(backend).await;
        let (app, op, me) = (&market.app, &market.operator, &market.customer);
        let system = Actor::system();
        app.set_commission_rule(
            &call(op),
            NewCommissionRule {
                scope: RuleScope::Default,
                currency: None,
                rate_bps: 500,
                fixed: 0,
                floor: 0,
                cap: None,
            },
        )
        .await
        .unwrap();
        for seller in [market.fresh, market.bright] {
            app.set_seller_settings(
                &call(op),
                seller,
                SellerSettings {
                    hold_days: 0,
                    schedule: PayoutSchedule::Manual,
                    minimum: 100,
                    ..SellerSettings::default()
                },
            )
            .await
            .unwrap();
        }
        let milk = listing(app, market.fresh, "Whole milk", 1_250, Some(5)).await;
        let coffee = listing(app, market.bright, "Cold brew", 800, None).await;
        // One point per euro spent, funded by the operator.
        app.set_points_rule(
            &call(op),
            agora_app::NewPointsRule {
                id: None,
                earning: agora_app::PointsEarning::PerAmountSpent,
                points_per_major_unit: Some(1),
                action: None,
                points: None,
                funder: None,
                expiry_days: 30,
            },
        )
        .await
        .unwrap();

        // The operator's cash desk tops the wallet up with 100.00.
        let wallet = app
            .top_up_wallet(&call(op), market.customer_id, eur(), 10_000, None)
            .await
            .unwrap();
        assert_eq!(wallet.balance, 10_000);

        // 2 × 12.50 from FreshMart and 1 × 8.00 from Brightbrew: 33.00, one payment.
        let order = app
            .place_order(
                &call(me),
                market.customer_id,
                NewOrder {
                    lines: vec![
                        CartLine {
                            listing_id: milk,
                            quantity: 2,
                            slot_id: None,
                        },
                        CartLine {
                            listing_id: coffee,
                            quantity: 1,
                            slot_id: None,
                        },
                    ],
                    pay_with: PayWith::Wallet,
                    expected_total: None,
                },
            )
            .await
            .unwrap()
            .order;
        assert_eq!((order.total, order.status), (3_300, OrderStatus::Paid));
        // The paid order earned floor(33.00) = 33 points, the liability the ledger holds.
        let points = app
            .points_balance(&call(me), market.customer_id)
            .await
            .unwrap();
        assert_eq!((points.spendable, points.liability), (33, 33));
        let clearing = AccountPurpose::OrderClearing { order: order.id };
        assert_eq!(market.balance(clearing.clone()).await, 3_300);
        assert_eq!(
            market
                .balance(AccountPurpose::CustomerWallet {
                    customer: market.customer_id
                })
                .await,
            6_700
        );
        let stock = app.store().listing(milk).await.unwrap().unwrap().kind;
        assert_eq!(stock, ListingKind::Product { stock: Some(3) });

        // Each seller fulfils its part: 5% commission, the rest pending for the seller.
        app.fulfil_order(&call(&system), order.id, market.fresh)
            .await
            .unwrap();
        let fulfilled = app
            .fulfil_order(&call(&system), order.id, market.bright)
            .await
            .unwrap()
            .order;
        assert_eq!(fulfilled.status, OrderStatus::Fulfilled);
        assert_eq!(
            market.balance(clearing.clone()).await,
            0,
            "the clearing account returns to zero"
        );
        assert_eq!(
            market
                .balance(AccountPurpose::SellerPending {
                    seller: market.fresh
                })
                .await,
            2_375
        );
        assert_eq!(
            market
                .balance(AccountPurpose::SellerPending {
                    seller: market.bright
                })
                .await,
            760
        );
        assert_eq!(market.balance(AccountPurpose::CommissionRevenue).await, 165);

        // 10.00 of the milk line back: floor(125 × 1000 / 2500) = 50 of commission reversed, 9.50 from the seller.
        let line = fulfilled
            .lines
            .iter()
            .find(|line| line.listing == milk)
            .unwrap()
            .id;
        let refund = app
            .refund_order(
                &call(&system),
                order.id,
                NewRefund {
                    line_id: line,
                    amount: 1_000,
                    reason: "one bottle broken".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!((refund.commission_reversed, refund.seller_share), (50, 950));
        assert_eq!(
            market
                .balance(AccountPurpose::SellerPending {
                    seller: market.fresh
                })
                .await,
            1_425
        );
        assert_eq!(market.balance(AccountPurpose::CommissionRevenue).await, 115);
        assert_eq!(
            market
                .balance(AccountPurpose::CustomerWallet {
                    customer: market.customer_id
                })
                .await,
            7_700
        );
        // Never beyond what was paid for the line.
        let too_much = app
            .refund_order(
                &call(&system),
                order.id,
                NewRefund {
                    line_id: line,
                    amount: 1_501,
                    reason: "again".into(),
                },
            )
            .await;
        assert!(
            matches!(too_much, Err(Error::Invalid { .. })),
            "{too_much:?}"
        );

        // The hold (0 days) is over: pending becomes available, the order completes.
        let released = app.release_due(&call(op), Timestamp::now()).await.unwrap();
        assert_eq!(released, 2);
        let completed = app.order(&call(me), order.id).await.unwrap().order;
        assert_eq!(completed.status, OrderStatus::Completed);
        assert_eq!(
            market
                .balance(AccountPurpose::SellerAvailable {
                    seller: market.fresh
                })
                .await,
            1_425
        );
        assert_eq!(
            market
                .balance(AccountPurpose::SellerPending {
                    seller: market.fresh
                })
                .await,
            0
        );

        // Paid = net + commission + refunded: 3300 = (1425 + 760) + 115 + 1000.
        assert_eq!(completed.paid(), 1_425 + 760 + 115 + completed.refunded());

        let payout = app
            .request_payout(
                &call(&system),
                market.fresh,
                NewPayout {
                    currency: eur(),
                    amount: None,
                    reference: "FreshMart week 47".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(payout.amount, 1_425);
        let balance = app
            .seller_balance(&call(op), market.fresh, eur())
            .await
            .unwrap();
        assert_eq!((balance.available, balance.paid_out), (0, 1_425));
        let revenue = app.revenue(&call(op), eur()).await.unwrap();
        assert_eq!(revenue.formatted, "1.15 EUR");
        let report = app.verify_ledger(&call(op)).await.unwrap();
        assert!(report.intact, "{report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_change_nothing_and_card_notifications_count_once_whatever_their_order() {
    for backend in backends() {
        let market = Market::open(backend).await;
        let (app, op, me) = (&market.app, &market.operator, &market.customer);
        let milk = listing(app, market.fresh, "Whole milk", 1_250, Some(2)).await;
        let cart = |quantity, pay_with| NewOrder {
            lines: vec![CartLine {
                listing_id: milk,
                quantity,
                slot_id: None,
            }],
            pay_with,
            expected_total: None,
        };

        // An empty wallet cannot pay: no order, no stock taken, no money moved.
        let refused = app
            .place_order(&call(me), market.customer_id, cart(1, PayWith::Wallet))
            .await;
        assert!(
            matches!(refused, Err(Error::Unprocessable(_))),
            "{refused:?}"
        );
        assert_eq!(
            app.store().listing(milk).await.unwrap().unwrap().kind,
            ListingKind::Product { stock: Some(2) }
        );
        assert!(
            app.customer_orders(&call(me), market.customer_id, None, None)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        // More than the stock, or a declined card: refused, nothing taken.
        let sold_out = app
            .place_order(
                &call(me),
                market.customer_id,
                cart(
                    3,
                    PayWith::Card {
                        token: "tok_visa".into(),
                    },
                ),
            )
            .await;
        assert!(matches!(sold_out, Err(Error::Conflict(_))), "{sold_out:?}");
        let declined = app
            .place_order(
                &call(me),
                market.customer_id,
                cart(
                    1,
                    PayWith::Card {
                        token: "tok_declined".into(),
                    },
                ),
            )
            .await;
        assert!(
            matches!(declined, Err(Error::Forbidden { .. })),
            "{declined:?}"
        );
        // A total other than the one the customer confirmed: refused, naming the new total.
        let repriced = app
            .place_order(
                &call(me),
                market.customer_id,
                NewOrder {
                    expected_total: Some(1_000),
                    ..cart(
                        1,
                        PayWith::Card {
                            token: "tok_visa".into(),
                        },
                    )
                },
            )
            .await;
        match &repriced {
            Err(Error::Conflict(message)) => assert!(message.contains("12.50"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            app.store().listing(milk).await.unwrap().unwrap().kind,
            ListingKind::Product { stock: Some(2) }
        );
        // Someone else cannot order for this customer.
        let stranger = app
            .sign_up(
                "dan@example.org",
                "Dan",
                "another long password",
                RequestId::new(),
            )
            .await
            .unwrap();
        let stranger = app
            .authenticate_session(&stranger.session_secret)
            .await
            .unwrap()
            .actor;
        let forbidden = app
            .place_order(
                &call(&stranger),
                market.customer_id,
                cart(1, PayWith::Wallet),
            )
            .await;
        assert!(
            matches!(forbidden, Err(Error::Forbidden { .. })),
            "{forbidden:?}"
        );

        // A card order is placed now and paid when the capture notification arrives.
        let placed = app
            .place_order(
                &call(me),
                market.customer_id,
                cart(
                    2,
                    PayWith::Card {
                        token: "tok_visa".into(),
                    },
                ),
            )
            .await
            .unwrap()
            .order;
        assert_eq!(placed.status, OrderStatus::Placed);
        // Deliver everything the provider scheduled (late, some twice, in its own order), twice over.
        let mut delivered = 0;
        for _ in 0..2 {
            delivered += app
                .deliver_payment_notifications(Timestamp::from_micros(
                    Timestamp::now().as_micros() + 3_600_000_000,
                ))
                .await
                .unwrap();
        }
        assert!(
            delivered >= 2,
            "authorized and captured at least: {delivered}"
        );
        let paid = app.order(&call(me), placed.id).await.unwrap().order;
        assert_eq!(paid.status, OrderStatus::Paid);
        let clearing = AccountPurpose::OrderClearing { order: placed.id };
        assert_eq!(
            market.balance(clearing).await,
            2_500,
            "captured once, however often notified"
        );
        assert_eq!(
            market
                .balance(AccountPurpose::ProviderClearing {
                    provider: "sandbox".into()
                })
                .await,
            -2_500
        );

        // Cancelling the paid, unfulfilled order refunds it whole and gives the stock back.
        let cancelled = app.cancel_order(&call(me), placed.id).await.unwrap().order;
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(
            market
                .balance(AccountPurpose::OrderClearing { order: placed.id })
                .await,
            0
        );
        assert_eq!(
            app.store().listing(milk).await.unwrap().unwrap().kind,
            ListingKind::Product { stock: Some(2) }
        );
        // Refunds go back through the provider: its notification changes nothing more.
        app.deliver_payment_notifications(Timestamp::from_micros(
            Timestamp::now().as_micros() + 7_200_000_000,
        ))
        .await
        .unwrap();
        assert_eq!(
            market
                .balance(AccountPurpose::ProviderClearing {
                    provider: "sandbox".into()
                })
                .await,
            0
        );
        let report = app.verify_ledger(&call(op)).await.unwrap();
        assert!(report.intact);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_retried_with_its_idempotency_key_answers_the_first_order_and_pays_once() {
    for backend in backends() {
        let market = Market::open(backend).await;
        let (app, op, me) = (&market.app, &market.operator, &market.customer);
        let milk = listing(app, market.fresh, "Whole milk", 1_250, Some(5)).await;
        let cart = |quantity| NewOrder {
            lines: vec![CartLine {
                listing_id: milk,
                quantity,
                slot_id: None,
            }],
            pay_with: PayWith::Wallet,
            expected_total: None,
        };
        let keyed = |actor, key| call(actor).with_idempotency_key(Some(key));

        // A refused checkout (the wallet is empty) gives its key back: the retry after a top-up pays.
        let refused = app
            .place_order(&keyed(me, "cart-1"), market.customer_id, cart(2))
            .await;
        assert!(
            matches!(refused, Err(Error::Unprocessable(_))),
            "{refused:?}"
        );
        let top_up = keyed(op, "desk-1");
        app.top_up_wallet(&top_up, market.customer_id, eur(), 5_000, None)
            .await
            .unwrap();
        // The same top-up retried adds nothing.
        let again = app
            .top_up_wallet(&top_up, market.customer_id, eur(), 5_000, None)
            .await
            .unwrap();
        assert_eq!(again.balance, 5_000);

        let first = app
            .place_order(&keyed(me, "cart-1"), market.customer_id, cart(2))
            .await
            .unwrap();
        let retry = app
            .place_order(&keyed(me, "cart-1"), market.customer_id, cart(2))
            .await
            .unwrap();
        assert_eq!(retry.order.id, first.order.id);
        assert_eq!(retry.total_formatted, "25.00 EUR");
        let wallet = app
            .wallet(&call(me), market.customer_id, eur())
            .await
            .unwrap();
        assert_eq!(wallet.balance, 2_500, "paid once");
        assert_eq!(
            app.store().listing(milk).await.unwrap().unwrap().kind,
            ListingKind::Product { stock: Some(3) },
            "stock taken once"
        );
        let orders = app
            .customer_orders(&call(me), market.customer_id, None, None)
            .await
            .unwrap();
        assert_eq!(orders.items.len(), 1);

        // The same key for another cart is a mistake, named; a new key places a new order.
        let other = app
            .place_order(&keyed(me, "cart-1"), market.customer_id, cart(1))
            .await;
        assert!(
            matches!(&other, Err(Error::Unprocessable(reason)) if reason.contains("different request body")),
            "{other:?}"
        );
        let second = app
            .place_order(&keyed(me, "cart-2"), market.customer_id, cart(1))
            .await
            .unwrap();
        assert_ne!(second.order.id, first.order.id);
    }
}

/// On an order shared by two sellers, each acts on its own part only: fulfilling, refunding or
/// cancelling the other's is refused and changes nothing; the operator may act on any part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_acts_on_its_own_part_of_a_shared_order_and_never_on_another_sellers() {
    for backend in backends() {
        let market = Market::open(backend).await;
        let (app, op, me) = (&market.app, &market.operator, &market.customer);
        let admin_of = |org_id| Actor {
            user_id: Some(agora_domain::UserId::new()),
            acting: Some(agora_domain::actor::Acting {
                org_id,
                role: agora_domain::Role::Admin,
                is_operator: false,
            }),
            credential: agora_domain::Credential::Session(agora_domain::SessionId::new()),
        };
        let (fresh_admin, bright_admin) = (admin_of(market.fresh), admin_of(market.bright));
        let milk = listing(app, market.fresh, "Whole milk", 1_250, None).await;
        let coffee = listing(app, market.bright, "Cold brew", 800, None).await;
        app.top_up_wallet(&call(op), market.customer_id, eur(), 10_000, None)
            .await
            .unwrap();
        let order = app
            .place_order(
                &call(me),
                market.customer_id,
                NewOrder {
                    lines: vec![
                        CartLine {
                            listing_id: milk,
                            quantity: 1,
                            slot_id: None,
                        },
                        CartLine {
                            listing_id: coffee,
                            quantity: 1,
                            slot_id: None,
                        },
                    ],
                    pay_with: PayWith::Wallet,
                    expected_total: None,
                },
            )
            .await
            .unwrap()
            .order;
        let milk_line = order
            .lines
            .iter()
            .find(|line| line.listing == milk)
            .unwrap()
            .id;

        fn forbidden<T>(result: &Result<T, Error>) -> bool {
            matches!(result, Err(Error::Forbidden { .. }))
        }
        let fulfil = app
            .fulfil_order(&call(&bright_admin), order.id, market.fresh)
            .await;
        assert!(forbidden(&fulfil), "{fulfil:?}");
        let refund = app
            .refund_order(
                &call(&bright_admin),
                order.id,
                NewRefund {
                    line_id: milk_line,
                    amount: 100,
                    reason: "not mine".into(),
                },
            )
            .await;
        assert!(forbidden(&refund), "{refund:?}");
        let cancel = app.cancel_order(&call(&bright_admin), order.id).await;
        assert!(forbidden(&cancel), "{cancel:?}");
        let unchanged = app.order(&call(me), order.id).await.unwrap().order;
        assert_eq!(unchanged, order, "refusals changed the order");

        // Each on its own part, and the operator on any.
        app.fulfil_order(&call(&bright_admin), order.id, market.bright)
            .await
            .unwrap();
        app.fulfil_order(&call(&fresh_admin), order.id, market.fresh)
            .await
            .unwrap();
        app.refund_order(
            &call(op),
            order.id,
            NewRefund {
                line_id: milk_line,
                amount: 100,
                reason: "the operator's goodwill".into(),
            },
        )
        .await
        .unwrap();
    }
}
