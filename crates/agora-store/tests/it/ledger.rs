//! The ledger's persistence: exact round trips, full batches, balances as of a moment, the hash
//! chain and what tampering with it looks like, rollback, and numbering across batches.

use std::collections::{BTreeMap, BTreeSet};

use agora_domain::Timestamp;
use agora_domain::audit::Hash32;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, Currency, FailedTransfer, RecordCause, Transfer,
    TransferField, TransferId, TransferKind, TransferRecord, TransferResult, batch_hash,
};
use agora_store::{BatchReceipt, LedgerBatch, LedgerChainBreak, Store};
use sqlx::Row;

use crate::harness::{Backend, TestStore, backends};

/// The columns of `ledger_balances`, in order.
const BALANCE_COLUMNS: &str = "batch, account_id, ordinal, prev_batch, first_timestamp_us, \
     last_timestamp_us, debits_pending, debits_posted, credits_pending, credits_posted";

/// Hand-built history: accounts with running balances and a clock, so that records look like the
/// ledger engine's (strictly increasing timestamps, both balances after each change) without
/// depending on it.
pub struct Book {
    accounts: BTreeMap<AccountId, Account>,
    clock_us: i64,
}

impl Book {
    /// Timestamps start at `start_us` and advance 10 µs per event, leaving room between events.
    pub fn starting_at(start_us: i64) -> Self {
        Self {
            accounts: BTreeMap::new(),
            clock_us: start_us,
        }
    }

    pub fn new() -> Self {
        Self::starting_at(1_700_000_000_000_000)
    }

    pub fn tick(&mut self) -> Timestamp {
        self.clock_us += 10;
        Timestamp::from_micros(self.clock_us)
    }

    pub fn open(&mut self, currency: &str, code: u16, limit: BalanceLimit) -> Account {
        let created_at = self.tick();
        let currency = Currency::parse(currency).unwrap();
        let account = Account::new(AccountId::new(), currency, code, limit, created_at);
        self.accounts.insert(account.id, account.clone());
        account
    }

    /// Every account as it stands now, in id order.
    pub fn accounts(&self) -> Vec<Account> {
        self.accounts.values().cloned().collect()
    }

    pub fn account(&self, id: AccountId) -> &Account {
        &self.accounts[&id]
    }

    /// The accounts the records touch, as they stand now.
    pub fn touched(&self, records: &[TransferRecord]) -> Vec<Account> {
        let ids: BTreeSet<AccountId> = records
            .iter()
            .flat_map(|record| {
                [
                    record.transfer.debit_account_id,
                    record.transfer.credit_account_id,
                ]
            })
            .collect();
        ids.into_iter().map(|id| self.account(id).clone()).collect()
    }

    /// Applies `amount` the simple way these tests need: a single transfer posts it, a pending
    /// one reserves it, a post moves it from pending to posted, a void or an expiry releases it.
    pub fn apply(&mut self, transfer: Transfer, cause: RecordCause, amount: i64) -> TransferRecord {
        let timestamp = self.tick();
        let (pending, posted) = match (transfer.kind, cause) {
            (_, RecordCause::Expiry) | (TransferKind::VoidPending { .. }, _) => (-amount, 0),
            (TransferKind::Single, _) => (0, amount),
            (TransferKind::Pending { .. }, _) => (amount, 0),
            (TransferKind::PostPending { .. }, _) => (-amount, amount),
        };
        let debit = self.accounts.get_mut(&transfer.debit_account_id).unwrap();
        debit.debits_pending += pending;
        debit.debits_posted += posted;
        let debit_after = debit.balances();
        let credit = self.accounts.get_mut(&transfer.credit_account_id).unwrap();
        credit.credits_pending += pending;
        credit.credits_posted += posted;
        let credit_after = credit.balances();
        TransferRecord {
            transfer,
            cause,
            timestamp,
            amount,
            debit_after,
            credit_after,
        }
    }

    /// A single transfer of `amount` from `debit` to `credit`, applied.
    pub fn single(&mut self, debit: AccountId, credit: AccountId, amount: i64) -> TransferRecord {
        let transfer = transfer(
            self.account(debit),
            self.account(credit),
            amount,
            TransferKind::Single,
        );
        self.apply(transfer, RecordCause::Transfer, amount)
    }

