//! The ledger's durable history: accounts with their balances, every applied change in order,
//! the transfer ids that failed, and a hash chain over the batches the single writer commits.
//!
//! The writer applies a batch in memory and then persists it here in one transaction, with a
//! handful of multi-row statements whatever the batch's size: one statement per row would make
//! the database, not the fsync of the commit, the limit. Each batch row carries
//! `batch_hash(previous hash, batch, records, failures)`, so that editing, removing or reordering
//! anything written breaks the chain at that batch ([`Store::verify_ledger_chain`]).

use std::collections::{HashSet, VecDeque};
use std::fmt;

use agora_domain::audit::Hash32;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, FailedTransfer, RecordCause, Transfer,
    TransferField, TransferId, TransferKind, TransferRecord, TransferResult, batch_hash,
};
use agora_domain::{Error, Result, Timestamp};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use crate::{Store, WriteTx, column, db_error, get, optional_column};

/// The most bind parameters one statement carries: SQLite's limit (PostgreSQL's is 65,535).
const BIND_PARAMETERS_MAX: usize = 32_766;

/// Rows per page when the chain verification reads records, failures and batches.
const VERIFY_PAGE_ROWS: usize = 10_000;

const ACCOUNT_COLUMNS: &str = "id, currency, code, balance_limit, debits_pending, debits_posted, \
     credits_pending, credits_posted, created_at_us";
const ACCOUNT_COLUMN_COUNT: usize = 9;

/// The columns of a record without `seq` and `batch`, which the batch gives, and without the
/// account keys, which follow from the account ids.
const RECORD_FIELDS: &str = "transfer_id, debit_account_id, credit_account_id, requested_amount, \
     currency, code, kind, pending_id, timeout_seconds, linked, cause, amount, timestamp_us, \
     debit_debits_pending, debit_debits_posted, debit_credits_pending, debit_credits_posted, \
     credit_debits_pending, credit_debits_posted, credit_credits_pending, credit_credits_posted";
/// Every column of `ledger_records`: `seq, batch, debit_account_key, credit_account_key` and the fields.
const RECORD_COLUMN_COUNT: usize = 25;

const FAILURE_COLUMNS: &str = "transfer_id, result, result_field, timestamp_us, batch, batch_index";
const FAILURE_COLUMN_COUNT: usize = 6;

/// One batch as the writer hands it over, after applying it in memory.
#[derive(Debug, Clone, Copy)]
pub struct LedgerBatch<'a> {
    /// The changes, in the order the ledger applied them; timestamps strictly increase, beyond
    /// every earlier batch's.
    pub records: &'a [TransferRecord],
    /// Transfer ids that failed in this batch; an id is written as failed once.
    pub failures: &'a [FailedTransfer],
    /// The accounts the batch touched, each once, with their balances after the batch. Only the
    /// balances of an existing account are updated; an account not yet stored is inserted whole.
    pub accounts: &'a [Account],
}

/// What appending a batch committed to (once the transaction commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchReceipt {
    /// The batch's number: consecutive from 1.
    pub batch: i64,
    /// The batch's link in the chain, which every later batch's hash depends on.
    pub hash: Hash32,
}

/// Where the ledger's hash chain stops matching what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerChainBreak {
    /// The batch's records or failures are not those it was written with: edited, added,
    /// removed, renumbered or reordered.
    Edited { batch: i64 },
    /// The batch's row is gone: the numbers jump past it, or the chain ends before the head.
    Missing { batch: i64 },
    /// The batch's previous hash is not the hash of the batch before it.
    Unlinked { batch: i64 },
    /// The chain is intact up to this batch, its last, but the head row does not point at it,
    /// or records, failures or batches are stored past it.
    HeadMismatch { batch: i64 },
}

impl LedgerChainBreak {
    /// The number of the first batch that is not as it was written.
    pub fn batch(&self) -> i64 {
        match *self {
            LedgerChainBreak::Edited { batch }
            | LedgerChainBreak::Missing { batch }
            | LedgerChainBreak::Unlinked { batch }
            | LedgerChainBreak::HeadMismatch { batch } => batch,
        }
    }
}

impl fmt::Display for LedgerChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerChainBreak::Edited { batch } => write!(
                f,
                "ledger batch {batch} was changed: its records or failures no longer match its hash"
            ),
            LedgerChainBreak::Missing { batch } => {
                write!(f, "ledger batch {batch} is missing: batches were removed")
            }
            LedgerChainBreak::Unlinked { batch } => write!(
                f,
                "ledger batch {batch} does not link to the batch before it: batches were edited, inserted or reordered there"
            ),
            LedgerChainBreak::HeadMismatch { batch } => write!(
                f,
                "the ledger's history ends at batch {batch}, but its head or rows stored past it disagree: they were edited or inserted"
            ),
        }
    }
}

