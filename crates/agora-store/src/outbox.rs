//! The event outbox and idempotency keys.

use agora_domain::event::{Event, NewEvent};
use agora_domain::{Error, EventId, OrgId, Result, Timestamp};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get, optional_column};

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new and now held by this transaction.
    Claimed,
    /// The key was used before, with this request hash and this stored response.
    Replay {
        request_hash: Vec<u8>,
        response: String,
    },
}

fn event_from_row(row: &AnyRow) -> Result<Event> {
    let data: String = get(row, "data")?;
    Ok(Event {
        id: column(row, "id")?,
        seq: get(row, "seq")?,
        event_type: get(row, "event_type")?,
        subject: get(row, "subject")?,
        org_id: optional_column(row, "org_id")?,
        time: Timestamp::from_micros(get(row, "time_us")?),
        data: serde_json::from_str(&data)
            .map_err(|e| Error::Internal(format!("event data is not JSON: {e}")))?,
    })
}

impl Store {
    /// Events after `after_seq`, in outbox order; only one organisation's when `org_id` is given.
    pub async fn events(
        &self,
        org_id: Option<OrgId>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let rows = match org_id {
            Some(org_id) => {
                sqlx::query(
                    "SELECT seq, id, event_type, subject, org_id, time_us, data FROM events \
                     WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(org_id.to_string())
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query(
                    "SELECT seq, id, event_type, subject, org_id, time_us, data FROM events \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(db_error)?;
        rows.iter().map(event_from_row).collect()
    }
}

impl WriteTx {
    /// Writes an event; call after [`WriteTx::append_audit`] so that positions follow commit order.
    pub async fn insert_event(&mut self, event: &NewEvent, at: Timestamp) -> Result<Event> {
        let id = EventId::new();
        let data = serde_json::to_string(&event.data)
            .map_err(|e| Error::Internal(format!("event data: {e}")))?;
        let row = sqlx::query(
            "INSERT INTO events (id, event_type, subject, org_id, time_us, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(id.to_string())
        .bind(event.event_type)
        .bind(event.subject.as_str())
        .bind(event.org_id.map(|id| id.to_string()))
        .bind(at.as_micros())
        .bind(data)
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        Ok(Event {
            id,
            seq: get(&row, "seq")?,
            event_type: event.event_type.to_owned(),
            subject: event.subject.clone(),
            org_id: event.org_id,
            time: at,
            data: event.data.clone(),
        })
    }

    /// Claims `key` within `scope` for a request with `request_hash`, or finds its earlier use.
    ///
    /// On PostgreSQL a concurrent claim of the same key waits here until the first transaction
    /// ends; if that one committed, this one sees a replay.
    pub async fn claim_idempotency_key(
        &mut self,
        scope: &str,
        key: &str,
        request_hash: &[u8],
    ) -> Result<IdempotencyClaim> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, response, created_at_us) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (scope, idempotency_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash.to_vec())
        .bind(Timestamp::now().as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query("SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2")
            .bind(scope)
            .bind(key)
            .fetch_one(self.conn())
            .await
            .map_err(db_error)?;
        let response: Option<String> = get(&row, "response")?;
        Ok(IdempotencyClaim::Replay {
            request_hash: get(&row, "request_hash")?,
            response: response.ok_or_else(|| {
                Error::Conflict("a request with this Idempotency-Key is still in progress".into())
            })?,
        })
    }

    /// Gives up a claimed key that has no response yet: the request it held was refused and left
    /// nothing behind, so a retry with the same key may try again.
    pub async fn release_idempotency_key(&mut self, scope: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND response IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Forgets every idempotency key claimed before `before`, answered or not: a retry later
    /// than that is a new request. Returns how many were forgotten.
    pub async fn expire_idempotency_keys(&mut self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at_us < $1")
            .bind(before.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    /// Stores the response of a claimed key, so that replays return it.
    pub async fn complete_idempotency_key(
        &mut self,
        scope: &str,
        key: &str,
        response: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET response = $1 WHERE scope = $2 AND idempotency_key = $3",
        )
        .bind(response)
        .bind(scope)
        .bind(key)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