    pub fn failure(&mut self, result: TransferResult) -> FailedTransfer {
        FailedTransfer {
            id: TransferId::new(),
            result,
            timestamp: self.tick(),
        }
    }
}

pub fn transfer(debit: &Account, credit: &Account, amount: i64, kind: TransferKind) -> Transfer {
    Transfer {
        id: TransferId::new(),
        debit_account_id: debit.id,
        credit_account_id: credit.id,
        amount,
        currency: debit.currency,
        code: 1,
        kind,
        linked: false,
    }
}

pub async fn insert_accounts(store: &Store, accounts: &[Account]) {
    let mut write = store.write().await.unwrap();
    write.insert_ledger_accounts(accounts).await.unwrap();
    write.commit().await.unwrap();
}

/// Appends one batch with the accounts it touches as they stand now, and commits it.
pub async fn append(
    store: &Store,
    book: &Book,
    records: &[TransferRecord],
    failures: &[FailedTransfer],
) -> BatchReceipt {
    let accounts = book.touched(records);
    let mut write = store.write().await.unwrap();
    let receipt = write
        .append_ledger_batch(&LedgerBatch {
            records,
            failures,
            accounts: &accounts,
        })
        .await
        .unwrap();
    write.commit().await.unwrap();
    receipt
}

fn numbered(first_seq: i64, records: &[TransferRecord]) -> Vec<(i64, TransferRecord)> {
    (first_seq..).zip(records.iter().cloned()).collect()
}

/// Every transfer result there is, each once, with every field a retry can differ in.
fn every_result() -> Vec<TransferResult> {
    let mut results = vec![
        TransferResult::Created,
        TransferResult::Exists,
        TransferResult::IdAlreadyFailed,
        TransferResult::LinkedEventFailed,
        TransferResult::LinkedEventChainOpen,
        TransferResult::AmountMustBePositive,
        TransferResult::AccountsMustBeDifferent,
        TransferResult::DebitAccountNotFound,
        TransferResult::CreditAccountNotFound,
        TransferResult::CurrencyMismatch,
        TransferResult::ExceedsCredits,
        TransferResult::ExceedsDebits,
        TransferResult::Overflow,
        TransferResult::PendingTransferNotFound,
        TransferResult::PendingTransferNotPending,
        TransferResult::PendingTransferAlreadyPosted,
        TransferResult::PendingTransferAlreadyVoided,
        TransferResult::PendingTransferExpired,
        TransferResult::ExceedsPendingAmount,
        TransferResult::PendingTransferMismatch,
    ];
    for field in [
        TransferField::DebitAccountId,
        TransferField::CreditAccountId,
        TransferField::Amount,
        TransferField::Currency,
        TransferField::Code,
        TransferField::Kind,
        TransferField::Linked,
    ] {
        results.push(TransferResult::ExistsWithDifferentField { field });
    }
    results
}

