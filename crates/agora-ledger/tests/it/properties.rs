//! The model-based property test: random histories through the engine and the reference model, compared after every operation.

use std::collections::HashMap;

use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, Balances, Currency, FailedTransfer, RecordCause, Transfer, TransferRecord,
    TransferResult,
};
use agora_ledger::{Applied, Ledger, PendingStatus};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::model::Model;
use crate::scenario::{Operation, operations, start};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_answers_like_the_model(operations in operations(60)) {
        let mut ledger = Ledger::new();
        let mut model = Model::default();
        let mut now = start();
        let mut records = Vec::new();
        let mut failures = Vec::new();
        for operation in &operations {
            match operation {
                Operation::CreateAccounts(accounts) => {
                    prop_assert_eq!(ledger.create_accounts(accounts), model.create_accounts(accounts));
                }
                Operation::Apply(batch) => {
                    let before = balances(&ledger);
                    let applied = ledger.apply(batch, now);
                    prop_assert_eq!(&applied, &model.apply(batch, now), "batch {:#?}", batch);
                    check_applied(batch, &applied, now, before, &ledger)?;
                    check_replay_answers_exists(&ledger, batch, &applied, now)?;
                    records.extend(applied.records);
                    failures.extend(applied.failures);
                }
                Operation::Advance(micros) => now = Timestamp::from_micros(now.as_micros() + micros),
                Operation::Expire => {
                    let before = balances(&ledger);
                    let applied = ledger.expire(now);
                    prop_assert_eq!(&applied, &model.expire(now));
                    check_applied(&[], &applied, now, before, &ledger)?;
                    records.extend(applied.records);
                }
            }
            check_same_state(&ledger, &model)?;
        }
        // Every record's after-balances agree with a replay of the history, which restore checks.
        let restored = Ledger::restore(ledger.accounts().cloned().collect(), records, failures);
        prop_assert!(restored.is_ok(), "restore: {:?}", restored.err());
    }
}

pub fn balances(ledger: &Ledger) -> HashMap<AccountId, Balances> {
    ledger
        .accounts()
        .map(|account| (account.id, account.balances()))
        .collect()
}

/// What holds for any `Applied`, whatever the model says.
fn check_applied(
    batch: &[Transfer],
    applied: &Applied,
    now: Timestamp,
    mut before: HashMap<AccountId, Balances>,
    ledger: &Ledger,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(applied.results.len(), batch.len());
    // Refusals leave no record: the transfer records are exactly the created transfers, in order.
    let created: Vec<&Transfer> = batch
        .iter()
        .zip(&applied.results)
        .filter(|(_, result)| result.is_created())
        .map(|(transfer, _)| transfer)
        .collect();
    let recorded: Vec<&Transfer> = applied
        .records
        .iter()
        .filter(|record| record.cause == RecordCause::Transfer)
        .map(|record| &record.transfer)
        .collect();
    prop_assert_eq!(recorded, created);
    prop_assert!(applied.records.iter().all(|record| record.timestamp >= now));
    prop_assert!(
        applied
            .records
            .windows(2)
            .all(|pair| pair[0].timestamp < pair[1].timestamp)
    );
    // Folding the records' after-balances into the balances before gives the balances after,
    // so no account changed without a record.
    for record in &applied.records {
        before.insert(record.transfer.debit_account_id, record.debit_after);
        before.insert(record.transfer.credit_account_id, record.credit_after);
    }
    prop_assert_eq!(before, balances(ledger));
    for failure in &applied.failures {
        prop_assert_eq!(failure.timestamp, now);
        prop_assert!(
            !matches!(
                failure.result,
                TransferResult::Created
                    | TransferResult::Exists
                    | TransferResult::ExistsWithDifferentField { .. }
                    | TransferResult::IdAlreadyFailed
                    | TransferResult::LinkedEventFailed
                    | TransferResult::LinkedEventChainOpen
            ),
            "{:?} is not kept as a failure",
            failure.result
        );
    }
    Ok(())
}

