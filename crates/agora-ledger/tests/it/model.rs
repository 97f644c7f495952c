//! A deliberately simple reference ledger: vectors scanned from the start, a whole copy to undo a chain, `i128` sums.
//!
//! It restates the rules of `agora_ledger`'s documentation without its data structures, so that
//! the engine's cleverness (hash maps, an undo log, a lazy expiry heap) is checked against plain code.

use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, FailedTransfer, RecordCause, Transfer, TransferField,
    TransferId, TransferKind, TransferRecord, TransferResult,
};
use agora_ledger::{AccountField, AccountResult, Applied, PendingStatus, TransferEntry};

use TransferResult::*;

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub accounts: Vec<Account>,
    pub entries: Vec<TransferEntry>,
    pub failures: Vec<FailedTransfer>,
    pub last_timestamp: Option<Timestamp>,
}

impl Model {
    pub fn create_accounts(&mut self, accounts: &[Account]) -> Vec<AccountResult> {
        let mut results = Vec::new();
        for account in accounts {
            let zero = account.debits_pending == 0
                && account.debits_posted == 0
                && account.credits_pending == 0
                && account.credits_posted == 0;
            let result = match self
                .accounts
                .iter()
                .find(|existing| existing.id == account.id)
            {
                _ if !zero => AccountResult::BalancesMustBeZero,
                None => {
                    self.accounts.push(account.clone());
                    AccountResult::Created
                }
                Some(existing) if existing.currency != account.currency => {
                    AccountResult::ExistsWithDifferentField {
                        field: AccountField::Currency,
                    }
                }
                Some(existing) if existing.code != account.code => {
                    AccountResult::ExistsWithDifferentField {
                        field: AccountField::Code,
                    }
                }
                Some(existing) if existing.limit != account.limit => {
                    AccountResult::ExistsWithDifferentField {
                        field: AccountField::Limit,
                    }
                }
                Some(_) => AccountResult::Exists,
            };
            results.push(result);
        }
        results
    }