impl std::error::Error for LedgerChainBreak {}

/// Stored text of field-less enums: one list gives both directions, and the exhaustive match
/// turns a new variant into a compile error here instead of a surprise in the database.
macro_rules! stored_text {
    ($to_text:ident, $parse:ident, $type:ty, $what:literal, { $($variant:path => $text:literal),+ $(,)? }) => {
        fn $to_text(value: $type) -> &'static str {
            match value {
                $($variant => $text),+
            }
        }

        fn $parse(text: &str) -> Result<$type> {
            match text {
                $($text => Ok($variant),)+
                other => Err(Error::Internal(format!("the ledger holds an unknown {} `{other}`", $what))),
            }
        }
    };
}

stored_text!(limit_text, parse_limit, BalanceLimit, "balance limit", {
    BalanceLimit::None => "none",
    BalanceLimit::DebitsMustNotExceedCredits => "debits_must_not_exceed_credits",
    BalanceLimit::CreditsMustNotExceedDebits => "credits_must_not_exceed_debits",
});

stored_text!(cause_text, parse_cause, RecordCause, "record cause", {
    RecordCause::Transfer => "transfer",
    RecordCause::Expiry => "expiry",
});

stored_text!(field_text, parse_field, TransferField, "transfer field", {
    TransferField::DebitAccountId => "debit_account_id",
    TransferField::CreditAccountId => "credit_account_id",
    TransferField::Amount => "amount",
    TransferField::Currency => "currency",
    TransferField::Code => "code",
    TransferField::Kind => "kind",
    TransferField::Linked => "linked",
});

/// A result as stored: its name, and the differing field's for `exists_with_different_field`.
fn result_text(result: TransferResult) -> (&'static str, Option<&'static str>) {
    let name = match result {
        TransferResult::ExistsWithDifferentField { field } => {
            return ("exists_with_different_field", Some(field_text(field)));
        }
        TransferResult::Created => "created",
        TransferResult::Exists => "exists",
        TransferResult::IdAlreadyFailed => "id_already_failed",
        TransferResult::LinkedEventFailed => "linked_event_failed",
        TransferResult::LinkedEventChainOpen => "linked_event_chain_open",
        TransferResult::AmountMustBePositive => "amount_must_be_positive",
        TransferResult::AccountsMustBeDifferent => "accounts_must_be_different",
        TransferResult::DebitAccountNotFound => "debit_account_not_found",
        TransferResult::CreditAccountNotFound => "credit_account_not_found",
        TransferResult::CurrencyMismatch => "currency_mismatch",
        TransferResult::ExceedsCredits => "exceeds_credits",
        TransferResult::ExceedsDebits => "exceeds_debits",
        TransferResult::Overflow => "overflow",
        TransferResult::PendingTransferNotFound => "pending_transfer_not_found",
        TransferResult::PendingTransferNotPending => "pending_transfer_not_pending",
        TransferResult::PendingTransferAlreadyPosted => "pending_transfer_already_posted",
        TransferResult::PendingTransferAlreadyVoided => "pending_transfer_already_voided",
        TransferResult::PendingTransferExpired => "pending_transfer_expired",
        TransferResult::ExceedsPendingAmount => "exceeds_pending_amount",
        TransferResult::PendingTransferMismatch => "pending_transfer_mismatch",
    };
    (name, None)
}

fn parse_result(name: &str, field: Option<&str>) -> Result<TransferResult> {
    Ok(match name {
        "exists_with_different_field" => {
            let field = field.ok_or_else(|| {
                Error::Internal(
                    "the ledger holds an exists_with_different_field failure without its field"
                        .into(),
                )
            })?;
            TransferResult::ExistsWithDifferentField {
                field: parse_field(field)?,
            }
        }
        "created" => TransferResult::Created,
        "exists" => TransferResult::Exists,
        "id_already_failed" => TransferResult::IdAlreadyFailed,
        "linked_event_failed" => TransferResult::LinkedEventFailed,
        "linked_event_chain_open" => TransferResult::LinkedEventChainOpen,
        "amount_must_be_positive" => TransferResult::AmountMustBePositive,
        "accounts_must_be_different" => TransferResult::AccountsMustBeDifferent,
        "debit_account_not_found" => TransferResult::DebitAccountNotFound,
        "credit_account_not_found" => TransferResult::CreditAccountNotFound,
        "currency_mismatch" => TransferResult::CurrencyMismatch,
        "exceeds_credits" => TransferResult::ExceedsCredits,
        "exceeds_debits" => TransferResult::ExceedsDebits,
        "overflow" => TransferResult::Overflow,
        "pending_transfer_not_found" => TransferResult::PendingTransferNotFound,
        "pending_transfer_not_pending" => TransferResult::PendingTransferNotPending,
        "pending_transfer_already_posted" => TransferResult::PendingTransferAlreadyPosted,
        "pending_transfer_already_voided" => TransferResult::PendingTransferAlreadyVoided,
        "pending_transfer_expired" => TransferResult::PendingTransferExpired,
        "exceeds_pending_amount" => TransferResult::ExceedsPendingAmount,
        "pending_transfer_mismatch" => TransferResult::PendingTransferMismatch,
        other => {
            return Err(Error::Internal(format!(
                "the ledger holds an unknown transfer result `{other}`"
            )));
        }
    })
}