/// Sending again what was just applied answers `Exists` throughout and changes nothing.
fn check_replay_answers_exists(
    ledger: &Ledger,
    batch: &[Transfer],
    applied: &Applied,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    // Whole chains only: a chain's transfers are all applied or none is.
    let applied_transfers: Vec<Transfer> = batch
        .iter()
        .zip(&applied.results)
        .filter(|(_, result)| result.is_applied())
        .map(|(t, _)| t.clone())
        .collect();
    let mut replayed = ledger.clone();
    let again = replayed.apply(&applied_transfers, now);
    prop_assert!(
        again
            .results
            .iter()
            .all(|result| *result == TransferResult::Exists),
        "{:?}",
        again.results
    );
    prop_assert!(again.records.is_empty() && again.failures.is_empty() && again.touched.is_empty());
    prop_assert_eq!(balances(&replayed), balances(ledger));
    prop_assert_eq!(replayed.transfer_count(), ledger.transfer_count());
    Ok(())
}

fn check_same_state(ledger: &Ledger, model: &Model) -> Result<(), TestCaseError> {
    let accounts: Vec<Account> = ledger.accounts().cloned().collect();
    prop_assert_eq!(&accounts, &model.accounts);
    prop_assert_eq!(ledger.transfer_count(), model.entries.len());
    for entry in &model.entries {
        prop_assert_eq!(ledger.transfer(entry.transfer.id), Some(entry));
    }
    prop_assert_eq!(ledger.failure_count(), model.failures.len());
    for failure in &model.failures {
        prop_assert_eq!(ledger.failure(failure.id), Some(failure));
    }
    prop_assert_eq!(ledger.last_timestamp(), model.last_timestamp);
    prop_assert_eq!(ledger.next_expiry(), model.next_expiry());
    if let Err(broken) = ledger.check_invariants() {
        return Err(TestCaseError::fail(broken));
    }

    // The invariants again, computed here rather than trusted to the engine.
    let mut totals: HashMap<Currency, [i128; 4]> = HashMap::new();
    for account in &accounts {
        let sums = totals.entry(account.currency).or_default();
        for (sum, balance) in sums.iter_mut().zip([
            account.debits_posted,
            account.credits_posted,
            account.debits_pending,
            account.credits_pending,
        ]) {
            *sum += i128::from(balance);
        }
    }
    for [
        debits_posted,
        credits_posted,
        debits_pending,
        credits_pending,
    ] in totals.values()
    {
        prop_assert_eq!(debits_posted, credits_posted);
        prop_assert_eq!(debits_pending, credits_pending);
    }
    let mut reserved: HashMap<AccountId, (i64, i64)> = HashMap::new();
    for entry in model
        .entries
        .iter()
        .filter(|entry| entry.pending == Some(PendingStatus::Open))
    {
        reserved
            .entry(entry.transfer.debit_account_id)
            .or_default()
            .0 += entry.transfer.amount;
        reserved
            .entry(entry.transfer.credit_account_id)
            .or_default()
            .1 += entry.transfer.amount;
    }
    for account in &accounts {
        let (debits, credits) = reserved.get(&account.id).copied().unwrap_or_default();
        prop_assert_eq!(
            (account.debits_pending, account.credits_pending),
            (debits, credits)
        );
    }
    Ok(())
}

/// Runs `operations` on `ledger`, returning what a writer would persist.
pub fn run(
    ledger: &mut Ledger,
    operations: &[Operation],
    now: &mut Timestamp,
) -> (Vec<Applied>, Vec<TransferRecord>, Vec<FailedTransfer>) {
    let mut applied_all = Vec::new();
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for operation in operations {
        let applied = match operation {
            Operation::CreateAccounts(accounts) => {
                ledger.create_accounts(accounts);
                continue;
            }
            Operation::Apply(batch) => ledger.apply(batch, *now),
            Operation::Advance(micros) => {
                *now = Timestamp::from_micros(now.as_micros() + micros);
                continue;
            }
            Operation::Expire => ledger.expire(*now),
        };
        records.extend(applied.records.iter().cloned());
        failures.extend(applied.failures.iter().copied());
        applied_all.push(applied);
    }
    (applied_all, records, failures)
}
