//! The ledger's use cases at the edge: the operator creates accounts and posts transfers
//! directly, reads an account's balances (now, or as of an instant) and one transfer, and
//! verifies the ledger's hash chain.
//!
//! The marketplace moves money through the same writer with its own plans; this is the raw
//! door, for operators, reconciliation and integrations. Transfers carry client-chosen ids, so a
//! retried request answers `exists` and moves nothing: no `Idempotency-Key` is needed here.

use agora_domain::audit::Outcome;
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, Currency, Transfer, TransferId, TransferRecord,
    TransferResult,
};
use agora_domain::{Error, Result, Timestamp};
use agora_ledger::AccountResult;
use serde::{Deserialize, Serialize};

use crate::{App, Call};

/// The most accounts or transfers one API request may carry.
pub const LEDGER_REQUEST_ITEMS_MAX: usize = 8_190;

/// An account to create.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLedgerAccount {
    /// Chosen by the client so that a retry creates nothing twice; a fresh id when absent.
    pub id: Option<AccountId>,
    pub currency: Currency,
    /// The account's kind in the caller's chart of accounts (0 to 65535).
    pub code: u16,
    /// The limit the account enforces on every transfer; `none` when absent.
    pub limit: Option<BalanceLimit>,
}

/// What creating one account answered.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountOutcome {
    pub id: AccountId,
    /// `created`, `exists`, `exists_with_different_<field>`.
    pub result: String,
    /// For people: what the result means.
    pub message: String,
}

/// What applying one transfer answered.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferOutcome {
    pub id: TransferId,
    pub result: TransferResult,
    /// For people: what the result means.
    pub message: String,
}

/// An account with its balances, now or as of an instant.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountView {
    pub id: AccountId,
    pub currency: Currency,
    pub code: u16,
    pub limit: BalanceLimit,
    pub created_at: Timestamp,
    /// The instant the balances are for; absent for the balances now.
    pub as_of: Option<Timestamp>,
    pub balances: Balances,
    /// Posted credits minus posted debits, in minor units.
    pub credit_balance: i64,
    /// The credit balance in the currency's usual notation, e.g. `12.50 EUR`.
    pub formatted: String,
}

impl AccountView {
    fn new(account: &Account, as_of: Option<Timestamp>, balances: Balances) -> Self {
        let credit_balance = balances.credits_posted - balances.debits_posted;
        Self {
            id: account.id,
            currency: account.currency,
            code: account.code,
            limit: account.limit,
            created_at: account.created_at,
            as_of,
            balances,
            credit_balance,
            formatted: account.currency.format(credit_balance),
        }
    }
}

/// What verifying the ledger's hash chain found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerVerifyReport {
    /// Whether every batch up to the head re-hashes to its stored hash and links to the one before.
    pub intact: bool,
    /// The last batch checked (0 for an empty ledger); when broken, the first batch that is not as written.
    pub batch: i64,
    /// What is wrong, when broken.
    pub problem: Option<String>,
}

impl App {
    /// Creates accounts in order, each answered on its own (an existing identical account answers `exists`).
    pub async fn create_ledger_accounts(
        &self,
        call: &Call<'_>,
        accounts: Vec<NewLedgerAccount>,
    ) -> Result<Vec<AccountOutcome>> {
        let resource = Resource::Instance;
        self.authorize(call, Action::LedgerWrite, &resource, &Context::default())
            .await?;
        let result = self.create_ledger_accounts_authorized(accounts).await;
        let result = self
            .audited(call, Action::LedgerWrite, &resource, result)
            .await?;
        let created = result.iter().filter(|o| o.result == "created").count();
        let detail = serde_json::json!({ "accounts": result.len(), "created": created });
        self.audit_alone(
            call,
            Action::LedgerWrite,
            &resource,
            Outcome::Succeeded,
            detail,
        )
        .await?;
        Ok(result)
    }

    async fn create_ledger_accounts_authorized(
        &self,
        accounts: Vec<NewLedgerAccount>,
    ) -> Result<Vec<AccountOutcome>> {
        check_count(accounts.len(), "accounts")?;
        let now = Timestamp::now();
        let accounts: Vec<Account> = accounts
            .into_iter()
            .map(|new| {
                Account::new(
                    new.id.unwrap_or_default(),
                    new.currency,
                    new.code,
                    new.limit.unwrap_or(BalanceLimit::None),
                    now,
                )
            })
            .collect();
        let ids: Vec<AccountId> = accounts.iter().map(|account| account.id).collect();
        let results = self.ledger().await?.create_accounts(accounts).await?;
        Ok(ids
            .into_iter()
            .zip(results)
            .map(|(id, result)| AccountOutcome {
                id,
                result: account_result_code(result),
                message: result.to_string(),
            })
            .collect())
    }