/// A kind as stored: its name, the pending transfer it resolves, and a pending one's timeout.
fn kind_columns(kind: TransferKind) -> (&'static str, Option<TransferId>, Option<i64>) {
    match kind {
        TransferKind::Single => ("single", None, None),
        TransferKind::Pending { timeout_seconds } => {
            ("pending", None, Some(i64::from(timeout_seconds)))
        }
        TransferKind::PostPending { pending_id } => ("post_pending", Some(pending_id), None),
        TransferKind::VoidPending { pending_id } => ("void_pending", Some(pending_id), None),
    }
}

fn kind_from_row(row: &AnyRow) -> Result<TransferKind> {
    let kind: String = get(row, "kind")?;
    let pending_id = || {
        optional_column::<TransferId>(row, "pending_id")?.ok_or_else(|| {
            Error::Internal(format!(
                "the ledger holds a {kind} record without its pending_id"
            ))
        })
    };
    Ok(match kind.as_str() {
        "single" => TransferKind::Single,
        "pending" => TransferKind::Pending {
            timeout_seconds: integer(row, "timeout_seconds")?,
        },
        "post_pending" => TransferKind::PostPending {
            pending_id: pending_id()?,
        },
        "void_pending" => TransferKind::VoidPending {
            pending_id: pending_id()?,
        },
        other => {
            return Err(Error::Internal(format!(
                "the ledger holds an unknown transfer kind `{other}`"
            )));
        }
    })
}

/// Reads a BIGINT column into a narrower integer, refusing a value it cannot hold.
fn integer<T: TryFrom<i64>>(row: &AnyRow, name: &str) -> Result<T> {
    let value: i64 = get(row, name)?;
    T::try_from(value)
        .map_err(|_| Error::Internal(format!("column {name} holds {value}, out of range")))
}

fn balances_from_row(row: &AnyRow, prefix: &str) -> Result<Balances> {
    Ok(Balances {
        debits_pending: get(row, &format!("{prefix}debits_pending"))?,
        debits_posted: get(row, &format!("{prefix}debits_posted"))?,
        credits_pending: get(row, &format!("{prefix}credits_pending"))?,
        credits_posted: get(row, &format!("{prefix}credits_posted"))?,
    })
}

fn account_from_row(row: &AnyRow) -> Result<Account> {
    let balances = balances_from_row(row, "")?;
    Ok(Account {
        id: column(row, "id")?,
        currency: column(row, "currency")?,
        code: integer(row, "code")?,
        limit: parse_limit(&get::<String>(row, "balance_limit")?)?,
        debits_pending: balances.debits_pending,
        debits_posted: balances.debits_posted,
        credits_pending: balances.credits_pending,
        credits_posted: balances.credits_posted,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
    })
}

fn record_from_row(row: &AnyRow) -> Result<TransferRecord> {
    Ok(TransferRecord {
        transfer: Transfer {
            id: column(row, "transfer_id")?,
            debit_account_id: column(row, "debit_account_id")?,
            credit_account_id: column(row, "credit_account_id")?,
            amount: get(row, "requested_amount")?,
            currency: column(row, "currency")?,
            code: integer(row, "code")?,
            kind: kind_from_row(row)?,
            linked: integer::<u8>(row, "linked")? == 1,
        },
        cause: parse_cause(&get::<String>(row, "cause")?)?,
        timestamp: Timestamp::from_micros(get(row, "timestamp_us")?),
        amount: get(row, "amount")?,
        debit_after: balances_from_row(row, "debit_")?,
        credit_after: balances_from_row(row, "credit_")?,
    })
}

fn failure_from_row(row: &AnyRow) -> Result<FailedTransfer> {
    let result_field: Option<String> = get(row, "result_field")?;
    Ok(FailedTransfer {
        id: column(row, "transfer_id")?,
        result: parse_result(&get::<String>(row, "result")?, result_field.as_deref())?,
        timestamp: Timestamp::from_micros(get(row, "timestamp_us")?),
    })
}

