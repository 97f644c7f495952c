//! Marketplace steps killed with SIGKILL at random moments: after each restart, the steps a
//! crash interrupted are finished, every acknowledged order, refund and top-up is there exactly
//! once, and the ledger agrees with the marketplace's records.
//!
//! As in `ledger_crash`, the test binary runs itself again as the child, which sets up a seller
//! and a listing once, then tops up wallets, places orders paid from the wallet, fulfils and
//! refunds from several clients at once, printing each acknowledgement. On SQLite, and on
//! PostgreSQL when the tests have one.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use agora_app::agora_policy::Authorizer;
use agora_app::{App, AppConfig, Call, CartLine, InstanceKey, NewOrder, NewRefund, PayWith};
use agora_domain::{Actor, ListingId, OrderId, OrgId, RequestId, Timestamp, UserId};
use agora_market::AccountPurpose;
use agora_market::order::{Order, OrderStatus, PaymentMethod};
use agora_store::StepStatus;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{
    Backend, CrashMarket, TestStore, backends, eur, kill_child_after, open_store, recall, remember,
};

const CHILD_ENV: &str = "AGORA_MARKET_CRASH_CHILD";
const CHILD_TEST: &str = "market_crash::market_crash_child_trades_until_killed";
const ROUNDS: usize = 6;
const CLIENTS: usize = 4;
const SETUP: &str = "crash_test";

fn customer(client: usize) -> UserId {
    format!("usr_{:032x}", 0xc0ff_ee00_0000 + client as u128)
        .parse()
        .unwrap()
}

/// The setup every round's child shares: the seller, its listing, and one customer per client.
type Setup = (OrgId, ListingId, Vec<UserId>);

async fn open_app(database_url: &str) -> App {
    let store = open_store(database_url).await;
    App::new(
        store,
        Authorizer::builtin().unwrap(),
        AppConfig::default(),
        InstanceKey::generate(),
    )
}

