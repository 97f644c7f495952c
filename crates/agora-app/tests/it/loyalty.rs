//! Points and partner settlement through the application on a real database: accrual funded by
//! a partner and by the operator, redemption soonest-expiring first, expiry into breakage with
//! the ledger agreeing with the lots, obligations within net debit caps, closing a window, and
//! retried requests that change nothing twice.

use agora_app::agora_policy::Authorizer;
use agora_app::agora_store::DocumentWrite;
use agora_app::{
    App, AppConfig, Call, CreateOrg, GrantPoints, InstanceKey, NewObligation, NewPointsRule,
    PointsEarning, PointsSettings, RedeemPoints, SetNetDebitCap, SettlementWindowStatus,
};
use agora_domain::actor::Acting;
use agora_domain::ledger::Currency;
use agora_domain::{
    Actor, Credential, Error, OrgId, OrgName, RequestId, Role, SessionId, Timestamp, UserId,
};
use agora_market::accounts::AccountPurpose;
use agora_market::points::Lot;
use agora_market::{account_id, points_currency};

use crate::harness::{TestStore, backends};

struct World {
    app: App,
    test: TestStore,
    system: Actor,
    operator: Actor,
    operator_org: OrgId,
}

fn member(org_id: OrgId, is_operator: bool) -> Actor {
    Actor {
        user_id: Some(UserId::new()),
        acting: Some(Acting {
            org_id,
            role: Role::Owner,
            is_operator,
        }),
        credential: Credential::Session(SessionId::new()),
    }
}

fn call(actor: &Actor) -> Call<'_> {
    Call::new(actor, RequestId::new())
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

impl World {
    async fn open(backend: crate::harness::Backend) -> Self {
        let test = TestStore::open(backend).await;
        let app = App::new(
            test.store.clone(),
            Authorizer::builtin().unwrap(),
            AppConfig::default(),
            InstanceKey::generate(),
        );
        app.bootstrap("Agora Operator", "owner@agora.localhost")
            .await
            .unwrap()
            .unwrap();
        let operator_org = test.store.operator_org().await.unwrap().unwrap().id;
        Self {
            app,
            test,
            system: Actor::system(),
            operator: member(operator_org, true),
            operator_org,
        }
    }

    async fn partner(&self, name: &str) -> (OrgId, Actor) {
        let org = self
            .app
            .create_org(
                &call(&self.system),
                CreateOrg {
                    name: OrgName::parse(name).unwrap(),
                },
            )
            .await
            .unwrap();
        (org.id, member(org.id, false))
    }

    /// A signed-up customer, acting through their portal session.
    async fn customer(&self, email: &str) -> Actor {
        let signed_in = self
            .app
            .sign_up(email, "Ana Lima", "correct horse battery", RequestId::new())
            .await
            .unwrap();
        self.app
            .authenticate_session(&signed_in.session_secret)
            .await
            .unwrap()
            .actor
    }

    async fn rule(&self, action: &str, points: i64, funder: Option<OrgId>, expiry_days: u32) {
        self.app
            .set_points_rule(
                &call(&self.operator),
                NewPointsRule {
                    id: None,
                    earning: PointsEarning::PerAction,
                    points_per_major_unit: None,
                    action: Some(action.to_owned()),
                    points: Some(points),
                    funder,
                    expiry_days,
                },
            )
            .await
            .unwrap();
    }

    async fn grant(
        &self,
        by: &Actor,
        funder: OrgId,
        customer: UserId,
        action: &str,
        reference: &str,
    ) -> Result<agora_app::PointsGrant, Error> {
        self.app
            .grant_points(
                &call(by),
                funder,
                GrantPoints {
                    customer,
                    action: action.to_owned(),
                    reference: Some(reference.to_owned()),
                },
            )
            .await
    }

    /// Posted credits minus posted debits of a chart account.
    async fn balance(&self, purpose: AccountPurpose, currency: Currency) -> i64 {
        match self
            .app
            .ledger()
            .await
            .unwrap()
            .account(account_id(&purpose, currency))
            .await
            .unwrap()
        {
            Some(account) => {
                let balances = account.balances();
                balances.credits_posted - balances.debits_posted
            }
            None => 0,
        }
    }

