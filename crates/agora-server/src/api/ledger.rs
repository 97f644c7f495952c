//! The ledger's raw door for operators: accounts, transfers, balances as of an instant, and
//! the verification of its hash chain.

use agora_app::{
    AccountOutcome, AccountView, LedgerVerifyReport, NewLedgerAccount, TransferOutcome,
};
use agora_domain::Timestamp;
use agora_domain::ledger::{AccountId, Transfer, TransferId, TransferRecord};
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

/// Creates accounts, in order, each answered on its own: an account that exists with the same
/// currency, code and limit answers `exists`. Operators only.
#[utoipa::path(post, path = "/api/v1/ledger/accounts", tag = "ledger",
    request_body = Vec<NewLedgerAccount>,
    responses(
        (status = 200, body = Vec<AccountOutcome>),
        (status = 403, body = Problem),
        (status = 413, description = "More than 8,190 accounts in one request", body = Problem),
    ))]
pub async fn create_accounts(
    State(state): State<ServerState>,
    caller: Caller,
    Json(accounts): Json<Vec<NewLedgerAccount>>,
) -> ApiResult<Json<Vec<AccountOutcome>>> {
    let outcomes = state
        .app
        .create_ledger_accounts(&caller.call(), accounts)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(outcomes))
}

/// Applies transfers in order: linked chains apply whole or not at all, and each transfer is
/// answered on its own (`created`, `exists` for a retry, or why it failed). Answers once the
/// batch is durably committed. Operators only.
#[utoipa::path(post, path = "/api/v1/ledger/transfers", tag = "ledger",
    request_body = Vec<Transfer>,
    responses(
        (status = 200, body = Vec<TransferOutcome>),
        (status = 403, body = Problem),
        (status = 413, description = "More than 8,190 transfers in one request", body = Problem),
    ))]
pub async fn create_transfers(
    State(state): State<ServerState>,
    caller: Caller,
    Json(transfers): Json<Vec<Transfer>>,
) -> ApiResult<Json<Vec<TransferOutcome>>> {
    let outcomes = state
        .app
        .ledger_transfers(&caller.call(), transfers)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(outcomes))
}

/// When to read an account's balances.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AsOfParams {
    /// An RFC 3339 instant: the balances right after the last transfer at or before it. Absent: now.
    pub as_of: Option<String>,
}

/// One account with its balances, now or as of an instant.
#[utoipa::path(get, path = "/api/v1/ledger/accounts/{account_id}", tag = "ledger",
    params(("account_id" = String, Path), AsOfParams),
    responses(
        (status = 200, body = AccountView),
        (status = 404, body = Problem),
    ))]
pub async fn get_account(
    State(state): State<ServerState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(params): Query<AsOfParams>,
) -> ApiResult<Json<AccountView>> {
    let id: AccountId = account_id.parse().map_err(|e| caller.fail(e))?;
    let as_of = params
        .as_of
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text).map_err(|_| {
                agora_domain::Error::invalid(
                    "as_of",
                    format!("`{text}` is not an RFC 3339 instant such as 2026-11-23T09:00:00Z"),
                )
            })
        })
        .transpose()
        .map_err(|e| caller.fail(e))?;
    let view = state
        .app
        .ledger_account(&caller.call(), id, as_of)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}

/// One transfer as the ledger applied it, with both accounts' balances right after.
#[utoipa::path(get, path = "/api/v1/ledger/transfers/{transfer_id}", tag = "ledger",
    params(("transfer_id" = String, Path)),
    responses(
        (status = 200, body = TransferRecord),
        (status = 404, body = Problem),
    ))]
pub async fn get_transfer(
    State(state): State<ServerState>,
    caller: Caller,
    Path(transfer_id): Path<String>,
) -> ApiResult<Json<TransferRecord>> {
    let id: TransferId = transfer_id.parse().map_err(|e| caller.fail(e))?;
    let record = state
        .app
        .ledger_transfer(&caller.call(), id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(record))
}

/// Re-hashes every batch of the ledger and checks each link up to the head.
#[utoipa::path(get, path = "/api/v1/ledger/verify", tag = "ledger",
    responses(
        (status = 200, body = LedgerVerifyReport),
        (status = 403, body = Problem),
    ))]
pub async fn verify(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<LedgerVerifyReport>> {
    let report = state
        .app
        .verify_ledger(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(report))
}
