//! Data-driven cases: every answer a transfer can get, each through `check`, which also proves a refusal changed nothing.

use std::slice::from_ref;

use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, BalanceLimit, Balances, RecordCause, Transfer, TransferField, TransferKind,
    TransferResult,
};
use agora_ledger::{AccountField, AccountResult, Applied, Ledger, PendingStatus};

use crate::fixtures::*;

use TransferResult::*;

/// Euro accounts 1 and 2 without limits; 3 a wallet (debits must not exceed credits); 4 the
/// reverse; dollar accounts 5 and 6; account 99 does not exist.
fn fixture() -> Ledger {
    let mut ledger = Ledger::new();
    let accounts = [
        Account::new(account_id(1), eur(), 10, BalanceLimit::None, t0()),
        Account::new(account_id(2), eur(), 10, BalanceLimit::None, t0()),
        Account::new(
            account_id(3),
            eur(),
            20,
            BalanceLimit::DebitsMustNotExceedCredits,
            t0(),
        ),
        Account::new(
            account_id(4),
            eur(),
            30,
            BalanceLimit::CreditsMustNotExceedDebits,
            t0(),
        ),
        Account::new(account_id(5), usd(), 10, BalanceLimit::None, t0()),
        Account::new(account_id(6), usd(), 10, BalanceLimit::None, t0()),
    ];
    assert!(
        ledger
            .create_accounts(&accounts)
            .iter()
            .all(|result| *result == AccountResult::Created)
    );
    ledger
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    balances: Vec<Balances>,
    transfer_count: usize,
    last_timestamp: Option<Timestamp>,
    next_expiry: Option<Timestamp>,
    pending: Vec<Option<PendingStatus>>,
}

impl State {
    fn of(ledger: &Ledger, watched: &[Transfer]) -> Self {
        State {
            balances: ledger.accounts().map(Account::balances).collect(),
            transfer_count: ledger.transfer_count(),
            last_timestamp: ledger.last_timestamp(),
            next_expiry: ledger.next_expiry(),
            pending: watched
                .iter()
                .map(|transfer| ledger.transfer(transfer.id).and_then(|entry| entry.pending))
                .collect(),
        }
    }
}

/// Applies `prelude` at `t0`, then `batch` one second later, and checks the answers.
fn check(prelude: &[Transfer], batch: &[Transfer], expect: &[TransferResult]) -> (Ledger, Applied) {
    check_at(prelude, batch, at(1), expect)
}

/// Applies `prelude` at `t0`, then `batch` at `now`, and checks: the answers; the invariants; the
/// records are exactly the created transfers, in order, after any expiries; the failures are
/// exactly the refusals that stay failed; when nothing was created or expired, nothing changed
/// but the failures.
fn check_at(
    prelude: &[Transfer],
    batch: &[Transfer],
    now: Timestamp,
    expect: &[TransferResult],
) -> (Ledger, Applied) {
    let mut ledger = fixture();
    ledger.apply(prelude, t0());
    let failures_before = ledger.failure_count();
    let before = State::of(&ledger, prelude);
    let entries_before: Vec<_> = batch
        .iter()
        .map(|transfer| ledger.transfer(transfer.id).cloned())
        .collect();

    let applied = ledger.apply(batch, now);

    assert_eq!(applied.results, expect, "answers to {batch:#?}");
    ledger.check_invariants().expect("the invariants hold");
    let created: Vec<&Transfer> = batch
        .iter()
        .zip(&applied.results)
        .filter(|(_, result)| result.is_created())
        .map(|(transfer, _)| transfer)
        .collect();
    let recorded: Vec<&Transfer> = applied
        .records
        .iter()
        .skip_while(|record| record.cause == RecordCause::Expiry)
        .map(|record| &record.transfer)
        .collect();
    assert_eq!(recorded, created, "records of created transfers");
    let expected_failures: Vec<_> = batch
        .iter()
        .zip(&applied.results)
        .filter(|(_, result)| {
            !matches!(
                result,
                Created
                    | Exists
                    | ExistsWithDifferentField { .. }
                    | IdAlreadyFailed
                    | LinkedEventFailed
                    | LinkedEventChainOpen
            )
        })
        .map(|(transfer, result)| (transfer.id, *result, now))
        .collect();
    let failures: Vec<_> = applied
        .failures
        .iter()
        .map(|failure| (failure.id, failure.result, failure.timestamp))
        .collect();
    assert_eq!(failures, expected_failures);
    assert_eq!(ledger.failure_count(), failures_before + failures.len());
    // A transfer the batch did not create is as it was (absent, or the original).
    for ((transfer, result), entry_before) in
        batch.iter().zip(&applied.results).zip(&entries_before)
    {
        if !created.iter().any(|created| created.id == transfer.id) {
            assert_eq!(
                ledger.transfer(transfer.id),
                entry_before.as_ref(),
                "{result:?} left {transfer:?} as it was"
            );
        }
    }
    if applied.records.is_empty() {
        assert_eq!(
            State::of(&ledger, prelude),
            before,
            "refusals changed nothing"
        );
        assert!(applied.touched.is_empty());
    }
    for pair in applied.records.windows(2) {
        assert!(
            pair[0].timestamp < pair[1].timestamp,
            "record timestamps strictly increase"
        );
    }
    assert!(applied.records.iter().all(|record| record.timestamp >= now));
    (ledger, applied)
}

