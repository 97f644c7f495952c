//! Agora's double-entry engine: applies transfers to accounts in memory, with TigerBeetle's semantics, and no I/O.
//!
//! One writer owns a [`Ledger`] and feeds it batches; the engine answers every transfer with a
//! [`TransferResult`](agora_domain::ledger::TransferResult) and hands back, in [`Applied`], what
//! the writer must persist: the [`TransferRecord`](agora_domain::ledger::TransferRecord)s in
//! order, the ids that failed for good, and the accounts whose balances changed.
//! After a restart, [`Ledger::restore`] rebuilds the same state from what storage holds.
//!
//! # Semantics
//!
//! The bar is TigerBeetle's; where Agora decides differently, it says so here.
//!
//! - **Order of checks.** A transfer is checked in this order, and answers the first rule it breaks:
//!   its id (`Exists`, `ExistsWithDifferentField` naming the first differing field in the order
//!   debit account, credit account, amount, currency, code, kind, linked; `IdAlreadyFailed`);
//!   the amount (`AmountMustBePositive`: a single or pending transfer needs more than 0, a post or
//!   void at least 0); `AccountsMustBeDifferent`; `DebitAccountNotFound`, `CreditAccountNotFound`;
//!   `CurrencyMismatch` (the transfer's and both accounts' currencies must be one).
//!   Then a single or pending transfer checks `Overflow` (pending plus posted plus the amount must
//!   fit an `i64`, on the debit side of the debit account and the credit side of the credit
//!   account), `ExceedsCredits`, `ExceedsDebits`.
//!   A post or void checks `PendingTransferNotFound`, `PendingTransferNotPending`,
//!   `PendingTransferMismatch` (debit account, credit account, currency and code must be the
//!   pending transfer's), `ExceedsPendingAmount`, then, for a void only, `PendingTransferMismatch`
//!   again if its amount is neither 0 nor the pending amount (a void releases everything; the
//!   domain has no `PendingTransferHasDifferentAmount`), then `PendingTransferAlreadyPosted`,
//!   `PendingTransferAlreadyVoided`, `PendingTransferExpired`.
//! - **Two-phase.** A pending transfer adds to `debits_pending` and `credits_pending` and counts
//!   against limits at once. A post moves its amount (0 meaning the full pending amount) to the
//!   posted balances and releases the rest; a void releases it all. Posts and voids cannot break a
//!   limit: they only lower pending-plus-posted totals.
//! - **Expiry.** A pending transfer with `timeout_seconds > 0` expires at its record's timestamp
//!   plus the timeout. It is expired at `now` when that instant is `<= now`; a batch is one instant
//!   for expiry. [`Ledger::apply`] first sweeps every pending transfer expired at `now` (their
//!   `Expiry` records come first in [`Applied::records`]), so a post or void of one answers
//!   `PendingTransferExpired` and the state never holds an expired reservation.
//! - **Timestamps.** Each record gets a timestamp strictly greater than the previous record's and
//!   at least `now`. A failure is stamped with the batch's `now` and takes no place in the order.
//! - **Failures.** Every refusal except `LinkedEventFailed`, `LinkedEventChainOpen`, `Exists`,
//!   `ExistsWithDifferentField` and `IdAlreadyFailed` is returned in [`Applied::failures`] and its
//!   id stays failed: a later transfer with that id answers `IdAlreadyFailed`.
//! - **Linked chains.** A transfer with `linked` chains with the next; a chain applies whole or not
//!   at all. On the first refusal, everything the chain did is undone (balances, records, pending
//!   states, touched accounts, the record clock), the refused transfer keeps its own answer and
//!   every other transfer of the chain answers `LinkedEventFailed`. A batch ending inside a chain
//!   answers `LinkedEventChainOpen` for every transfer of that chain, and applies none of them.
//!   Departure from TigerBeetle: `Exists` does not break a chain, so retrying a chain that was
//!   applied answers `Exists` for each of its transfers instead of `Exists` then `LinkedEventFailed`.
//!
//! # Cost
//!
//! The ledger keeps every applied transfer and every failed id in hash maps, to answer retries
//! and posts without I/O: a map entry is 120 bytes, 140 to 280 with the map's spare room, so 10
//! million transfers take 1.5 to 3 GB; bounding that (an idempotency window, older ids looked up
//! in storage) is future work. A chain is undone from a log of its own changes, never from a copy of the state.
//! A writer sizes the ledger with [`Ledger::with_capacity`] and reuses one [`Applied`] through
//! [`Ledger::apply_into`], so that a batch allocates nothing once the buffers have grown.

mod engine;
mod invariants;
mod restore;

pub use engine::{
    AccountField, AccountResult, Applied, BATCH_TRANSFERS_MAX, Ledger, PendingStatus, TransferEntry,
};
pub use restore::RestoreError;
