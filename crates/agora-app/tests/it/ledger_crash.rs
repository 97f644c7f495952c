//! A writer killed with SIGKILL loses no transfer it acknowledged, applies none twice, and
//! leaves a history that restores and whose chain verifies.
//!
//! The test binary runs itself again as the writer: the child test below, selected with
//! `--exact` and given its SQLite file through `AGORA_LEDGER_CRASH_CHILD`, applies transfers
//! from several clients at once and prints every acknowledged id; the parent kills it after a
//! random number of acknowledgements, then restarts a writer on the file and checks. SQLite only:
//! the process killed is the one holding the database, which is what the test is about; on
//! PostgreSQL the server process would survive the client's death, which proves less.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use agora_app::{LedgerOptions, LedgerWriter};
use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, RecordCause, TransferId, TransferKind, TransferResult,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{eur, kill_child_after, open_store, single};

const CHILD_ENV: &str = "AGORA_LEDGER_CRASH_CHILD";
const CHILD_TEST: &str = "ledger_crash::crash_child_applies_transfers_until_killed";
const ROUNDS: usize = 5;
const CLIENTS: usize = 8;

fn database_url(dir: &str) -> String {
    format!("sqlite://{dir}/ledger.db")
}

/// The child's accounts: fixed ids, so that every round's child finds the same ones.
fn accounts() -> Vec<Account> {
    let created_at = Timestamp::from_micros(1_700_000_000_000_000);
    (0..=CLIENTS as u128)
        .map(|number| {
            let limit = if number == 0 {
                BalanceLimit::None
            } else {
                BalanceLimit::DebitsMustNotExceedCredits
            };
            let id: AccountId = format!("acc_{:032x}", 0xc0ff_ee00_0000 + number)
                .parse()
                .unwrap();
            Account::new(id, eur(), 1, limit, created_at)
        })
        .collect()
}

#[test]
fn sigkill_during_group_commits_loses_no_acknowledged_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = rand::thread_rng();
    let mut created: Vec<TransferId> = Vec::new();
    let mut failed: Vec<TransferId> = Vec::new();
    for round in 0..ROUNDS {
        let kill_after = rng.gen_range(10..400);
        kill_child_after(
            CHILD_TEST,
            CHILD_ENV,
            &dir_text,
            kill_after,
            Duration::ZERO,
            |line| {
                if let Some(id) = line.strip_prefix("created ") {
                    created.push(id.parse().unwrap());
                } else if let Some(id) = line.strip_prefix("failed ") {
                    failed.push(id.parse().unwrap());
                } else {
                    return false;
                }
                true
            },
        );

        runtime.block_on(async {
            let store = open_store(&database_url(&dir_text)).await;
            // Restoring replays the whole history and checks the invariants; it refuses to start otherwise.
            let writer = LedgerWriter::start(store.clone(), LedgerOptions::default())
                .await
                .unwrap_or_else(|error| panic!("round {round}: {error}"));
            let mut applied: HashMap<TransferId, usize> = HashMap::new();
            let mut after_seq = 0;
            loop {
                let page = store.ledger_records(after_seq, 10_000).await.unwrap();
                let Some((last_seq, _)) = page.last() else {
                    break;
                };
                after_seq = *last_seq;
                for (_, record) in page {
                    if record.cause == RecordCause::Transfer {
                        *applied.entry(record.transfer.id).or_default() += 1;
                    }
                }
            }
            assert!(
                applied.values().all(|&count| count == 1),
                "round {round}: a transfer is recorded twice"
            );
            for id in &created {
                assert_eq!(applied.get(id), Some(&1), "round {round}: acknowledged {id} is lost");
                assert!(store.ledger_transfer(*id).await.unwrap().is_some());
            }
            let failures: HashSet<TransferId> = store
                .ledger_failures()
                .await
                .unwrap()
                .into_iter()
                .map(|failure| failure.id)
                .collect();
            for id in &failed {
                assert!(failures.contains(id), "round {round}: failed {id} is not stored as failed");
            }
            let batches = store.verify_ledger_chain().await.unwrap();
            assert!(batches.is_ok(), "round {round}: {batches:?}");
            println!(
                "round {round}: killed after {kill_after} acknowledgements; {} transfers and {} failures acknowledged so far, {} batches verify",
                created.len(),
                failed.len(),
                batches.unwrap()
            );
            writer.shutdown().await;
            store.close().await;
        });
    }
    assert!(!created.is_empty());
}

/// The writer process of the test above. Run alone, without `AGORA_LEDGER_CRASH_CHILD`, it does
/// nothing: libtest has no way to run a test only when asked by name.
#[test]
fn crash_child_applies_transfers_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = open_store(&database_url(&dir)).await;
        let writer = LedgerWriter::start(store, LedgerOptions::default())
            .await
            .unwrap();
        let accounts = accounts();
        writer.create_accounts(accounts.clone()).await.unwrap();
        let bank = accounts[0].id;
        let wallets: Vec<AccountId> = accounts[1..].iter().map(|account| account.id).collect();
        // A bound, should the parent die without killing its child.
        let stop_at = Instant::now() + Duration::from_secs(60);
        let clients = (0..CLIENTS).map(|client| {
            let writer = writer.clone();
            let wallets = wallets.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::from_entropy();
                let wallet = wallets[client];
                let next = wallets[(client + 1) % CLIENTS];
                while Instant::now() < stop_at {
                    // Funding, a payment that the wallet's limit may refuse, and a reservation
                    // that expires a second later, some of them linked into chains.
                    let mut batch = Vec::new();
                    for _ in 0..rng.gen_range(1..=3) {
                        let mut transfer = match rng.gen_range(0..3) {
                            0 => single(bank, wallet, rng.gen_range(1..=100)),
                            1 => single(wallet, next, rng.gen_range(1..=200)),
                            _ => {
                                let mut pending = single(wallet, bank, rng.gen_range(1..=50));
                                pending.kind = TransferKind::Pending { timeout_seconds: 1 };
                                pending
                            }
                        };
                        transfer.linked = rng.gen_bool(0.2);
                        batch.push(transfer);
                    }
                    batch.last_mut().unwrap().linked = false;
                    let ids: Vec<TransferId> = batch.iter().map(|transfer| transfer.id).collect();
                    let results = writer.transfer(batch).await.unwrap();
                    let mut stdout = std::io::stdout().lock();
                    for (id, result) in ids.iter().zip(results) {
                        match result {
                            TransferResult::Created => writeln!(stdout, "created {id}").unwrap(),
                            TransferResult::ExceedsCredits => {
                                writeln!(stdout, "failed {id}").unwrap()
                            }
                            TransferResult::LinkedEventFailed => {}
                            other => panic!("unexpected answer {other:?}"),
                        }
                    }
                    stdout.flush().unwrap();
                }
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.unwrap();
        }
    });
}
