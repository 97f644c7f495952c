//! Retried requests: ids derived from the client's reference, so that a retry names the same step, and the answer of a step carried out before.
//!
//! A step that grants, redeems or records something takes a `reference` from the client (an
//! invoice number, a receipt, the idea that shipped), or else the request's `Idempotency-Key`.
//! The ids the step creates (the lot, the redemption, the obligation) are derived from who acts
//! on what and that reference, and so is the step's key: a retry finds the document the first
//! attempt left and answers it, and the ledger could not apply the plan twice anyway.
//! The same reference with a different request is refused, as a reused `Idempotency-Key` is.

use agora_domain::{Error, Result};
use agora_store::StepStatus;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{App, Call};

/// The longest reference a client may give, in bytes.
pub const REFERENCE_BYTES_MAX: usize = 200;

/// The reference a request goes by: the one in its body, else its `Idempotency-Key`, else a
/// fresh one (the request is then not safe to retry).
pub(crate) fn reference_of(reference: Option<&str>, call: &Call<'_>) -> Result<String> {
    let reference = match reference.or(call.idempotency_key) {
        Some(reference) => reference.trim().to_owned(),
        None => return Ok(uuid::Uuid::now_v7().simple().to_string()),
    };
    if reference.is_empty() || reference.len() > REFERENCE_BYTES_MAX {
        return Err(Error::invalid(
            "reference",
            format!("a reference is 1 to {REFERENCE_BYTES_MAX} bytes"),
        ));
    }
    if reference.chars().any(char::is_control) {
        return Err(Error::invalid(
            "reference",
            "a reference may not hold control characters",
        ));
    }
    Ok(reference)
}

/// A version 8 UUID from `sha256("agora-app/market/v1" | purpose | each part, length-prefixed)`:
/// the same purpose and parts always give the same id.
pub(crate) fn derived_uuid(purpose: &str, parts: &[&str]) -> uuid::Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"agora-app/market/v1");
    for part in std::iter::once(&purpose).chain(parts) {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The refusal for a reference reused with a different request.
pub(crate) fn reused(reference: &str, what: &str) -> Error {
    Error::Unprocessable(format!(
        "reference `{reference}` was used before for a different {what}; use a new reference for a new request"
    ))
}

impl App {
    /// What a step carried out before left as its answer: the document `kind`/`id` if the step
    /// `step_key` is done; `None` if it never ran. A step a crash left planned is finished first;
    /// a step the ledger refused is refused again, without trying twice.
    /// The caller holds the marketplace lock.
    pub(crate) async fn earlier_answer<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
        step_key: &str,
    ) -> Result<Option<T>> {
        for attempt in 0..2 {
            if let Some(document) = self.store().document(kind, id).await? {
                return serde_json::from_str(&document.body)
                    .map(Some)
                    .map_err(|e| Error::Internal(format!("stored {kind} {id}: {e}")));
            }
            match self.store().step(step_key).await? {
                None => return Ok(None),
                Some(step) if step.status == StepStatus::Refused => {
                    return Err(Error::Unprocessable(format!(
                        "this request was refused before (step {step_key}: {}); nothing moved. Use a new reference to try again",
                        step.reason.unwrap_or_default()
                    )));
                }
                Some(step) if step.status == StepStatus::Planned && attempt == 0 => {
                    self.resume_planned_steps().await?;
                }
                Some(_) => break,
            }
        }
        Err(Error::Internal(format!(
            "step {step_key} is done but left no {kind} {id}"
        )))
    }
}
