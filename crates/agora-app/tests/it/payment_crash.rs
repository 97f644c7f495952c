//! Mini-app payments confirmed in the portal's cashier, killed with SIGKILL at random moments:
//! after each restart, [`App::resume_payment_requests`] settles every confirmation the kill
//! interrupted, and then no request is left `paying`, every acknowledged payment is paid by its
//! order, every paid order belongs to exactly one paid request (none was paid twice, none was
//! paid while its request went back to pending), and the wallets agree with what was paid.
//!
//! As in `market_crash`, the test binary runs itself again as the child, which sets up a seller,
//! its listing, its mini-app and customers once, then has each customer ask for payments and
//! confirm them, printing each acknowledgement. On SQLite, and on PostgreSQL when the tests have
//! one.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use agora_app::agora_policy::Authorizer;
use agora_app::{App, AppConfig, Call, InstanceKey, NewPaymentRequest};
use agora_domain::{
    Actor, Credential, ListingId, MiniAppId, OrderId, PaymentRequestId, RequestId, SessionId,
    Timestamp, UserId,
};
use agora_market::AccountPurpose;
use agora_market::order::Order;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{
    Backend, CrashMarket, TestStore, backends, eur, kill_child_after, open_store, recall, remember,
};

const CHILD_ENV: &str = "AGORA_PAYMENT_CRASH_CHILD";
const CHILD_TEST: &str = "payment_crash::payment_crash_child_pays_until_killed";
const ROUNDS: usize = 5;
const CLIENTS: usize = 4;
const SLUG: &str = "crash-bakery";
const SETUP: &str = "payment_crash_test";

/// What every round's child shares: the mini-app, its listing and the customers.
type Setup = (MiniAppId, ListingId, Vec<UserId>);

async fn open_app(database_url: &str) -> App {
    let store = open_store(database_url).await;
    let mut config = AppConfig::default();
    config.superapp.auto_approve = true;
    App::new(
        store,
        Authorizer::builtin().unwrap(),
        config,
        InstanceKey::generate(),
    )
}

fn customer_actor(customer: UserId) -> Actor {
    Actor {
        user_id: Some(customer),
        acting: None,
        credential: Credential::Session(SessionId::new()),
    }
}

#[test]
fn sigkill_during_mini_app_payments_pays_each_request_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in backends() {
        // A database of its own, which the child processes open by its URL.
        let test = runtime.block_on(TestStore::open(backend));
        runtime.block_on(test.store.close());
        kill_rounds(&runtime, test.database_url(), backend);
    }
}

fn kill_rounds(runtime: &tokio::runtime::Runtime, database_url: &str, backend: Backend) {
    let mut rng = rand::thread_rng();
    // Acknowledged payments: request → (order, amount).
    let mut acknowledged: HashMap<PaymentRequestId, (OrderId, i64)> = HashMap::new();
    let mut settled_total = 0;
    for round in 0..ROUNDS {
        let kill_after = rng.gen_range(5..40);
        // Somewhere inside the next confirmations, not just after an acknowledgement.
        let pause = Duration::from_micros(rng.gen_range(0..3_000));
        kill_child_after(
            CHILD_TEST,
            CHILD_ENV,
            database_url,
            kill_after,
            pause,
            |line| match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["paid", request, order, amount] => {
                    acknowledged.insert(
                        request.parse().unwrap(),
                        (order.parse().unwrap(), amount.parse().unwrap()),
                    );
                    true
                }
                _ => false,
            },
        );

        runtime.block_on(async {
            let app = open_app(database_url).await;
            let (app_id, _, customers) = recall::<Setup>(&app, SETUP).await.expect("the child set up");
            // The child is dead: every lease is stale.
            let stale_before = Timestamp::from_micros(Timestamp::now().as_micros() + 1);
            let settled = app.resume_payment_requests(stale_before).await.unwrap();
            settled_total += settled;

            let requests = app
                .store()
                .payment_requests_of_app(app_id, u32::MAX)
                .await
                .unwrap();
            let mut paid_orders: HashSet<OrderId> = HashSet::new();
            let mut paid_by: HashMap<UserId, i64> = HashMap::new();
            for request in &requests {
                match request.state.as_str() {
                    "paid" => {
                        let order_id = request.order_id.expect("a paid request names its order");
                        assert!(
                            paid_orders.insert(order_id),
                            "{backend:?} round {round}: order {order_id} pays two requests"
                        );
                        let doc = app
                            .store()
                            .document("order", &order_id.to_string())
                            .await
                            .unwrap()
                            .unwrap_or_else(|| {
                                panic!("{backend:?} round {round}: {} is paid by a lost order", request.id)
                            });
                        let order: Order = serde_json::from_str(&doc.body).unwrap();
                        assert_eq!(order.total, request.amount);
                        assert_eq!(order.customer, request.user_id);
                        assert!(order.payment.is_some(), "{backend:?} round {round}: {order_id} unpaid");
                        *paid_by.entry(request.user_id).or_default() += request.amount;
                    }
                    "pending" => assert_eq!(request.order_id, None),
                    other => panic!("{backend:?} round {round}: request {} is {other}", request.id),
                }
            }
            for (request, (order, amount)) in &acknowledged {
                let record = requests
                    .iter()
                    .find(|record| record.id == *request)
                    .unwrap_or_else(|| panic!("{backend:?} round {round}: acknowledged {request} is lost"));
                assert_eq!(record.state, "paid", "{backend:?} round {round}: acknowledged {request}");
                assert_eq!(record.order_id, Some(*order));
                assert_eq!(record.amount, *amount);
            }
            // Every order in the store pays one paid request: none was placed for a request
            // that went back to pending, where the customer could pay it again.
            let orders = app
                .store()
                .documents("order", None, None, 100_000)
                .await
                .unwrap();
            let stored: HashSet<OrderId> = orders
                .iter()
                .map(|doc| doc.id.parse().unwrap())
                .collect();
            assert_eq!(stored, paid_orders, "{backend:?} round {round}: orders and paid requests differ");

            // The wallets hold what was topped up less what was paid.
            let ledger = app.ledger().await.unwrap();
            let balance = |purpose: AccountPurpose| {
                let ledger = ledger.clone();
                async move {
                    ledger
                        .account(agora_market::account_id(&purpose, eur()))
                        .await
                        .unwrap()
                        .map_or(0, |account| account.credit_balance())
                }
            };
            let mut wallets = 0;
            for &who in &customers {
                wallets += balance(AccountPurpose::CustomerWallet { customer: who }).await;
                wallets += paid_by.get(&who).copied().unwrap_or(0);
            }
            let topped_up = -balance(AccountPurpose::WalletFunding).await;
            assert_eq!(wallets, topped_up, "{backend:?} round {round}: wallets disagree with payments");
            println!(
                "{backend:?} round {round}: killed after {kill_after} acknowledgements; {} requests, {} paid; {settled} interrupted confirmations settled",
                requests.len(),
                paid_orders.len()
            );
            app.shutdown().await;
            app.store().close().await;
        });
    }
    assert!(!acknowledged.is_empty());
    println!("interrupted confirmations settled over all rounds: {settled_total}");
}