#[tokio::test]
async fn accounts_records_and_failures_round_trip_exactly() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let wallet = book.open("EUR", 0, BalanceLimit::DebitsMustNotExceedCredits);
        let seller = book.open("EUR", u16::MAX, BalanceLimit::CreditsMustNotExceedDebits);
        let clearing = book.open("EUR", 7, BalanceLimit::None);
        let points_pool = book.open("PTS", 3, BalanceLimit::None);
        let points_wallet = book.open("PTS", 4, BalanceLimit::DebitsMustNotExceedCredits);
        let dinar_from = book.open("KWD", 5, BalanceLimit::None);
        let dinar_to = book.open("KWD", 6, BalanceLimit::None);
        insert_accounts(store, &book.accounts()).await;
        // Inserting an id again leaves the stored account as it was.
        let mut changed = wallet.clone();
        changed.code = 99;
        changed.credits_posted = 5;
        insert_accounts(store, &[changed]).await;
        assert_eq!(
            store.ledger_accounts().await.unwrap(),
            book.accounts(),
            "{backend:?}"
        );

        let pending = transfer(
            &clearing,
            &seller,
            800,
            TransferKind::Pending { timeout_seconds: 0 },
        );
        let expiring = transfer(
            &clearing,
            &seller,
            300,
            TransferKind::Pending {
                timeout_seconds: u32::MAX,
            },
        );
        let voided = transfer(
            &clearing,
            &wallet,
            50,
            TransferKind::Pending {
                timeout_seconds: 60,
            },
        );
        let linked = Transfer {
            linked: true,
            code: u16::MAX,
            ..transfer(&clearing, &wallet, 1_000, TransferKind::Single)
        };
        let records = vec![
            book.apply(linked, RecordCause::Transfer, 1_000),
            book.apply(
                transfer(&wallet, &seller, 400, TransferKind::Single),
                RecordCause::Transfer,
                400,
            ),
            book.apply(pending.clone(), RecordCause::Transfer, 800),
            // A post of 0 posts the pending amount in full: the record holds what moved.
            book.apply(
                transfer(
                    &clearing,
                    &seller,
                    0,
                    TransferKind::PostPending {
                        pending_id: pending.id,
                    },
                ),
                RecordCause::Transfer,
                800,
            ),
            book.apply(expiring.clone(), RecordCause::Transfer, 300),
            book.apply(voided.clone(), RecordCause::Transfer, 50),
            book.apply(
                transfer(
                    &clearing,
                    &wallet,
                    50,
                    TransferKind::VoidPending {
                        pending_id: voided.id,
                    },
                ),
                RecordCause::Transfer,
                50,
            ),
            book.apply(expiring.clone(), RecordCause::Expiry, 300),
            book.apply(
                transfer(&points_pool, &points_wallet, 7, TransferKind::Single),
                RecordCause::Transfer,
                7,
            ),
            book.apply(
                transfer(&dinar_from, &dinar_to, i64::MAX, TransferKind::Single),
                RecordCause::Transfer,
                i64::MAX,
            ),
        ];
        let failures: Vec<FailedTransfer> = every_result()
            .into_iter()
            .map(|result| book.failure(result))
            .collect();
        let receipt = append(store, &book, &records, &failures).await;
        assert_eq!(
            receipt,
            BatchReceipt {
                batch: 1,
                hash: batch_hash(&Hash32::GENESIS, 1, &records, &failures),
            }
        );

        assert_eq!(
            store.ledger_records(0, 100).await.unwrap(),
            numbered(1, &records),
            "{backend:?}"
        );
        assert_eq!(
            store.ledger_records(2, 3).await.unwrap(),
            numbered(3, &records[2..5])
        );
        assert_eq!(store.ledger_records(10, 100).await.unwrap(), vec![]);
        assert_eq!(store.ledger_failures().await.unwrap(), failures);
        assert_eq!(store.ledger_accounts().await.unwrap(), book.accounts());
        assert_eq!(
            store.ledger_account(seller.id).await.unwrap().as_ref(),
            Some(book.account(seller.id))
        );
        assert_eq!(store.ledger_account(AccountId::new()).await.unwrap(), None);
        // The client's transfer, not the ledger's expiry of it.
        assert_eq!(
            store.ledger_transfer(expiring.id).await.unwrap().as_ref(),
            Some(&records[4])
        );
        assert_eq!(
            store.ledger_transfer(pending.id).await.unwrap().as_ref(),
            Some(&records[2])
        );
        assert_eq!(store.ledger_transfer(failures[0].id).await.unwrap(), None);
        assert_eq!(store.verify_ledger_chain().await.unwrap(), Ok(1));
    }
}

#[tokio::test]
async fn a_full_batch_of_8190_records_is_written_in_one_call() {
    const BATCH_RECORDS: usize = 8_190;
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        // Every transfer between accounts of its own: 16,380 touched accounts, the most a batch can touch.
        let accounts: Vec<Account> = (0..2 * BATCH_RECORDS)
            .map(|_| book.open("EUR", 1, BalanceLimit::None))
            .collect();
        insert_accounts(store, &accounts).await;
        let records: Vec<TransferRecord> = accounts
            .chunks(2)
            .enumerate()
            .map(|(index, pair)| book.single(pair[0].id, pair[1].id, index as i64 + 1))
            .collect();
        let failures: Vec<FailedTransfer> = (0..100)
            .map(|_| book.failure(TransferResult::ExceedsCredits))
            .collect();
        let receipt = append(store, &book, &records, &failures).await;
        assert_eq!(receipt.batch, 1);

        let mut read = Vec::new();
        loop {
            let page = store
                .ledger_records(read.len() as i64, 1_000)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            read.extend(page);
        }
        assert_eq!(read, numbered(1, &records), "{backend:?}");
        assert_eq!(store.ledger_failures().await.unwrap(), failures);
        assert_eq!(store.ledger_accounts().await.unwrap(), book.accounts());
        assert_eq!(store.verify_ledger_chain().await.unwrap(), Ok(1));
    }
}

