//! The ledger's single writer on a real database: concurrent clients share commits and lose
//! nothing, replays move nothing, limits refuse before queueing, a failed commit is forgotten,
//! reservations expire on the writer's own timer, and shutdown drains.

use std::collections::HashMap;
use std::time::Duration;

use agora_app::agora_ledger::AccountResult;
use agora_app::{LedgerOptions, LedgerWriter};
use agora_domain::Error;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, RecordCause, TransferField, TransferKind,
    TransferResult,
};
use futures_util::future::join_all;
use rand::Rng;

use crate::harness::{Backend, TestStore, account, backends, single};

/// Creates accounts through the writer and checks that each was created.
async fn create(writer: &LedgerWriter, accounts: &[Account]) {
    let results = writer.create_accounts(accounts.to_vec()).await.unwrap();
    assert!(
        results
            .iter()
            .all(|result| *result == AccountResult::Created),
        "{results:?}"
    );
}

async fn balances(writer: &LedgerWriter, id: AccountId) -> Balances {
    writer.account(id).await.unwrap().unwrap().balances()
}

fn posted(debits: i64, credits: i64) -> Balances {
    Balances {
        debits_posted: debits,
        credits_posted: credits,
        ..Balances::default()
    }
}

/// One client's single transfers between its funding account and the hot account.
struct ClientOutcome {
    /// Moved from the funding account to the hot one, by transfers that answered `Created`.
    out: i64,
    /// Moved back from the hot account.
    back: i64,
    refused: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_share_commits_and_balances_match_the_answers() {
    const CLIENTS: usize = 64;
    const TRANSFERS_PER_CLIENT: usize = 30;
    const FUNDING: i64 = 1_000;
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let writer = test.writer(LedgerOptions::default()).await;
        let bank = account(BalanceLimit::None);
        let hot = account(BalanceLimit::DebitsMustNotExceedCredits);
        let funds: Vec<Account> = (0..CLIENTS)
            .map(|_| account(BalanceLimit::DebitsMustNotExceedCredits))
            .collect();
        let mut all = vec![bank.clone(), hot.clone()];
        all.extend(funds.iter().cloned());
        create(&writer, &all).await;
        let funding: Vec<_> = funds
            .iter()
            .map(|fund| single(bank.id, fund.id, FUNDING))
            .collect();
        let results = writer.transfer(funding).await.unwrap();
        assert!(results.iter().all(|result| result.is_created()));
        let before = writer.stats();

        let clients: Vec<_> = funds
            .iter()
            .map(|fund| {
                let writer = writer.clone();
                let (fund, hot) = (fund.id, hot.id);
                tokio::spawn(async move {
                    let mut outcome = ClientOutcome {
                        out: 0,
                        back: 0,
                        refused: 0,
                    };
                    for index in 0..TRANSFERS_PER_CLIENT {
                        let amount = rand::thread_rng().gen_range(1..=150);
                        let back = index % 3 == 2;
                        let transfer = if back {
                            single(hot, fund, amount)
                        } else {
                            single(fund, hot, amount)
                        };
                        let results = writer.transfer(vec![transfer]).await.unwrap();
                        match (results.as_slice(), back) {
                            ([TransferResult::Created], false) => outcome.out += amount,
                            ([TransferResult::Created], true) => outcome.back += amount,
                            ([TransferResult::ExceedsCredits], _) => outcome.refused += 1,
                            (other, _) => panic!("unexpected answer {other:?}"),
                        }
                    }
                    outcome
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for client in clients {
            outcomes.push(client.await.unwrap());
        }

        let stats = writer.stats();
        let transfers = (CLIENTS * TRANSFERS_PER_CLIENT) as u64;
        let batches = stats.batches_committed - before.batches_committed;
        assert_eq!(
            stats.transfers_committed - before.transfers_committed,
            transfers
        );
        println!(
            "{backend:?}: {transfers} single-transfer requests from {CLIENTS} clients committed in {batches} batches (largest {})",
            stats.batch_transfers_largest
        );
        assert!(
            batches < transfers && stats.batch_transfers_largest > 1,
            "{backend:?}: concurrent requests must share commits: {stats:?}"
        );

        let out: i64 = outcomes.iter().map(|outcome| outcome.out).sum();
        let back: i64 = outcomes.iter().map(|outcome| outcome.back).sum();
        let mut expected = HashMap::new();
        expected.insert(bank.id, posted(FUNDING * CLIENTS as i64, 0));
        expected.insert(hot.id, posted(back, out));
        for (fund, outcome) in funds.iter().zip(&outcomes) {
            expected.insert(fund.id, posted(outcome.out, FUNDING + outcome.back));
        }
        for (&id, &balances_expected) in &expected {
            assert_eq!(
                balances(&writer, id).await,
                balances_expected,
                "{backend:?}"
            );
        }
        let stored: HashMap<AccountId, Balances> = test
            .store
            .ledger_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|account| (account.id, account.balances()))
            .collect();
        assert_eq!(
            stored, expected,
            "{backend:?}: storage holds the engine's balances"
        );
        let refused: u64 = outcomes.iter().map(|outcome| outcome.refused).sum();
        assert_eq!(
            test.store.ledger_failures().await.unwrap().len() as u64,
            refused,
            "{backend:?}: every refusal is stored so that its id stays failed"
        );
        assert!(test.store.verify_ledger_chain().await.unwrap().is_ok());

        writer.shutdown().await;
        let restarted = test.writer(LedgerOptions::default()).await;
        for (&id, &balances_expected) in &expected {
            assert_eq!(
                balances(&restarted, id).await,
                balances_expected,
                "{backend:?}: a restart restores the same balances"
            );
        }
        restarted.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_answer_exists_and_move_nothing_even_concurrently() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let writer = test.writer(LedgerOptions::default()).await;
        let (a, b) = (account(BalanceLimit::None), account(BalanceLimit::None));
        let wallet = account(BalanceLimit::DebitsMustNotExceedCredits);
        create(&writer, &[a.clone(), b.clone(), wallet.clone()]).await;
        let mut chain_first = single(a.id, b.id, 5);
        chain_first.linked = true;
        let mut pending = single(a.id, b.id, 7);
        pending.kind = TransferKind::Pending { timeout_seconds: 0 };
        let batch = vec![
            single(a.id, b.id, 10),
            chain_first,
            single(b.id, a.id, 2),
            pending,
            single(wallet.id, a.id, 1),
        ];
        let first = writer.transfer(batch.clone()).await.unwrap();
        use TransferResult::*;
        assert_eq!(first, [Created, Created, Created, Created, ExceedsCredits]);
        let balances_after = (balances(&writer, a.id).await, balances(&writer, b.id).await);
        let stats = writer.stats();

        let replays = join_all((0..16).map(|_| writer.transfer(batch.clone()))).await;
        for replay in replays {
            assert_eq!(
                replay.unwrap(),
                [Exists, Exists, Exists, Exists, IdAlreadyFailed],
                "{backend:?}"
            );
        }
        assert_eq!(
            (balances(&writer, a.id).await, balances(&writer, b.id).await),
            balances_after,
            "{backend:?}: replays move nothing"
        );
        assert_eq!(writer.stats(), stats, "{backend:?}: replays commit nothing");

        let mut more = batch[0].clone();
        more.amount += 1;
        let mut elsewhere = batch[0].clone();
        elsewhere.credit_account_id = wallet.id;
        assert_eq!(
            writer.transfer(vec![more, elsewhere]).await.unwrap(),
            [
                ExistsWithDifferentField {
                    field: TransferField::Amount
                },
                ExistsWithDifferentField {
                    field: TransferField::CreditAccountId
                },
            ],
            "{backend:?}"
        );

        // The same new transfer from 16 clients at once: it moves once.
        let fresh = single(a.id, b.id, 100);
        let answers = join_all((0..16).map(|_| writer.transfer(vec![fresh.clone()]))).await;
        let answers: Vec<_> = answers
            .into_iter()
            .map(|answer| answer.unwrap()[0])
            .collect();
        assert_eq!(
            answers.iter().filter(|answer| **answer == Created).count(),
            1
        );
        assert_eq!(
            answers.iter().filter(|answer| **answer == Exists).count(),
            15
        );
        let b_now = balances(&writer, b.id).await;
        assert_eq!(b_now.credits_posted, balances_after.1.credits_posted + 100);

        // Idempotency survives a restart: it is restored from storage, not kept in memory only.
        writer.shutdown().await;
        let restarted = test.writer(LedgerOptions::default()).await;
        assert_eq!(
            restarted.transfer(batch).await.unwrap(),
            [Exists, Exists, Exists, Exists, IdAlreadyFailed],
            "{backend:?}"
        );
        assert_eq!(restarted.transfer(vec![fresh]).await.unwrap(), [Exists]);
        assert_eq!(balances(&restarted, b.id).await, b_now);
        // Creating the same accounts again answers `Exists`, and a changed one names the field.
        let mut stricter = a.clone();
        stricter.limit = BalanceLimit::DebitsMustNotExceedCredits;
        assert_eq!(
            restarted.create_accounts(vec![b, stricter]).await.unwrap(),
            [
                AccountResult::Exists,
                AccountResult::ExistsWithDifferentField {
                    field: agora_app::agora_ledger::AccountField::Limit
                }
            ]
        );
        restarted.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_batch_transfers_max_are_refused_unqueued_and_groups_stay_within_it() {
    let test = TestStore::open(Backend::Sqlite).await;
    for (options, field) in [
        (
            LedgerOptions {
                batch_transfers_max: 0,
                ..LedgerOptions::default()
            },
            "batch_transfers_max",
        ),
        (
            LedgerOptions {
                batch_transfers_max: 8_191,
                ..LedgerOptions::default()
            },
            "batch_transfers_max",
        ),
        (
            LedgerOptions {
                queue_requests_max: 0,
                ..LedgerOptions::default()
            },
            "queue_requests_max",
        ),
        (
            LedgerOptions {
                expiry_check_ms: 0,
                ..LedgerOptions::default()
            },
            "expiry_check_ms",
        ),
    ] {
        match LedgerWriter::start(test.store.clone(), options).await {
            Err(Error::Invalid { field: refused, .. }) => assert_eq!(refused, field),
            other => panic!("{field}: {other:?}"),
        }
    }

    let options = LedgerOptions {
        batch_transfers_max: 4,
        queue_requests_max: 8,
        ..LedgerOptions::default()
    };
    let writer = test.writer(options).await;
    let (a, b) = (account(BalanceLimit::None), account(BalanceLimit::None));
    create(&writer, &[a.clone(), b.clone()]).await;
    let too_many: Vec<_> = (0..5).map(|_| single(a.id, b.id, 1)).collect();
    match writer.transfer(too_many).await {
        Err(Error::LimitExceeded { limit, message }) => {
            assert_eq!(limit, "batch_transfers_max");
            assert!(message.contains("at most 4"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let too_many_accounts: Vec<_> = (0..5).map(|_| account(BalanceLimit::None)).collect();
    assert!(matches!(
        writer.create_accounts(too_many_accounts).await,
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(balances(&writer, a.id).await, Balances::default());
    assert_eq!(writer.transfer(Vec::new()).await.unwrap(), []);

    // Requests of 3 from 16 clients through a queue of 8: two never fit in one group of 4.
    let stats_before = writer.stats();
    let requests = (0..16).map(|_| {
        let writer = writer.clone();
        let batch: Vec<_> = (0..3).map(|_| single(a.id, b.id, 1)).collect();
        tokio::spawn(async move { writer.transfer(batch).await })
    });
    for request in requests {
        let results = request.await.unwrap().unwrap();
        assert!(results.iter().all(|result| result.is_created()));
    }
    let stats = writer.stats();
    assert_eq!(
        stats.transfers_committed - stats_before.transfers_committed,
        48
    );
    assert_eq!(stats.batch_transfers_largest, 3, "{stats:?}");
    assert_eq!(balances(&writer, b.id).await, posted(0, 48));
    writer.shutdown().await;
}

/// Makes every insert of a ledger record fail, as a full disk or a broken connection would.
async fn refuse_records(test: &TestStore) {
    match test.backend {
        Backend::Sqlite => {
            test.execute(
                "CREATE TRIGGER agora_test_refuse BEFORE INSERT ON ledger_batches \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
        }
        Backend::Postgres => {
            test.execute(
                "CREATE FUNCTION agora_test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            )
            .await;
            test.execute(
                "CREATE TRIGGER agora_test_refuse BEFORE INSERT ON ledger_batches \
                 FOR EACH STATEMENT EXECUTE FUNCTION agora_test_refuse()",
            )
            .await
        }
    }
}

async fn accept_records(test: &TestStore) {
    match test.backend {
        Backend::Sqlite => test.execute("DROP TRIGGER agora_test_refuse").await,
        Backend::Postgres => {
            test.execute("DROP TRIGGER agora_test_refuse ON ledger_batches")
                .await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_answers_every_request_with_the_error_and_is_forgotten() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let writer = test.writer(LedgerOptions::default()).await;
        let (a, b) = (account(BalanceLimit::None), account(BalanceLimit::None));
        create(&writer, &[a.clone(), b.clone()]).await;
        let kept = single(a.id, b.id, 10);
        assert_eq!(
            writer.transfer(vec![kept.clone()]).await.unwrap(),
            [TransferResult::Created]
        );

        refuse_records(&test).await;
        let lost: Vec<_> = (0..8)
            .map(|index| single(a.id, b.id, 100 + index))
            .collect();
        let answers = join_all(
            lost.iter()
                .map(|transfer| writer.transfer(vec![transfer.clone()])),
        )
        .await;
        for answer in answers {
            assert!(answer.is_err(), "{backend:?}: {answer:?}");
        }
        // The engine was rebuilt from storage: what failed to commit is gone from memory too.
        assert_eq!(balances(&writer, b.id).await, posted(0, 10), "{backend:?}");

        accept_records(&test).await;
        let answers = writer.transfer(lost.clone()).await.unwrap();
        assert!(
            answers.iter().all(|answer| answer.is_created()),
            "{backend:?}: the ids never committed, so they apply now: {answers:?}"
        );
        assert_eq!(
            writer.transfer(vec![kept]).await.unwrap(),
            [TransferResult::Exists]
        );
        let moved: i64 = 10 + lost.iter().map(|transfer| transfer.amount).sum::<i64>();
        assert_eq!(balances(&writer, b.id).await, posted(0, moved));
        assert!(test.store.verify_ledger_chain().await.unwrap().is_ok());
        writer.shutdown().await;
        let restarted = test.writer(LedgerOptions::default()).await;
        assert_eq!(
            balances(&restarted, b.id).await,
            posted(0, moved),
            "{backend:?}"
        );
        restarted.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_expires_on_the_writers_timer_and_the_expiry_is_durable() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let options = LedgerOptions {
            expiry_check_ms: 20,
            ..LedgerOptions::default()
        };
        let writer = test.writer(options.clone()).await;
        let (a, b) = (account(BalanceLimit::None), account(BalanceLimit::None));
        create(&writer, &[a.clone(), b.clone()]).await;
        let mut pending = single(a.id, b.id, 25);
        pending.kind = TransferKind::Pending { timeout_seconds: 1 };
        assert_eq!(
            writer.transfer(vec![pending.clone()]).await.unwrap(),
            [TransferResult::Created]
        );
        assert_eq!(balances(&writer, a.id).await.debits_pending, 25);

        // No request comes: the writer wakes by itself once the second has passed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while balances(&writer, a.id).await.debits_pending != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: never expired"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let records = test.store.ledger_records(0, 100).await.unwrap();
        let causes: Vec<_> = records.iter().map(|(_, record)| record.cause).collect();
        assert_eq!(
            causes,
            [RecordCause::Transfer, RecordCause::Expiry],
            "{backend:?}"
        );
        let mut post = single(a.id, b.id, 0);
        post.kind = TransferKind::PostPending {
            pending_id: pending.id,
        };
        assert_eq!(
            writer.transfer(vec![post]).await.unwrap(),
            [TransferResult::PendingTransferExpired]
        );
        writer.shutdown().await;
        let restarted = test.writer(options).await;
        assert_eq!(
            balances(&restarted, a.id).await,
            Balances::default(),
            "{backend:?}"
        );
        assert_eq!(
            balances(&restarted, b.id).await,
            Balances::default(),
            "{backend:?}"
        );
        restarted.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_what_was_queued_before_it_then_every_handle_is_unavailable() {
    let test = TestStore::open(Backend::Sqlite).await;
    let writer = test.writer(LedgerOptions::default()).await;
    let (a, b) = (account(BalanceLimit::None), account(BalanceLimit::None));
    create(&writer, &[a.clone(), b.clone()]).await;
    let handle = writer.clone();
    let queued = join_all((0..20).map(|_| handle.transfer(vec![single(a.id, b.id, 1)])));
    let stopping = async {
        // Lets the transfers reach the queue first.
        tokio::task::yield_now().await;
        writer.shutdown().await;
    };
    let (answers, ()) = tokio::join!(queued, stopping);
    for answer in answers {
        assert_eq!(answer.unwrap(), [TransferResult::Created]);
    }
    assert!(matches!(
        handle.transfer(vec![single(a.id, b.id, 1)]).await,
        Err(Error::Unavailable(_))
    ));
    assert!(matches!(
        handle.account(a.id).await,
        Err(Error::Unavailable(_))
    ));
    let restarted = test.writer(LedgerOptions::default()).await;
    assert_eq!(balances(&restarted, b.id).await, posted(0, 20));
    restarted.shutdown().await;
}

/// A second writer on the same database fences out the first: the first's next commit is
/// refused (it answers `Unavailable` from then on) and nothing of it reaches storage, while the
/// second sees everything the first committed before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_writer_fences_out_an_earlier_one_which_never_writes_again() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let first = test.writer(LedgerOptions::default()).await;
        let (bank, wallet) = (account(BalanceLimit::None), account(BalanceLimit::None));
        create(&first, &[bank.clone(), wallet.clone()]).await;
        let before = first
            .transfer(vec![single(bank.id, wallet.id, 100)])
            .await
            .unwrap();
        assert_eq!(before, [TransferResult::Created]);

        // Another server starts on the same database.
        let second = test.writer(LedgerOptions::default()).await;
        assert_eq!(balances(&second, wallet.id).await, posted(0, 100));
        let stale = first.transfer(vec![single(bank.id, wallet.id, 7)]).await;
        match &stale {
            Err(Error::Unavailable(reason)) => {
                assert!(reason.contains("another ledger writer"), "{reason}")
            }
            other => panic!("the fenced writer answered {other:?}"),
        }
        // It stays fenced, reads included.
        assert!(matches!(
            first.account(wallet.id).await,
            Err(Error::Unavailable(_))
        ));
        let after = second
            .transfer(vec![single(bank.id, wallet.id, 5)])
            .await
            .unwrap();
        assert_eq!(after, [TransferResult::Created]);
        second.shutdown().await;
        first.shutdown().await;

        let third = test.writer(LedgerOptions::default()).await;
        assert_eq!(
            balances(&third, wallet.id).await,
            posted(0, 105),
            "the fenced writer's transfer must not be stored"
        );
        assert!(test.store.verify_ledger_chain().await.unwrap().is_ok());
        third.shutdown().await;
    }
}
