//! The writer adds durability, not different answers: random histories (linked chains, two-phase
//! transfers, refusals, duplicates) sent through the writer, pipelined so that they share
//! commits, answer exactly as the same batches applied to a plain engine in memory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use agora_app::agora_ledger::Ledger;
use agora_app::{LedgerOptions, LedgerWriter};
use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, Currency, Transfer, TransferId, TransferKind,
};
use futures_util::future::join_all;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::harness::{TestStore, backends, eur};

/// Accounts per history: five in EUR (the first without a limit, to fund the others), one in USD.
const ACCOUNTS: usize = 6;
/// Transfer ids per history: few, so that ids repeat, with the same content or not.
const TRANSFER_IDS: u64 = 24;

/// One transfer of a generated batch, by index into the history's accounts and ids.
#[derive(Debug, Clone)]
enum Spec {
    New {
        id: u64,
        /// `ACCOUNTS` names an account that does not exist.
        debit: usize,
        credit: usize,
        amount: i64,
        kind: KindSpec,
        linked: bool,
    },
    /// Sends again, exactly, the `n`th transfer sent before (modulo how many there were).
    Repeat(usize),
}

#[derive(Debug, Clone, Copy)]
enum KindSpec {
    Single,
    /// A reservation that never expires, or only in an hour: the writer's clock and the
    /// engine's must not disagree on an expiry within the test.
    Pending {
        expires: bool,
    },
    Post {
        pending: u64,
    },
    Void {
        pending: u64,
    },
}

#[derive(Debug, Clone)]
struct History {
    limits: Vec<BalanceLimit>,
    batches: Vec<Vec<Spec>>,
}

fn limit() -> impl Strategy<Value = BalanceLimit> {
    prop_oneof![
        2 => Just(BalanceLimit::None),
        2 => Just(BalanceLimit::DebitsMustNotExceedCredits),
        1 => Just(BalanceLimit::CreditsMustNotExceedDebits),
    ]
}

