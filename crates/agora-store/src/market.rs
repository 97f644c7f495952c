//! The marketplace's state: JSON documents by kind and id, the sellers of each order, the
//! steps whose posting plans go to the ledger, and the provider notifications already seen.
//!
//! The marketplace's rules live in `agora-market`; this module only keeps what they decided.
//! Documents are whole values written in one statement, inside the transaction that also
//! appends the step's audit entry, so a reader never sees half a step.

use agora_domain::{Error, OrgId, Result, Timestamp};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, db_error, get};

/// One stored marketplace document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketDocument {
    pub kind: String,
    pub id: String,
    pub owner: Option<String>,
    pub status: Option<String>,
    pub sort_key: Option<i64>,
    /// The document itself, JSON.
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What to write for a document: everything but the times, which the store sets.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub owner: Option<&'a str>,
    pub status: Option<&'a str>,
    pub sort_key: Option<i64>,
    pub body: &'a str,
}

/// Where a marketplace step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Written before its plan went to the ledger; resumed at start-up if still here.
    Planned,
    /// The ledger applied the plan and the new state was stored.
    Done,
    /// The ledger refused the plan; nothing changed.
    Refused,
}

impl StepStatus {
    fn as_str(self) -> &'static str {
        match self {
            StepStatus::Planned => "planned",
            StepStatus::Done => "done",
            StepStatus::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "planned" => Ok(StepStatus::Planned),
            "done" => Ok(StepStatus::Done),
            "refused" => Ok(StepStatus::Refused),
            other => Err(Error::Internal(format!("unknown step status `{other}`"))),
        }
    }
}

/// A marketplace step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub key: String,
    pub kind: String,
    pub subject: String,
    /// The posting plan, JSON.
    pub plan: String,
    /// The step's input, JSON: enough to carry it out again.
    pub input: String,
    pub status: StepStatus,
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

const DOCUMENT_FIELDS: &str =
    "kind, id, owner, status, sort_key, body, created_at_us, updated_at_us";
const STEP_FIELDS: &str =
    "step_key, kind, subject, plan, input, status, reason, created_at_us, finished_at_us";