    /// Moves a lot's expiry into the past, as time passing would.
    async fn backdate(&self, lot: agora_domain::LotId) {
        let doc = self
            .test
            .store
            .document("points_lot", &lot.to_string())
            .await
            .unwrap()
            .unwrap();
        let mut value: Lot = serde_json::from_str(&doc.body).unwrap();
        value.expires_at = Timestamp::now().plus_seconds(-1);
        let body = serde_json::to_string(&value).unwrap();
        let mut tx = self.test.store.write().await.unwrap();
        tx.put_document(
            &DocumentWrite {
                kind: "points_lot",
                id: &doc.id,
                owner: doc.owner.as_deref(),
                status: doc.status.as_deref(),
                sort_key: Some(value.expires_at.as_micros()),
                body: &body,
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    async fn step_count(&self) -> i64 {
        self.test
            .store
            .step_counts()
            .await
            .unwrap()
            .iter()
            .map(|(_, count)| count)
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_accrue_redeem_soonest_expiring_first_and_expire_into_breakage() {
    for backend in backends() {
        let world = World::open(backend).await;
        let (bakery, bakery_owner) = world.partner("Bakery").await;
        let (books, _) = world.partner("Books").await;
        let ana = world.customer("ana@example.com").await;
        let ana_id = ana.user_id.unwrap();
        world.rule("idea_shipped", 100, None, 365).await;
        world.rule("review_written", 30, Some(bakery), 10).await;
        world
            .app
            .set_points_settings(
                &call(&world.operator),
                PointsSettings {
                    currency: eur(),
                    minor_per_point: 2,
                },
            )
            .await
            .unwrap();

        // Funded by the operator (365 days) and by the bakery (10 days: expires first).
        let idea = world
            .grant(
                &world.operator,
                world.operator_org,
                ana_id,
                "idea_shipped",
                "idea-42",
            )
            .await
            .unwrap();
        assert_eq!((idea.lot.points, idea.lot.funder), (100, None));
        let review = world
            .grant(&bakery_owner, bakery, ana_id, "review_written", "review-7")
            .await
            .unwrap();
        assert_eq!((review.lot.points, review.lot.funder), (30, Some(bakery)));
        let customer_points = AccountPurpose::CustomerPoints { customer: ana_id };
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            130
        );

        let balance = world.app.points_balance(&call(&ana), ana_id).await.unwrap();
        assert_eq!((balance.liability, balance.spendable), (130, 130));
        assert_eq!(balance.soonest_expiry, Some(review.lot.expires_at));

        // 40 points at the bookshop: the bakery's 30 first (soonest expiry), then 10 of the operator's.
        let redemption = world
            .app
            .redeem_points(
                &call(&ana),
                ana_id,
                RedeemPoints {
                    points: 40,
                    at_partner: books,
                    reference: Some("receipt-1".into()),
                },
            )
            .await
            .unwrap();
        let taken: Vec<_> = redemption
            .allocations
            .iter()
            .map(|allocation| (allocation.lot, allocation.points))
            .collect();
        assert_eq!(taken, vec![(review.lot.id, 30), (idea.lot.id, 10)]);
        // Both funders owe the bookshop at 2 cents a point.
        let owed: Vec<_> = redemption
            .obligations
            .iter()
            .map(|obligation| (obligation.debtor, obligation.creditor, obligation.amount))
            .collect();
        let mut expected = vec![(bakery, books, 60), (world.operator_org, books, 20)];
        expected.sort();
        let mut owed_sorted = owed.clone();
        owed_sorted.sort();
        assert_eq!(owed_sorted, expected);
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            90
        );
        assert_eq!(
            world
                .balance(
                    AccountPurpose::PointsRedeemed { partner: books },
                    points_currency()
                )
                .await,
            40
        );
        assert_eq!(
            world
                .balance(AccountPurpose::SettlementPosition { partner: books }, eur())
                .await,
            80
        );

        // More than the balance: refused, and nothing changed.
        let steps = world.step_count().await;
        let refused = world
            .app
            .redeem_points(
                &call(&ana),
                ana_id,
                RedeemPoints {
                    points: 91,
                    at_partner: books,
                    reference: Some("receipt-2".into()),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::Conflict(_)), "{refused}");
        assert!(
            refused.to_string().contains("90 spendable points"),
            "{refused}"
        );
        assert_eq!(world.step_count().await, steps);
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            90
        );

        // Another customer's points are not Ana's to spend.
        let bruno = world.customer("bruno@example.com").await;
        let denied = world
            .app
            .redeem_points(
                &call(&bruno),
                ana_id,
                RedeemPoints {
                    points: 1,
                    at_partner: books,
                    reference: None,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(denied, Error::Forbidden { .. }), "{denied}");

        // The operator's lot passes its expiry: its 90 points go to breakage.
        world.backdate(idea.lot.id).await;
        let balance = world.app.points_balance(&call(&ana), ana_id).await.unwrap();
        assert_eq!((balance.liability, balance.spendable), (90, 0));
        let expiry = world
            .app
            .expire_points(&call(&world.operator))
            .await
            .unwrap();
        assert_eq!((expiry.lots_expired, expiry.points_expired), (1, 90));
        assert_eq!(
            world
                .balance(AccountPurpose::PointsBreakage, points_currency())
                .await,
            90
        );
        // Invariant: the ledger's points liability equals the unexpired lots' remainders.
        let balance = world.app.points_balance(&call(&ana), ana_id).await.unwrap();
        assert_eq!(balance.liability, 0);
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            balance.lots.iter().map(|lot| lot.remaining).sum::<i64>()
        );
        // Nothing more is due.
        let again = world.app.expire_due_points().await.unwrap();
        assert_eq!((again.lots_expired, again.points_expired), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_grants_only_the_points_it_funds() {
    for backend in backends() {
        let world = World::open(backend).await;
        let (bakery, bakery_owner) = world.partner("Bakery").await;
        let (books, _) = world.partner("Books").await;
        let ana = world.customer("ana@example.com").await.user_id.unwrap();
        world.rule("review_written", 30, Some(books), 10).await;
        let denied = world
            .grant(&bakery_owner, books, ana, "review_written", "r-1")
            .await
            .unwrap_err();
        let Error::Forbidden { rule, .. } = &denied else {
            panic!("{denied}")
        };
        assert_eq!(rule, "no-permit", "{denied}");
        // The bakery has no rule of its own for the action.
        let missing = world
            .grant(&bakery_owner, bakery, ana, "review_written", "r-1")
            .await
            .unwrap_err();
        assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_requests_answer_the_first_result_and_change_nothing_twice() {
    for backend in backends() {
        let world = World::open(backend).await;
        let (bakery, bakery_owner) = world.partner("Bakery").await;
        let (books, _) = world.partner("Books").await;
        let ana = world.customer("ana@example.com").await;
        let ana_id = ana.user_id.unwrap();
        world.rule("review_written", 30, Some(bakery), 10).await;

        let first = world
            .grant(&bakery_owner, bakery, ana_id, "review_written", "review-7")
            .await
            .unwrap();
        let steps = world.step_count().await;
        let again = world
            .grant(&bakery_owner, bakery, ana_id, "review_written", "review-7")
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(world.step_count().await, steps);
        let customer_points = AccountPurpose::CustomerPoints { customer: ana_id };
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            30
        );
        // The same reference for another customer is a different request: refused.
        let bruno = world.customer("bruno@example.com").await.user_id.unwrap();
        let reused = world
            .grant(&bakery_owner, bakery, bruno, "review_written", "review-7")
            .await
            .unwrap_err();
        assert!(matches!(reused, Error::Unprocessable(_)), "{reused}");

        // A redemption retried with its Idempotency-Key (no reference in the body).
        let redeem = RedeemPoints {
            points: 5,
            at_partner: bakery,
            reference: None,
        };
        let key = "checkout-0001";
        let first = world
            .app
            .redeem_points(
                &call(&ana).with_idempotency_key(Some(key)),
                ana_id,
                redeem.clone(),
            )
            .await
            .unwrap();
        let again = world
            .app
            .redeem_points(
                &call(&ana).with_idempotency_key(Some(key)),
                ana_id,
                redeem.clone(),
            )
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(first.reference, key);
        // The bakery's own points spent at the bakery owe nobody.
        assert!(first.obligations.is_empty());
        assert_eq!(
            world
                .balance(customer_points.clone(), points_currency())
                .await,
            25
        );

        // An obligation recorded twice with the same reference is recorded once.
        let obligation = NewObligation {
            creditor: books,
            amount: 500,
            currency: eur(),
            reference: "invoice-9".into(),
        };
        let first = world
            .app
            .record_obligation(&call(&bakery_owner), bakery, obligation.clone())
            .await
            .unwrap();
        let again = world
            .app
            .record_obligation(&call(&bakery_owner), bakery, obligation.clone())
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(
            world
                .balance(AccountPurpose::SettlementPosition { partner: books }, eur())
                .await,
            500
        );

        // A close retried by naming its window answers the same report.
        let report = world
            .app
            .close_settlement_window(&call(&world.operator), None)
            .await
            .unwrap();
        let replay = world
            .app
            .close_settlement_window(&call(&world.operator), Some(report.window))
            .await
            .unwrap();
        assert_eq!(report, replay);
        let windows = world
            .app
            .settlement_windows(&call(&world.operator), None, None)
            .await
            .unwrap();
        assert_eq!(windows.items.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obligations_accumulate_within_caps_and_closing_settles_to_zero() {
    for backend in backends() {
        let world = World::open(backend).await;
        let (bakery, bakery_owner) = world.partner("Bakery").await;
        let (books, books_owner) = world.partner("Books").await;
        let (cafe, _) = world.partner("Cafe").await;
        let usd = Currency::parse("USD").unwrap();
        let owe =
            |amount: i64, creditor: OrgId, currency: Currency, reference: &str| NewObligation {
                creditor,
                amount,
                currency,
                reference: reference.to_owned(),
            };
        world
            .app
            .set_net_debit_cap(
                &call(&world.operator),
                bakery,
                SetNetDebitCap {
                    currency: eur(),
                    cap: 1_000,
                },
            )
            .await
            .unwrap();
        // A partner may not set its own cap.
        let denied = world
            .app
            .set_net_debit_cap(
                &call(&bakery_owner),
                bakery,
                SetNetDebitCap {
                    currency: eur(),
                    cap: 9_999,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(denied, Error::Forbidden { .. }), "{denied}");

        let record = |by: &'static str, obligation: NewObligation| {
            let (actor, debtor) = match by {
                "bakery" => (&bakery_owner, bakery),
                _ => (&books_owner, books),
            };
            let app = &world.app;
            async move {
                app.record_obligation(&call(actor), debtor, obligation)
                    .await
            }
        };
        record("bakery", owe(700, books, eur(), "inv-1"))
            .await
            .unwrap();
        record("books", owe(200, bakery, eur(), "inv-2"))
            .await
            .unwrap();
        record("bakery", owe(400, cafe, eur(), "inv-3"))
            .await
            .unwrap();
        record("books", owe(50, cafe, usd, "inv-4")).await.unwrap();
        // The bakery owes 900 net of its 1,000 cap: 101 more is refused, naming the cap.
        let steps = world.step_count().await;
        let refused = record("bakery", owe(101, cafe, eur(), "inv-5"))
            .await
            .unwrap_err();
        let Error::LimitExceeded { limit, message } = &refused else {
            panic!("{refused}")
        };
        assert_eq!(limit, "net_debit_cap");
        assert!(message.contains("10.00 EUR"), "{message}");
        assert_eq!(world.step_count().await, steps);
        let bakery_position = AccountPurpose::SettlementPosition { partner: bakery };
        assert_eq!(world.balance(bakery_position.clone(), eur()).await, -900);

        // A partner reads only its own positions; the operator reads them all.
        let open = world
            .app
            .settlement_windows(&call(&world.operator), None, None)
            .await
            .unwrap()
            .items[0]
            .id;
        let own = world
            .app
            .settlement_report(&call(&bakery_owner), open)
            .await
            .unwrap();
        assert_eq!(own.status, SettlementWindowStatus::Open);
        assert!(
            own.positions
                .iter()
                .all(|position| position.partner == bakery)
        );

        let report = world
            .app
            .close_settlement_window(&call(&world.operator), None)
            .await
            .unwrap();
        let positions: Vec<_> = report
            .positions
            .iter()
            .map(|position| {
                (
                    position.partner,
                    position.currency.code().to_owned(),
                    position.net,
                )
            })
            .collect();
        let mut expected = vec![
            (bakery, "EUR".to_owned(), -900),
            (books, "EUR".to_owned(), 500),
            (books, "USD".to_owned(), -50),
            (cafe, "EUR".to_owned(), 400),
            (cafe, "USD".to_owned(), 50),
        ];
        expected.sort();
        assert_eq!(positions, expected);
        assert!(
            report.totals.values().all(|total| *total == 0),
            "{:?}",
            report.totals
        );
        assert_eq!(report.obligations, 4);
        for (partner, currency) in [
            (bakery, eur()),
            (books, eur()),
            (books, usd),
            (cafe, eur()),
            (cafe, usd),
        ] {
            assert_eq!(
                world
                    .balance(AccountPurpose::SettlementPosition { partner }, currency)
                    .await,
                0
            );
        }
        assert_eq!(
            world.balance(AccountPurpose::SettlementHouse, eur()).await,
            0
        );
        // The next obligation opens a new window with fresh positions, under the same cap.
        let next = record("bakery", owe(1_000, cafe, eur(), "inv-6"))
            .await
            .unwrap();
        assert_ne!(next.window, report.window);
    }
}
