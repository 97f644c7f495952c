//! The ledger's durable history: accounts with their balances, every batch the single writer
//! commits as one compact row, each account's balances after every batch that touched it, every
//! transfer id the ledger answered for, and a hash chain over the batches.
//!
//! A batch's records and failures are stored as one fixed-width binary body, the very bytes its
//! hash covers (`encode_batch_body`): a batch of 8,190 transfers is one row of 1.3 MB plus about one
//! narrow balance row per account it touched and one 16-byte id per transfer, written with a
//! handful of multi-row statements, so that the fsync of the commit, not the database's per-row
//! work, is the limit. Each batch row carries `batch_body_hash(previous hash, batch, body)`, so
//! that editing, removing or reordering anything written breaks the chain at that batch; the
//! rows derived from the bodies (balances, ids) are checked against them
//! ([`Store::verify_ledger_chain`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use agora_domain::audit::Hash32;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Balances, FailedTransfer, RecordCause, TransferId,
    TransferRecord, batch_body_hash, decode_batch_body, encode_batch_body,
};
use agora_domain::{Error, Result, Timestamp};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use crate::{Store, WriteTx, column, db_error, get};

/// The most bind parameters one statement carries: SQLite's limit (PostgreSQL's is 65,535).
const BIND_PARAMETERS_MAX: usize = 32_766;

/// Batches read per query when records, failures or the chain are read back: a body holds up to
/// 8,190 records of 164 bytes, so this bounds one page to about 10 MB.
const BATCH_PAGE_ROWS: i64 = 8;

const ACCOUNT_COLUMNS: &str = "id, currency, code, balance_limit, debits_pending, debits_posted, \
     credits_pending, credits_posted, created_at_us";
const ACCOUNT_COLUMN_COUNT: usize = 9;

const BALANCE_COLUMNS: &str = "batch, account_id, ordinal, prev_batch, first_timestamp_us, \
     last_timestamp_us, debits_pending, debits_posted, credits_pending, credits_posted";
const BALANCE_COLUMN_COUNT: usize = 10;

/// Every this many rows of an account's balance chain, one is marked in `ledger_balance_marks`:
/// the most rows `balance_as_of` follows back. Stored marks depend on it: it must never change.
const BALANCE_MARK_EVERY: i64 = 16;

const BATCH_COLUMNS: &str = "batch, first_seq, last_seq, record_count, failure_count, \
     first_timestamp_us, last_timestamp_us, prev_hash, hash, body";

/// One batch as the writer hands it over, after applying it in memory.
#[derive(Debug, Clone, Copy)]
pub struct LedgerBatch<'a> {
    /// The changes, in the order the ledger applied them; timestamps strictly increase, beyond
    /// every earlier batch's.
    pub records: &'a [TransferRecord],
    /// Transfer ids that failed in this batch; an id is written as failed once.
    pub failures: &'a [FailedTransfer],
    /// The accounts the batch touched, each once, with their balances after the batch: at least
    /// every account its records move. Only the balances of an existing account are updated; an
    /// account not yet stored is inserted whole.
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
    /// The batch's records or failures are not those it was written with (edited, added,
    /// removed, renumbered or reordered), or the rows derived from them (balances after it and
    /// their chains and marks, answered ids, where an account's chain ends) are not what they give.
    Edited { batch: i64 },
    /// The batch's row is gone: the numbers jump past it, or the chain ends before the head.
    Missing { batch: i64 },
    /// The batch's previous hash is not the hash of the batch before it.
    Unlinked { batch: i64 },
    /// The chain is intact up to this batch, its last, but the head row does not point at it,
    /// or batches, balances, marks or answered ids are stored past it (or before the first).
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
                "ledger batch {batch} was changed: its records, its failures or the rows derived from them no longer match its hash"
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

/// Where an account's balance chain ends: the batch of its latest row, and how many it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ChainEnd {
    batch: Option<i64>,
    count: i64,
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

