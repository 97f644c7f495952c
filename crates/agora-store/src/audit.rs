//! The audit chain and its signed checkpoints.

use agora_domain::audit::{AuditEntry, AuditRecord, Hash32, Outcome, entry_hash};
use agora_domain::model::Checkpoint;
use agora_domain::{OrgId, Result, Timestamp};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, db_error, get, optional_column};

/// Which entries to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter {
    /// Only entries that concern this organisation: it acted, or its resource was acted on.
    pub org_id: Option<OrgId>,
    /// Only entries after this sequence number.
    pub after_seq: i64,
    pub limit: u32,
}

const ENTRY_COLUMNS: &str = "seq, at_us, request_id, actor_user_id, actor_org_id, credential, action, \
     resource_type, resource_id, subject_org_id, outcome, detail, prev_hash, entry_hash";

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: get(row, "seq")?,
        record: AuditRecord {
            at: Timestamp::from_micros(get(row, "at_us")?),
            request_id: optional_column(row, "request_id")?,
            actor_user_id: optional_column(row, "actor_user_id")?,
            actor_org_id: optional_column(row, "actor_org_id")?,
            credential: get(row, "credential")?,
            action: get(row, "action")?,
            resource_type: get(row, "resource_type")?,
            resource_id: get(row, "resource_id")?,
            subject_org_id: optional_column(row, "subject_org_id")?,
            outcome: Outcome::parse(&get::<String>(row, "outcome")?)?,
            detail: get(row, "detail")?,
        },
        prev_hash: Hash32::from_slice(&get::<Vec<u8>>(row, "prev_hash")?)?,
        entry_hash: Hash32::from_slice(&get::<Vec<u8>>(row, "entry_hash")?)?,
    })
}

fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: get(row, "seq")?,
        head_hash: Hash32::from_slice(&get::<Vec<u8>>(row, "head_hash")?)?,
        at: Timestamp::from_micros(get(row, "at_us")?),
        key_id: get(row, "key_id")?,
        signature: hex_encode(&get::<Vec<u8>>(row, "signature")?),
    })
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Store {
    /// Entries in sequence order, filtered as asked.
    pub async fn audit_entries(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = match filter.org_id {
            Some(org_id) => {
                let sql = format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_entries \
                     WHERE seq > $1 AND (actor_org_id = $2 OR subject_org_id = $2) ORDER BY seq LIMIT $3"
                );
                sqlx::query(&sql)
                    .bind(filter.after_seq)
                    .bind(org_id.to_string())
                    .bind(i64::from(filter.limit))
                    .fetch_all(self.pool())
                    .await
            }
            None => {
                let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2");
                sqlx::query(&sql).bind(filter.after_seq).bind(i64::from(filter.limit)).fetch_all(self.pool()).await
            }
        }
        .map_err(db_error)?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The number and hash of the last entry (0 and the genesis hash for an empty log).
    pub async fn audit_head(&self) -> Result<(i64, Hash32)> {
        let row = sqlx::query("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok((
            get(&row, "seq")?,
            Hash32::from_slice(&get::<Vec<u8>>(&row, "entry_hash")?)?,
        ))
    }

    /// Checkpoints, newest first.
    pub async fn checkpoints(
        &self,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT seq, head_hash, at_us, key_id, signature FROM audit_checkpoints WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(checkpoint_from_row).collect()
    }
}

impl WriteTx {
    /// Appends an entry at the end of the chain.
    ///
    /// The head row is updated first, which locks it on PostgreSQL until commit: appends are
    /// serialized, numbers are consecutive, and events written after this get outbox positions
    /// in commit order. Call it last in a transaction, just before the events, to hold the lock briefly.
    pub async fn append_audit(&mut self, record: &AuditRecord) -> Result<AuditEntry> {
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, entry_hash",
        )
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        let seq: i64 = get(&row, "seq")?;
        let prev_hash = Hash32::from_slice(&get::<Vec<u8>>(&row, "entry_hash")?)?;
        let hash = entry_hash(&prev_hash, &record.content_digest(seq));
        sqlx::query("UPDATE audit_head SET entry_hash = $1 WHERE id = 1")
            .bind(hash.0.to_vec())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        let sql = format!(
            "INSERT INTO audit_entries ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        sqlx::query(&sql)
            .bind(seq)
            .bind(record.at.as_micros())
            .bind(record.request_id.map(|id| id.to_string()))
            .bind(record.actor_user_id.map(|id| id.to_string()))
            .bind(record.actor_org_id.map(|id| id.to_string()))
            .bind(record.credential.as_str())
            .bind(record.action.as_str())
            .bind(record.resource_type.as_str())
            .bind(record.resource_id.as_str())
            .bind(record.subject_org_id.map(|id| id.to_string()))
            .bind(record.outcome.as_str())
            .bind(record.detail.as_str())
            .bind(prev_hash.0.to_vec())
            .bind(hash.0.to_vec())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(AuditEntry {
            seq,
            record: record.clone(),
            prev_hash,
            entry_hash: hash,
        })
    }

    /// The chain head as this transaction sees it.
    pub async fn audit_head(&mut self) -> Result<(i64, Hash32)> {
        let row = sqlx::query("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_error)?;
        Ok((
            get(&row, "seq")?,
            Hash32::from_slice(&get::<Vec<u8>>(&row, "entry_hash")?)?,
        ))
    }

    pub async fn insert_checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        signature: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, head_hash, at_us, key_id, signature) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(checkpoint.seq)
        .bind(checkpoint.head_hash.0.to_vec())
        .bind(checkpoint.at.as_micros())
        .bind(checkpoint.key_id.as_str())
        .bind(signature.to_vec())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
