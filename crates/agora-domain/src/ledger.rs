//! The ledger's vocabulary: accounts, transfers and what applying a transfer can answer.
//!
//! The semantics follow TigerBeetle's: transfers carry a client-chosen id and are idempotent;
//! linked transfers succeed or fail together; two-phase transfers reserve (pending), then post
//! in full or in part, void, or expire, exactly once; accounts may forbid debits above credits
//! (or the reverse). Amounts are integer minor units of one currency; a transfer never crosses
//! currencies. Invariant: across all accounts of a currency, debits equal credits, pending and
//! posted alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Timestamp};

macro_rules! ledger_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                let refuse = || Error::invalid($field, format!("expected an id of the form {}_<32 hex digits>", $prefix));
                let rest = text.strip_prefix(concat!($prefix, "_")).ok_or_else(refuse)?;
                if rest.len() != 32 {
                    return Err(refuse());
                }
                uuid::Uuid::try_parse(rest).map(Self).map_err(|_| refuse())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

ledger_id!(
    /// A ledger account.
    AccountId, "acc", "account_id"
);
ledger_id!(
    /// A transfer; chosen by the client before sending, so that a retry cannot apply it twice.
    TransferId, "trf", "transfer_id"
);

/// An ISO 4217 currency: three upper-case letters, and how many minor units make a major one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Currencies whose minor units are not hundredths; all others listed in ISO 4217 use 2.
    const EXPONENTS: &'static [(&'static str, u8)] = &[
        ("BHD", 3),
        ("CLP", 0),
        ("IQD", 3),
        ("ISK", 0),
        ("JOD", 3),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("LYD", 3),
        ("OMR", 3),
        ("PYG", 0),
        ("TND", 3),
        ("UGX", 0),
        ("VND", 0),
        ("XAF", 0),
        ("XOF", 0),
        ("XPF", 0),
    ];

    /// Parses a code; `PTS` is Agora's reward points, with no minor unit.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(Error::invalid(
                "currency",
                format!("`{text}` is not an ISO 4217 code such as EUR or USD"),
            ));
        }
        let exponent = match text {
            "PTS" => 0,
            _ => Self::EXPONENTS
                .iter()
                .find(|(code, _)| *code == text)
                .map_or(2, |(_, exponent)| *exponent),
        };
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            exponent,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("parse admits only ASCII letters")
    }

    /// Minor units per major unit as a power of ten (2 for EUR: cents).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Shows an amount of minor units in major units (`12345` EUR → `123.45 EUR`).
    pub fn format(&self, amount: i64) -> String {
        if self.exponent == 0 {
            return format!("{amount} {}", self.code());
        }
        let scale = 10i64.pow(u32::from(self.exponent));
        let sign = if amount < 0 { "-" } else { "" };
        let absolute = amount.unsigned_abs();
        let scale = scale.unsigned_abs();
        format!(
            "{sign}{}.{:0width$} {}",
            absolute / scale,
            absolute % scale,
            self.code(),
            width = usize::from(self.exponent)
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Limits an account enforces on every transfer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceLimit {
    /// No limit: the account may go either way.
    None,
    /// Debits (pending plus posted) may not exceed posted credits: an asset the holder owns, such as a wallet.
    DebitsMustNotExceedCredits,
    /// Credits (pending plus posted) may not exceed posted debits.
    CreditsMustNotExceedDebits,
}

/// An account as the ledger holds it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    /// What kind of account this is in the chart of accounts (seller payable, wallet, …), chosen by the caller.
    pub code: u16,
    pub limit: BalanceLimit,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    pub created_at: Timestamp,
}

impl Account {
    pub fn new(
        id: AccountId,
        currency: Currency,
        code: u16,
        limit: BalanceLimit,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id,
            currency,
            code,
            limit,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            created_at,
        }
    }

    /// Posted credits minus posted debits.
    pub fn credit_balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }
}