/// An account's balances after one batch, as a row of `ledger_balances`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BalanceRow {
    account_id: [u8; 16],
    ordinal: i64,
    prev_batch: Option<i64>,
    first_timestamp_us: i64,
    last_timestamp_us: i64,
    balances: (i64, i64, i64, i64),
}

impl BalanceRow {
    fn balances(&self) -> Balances {
        let (debits_pending, debits_posted, credits_pending, credits_posted) = self.balances;
        Balances {
            debits_pending,
            debits_posted,
            credits_pending,
            credits_posted,
        }
    }

    fn marked(&self) -> bool {
        self.ordinal % BALANCE_MARK_EVERY == 0
    }
}

fn balance_tuple(balances: &Balances) -> (i64, i64, i64, i64) {
    (
        balances.debits_pending,
        balances.debits_posted,
        balances.credits_pending,
        balances.credits_posted,
    )
}

/// The balance rows a batch's records give: one per account they touch, in the order of first
/// touch, with the times of its first and last record there and the balances after its last,
/// not linked yet (see [`link_balance_rows`]).
fn balance_rows(records: &[TransferRecord]) -> Vec<(AccountId, BalanceRow)> {
    let mut rows: Vec<(AccountId, BalanceRow)> = Vec::new();
    let mut places: HashMap<AccountId, usize> = HashMap::new();
    for record in records {
        let at = record.timestamp.as_micros();
        for (account_id, after) in [
            (record.transfer.debit_account_id, &record.debit_after),
            (record.transfer.credit_account_id, &record.credit_after),
        ] {
            match places.entry(account_id) {
                std::collections::hash_map::Entry::Occupied(place) => {
                    let row = &mut rows[*place.get()].1;
                    row.last_timestamp_us = at;
                    row.balances = balance_tuple(after);
                }
                std::collections::hash_map::Entry::Vacant(place) => {
                    place.insert(rows.len());
                    rows.push((
                        account_id,
                        BalanceRow {
                            account_id: account_id.as_uuid().into_bytes(),
                            ordinal: 0,
                            prev_batch: None,
                            first_timestamp_us: at,
                            last_timestamp_us: at,
                            balances: balance_tuple(after),
                        },
                    ));
                }
            }
        }
    }
    rows
}

/// Links a batch's balance rows to the ends of their accounts' chains in `ends`, and moves
/// those ends past them: what the append does in SQL, for the verification to compare with.
fn link_balance_rows(
    batch: i64,
    rows: Vec<(AccountId, BalanceRow)>,
    ends: &mut HashMap<[u8; 16], ChainEnd>,
) -> Vec<BalanceRow> {
    rows.into_iter()
        .map(|(_, mut row)| {
            let end = ends.entry(row.account_id).or_default();
            row.ordinal = end.count + 1;
            row.prev_batch = end.batch;
            *end = ChainEnd {
                batch: Some(batch),
                count: row.ordinal,
            };
            row
        })
        .collect()
}

/// The ids a batch answers for durably: its clients' applied transfers (not expiries) and its failures.
fn answered_ids(records: &[TransferRecord], failures: &[FailedTransfer]) -> Vec<[u8; 16]> {
    records
        .iter()
        .filter(|record| record.cause == RecordCause::Transfer)
        .map(|record| record.transfer.id)
        .chain(failures.iter().map(|failure| failure.id))
        .map(|id| id.as_uuid().into_bytes())
        .collect()
}

impl WriteTx {
    /// Stores new accounts; an account whose id is already stored is left as it is.
    pub async fn insert_ledger_accounts(&mut self, accounts: &[Account]) -> Result<()> {
        write_accounts(self.conn(), accounts, "ON CONFLICT (id) DO NOTHING").await
    }