#[tokio::test]
async fn balance_as_of_reads_either_side_at_any_moment() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let a = book.open("EUR", 1, BalanceLimit::None).id;
        let b = book.open("EUR", 1, BalanceLimit::None).id;
        insert_accounts(store, &book.accounts()).await;
        let first = book.single(a, b, 100);
        let second = book.single(b, a, 30);
        append(store, &book, &[first.clone(), second.clone()], &[]).await;
        let late = book.open("EUR", 1, BalanceLimit::None);
        insert_accounts(store, std::slice::from_ref(&late)).await;
        let pending = transfer(
            book.account(a),
            book.account(b),
            7,
            TransferKind::Pending { timeout_seconds: 0 },
        );
        let third = book.apply(pending, RecordCause::Transfer, 7);
        append(store, &book, std::slice::from_ref(&third), &[]).await;

        let micros = |timestamp: Timestamp, offset: i64| {
            Timestamp::from_micros(timestamp.as_micros() + offset)
        };
        let a_created = book.account(a).created_at;
        let zero = Some(Balances::default());
        let cases = [
            ("a before it existed", a, micros(a_created, -1), None),
            ("a as it was created", a, a_created, zero),
            (
                "a before anything moved",
                a,
                micros(first.timestamp, -1),
                zero,
            ),
            (
                "a at the first record, debit side",
                a,
                first.timestamp,
                Some(first.debit_after),
            ),
            (
                "b at the first record, credit side",
                b,
                first.timestamp,
                Some(first.credit_after),
            ),
            (
                "a between records",
                a,
                micros(first.timestamp, 5),
                Some(first.debit_after),
            ),
            (
                "a just before the second",
                a,
                micros(second.timestamp, -1),
                Some(first.debit_after),
            ),
            (
                "a at the second record, credit side",
                a,
                second.timestamp,
                Some(second.credit_after),
            ),
            (
                "b at the second record, debit side",
                b,
                second.timestamp,
                Some(second.debit_after),
            ),
            (
                "a after the pending one",
                a,
                micros(third.timestamp, 1_000_000),
                Some(third.debit_after),
            ),
            (
                "b after the pending one",
                b,
                third.timestamp,
                Some(third.credit_after),
            ),
            (
                "an account created late, before",
                late.id,
                micros(late.created_at, -1),
                None,
            ),
            (
                "an account created late, after",
                late.id,
                third.timestamp,
                zero,
            ),
            (
                "an account that does not exist",
                AccountId::new(),
                third.timestamp,
                None,
            ),
        ];
        for (name, account, at, expected) in cases {
            assert_eq!(
                store.balance_as_of(account, at).await.unwrap(),
                expected,
                "{backend:?}: {name}"
            );
        }
        // As of now, the history agrees with the current balances.
        for id in [a, b] {
            let now = store.ledger_account(id).await.unwrap().unwrap().balances();
            assert_eq!(
                store.balance_as_of(id, Timestamp::now()).await.unwrap(),
                Some(now)
            );
        }
    }
}