/// What a transfer does.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TransferKind {
    /// Moves the amount at once.
    Single,
    /// Reserves the amount; it moves only when posted. Expires after `timeout_seconds` if set (0: never).
    Pending { timeout_seconds: u32 },
    /// Posts a pending transfer, in full or for a smaller amount.
    PostPending { pending_id: TransferId },
    /// Releases a pending transfer without moving anything.
    VoidPending { pending_id: TransferId },
}

/// A transfer as the client asks for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    /// Minor units; for a post of a pending transfer, at most the pending amount (0 posts it in full).
    pub amount: i64,
    pub currency: Currency,
    /// Why the money moved, in the caller's chart (sale, refund, payout, …).
    pub code: u16,
    pub kind: TransferKind,
    /// Succeeds or fails together with the next transfer of the batch; the last of a chain is not linked.
    pub linked: bool,
}

/// A field of a transfer, named when a retry differs from the original.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferField {
    DebitAccountId,
    CreditAccountId,
    Amount,
    Currency,
    Code,
    Kind,
    Linked,
}

impl fmt::Display for TransferField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferField::DebitAccountId => "debit_account_id",
            TransferField::CreditAccountId => "credit_account_id",
            TransferField::Amount => "amount",
            TransferField::Currency => "currency",
            TransferField::Code => "code",
            TransferField::Kind => "kind",
            TransferField::Linked => "linked",
        })
    }
}

/// What applying one transfer answered. Every variant but `Created` changed nothing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum TransferResult {
    #[error("created")]
    Created,
    /// The same id with the same content was applied before; nothing moved again.
    #[error("exists: this transfer was applied before")]
    Exists,
    /// The same id was applied before with different content; `field` names the first difference.
    #[error("exists with a different {field}: use a new id for a new transfer")]
    ExistsWithDifferentField { field: TransferField },
    /// A transfer with this id failed before, and a failed id never succeeds later.
    #[error("this id failed before and stays failed: use a new id")]
    IdAlreadyFailed,
    /// Another transfer of its linked chain failed.
    #[error("another transfer in its linked chain failed")]
    LinkedEventFailed,
    /// The batch ends inside a linked chain.
    #[error("the linked chain is not closed: its last transfer must not be linked")]
    LinkedEventChainOpen,
    #[error("the amount must be positive")]
    AmountMustBePositive,
    #[error("the debit and credit accounts must differ")]
    AccountsMustBeDifferent,
    #[error("the debit account does not exist")]
    DebitAccountNotFound,
    #[error("the credit account does not exist")]
    CreditAccountNotFound,
    #[error("the accounts and the transfer are not all in one currency")]
    CurrencyMismatch,
    #[error("the debit account's debits would exceed its credits")]
    ExceedsCredits,
    #[error("the credit account's credits would exceed its debits")]
    ExceedsDebits,
    #[error("a balance would overflow")]
    Overflow,
    #[error("the pending transfer does not exist")]
    PendingTransferNotFound,
    #[error("the referenced transfer is not a pending one")]
    PendingTransferNotPending,
    #[error("the pending transfer was already posted")]
    PendingTransferAlreadyPosted,
    #[error("the pending transfer was already voided")]
    PendingTransferAlreadyVoided,
    #[error("the pending transfer expired")]
    PendingTransferExpired,
    #[error("the amount exceeds the pending amount")]
    ExceedsPendingAmount,
    #[error("the accounts, currency or code differ from the pending transfer's")]
    PendingTransferMismatch,
}

impl TransferResult {
    pub fn is_created(self) -> bool {
        self == TransferResult::Created
    }

    /// Whether the answer means the transfer is (now or already) in the ledger.
    pub fn is_applied(self) -> bool {
        matches!(self, TransferResult::Created | TransferResult::Exists)
    }
}

/// An account's four balances at one moment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Balances {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

impl Account {
    pub fn balances(&self) -> Balances {
        Balances {
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
        }
    }
}

/// How a record came to be.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RecordCause {
    /// A client's transfer was applied.
    Transfer,
    /// A pending transfer's timeout passed and the ledger released it; `transfer` repeats the pending one.
    Expiry,
}