fn kind() -> impl Strategy<Value = KindSpec> {
    prop_oneof![
        4 => Just(KindSpec::Single),
        2 => any::<bool>().prop_map(|expires| KindSpec::Pending { expires }),
        2 => (0..TRANSFER_IDS).prop_map(|pending| KindSpec::Post { pending }),
        1 => (0..TRANSFER_IDS).prop_map(|pending| KindSpec::Void { pending }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        6 => (
            0..TRANSFER_IDS,
            0..=ACCOUNTS,
            0..=ACCOUNTS,
            prop_oneof![1 => Just(0i64), 12 => 1..80i64],
            kind(),
            prop::bool::weighted(0.25),
        )
            .prop_map(|(id, debit, credit, amount, kind, linked)| Spec::New {
                id,
                debit,
                credit,
                amount,
                kind,
                linked,
            }),
        1 => any::<usize>().prop_map(Spec::Repeat),
    ]
}

fn history() -> impl Strategy<Value = History> {
    (
        prop::collection::vec(limit(), ACCOUNTS - 1),
        prop::collection::vec(prop::collection::vec(spec(), 1..10), 1..16),
    )
        .prop_map(|(mut limits, batches)| {
            limits[0] = BalanceLimit::None;
            History { limits, batches }
        })
}

/// Ids of one run of one history: fresh for every run, so that runs share a writer and a database.
struct Namespace(u64);

impl Namespace {
    fn account(&self, index: usize) -> AccountId {
        format!("acc_{:016x}{index:016x}", self.0).parse().unwrap()
    }

    fn transfer(&self, index: u64) -> TransferId {
        format!("trf_{:016x}{index:016x}", self.0).parse().unwrap()
    }
}

fn accounts(namespace: &Namespace, limits: &[BalanceLimit]) -> Vec<Account> {
    let usd = Currency::parse("USD").unwrap();
    let created_at = Timestamp::from_micros(1_700_000_000_000_000);
    let mut accounts: Vec<Account> = limits
        .iter()
        .enumerate()
        .map(|(index, &limit)| Account::new(namespace.account(index), eur(), 1, limit, created_at))
        .collect();
    accounts.push(Account::new(
        namespace.account(ACCOUNTS - 1),
        usd,
        1,
        BalanceLimit::None,
        created_at,
    ));
    accounts
}

fn batches(namespace: &Namespace, history: &History) -> Vec<Vec<Transfer>> {
    let mut sent: Vec<Transfer> = Vec::new();
    let mut batches = Vec::new();
    for specs in &history.batches {
        let mut batch = Vec::new();
        for spec in specs {
            let transfer = match *spec {
                Spec::Repeat(n) if !sent.is_empty() => sent[n % sent.len()].clone(),
                Spec::Repeat(_) => continue,
                Spec::New {
                    id,
                    debit,
                    credit,
                    amount,
                    kind,
                    linked,
                } => Transfer {
                    id: namespace.transfer(id),
                    debit_account_id: namespace.account(debit),
                    credit_account_id: namespace.account(credit),
                    amount,
                    currency: eur(),
                    code: 1,
                    kind: match kind {
                        KindSpec::Single => TransferKind::Single,
                        KindSpec::Pending { expires } => TransferKind::Pending {
                            timeout_seconds: if expires { 3_600 } else { 0 },
                        },
                        KindSpec::Post { pending } => TransferKind::PostPending {
                            pending_id: namespace.transfer(pending),
                        },
                        KindSpec::Void { pending } => TransferKind::VoidPending {
                            pending_id: namespace.transfer(pending),
                        },
                    },
                    linked,
                },
            };
            sent.push(transfer.clone());
            batch.push(transfer);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches
}

async fn check_history(
    writer: &LedgerWriter,
    namespace: Namespace,
    history: History,
    finals: &Mutex<Vec<Account>>,
) -> Result<(), TestCaseError> {
    let mut engine = Ledger::new();
    let accounts = accounts(&namespace, &history.limits);
    let created = writer.create_accounts(accounts.clone()).await.unwrap();
    prop_assert_eq!(&created, &engine.create_accounts(&accounts));
    let batches = batches(&namespace, &history);
    // Sent all at once, in order: the writer groups them as it pleases, and must not care.
    let answers = join_all(batches.iter().map(|batch| writer.transfer(batch.clone()))).await;
    for (batch, answer) in batches.iter().zip(answers) {
        let expected = engine.apply(batch, Timestamp::now()).results;
        prop_assert_eq!(answer.unwrap(), expected, "batch {:#?}", batch);
    }
    for account in &accounts {
        let written = writer.account(account.id).await.unwrap().unwrap();
        let in_memory = engine.account(account.id).unwrap();
        prop_assert_eq!(written.balances(), in_memory.balances());
    }
    prop_assert!(engine.check_invariants().is_ok());
    finals.lock().unwrap().extend(engine.accounts().cloned());
    Ok(())
}

#[test]
fn the_writer_answers_exactly_as_the_engine_alone() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in backends() {
        let test = runtime.block_on(TestStore::open(backend));
        let writer = runtime.block_on(test.writer(LedgerOptions::default()));
        let runs = AtomicU64::new(1);
        let finals = Mutex::new(Vec::new());
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&history(), |history| {
            let namespace = Namespace(runs.fetch_add(1, Ordering::Relaxed));
            runtime.block_on(check_history(&writer, namespace, history, &finals))
        });
        if let Err(failure) = outcome {
            panic!("{backend:?}: {failure}");
        }

        // Everything answered is durable: a new writer restores the same balances.
        runtime.block_on(async {
            writer.shutdown().await;
            assert!(test.store.verify_ledger_chain().await.unwrap().is_ok());
            let restarted = test.writer(LedgerOptions::default()).await;
            let finals = finals.into_inner().unwrap();
            assert!(!finals.is_empty());
            for account in finals {
                let restored: Balances = restarted
                    .account(account.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .balances();
                assert_eq!(restored, account.balances(), "{backend:?}");
            }
            restarted.shutdown().await;
        });
    }
}