#[tokio::test]
async fn balance_as_of_follows_long_histories_at_every_moment() {
    // Account a moves in every batch, b in every other one, c in every third: their histories
    // are many times longer than the stretch between two marks, and end between marks.
    const BATCHES: usize = 70;
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let ids: Vec<AccountId> = (0..4)
            .map(|_| book.open("EUR", 1, BalanceLimit::None).id)
            .collect();
        insert_accounts(store, &book.accounts()).await;
        let mut history: Vec<TransferRecord> = Vec::new();
        for batch in 0..BATCHES {
            let mut records = vec![book.single(ids[0], ids[3], 1)];
            if batch % 2 == 0 {
                records.push(book.single(ids[3], ids[1], 2));
            }
            if batch % 3 == 0 {
                records.push(book.single(ids[2], ids[0], 3));
                records.push(book.single(ids[3], ids[2], 5));
            }
            append(store, &book, &records, &[]).await;
            history.extend(records);
        }
        assert_eq!(
            store.verify_ledger_chain().await.unwrap(),
            Ok(BATCHES as i64),
            "{backend:?}"
        );
        // The reference: replay the history up to each moment.
        let expected = |account: AccountId, at: i64| -> Balances {
            history
                .iter()
                .rev()
                .find_map(|record| {
                    (record.timestamp.as_micros() <= at)
                        .then(|| {
                            if record.transfer.debit_account_id == account {
                                Some(record.debit_after)
                            } else if record.transfer.credit_account_id == account {
                                Some(record.credit_after)
                            } else {
                                None
                            }
                        })
                        .flatten()
                })
                .unwrap_or_default()
        };
        for record in &history {
            for offset in [-1, 0, 1] {
                let at = record.timestamp.as_micros() + offset;
                for &account in &ids {
                    assert_eq!(
                        store
                            .balance_as_of(account, Timestamp::from_micros(at))
                            .await
                            .unwrap(),
                        Some(expected(account, at)),
                        "{backend:?}: account {account} at {at}"
                    );
                }
            }
        }

        // A mark is part of what the chain vouches for.
        test.execute(
            "DELETE FROM ledger_balance_marks WHERE first_timestamp_us = \
             (SELECT MIN(first_timestamp_us) FROM ledger_balance_marks)",
        )
        .await;
        // Account a's 16th row is in batch 16: the first mark.
        assert_eq!(
            store.verify_ledger_chain().await.unwrap(),
            Err(LedgerChainBreak::Edited { batch: 16 }),
            "{backend:?}"
        );
    }
}

/// Three batches: records 1–3; records 4–6 with two failures; records 7–9 with one failure.
async fn three_batches(store: &Store) {
    let mut book = Book::new();
    let accounts: Vec<AccountId> = (0..4)
        .map(|_| book.open("EUR", 1, BalanceLimit::None).id)
        .collect();
    insert_accounts(store, &book.accounts()).await;
    for failure_count in [0, 2, 1] {
        let records: Vec<TransferRecord> = (0..3)
            .map(|index| book.single(accounts[index], accounts[index + 1], 10))
            .collect();
        let failures: Vec<FailedTransfer> = (0..failure_count)
            .map(|_| book.failure(TransferResult::ExceedsCredits))
            .collect();
        append(store, &book, &records, &failures).await;
    }
}

/// SQL that differs by dialect: SQLite's, then PostgreSQL's.
fn dialect(backend: Backend, sqlite: &str, postgres: &str) -> String {
    match backend {
        Backend::Sqlite => sqlite.to_owned(),
        Backend::Postgres => postgres.to_owned(),
    }
}

