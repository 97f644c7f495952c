//! The ledger's state and the single writer's operations on it: create accounts, apply batches, expire reservations.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, FailedTransfer, RecordCause, Transfer,
    TransferField, TransferId, TransferKind, TransferRecord, TransferResult,
};

/// How many transfers a writer should put in one batch at most, as TigerBeetle does.
///
/// The engine applies any length; the limit is for the writer, which sizes its queues and its
/// storage transactions by it.
pub const BATCH_TRANSFERS_MAX: usize = 8_190;

/// What creating one account answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AccountResult {
    #[error("created")]
    Created,
    /// An account with this id and the same currency, code and limit exists; nothing changed.
    #[error("exists: this account was created before")]
    Exists,
    /// An account with this id exists with a different `field`.
    #[error("exists with a different {field}")]
    ExistsWithDifferentField { field: AccountField },
    /// A new account starts with all four balances at 0; balances move only by transfers.
    #[error("a new account's balances must be 0")]
    BalancesMustBeZero,
}

/// A field of an account, named when a retry differs from the original.
///
/// `created_at` is not compared: a retry made later creates the same account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountField {
    Currency,
    Code,
    Limit,
}

impl std::fmt::Display for AccountField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccountField::Currency => "currency",
            AccountField::Code => "code",
            AccountField::Limit => "limit",
        })
    }
}

/// Where a pending transfer stands; it leaves `Open` exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingStatus {
    Open,
    Posted,
    Voided,
    Expired,
}

/// A transfer the ledger holds, as the client sent it, with when it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEntry {
    pub transfer: Transfer,
    /// The timestamp of the record that applied it.
    pub timestamp: Timestamp,
    /// For a pending transfer, where it stands; `None` for every other kind.
    pub pending: Option<PendingStatus>,
}

impl TransferEntry {
    /// When a pending transfer with a timeout expires; `None` for any other transfer.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self.transfer.kind {
            TransferKind::Pending { timeout_seconds } if timeout_seconds > 0 => {
                Some(self.timestamp.plus_seconds(i64::from(timeout_seconds)))
            }
            _ => None,
        }
    }
}

/// What one call to [`Ledger::apply`] or [`Ledger::expire`] did, for the writer to persist and answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// One answer per transfer of the batch, in order (empty for [`Ledger::expire`]).
    pub results: Vec<TransferResult>,
    /// Every change, in order, with strictly increasing timestamps: expiries swept first, then the batch's transfers.
    pub records: Vec<TransferRecord>,
    /// Ids that failed for good; the writer persists them so that they stay failed.
    pub failures: Vec<FailedTransfer>,
    /// Every account that appears in `records`, once, in order of first appearance: those whose balances to persist.
    pub touched: Vec<AccountId>,
}

/// The ledger's whole state, in memory; the single writer owns it.
///
/// Invariant: between calls, per currency, debits equal credits (pending and posted alike), no
/// account breaks its limit, and each account's pending balances equal the sum of its open
/// reservations; [`Ledger::check_invariants`] checks all of them.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Accounts in creation order; `account_slots` maps an id to its index here.
    pub(crate) accounts: Vec<AccountSlot>,
    pub(crate) account_slots: HashMap<AccountId, usize>,
    pub(crate) transfers: HashMap<TransferId, TransferEntry>,
    pub(crate) failures: HashMap<TransferId, FailedTransfer>,
    /// Open pending transfers with a timeout, soonest first. Entries are not removed when a
    /// pending transfer resolves: they go stale and are skipped, and stale entries are never left
    /// at the top between calls, so that `next_expiry` is exact.
    pub(crate) expiries: BinaryHeap<Reverse<(Timestamp, TransferId)>>,
    /// The timestamp of the latest record.
    pub(crate) last_timestamp: Option<Timestamp>,
    /// Counts calls that produce an [`Applied`], to list each touched account once without a set.
    generation: u64,
    /// Buffers kept between calls so that a call allocates nothing once they have grown; empty between calls.
    scratch_touched: Vec<usize>,
    scratch_undo: Vec<Undo>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountSlot {
    pub(crate) account: Account,
    /// The `generation` in which this account was last added to `touched`.
    touched_generation: u64,
}

