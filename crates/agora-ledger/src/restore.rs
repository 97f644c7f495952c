//! Rebuilding a ledger from what storage holds, checking that the history and the balances agree.

use std::cmp::Reverse;

use agora_domain::ledger::{
    Account, AccountId, Balances, FailedTransfer, RecordCause, TransferId, TransferKind,
    TransferRecord,
};

use crate::engine::{AccountSlot, Ledger, PendingStatus, TransferEntry, set_balances};

/// Why storage's accounts, records and failures do not make a consistent ledger.
///
/// Any of these means the stored history was damaged or written by a bug: the writer must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("account {0} is stored twice")]
    DuplicateAccount(AccountId),
    #[error("the record of {transfer} names account {account}, which is not stored")]
    UnknownAccount {
        transfer: TransferId,
        account: AccountId,
    },
    #[error("the record of {transfer} is not later than the record before it")]
    TimestampNotIncreasing { transfer: TransferId },
    #[error("transfer {0} is recorded as applied twice")]
    DuplicateTransfer(TransferId),
    #[error(
        "the record of {transfer} resolves {pending}, which is not an open pending transfer with the same accounts"
    )]
    PendingNotOpen {
        transfer: TransferId,
        pending: TransferId,
    },
    #[error("the record of {transfer} does not agree with a replay of the history: {detail}")]
    RecordDiverges {
        transfer: TransferId,
        detail: String,
    },
    #[error(
        "account {account}'s stored balances {stored:?} differ from the replay of its records {replayed:?}"
    )]
    AccountDiverges {
        account: AccountId,
        stored: Balances,
        replayed: Balances,
    },
    #[error("transfer {0} is stored as failed twice, or as both failed and applied")]
    FailureConflict(TransferId),
    #[error("the restored ledger breaks an invariant: {0}")]
    Invariant(String),
}

impl Ledger {
    /// Rebuilds the ledger from storage: every account with its current balances, every record in
    /// order, and every failed id.
    ///
    /// The records are replayed from zero balances, and each record's after-balances and each
    /// account's stored balances must agree with the replay; the replay also rebuilds what
    /// idempotency needs (every applied transfer, every pending transfer's status, the expiry
    /// queue, the record clock). A ledger restored this way answers every later call exactly as
    /// the ledger that wrote the records would have.
    pub fn restore(
        accounts: Vec<Account>,
        records: impl IntoIterator<Item = TransferRecord>,
        failures: impl IntoIterator<Item = FailedTransfer>,
    ) -> Result<Self, RestoreError> {
        let records = records.into_iter();
        let mut ledger = Ledger::with_capacity(accounts.len(), records.size_hint().0);
        let mut stored_balances = Vec::with_capacity(accounts.len());
        for mut account in accounts {
            if ledger.account_slots.contains_key(&account.id) {
                return Err(RestoreError::DuplicateAccount(account.id));
            }
            stored_balances.push(account.balances());
            set_balances(&mut account, Balances::default());
            ledger
                .account_slots
                .insert(account.id, ledger.accounts.len());
            ledger.accounts.push(AccountSlot::new(account));
        }

        for record in records {
            ledger.replay(record)?;
        }

        for (slot, stored) in ledger.accounts.iter().zip(stored_balances) {
            let replayed = slot.account.balances();
            if replayed != stored {
                return Err(RestoreError::AccountDiverges {
                    account: slot.account.id,
                    stored,
                    replayed,
                });
            }
        }
        for failure in failures {
            if ledger.transfers.contains_key(&failure.id)
                || ledger.failures.insert(failure.id, failure).is_some()
            {
                return Err(RestoreError::FailureConflict(failure.id));
            }
        }
        let open: Vec<_> = ledger
            .transfers
            .iter()
            .filter(|(_, entry)| entry.pending == Some(PendingStatus::Open))
            .filter_map(|(id, entry)| {
                entry
                    .expires_at()
                    .map(|expires_at| Reverse((expires_at, *id)))
            })
            .collect();
        ledger.expiries = open.into();
        ledger.check_invariants().map_err(RestoreError::Invariant)?;
        Ok(ledger)
    }

