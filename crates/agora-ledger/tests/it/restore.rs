//! Restore: a ledger rebuilt from storage answers like the one that wrote it, and damaged history is refused.

use agora_domain::Timestamp;
use agora_domain::ledger::{Account, BalanceLimit, FailedTransfer, RecordCause, TransferRecord};
use agora_ledger::{Ledger, RestoreError};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::fixtures::*;
use crate::properties::{balances, run};
use crate::scenario::{Operation, operations, start};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Storage holds the accounts with their current balances, every record and every failure;
    /// the restored ledger must answer every later operation exactly like the original.
    #[test]
    fn a_restored_ledger_answers_like_the_original(operations in operations(50), split in any::<Index>()) {
        let split = split.index(operations.len());
        let (before, after) = operations.split_at(split);
        let mut original = Ledger::new();
        let mut now = start();
        let (_, records, failures) = run(&mut original, before, &mut now);

        let restored = Ledger::restore(original.accounts().cloned().collect(), records, failures);
        let mut restored = match restored {
            Ok(restored) => restored,
            Err(error) => return Err(TestCaseError::fail(error.to_string())),
        };
        prop_assert_eq!(restored.last_timestamp(), original.last_timestamp());
        prop_assert_eq!(restored.next_expiry(), original.next_expiry());
        prop_assert_eq!(restored.transfer_count(), original.transfer_count());
        prop_assert_eq!(restored.failure_count(), original.failure_count());

        let mut restored_now = now;
        let (expected, _, _) = run(&mut original, after, &mut now);
        let (answered, _, _) = run(&mut restored, after, &mut restored_now);
        prop_assert_eq!(answered, expected);
        prop_assert_eq!(balances(&restored), balances(&original));
        prop_assert_eq!(restored.next_expiry(), original.next_expiry());
        prop_assert_eq!(restored.transfer_count(), original.transfer_count());
    }
}

/// A small history: a payment, a reservation with a timeout, a partial post, a void, an expiry and a failure.
fn history() -> (Ledger, Vec<TransferRecord>, Vec<FailedTransfer>) {
    let mut ledger = Ledger::new();
    ledger.create_accounts(&[
        Account::new(account_id(1), eur(), 1, BalanceLimit::None, t0()),
        Account::new(account_id(2), eur(), 1, BalanceLimit::None, t0()),
        Account::new(
            account_id(3),
            eur(),
            1,
            BalanceLimit::DebitsMustNotExceedCredits,
            t0(),
        ),
    ]);
    let operations = [
        Operation::Apply(vec![
            single(1, 1, 3, 50),
            single(2, 3, 2, 20).pending(0),
            single(3, 3, 2, 10).pending(2),
            single(4, 1, 2, 5).pending(60),
            single(5, 3, 2, 100),
        ]),
        Operation::Apply(vec![
            single(6, 3, 2, 15).post(2),
            single(7, 1, 2, 0).void(4),
        ]),
        Operation::Advance(3_000_000),
        Operation::Expire,
        Operation::Apply(vec![single(8, 1, 2, 9).pending(600)]),
    ];
    let mut now = start();
    let (_, records, failures) = run(&mut ledger, &operations, &mut now);
    assert_eq!(
        records
            .iter()
            .filter(|record| record.cause == RecordCause::Expiry)
            .count(),
        1
    );
    assert_eq!(failures.len(), 1);
    (ledger, records, failures)
}

fn restore(
    ledger: &Ledger,
    records: Vec<TransferRecord>,
    failures: Vec<FailedTransfer>,
) -> Result<Ledger, RestoreError> {
    Ledger::restore(ledger.accounts().cloned().collect(), records, failures)
}

#[test]
fn a_restored_ledger_keeps_ids_pending_states_and_the_timer() {
    let (ledger, records, failures) = history();
    let mut restored = restore(&ledger, records, failures).expect("the history is consistent");
    assert_eq!(restored.next_expiry(), ledger.next_expiry());
    assert_eq!(restored.last_timestamp(), ledger.last_timestamp());
    let now = at(10);
    let retry = [
        single(1, 1, 3, 50),
        single(5, 3, 2, 100),
        single(9, 3, 2, 0).post(2),
        single(10, 3, 2, 0).post(3),
    ];
    let mut original = ledger.clone();
    let expected = original.apply(&retry, now);
    assert_eq!(restored.apply(&retry, now), expected);
    use agora_domain::ledger::TransferResult::*;
    assert_eq!(
        expected.results,
        [
            Exists,
            IdAlreadyFailed,
            PendingTransferAlreadyPosted,
            PendingTransferExpired
        ]
    );
}

#[test]
fn damaged_history_is_refused() {
    let (ledger, records, failures) = history();
    let accounts: Vec<Account> = ledger.accounts().cloned().collect();

    let mut tampered = records.clone();
    tampered[1].debit_after.debits_pending += 1;
    assert!(matches!(
        restore(&ledger, tampered, failures.clone()),
        Err(RestoreError::RecordDiverges { .. })
    ));

    let mut missing = records.clone();
    missing.remove(0);
    assert!(restore(&ledger, missing, failures.clone()).is_err());

    let mut reordered = records.clone();
    reordered.swap(0, 1);
    assert!(restore(&ledger, reordered, failures.clone()).is_err());

    let mut same_instant = records.clone();
    same_instant[1].timestamp = same_instant[0].timestamp;
    assert!(matches!(
        restore(&ledger, same_instant, failures.clone()),
        Err(RestoreError::TimestampNotIncreasing { .. })
    ));

    let mut twice = records.clone();
    let mut again = twice[0].clone();
    again.timestamp = Timestamp::from_micros(twice[twice.len() - 1].timestamp.as_micros() + 1);
    twice.push(again);
    assert!(matches!(
        restore(&ledger, twice, failures.clone()),
        Err(RestoreError::DuplicateTransfer(_))
    ));

    let mut inflated = accounts.clone();
    inflated[0].credits_posted += 1;
    assert!(matches!(
        Ledger::restore(inflated, records.clone(), failures.clone()),
        Err(RestoreError::AccountDiverges { .. })
    ));

    let mut duplicated = accounts.clone();
    duplicated.push(accounts[0].clone());
    assert!(matches!(
        Ledger::restore(duplicated, records.clone(), failures.clone()),
        Err(RestoreError::DuplicateAccount(_))
    ));

    assert!(matches!(
        Ledger::restore(accounts[1..].to_vec(), records.clone(), failures.clone()),
        Err(RestoreError::UnknownAccount { .. })
    ));

    let mut failed_and_applied = failures.clone();
    failed_and_applied[0].id = records[0].transfer.id;
    assert!(matches!(
        restore(&ledger, records.clone(), failed_and_applied),
        Err(RestoreError::FailureConflict(_))
    ));

    let mut expired_twice = records.clone();
    let expiry = records
        .iter()
        .find(|record| record.cause == RecordCause::Expiry)
        .expect("one expiry")
        .clone();
    expired_twice.push(TransferRecord {
        timestamp: Timestamp::from_micros(records[records.len() - 1].timestamp.as_micros() + 1),
        ..expiry
    });
    assert!(matches!(
        restore(&ledger, expired_twice, failures),
        Err(RestoreError::PendingNotOpen { .. })
    ));
}