    /// Applies transfers in order, in one engine call: linked chains apply whole or not at all.
    /// Answers after they are durably committed.
    pub async fn ledger_transfers(
        &self,
        call: &Call<'_>,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<TransferOutcome>> {
        let resource = Resource::Instance;
        self.authorize(call, Action::LedgerWrite, &resource, &Context::default())
            .await?;
        let result = async {
            check_count(transfers.len(), "transfers")?;
            let ids: Vec<TransferId> = transfers.iter().map(|transfer| transfer.id).collect();
            let results = self.ledger().await?.transfer(transfers).await?;
            Ok(ids
                .into_iter()
                .zip(results)
                .map(|(id, result)| TransferOutcome {
                    id,
                    result,
                    message: result.to_string(),
                })
                .collect::<Vec<_>>())
        }
        .await;
        let outcomes = self
            .audited(call, Action::LedgerWrite, &resource, result)
            .await?;
        let created = outcomes.iter().filter(|o| o.result.is_created()).count();
        let detail = serde_json::json!({ "transfers": outcomes.len(), "created": created });
        self.audit_alone(
            call,
            Action::LedgerWrite,
            &resource,
            Outcome::Succeeded,
            detail,
        )
        .await?;
        Ok(outcomes)
    }

    /// An account and its balances: now (from the writer, which holds what storage holds), or as
    /// of an instant (from storage's history).
    pub async fn ledger_account(
        &self,
        call: &Call<'_>,
        id: AccountId,
        as_of: Option<Timestamp>,
    ) -> Result<AccountView> {
        self.authorize(
            call,
            Action::LedgerRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let not_found = || Error::not_found(format!("ledger account {id}"));
        let account = self
            .ledger()
            .await?
            .account(id)
            .await?
            .ok_or_else(not_found)?;
        match as_of {
            None => {
                let balances = account.balances();
                Ok(AccountView::new(&account, None, balances))
            }
            Some(at) => {
                let balances = self.store().balance_as_of(id, at).await?.ok_or_else(|| {
                    Error::not_found(format!(
                        "ledger account {id} as of {at}: it was created at {}",
                        account.created_at
                    ))
                })?;
                Ok(AccountView::new(&account, Some(at), balances))
            }
        }
    }

    /// A client's transfer as the ledger applied it, with both accounts' balances right after.
    pub async fn ledger_transfer(&self, call: &Call<'_>, id: TransferId) -> Result<TransferRecord> {
        self.authorize(
            call,
            Action::LedgerRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        self.store().ledger_transfer(id).await?.ok_or_else(|| {
            Error::not_found(format!(
                "transfer {id}: no transfer with this id was applied"
            ))
        })
    }

    /// Re-hashes every batch of the ledger and checks every link up to the head.
    pub async fn verify_ledger(&self, call: &Call<'_>) -> Result<LedgerVerifyReport> {
        self.authorize(
            call,
            Action::LedgerRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        Ok(match self.store().verify_ledger_chain().await? {
            Ok(batch) => LedgerVerifyReport {
                intact: true,
                batch,
                problem: None,
            },
            Err(broken) => LedgerVerifyReport {
                intact: false,
                batch: broken.batch(),
                problem: Some(broken.to_string()),
            },
        })
    }
}

fn check_count(count: usize, what: &str) -> Result<()> {
    if count == 0 {
        return Err(Error::invalid(what, "must hold at least one item"));
    }
    if count > LEDGER_REQUEST_ITEMS_MAX {
        return Err(Error::limit(
            what,
            format!(
                "a request carries at most {LEDGER_REQUEST_ITEMS_MAX} {what}; this one has {count}: split it"
            ),
        ));
    }
    Ok(())
}

fn account_result_code(result: AccountResult) -> String {
    match result {
        AccountResult::Created => "created".to_owned(),
        AccountResult::Exists => "exists".to_owned(),
        AccountResult::ExistsWithDifferentField { field } => {
            format!(
                "exists_with_different_{}",
                format!("{field:?}").to_lowercase()
            )
        }
        AccountResult::BalancesMustBeZero => "balances_must_be_zero".to_owned(),
    }
}