/// The 64-bit key that `ledger_records` indexes an account's history by: eight bytes compare and
/// store far more cheaply than the 36-character id, which makes a batch's writes to the two
/// per-account indexes markedly faster. It is splitmix64's finalizer over the id's 128 bits; rows
/// hold it, so it must never change. Different accounts may share a key: every query by key also
/// compares the id, and a shared key only lengthens an index scan.
fn account_key(id: AccountId) -> i64 {
    fn mix(mut bits: u64) -> u64 {
        bits = (bits ^ (bits >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        bits = (bits ^ (bits >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bits ^ (bits >> 31)
    }
    let bits = id.as_uuid().as_u128();
    let high = (bits >> 64) as u64;
    let low = bits as u64;
    // Reinterpreting the bits as a signed BIGINT: the sign carries no meaning.
    mix(high ^ mix(low)) as i64
}

/// How a multi-row statement marks its bind parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    /// `$1, $2, …`: PostgreSQL's only form.
    Numbered,
    /// `?, ?, …`, bound in order. On SQLite a named parameter such as `$7` is found by walking the
    /// list of all the statement's names, at preparation and again at every bind, so `n` of them
    /// cost O(n²): a full statement of 32,766 took seconds where anonymous ones take milliseconds.
    Anonymous,
}

impl Placeholders {
    fn of(connection: &AnyConnection) -> Self {
        if connection.backend_name().eq_ignore_ascii_case("sqlite") {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…), …` for `rows` rows, then `tail`.
fn multi_row_insert(
    placeholders: Placeholders,
    table: &str,
    columns: &str,
    column_count: usize,
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = String::with_capacity(64 + columns.len() + rows * column_count * 8 + tail.len());
    sql.push_str("INSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (");
    sql.push_str(columns);
    sql.push_str(") VALUES ");
    let mut parameter = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..column_count {
            parameter += 1;
            if column > 0 {
                sql.push_str(", ");
            }
            match placeholders {
                Placeholders::Numbered => {
                    sql.push('$');
                    sql.push_str(&parameter.to_string());
                }
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// Splits rows into one statement's worth each: as many of `rows_max` as there are, then the rest
/// in descending powers of two. Each connection caches its prepared statements by their text, and
/// a multi-row statement is large, so sizes from this small fixed set keep a dozen statements
/// prepared and reused whatever the batch sizes, rather than a new one for every remainder.
fn statement_chunks<T>(rows: &[T], rows_max: usize) -> impl Iterator<Item = &[T]> {
    let rest = rows.len() % rows_max;
    let sizes = std::iter::repeat_n(rows_max, rows.len() / rows_max).chain(
        (0..usize::BITS)
            .rev()
            .map(|bit| 1usize << bit)
            .filter(move |size| rest & size != 0),
    );
    let mut remaining = rows;
    sizes.map(move |size| {
        let (chunk, rest) = remaining.split_at(size);
        remaining = rest;
        chunk
    })
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

fn bind_account<'q>(query: AnyQuery<'q>, account: &'q Account) -> AnyQuery<'q> {
    query
        .bind(account.id.to_string())
        .bind(account.currency.code())
        .bind(i64::from(account.code))
        .bind(limit_text(account.limit))
        .bind(account.debits_pending)
        .bind(account.debits_posted)
        .bind(account.credits_pending)
        .bind(account.credits_posted)
        .bind(account.created_at.as_micros())
}

fn bind_balances<'q>(query: AnyQuery<'q>, balances: &Balances) -> AnyQuery<'q> {
    query
        .bind(balances.debits_pending)
        .bind(balances.debits_posted)
        .bind(balances.credits_pending)
        .bind(balances.credits_posted)
}

fn bind_record<'q>(
    query: AnyQuery<'q>,
    seq: i64,
    batch: i64,
    record: &'q TransferRecord,
) -> AnyQuery<'q> {
    let transfer = &record.transfer;
    let (kind, pending_id, timeout_seconds) = kind_columns(transfer.kind);
    let query = query
        .bind(seq)
        .bind(batch)
        .bind(account_key(transfer.debit_account_id))
        .bind(account_key(transfer.credit_account_id))
        .bind(transfer.id.to_string())
        .bind(transfer.debit_account_id.to_string())
        .bind(transfer.credit_account_id.to_string())
        .bind(transfer.amount)
        .bind(transfer.currency.code())
        .bind(i64::from(transfer.code))
        .bind(kind)
        .bind(pending_id.map(|id| id.to_string()))
        .bind(timeout_seconds)
        .bind(i64::from(transfer.linked))
        .bind(cause_text(record.cause))
        .bind(record.amount)
        .bind(record.timestamp.as_micros());
    let query = bind_balances(query, &record.debit_after);
    bind_balances(query, &record.credit_after)
}

/// Inserts or updates accounts in as few statements as the parameter limit allows.
async fn write_accounts(
    connection: &mut AnyConnection,
    accounts: &[Account],
    on_conflict: &str,
) -> Result<()> {
    let placeholders = Placeholders::of(connection);
    for chunk in statement_chunks(accounts, BIND_PARAMETERS_MAX / ACCOUNT_COLUMN_COUNT) {
        let sql = multi_row_insert(
            placeholders,
            "ledger_accounts",
            ACCOUNT_COLUMNS,
            ACCOUNT_COLUMN_COUNT,
            chunk.len(),
            on_conflict,
        );
        let query = chunk.iter().fold(sqlx::query(&sql), bind_account);
        query.execute(&mut *connection).await.map_err(db_error)?;
    }
    Ok(())
}

impl WriteTx {
    /// Stores new accounts; an account whose id is already stored is left as it is.
    pub async fn insert_ledger_accounts(&mut self, accounts: &[Account]) -> Result<()> {
        write_accounts(self.conn(), accounts, "ON CONFLICT (id) DO NOTHING").await
    }

    /// Appends one batch at the end of the ledger's history: its records with consecutive
    /// sequence numbers, its failures, the touched accounts' balances, and its link in the chain.
    ///
    /// The head row is updated first, which serializes appends (a row lock on PostgreSQL until
    /// commit; SQLite has a single writer anyway): batch and sequence numbers are consecutive,
    /// and the previous hash read here is the one committed just before.
    pub async fn append_ledger_batch(&mut self, batch: &LedgerBatch<'_>) -> Result<BatchReceipt> {
        let mut touched = HashSet::with_capacity(batch.accounts.len());
        if let Some(twice) = batch
            .accounts
            .iter()
            .find(|account| !touched.insert(account.id))
        {
            // PostgreSQL refuses to upsert one row twice in a statement; SQLite would keep the
            // last. Refuse on both: the writer hands over each account's final state once.
            return Err(Error::invalid(
                "accounts",
                format!("account {} appears twice in one ledger batch", twice.id),
            ));
        }
        let record_count =
            i64::try_from(batch.records.len()).expect("a slice's length fits in i64");
        let failure_count =
            i64::try_from(batch.failures.len()).expect("a slice's length fits in i64");
        let head = sqlx::query(
            "UPDATE ledger_head SET batch = batch + 1, seq = seq + $1 WHERE id = 1 RETURNING batch, seq, hash",
        )
        .bind(record_count)
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        let number: i64 = get(&head, "batch")?;
        let last_seq: i64 = get(&head, "seq")?;
        let prev_hash = Hash32::from_slice(&get::<Vec<u8>>(&head, "hash")?)?;
        let first_seq = last_seq - record_count + 1;
        let hash = batch_hash(&prev_hash, number, batch.records, batch.failures);
        sqlx::query("UPDATE ledger_head SET hash = $1 WHERE id = 1")
            .bind(hash.0.to_vec())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO ledger_batches (batch, first_seq, last_seq, record_count, failure_count, prev_hash, hash, committed_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(number)
        .bind(first_seq)
        .bind(last_seq)
        .bind(record_count)
        .bind(failure_count)
        .bind(prev_hash.0.to_vec())
        .bind(hash.0.to_vec())
        .bind(Timestamp::now().as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;

        let placeholders = Placeholders::of(self.conn());
        let columns = format!("seq, batch, debit_account_key, credit_account_key, {RECORD_FIELDS}");
        let rows_max = BIND_PARAMETERS_MAX / RECORD_COLUMN_COUNT;
        let mut seq = first_seq;
        for chunk in statement_chunks(batch.records, rows_max) {
            let sql = multi_row_insert(
                placeholders,
                "ledger_records",
                &columns,
                RECORD_COLUMN_COUNT,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = bind_record(query, seq, number, record);
                seq += 1;
            }
            query.execute(self.conn()).await.map_err(db_error)?;
        }

        let rows_max = BIND_PARAMETERS_MAX / FAILURE_COLUMN_COUNT;
        let mut batch_index: i64 = 0;
        for chunk in statement_chunks(batch.failures, rows_max) {
            let sql = multi_row_insert(
                placeholders,
                "ledger_failures",
                FAILURE_COLUMNS,
                FAILURE_COLUMN_COUNT,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for failure in chunk {
                let (result, result_field) = result_text(failure.result);
                query = query
                    .bind(failure.id.to_string())
                    .bind(result)
                    .bind(result_field)
                    .bind(failure.timestamp.as_micros())
                    .bind(number)
                    .bind(batch_index);
                batch_index += 1;
            }
            query.execute(self.conn()).await.map_err(db_error)?;
        }

        write_accounts(
            self.conn(),
            batch.accounts,
            "ON CONFLICT (id) DO UPDATE SET debits_pending = excluded.debits_pending, \
             debits_posted = excluded.debits_posted, credits_pending = excluded.credits_pending, \
             credits_posted = excluded.credits_posted",
        )
        .await?;
        Ok(BatchReceipt {
            batch: number,
            hash,
        })
    }
}

/// A batch's row as stored.
struct StoredBatch {
    batch: i64,
    first_seq: i64,
    last_seq: i64,
    record_count: i64,
    failure_count: i64,
    prev_hash: Hash32,
    hash: Hash32,
}

/// The head row: the last batch's number, the last record's sequence number, the last hash.
struct StoredHead {
    batch: i64,
    seq: i64,
    hash: Hash32,
}

/// A record as the chain verification reads it.
struct StoredRecord {
    seq: i64,
    batch: i64,
    /// `None` when the stored fields are not a record at all: someone wrote them by hand. It
    /// holds only when the stored account keys are also those the account ids give.
    record: Option<TransferRecord>,
}

/// Reads records in sequence order, a page at a time, up to a bound fixed at the start.
struct RecordPages {
    after_seq: i64,
    last_seq: i64,
    buffer: VecDeque<StoredRecord>,
    exhausted: bool,
}

impl RecordPages {
    /// The next record if its sequence number is at most `seq_max`.
    async fn next_until(&mut self, store: &Store, seq_max: i64) -> Result<Option<StoredRecord>> {
        if self.buffer.is_empty() && !self.exhausted {
            let sql = format!(
                "SELECT seq, batch, debit_account_key, credit_account_key, {RECORD_FIELDS} FROM ledger_records \
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
            );
            let rows = sqlx::query(&sql)
                .bind(self.after_seq)
                .bind(self.last_seq)
                .bind(VERIFY_PAGE_ROWS as i64)
                .fetch_all(store.pool())
                .await
                .map_err(db_error)?;
            self.exhausted = rows.len() < VERIFY_PAGE_ROWS;
            for row in &rows {
                let keys = (
                    get::<i64>(row, "debit_account_key")?,
                    get::<i64>(row, "credit_account_key")?,
                );
                let record = record_from_row(row).ok().filter(|record| {
                    keys == (
                        account_key(record.transfer.debit_account_id),
                        account_key(record.transfer.credit_account_id),
                    )
                });
                let stored = StoredRecord {
                    seq: get(row, "seq")?,
                    batch: get(row, "batch")?,
                    record,
                };
                self.after_seq = stored.seq;
                self.buffer.push_back(stored);
            }
        }
        Ok(match self.buffer.front() {
            Some(stored) if stored.seq <= seq_max => self.buffer.pop_front(),
            _ => None,
        })
    }
}

/// Reads failures in (batch, place in the batch) order, a page at a time, up to a bound batch.
/// Each comes with its batch, and is `None` when its stored fields are not a failure at all.
struct FailurePages {
    after: (i64, i64),
    last_batch: i64,
    buffer: VecDeque<(i64, Option<FailedTransfer>)>,
    exhausted: bool,
}

impl FailurePages {
    /// The next failure (batch, failure) if its batch is at most `batch_max`.
    async fn next_until(
        &mut self,
        store: &Store,
        batch_max: i64,
    ) -> Result<Option<(i64, Option<FailedTransfer>)>> {
        if self.buffer.is_empty() && !self.exhausted {
            let sql = format!(
                "SELECT {FAILURE_COLUMNS} FROM ledger_failures \
                 WHERE (batch > $1 OR (batch = $1 AND batch_index > $2)) AND batch <= $3 \
                 ORDER BY batch, batch_index LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(self.after.0)
                .bind(self.after.1)
                .bind(self.last_batch)
                .bind(VERIFY_PAGE_ROWS as i64)
                .fetch_all(store.pool())
                .await
                .map_err(db_error)?;
            self.exhausted = rows.len() < VERIFY_PAGE_ROWS;
            for row in &rows {
                let batch: i64 = get(row, "batch")?;
                self.buffer.push_back((batch, failure_from_row(row).ok()));
                self.after = (batch, get(row, "batch_index")?);
            }
        }
        Ok(match self.buffer.front() {
            Some((batch, _)) if *batch <= batch_max => self.buffer.pop_front(),
            _ => None,
        })
    }
}

impl Store {
    async fn ledger_head(&self) -> Result<StoredHead> {
        let row = sqlx::query("SELECT batch, seq, hash FROM ledger_head WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(StoredHead {
            batch: get(&row, "batch")?,
            seq: get(&row, "seq")?,
            hash: Hash32::from_slice(&get::<Vec<u8>>(&row, "hash")?)?,
        })
    }

    /// Every account with its current balances, in id order.
    pub async fn ledger_accounts(&self) -> Result<Vec<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts ORDER BY id");
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(account_from_row).collect()
    }

    /// One account with its current balances, if it is stored.
    pub async fn ledger_account(&self, id: AccountId) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Records after `after_seq`, in the order the ledger applied them, with their sequence
    /// numbers: a page of history, for instance to restore the ledger in memory.
    pub async fn ledger_records(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, TransferRecord)>> {
        let sql = format!(
            "SELECT seq, {RECORD_FIELDS} FROM ledger_records WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((get(row, "seq")?, record_from_row(row)?)))
            .collect()
    }

    /// Every failed transfer id, in the order the failures were written.
    pub async fn ledger_failures(&self) -> Result<Vec<FailedTransfer>> {
        let sql =
            format!("SELECT {FAILURE_COLUMNS} FROM ledger_failures ORDER BY batch, batch_index");
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(failure_from_row).collect()
    }

    /// The record of a client's transfer (not of its expiry), if it was applied.
    pub async fn ledger_transfer(&self, id: TransferId) -> Result<Option<TransferRecord>> {
        let sql = format!(
            "SELECT {RECORD_FIELDS} FROM ledger_records WHERE transfer_id = $1 AND cause = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(cause_text(RecordCause::Transfer))
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// An account's balances as of `at`: `None` if the account did not exist yet (or at all),
    /// zero if it existed but nothing had moved, else its balances right after the latest record
    /// at or before `at` that touched it, on either side.
    pub async fn balance_as_of(
        &self,
        account_id: AccountId,
        at: Timestamp,
    ) -> Result<Option<Balances>> {
        let id = account_id.to_string();
        let created = sqlx::query("SELECT created_at_us FROM ledger_accounts WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        let Some(created) = created else {
            return Ok(None);
        };
        if Timestamp::from_micros(get(&created, "created_at_us")?) > at {
            return Ok(None);
        }
        // The latest record on each side, through its (account key, time) index; then the later of the two.
        let side = |side: &str| {
            format!(
                "SELECT * FROM (SELECT timestamp_us, {side}_debits_pending AS debits_pending, \
                 {side}_debits_posted AS debits_posted, {side}_credits_pending AS credits_pending, \
                 {side}_credits_posted AS credits_posted FROM ledger_records \
                 WHERE {side}_account_key = $1 AND {side}_account_id = $2 AND timestamp_us <= $3 \
                 ORDER BY timestamp_us DESC LIMIT 1) AS {side}_side"
            )
        };
        let sql = format!(
            "{} UNION ALL {} ORDER BY timestamp_us DESC LIMIT 1",
            side("debit"),
            side("credit")
        );
        let latest = sqlx::query(&sql)
            .bind(account_key(account_id))
            .bind(id.as_str())
            .bind(at.as_micros())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        match latest {
            Some(row) => balances_from_row(&row, "").map(Some),
            None => Ok(Some(Balances::default())),
        }
    }

    /// Recomputes every batch's hash from its stored records and failures and checks every link,
    /// up to the head as it is when the check starts (batches committed meanwhile are left for
    /// the next check). Returns the number of the last batch (0 for an empty ledger), or where the
    /// chain first breaks. Reads a page at a time: memory stays bounded by one batch.
    pub async fn verify_ledger_chain(&self) -> Result<Result<i64, LedgerChainBreak>> {
        let head = self.ledger_head().await?;
        let mut records = RecordPages {
            after_seq: 0,
            last_seq: head.seq,
            buffer: VecDeque::new(),
            exhausted: false,
        };
        let mut failures = FailurePages {
            after: (0, -1),
            last_batch: head.batch,
            buffer: VecDeque::new(),
            exhausted: false,
        };
        let mut previous = StoredHead {
            batch: 0,
            seq: 0,
            hash: Hash32::GENESIS,
        };
        loop {
            let rows = sqlx::query(
                "SELECT batch, first_seq, last_seq, record_count, failure_count, prev_hash, hash FROM ledger_batches \
                 WHERE batch > $1 AND batch <= $2 ORDER BY batch LIMIT $3",
            )
            .bind(previous.batch)
            .bind(head.batch)
            .bind(VERIFY_PAGE_ROWS as i64)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let stored = StoredBatch {
                    batch: get(row, "batch")?,
                    first_seq: get(row, "first_seq")?,
                    last_seq: get(row, "last_seq")?,
                    record_count: get(row, "record_count")?,
                    failure_count: get(row, "failure_count")?,
                    prev_hash: Hash32::from_slice(&get::<Vec<u8>>(row, "prev_hash")?)?,
                    hash: Hash32::from_slice(&get::<Vec<u8>>(row, "hash")?)?,
                };
                if stored.batch != previous.batch + 1 {
                    return Ok(Err(LedgerChainBreak::Missing {
                        batch: previous.batch + 1,
                    }));
                }
                if stored.prev_hash != previous.hash {
                    return Ok(Err(LedgerChainBreak::Unlinked {
                        batch: stored.batch,
                    }));
                }
                let edited = Err(LedgerChainBreak::Edited {
                    batch: stored.batch,
                });
                if stored.first_seq != previous.seq + 1
                    || stored.last_seq - stored.first_seq + 1 != stored.record_count
                {
                    return Ok(edited);
                }
                // Every stored record up to the batch's last sequence number belongs to it, in
                // order and without gaps; a missing, extra or moved record is a change to it.
                let mut batch_records = Vec::new();
                while let Some(record) = records.next_until(self, stored.last_seq).await? {
                    match record.record {
                        Some(content)
                            if record.batch == stored.batch
                                && record.seq == stored.first_seq + batch_records.len() as i64 =>
                        {
                            batch_records.push(content);
                        }
                        _ => return Ok(edited),
                    }
                }
                let mut batch_failures = Vec::new();
                while let Some((batch, failure)) = failures.next_until(self, stored.batch).await? {
                    match failure {
                        Some(failure) if batch == stored.batch => batch_failures.push(failure),
                        // Unreadable, or of a batch before this one yet not read with it (moved
                        // or inserted): this is where the stored rows stop matching the chain.
                        _ => return Ok(edited),
                    }
                }
                if batch_records.len() as i64 != stored.record_count
                    || batch_failures.len() as i64 != stored.failure_count
                    || batch_hash(
                        &stored.prev_hash,
                        stored.batch,
                        &batch_records,
                        &batch_failures,
                    ) != stored.hash
                {
                    return Ok(edited);
                }
                previous = StoredHead {
                    batch: stored.batch,
                    seq: stored.last_seq,
                    hash: stored.hash,
                };
            }
        }
        if previous.batch < head.batch {
            return Ok(Err(LedgerChainBreak::Missing {
                batch: previous.batch + 1,
            }));
        }
        let head_mismatch = Ok(Err(LedgerChainBreak::HeadMismatch {
            batch: previous.batch,
        }));
        if previous.seq != head.seq || previous.hash != head.hash {
            return head_mismatch;
        }
        // Rows past the head belong to no batch. The highest numbers are read before the head is
        // read again, so that a batch committed in between cannot pass for such a row.
        let highest = sqlx::query(
            "SELECT (SELECT MAX(seq) FROM ledger_records) AS record_seq, \
             (SELECT MAX(batch) FROM ledger_failures) AS failure_batch, \
             (SELECT MAX(batch) FROM ledger_batches) AS batch",
        )
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        let head_now = self.ledger_head().await?;
        let beyond = |name: &str, bound: i64| -> Result<bool> {
            Ok(get::<Option<i64>>(&highest, name)?.is_some_and(|highest| highest > bound))
        };
        if beyond("record_seq", head_now.seq)?
            || beyond("failure_batch", head_now.batch)?
            || beyond("batch", head_now.batch)?
        {
            return head_mismatch;
        }
        Ok(Ok(previous.batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_take_full_chunks_then_powers_of_two() {
        let sizes = |total: usize, rows_max: usize| -> Vec<usize> {
            statement_chunks(&vec![(); total], rows_max)
                .map(<[()]>::len)
                .collect()
        };
        assert_eq!(sizes(0, 1_310), Vec::<usize>::new());
        assert_eq!(sizes(1, 1_310), [1]);
        assert_eq!(sizes(100, 1_310), [64, 32, 4]);
        assert_eq!(
            sizes(8_190, 1_310),
            [1_310, 1_310, 1_310, 1_310, 1_310, 1_310, 256, 64, 8, 2]
        );
        assert_eq!(sizes(2_620, 1_310), [1_310, 1_310]);
    }

    #[test]
    fn statements_number_their_parameters_where_they_must() {
        let numbered = multi_row_insert(
            Placeholders::Numbered,
            "t",
            "a, b",
            2,
            2,
            "ON CONFLICT DO NOTHING",
        );
        assert_eq!(
            numbered,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        let anonymous = multi_row_insert(Placeholders::Anonymous, "t", "a, b", 2, 2, "");
        assert_eq!(anonymous, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ");
    }
}