impl AccountSlot {
    pub(crate) fn new(account: Account) -> Self {
        Self {
            account,
            touched_generation: 0,
        }
    }
}

/// What one call is building, and how to undo the open chain's part of it.
struct Work {
    records: Vec<TransferRecord>,
    touched: Vec<usize>,
    undo: Vec<Undo>,
}

/// One change of the open linked chain, to be undone in reverse order if the chain fails.
#[derive(Debug, Clone)]
enum Undo {
    Balances {
        slot: usize,
        before: Balances,
    },
    Inserted(TransferId),
    /// A pending transfer left `Open`.
    Resolved(TransferId),
}

/// Where the open chain started, to roll back to.
struct ChainStart {
    index: usize,
    records: usize,
    touched: usize,
    undo: usize,
    last_timestamp: Option<Timestamp>,
}

/// A validated transfer: everything it will change, computed before anything changes.
struct Change {
    debit_slot: usize,
    credit_slot: usize,
    debit_after: Balances,
    credit_after: Balances,
    /// What the record says moved, was reserved or was released.
    amount: i64,
    /// The pending transfer a post or void resolves, and how.
    resolves: Option<(TransferId, PendingStatus)>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty ledger with room for `accounts` accounts and `transfers` transfers before its maps
    /// grow: growing a map of millions of transfers copies it, which a writer sized from storage's
    /// counts avoids.
    pub fn with_capacity(accounts: usize, transfers: usize) -> Self {
        Self {
            accounts: Vec::with_capacity(accounts),
            account_slots: HashMap::with_capacity(accounts),
            transfers: HashMap::with_capacity(transfers),
            ..Self::default()
        }
    }

    /// Creates accounts in order, each answered on its own; idempotent: the same content answers `Exists`.
    pub fn create_accounts(&mut self, accounts: &[Account]) -> Vec<AccountResult> {
        accounts
            .iter()
            .map(|account| self.create_account(account))
            .collect()
    }

    fn create_account(&mut self, account: &Account) -> AccountResult {
        if account.balances() != Balances::default() {
            return AccountResult::BalancesMustBeZero;
        }
        if let Some(&slot) = self.account_slots.get(&account.id) {
            let existing = &self.accounts[slot].account;
            return if existing.currency != account.currency {
                AccountResult::ExistsWithDifferentField {
                    field: AccountField::Currency,
                }
            } else if existing.code != account.code {
                AccountResult::ExistsWithDifferentField {
                    field: AccountField::Code,
                }
            } else if existing.limit != account.limit {
                AccountResult::ExistsWithDifferentField {
                    field: AccountField::Limit,
                }
            } else {
                AccountResult::Exists
            };
        }
        self.account_slots.insert(account.id, self.accounts.len());
        self.accounts.push(AccountSlot::new(account.clone()));
        AccountResult::Created
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.account_slots
            .get(&id)
            .map(|&slot| &self.accounts[slot].account)
    }

    /// Every account, in creation order.
    pub fn accounts(&self) -> impl ExactSizeIterator<Item = &Account> {
        self.accounts.iter().map(|slot| &slot.account)
    }

    pub fn transfer(&self, id: TransferId) -> Option<&TransferEntry> {
        self.transfers.get(&id)
    }

    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// The failure recorded for an id, if it failed for good.
    pub fn failure(&self, id: TransferId) -> Option<&FailedTransfer> {
        self.failures.get(&id)
    }

    pub fn failure_count(&self) -> usize {
        self.failures.len()
    }

