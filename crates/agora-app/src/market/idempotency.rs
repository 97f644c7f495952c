//! `Idempotency-Key` for marketplace steps: a retried checkout, top-up, refund or payout with the
//! same key answers what the first one answered instead of moving money again.
//!
//! [`App::begin`] holds a key only within one transaction, but a marketplace step commits several
//! (its plan, the ledger's batch, its outcome), so here the key is claimed in a transaction of its
//! own first. While the step runs, a retry with the key is told the request is still in progress.
//! A step that succeeded stores its answer under the key. A step refused before anything was kept
//! (invalid, forbidden, not found, conflicting) gives the key back, so that a corrected retry may
//! use it. A step that failed for an unknown reason (the database or the ledger unavailable, a
//! bug) keeps the key held: its planned step may still complete when the marketplace resumes, and
//! answering the retry with a second order would be the one outcome that must never happen.

use std::future::Future;

use agora_domain::authz::Action;
use agora_domain::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{App, Begun, Call};

impl App {
    /// Runs `step` at most once per idempotency key of `call` and `request`; without a key, runs it.
    ///
    /// `request` is what the key is bound to (the path's ids and the body): the same key with
    /// another request is refused.
    pub(crate) async fn once<R, T>(
        &self,
        call: &Call<'_>,
        action: Action,
        request: &R,
        step: impl Future<Output = Result<T>>,
    ) -> Result<T>
    where
        R: Serialize,
        T: Serialize + DeserializeOwned,
    {
        if call.idempotency_key.is_none() {
            return step.await;
        }
        let (tx, held) = match self.begin::<R, T>(call, action, request).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(tx, held) => (tx, held),
        };
        let held = held.expect("begin holds the key a call carries");
        // The claim alone, committed: the step itself commits in several transactions.
        tx.commit().await?;
        let result = step.await;
        let recorded = async {
            let mut tx = self.store().write().await?;
            match &result {
                Ok(answer) => {
                    let text = serde_json::to_string(answer)
                        .map_err(|e| Error::Internal(format!("idempotent answer: {e}")))?;
                    tx.complete_idempotency_key(&held.scope, &held.key, &text)
                        .await?;
                }
                Err(error) if left_nothing(error) => {
                    tx.release_idempotency_key(&held.scope, &held.key).await?;
                }
                Err(error) => {
                    tracing::warn!(%error, key = %held.key, "a marketplace step failed; its idempotency key stays held");
                }
            }
            tx.commit().await
        }
        .await;
        // The step's outcome stands either way; a key left held answers retries "in progress".
        if let Err(error) = recorded {
            tracing::error!(%error, key = %held.key, "could not record the outcome of an idempotent step");
        }
        result
    }
}

/// Whether an error is a refusal decided before any money moved or any state was kept.
pub(crate) fn left_nothing(error: &Error) -> bool {
    match error {
        Error::Invalid { .. }
        | Error::Unauthenticated(_)
        | Error::Forbidden { .. }
        | Error::NotFound { .. }
        | Error::Conflict(_)
        | Error::Unprocessable(_)
        | Error::Refused { .. }
        | Error::LimitExceeded { .. } => true,
        Error::Unavailable(_) | Error::Internal(_) => false,
    }
}