fn balances(ledger: &Ledger, account: u128) -> Balances {
    ledger
        .account(account_id(account))
        .expect("the account exists")
        .balances()
}

fn posted(debits_posted: i64, credits_posted: i64) -> Balances {
    Balances {
        debits_posted,
        credits_posted,
        ..Balances::default()
    }
}

fn reserved(debits_pending: i64, credits_pending: i64) -> Balances {
    Balances {
        debits_pending,
        credits_pending,
        ..Balances::default()
    }
}

#[test]
fn single_transfers_move_money_at_once() {
    let (ledger, applied) = check(&[], &[single(1, 1, 2, 10)], &[Created]);
    assert_eq!(balances(&ledger, 1), posted(10, 0));
    assert_eq!(balances(&ledger, 2), posted(0, 10));
    assert_eq!(applied.records[0].debit_after, posted(10, 0));
    assert_eq!(applied.records[0].credit_after, posted(0, 10));
    assert_eq!(applied.records[0].timestamp, at(1));
    assert_eq!(applied.touched, [account_id(1), account_id(2)]);
}

#[test]
fn ids_are_idempotent() {
    let original = single(1, 1, 2, 10);
    let (ledger, _) = check(from_ref(&original), from_ref(&original), &[Exists]);
    assert_eq!(balances(&ledger, 1), posted(10, 0), "nothing moved again");

    let changed = [
        (
            Transfer {
                debit_account_id: account_id(4),
                ..original.clone()
            },
            TransferField::DebitAccountId,
        ),
        (
            Transfer {
                credit_account_id: account_id(4),
                ..original.clone()
            },
            TransferField::CreditAccountId,
        ),
        (
            Transfer {
                amount: 11,
                ..original.clone()
            },
            TransferField::Amount,
        ),
        (original.clone().currency(usd()), TransferField::Currency),
        (original.clone().code(2), TransferField::Code),
        (original.clone().pending(0), TransferField::Kind),
        (original.clone().linked(), TransferField::Linked),
        // The first difference in the fixed order is named.
        (
            Transfer {
                amount: 11,
                ..original.clone().code(2)
            },
            TransferField::Amount,
        ),
    ];
    for (retry, field) in changed {
        let batch = if retry.linked {
            vec![retry, single(2, 1, 2, 1)]
        } else {
            vec![retry]
        };
        let expect = if batch.len() == 2 {
            vec![ExistsWithDifferentField { field }, LinkedEventFailed]
        } else {
            vec![ExistsWithDifferentField { field }]
        };
        check(from_ref(&original), &batch, &expect);
    }

    // A failed id stays failed, even when the retry would now succeed.
    check(
        &[single(1, 1, 2, 0)],
        &[single(1, 1, 2, 10)],
        &[IdAlreadyFailed],
    );
    // A duplicate within one batch is a retry.
    check(
        &[],
        &[
            single(1, 1, 2, 10),
            single(1, 1, 2, 10),
            single(1, 1, 2, 12),
        ],
        &[
            Created,
            Exists,
            ExistsWithDifferentField {
                field: TransferField::Amount,
            },
        ],
    );
}