/// One change to the ledger as it is persisted, in order: what moved, when, and both accounts'
/// balances right after, so that a balance can be read as of any moment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub transfer: Transfer,
    pub cause: RecordCause,
    /// Strictly increasing across the whole ledger: the record's place in history.
    pub timestamp: Timestamp,
    /// What actually moved or was reserved or released: for a post, the posted amount
    /// (the pending amount when the request said 0); for a void or an expiry, the released amount.
    pub amount: i64,
    pub debit_after: Balances,
    pub credit_after: Balances,
}

/// A transfer id that failed, and why; it stays failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTransfer {
    pub id: TransferId,
    pub result: TransferResult,
    pub timestamp: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_know_their_minor_units() {
        let euro = Currency::parse("EUR").unwrap();
        assert_eq!(euro.format(12345), "123.45 EUR");
        assert_eq!(euro.format(-5), "-0.05 EUR");
        assert_eq!(Currency::parse("JPY").unwrap().format(500), "500 JPY");
        assert_eq!(Currency::parse("KWD").unwrap().format(1500), "1.500 KWD");
        assert!(Currency::parse("eur").is_err() && Currency::parse("EURO").is_err());
    }

    #[test]
    fn ledger_ids_round_trip() {
        let id = TransferId::new();
        assert_eq!(id.to_string().parse::<TransferId>().unwrap(), id);
        assert!(id.to_string().parse::<AccountId>().is_err());
    }
}

/// The hash that closes one batch of the ledger's history and links it to the batch before it.
///
/// SHA-256 over a fixed encoding in which every integer is big-endian and every record and every
/// failure has the same width, so that no two different batches encode alike:
///
/// - the tag `agora-ledger-batch-v1` (21 bytes), `prev` (32 bytes; [`Hash32::GENESIS`] before the
///   first batch) and `batch` (i64);
/// - the number of records (u64), then each record in order, 164 bytes: the transfer id, the debit
///   account id and the credit account id (16 bytes each, the UUID's bytes); the requested amount
///   (i64); the currency's code (3 ASCII bytes; the exponent follows from the code); the code
///   (u16); the kind (u8: 0 single, 1 pending, 2 post_pending, 3 void_pending); the pending id
///   (16 bytes, zeros unless post_pending or void_pending); the timeout in seconds (u32, 0 unless
///   pending); linked (u8, 0 or 1); the cause (u8: 0 transfer, 1 expiry); the timestamp (i64
///   microseconds); the applied amount (i64); then the debit account's balances after and the
///   credit account's (i64 each, in the order debits pending, debits posted, credits pending,
///   credits posted);
/// - the number of failures (u64), then each failure in order, 26 bytes: the transfer id (16
///   bytes); the result (u8: the variant's place in [`TransferResult`], from 0 for `Created` to 20
///   for `PendingTransferMismatch`); the differing field (u8: 0 unless the result is
///   `ExistsWithDifferentField`, else the field's place in [`TransferField`], from 1 for
///   `DebitAccountId` to 7 for `Linked`); the timestamp (i64 microseconds).
///
/// The numbers are part of the format: a new variant takes the next free number, and a number is
/// never reused. A different encoding needs a new tag.
///
/// [`Hash32::GENESIS`]: crate::audit::Hash32::GENESIS
pub fn batch_hash(
    prev: &crate::audit::Hash32,
    batch: i64,
    records: &[TransferRecord],
    failures: &[FailedTransfer],
) -> crate::audit::Hash32 {
    batch_body_hash(prev, batch, &encode_batch_body(records, failures))
}

/// [`batch_hash`] of a batch given as its body ([`encode_batch_body`]): what the store keeps, so
/// that verifying a stored batch hashes the stored bytes as they are.
pub fn batch_body_hash(
    prev: &crate::audit::Hash32,
    batch: i64,
    body: &[u8],
) -> crate::audit::Hash32 {
    use sha2::{Digest, Sha256};

    let mut hasher = Sha256::new();
    hasher.update(BATCH_HASH_TAG);
    hasher.update(prev.0);
    hasher.update(batch.to_be_bytes());
    hasher.update(body);
    crate::audit::Hash32(hasher.finalize().into())
}