#[test]
fn sigkill_during_marketplace_steps_loses_and_doubles_nothing() {
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
    let mut orders: HashMap<OrderId, i64> = HashMap::new();
    let mut refunds: HashMap<String, i64> = HashMap::new();
    let mut resumed_total = 0;
    for round in 0..ROUNDS {
        let kill_after = rng.gen_range(5..60);
        // Somewhere inside the next steps, not just after an acknowledgement.
        let pause = Duration::from_micros(rng.gen_range(0..3_000));
        kill_child_after(
            CHILD_TEST,
            CHILD_ENV,
            database_url,
            kill_after,
            pause,
            |line| {
                match line.split(' ').collect::<Vec<_>>().as_slice() {
                    ["order", id, total] => {
                        orders.insert(id.parse().unwrap(), total.parse().unwrap());
                    }
                    ["refund", id, amount] => {
                        refunds.insert((*id).to_owned(), amount.parse().unwrap());
                    }
                    _ => return false,
                }
                true
            },
        );

        runtime.block_on(async {
            let app = open_app(database_url).await;
            let planned = app.store().planned_steps().await.unwrap().len();
            resumed_total += planned;
            app.resume_market().await.unwrap();
            assert!(
                app.store().planned_steps().await.unwrap().is_empty(),
                "{backend:?} round {round}: planned steps remain after resuming"
            );
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

            // Every stored order agrees with its clearing account; every acknowledged one is stored and paid.
            let mut stored: HashMap<OrderId, Order> = HashMap::new();
            let mut after: Option<String> = None;
            loop {
                let page = app
                    .store()
                    .documents("order", None, after.as_deref(), 500)
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                for doc in &page {
                    let order: Order = serde_json::from_str(&doc.body).unwrap();
                    stored.insert(order.id, order);
                }
            }
            for (id, total) in &orders {
                let order = stored
                    .get(id)
                    .unwrap_or_else(|| panic!("{backend:?} round {round}: acknowledged order {id} is lost"));
                assert_eq!(order.total, *total);
                assert_ne!(order.status, OrderStatus::Placed, "{backend:?} round {round}: {id} unpaid");
            }
            let mut wallet_paid: HashMap<UserId, i64> = HashMap::new();
            let mut refunded_to_wallet: HashMap<UserId, i64> = HashMap::new();
            for order in stored.values() {
                assert_eq!(
                    balance(AccountPurpose::OrderClearing { order: order.id }).await,
                    order.clearing_balance(),
                    "{backend:?} round {round}: order {} disagrees with its clearing account",
                    order.id
                );
                assert_eq!(
                    order.paid(),
                    order.parts.iter().filter(|part| part.is_cleared()).map(|part| part.net + part.commission).sum::<i64>()
                        + order.refunded()
                        + order.clearing_balance(),
                );
                if let Some(payment) = &order.payment {
                    assert!(matches!(payment.method, PaymentMethod::Wallet { .. }));
                    *wallet_paid.entry(order.customer).or_default() += payment.amount;
                    *refunded_to_wallet.entry(order.customer).or_default() += order.refunded();
                }
            }
            // Every acknowledged refund is there, once.
            let mut refund_docs = 0;
            for (id, amount) in &refunds {
                let doc = app.store().document("refund", id).await.unwrap();
                let doc = doc.unwrap_or_else(|| panic!("{backend:?} round {round}: acknowledged refund {id} is lost"));
                let record: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
                assert_eq!(record["amount"], *amount);
                refund_docs += 1;
            }
            // What the wallets hold is what was topped up, less what they paid, plus what came back.
            let (_, _, customers) = recall::<Setup>(&app, SETUP).await.expect("the child set up the market");
            let mut wallets = 0;
            for &who in &customers {
                wallets += balance(AccountPurpose::CustomerWallet { customer: who }).await;
                wallets += wallet_paid.get(&who).copied().unwrap_or(0);
                wallets -= refunded_to_wallet.get(&who).copied().unwrap_or(0);
            }
            let topped_up = -balance(AccountPurpose::WalletFunding).await;
            assert_eq!(wallets, topped_up, "{backend:?} round {round}: wallets disagree with top-ups, orders and refunds");
            let counts = app.store().step_counts().await.unwrap();
            assert!(counts.iter().all(|(status, _)| *status != StepStatus::Planned));
            let report = app.store().verify_ledger_chain().await.unwrap();
            assert!(report.is_ok(), "{backend:?} round {round}: {report:?}");
            println!(
                "{backend:?} round {round}: killed after {kill_after} acknowledgements; {} orders, {refund_docs} refunds acknowledged so far; {planned} steps resumed; steps {counts:?}",
                orders.len()
            );
            app.shutdown().await;
            app.store().close().await;
        });
    }
    assert!(!orders.is_empty());
    println!("steps resumed after a kill, over all rounds: {resumed_total}");
}

