//! How many records per second `append_ledger_batch` makes durable on SQLite with
//! `synchronous = FULL`, at batch sizes 1, 100 and 8,190: printed, never asserted, since a shared
//! 2-core machine's timings are not a pass or a fail. Debug builds only run a few batches, to
//! keep the path tested; for figures, run it in release:
//!
//! ```text
//! cargo test --release -p agora-store --test it -- --nocapture append_throughput
//! ```
//!
//! The cost of a large batch depends on how many distinct accounts it touches: each one dirties
//! a page of both per-account indexes. So the transfers move between accounts picked uniformly
//! from a small set (hot accounts) and from a large one.

use std::time::Instant;

use agora_domain::ledger::{Account, AccountId, BalanceLimit, TransferRecord};
use agora_store::LedgerBatch;

use crate::harness::{Backend, TestStore};
use crate::ledger::{Book, insert_accounts};

/// Batch sizes, and how many batches of each to time.
const ROUNDS: [(usize, usize); 3] = if cfg!(debug_assertions) {
    [(1, 5), (100, 2), (8_190, 1)]
} else {
    [(1, 300), (100, 100), (8_190, 12)]
};

#[tokio::test]
async fn append_throughput_on_sqlite() {
    for account_count in [100, 2_000] {
        let test = TestStore::open(Backend::Sqlite).await;
        let store = &test.store;
        let mut book = Book::new();
        let accounts: Vec<AccountId> = (0..account_count)
            .map(|_| book.open("EUR", 1, BalanceLimit::None).id)
            .collect();
        insert_accounts(store, &book.accounts()).await;

        // A fixed pseudo-random walk over the accounts (a linear congruential generator).
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next_index = move |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound
        };
        let mut batch_count_total = 0;
        let mut record_count_total = 0;
        for (batch_size, batch_count) in ROUNDS {
            // Built before the clock starts: only persistence and the commit are timed.
            let batches: Vec<(Vec<TransferRecord>, Vec<Account>)> = (0..batch_count)
                .map(|_| {
                    let records: Vec<TransferRecord> = (0..batch_size)
                        .map(|_| {
                            let debit = next_index(account_count);
                            let credit =
                                (debit + 1 + next_index(account_count - 1)) % account_count;
                            book.single(accounts[debit], accounts[credit], 1)
                        })
                        .collect();
                    let touched = book.touched(&records);
                    (records, touched)
                })
                .collect();
            let started = Instant::now();
            for (records, touched) in &batches {
                let mut write = store.write().await.unwrap();
                write
                    .append_ledger_batch(&LedgerBatch {
                        records,
                        failures: &[],
                        accounts: touched,
                    })
                    .await
                    .unwrap();
                write.commit().await.unwrap();
            }
            let seconds = started.elapsed().as_secs_f64();
            let records = batch_size * batch_count;
            println!(
                "append_ledger_batch, SQLite synchronous=FULL, {account_count:>5} accounts, batch {batch_size:>5}: \
                 {:>7.0} records/s, {:>5.0} commits/s, {:>6.2} ms per batch ({records} records in {seconds:.2} s)",
                records as f64 / seconds,
                batch_count as f64 / seconds,
                seconds * 1_000.0 / batch_count as f64,
            );
            batch_count_total += batch_count as i64;
            record_count_total += records as i64;
        }
        // The figures count only if what was measured was written whole.
        assert_eq!(
            store.verify_ledger_chain().await.unwrap(),
            Ok(batch_count_total)
        );
        let last = store
            .ledger_records(record_count_total - 1, 10)
            .await
            .unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(store.ledger_accounts().await.unwrap(), book.accounts());
    }
}