#[tokio::test]
async fn the_chain_names_the_batch_that_was_tampered_with() {
    use LedgerChainBreak::{Edited, HeadMismatch, Missing, Unlinked};
    // The row of batch 2 whose account id is lowest.
    const FIRST_BALANCE_OF_2: &str = "batch = 2 AND account_id = \
         (SELECT account_id FROM ledger_balances WHERE batch = 2 ORDER BY account_id LIMIT 1)";
    const FIRST_ID_OF_2: &str = "batch = 2 AND transfer_id = \
         (SELECT transfer_id FROM ledger_transfer_ids WHERE batch = 2 ORDER BY transfer_id LIMIT 1)";
    /// The edit, as SQL for a backend.
    type Tamper = fn(Backend) -> String;
    let cases: Vec<(&str, Tamper, LedgerChainBreak)> = vec![
        (
            "a byte of a record edited",
            |backend| {
                dialect(
                    backend,
                    "UPDATE ledger_batches SET body = CAST(substr(body, 1, 100) || X'FF' || substr(body, 102) AS BLOB) WHERE batch = 2",
                    "UPDATE ledger_batches SET body = overlay(body placing '\\xff'::bytea from 101 for 1) WHERE batch = 2",
                )
            },
            Edited { batch: 2 },
        ),
        (
            "a failure's byte edited",
            |backend| {
                dialect(
                    backend,
                    // The last failure's result, 10 bytes from the end: exceeds_credits becomes exceeds_debits.
                    "UPDATE ledger_batches SET body = CAST(substr(body, 1, length(body) - 10) || X'0C' || substr(body, length(body) - 8) AS BLOB) WHERE batch = 2",
                    "UPDATE ledger_batches SET body = overlay(body placing '\\x0c'::bytea from length(body) - 9 for 1) WHERE batch = 2",
                )
            },
            Edited { batch: 2 },
        ),
        (
            "a body swapped for another batch's",
            |_| {
                "UPDATE ledger_batches SET body = (SELECT body FROM ledger_batches WHERE batch = 1) WHERE batch = 2"
                    .into()
            },
            Edited { batch: 2 },
        ),
        (
            "a record count edited",
            |_| "UPDATE ledger_batches SET record_count = 2 WHERE batch = 2".into(),
            Edited { batch: 2 },
        ),
        (
            "a batch's last time edited",
            |_| {
                "UPDATE ledger_batches SET last_timestamp_us = last_timestamp_us + 1 WHERE batch = 2"
                    .into()
            },
            Edited { batch: 2 },
        ),
        (
            "a balance edited",
            |_| {
                format!(
                    "UPDATE ledger_balances SET credits_posted = credits_posted + 1 WHERE {FIRST_BALANCE_OF_2}"
                )
            },
            Edited { batch: 2 },
        ),
        (
            "a balance's link edited",
            |_| format!("UPDATE ledger_balances SET prev_batch = NULL WHERE {FIRST_BALANCE_OF_2}"),
            Edited { batch: 2 },
        ),
        (
            "a balance's time edited",
            |_| {
                format!(
                    "UPDATE ledger_balances SET last_timestamp_us = last_timestamp_us - 1 WHERE {FIRST_BALANCE_OF_2}"
                )
            },
            Edited { batch: 2 },
        ),
        (
            "a balance deleted",
            |_| format!("DELETE FROM ledger_balances WHERE {FIRST_BALANCE_OF_2}"),
            Edited { batch: 2 },
        ),
        (
            "a balance moved past the head",
            |_| format!("UPDATE ledger_balances SET batch = 4 WHERE {FIRST_BALANCE_OF_2}"),
            Edited { batch: 2 },
        ),
        (
            "a balance inserted past the head",
            |_| {
                format!(
                    "INSERT INTO ledger_balances ({BALANCE_COLUMNS}) SELECT 4, account_id, ordinal + 1, 3, \
                     first_timestamp_us + 1000, last_timestamp_us + 1000, debits_pending, debits_posted, \
                     credits_pending, credits_posted FROM ledger_balances WHERE {FIRST_BALANCE_OF_2}"
                )
            },
            HeadMismatch { batch: 3 },
        ),
        (
            "an answered id deleted",
            |_| format!("DELETE FROM ledger_transfer_ids WHERE {FIRST_ID_OF_2}"),
            Edited { batch: 2 },
        ),
        (
            "an answered id moved to another batch",
            |_| format!("UPDATE ledger_transfer_ids SET batch = 3 WHERE {FIRST_ID_OF_2}"),
            Edited { batch: 2 },
        ),
        (
            "an id inserted past the head",
            |backend| {
                dialect(
                    backend,
                    "INSERT INTO ledger_transfer_ids (transfer_id, batch) VALUES (randomblob(16), 4)",
                    "INSERT INTO ledger_transfer_ids (transfer_id, batch) VALUES (decode(md5('stray'), 'hex'), 4)",
                )
            },
            HeadMismatch { batch: 3 },
        ),
        (
            "where an account's balances end edited",
            |_| {
                "UPDATE ledger_balance_ends SET row_count = row_count + 1 WHERE account_id = \
                 (SELECT account_id FROM ledger_balance_ends ORDER BY account_id LIMIT 1)"
                    .into()
            },
            Edited { batch: 3 },
        ),
        (
            "a batch's hash replaced",
            |_| "UPDATE ledger_batches SET hash = prev_hash WHERE batch = 2".into(),
            Edited { batch: 2 },
        ),
        (
            "a batch row deleted",
            |_| "DELETE FROM ledger_batches WHERE batch = 2".into(),
            Missing { batch: 2 },
        ),
        (
            "the last batch row deleted",
            |_| "DELETE FROM ledger_batches WHERE batch = 3".into(),
            Missing { batch: 3 },
        ),
        (
            "a link replaced",
            |_| "UPDATE ledger_batches SET prev_hash = hash WHERE batch = 3".into(),
            Unlinked { batch: 3 },
        ),
        (
            "the head's hash replaced",
            |_| {
                "UPDATE ledger_head SET hash = (SELECT prev_hash FROM ledger_batches WHERE batch = 3)"
                    .into()
            },
            HeadMismatch { batch: 3 },
        ),
    ];
    for backend in backends() {
        for (name, sql, expected) in &cases {
            let test = TestStore::open(backend).await;
            three_batches(&test.store).await;
            assert_eq!(
                test.store.verify_ledger_chain().await.unwrap(),
                Ok(3),
                "{backend:?}"
            );
            test.execute(&sql(backend)).await;
            let found = test
                .store
                .verify_ledger_chain()
                .await
                .unwrap_or_else(|error| panic!("{backend:?}: {name}: {error}"));
            assert_eq!(found, Err(*expected), "{backend:?}: {name}");
            assert_eq!(found.unwrap_err().batch(), expected.batch());
        }
    }
}