fn document_from_row(row: &AnyRow) -> Result<MarketDocument> {
    Ok(MarketDocument {
        kind: get(row, "kind")?,
        id: get(row, "id")?,
        owner: get(row, "owner")?,
        status: get(row, "status")?,
        sort_key: get(row, "sort_key")?,
        body: get(row, "body")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn step_from_row(row: &AnyRow) -> Result<StepRecord> {
    let status: String = get(row, "status")?;
    let finished: Option<i64> = get(row, "finished_at_us")?;
    Ok(StepRecord {
        key: get(row, "step_key")?,
        kind: get(row, "kind")?,
        subject: get(row, "subject")?,
        plan: get(row, "plan")?,
        input: get(row, "input")?,
        status: StepStatus::parse(&status)?,
        reason: get(row, "reason")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        finished_at: finished.map(Timestamp::from_micros),
    })
}

impl WriteTx {
    /// Writes a document, creating it or replacing its owner, status, sort key and body.
    pub async fn put_document(
        &mut self,
        document: &DocumentWrite<'_>,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO market_documents (kind, id, owner, status, sort_key, body, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (kind, id) DO UPDATE SET owner = excluded.owner, status = excluded.status, \
             sort_key = excluded.sort_key, body = excluded.body, updated_at_us = excluded.updated_at_us",
        )
        .bind(document.kind)
        .bind(document.id)
        .bind(document.owner)
        .bind(document.status)
        .bind(document.sort_key)
        .bind(document.body)
        .bind(now.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// A document as this transaction sees it (its own writes included).
    pub async fn document(&mut self, kind: &str, id: &str) -> Result<Option<MarketDocument>> {
        let sql =
            format!("SELECT {DOCUMENT_FIELDS} FROM market_documents WHERE kind = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(document_from_row).transpose()
    }

    /// Records which organisations sell on an order (idempotent).
    pub async fn link_order_sellers(&mut self, order_id: &str, sellers: &[OrgId]) -> Result<()> {
        for seller in sellers {
            sqlx::query(
                "INSERT INTO market_order_sellers (seller_org_id, order_id) VALUES ($1, $2) \
                 ON CONFLICT (seller_org_id, order_id) DO NOTHING",
            )
            .bind(seller.to_string())
            .bind(order_id)
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    /// Records a step as planned, before its plan goes to the ledger. A step key is used once:
    /// a second insert of the same key is a conflict.
    pub async fn insert_step(
        &mut self,
        key: &str,
        kind: &str,
        subject: &str,
        plan: &str,
        input: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO market_steps (step_key, kind, subject, plan, input, status, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, 'planned', $6)",
        )
        .bind(key)
        .bind(kind)
        .bind(subject)
        .bind(plan)
        .bind(input)
        .bind(now.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Finishes a planned step; refuses to finish one that is not planned (finished twice).
    pub async fn finish_step(
        &mut self,
        key: &str,
        status: StepStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE market_steps SET status = $1, reason = $2, finished_at_us = $3 \
             WHERE step_key = $4 AND status = 'planned'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now.as_micros())
        .bind(key)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict(format!(
                "step {key} is not planned: it was finished before"
            )));
        }
        Ok(())
    }

    /// Notes a provider's notification; `false` when it was seen before (a duplicate delivery).
    pub async fn note_provider_event(
        &mut self,
        provider: &str,
        event_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO market_provider_events (provider, event_id, received_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (provider, event_id) DO NOTHING",
        )
        .bind(provider)
        .bind(event_id)
        .bind(now.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(inserted.rows_affected() == 1)
    }
}

impl Store {
    pub async fn document(&self, kind: &str, id: &str) -> Result<Option<MarketDocument>> {
        let sql =
            format!("SELECT {DOCUMENT_FIELDS} FROM market_documents WHERE kind = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(document_from_row).transpose()
    }

    /// Documents of a kind in id order after `after_id`; only one owner's when `owner` is given.
    pub async fn documents(
        &self,
        kind: &str,
        owner: Option<&str>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MarketDocument>> {
        let after = after_id.unwrap_or("");
        let rows = match owner {
            Some(owner) => {
                let sql = format!(
                    "SELECT {DOCUMENT_FIELDS} FROM market_documents WHERE kind = $1 AND owner = $2 \
                     AND id > $3 ORDER BY id LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(kind)
                    .bind(owner)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await
            }
            None => {
                let sql = format!(
                    "SELECT {DOCUMENT_FIELDS} FROM market_documents WHERE kind = $1 \
                     AND id > $2 ORDER BY id LIMIT $3"
                );
                sqlx::query(&sql)
                    .bind(kind)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(db_error)?;
        rows.iter().map(document_from_row).collect()
    }

    /// Documents of a kind whose sort key is at most `up_to`, soonest first (points lots due to expire).
    pub async fn documents_due(
        &self,
        kind: &str,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<MarketDocument>> {
        let sql = format!(
            "SELECT {DOCUMENT_FIELDS} FROM market_documents WHERE kind = $1 AND sort_key <= $2 \
             ORDER BY sort_key, id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(kind)
            .bind(up_to)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(document_from_row).collect()
    }

    /// The orders an organisation sells on, in id order after `after_id`.
    pub async fn seller_orders(
        &self,
        seller: OrgId,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MarketDocument>> {
        let sql = format!(
            "SELECT {} FROM market_order_sellers s JOIN market_documents d \
             ON d.kind = 'order' AND d.id = s.order_id \
             WHERE s.seller_org_id = $1 AND s.order_id > $2 ORDER BY s.order_id LIMIT $3",
            DOCUMENT_FIELDS
                .split(", ")
                .map(|field| format!("d.{field}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(seller.to_string())
            .bind(after_id.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(document_from_row).collect()
    }

    pub async fn step(&self, key: &str) -> Result<Option<StepRecord>> {
        let sql = format!("SELECT {STEP_FIELDS} FROM market_steps WHERE step_key = $1");
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(step_from_row).transpose()
    }

    /// Steps still planned, oldest first: what a crash interrupted.
    pub async fn planned_steps(&self) -> Result<Vec<StepRecord>> {
        let sql = format!(
            "SELECT {STEP_FIELDS} FROM market_steps WHERE status = 'planned' ORDER BY created_at_us, step_key"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(step_from_row).collect()
    }

    /// How many steps stand in each status (for reports and tests).
    pub async fn step_counts(&self) -> Result<Vec<(StepStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM market_steps GROUP BY status ORDER BY status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let status: String = get(row, "status")?;
                Ok((StepStatus::parse(&status)?, get(row, "n")?))
            })
            .collect()
    }
}

impl Store {
    /// Every organisation that sells on some order, in id order.
    pub async fn market_sellers(&self) -> Result<Vec<OrgId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT seller_org_id FROM market_order_sellers ORDER BY seller_org_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| crate::column(row, "seller_org_id"))
            .collect()
    }
}