    /// Applies one stored record to the balances and the transfers, checking it against the replay.
    fn replay(&mut self, record: TransferRecord) -> Result<(), RestoreError> {
        let transfer_id = record.transfer.id;
        if self
            .last_timestamp
            .is_some_and(|last| record.timestamp <= last)
        {
            return Err(RestoreError::TimestampNotIncreasing {
                transfer: transfer_id,
            });
        }
        let slot_of = |ledger: &Ledger, account: AccountId| {
            ledger
                .account_slots
                .get(&account)
                .copied()
                .ok_or(RestoreError::UnknownAccount {
                    transfer: transfer_id,
                    account,
                })
        };
        let debit_slot = slot_of(self, record.transfer.debit_account_id)?;
        let credit_slot = slot_of(self, record.transfer.credit_account_id)?;
        let diverges = |detail: &str| RestoreError::RecordDiverges {
            transfer: transfer_id,
            detail: detail.to_owned(),
        };
        if debit_slot == credit_slot {
            return Err(diverges("the debit and credit accounts are one"));
        }
        let mut debit = self.accounts[debit_slot].account.balances();
        let mut credit = self.accounts[credit_slot].account.balances();

        // What the record moves: (posted amount, reservation added, reservation released).
        let (posted, reserved, released) = match (record.cause, record.transfer.kind) {
            (RecordCause::Transfer, _) if self.transfers.contains_key(&transfer_id) => {
                return Err(RestoreError::DuplicateTransfer(transfer_id));
            }
            (RecordCause::Transfer, TransferKind::Single) => (record.amount, 0, 0),
            (RecordCause::Transfer, TransferKind::Pending { .. }) => (0, record.amount, 0),
            (
                RecordCause::Transfer,
                TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id },
            ) => {
                let pending_amount = self.open_pending(&record, pending_id)?;
                let post = matches!(record.transfer.kind, TransferKind::PostPending { .. });
                let expected = match (post, record.transfer.amount) {
                    (true, 0) | (false, _) => pending_amount,
                    (true, amount) => amount,
                };
                if record.amount != expected || record.amount > pending_amount {
                    return Err(diverges(
                        "the recorded amount is not what the post or void moves",
                    ));
                }
                let status = if post {
                    PendingStatus::Posted
                } else {
                    PendingStatus::Voided
                };
                self.transfers
                    .get_mut(&pending_id)
                    .expect("open_pending found it")
                    .pending = Some(status);
                (if post { record.amount } else { 0 }, 0, pending_amount)
            }
            (RecordCause::Expiry, TransferKind::Pending { .. }) => {
                let pending_amount = self.open_pending(&record, transfer_id)?;
                let entry = self
                    .transfers
                    .get_mut(&transfer_id)
                    .expect("open_pending found it");
                if entry.transfer != record.transfer || record.amount != pending_amount {
                    return Err(diverges(
                        "an expiry must repeat its pending transfer and release its amount",
                    ));
                }
                entry.pending = Some(PendingStatus::Expired);
                (0, 0, pending_amount)
            }
            (RecordCause::Expiry, _) => return Err(diverges("only a pending transfer expires")),
        };
        if record.cause == RecordCause::Transfer
            && matches!(
                record.transfer.kind,
                TransferKind::Single | TransferKind::Pending { .. }
            )
            && record.amount != record.transfer.amount
        {
            return Err(diverges("the recorded amount is not the transfer's"));
        }

        let add = |balance: i64, amount: i64| {
            balance
                .checked_add(amount)
                .ok_or_else(|| diverges("a balance overflows"))
        };
        let subtract = |balance: i64, amount: i64| {
            balance
                .checked_sub(amount)
                .filter(|&rest| rest >= 0)
                .ok_or_else(|| diverges("a pending balance goes negative"))
        };
        debit.debits_posted = add(debit.debits_posted, posted)?;
        credit.credits_posted = add(credit.credits_posted, posted)?;
        debit.debits_pending = subtract(add(debit.debits_pending, reserved)?, released)?;
        credit.credits_pending = subtract(add(credit.credits_pending, reserved)?, released)?;
        if debit != record.debit_after || credit != record.credit_after {
            return Err(diverges("the after-balances differ from the replay's"));
        }
        set_balances(&mut self.accounts[debit_slot].account, debit);
        set_balances(&mut self.accounts[credit_slot].account, credit);

        if record.cause == RecordCause::Transfer {
            let pending = matches!(record.transfer.kind, TransferKind::Pending { .. })
                .then_some(PendingStatus::Open);
            let entry = TransferEntry {
                transfer: record.transfer,
                timestamp: record.timestamp,
                pending,
            };
            self.transfers.insert(transfer_id, entry);
        }
        self.last_timestamp = Some(record.timestamp);
        Ok(())
    }

    /// The amount of the open pending transfer `pending_id` that `record` resolves, if it names the same accounts.
    fn open_pending(
        &self,
        record: &TransferRecord,
        pending_id: TransferId,
    ) -> Result<i64, RestoreError> {
        let not_open = RestoreError::PendingNotOpen {
            transfer: record.transfer.id,
            pending: pending_id,
        };
        let entry = self
            .transfers
            .get(&pending_id)
            .ok_or_else(|| not_open.clone())?;
        let pending = &entry.transfer;
        let same_accounts = pending.debit_account_id == record.transfer.debit_account_id
            && pending.credit_account_id == record.transfer.credit_account_id;
        if entry.pending != Some(PendingStatus::Open) || !same_accounts {
            return Err(not_open);
        }
        Ok(pending.amount)
    }
}