    /// The timestamp of the latest record, if any.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last_timestamp
    }

    /// The earliest instant at which an open pending transfer expires, for the writer's timer.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries
            .peek()
            .map(|Reverse((expires_at, _))| *expires_at)
    }

    /// Applies a batch in order at `now`: first expires what is due, then answers every transfer.
    pub fn apply(&mut self, batch: &[Transfer], now: Timestamp) -> Applied {
        let mut applied = Applied::default();
        self.apply_into(batch, now, &mut applied);
        applied
    }

    /// [`Ledger::apply`] into `applied`, which is cleared first and whose buffers are reused: a
    /// writer that keeps one `Applied` allocates nothing per batch once the buffers have grown.
    pub fn apply_into(&mut self, batch: &[Transfer], now: Timestamp, applied: &mut Applied) {
        let mut work = self.begin(applied);
        self.sweep(now, &mut work);
        work.undo.clear();

        // Transfers from here on belong to a chain the batch leaves open: none of them is applied.
        let open_chain_index = batch
            .iter()
            .rposition(|transfer| !transfer.linked)
            .map_or(0, |index| index + 1);
        let results = &mut applied.results;
        results.reserve(batch.len());
        let mut chain: Option<ChainStart> = None;
        let mut chain_failed = false;
        for (index, transfer) in batch[..open_chain_index].iter().enumerate() {
            if transfer.linked && chain.is_none() {
                chain = Some(ChainStart {
                    index,
                    records: work.records.len(),
                    touched: work.touched.len(),
                    undo: work.undo.len(),
                    last_timestamp: self.last_timestamp,
                });
            }
            let result = if chain_failed {
                TransferResult::LinkedEventFailed
            } else {
                let result = self.apply_one(transfer, now, &mut work);
                if !result.is_applied() {
                    if let Some(start) = &chain {
                        self.roll_back(start, &mut work);
                        results[start.index..].fill(TransferResult::LinkedEventFailed);
                        chain_failed = true;
                    }
                    if stays_failed(result) {
                        let failure = FailedTransfer {
                            id: transfer.id,
                            result,
                            timestamp: now,
                        };
                        self.failures.insert(transfer.id, failure);
                        applied.failures.push(failure);
                    }
                }
                result
            };
            results.push(result);
            if !transfer.linked {
                chain = None;
                chain_failed = false;
                work.undo.clear();
            }
        }
        results.resize(batch.len(), TransferResult::LinkedEventChainOpen);
        self.drop_stale_expiries();
        self.end(work, applied);
    }

    /// Releases every pending transfer expired at `now`, soonest first, each with an `Expiry` record.
    pub fn expire(&mut self, now: Timestamp) -> Applied {
        let mut applied = Applied::default();
        self.expire_into(now, &mut applied);
        applied
    }

    /// [`Ledger::expire`] into `applied`, reusing its buffers as [`Ledger::apply_into`] does.
    pub fn expire_into(&mut self, now: Timestamp, applied: &mut Applied) {
        let mut work = self.begin(applied);
        self.sweep(now, &mut work);
        self.drop_stale_expiries();
        self.end(work, applied);
    }

    /// Starts a call: clears `applied` and lends its record buffer and the scratch buffers to the work.
    fn begin(&mut self, applied: &mut Applied) -> Work {
        self.generation += 1;
        applied.results.clear();
        applied.failures.clear();
        applied.touched.clear();
        let mut records = std::mem::take(&mut applied.records);
        records.clear();
        Work {
            records,
            touched: std::mem::take(&mut self.scratch_touched),
            undo: std::mem::take(&mut self.scratch_undo),
        }
    }

    /// Ends a call: hands the records and touched accounts to `applied`, and keeps the scratch buffers.
    fn end(&mut self, mut work: Work, applied: &mut Applied) {
        applied.touched.extend(
            work.touched
                .iter()
                .map(|&slot| self.accounts[slot].account.id),
        );
        applied.records = work.records;
        work.touched.clear();
        work.undo.clear();
        self.scratch_touched = work.touched;
        self.scratch_undo = work.undo;
    }

    fn sweep(&mut self, now: Timestamp, work: &mut Work) {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if expires_at > now {
                break;
            }
            self.expiries.pop();
            let Some(entry) = self.transfers.get_mut(&id) else {
                continue;
            };
            if entry.pending != Some(PendingStatus::Open) || entry.expires_at() != Some(expires_at)
            {
                continue;
            }
            entry.pending = Some(PendingStatus::Expired);
            let pending = entry.transfer.clone();
            let debit_slot = self.slot(pending.debit_account_id);
            let credit_slot = self.slot(pending.credit_account_id);
            let mut debit_after = self.accounts[debit_slot].account.balances();
            let mut credit_after = self.accounts[credit_slot].account.balances();
            debit_after.debits_pending = release(debit_after.debits_pending, pending.amount);
            credit_after.credits_pending = release(credit_after.credits_pending, pending.amount);
            let change = Change {
                debit_slot,
                credit_slot,
                debit_after,
                credit_after,
                amount: pending.amount,
                resolves: None,
            };
            self.commit_balances(&change, work);
            let timestamp = self.next_timestamp(now);
            work.records.push(TransferRecord {
                amount: pending.amount,
                transfer: pending,
                cause: RecordCause::Expiry,
                timestamp,
                debit_after,
                credit_after,
            });
        }
    }

    /// Pops resolved or rolled-back pending transfers off the top, so that `next_expiry` is exact.
    fn drop_stale_expiries(&mut self) {
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            let open = self.transfers.get(&id).is_some_and(|entry| {
                entry.pending == Some(PendingStatus::Open) && entry.expires_at() == Some(expires_at)
            });
            if open {
                break;
            }
            self.expiries.pop();
        }
    }

    fn slot(&self, id: AccountId) -> usize {
        *self
            .account_slots
            .get(&id)
            .expect("a transfer in the ledger names accounts that exist")
    }

    fn next_timestamp(&mut self, now: Timestamp) -> Timestamp {
        let timestamp = match self.last_timestamp {
            Some(last) if last >= now => Timestamp::from_micros(
                last.as_micros()
                    .checked_add(1)
                    .expect("microseconds since 1970 stay far below i64::MAX"),
            ),
            _ => now,
        };
        self.last_timestamp = Some(timestamp);
        timestamp
    }

    fn apply_one(
        &mut self,
        transfer: &Transfer,
        now: Timestamp,
        work: &mut Work,
    ) -> TransferResult {
        let change = match self.validate(transfer) {
            Ok(change) => change,
            Err(result) => return result,
        };
        self.commit_balances(&change, work);
        if let Some((pending_id, status)) = change.resolves {
            let pending = self
                .transfers
                .get_mut(&pending_id)
                .expect("validate found the pending transfer");
            pending.pending = Some(status);
            work.undo.push(Undo::Resolved(pending_id));
        }
        let timestamp = self.next_timestamp(now);
        let entry = TransferEntry {
            transfer: transfer.clone(),
            timestamp,
            pending: matches!(transfer.kind, TransferKind::Pending { .. })
                .then_some(PendingStatus::Open),
        };
        if let Some(expires_at) = entry.expires_at() {
            self.expiries.push(Reverse((expires_at, transfer.id)));
        }
        self.transfers.insert(transfer.id, entry);
        work.undo.push(Undo::Inserted(transfer.id));
        work.records.push(TransferRecord {
            transfer: transfer.clone(),
            cause: RecordCause::Transfer,
            timestamp,
            amount: change.amount,
            debit_after: change.debit_after,
            credit_after: change.credit_after,
        });
        TransferResult::Created
    }

    /// Decides a transfer's answer without changing anything; `Ok` carries what applying it changes.
    fn validate(&self, transfer: &Transfer) -> Result<Change, TransferResult> {
        if let Some(existing) = self.transfers.get(&transfer.id) {
            return Err(match first_difference(&existing.transfer, transfer) {
                None => TransferResult::Exists,
                Some(field) => TransferResult::ExistsWithDifferentField { field },
            });
        }
        if self.failures.contains_key(&transfer.id) {
            return Err(TransferResult::IdAlreadyFailed);
        }
        let amount_allowed = match transfer.kind {
            TransferKind::Single | TransferKind::Pending { .. } => transfer.amount > 0,
            TransferKind::PostPending { .. } | TransferKind::VoidPending { .. } => {
                transfer.amount >= 0
            }
        };
        if !amount_allowed {
            return Err(TransferResult::AmountMustBePositive);
        }
        if transfer.debit_account_id == transfer.credit_account_id {
            return Err(TransferResult::AccountsMustBeDifferent);
        }
        let debit_slot = *self
            .account_slots
            .get(&transfer.debit_account_id)
            .ok_or(TransferResult::DebitAccountNotFound)?;
        let credit_slot = *self
            .account_slots
            .get(&transfer.credit_account_id)
            .ok_or(TransferResult::CreditAccountNotFound)?;
        let debit = &self.accounts[debit_slot].account;
        let credit = &self.accounts[credit_slot].account;
        if transfer.currency != debit.currency || transfer.currency != credit.currency {
            return Err(TransferResult::CurrencyMismatch);
        }
        match transfer.kind {
            TransferKind::Single | TransferKind::Pending { .. } => {
                let pending = matches!(transfer.kind, TransferKind::Pending { .. });
                let (debit_after, credit_after) =
                    reserve_or_move(debit, credit, transfer.amount, pending)?;
                Ok(Change {
                    debit_slot,
                    credit_slot,
                    debit_after,
                    credit_after,
                    amount: transfer.amount,
                    resolves: None,
                })
            }
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => {
                let post = matches!(transfer.kind, TransferKind::PostPending { .. });
                let (amount, status, debit_after, credit_after) =
                    self.resolve(transfer, pending_id, post, debit, credit)?;
                Ok(Change {
                    debit_slot,
                    credit_slot,
                    debit_after,
                    credit_after,
                    amount,
                    resolves: Some((pending_id, status)),
                })
            }
        }
    }

    /// Checks a post (`post`) or void of `pending_id`; returns the recorded amount, the new status and both balances after.
    fn resolve(
        &self,
        transfer: &Transfer,
        pending_id: TransferId,
        post: bool,
        debit: &Account,
        credit: &Account,
    ) -> Result<(i64, PendingStatus, Balances, Balances), TransferResult> {
        let entry = self
            .transfers
            .get(&pending_id)
            .ok_or(TransferResult::PendingTransferNotFound)?;
        let pending = &entry.transfer;
        let Some(status) = entry.pending else {
            return Err(TransferResult::PendingTransferNotPending);
        };
        if pending.debit_account_id != transfer.debit_account_id
            || pending.credit_account_id != transfer.credit_account_id
            || pending.currency != transfer.currency
            || pending.code != transfer.code
        {
            return Err(TransferResult::PendingTransferMismatch);
        }
        if transfer.amount > pending.amount {
            return Err(TransferResult::ExceedsPendingAmount);
        }
        if !post && transfer.amount != 0 && transfer.amount != pending.amount {
            return Err(TransferResult::PendingTransferMismatch);
        }
        match status {
            PendingStatus::Open => {}
            PendingStatus::Posted => return Err(TransferResult::PendingTransferAlreadyPosted),
            PendingStatus::Voided => return Err(TransferResult::PendingTransferAlreadyVoided),
            PendingStatus::Expired => return Err(TransferResult::PendingTransferExpired),
        }
        let posted = match (post, transfer.amount) {
            (false, _) => 0,
            (true, 0) => pending.amount,
            (true, amount) => amount,
        };
        let mut debit_after = debit.balances();
        let mut credit_after = credit.balances();
        debit_after.debits_pending = release(debit_after.debits_pending, pending.amount);
        credit_after.credits_pending = release(credit_after.credits_pending, pending.amount);
        debit_after.debits_posted = debit_after
            .debits_posted
            .checked_add(posted)
            .ok_or(TransferResult::Overflow)?;
        credit_after.credits_posted = credit_after
            .credits_posted
            .checked_add(posted)
            .ok_or(TransferResult::Overflow)?;
        let (amount, status) = if post {
            (posted, PendingStatus::Posted)
        } else {
            (pending.amount, PendingStatus::Voided)
        };
        Ok((amount, status, debit_after, credit_after))
    }

    fn commit_balances(&mut self, change: &Change, work: &mut Work) {
        for (slot, after) in [
            (change.debit_slot, change.debit_after),
            (change.credit_slot, change.credit_after),
        ] {
            let account_slot = &mut self.accounts[slot];
            work.undo.push(Undo::Balances {
                slot,
                before: account_slot.account.balances(),
            });
            set_balances(&mut account_slot.account, after);
            if account_slot.touched_generation != self.generation {
                account_slot.touched_generation = self.generation;
                work.touched.push(slot);
            }
        }
    }

    /// Undoes everything the open chain did, newest first.
    fn roll_back(&mut self, start: &ChainStart, work: &mut Work) {
        for undo in work.undo.drain(start.undo..).rev() {
            match undo {
                Undo::Balances { slot, before } => {
                    set_balances(&mut self.accounts[slot].account, before)
                }
                Undo::Inserted(id) => {
                    self.transfers.remove(&id);
                }
                Undo::Resolved(id) => {
                    let pending = self
                        .transfers
                        .get_mut(&id)
                        .expect("the chain resolved a pending transfer it did not insert");
                    pending.pending = Some(PendingStatus::Open);
                }
            }
        }
        work.records.truncate(start.records);
        for slot in work.touched.drain(start.touched..) {
            self.accounts[slot].touched_generation = 0;
        }
        self.last_timestamp = start.last_timestamp;
    }
}

