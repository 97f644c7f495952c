//! Plans carried out on the real ledger engine, with a reference model of plain integers per account alongside.

use std::collections::BTreeMap;

use agora_domain::Timestamp;
use agora_domain::ledger::{AccountId, BalanceLimit, TransferResult};
use agora_ledger::Ledger;
use agora_market::Plan;

/// What submitting a plan answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Every transfer was created (or the plan was empty).
    Created,
    /// Every transfer existed already: a replay; nothing moved.
    Exists,
    /// The ledger refused the chain; the first answer that was not `LinkedEventFailed`.
    Refused(TransferResult),
}

/// The engine and the reference model, fed the same plans.
#[derive(Debug, Default)]
pub struct Books {
    pub ledger: Ledger,
    /// Credits minus debits per account, and its limit: the reference model.
    pub model: BTreeMap<AccountId, (i64, BalanceLimit)>,
    /// Every plan the ledger applied, for replays.
    pub applied: Vec<Plan>,
}

impl Books {
    /// Carries out a plan: create its accounts, apply its chain; checks the engine against the model.
    pub fn submit(&mut self, plan: &Plan, now: Timestamp) -> Submitted {
        for (account, result) in plan
            .accounts
            .iter()
            .zip(self.ledger.create_accounts(&plan.accounts))
        {
            assert!(
                matches!(
                    result,
                    agora_ledger::AccountResult::Created | agora_ledger::AccountResult::Exists
                ),
                "account {} of {}: {result:?}",
                account.id,
                plan.step
            );
            self.model.entry(account.id).or_insert((0, account.limit));
        }
        if plan.transfers.is_empty() {
            return Submitted::Created;
        }
        let replay = plan
            .transfers
            .iter()
            .all(|transfer| self.ledger.transfer(transfer.id).is_some());
        // The model: a chain applies whole unless a limited account would go below zero.
        let mut model = self.model.clone();
        let mut refused = false;
        if !replay {
            for transfer in &plan.transfers {
                let debit = model
                    .get_mut(&transfer.debit_account_id)
                    .expect("the plan lists every account");
                debit.0 -= transfer.amount;
                if debit.1 == BalanceLimit::DebitsMustNotExceedCredits && debit.0 < 0 {
                    refused = true;
                }
                model
                    .get_mut(&transfer.credit_account_id)
                    .expect("the plan lists every account")
                    .0 += transfer.amount;
            }
        }
        let applied = self.ledger.apply(&plan.transfers, now);
        let results = applied.results;
        if replay {
            assert!(
                results
                    .iter()
                    .all(|result| *result == TransferResult::Exists),
                "replay of {}: {results:?}",
                plan.step
            );
            assert!(applied.records.is_empty());
            return Submitted::Exists;
        }
        if refused {
            assert!(
                results.iter().all(|result| !result.is_applied()),
                "the model refused {} but the engine answered {results:?}",
                plan.step
            );
            let reason = results
                .iter()
                .copied()
                .find(|result| *result != TransferResult::LinkedEventFailed)
                .expect("a refused chain names its reason");
            return Submitted::Refused(reason);
        }
        assert!(
            results.iter().all(|result| result.is_created()),
            "the model applied {} but the engine answered {results:?}",
            plan.step
        );
        self.model = model;
        self.applied.push(plan.clone());
        Submitted::Created
    }

    /// Posted credits minus debits of an account; 0 if it does not exist.
    pub fn balance(&self, id: AccountId) -> i64 {
        self.ledger
            .account(id)
            .map_or(0, |account| account.credit_balance())
    }

    /// Checks the engine's invariants and that the model agrees with every balance.
    pub fn check(&self) -> Result<(), String> {
        self.ledger.check_invariants()?;
        if self.ledger.accounts().len() != self.model.len() {
            return Err(format!(
                "the engine has {} accounts, the model {}",
                self.ledger.accounts().len(),
                self.model.len()
            ));
        }
        for account in self.ledger.accounts() {
            let (balance, _) = self.model[&account.id];
            if balance != account.credit_balance() {
                return Err(format!(
                    "account {} (code {}): engine {}, model {balance}",
                    account.id,
                    account.code,
                    account.credit_balance()
                ));
            }
            if account.debits_pending != 0 || account.credits_pending != 0 {
                return Err(format!("account {} has pending amounts", account.id));
            }
        }
        Ok(())
    }

    /// Every account that ever moved, with its balances, to compare before and after a step that
    /// must move nothing. A refused plan may leave its accounts created, empty: harmless, as
    /// creating them again answers `Exists`.
    pub fn snapshot(&self) -> Vec<(AccountId, i64, i64)> {
        self.ledger
            .accounts()
            .filter(|account| account.debits_posted != 0 || account.credits_posted != 0)
            .map(|account| (account.id, account.debits_posted, account.credits_posted))
            .collect()
    }
}