const BATCH_HASH_TAG: &[u8; 21] = b"agora-ledger-batch-v1";

/// The width of one record in a batch body.
pub const BATCH_RECORD_BYTES: usize = 164;
/// The width of one failure in a batch body.
pub const BATCH_FAILURE_BYTES: usize = 26;

/// A batch's records and failures in the fixed-width encoding [`batch_hash`] documents, from the
/// record count on: `u64` record count, the records, `u64` failure count, the failures.
pub fn encode_batch_body(records: &[TransferRecord], failures: &[FailedTransfer]) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        16 + records.len() * BATCH_RECORD_BYTES + failures.len() * BATCH_FAILURE_BYTES,
    );
    body.extend_from_slice(&(records.len() as u64).to_be_bytes());
    for record in records {
        encode_record(&mut body, record);
    }
    body.extend_from_slice(&(failures.len() as u64).to_be_bytes());
    for failure in failures {
        let (result, field) = result_numbers(failure.result);
        body.extend_from_slice(failure.id.as_uuid().as_bytes());
        body.push(result);
        body.push(field);
        body.extend_from_slice(&failure.timestamp.as_micros().to_be_bytes());
    }
    debug_assert_eq!(
        body.len(),
        16 + records.len() * BATCH_RECORD_BYTES + failures.len() * BATCH_FAILURE_BYTES,
        "every record and every failure encodes to the same width"
    );
    body
}

