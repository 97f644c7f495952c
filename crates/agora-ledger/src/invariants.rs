//! The ledger's invariants, checked over the whole state: for tests, and at start-up after a restore.

use std::collections::HashMap;
use std::fmt::Write as _;

use agora_domain::ledger::{BalanceLimit, Currency};

use crate::engine::{Ledger, PendingStatus};

impl Ledger {
    /// Checks every invariant and describes each one broken.
    ///
    /// - Per currency, posted debits equal posted credits, and pending debits equal pending credits.
    /// - No balance is negative, and pending plus posted fits an `i64` on each side of every account.
    /// - No account breaks its limit.
    /// - Each account's pending balances equal the sum of its open reservations.
    /// - Every open pending transfer with a timeout is in the expiry queue, and the queue's top is open.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut broken = String::new();
        let mut totals: HashMap<Currency, [i128; 4]> = HashMap::new();
        for slot in &self.accounts {
            let account = &slot.account;
            let sums = totals.entry(account.currency).or_default();
            sums[0] += i128::from(account.debits_posted);
            sums[1] += i128::from(account.credits_posted);
            sums[2] += i128::from(account.debits_pending);
            sums[3] += i128::from(account.credits_pending);
            let balances = [
                account.debits_pending,
                account.debits_posted,
                account.credits_pending,
                account.credits_posted,
            ];
            if balances.iter().any(|&balance| balance < 0) {
                let _ = writeln!(
                    broken,
                    "{} has a negative balance: {:?}",
                    account.id,
                    account.balances()
                );
            }
            if account
                .debits_pending
                .checked_add(account.debits_posted)
                .is_none()
                || account
                    .credits_pending
                    .checked_add(account.credits_posted)
                    .is_none()
            {
                let _ = writeln!(
                    broken,
                    "{}'s pending plus posted overflows: {:?}",
                    account.id,
                    account.balances()
                );
            }
            let debits = i128::from(account.debits_pending) + i128::from(account.debits_posted);
            let credits = i128::from(account.credits_pending) + i128::from(account.credits_posted);
            let within_limit = match account.limit {
                BalanceLimit::None => true,
                BalanceLimit::DebitsMustNotExceedCredits => {
                    debits <= i128::from(account.credits_posted)
                }
                BalanceLimit::CreditsMustNotExceedDebits => {
                    credits <= i128::from(account.debits_posted)
                }
            };
            if !within_limit {
                let _ = writeln!(
                    broken,
                    "{} breaks its limit {:?}: {:?}",
                    account.id,
                    account.limit,
                    account.balances()
                );
            }
        }
        let mut currencies: Vec<_> = totals.into_iter().collect();
        currencies.sort_by_key(|(currency, _)| *currency);
        for (
            currency,
            [
                debits_posted,
                credits_posted,
                debits_pending,
                credits_pending,
            ],
        ) in currencies
        {
            if debits_posted != credits_posted {
                let _ = writeln!(
                    broken,
                    "{currency}: posted debits {debits_posted} != posted credits {credits_posted}"
                );
            }
            if debits_pending != credits_pending {
                let _ = writeln!(
                    broken,
                    "{currency}: pending debits {debits_pending} != pending credits {credits_pending}"
                );
            }
        }

        // Invariant: an account's pending balances are exactly its open reservations.
        let mut reserved = vec![[0i128; 2]; self.accounts.len()];
        let mut expiring = Vec::new();
        for (id, entry) in &self.transfers {
            if entry.pending != Some(PendingStatus::Open) {
                continue;
            }
            let transfer = &entry.transfer;
            match (
                self.account_slots.get(&transfer.debit_account_id),
                self.account_slots.get(&transfer.credit_account_id),
            ) {
                (Some(&debit), Some(&credit)) => {
                    reserved[debit][0] += i128::from(transfer.amount);
                    reserved[credit][1] += i128::from(transfer.amount);
                }
                _ => {
                    let _ = writeln!(
                        broken,
                        "pending transfer {id} names an account that does not exist"
                    );
                }
            }
            if let Some(expires_at) = entry.expires_at() {
                expiring.push((expires_at, *id));
            }
        }
        for (slot, [debits, credits]) in self.accounts.iter().zip(&reserved) {
            let account = &slot.account;
            if i128::from(account.debits_pending) != *debits
                || i128::from(account.credits_pending) != *credits
            {
                let _ = writeln!(
                    broken,
                    "{}'s pending balances ({}, {}) differ from its open reservations ({debits}, {credits})",
                    account.id, account.debits_pending, account.credits_pending
                );
            }
        }

        let queued: std::collections::HashSet<_> =
            self.expiries.iter().map(|entry| entry.0).collect();
        for key in &expiring {
            if !queued.contains(key) {
                let _ = writeln!(
                    broken,
                    "open pending transfer {} expiring at {} is not in the expiry queue",
                    key.1, key.0
                );
            }
        }
        let soonest = expiring.iter().map(|(expires_at, _)| *expires_at).min();
        if soonest != self.next_expiry() {
            let _ = writeln!(
                broken,
                "the next expiry {:?} is not the soonest open one {soonest:?}",
                self.next_expiry()
            );
        }

        if self
            .transfers
            .keys()
            .any(|id| self.failures.contains_key(id))
        {
            let _ = writeln!(broken, "an id is both applied and failed");
        }

        if broken.is_empty() {
            Ok(())
        } else {
            Err(broken)
        }
    }
}