#[test]
fn malformed_transfers_are_refused() {
    check(&[], &[single(1, 1, 2, 0)], &[AmountMustBePositive]);
    check(&[], &[single(1, 1, 2, -3)], &[AmountMustBePositive]);
    check(
        &[],
        &[single(1, 1, 2, 0).pending(0)],
        &[AmountMustBePositive],
    );
    check(
        &[single(1, 1, 2, 5).pending(0)],
        &[single(2, 1, 2, -1).post(1)],
        &[AmountMustBePositive],
    );
    check(
        &[single(1, 1, 2, 5).pending(0)],
        &[single(2, 1, 2, -1).void(1)],
        &[AmountMustBePositive],
    );
    check(&[], &[single(1, 1, 1, 5)], &[AccountsMustBeDifferent]);
    check(&[], &[single(1, 99, 2, 5)], &[DebitAccountNotFound]);
    check(&[], &[single(1, 1, 99, 5)], &[CreditAccountNotFound]);
    check(&[], &[single(1, 99, 98, 5)], &[DebitAccountNotFound]);
    check(&[], &[single(1, 1, 5, 5)], &[CurrencyMismatch]);
    check(&[], &[single(1, 5, 6, 5)], &[CurrencyMismatch]);
    check(
        &[],
        &[single(1, 1, 2, 5).currency(usd())],
        &[CurrencyMismatch],
    );
    check(&[], &[single(1, 5, 6, 5).currency(usd())], &[Created]);
}

#[test]
fn limits_hold_for_posted_and_pending_amounts() {
    // The wallet (3) may spend only what it was credited.
    check(&[], &[single(1, 3, 1, 1)], &[ExceedsCredits]);
    let (ledger, _) = check(
        &[single(1, 1, 3, 10)],
        &[single(2, 3, 2, 10), single(3, 3, 2, 1)],
        &[Created, ExceedsCredits],
    );
    assert_eq!(balances(&ledger, 3), posted(10, 10));
    // A reservation counts against the limit at once.
    check(
        &[single(1, 1, 3, 10), single(2, 3, 2, 7).pending(0)],
        &[single(3, 3, 2, 4)],
        &[ExceedsCredits],
    );
    check(
        &[single(1, 1, 3, 10), single(2, 3, 2, 7).pending(0)],
        &[single(3, 3, 2, 4).pending(0)],
        &[ExceedsCredits],
    );
    check(
        &[single(1, 1, 3, 10), single(2, 3, 2, 7).pending(0)],
        &[single(3, 3, 2, 3)],
        &[Created],
    );
    // Pending credits do not fund the wallet.
    check(
        &[single(1, 1, 3, 10).pending(0)],
        &[single(2, 3, 2, 1)],
        &[ExceedsCredits],
    );
    // Account 4 may be credited only what it was debited.
    check(&[], &[single(1, 1, 4, 1)], &[ExceedsDebits]);
    check(
        &[single(1, 4, 1, 5)],
        &[single(2, 2, 4, 5), single(3, 2, 4, 1).pending(0)],
        &[Created, ExceedsDebits],
    );
}

#[test]
fn balances_never_wrap() {
    check(
        &[single(1, 1, 2, i64::MAX)],
        &[single(2, 1, 2, 1)],
        &[Overflow],
    );
    // Pending and posted together must fit.
    check(
        &[single(1, 1, 2, i64::MAX - 1).pending(0)],
        &[single(2, 1, 4, 2)],
        &[Overflow],
    );
    check(
        &[single(1, 1, 2, i64::MAX - 1).pending(0)],
        &[single(2, 2, 1, 2)],
        &[Created],
    );
    check(
        &[single(1, 2, 1, i64::MAX - 1)],
        &[single(2, 4, 1, 2)],
        &[Overflow],
    );
}