#[tokio::test]
async fn a_write_dropped_without_commit_leaves_nothing() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let a = book.open("EUR", 1, BalanceLimit::None).id;
        let b = book.open("EUR", 1, BalanceLimit::None).id;
        let records = vec![book.single(a, b, 5)];
        let failures = vec![book.failure(TransferResult::Overflow)];
        let accounts = book.touched(&records);
        {
            let mut write = store.write().await.unwrap();
            write
                .insert_ledger_accounts(&book.accounts())
                .await
                .unwrap();
            write
                .append_ledger_batch(&LedgerBatch {
                    records: &records,
                    failures: &failures,
                    accounts: &accounts,
                })
                .await
                .unwrap();
        }
        assert_eq!(
            store.ledger_accounts().await.unwrap(),
            vec![],
            "{backend:?}"
        );
        assert_eq!(store.ledger_records(0, 10).await.unwrap(), vec![]);
        assert_eq!(store.ledger_failures().await.unwrap(), vec![]);
        assert_eq!(store.verify_ledger_chain().await.unwrap(), Ok(0));
        // The numbers the dropped batch took are free again.
        insert_accounts(store, &book.accounts()).await;
        let receipt = append(store, &book, &records, &failures).await;
        assert_eq!(receipt.batch, 1);
        assert_eq!(
            store.ledger_records(0, 10).await.unwrap(),
            numbered(1, &records)
        );
    }
}

#[tokio::test]
async fn sequence_numbers_stay_consecutive_across_batches() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let a = book.open("EUR", 1, BalanceLimit::None).id;
        let b = book.open("EUR", 1, BalanceLimit::None).id;
        insert_accounts(store, &book.accounts()).await;
        let mut all_records = Vec::new();
        let mut previous = Hash32::GENESIS;
        for (number, (record_count, failure_count)) in (1..).zip([(3, 0), (0, 2), (5, 1), (1, 0)]) {
            let records: Vec<TransferRecord> =
                (0..record_count).map(|_| book.single(a, b, 1)).collect();
            let failures: Vec<FailedTransfer> = (0..failure_count)
                .map(|_| book.failure(TransferResult::DebitAccountNotFound))
                .collect();
            let receipt = append(store, &book, &records, &failures).await;
            let hash = batch_hash(&previous, number, &records, &failures);
            assert_eq!(
                receipt,
                BatchReceipt {
                    batch: number,
                    hash
                },
                "{backend:?}"
            );
            previous = hash;
            all_records.extend(records);
        }
        assert_eq!(
            store.ledger_records(0, 100).await.unwrap(),
            numbered(1, &all_records)
        );
        let batches: Vec<[i64; 5]> = test
            .fetch_all("SELECT batch, first_seq, last_seq, record_count, failure_count FROM ledger_batches ORDER BY batch")
            .await
            .iter()
            .map(|row| ["batch", "first_seq", "last_seq", "record_count", "failure_count"].map(|name| row.get::<i64, _>(name)))
            .collect();
        // A batch with failures only holds the empty range just past the previous batch's records.
        assert_eq!(
            batches,
            vec![
                [1, 1, 3, 3, 0],
                [2, 4, 3, 0, 2],
                [3, 4, 8, 5, 1],
                [4, 9, 9, 1, 0]
            ]
        );
        assert_eq!(store.verify_ledger_chain().await.unwrap(), Ok(4));
    }
}