    /// Appends one batch at the end of the ledger's history: its body with its link in the chain,
    /// the balances after it of every account it touched, the ids it answered for, and the
    /// touched accounts' current balances. Its records take the next sequence numbers.
    ///
    /// The head row is updated first, which serializes appends (a row lock on PostgreSQL until
    /// commit; SQLite has a single writer anyway): batch and sequence numbers are consecutive,
    /// and the previous hash read here is the one committed just before.
    /// Checks, under the ledger head's row lock (held to the end of this transaction), that
    /// `epoch` is still the ledger writer's epoch; refuses with `Conflict` when a later writer
    /// claimed the ledger. Call it before appending in the same transaction.
    pub async fn fence_ledger_writer(&mut self, epoch: i64) -> Result<()> {
        let held = sqlx::query(
            "UPDATE ledger_head SET writer_epoch = writer_epoch WHERE id = 1 AND writer_epoch = $1",
        )
        .bind(epoch)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if held.rows_affected() != 1 {
            return Err(Error::Conflict(format!(
                "another ledger writer claimed this ledger after this one (epoch {epoch}); this writer stops: run one server per database"
            )));
        }
        Ok(())
    }

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
                format!(
                    "account {twice} appears twice in one ledger batch",
                    twice = twice.id
                ),
            ));
        }
        if let Some(missing) = batch.records.iter().find_map(|record| {
            [
                record.transfer.debit_account_id,
                record.transfer.credit_account_id,
            ]
            .into_iter()
            .find(|id| !touched.contains(id))
        }) {
            return Err(Error::invalid(
                "accounts",
                format!(
                    "account {missing} moves in the ledger batch but its balances are not handed over"
                ),
            ));
        }
        if let Some(pair) = batch
            .records
            .windows(2)
            .find(|pair| pair[1].timestamp <= pair[0].timestamp)
        {
            return Err(not_later(&pair[1]));
        }
        let record_count =
            i64::try_from(batch.records.len()).expect("a slice's length fits in i64");
        let failure_count =
            i64::try_from(batch.failures.len()).expect("a slice's length fits in i64");
        let head = sqlx::query(
            "UPDATE ledger_head SET batch = batch + 1, seq = seq + $1 WHERE id = 1 \
             RETURNING batch, seq, hash, timestamp_us",
        )
        .bind(record_count)
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        let number: i64 = get(&head, "batch")?;
        let last_seq: i64 = get(&head, "seq")?;
        let prev_hash = Hash32::from_slice(&get::<Vec<u8>>(&head, "hash")?)?;
        let head_timestamp: Option<i64> = get(&head, "timestamp_us")?;
        if let (Some(first), Some(latest)) = (batch.records.first(), head_timestamp)
            && first.timestamp.as_micros() <= latest
        {
            return Err(not_later(first));
        }
        let first_seq = last_seq - record_count + 1;
        let first_timestamp = batch.records.first().map(|r| r.timestamp.as_micros());
        let last_timestamp = batch.records.last().map(|r| r.timestamp.as_micros());
        let body = encode_batch_body(batch.records, batch.failures);
        let hash = batch_body_hash(&prev_hash, number, &body);
        sqlx::query(
            "UPDATE ledger_head SET hash = $1, timestamp_us = COALESCE($2, timestamp_us) WHERE id = 1",
        )
        .bind(hash.0.to_vec())
        .bind(last_timestamp)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        sqlx::query(&format!(
            "INSERT INTO ledger_batches ({BATCH_COLUMNS}, committed_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(number)
        .bind(first_seq)
        .bind(last_seq)
        .bind(record_count)
        .bind(failure_count)
        .bind(first_timestamp)
        .bind(last_timestamp)
        .bind(prev_hash.0.to_vec())
        .bind(hash.0.to_vec())
        .bind(body)
        .bind(Timestamp::now().as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;

        let placeholders = Placeholders::of(self.conn());
        // The rows go in as first rows of their chains; one statement each then links them to
        // where ledger_balance_ends says their chains ended, moves those ends past them, and
        // marks every BALANCE_MARK_EVERY-th: set-based, so each costs a lookup per row inside
        // the database rather than parameters or round trips.
        let rows = balance_rows(batch.records);
        for chunk in statement_chunks(&rows, BIND_PARAMETERS_MAX / BALANCE_COLUMN_COUNT) {
            let sql = multi_row_insert(
                placeholders,
                "ledger_balances",
                BALANCE_COLUMNS,
                BALANCE_COLUMN_COUNT,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for (_, row) in chunk {
                query = query
                    .bind(number)
                    .bind(row.account_id.to_vec())
                    .bind(1_i64)
                    .bind(None::<i64>)
                    .bind(row.first_timestamp_us)
                    .bind(row.last_timestamp_us)
                    .bind(row.balances.0)
                    .bind(row.balances.1)
                    .bind(row.balances.2)
                    .bind(row.balances.3);
            }
            query.execute(self.conn()).await.map_err(db_error)?;
        }
        for sql in [
            "UPDATE ledger_balances SET \
             ordinal = 1 + COALESCE((SELECT e.row_count FROM ledger_balance_ends e \
                 WHERE e.account_id = ledger_balances.account_id), 0), \
             prev_batch = (SELECT e.batch FROM ledger_balance_ends e \
                 WHERE e.account_id = ledger_balances.account_id) \
             WHERE batch = $1"
                .to_owned(),
            "INSERT INTO ledger_balance_ends (account_id, batch, row_count) \
             SELECT account_id, batch, ordinal FROM ledger_balances WHERE batch = $1 \
             ON CONFLICT (account_id) DO UPDATE SET batch = excluded.batch, row_count = excluded.row_count"
                .to_owned(),
            format!(
                "INSERT INTO ledger_balance_marks (account_id, first_timestamp_us, batch) \
                 SELECT account_id, first_timestamp_us, batch FROM ledger_balances \
                 WHERE batch = $1 AND ordinal % {BALANCE_MARK_EVERY} = 0"
            ),
        ] {
            sqlx::query(&sql)
                .bind(number)
                .execute(self.conn())
                .await
                .map_err(db_error)?;
        }

        let ids = answered_ids(batch.records, batch.failures);
        for chunk in statement_chunks(&ids, BIND_PARAMETERS_MAX / 2) {
            let sql = multi_row_insert(
                placeholders,
                "ledger_transfer_ids",
                "transfer_id, batch",
                2,
                chunk.len(),
                "",
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.to_vec()).bind(number);
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

fn not_later(record: &TransferRecord) -> Error {
    Error::Conflict(format!(
        "the record of {} is not later than the record before it",
        record.transfer.id
    ))
}

/// A batch's row as stored. Hashes stay raw bytes: one of the wrong length is an edit to report,
/// not an error.
struct StoredBatch {
    batch: i64,
    first_seq: i64,
    last_seq: i64,
    record_count: i64,
    failure_count: i64,
    first_timestamp_us: Option<i64>,
    last_timestamp_us: Option<i64>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    body: Vec<u8>,
}

impl StoredBatch {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            batch: get(row, "batch")?,
            first_seq: get(row, "first_seq")?,
            last_seq: get(row, "last_seq")?,
            record_count: get(row, "record_count")?,
            failure_count: get(row, "failure_count")?,
            first_timestamp_us: get(row, "first_timestamp_us")?,
            last_timestamp_us: get(row, "last_timestamp_us")?,
            prev_hash: get(row, "prev_hash")?,
            hash: get(row, "hash")?,
            body: get(row, "body")?,
        })
    }

    /// The records and failures of the body; an error if it does not decode.
    fn decode(&self) -> Result<(Vec<TransferRecord>, Vec<FailedTransfer>)> {
        decode_batch_body(&self.body)
            .map_err(|e| Error::Internal(format!("ledger batch {}: {e}", self.batch)))
    }
}

/// The head row: the last batch's number, the last record's sequence number, the last hash.
struct StoredHead {
    batch: i64,
    seq: i64,
    hash: Hash32,
}

fn balance_row(row: &AnyRow) -> Result<Option<BalanceRow>> {
    let account_id: Vec<u8> = get(row, "account_id")?;
    let Ok(account_id) = <[u8; 16]>::try_from(account_id.as_slice()) else {
        return Ok(None);
    };
    Ok(Some(BalanceRow {
        account_id,
        ordinal: get(row, "ordinal")?,
        prev_batch: get(row, "prev_batch")?,
        first_timestamp_us: get(row, "first_timestamp_us")?,
        last_timestamp_us: get(row, "last_timestamp_us")?,
        balances: (
            get(row, "debits_pending")?,
            get(row, "debits_posted")?,
            get(row, "credits_pending")?,
            get(row, "credits_posted")?,
        ),
    }))
}

impl Store {
    /// Claims the ledger for a new writer: raises the writer epoch and returns it. Every writer
    /// that claimed it before is fenced out from its next append on.
    pub async fn claim_ledger_writer(&self) -> Result<i64> {
        let mut tx = self.write_ledger().await?;
        let row = sqlx::query(
            "UPDATE ledger_head SET writer_epoch = writer_epoch + 1 WHERE id = 1 RETURNING writer_epoch",
        )
        .fetch_one(tx.conn())
        .await
        .map_err(db_error)?;
        let epoch: i64 = get(&row, "writer_epoch")?;
        tx.commit().await?;
        Ok(epoch)
    }

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

    async fn ledger_batch(&self, batch: i64) -> Result<StoredBatch> {
        let row = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM ledger_batches WHERE batch = $1"
        ))
        .bind(batch)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?
        .ok_or_else(|| Error::Internal(format!("ledger batch {batch} is not stored")))?;
        StoredBatch::from_row(&row)
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
        let limit = limit as usize;
        let mut page = Vec::new();
        // Batches with records have strictly increasing last sequence numbers.
        let mut after_last_seq = after_seq;
        while page.len() < limit {
            let rows = sqlx::query(&format!(
                "SELECT {BATCH_COLUMNS} FROM ledger_batches WHERE last_seq > $1 AND record_count > 0 \
                 ORDER BY last_seq LIMIT $2"
            ))
            .bind(after_last_seq)
            .bind(BATCH_PAGE_ROWS)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
            for row in &rows {
                let stored = StoredBatch::from_row(row)?;
                let (records, _) = stored.decode()?;
                let numbered = (stored.first_seq..).zip(records);
                page.extend(
                    numbered
                        .filter(|(seq, _)| *seq > after_seq)
                        .take(limit - page.len()),
                );
                after_last_seq = stored.last_seq;
                if page.len() == limit {
                    break;
                }
            }
            if rows.len() < BATCH_PAGE_ROWS as usize {
                break;
            }
        }
        Ok(page)
    }

    /// Every failed transfer id, in the order the failures were written.
    pub async fn ledger_failures(&self) -> Result<Vec<FailedTransfer>> {
        let mut failures = Vec::new();
        let mut after_batch = 0;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {BATCH_COLUMNS} FROM ledger_batches WHERE batch > $1 AND failure_count > 0 \
                 ORDER BY batch LIMIT $2"
            ))
            .bind(after_batch)
            .bind(BATCH_PAGE_ROWS)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
            for row in &rows {
                let stored = StoredBatch::from_row(row)?;
                failures.extend(stored.decode()?.1);
                after_batch = stored.batch;
            }
            if rows.len() < BATCH_PAGE_ROWS as usize {
                return Ok(failures);
            }
        }
    }

    /// The record of a client's transfer (not of its expiry), if it was applied.
    pub async fn ledger_transfer(&self, id: TransferId) -> Result<Option<TransferRecord>> {
        let found = sqlx::query("SELECT batch FROM ledger_transfer_ids WHERE transfer_id = $1")
            .bind(id.as_uuid().as_bytes().to_vec())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        let Some(found) = found else {
            return Ok(None);
        };
        let (records, _) = self.ledger_batch(get(&found, "batch")?).await?.decode()?;
        // A failed id is stored too, and has no record.
        Ok(records
            .into_iter()
            .find(|record| record.transfer.id == id && record.cause == RecordCause::Transfer))
    }

    /// An account's balances as of `at`: `None` if the account did not exist yet (or at all),
    /// zero if it existed but nothing had moved, else its balances right after the latest record
    /// at or before `at` that touched it, on either side.
    pub async fn balance_as_of(
        &self,
        account_id: AccountId,
        at: Timestamp,
    ) -> Result<Option<Balances>> {
        let account = sqlx::query("SELECT created_at_us FROM ledger_accounts WHERE id = $1")
            .bind(account_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        let Some(account) = account else {
            return Ok(None);
        };
        if Timestamp::from_micros(get(&account, "created_at_us")?) > at {
            return Ok(None);
        }
        let id_bytes = account_id.as_uuid().as_bytes().to_vec();
        // The account's rows are chained backwards from its latest; the first mark after `at`
        // is at most BALANCE_MARK_EVERY rows past the row that answers, and so is the latest row
        // when no mark comes after `at`.
        let mark = sqlx::query(
            "SELECT batch FROM ledger_balance_marks WHERE account_id = $1 AND first_timestamp_us > $2 \
             ORDER BY first_timestamp_us LIMIT 1",
        )
        .bind(id_bytes.as_slice())
        .bind(at.as_micros())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        let start = match mark {
            Some(mark) => Some(mark),
            None => sqlx::query("SELECT batch FROM ledger_balance_ends WHERE account_id = $1")
                .bind(id_bytes.as_slice())
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?,
        };
        let mut next = start.map(|start| get::<i64>(&start, "batch")).transpose()?;
        let broken = |what: &str| {
            Error::Internal(format!(
                "the balance chain of account {account_id} is broken: {what}"
            ))
        };
        for _ in 0..=BALANCE_MARK_EVERY {
            let Some(batch) = next else {
                // Nothing moved on the account at or before `at`.
                return Ok(Some(Balances::default()));
            };
            let row = sqlx::query(&format!(
                "SELECT {BALANCE_COLUMNS} FROM ledger_balances WHERE batch = $1 AND account_id = $2"
            ))
            .bind(batch)
            .bind(id_bytes.as_slice())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?
            .ok_or_else(|| broken(&format!("batch {batch} holds no row of it")))?;
            let row = balance_row(&row)?.ok_or_else(|| broken("a malformed account id"))?;
            if row.first_timestamp_us > at.as_micros() {
                next = row.prev_batch;
                continue;
            }
            if row.last_timestamp_us <= at.as_micros() {
                return Ok(Some(row.balances()));
            }
            // `at` falls inside that batch: its last record at or before `at` on the account says.
            let (records, _) = self.ledger_batch(batch).await?.decode()?;
            return records
                .iter()
                .rev()
                .filter(|record| record.timestamp <= at)
                .find_map(|record| {
                    if record.transfer.debit_account_id == account_id {
                        Some(record.debit_after)
                    } else if record.transfer.credit_account_id == account_id {
                        Some(record.credit_after)
                    } else {
                        None
                    }
                })
                .map(Some)
                .ok_or_else(|| {
                    broken(&format!("batch {batch} does not move it when its row says"))
                });
        }
        Err(broken("longer than its marks allow"))
    }

    /// Recomputes every batch's hash from its stored body and checks every link, and that the
    /// rows derived from the bodies (balances after each batch with their chains and marks,
    /// answered ids, where each account's chain ends) are exactly what the bodies give, up to the
    /// head as it is when the check starts (batches committed meanwhile are left for the next
    /// check). Returns the number of the last batch (0 for an empty ledger), or where the chain
    /// first breaks. Reads a few batches at a time: memory stays bounded by a page of batches
    /// and one entry per account.
    pub async fn verify_ledger_chain(&self) -> Result<Result<i64, LedgerChainBreak>> {
        let head = self.ledger_head().await?;
        let mut ends: HashMap<[u8; 16], ChainEnd> = HashMap::new();
        let mut previous = StoredHead {
            batch: 0,
            seq: 0,
            hash: Hash32::GENESIS,
        };
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {BATCH_COLUMNS} FROM ledger_batches \
                 WHERE batch > $1 AND batch <= $2 ORDER BY batch LIMIT $3"
            ))
            .bind(previous.batch)
            .bind(head.batch)
            .bind(BATCH_PAGE_ROWS)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let stored = match StoredBatch::from_row(row) {
                    Ok(stored) => stored,
                    // A column of the wrong type (text where bytes belong): written by hand.
                    Err(_) => {
                        return Ok(Err(LedgerChainBreak::Edited {
                            batch: get(row, "batch")?,
                        }));
                    }
                };
                if stored.batch != previous.batch + 1 {
                    return Ok(Err(LedgerChainBreak::Missing {
                        batch: previous.batch + 1,
                    }));
                }
                if stored.prev_hash != previous.hash.0 {
                    return Ok(Err(LedgerChainBreak::Unlinked {
                        batch: stored.batch,
                    }));
                }
                let edited = Err(LedgerChainBreak::Edited {
                    batch: stored.batch,
                });
                let hash = batch_body_hash(&previous.hash, stored.batch, &stored.body);
                if stored.hash != hash.0 {
                    return Ok(edited);
                }
                let Ok((records, failures)) = stored.decode() else {
                    return Ok(edited);
                };
                if stored.first_seq != previous.seq + 1
                    || stored.last_seq - stored.first_seq + 1 != stored.record_count
                    || stored.record_count != records.len() as i64
                    || stored.failure_count != failures.len() as i64
                    || stored.first_timestamp_us != records.first().map(|r| r.timestamp.as_micros())
                    || stored.last_timestamp_us != records.last().map(|r| r.timestamp.as_micros())
                {
                    return Ok(edited);
                }
                if !self
                    .derived_rows_match(stored.batch, &records, &failures, &mut ends)
                    .await?
                {
                    return Ok(edited);
                }
                previous = StoredHead {
                    batch: stored.batch,
                    seq: stored.last_seq,
                    hash,
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
        if let Some(batch) = self.chain_ends_differ(&ends, previous.batch).await? {
            return Ok(Err(LedgerChainBreak::Edited { batch }));
        }
        // Rows past the head belong to no batch, and rows before the first batch to none either.
        // The highest numbers are read before the head is read again, so that a batch committed
        // in between cannot pass for such a row.
        let extremes = sqlx::query(
            "SELECT (SELECT MAX(batch) FROM ledger_batches) AS batch, \
             (SELECT MAX(batch) FROM ledger_balances) AS balance_batch, \
             (SELECT MAX(batch) FROM ledger_transfer_ids) AS id_batch, \
             (SELECT MAX(batch) FROM ledger_balance_marks) AS mark_batch, \
             (SELECT MIN(batch) FROM ledger_balances) AS balance_batch_min, \
             (SELECT MIN(batch) FROM ledger_transfer_ids) AS id_batch_min, \
             (SELECT MIN(batch) FROM ledger_balance_marks) AS mark_batch_min",
        )
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        let head_now = self.ledger_head().await?;
        let beyond = |name: &str, bound: i64| -> Result<bool> {
            Ok(get::<Option<i64>>(&extremes, name)?.is_some_and(|highest| highest > bound))
        };
        let before_first = |name: &str| -> Result<bool> {
            Ok(get::<Option<i64>>(&extremes, name)?.is_some_and(|lowest| lowest < 1))
        };
        if beyond("batch", head_now.batch)?
            || beyond("balance_batch", head_now.batch)?
            || beyond("id_batch", head_now.batch)?
            || beyond("mark_batch", head_now.batch)?
            || before_first("balance_batch_min")?
            || before_first("id_batch_min")?
            || before_first("mark_batch_min")?
        {
            return head_mismatch;
        }
        Ok(Ok(previous.batch))
    }

    /// Whether the balance rows, their marks and the id rows stored for a batch are exactly those
    /// its records and failures give, with the balance rows linked to the ends of their
    /// accounts' chains in `ends`, which are moved past them.
    async fn derived_rows_match(
        &self,
        batch: i64,
        records: &[TransferRecord],
        failures: &[FailedTransfer],
        ends: &mut HashMap<[u8; 16], ChainEnd>,
    ) -> Result<bool> {
        let rows = sqlx::query(&format!(
            "SELECT {BALANCE_COLUMNS} FROM ledger_balances WHERE batch = $1"
        ))
        .bind(batch)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        let mut stored = Vec::with_capacity(rows.len());
        for row in &rows {
            match balance_row(row)? {
                Some(row) => stored.push(row),
                None => return Ok(false),
            }
        }
        let mut expected = link_balance_rows(batch, balance_rows(records), ends);
        stored.sort_unstable();
        expected.sort_unstable();
        if stored != expected {
            return Ok(false);
        }

        let rows = sqlx::query(
            "SELECT account_id, first_timestamp_us FROM ledger_balance_marks WHERE batch = $1",
        )
        .bind(batch)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        let mut stored = rows
            .iter()
            .map(|row| {
                Ok((
                    get::<Vec<u8>>(row, "account_id")?,
                    get::<i64>(row, "first_timestamp_us")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut expected: Vec<(Vec<u8>, i64)> = expected
            .iter()
            .filter(|row| row.marked())
            .map(|row| (row.account_id.to_vec(), row.first_timestamp_us))
            .collect();
        stored.sort_unstable();
        expected.sort_unstable();
        if stored != expected {
            return Ok(false);
        }

        let rows = sqlx::query("SELECT transfer_id FROM ledger_transfer_ids WHERE batch = $1")
            .bind(batch)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let mut stored = rows
            .iter()
            .map(|row| get::<Vec<u8>>(row, "transfer_id"))
            .collect::<Result<Vec<_>>>()?;
        let mut expected: Vec<Vec<u8>> = answered_ids(records, failures)
            .iter()
            .map(|id| id.to_vec())
            .collect();
        stored.sort_unstable();
        expected.sort_unstable();
        Ok(stored == expected)
    }

    /// Where each stored account's balance chain ends, against `ends`, what the batches up to
    /// `last_batch` give: the batch of the first disagreement, if any. An account moved by a
    /// later batch, committed since the verification started, is left for the next one.
    async fn chain_ends_differ(
        &self,
        ends: &HashMap<[u8; 16], ChainEnd>,
        last_batch: i64,
    ) -> Result<Option<i64>> {
        let rows = sqlx::query("SELECT account_id, batch, row_count FROM ledger_balance_ends")
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let mut seen = 0;
        for row in &rows {
            let stored = ChainEnd {
                batch: get(row, "batch")?,
                count: get(row, "row_count")?,
            };
            let expected = <[u8; 16]>::try_from(get::<Vec<u8>>(row, "account_id")?.as_slice())
                .ok()
                .and_then(|id| ends.get(&id).copied());
            if expected.is_some() {
                seen += 1;
            }
            if stored.batch.is_some_and(|batch| batch > last_batch) {
                continue;
            }
            if Some(stored) != expected {
                return Ok(Some(
                    expected
                        .and_then(|end| end.batch)
                        .or(stored.batch)
                        .unwrap_or(last_batch)
                        .clamp(1, last_batch.max(1)),
                ));
            }
        }
        if seen != ends.len() {
            // An account whose chain the history holds has no end stored.
            return Ok(Some(last_batch.max(1)));
        }
        Ok(None)
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