#[test]
fn pending_transfers_reserve_then_post_void_or_expire_once() {
    let pending = single(1, 1, 2, 10).pending(0);
    let (ledger, applied) = check(&[], from_ref(&pending), &[Created]);
    assert_eq!(balances(&ledger, 1), reserved(10, 0));
    assert_eq!(balances(&ledger, 2), reserved(0, 10));
    assert_eq!(applied.records[0].amount, 10);

    // A partial post moves its amount and releases the rest.
    let (ledger, applied) = check(
        from_ref(&pending),
        &[single(2, 1, 2, 4).post(1)],
        &[Created],
    );
    assert_eq!(balances(&ledger, 1), posted(4, 0));
    assert_eq!(balances(&ledger, 2), posted(0, 4));
    assert_eq!(applied.records[0].amount, 4);
    assert_eq!(
        ledger
            .transfer(transfer_id(1))
            .and_then(|entry| entry.pending),
        Some(PendingStatus::Posted)
    );
    // A post of 0 posts the full amount.
    let (ledger, applied) = check(
        from_ref(&pending),
        &[single(2, 1, 2, 0).post(1)],
        &[Created],
    );
    assert_eq!(balances(&ledger, 1), posted(10, 0));
    assert_eq!(applied.records[0].amount, 10);
    // A void releases everything, and says how much.
    for amount in [0, 10] {
        let (ledger, applied) = check(
            from_ref(&pending),
            &[single(2, 1, 2, amount).void(1)],
            &[Created],
        );
        assert_eq!(balances(&ledger, 1), Balances::default());
        assert_eq!(applied.records[0].amount, 10);
        assert_eq!(
            ledger
                .transfer(transfer_id(1))
                .and_then(|entry| entry.pending),
            Some(PendingStatus::Voided)
        );
    }

    // Each pending transfer resolves once.
    let posted_once = [pending.clone(), single(2, 1, 2, 0).post(1)];
    check(
        &posted_once,
        &[single(3, 1, 2, 0).post(1)],
        &[PendingTransferAlreadyPosted],
    );
    check(
        &posted_once,
        &[single(3, 1, 2, 0).void(1)],
        &[PendingTransferAlreadyPosted],
    );
    let voided_once = [pending.clone(), single(2, 1, 2, 0).void(1)];
    check(
        &voided_once,
        &[single(3, 1, 2, 0).post(1)],
        &[PendingTransferAlreadyVoided],
    );
    check(
        &voided_once,
        &[single(3, 1, 2, 0).void(1)],
        &[PendingTransferAlreadyVoided],
    );
    check(
        &[],
        &[
            pending.clone(),
            single(2, 1, 2, 3).post(1),
            single(3, 1, 2, 3).post(1),
        ],
        &[Created, Created, PendingTransferAlreadyPosted],
    );

    // What a post or void names must be there, be pending, and match.
    check(
        &[],
        &[single(2, 1, 2, 0).post(1)],
        &[PendingTransferNotFound],
    );
    check(
        &[single(1, 1, 2, 10)],
        &[single(2, 1, 2, 0).post(1)],
        &[PendingTransferNotPending],
    );
    check(
        &[single(1, 1, 2, 10).pending(0), single(2, 1, 2, 0).post(1)],
        &[single(3, 1, 2, 0).post(2)],
        &[PendingTransferNotPending],
    );
    check(
        from_ref(&pending),
        &[single(2, 3, 2, 0).post(1)],
        &[PendingTransferMismatch],
    );
    check(
        from_ref(&pending),
        &[single(2, 1, 3, 0).post(1)],
        &[PendingTransferMismatch],
    );
    check(
        from_ref(&pending),
        &[single(2, 1, 2, 0).code(2).void(1)],
        &[PendingTransferMismatch],
    );
    check(
        from_ref(&pending),
        &[single(2, 1, 2, 4).void(1)],
        &[PendingTransferMismatch],
    );
    check(
        from_ref(&pending),
        &[single(2, 1, 2, 11).post(1)],
        &[ExceedsPendingAmount],
    );
    check(
        from_ref(&pending),
        &[single(2, 1, 2, 11).void(1)],
        &[ExceedsPendingAmount],
    );
    // Mismatch comes before the status, as in TigerBeetle.
    check(
        &posted_once,
        &[single(3, 1, 2, 0).code(2).post(1)],
        &[PendingTransferMismatch],
    );
}