/// The trading process of the test above; does nothing unless started by it.
#[test]
fn market_crash_child_trades_until_killed() {
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
        // The seller and its listing, made once and found again by the next rounds.
        let setup: Setup = match recall(&app, SETUP).await {
            Some(setup) => setup,
            None => {
                let market = CrashMarket::create(&app, "Crash Grocer", "customer", CLIENTS).await;
                let setup = (market.seller, market.bread, market.customers);
                remember(&app, SETUP, &setup).await;
                setup
            }
        };
        let (seller, bread, customers) = setup;
        let stop_at = Instant::now() + Duration::from_secs(60);
        let clients = (0..CLIENTS).map(|client| {
            let app = app.clone();
            let who = customers[client];
            tokio::spawn(async move {
                let system = Actor::system();
                let call = || Call::new(&system, RequestId::new());
                let mut rng = StdRng::from_entropy();
                while Instant::now() < stop_at {
                    app.top_up_wallet(&call(), who, eur(), rng.gen_range(100..2_000), None)
                        .await
                        .unwrap();
                    let placed = app
                        .place_order(
                            &call(),
                            who,
                            NewOrder {
                                lines: vec![CartLine {
                                    listing_id: bread,
                                    quantity: rng.gen_range(1..4),
                                    slot_id: None,
                                }],
                                pay_with: PayWith::Wallet,
                                expected_total: None,
                            },
                        )
                        .await;
                    let order = match placed {
                        Ok(view) => view.order,
                        // The wallet could not pay: nothing was kept.
                        Err(agora_domain::Error::Unprocessable(_)) => continue,
                        Err(other) => panic!("{other}"),
                    };
                    {
                        let mut stdout = std::io::stdout().lock();
                        writeln!(stdout, "order {} {}", order.id, order.total).unwrap();
                        stdout.flush().unwrap();
                    }
                    if rng.gen_bool(0.5) {
                        app.fulfil_order(&call(), order.id, seller).await.unwrap();
                    }
                    if rng.gen_bool(0.4) {
                        let line = order.lines[0].id;
                        let amount = rng.gen_range(1..=order.lines[0].gross);
                        let refund = app
                            .refund_order(
                                &call(),
                                order.id,
                                NewRefund {
                                    line_id: line,
                                    amount,
                                    reason: "crash test".into(),
                                },
                            )
                            .await
                            .unwrap();
                        let mut stdout = std::io::stdout().lock();
                        writeln!(stdout, "refund {} {}", refund.id, refund.amount).unwrap();
                        stdout.flush().unwrap();
                    }
                }
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.unwrap();
        }
    });
}

/// The resume path itself, made to happen: a step written `planned` whose plan the ledger never
/// saw is applied and finished; one whose plan the ledger already applied is finished without
/// applying it again; and its stored state and events are written either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_steps_are_finished_once_whether_or_not_the_ledger_saw_them() {
    for backend in crate::harness::backends() {
        let test = crate::harness::TestStore::open(backend).await;
        let app = App::new(
            test.store.clone(),
            Authorizer::builtin().unwrap(),
            AppConfig::default(),
            InstanceKey::generate(),
        );
        let now = Timestamp::now();
        let who = customer(0);
        let unseen =
            agora_market::wallet::top_up(who, eur(), 700, agora_domain::PaymentId::new(), now)
                .unwrap();
        let seen =
            agora_market::wallet::top_up(who, eur(), 300, agora_domain::PaymentId::new(), now)
                .unwrap();
        // The second plan reached the ledger before the "crash".
        let ledger = app.ledger().await.unwrap();
        ledger.create_accounts(seen.accounts.clone()).await.unwrap();
        let applied = ledger.transfer(seen.transfers.clone()).await.unwrap();
        assert!(applied.iter().all(|result| result.is_created()));
        let mut tx = app.store().write().await.unwrap();
        for plan in [&unseen, &seen] {
            let output = serde_json::json!({
                "docs": [{ "kind": "note", "id": plan.step.as_str(), "owner": null, "status": null, "sort_key": null, "body": "{}" }],
                "order_sellers": null,
                "events": [{ "event_type": "wallet.topped_up", "subject": who.to_string(), "org_id": null, "data": {} }],
                "audit_action": "wallet.top_up",
                "audit_resource_type": "customer",
                "audit_resource_id": who.to_string(),
                "audit_subject_org": null,
                "audit_detail": {},
            });
            tx.insert_step(
                plan.step.as_str(),
                "wallet_top_up",
                &who.to_string(),
                &serde_json::to_string(plan).unwrap(),
                &output.to_string(),
                now,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        app.resume_market().await.unwrap();
        assert!(app.store().planned_steps().await.unwrap().is_empty());
        for plan in [&unseen, &seen] {
            let step = app.store().step(plan.step.as_str()).await.unwrap().unwrap();
            assert_eq!(step.status, StepStatus::Done);
            assert!(
                app.store()
                    .document("note", plan.step.as_str())
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let wallet = ledger
            .account(agora_market::account_id(
                &AccountPurpose::CustomerWallet { customer: who },
                eur(),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            wallet.credit_balance(),
            1_000,
            "each plan applied exactly once"
        );
        let events = app.store().events(None, 0, 100).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|event| event.event_type == "wallet.topped_up")
                .count(),
            2
        );
        app.shutdown().await;
    }
}
