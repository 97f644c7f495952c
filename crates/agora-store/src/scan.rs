//! Long scans in sequence order, for verification: on SQLite a synchronous reader on a blocking
//! thread, since handing each row across sqlx's worker-thread channel costs more than reading it;
//! on PostgreSQL pages of rows through the pool.

use std::ops::ControlFlow;

use agora_domain::audit::{AuditEntry, AuditRecord, Hash32, Outcome};
use agora_domain::{Error, Result, Timestamp};

use crate::{AuditFilter, Backend, Store};

const PAGE_ENTRIES: u32 = 10_000;

/// Receives audit entries in sequence order during a scan.
pub trait AuditVisitor: Send + 'static {
    /// Looks at one entry; `Break` stops the scan.
    fn visit(&mut self, entry: AuditEntry) -> ControlFlow<()>;
}

impl Store {
    /// Shows `visitor` every audit entry after `after_seq`, in order, until it breaks, and
    /// returns it with whatever it accumulated.
    pub async fn for_each_audit_entry<V: AuditVisitor>(
        &self,
        after_seq: i64,
        mut visitor: V,
    ) -> Result<V> {
        match (self.backend, &self.sqlite_path) {
            (Backend::Sqlite, Some(path)) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || scan_sqlite(&path, after_seq, visitor))
                    .await
                    .map_err(|e| Error::Internal(format!("audit scan: {e}")))?
            }
            _ => {
                let mut after_seq = after_seq;
                loop {
                    let page = self
                        .audit_entries(AuditFilter {
                            org_id: None,
                            after_seq,
                            limit: PAGE_ENTRIES,
                        })
                        .await?;
                    let Some(last) = page.last() else {
                        return Ok(visitor);
                    };
                    after_seq = last.seq;
                    for entry in page {
                        if visitor.visit(entry).is_break() {
                            return Ok(visitor);
                        }
                    }
                }
            }
        }
    }
}

fn sqlite_error(error: rusqlite::Error) -> Error {
    Error::Unavailable(format!("reading the SQLite file: {error}"))
}

/// Parses an optional id column; a value that does not parse is kept out of the digest's reach
/// by failing the scan, since the stored text is what was hashed.
fn parse_optional<T: std::str::FromStr<Err = Error>>(text: Option<String>) -> Result<Option<T>> {
    text.map(|text| text.parse()).transpose()
}

fn scan_sqlite<V: AuditVisitor>(
    path: &std::path::Path,
    after_seq: i64,
    mut visitor: V,
) -> Result<V> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    // One read transaction: the scan sees one consistent state of the log.
    connection.execute_batch("BEGIN").map_err(sqlite_error)?;
    let mut statement = connection
        .prepare(
            "SELECT seq, at_us, request_id, actor_user_id, actor_org_id, credential, action, resource_type, \
             resource_id, subject_org_id, outcome, detail, prev_hash, entry_hash FROM audit_entries WHERE seq > ?1 ORDER BY seq",
        )
        .map_err(sqlite_error)?;
    let mut rows = statement.query([after_seq]).map_err(sqlite_error)?;
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        let hash = |index: usize| -> Result<Hash32> {
            let bytes: Vec<u8> = row.get(index).map_err(sqlite_error)?;
            Hash32::from_slice(&bytes)
        };
        let outcome: String = row.get(10).map_err(sqlite_error)?;
        let entry = AuditEntry {
            seq: row.get(0).map_err(sqlite_error)?,
            record: AuditRecord {
                at: Timestamp::from_micros(row.get(1).map_err(sqlite_error)?),
                request_id: parse_optional(row.get(2).map_err(sqlite_error)?)?,
                actor_user_id: parse_optional(row.get(3).map_err(sqlite_error)?)?,
                actor_org_id: parse_optional(row.get(4).map_err(sqlite_error)?)?,
                credential: row.get(5).map_err(sqlite_error)?,
                action: row.get(6).map_err(sqlite_error)?,
                resource_type: row.get(7).map_err(sqlite_error)?,
                resource_id: row.get(8).map_err(sqlite_error)?,
                subject_org_id: parse_optional(row.get(9).map_err(sqlite_error)?)?,
                outcome: Outcome::parse(&outcome)?,
                detail: row.get(11).map_err(sqlite_error)?,
            },
            prev_hash: hash(12)?,
            entry_hash: hash(13)?,
        };
        if visitor.visit(entry).is_break() {
            break;
        }
    }
    drop(rows);
    drop(statement);
    Ok(visitor)
}