fn encode_record(body: &mut Vec<u8>, record: &TransferRecord) {
    let transfer = &record.transfer;
    let (kind, pending_id, timeout_seconds) = match transfer.kind {
        TransferKind::Single => (0u8, None, 0u32),
        TransferKind::Pending { timeout_seconds } => (1, None, timeout_seconds),
        TransferKind::PostPending { pending_id } => (2, Some(pending_id), 0),
        TransferKind::VoidPending { pending_id } => (3, Some(pending_id), 0),
    };
    let cause: u8 = match record.cause {
        RecordCause::Transfer => 0,
        RecordCause::Expiry => 1,
    };
    body.extend_from_slice(transfer.id.as_uuid().as_bytes());
    body.extend_from_slice(transfer.debit_account_id.as_uuid().as_bytes());
    body.extend_from_slice(transfer.credit_account_id.as_uuid().as_bytes());
    body.extend_from_slice(&transfer.amount.to_be_bytes());
    body.extend_from_slice(&transfer.currency.code);
    body.extend_from_slice(&transfer.code.to_be_bytes());
    body.push(kind);
    body.extend_from_slice(
        pending_id
            .map_or([0; 16], |id| id.as_uuid().into_bytes())
            .as_slice(),
    );
    body.extend_from_slice(&timeout_seconds.to_be_bytes());
    body.push(u8::from(transfer.linked));
    body.push(cause);
    body.extend_from_slice(&record.timestamp.as_micros().to_be_bytes());
    body.extend_from_slice(&record.amount.to_be_bytes());
    for balances in [&record.debit_after, &record.credit_after] {
        for value in [
            balances.debits_pending,
            balances.debits_posted,
            balances.credits_pending,
            balances.credits_posted,
        ] {
            body.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Reads a batch body back. Refuses bytes that [`encode_batch_body`] would not have written:
/// wrong lengths, unknown numbers, or fields that the kind leaves zero but are not.
pub fn decode_batch_body(body: &[u8]) -> Result<(Vec<TransferRecord>, Vec<FailedTransfer>), Error> {
    let malformed =
        |what: &str| Error::Internal(format!("a stored ledger batch is malformed: {what}"));
    let mut reader = BodyReader { bytes: body };
    let record_count = reader
        .count(BATCH_RECORD_BYTES)
        .ok_or_else(|| malformed("record count"))?;
    let mut records = Vec::with_capacity(record_count);
    for _ in 0..record_count {
        records.push(decode_record(&mut reader).ok_or_else(|| malformed("a record"))?);
    }
    let failure_count = reader
        .count(BATCH_FAILURE_BYTES)
        .ok_or_else(|| malformed("failure count"))?;
    let mut failures = Vec::with_capacity(failure_count);
    for _ in 0..failure_count {
        let id = TransferId::from_uuid(reader.uuid()?);
        let result = result_from_numbers(reader.u8()?, reader.u8()?);
        let timestamp = Timestamp::from_micros(reader.i64()?);
        let Some(result) = result else {
            return Err(malformed("a failure's result"));
        };
        failures.push(FailedTransfer {
            id,
            result,
            timestamp,
        });
    }
    if !reader.bytes.is_empty() {
        return Err(malformed("bytes after the failures"));
    }
    Ok((records, failures))
}

fn decode_record(reader: &mut BodyReader<'_>) -> Option<TransferRecord> {
    let id = TransferId::from_uuid(reader.uuid().ok()?);
    let debit_account_id = AccountId::from_uuid(reader.uuid().ok()?);
    let credit_account_id = AccountId::from_uuid(reader.uuid().ok()?);
    let requested_amount = reader.i64().ok()?;
    let currency = Currency::parse(std::str::from_utf8(reader.take(3).ok()?).ok()?).ok()?;
    let code = u16::from_be_bytes(reader.take(2).ok()?.try_into().ok()?);
    let kind_number = reader.u8().ok()?;
    let pending_id = reader.uuid().ok()?;
    let timeout_seconds = u32::from_be_bytes(reader.take(4).ok()?.try_into().ok()?);
    let no_pending = pending_id.is_nil();
    let kind = match kind_number {
        0 if no_pending && timeout_seconds == 0 => TransferKind::Single,
        1 if no_pending => TransferKind::Pending { timeout_seconds },
        2 if timeout_seconds == 0 => TransferKind::PostPending {
            pending_id: TransferId::from_uuid(pending_id),
        },
        3 if timeout_seconds == 0 => TransferKind::VoidPending {
            pending_id: TransferId::from_uuid(pending_id),
        },
        _ => return None,
    };
    let linked = match reader.u8().ok()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let cause = match reader.u8().ok()? {
        0 => RecordCause::Transfer,
        1 => RecordCause::Expiry,
        _ => return None,
    };
    let timestamp = Timestamp::from_micros(reader.i64().ok()?);
    let amount = reader.i64().ok()?;
    let mut balances = || -> Option<Balances> {
        Some(Balances {
            debits_pending: reader.i64().ok()?,
            debits_posted: reader.i64().ok()?,
            credits_pending: reader.i64().ok()?,
            credits_posted: reader.i64().ok()?,
        })
    };
    let debit_after = balances()?;
    let credit_after = balances()?;
    Some(TransferRecord {
        transfer: Transfer {
            id,
            debit_account_id,
            credit_account_id,
            amount: requested_amount,
            currency,
            code,
            kind,
            linked,
        },
        cause,
        timestamp,
        amount,
        debit_after,
        credit_after,
    })
}

/// Reads a batch body front to back.
struct BodyReader<'a> {
    bytes: &'a [u8],
}

impl<'a> BodyReader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < count {
            return Err(Error::Internal(
                "a stored ledger batch is malformed: it ends early".into(),
            ));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("eight bytes were taken"),
        ))
    }

    fn uuid(&mut self) -> Result<uuid::Uuid, Error> {
        Ok(uuid::Uuid::from_bytes(
            self.take(16)?.try_into().expect("sixteen bytes were taken"),
        ))
    }

    /// A count of items `width` bytes wide each, refused if the rest could not hold them.
    fn count(&mut self, width: usize) -> Option<usize> {
        let count = u64::from_be_bytes(self.take(8).ok()?.try_into().ok()?);
        let count = usize::try_from(count).ok()?;
        (count.checked_mul(width)? <= self.bytes.len()).then_some(count)
    }
}