#[test]
fn pending_transfers_expire_at_their_timeout() {
    let pending = single(1, 1, 2, 10).pending(2);
    // Before the timeout it posts; at the timeout the sweep releases it first and the post fails.
    check_at(
        from_ref(&pending),
        &[single(2, 1, 2, 0).post(1)],
        Timestamp::from_micros(at(2).as_micros() - 1),
        &[Created],
    );
    let (ledger, applied) = check_at(
        from_ref(&pending),
        &[single(2, 1, 2, 0).post(1)],
        at(2),
        &[PendingTransferExpired],
    );
    assert_eq!(applied.records.len(), 1);
    assert_eq!(applied.records[0].cause, RecordCause::Expiry);
    assert_eq!(applied.records[0].amount, 10);
    assert_eq!(applied.records[0].timestamp, at(2));
    assert_eq!(balances(&ledger, 1), Balances::default());
    assert_eq!(
        ledger
            .transfer(transfer_id(1))
            .and_then(|entry| entry.pending),
        Some(PendingStatus::Expired)
    );
    check_at(
        from_ref(&pending),
        &[single(2, 1, 2, 0).void(1)],
        at(3),
        &[PendingTransferExpired],
    );

    // The writer's timer: the soonest expiry, then `expire`.
    let mut ledger = fixture();
    ledger.apply(
        &[
            single(1, 1, 2, 10).pending(5),
            single(2, 1, 2, 7).pending(2),
            single(3, 1, 2, 1).pending(0),
        ],
        t0(),
    );
    assert_eq!(
        ledger.next_expiry(),
        Some(Timestamp::from_micros(at(2).as_micros() + 1))
    );
    assert!(ledger.expire(at(2)).records.is_empty());
    let applied = ledger.expire(at(6));
    let expired: Vec<_> = applied
        .records
        .iter()
        .map(|record| (record.transfer.id, record.cause))
        .collect();
    assert_eq!(
        expired,
        [
            (transfer_id(2), RecordCause::Expiry),
            (transfer_id(1), RecordCause::Expiry)
        ]
    );
    assert_eq!(applied.touched, [account_id(1), account_id(2)]);
    assert_eq!(ledger.next_expiry(), None);
    assert_eq!(balances(&ledger, 1), reserved(1, 0));
    ledger.check_invariants().expect("the invariants hold");
    // A resolved pending transfer leaves the timer.
    let mut ledger = fixture();
    ledger.apply(
        &[single(1, 1, 2, 10).pending(5), single(2, 1, 2, 0).void(1)],
        t0(),
    );
    assert_eq!(ledger.next_expiry(), None);
}

#[test]
fn linked_chains_apply_whole_or_not_at_all() {
    // The refused transfer keeps its answer; the rest of the chain is undone.
    let (ledger, _) = check(
        &[],
        &[single(1, 1, 2, 10).linked(), single(2, 99, 2, 5)],
        &[LinkedEventFailed, DebitAccountNotFound],
    );
    assert_eq!(ledger.transfer(transfer_id(1)), None);
    check(
        &[],
        &[
            single(1, 1, 2, 10).linked(),
            single(2, 1, 2, 0).linked(),
            single(3, 1, 2, 5),
        ],
        &[LinkedEventFailed, AmountMustBePositive, LinkedEventFailed],
    );
    // Chains around a failed one are independent.
    let (ledger, applied) = check(
        &[],
        &[
            single(1, 1, 2, 1).linked(),
            single(2, 2, 1, 2),
            single(3, 4, 1, 10).linked(),
            single(4, 3, 2, 5),
            single(5, 1, 2, 4),
        ],
        &[Created, Created, LinkedEventFailed, ExceedsCredits, Created],
    );
    assert_eq!(balances(&ledger, 1), posted(5, 2));
    let timestamps: Vec<_> = applied
        .records
        .iter()
        .map(|record| record.timestamp.as_micros() - at(1).as_micros())
        .collect();
    assert_eq!(
        timestamps,
        [0, 1, 2],
        "an undone chain gives its timestamps back"
    );
    assert_eq!(
        applied.touched,
        [account_id(1), account_id(2)],
        "an undone chain touches nothing"
    );
    // An undone chain reopens the pending transfer it posted, and forgets the one it reserved.
    let (ledger, _) = check(
        &[single(1, 1, 2, 10).pending(0)],
        &[
            single(2, 1, 2, 0).post(1).linked(),
            single(3, 1, 2, 5).pending(9).linked(),
            single(4, 3, 2, 1),
        ],
        &[LinkedEventFailed, LinkedEventFailed, ExceedsCredits],
    );
    assert_eq!(
        ledger
            .transfer(transfer_id(1))
            .and_then(|entry| entry.pending),
        Some(PendingStatus::Open)
    );
    assert_eq!(ledger.next_expiry(), None);
    // Within a chain, later transfers see earlier ones: fund the wallet, then spend from it.
    check(
        &[],
        &[single(1, 1, 3, 5).linked(), single(2, 3, 2, 5)],
        &[Created, Created],
    );
    check(
        &[],
        &[
            single(1, 1, 2, 5).pending(0).linked(),
            single(2, 1, 2, 0).post(1),
        ],
        &[Created, Created],
    );
    // A retried chain answers Exists throughout, and moves nothing again.
    let chain = [
        single(1, 1, 2, 1).linked(),
        single(2, 2, 1, 2).linked(),
        single(3, 1, 2, 3),
    ];
    let (ledger, _) = check(&chain, &chain, &[Exists, Exists, Exists]);
    assert_eq!(balances(&ledger, 1), posted(4, 2));
    // A retry that differs fails its chain.
    let changed = [
        chain[0].clone(),
        Transfer {
            amount: 9,
            ..chain[1].clone()
        },
        chain[2].clone(),
    ];
    check(
        &chain,
        &changed,
        &[
            LinkedEventFailed,
            ExistsWithDifferentField {
                field: TransferField::Amount,
            },
            LinkedEventFailed,
        ],
    );
}