    pub fn entry(&self, id: TransferId) -> Option<&TransferEntry> {
        self.entries.iter().find(|entry| entry.transfer.id == id)
    }

    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.entries
            .iter()
            .filter(|entry| entry.pending == Some(PendingStatus::Open))
            .filter_map(expires_at)
            .min()
    }

    pub fn expire(&mut self, now: Timestamp) -> Applied {
        let records = self.sweep(now);
        let touched = touched(&records);
        Applied {
            results: Vec::new(),
            records,
            failures: Vec::new(),
            touched,
        }
    }

    pub fn apply(&mut self, batch: &[Transfer], now: Timestamp) -> Applied {
        let mut records = self.sweep(now);
        let mut results = Vec::new();
        let mut failures = Vec::new();
        let mut start = 0;
        while start < batch.len() {
            let mut end = start;
            while end < batch.len() && batch[end].linked {
                end += 1;
            }
            if end == batch.len() {
                // The batch ends inside this chain.
                for _ in start..batch.len() {
                    results.push(LinkedEventChainOpen);
                }
                break;
            }
            let chain = &batch[start..=end];
            let saved = self.clone();
            let saved_records = records.len();
            let mut answers = Vec::new();
            let mut refusal = None;
            for (position, transfer) in chain.iter().enumerate() {
                match self.apply_one(transfer, now) {
                    Ok(Some(record)) => {
                        records.push(record);
                        answers.push(Created);
                    }
                    Ok(None) => answers.push(Exists),
                    Err(result) => {
                        refusal = Some((position, result));
                        break;
                    }
                }
            }
            match refusal {
                None => results.extend(answers),
                Some((position, result)) => {
                    *self = saved;
                    records.truncate(saved_records);
                    for index in 0..chain.len() {
                        results.push(if index == position {
                            result
                        } else {
                            LinkedEventFailed
                        });
                    }
                    let kept = !matches!(result, ExistsWithDifferentField { .. } | IdAlreadyFailed);
                    if kept {
                        let failure = FailedTransfer {
                            id: chain[position].id,
                            result,
                            timestamp: now,
                        };
                        self.failures.push(failure);
                        failures.push(failure);
                    }
                }
            }
            start = end + 1;
        }
        let touched = touched(&records);
        Applied {
            results,
            records,
            failures,
            touched,
        }
    }

    fn tick(&mut self, now: Timestamp) -> Timestamp {
        let next = match self.last_timestamp {
            Some(last) if last.as_micros() + 1 > now.as_micros() => {
                Timestamp::from_micros(last.as_micros() + 1)
            }
            _ => now,
        };
        self.last_timestamp = Some(next);
        next
    }

    fn account_index(&self, id: AccountId) -> Option<usize> {
        self.accounts.iter().position(|account| account.id == id)
    }

    fn sweep(&mut self, now: Timestamp) -> Vec<TransferRecord> {
        let mut due: Vec<(Timestamp, TransferId)> = self
            .entries
            .iter()
            .filter(|entry| entry.pending == Some(PendingStatus::Open))
            .filter_map(|entry| expires_at(entry).map(|instant| (instant, entry.transfer.id)))
            .filter(|(instant, _)| *instant <= now)
            .collect();
        due.sort();
        let mut records = Vec::new();
        for (_, id) in due {
            let index = self
                .entries
                .iter()
                .position(|entry| entry.transfer.id == id)
                .expect("due entries exist");
            self.entries[index].pending = Some(PendingStatus::Expired);
            let pending = self.entries[index].transfer.clone();
            let debit = self
                .account_index(pending.debit_account_id)
                .expect("its accounts exist");
            let credit = self
                .account_index(pending.credit_account_id)
                .expect("its accounts exist");
            self.accounts[debit].debits_pending -= pending.amount;
            self.accounts[credit].credits_pending -= pending.amount;
            let timestamp = self.tick(now);
            records.push(TransferRecord {
                amount: pending.amount,
                transfer: pending,
                cause: RecordCause::Expiry,
                timestamp,
                debit_after: self.accounts[debit].balances(),
                credit_after: self.accounts[credit].balances(),
            });
        }
        records
    }

    /// `Ok(Some(record))` when created, `Ok(None)` when it exists with the same content.
    fn apply_one(
        &mut self,
        transfer: &Transfer,
        now: Timestamp,
    ) -> Result<Option<TransferRecord>, TransferResult> {
        if let Some(existing) = self.entry(transfer.id) {
            let existing = &existing.transfer;
            let differences = [
                (
                    existing.debit_account_id != transfer.debit_account_id,
                    TransferField::DebitAccountId,
                ),
                (
                    existing.credit_account_id != transfer.credit_account_id,
                    TransferField::CreditAccountId,
                ),
                (existing.amount != transfer.amount, TransferField::Amount),
                (
                    existing.currency != transfer.currency,
                    TransferField::Currency,
                ),
                (existing.code != transfer.code, TransferField::Code),
                (existing.kind != transfer.kind, TransferField::Kind),
                (existing.linked != transfer.linked, TransferField::Linked),
            ];
            return match differences.iter().find(|(differs, _)| *differs) {
                Some((_, field)) => Err(ExistsWithDifferentField { field: *field }),
                None => Ok(None),
            };
        }
        if self
            .failures
            .iter()
            .any(|failure| failure.id == transfer.id)
        {
            return Err(IdAlreadyFailed);
        }
        let two_phase_resolution = matches!(
            transfer.kind,
            TransferKind::PostPending { .. } | TransferKind::VoidPending { .. }
        );
        if transfer.amount < 0 || (transfer.amount == 0 && !two_phase_resolution) {
            return Err(AmountMustBePositive);
        }
        if transfer.debit_account_id == transfer.credit_account_id {
            return Err(AccountsMustBeDifferent);
        }
        let debit = self
            .account_index(transfer.debit_account_id)
            .ok_or(DebitAccountNotFound)?;
        let credit = self
            .account_index(transfer.credit_account_id)
            .ok_or(CreditAccountNotFound)?;
        if self.accounts[debit].currency != transfer.currency
            || self.accounts[credit].currency != transfer.currency
        {
            return Err(CurrencyMismatch);
        }

        let amount = i128::from(transfer.amount);
        let max = i128::from(i64::MAX);
        let recorded_amount;
        let mut resolved = None;
        match transfer.kind {
            TransferKind::Single | TransferKind::Pending { .. } => {
                let d = &self.accounts[debit];
                let c = &self.accounts[credit];
                let debits = i128::from(d.debits_pending) + i128::from(d.debits_posted) + amount;
                let credits = i128::from(c.credits_pending) + i128::from(c.credits_posted) + amount;
                if debits > max || credits > max {
                    return Err(Overflow);
                }
                if d.limit == BalanceLimit::DebitsMustNotExceedCredits
                    && debits > i128::from(d.credits_posted)
                {
                    return Err(ExceedsCredits);
                }
                if c.limit == BalanceLimit::CreditsMustNotExceedDebits
                    && credits > i128::from(c.debits_posted)
                {
                    return Err(ExceedsDebits);
                }
                if transfer.kind == TransferKind::Single {
                    self.accounts[debit].debits_posted += transfer.amount;
                    self.accounts[credit].credits_posted += transfer.amount;
                } else {
                    self.accounts[debit].debits_pending += transfer.amount;
                    self.accounts[credit].credits_pending += transfer.amount;
                }
                recorded_amount = transfer.amount;
            }
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => {
                let post = matches!(transfer.kind, TransferKind::PostPending { .. });
                let index = self
                    .entries
                    .iter()
                    .position(|entry| entry.transfer.id == pending_id)
                    .ok_or(PendingTransferNotFound)?;
                let entry = &self.entries[index];
                let pending = &entry.transfer;
                if !matches!(pending.kind, TransferKind::Pending { .. }) {
                    return Err(PendingTransferNotPending);
                }
                if pending.debit_account_id != transfer.debit_account_id
                    || pending.credit_account_id != transfer.credit_account_id
                    || pending.currency != transfer.currency
                    || pending.code != transfer.code
                {
                    return Err(PendingTransferMismatch);
                }
                if transfer.amount > pending.amount {
                    return Err(ExceedsPendingAmount);
                }
                if !post && transfer.amount != 0 && transfer.amount != pending.amount {
                    return Err(PendingTransferMismatch);
                }
                match entry.pending {
                    Some(PendingStatus::Posted) => return Err(PendingTransferAlreadyPosted),
                    Some(PendingStatus::Voided) => return Err(PendingTransferAlreadyVoided),
                    Some(PendingStatus::Expired) => return Err(PendingTransferExpired),
                    _ => {}
                }
                let posted = if !post {
                    0
                } else if transfer.amount == 0 {
                    pending.amount
                } else {
                    transfer.amount
                };
                if i128::from(self.accounts[debit].debits_posted) + i128::from(posted) > max
                    || i128::from(self.accounts[credit].credits_posted) + i128::from(posted) > max
                {
                    return Err(Overflow);
                }
                let reserved = pending.amount;
                self.accounts[debit].debits_pending -= reserved;
                self.accounts[credit].credits_pending -= reserved;
                self.accounts[debit].debits_posted += posted;
                self.accounts[credit].credits_posted += posted;
                recorded_amount = if post { posted } else { reserved };
                resolved = Some((
                    index,
                    if post {
                        PendingStatus::Posted
                    } else {
                        PendingStatus::Voided
                    },
                ));
            }
        }
        if let Some((index, status)) = resolved {
            self.entries[index].pending = Some(status);
        }
        let timestamp = self.tick(now);
        let pending =
            matches!(transfer.kind, TransferKind::Pending { .. }).then_some(PendingStatus::Open);
        self.entries.push(TransferEntry {
            transfer: transfer.clone(),
            timestamp,
            pending,
        });
        Ok(Some(TransferRecord {
            transfer: transfer.clone(),
            cause: RecordCause::Transfer,
            timestamp,
            amount: recorded_amount,
            debit_after: self.accounts[debit].balances(),
            credit_after: self.accounts[credit].balances(),
        }))
    }
}

fn expires_at(entry: &TransferEntry) -> Option<Timestamp> {
    match entry.transfer.kind {
        TransferKind::Pending { timeout_seconds } if timeout_seconds > 0 => {
            Some(Timestamp::from_micros(
                entry.timestamp.as_micros() + i64::from(timeout_seconds) * 1_000_000,
            ))
        }
        _ => None,
    }
}

/// The accounts of `records`, each once, in order of first appearance.
pub fn touched(records: &[TransferRecord]) -> Vec<AccountId> {
    let mut touched = Vec::new();
    for record in records {
        for account in [
            record.transfer.debit_account_id,
            record.transfer.credit_account_id,
        ] {
            if !touched.contains(&account) {
                touched.push(account);
            }
        }
    }
    touched
}