fn field_number(field: TransferField) -> u8 {
    match field {
        TransferField::DebitAccountId => 1,
        TransferField::CreditAccountId => 2,
        TransferField::Amount => 3,
        TransferField::Currency => 4,
        TransferField::Code => 5,
        TransferField::Kind => 6,
        TransferField::Linked => 7,
    }
}

/// Every result in the order of its number: a result's number is its place here.
const RESULTS_IN_ORDER: [TransferResult; 21] = [
    TransferResult::Created,
    TransferResult::Exists,
    TransferResult::ExistsWithDifferentField {
        field: TransferField::DebitAccountId,
    },
    TransferResult::IdAlreadyFailed,
    TransferResult::LinkedEventFailed,
    TransferResult::LinkedEventChainOpen,
    TransferResult::AmountMustBePositive,
    TransferResult::AccountsMustBeDifferent,
    TransferResult::DebitAccountNotFound,
    TransferResult::CreditAccountNotFound,
    TransferResult::CurrencyMismatch,
    TransferResult::ExceedsCredits,
    TransferResult::ExceedsDebits,
    TransferResult::Overflow,
    TransferResult::PendingTransferNotFound,
    TransferResult::PendingTransferNotPending,
    TransferResult::PendingTransferAlreadyPosted,
    TransferResult::PendingTransferAlreadyVoided,
    TransferResult::PendingTransferExpired,
    TransferResult::ExceedsPendingAmount,
    TransferResult::PendingTransferMismatch,
];

const FIELDS_IN_ORDER: [TransferField; 7] = [
    TransferField::DebitAccountId,
    TransferField::CreditAccountId,
    TransferField::Amount,
    TransferField::Currency,
    TransferField::Code,
    TransferField::Kind,
    TransferField::Linked,
];

fn result_numbers(result: TransferResult) -> (u8, u8) {
    match result {
        TransferResult::Created => (0, 0),
        TransferResult::Exists => (1, 0),
        TransferResult::ExistsWithDifferentField { field } => (2, field_number(field)),
        TransferResult::IdAlreadyFailed => (3, 0),
        TransferResult::LinkedEventFailed => (4, 0),
        TransferResult::LinkedEventChainOpen => (5, 0),
        TransferResult::AmountMustBePositive => (6, 0),
        TransferResult::AccountsMustBeDifferent => (7, 0),
        TransferResult::DebitAccountNotFound => (8, 0),
        TransferResult::CreditAccountNotFound => (9, 0),
        TransferResult::CurrencyMismatch => (10, 0),
        TransferResult::ExceedsCredits => (11, 0),
        TransferResult::ExceedsDebits => (12, 0),
        TransferResult::Overflow => (13, 0),
        TransferResult::PendingTransferNotFound => (14, 0),
        TransferResult::PendingTransferNotPending => (15, 0),
        TransferResult::PendingTransferAlreadyPosted => (16, 0),
        TransferResult::PendingTransferAlreadyVoided => (17, 0),
        TransferResult::PendingTransferExpired => (18, 0),
        TransferResult::ExceedsPendingAmount => (19, 0),
        TransferResult::PendingTransferMismatch => (20, 0),
    }
}

/// The result two numbers of [`result_numbers`] stand for, if any.
fn result_from_numbers(result: u8, field: u8) -> Option<TransferResult> {
    let decoded = match *RESULTS_IN_ORDER.get(usize::from(result))? {
        TransferResult::ExistsWithDifferentField { .. } => {
            TransferResult::ExistsWithDifferentField {
                field: *FIELDS_IN_ORDER.get(usize::from(field).checked_sub(1)?)?,
            }
        }
        other if field == 0 => other,
        _ => return None,
    };
    // The two tables and the match above must agree; a mismatch is a bug in this file.
    debug_assert_eq!(result_numbers(decoded), (result, field));
    Some(decoded)
}

#[cfg(test)]
mod batch_hash_tests {
    use super::*;
    use crate::audit::Hash32;