/// The paying process of the test above; does nothing unless started by it.
#[test]
fn payment_crash_child_pays_until_killed() {
    let Ok(database_url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = open_app(&database_url).await;
        let system = Actor::system();
        let call = || Call::new(&system, RequestId::new());
        let setup: Setup = match recall(&app, SETUP).await {
            Some(setup) => setup,
            None => {
                let market = CrashMarket::create(&app, "Crash Bakery", "payer", CLIENTS).await;
                let manifest = serde_json::json!({
                    "slug": SLUG,
                    "name": "Crash Bakery",
                    "description": "Bread, paid from the wallet.",
                    "category": "food",
                    "entry": { "url": "https://bakery.example/app" },
                    "scopes": [],
                    "redirect_uris": ["https://bakery.example/callback"],
                });
                let registered = app
                    .register_miniapp(
                        &call(),
                        market.seller,
                        manifest.to_string().as_bytes(),
                        false,
                    )
                    .await
                    .unwrap();
                let setup = (registered.app.id, market.bread, market.customers);
                remember(&app, SETUP, &setup).await;
                setup
            }
        };
        let (_, bread, customers) = setup;
        let stop_at = Instant::now() + Duration::from_secs(60);
        let clients = customers.into_iter().map(|who| {
            let app = app.clone();
            tokio::spawn(async move {
                let system = Actor::system();
                let me = customer_actor(who);
                let mut rng = StdRng::from_entropy();
                while Instant::now() < stop_at {
                    app.top_up_wallet(
                        &Call::new(&system, RequestId::new()),
                        who,
                        eur(),
                        rng.gen_range(100..2_000),
                        None,
                    )
                    .await
                    .unwrap();
                    let request = app
                        .request_payment_in_portal(
                            &Call::new(&me, RequestId::new()),
                            SLUG,
                            NewPaymentRequest {
                                subject: None,
                                lines: vec![agora_app::PaymentLineInput {
                                    listing_id: bread,
                                    quantity: rng.gen_range(1..4),
                                    slot_id: None,
                                }],
                            },
                        )
                        .await
                        .unwrap();
                    let paid = app
                        .confirm_payment(
                            &Call::new(&me, RequestId::new()),
                            SLUG,
                            request.id,
                            request.amount,
                            &request.currency,
                        )
                        .await;
                    let paid = match paid {
                        Ok(paid) => paid,
                        // The wallet could not pay: the request waits, nothing was kept.
                        Err(agora_domain::Error::Unprocessable(_)) => continue,
                        Err(other) => panic!("{other}"),
                    };
                    let order = paid.order_id.expect("a paid request names its order");
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "paid {} {order} {}", request.id, request.amount).unwrap();
                    stdout.flush().unwrap();
                }
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.unwrap();
        }
    });
}