/// Whether a refusal is recorded so that its id stays failed.
fn stays_failed(result: TransferResult) -> bool {
    !matches!(
        result,
        TransferResult::Created
            | TransferResult::Exists
            | TransferResult::ExistsWithDifferentField { .. }
            | TransferResult::IdAlreadyFailed
            | TransferResult::LinkedEventFailed
            | TransferResult::LinkedEventChainOpen
    )
}

/// The first field, in a fixed order, where a retry differs from the transfer the ledger holds.
fn first_difference(existing: &Transfer, retry: &Transfer) -> Option<TransferField> {
    if existing.debit_account_id != retry.debit_account_id {
        Some(TransferField::DebitAccountId)
    } else if existing.credit_account_id != retry.credit_account_id {
        Some(TransferField::CreditAccountId)
    } else if existing.amount != retry.amount {
        Some(TransferField::Amount)
    } else if existing.currency != retry.currency {
        Some(TransferField::Currency)
    } else if existing.code != retry.code {
        Some(TransferField::Code)
    } else if existing.kind != retry.kind {
        Some(TransferField::Kind)
    } else if existing.linked != retry.linked {
        Some(TransferField::Linked)
    } else {
        None
    }
}

/// Both balances after a single transfer (`pending == false`) or a reservation, or the refusal.
fn reserve_or_move(
    debit: &Account,
    credit: &Account,
    amount: i64,
    pending: bool,
) -> Result<(Balances, Balances), TransferResult> {
    // Every field is non-negative, so a total that fits means each of its parts fits.
    let debits_total = debit
        .debits_pending
        .checked_add(debit.debits_posted)
        .and_then(|sum| sum.checked_add(amount));
    let credits_total = credit
        .credits_pending
        .checked_add(credit.credits_posted)
        .and_then(|sum| sum.checked_add(amount));
    let (Some(debits_total), Some(credits_total)) = (debits_total, credits_total) else {
        return Err(TransferResult::Overflow);
    };
    if debit.limit == BalanceLimit::DebitsMustNotExceedCredits
        && debits_total > debit.credits_posted
    {
        return Err(TransferResult::ExceedsCredits);
    }
    if credit.limit == BalanceLimit::CreditsMustNotExceedDebits
        && credits_total > credit.debits_posted
    {
        return Err(TransferResult::ExceedsDebits);
    }
    let mut debit_after = debit.balances();
    let mut credit_after = credit.balances();
    let add = |balance: i64| {
        balance
            .checked_add(amount)
            .expect("bounded by the total checked above")
    };
    if pending {
        debit_after.debits_pending = add(debit_after.debits_pending);
        credit_after.credits_pending = add(credit_after.credits_pending);
    } else {
        debit_after.debits_posted = add(debit_after.debits_posted);
        credit_after.credits_posted = add(credit_after.credits_posted);
    }
    Ok((debit_after, credit_after))
}

/// A pending balance less a reservation it holds.
fn release(pending_balance: i64, amount: i64) -> i64 {
    pending_balance
        .checked_sub(amount)
        .filter(|&rest| rest >= 0)
        .expect("an account's pending balance holds each of its open reservations")
}

pub(crate) fn set_balances(account: &mut Account, balances: Balances) {
    account.debits_pending = balances.debits_pending;
    account.debits_posted = balances.debits_posted;
    account.credits_pending = balances.credits_pending;
    account.credits_posted = balances.credits_posted;
}