    fn account(n: u128) -> AccountId {
        AccountId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn transfer(n: u128) -> TransferId {
        TransferId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn balances(base: i64) -> Balances {
        Balances {
            debits_pending: base,
            debits_posted: base + 1,
            credits_pending: base + 2,
            credits_posted: base + 3,
        }
    }

    fn record(n: u128, kind: TransferKind) -> TransferRecord {
        TransferRecord {
            transfer: Transfer {
                id: transfer(n),
                debit_account_id: account(1),
                credit_account_id: account(2),
                amount: 500,
                currency: Currency::parse("EUR").unwrap(),
                code: 7,
                kind,
                linked: false,
            },
            cause: RecordCause::Transfer,
            timestamp: Timestamp::from_micros(1_000 + n as i64),
            amount: 500,
            debit_after: balances(10),
            credit_after: balances(20),
        }
    }

    fn batch() -> (Vec<TransferRecord>, Vec<FailedTransfer>) {
        let records = vec![
            record(1, TransferKind::Single),
            record(
                2,
                TransferKind::Pending {
                    timeout_seconds: 60,
                },
            ),
            record(
                3,
                TransferKind::PostPending {
                    pending_id: transfer(2),
                },
            ),
            record(
                4,
                TransferKind::VoidPending {
                    pending_id: transfer(2),
                },
            ),
        ];
        let failures = vec![
            FailedTransfer {
                id: transfer(9),
                result: TransferResult::ExceedsCredits,
                timestamp: Timestamp::from_micros(2_000),
            },
            FailedTransfer {
                id: transfer(10),
                result: TransferResult::ExistsWithDifferentField {
                    field: TransferField::Amount,
                },
                timestamp: Timestamp::from_micros(2_001),
            },
        ];
        (records, failures)
    }

    #[test]
    fn bodies_round_trip_and_refuse_what_was_not_encoded() {
        let (records, mut failures) = batch();
        failures.extend(RESULTS_IN_ORDER.iter().map(|&result| FailedTransfer {
            id: transfer(50),
            result,
            timestamp: Timestamp::from_micros(3_000),
        }));
        failures.extend(FIELDS_IN_ORDER.iter().map(|&field| FailedTransfer {
            id: transfer(51),
            result: TransferResult::ExistsWithDifferentField { field },
            timestamp: Timestamp::from_micros(3_001),
        }));
        let body = encode_batch_body(&records, &failures);
        assert_eq!(
            decode_batch_body(&body).unwrap(),
            (records.clone(), failures.clone())
        );
        assert_eq!(
            batch_body_hash(&Hash32::GENESIS, 1, &body),
            batch_hash(&Hash32::GENESIS, 1, &records, &failures)
        );
        assert_eq!(
            decode_batch_body(&encode_batch_body(&[], &[])).unwrap(),
            (vec![], vec![])
        );

        let record_at = |index: usize, offset: usize| 8 + index * BATCH_RECORD_BYTES + offset;
        let failure_at = 8 + records.len() * BATCH_RECORD_BYTES + 8;
        type BodyEdit = Box<dyn Fn(&mut Vec<u8>)>;
        let edits: Vec<(&str, BodyEdit)> = vec![
            ("cut short", Box::new(|body| body.truncate(body.len() - 1))),
            ("a byte too many", Box::new(|body| body.push(0))),
            ("a record count too high", Box::new(|body| body[7] += 1)),
            (
                "a currency that is none",
                Box::new(move |body| body[record_at(0, 56)] = b'e'),
            ),
            (
                "an unknown kind",
                Box::new(move |body| body[record_at(0, 61)] = 4),
            ),
            (
                "a single with a pending id",
                Box::new(move |body| body[record_at(0, 62)] = 1),
            ),
            (
                "a post with a timeout",
                Box::new(move |body| body[record_at(2, 81)] = 1),
            ),
            (
                "linked neither 0 nor 1",
                Box::new(move |body| body[record_at(0, 82)] = 2),
            ),
            (
                "an unknown cause",
                Box::new(move |body| body[record_at(0, 83)] = 2),
            ),
            (
                "an unknown result",
                Box::new(move |body| body[failure_at + 16] = 21),
            ),
            (
                "a field without its result",
                Box::new(move |body| body[failure_at + 17] = 1),
            ),
            (
                "an unknown field",
                Box::new(move |body| body[failure_at + BATCH_FAILURE_BYTES + 17] = 8),
            ),
        ];
        for (name, edit) in edits {
            let mut edited = body.clone();
            edit(&mut edited);
            assert!(decode_batch_body(&edited).is_err(), "{name}");
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        // A change here changes every stored batch's hash: it needs a new tag, not a new value.
        // The value was checked against a separate implementation of the documented encoding.
        let (records, failures) = batch();
        let hash = batch_hash(&Hash32::GENESIS, 1, &records, &failures);
        assert_eq!(
            hash.to_hex(),
            "2b327f51165d33fd526fe5f41b230549d1911a17000ba81010ad794d9f4f63d6"
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let (records, failures) = batch();
        let original = batch_hash(&Hash32::GENESIS, 1, &records, &failures);
        let record_edits: Vec<fn(&mut TransferRecord)> = vec![
            |r| r.transfer.id = transfer(99),
            |r| r.transfer.debit_account_id = account(99),
            |r| r.transfer.credit_account_id = account(99),
            |r| r.transfer.amount += 1,
            |r| r.transfer.currency = Currency::parse("USD").unwrap(),
            |r| r.transfer.code += 1,
            |r| r.transfer.kind = TransferKind::Pending { timeout_seconds: 0 },
            |r| r.transfer.linked = true,
            |r| r.cause = RecordCause::Expiry,
            |r| r.timestamp = Timestamp::from_micros(r.timestamp.as_micros() + 1),
            |r| r.amount += 1,
            |r| r.debit_after.debits_pending += 1,
            |r| r.debit_after.debits_posted += 1,
            |r| r.debit_after.credits_pending += 1,
            |r| r.debit_after.credits_posted += 1,
            |r| r.credit_after.debits_pending += 1,
            |r| r.credit_after.debits_posted += 1,
            |r| r.credit_after.credits_pending += 1,
            |r| r.credit_after.credits_posted += 1,
        ];
        for (index, edit) in record_edits.iter().enumerate() {
            let mut edited = records.clone();
            edit(&mut edited[0]);
            assert_ne!(
                batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
                original,
                "record edit {index}"
            );
        }
        let mut edited = records.clone();
        edited[1].transfer.kind = TransferKind::Pending {
            timeout_seconds: 61,
        };
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
            original,
            "timeout"
        );
        let mut edited = records.clone();
        edited[2].transfer.kind = TransferKind::PostPending {
            pending_id: transfer(1),
        };
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
            original,
            "pending id"
        );
        let mut edited = records.clone();
        edited[2].transfer.kind = TransferKind::VoidPending {
            pending_id: transfer(2),
        };
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
            original,
            "post versus void"
        );
        let mut edited = records.clone();
        edited.swap(0, 1);
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
            original,
            "order"
        );
        let mut edited = records.clone();
        edited.pop();
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &edited, &failures),
            original,
            "a removed record"
        );

        let failure_edits: Vec<fn(&mut FailedTransfer)> = vec![
            |f| f.id = transfer(99),
            |f| f.result = TransferResult::ExceedsDebits,
            |f| {
                f.result = TransferResult::ExistsWithDifferentField {
                    field: TransferField::Code,
                }
            },
            |f| f.timestamp = Timestamp::from_micros(f.timestamp.as_micros() + 1),
        ];
        for (index, edit) in failure_edits.iter().enumerate() {
            let mut edited = failures.clone();
            edit(&mut edited[1]);
            assert_ne!(
                batch_hash(&Hash32::GENESIS, 1, &records, &edited),
                original,
                "failure edit {index}"
            );
        }
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 2, &records, &failures),
            original,
            "batch number"
        );
        assert_ne!(
            batch_hash(&Hash32([1; 32]), 1, &records, &failures),
            original,
            "previous hash"
        );
        assert_ne!(
            batch_hash(&Hash32::GENESIS, 1, &records, &failures[..1]),
            original,
            "a removed failure"
        );
    }
}