#[tokio::test]
async fn concurrent_appends_take_turns() {
    const WRITERS: i64 = 4;
    const BATCHES_EACH: i64 = 5;
    for backend in backends() {
        let test = TestStore::open(backend).await;
        // One clock for every writer, read once a writer's transaction has begun: records' times
        // must increase from batch to batch, so a writer that read the clock before another
        // committed a later time is refused, and tries again.
        let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000_000_000));
        let writers = (0..WRITERS).map(|_| {
            let store = test.store.clone();
            let clock = clock.clone();
            tokio::spawn(async move {
                let mut book = Book::new();
                let a = book.open("EUR", 1, BalanceLimit::None).id;
                let b = book.open("EUR", 1, BalanceLimit::None).id;
                insert_accounts(&store, &book.accounts()).await;
                let mut numbers = Vec::new();
                while numbers.len() < BATCHES_EACH as usize {
                    let mut write = store.write().await.unwrap();
                    let mut attempt = Book {
                        accounts: book.accounts.clone(),
                        clock_us: clock.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst),
                    };
                    let records: Vec<TransferRecord> =
                        (0..10).map(|_| attempt.single(a, b, 1)).collect();
                    let accounts = attempt.touched(&records);
                    let appended = write
                        .append_ledger_batch(&LedgerBatch {
                            records: &records,
                            failures: &[],
                            accounts: &accounts,
                        })
                        .await;
                    match appended {
                        Ok(receipt) => {
                            write.commit().await.unwrap();
                            numbers.push(receipt.batch);
                            book = attempt;
                        }
                        Err(error) => assert_eq!(error.kind(), "conflict", "{error}"),
                    }
                }
                numbers
            })
        });
        let mut numbers = Vec::new();
        for writer in writers.collect::<Vec<_>>() {
            numbers.extend(writer.await.unwrap());
        }
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=WRITERS * BATCHES_EACH).collect::<Vec<_>>(),
            "{backend:?}"
        );
        let seqs: Vec<i64> = test
            .store
            .ledger_records(0, 1_000)
            .await
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(seqs, (1..=WRITERS * BATCHES_EACH * 10).collect::<Vec<_>>());
        assert_eq!(
            test.store.verify_ledger_chain().await.unwrap(),
            Ok(WRITERS * BATCHES_EACH)
        );
    }
}

#[tokio::test]
async fn a_batch_that_breaks_the_ledgers_rules_is_refused_whole() {
    for backend in backends() {
        let test = TestStore::open(backend).await;
        let store = &test.store;
        let mut book = Book::new();
        let a = book.open("EUR", 1, BalanceLimit::None).id;
        let b = book.open("EUR", 1, BalanceLimit::None).id;
        insert_accounts(store, &book.accounts()).await;
        let first = book.single(a, b, 1);
        let failed = book.failure(TransferResult::ExceedsCredits);
        append(
            store,
            &book,
            std::slice::from_ref(&first),
            std::slice::from_ref(&failed),
        )
        .await;

        let fresh = book.single(a, b, 1);
        let same_timestamp = TransferRecord {
            timestamp: first.timestamp,
            ..book.single(a, b, 1)
        };
        let same_transfer = TransferRecord {
            timestamp: book.tick(),
            ..first.clone()
        };
        let accounts = book.touched(std::slice::from_ref(&fresh));
        let twice = [accounts.clone(), accounts.clone()].concat();
        // What each batch holds, and the category of error that refuses it.
        let cases = [
            (
                "a timestamp used before",
                vec![fresh.clone(), same_timestamp],
                vec![],
                &accounts,
                "conflict",
            ),
            (
                "a transfer applied before",
                vec![fresh.clone(), same_transfer],
                vec![],
                &accounts,
                "conflict",
            ),
            (
                "an id that failed before",
                vec![fresh.clone()],
                vec![failed],
                &accounts,
                "conflict",
            ),
            (
                "an account handed over twice",
                vec![fresh.clone()],
                vec![],
                &twice,
                "invalid",
            ),
        ];
        for (name, records, failures, accounts, expected) in cases {
            let mut write = store.write().await.unwrap();
            let refused = write
                .append_ledger_batch(&LedgerBatch {
                    records: &records,
                    failures: &failures,
                    accounts,
                })
                .await
                .unwrap_err();
            assert_eq!(refused.kind(), expected, "{backend:?}: {name}: {refused}");
        }
        assert_eq!(
            store.ledger_records(0, 10).await.unwrap(),
            numbered(1, &[first]),
            "{backend:?}"
        );
        assert_eq!(store.verify_ledger_chain().await.unwrap(), Ok(1));
    }
}