#[test]
fn a_batch_ending_inside_a_chain_applies_none_of_it() {
    check(&[], &[single(1, 1, 2, 1).linked()], &[LinkedEventChainOpen]);
    check(
        &[],
        &[
            single(1, 1, 2, 1),
            single(2, 1, 2, 1).linked(),
            single(3, 1, 2, 1).linked(),
        ],
        &[Created, LinkedEventChainOpen, LinkedEventChainOpen],
    );
    // Not even a failure inside it is recorded.
    check(&[], &[single(1, 1, 2, 0).linked()], &[LinkedEventChainOpen]);
    check(&[], &[], &[]);
}

#[test]
fn records_are_stamped_in_order() {
    let mut ledger = fixture();
    let applied = ledger.apply(&[single(1, 1, 2, 1), single(2, 1, 2, 1)], at(5));
    let stamps: Vec<_> = applied
        .records
        .iter()
        .map(|record| record.timestamp)
        .collect();
    assert_eq!(
        stamps,
        [at(5), Timestamp::from_micros(at(5).as_micros() + 1)]
    );
    // A clock that goes back does not reorder history.
    let applied = ledger.apply(&[single(3, 1, 2, 1), single(4, 1, 2, 0)], at(1));
    assert_eq!(
        applied.records[0].timestamp,
        Timestamp::from_micros(at(5).as_micros() + 2)
    );
    assert_eq!(
        applied.failures[0].timestamp,
        at(1),
        "a failure carries the batch's instant"
    );
    assert_eq!(
        ledger.last_timestamp(),
        Some(Timestamp::from_micros(at(5).as_micros() + 2))
    );
    let entry = ledger
        .transfer(transfer_id(3))
        .map(|entry| (entry.timestamp, entry.transfer.kind));
    assert_eq!(
        entry,
        Some((
            Timestamp::from_micros(at(5).as_micros() + 2),
            TransferKind::Single
        ))
    );
}

#[test]
fn accounts_are_created_once() {
    let mut ledger = fixture();
    let wallet = Account::new(
        account_id(3),
        eur(),
        20,
        BalanceLimit::DebitsMustNotExceedCredits,
        at(9),
    );
    let funded = Account {
        credits_posted: 1,
        ..Account::new(account_id(7), eur(), 1, BalanceLimit::None, t0())
    };
    let results = ledger.create_accounts(&[
        wallet.clone(),
        Account {
            currency: usd(),
            ..wallet.clone()
        },
        Account {
            code: 21,
            ..wallet.clone()
        },
        Account {
            limit: BalanceLimit::None,
            ..wallet.clone()
        },
        funded,
        Account::new(account_id(7), eur(), 1, BalanceLimit::None, t0()),
        Account::new(account_id(7), eur(), 1, BalanceLimit::None, t0()),
    ]);
    assert_eq!(
        results,
        [
            AccountResult::Exists,
            AccountResult::ExistsWithDifferentField {
                field: AccountField::Currency
            },
            AccountResult::ExistsWithDifferentField {
                field: AccountField::Code
            },
            AccountResult::ExistsWithDifferentField {
                field: AccountField::Limit
            },
            AccountResult::BalancesMustBeZero,
            AccountResult::Created,
            AccountResult::Exists,
        ]
    );
    assert_eq!(ledger.accounts().len(), 7);
    assert_eq!(
        ledger
            .account(account_id(3))
            .map(|account| account.created_at),
        Some(t0()),
        "the original stays"
    );
}
