//! Data-sharing protocols and governed queries: each protocol's versions (the canonical JSON its
//! content hash covers, its state and approvals), the parties, every query with the protocol
//! versions it used, and the groups released to each consumer for the differencing defence.
//!
//! The store does not read protocol documents: `agora-query` does, in the app.

use agora_domain::{Error, OrgId, ProtocolId, QueryId, Result, Timestamp, UserId};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get, optional_column};

/// A protocol: its name per provider, its newest version and the one queries run under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolRecord {
    pub id: ProtocolId,
    pub name: String,
    pub provider: OrgId,
    pub latest_version: i64,
    pub active_version: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One version of a protocol as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolVersionRecord {
    pub protocol_id: ProtocolId,
    pub version: i64,
    /// The canonical JSON of the document, which `content_hash` covers.
    pub document_json: String,
    pub content_hash: String,
    /// `draft`, `proposed`, `active`, `paused`, `revoked`, `expired` or `superseded`.
    pub state: String,
    pub approvals: Vec<OrgId>,
    pub paused_by: Vec<OrgId>,
    /// Set when the engine paused it (a dataset it uses was deleted).
    pub suspended_reason: Option<String>,
    pub not_after: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One governed query as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    pub id: QueryId,
    pub consumer: OrgId,
    pub actor: Option<UserId>,
    pub purpose: String,
    pub sql: String,
    /// `answered`, `refused` or `failed`.
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub rows_returned: i64,
    pub rows_suppressed: i64,
    pub report_json: String,
    pub created_at: Timestamp,
    /// The protocol versions it used and their providers.
    pub protocols: Vec<(ProtocolId, i64, OrgId)>,
}

const PROTOCOL_COLUMNS: &str =
    "id, name, provider_org_id, latest_version, active_version, created_at_us, updated_at_us";
const VERSION_COLUMNS: &str = "protocol_id, version, document_json, content_hash, state, approvals_json, \
     paused_by_json, suspended_reason, not_after_us, created_at_us, updated_at_us";
const QUERY_COLUMNS: &str = "q.id, q.consumer_org_id, q.actor_user_id, q.purpose, q.sql_text, q.outcome, \
     q.rule, q.message, q.rows_returned, q.rows_suppressed, q.report_json, q.created_at_us";

fn protocol_from_row(row: &AnyRow) -> Result<ProtocolRecord> {
    Ok(ProtocolRecord {
        id: column(row, "id")?,
        name: get(row, "name")?,
        provider: column(row, "provider_org_id")?,
        latest_version: get(row, "latest_version")?,
        active_version: get(row, "active_version")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn orgs_from_json(row: &AnyRow, name: &str) -> Result<Vec<OrgId>> {
    let text: String = get(row, name)?;
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("column {name}: {e}")))
}

fn orgs_to_json(orgs: &[OrgId]) -> Result<String> {
    serde_json::to_string(orgs).map_err(|e| Error::Internal(format!("organisations: {e}")))
}

fn version_from_row(row: &AnyRow) -> Result<ProtocolVersionRecord> {
    Ok(ProtocolVersionRecord {
        protocol_id: column(row, "protocol_id")?,
        version: get(row, "version")?,
        document_json: get(row, "document_json")?,
        content_hash: get(row, "content_hash")?,
        state: get(row, "state")?,
        approvals: orgs_from_json(row, "approvals_json")?,
        paused_by: orgs_from_json(row, "paused_by_json")?,
        suspended_reason: get(row, "suspended_reason")?,
        not_after: Timestamp::from_micros(get(row, "not_after_us")?),
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn query_from_row(row: &AnyRow) -> Result<QueryRecord> {
    Ok(QueryRecord {
        id: column(row, "id")?,
        consumer: column(row, "consumer_org_id")?,
        actor: optional_column(row, "actor_user_id")?,
        purpose: get(row, "purpose")?,
        sql: get(row, "sql_text")?,
        outcome: get(row, "outcome")?,
        rule: get(row, "rule")?,
        message: get(row, "message")?,
        rows_returned: get(row, "rows_returned")?,
        rows_suppressed: get(row, "rows_suppressed")?,
        report_json: get(row, "report_json")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        protocols: Vec::new(),
    })
}

impl Store {
    pub async fn protocol(&self, id: ProtocolId) -> Result<Option<ProtocolRecord>> {
        let sql = format!("SELECT {PROTOCOL_COLUMNS} FROM protocols WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(protocol_from_row).transpose()
    }

    /// The protocols an organisation is or was a party to, in id (creation) order, after `after`.
    pub async fn protocols_of_party(
        &self,
        org_id: OrgId,
        after: Option<ProtocolId>,
        limit: u32,
    ) -> Result<Vec<ProtocolRecord>> {
        let sql = format!(
            "SELECT {PROTOCOL_COLUMNS} FROM protocols WHERE id IN \
             (SELECT protocol_id FROM protocol_parties WHERE org_id = $1) AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(protocol_from_row).collect()
    }

    /// The protocols a provider offers, every one (a provider has few).
    pub async fn protocols_of_provider(&self, provider: OrgId) -> Result<Vec<ProtocolRecord>> {
        let sql = format!(
            "SELECT {PROTOCOL_COLUMNS} FROM protocols WHERE provider_org_id = $1 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(provider.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(protocol_from_row).collect()
    }

    pub async fn protocol_version(
        &self,
        id: ProtocolId,
        version: i64,
    ) -> Result<Option<ProtocolVersionRecord>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM protocol_versions WHERE protocol_id = $1 AND version = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(version)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Every version of a protocol, newest first.
    pub async fn protocol_versions(&self, id: ProtocolId) -> Result<Vec<ProtocolVersionRecord>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM protocol_versions WHERE protocol_id = $1 ORDER BY version DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(version_from_row).collect()
    }

    /// The active versions of every protocol `org_id` is a party to.
    pub async fn active_protocol_versions_of_party(
        &self,
        org_id: OrgId,
    ) -> Result<Vec<ProtocolVersionRecord>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM protocol_versions v WHERE v.state = 'active' AND v.protocol_id IN \
             (SELECT protocol_id FROM protocol_parties WHERE org_id = $1) \
             AND v.version = (SELECT active_version FROM protocols p WHERE p.id = v.protocol_id) \
             ORDER BY v.protocol_id"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(version_from_row).collect()
    }

    /// Versions still live whose validity window ended before `now`.
    pub async fn protocol_versions_past_their_window(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(ProtocolId, i64)>> {
        let rows = sqlx::query(
            "SELECT protocol_id, version FROM protocol_versions \
             WHERE state IN ('draft', 'proposed', 'active', 'paused') AND not_after_us <= $1",
        )
        .bind(now.as_micros())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((column(row, "protocol_id")?, get(row, "version")?)))
            .collect()
    }

    /// How many queries used this protocol since `since`: the daily quota's count.
    pub async fn queries_under_protocol_since(
        &self,
        protocol_id: ProtocolId,
        since: Timestamp,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM query_protocols WHERE protocol_id = $1 AND created_at_us >= $2",
        )
        .bind(protocol_id.to_string())
        .bind(since.as_micros())
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        get(&row, "n")
    }

    /// Queries an organisation ran (`as_provider` false) or that ran against its data
    /// (`as_provider` true), newest first, older than `before` when given.
    pub async fn queries(
        &self,
        org_id: OrgId,
        as_provider: bool,
        before: Option<QueryId>,
        limit: u32,
    ) -> Result<Vec<QueryRecord>> {
        let filter = if as_provider {
            "q.id IN (SELECT query_id FROM query_protocols WHERE provider_org_id = $1)"
        } else {
            "q.consumer_org_id = $1"
        };
        let sql = format!(
            "SELECT {QUERY_COLUMNS} FROM queries q WHERE {filter} AND q.id < $2 ORDER BY q.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(
                before
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "~".into()),
            )
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        let mut queries: Vec<QueryRecord> =
            rows.iter().map(query_from_row).collect::<Result<_>>()?;
        for query in &mut queries {
            query.protocols = self.query_protocols(query.id).await?;
        }
        Ok(queries)
    }

    pub async fn query(&self, id: QueryId) -> Result<Option<QueryRecord>> {
        let sql = format!("SELECT {QUERY_COLUMNS} FROM queries q WHERE q.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let mut query = query_from_row(&row)?;
        query.protocols = self.query_protocols(query.id).await?;
        Ok(Some(query))
    }

    async fn query_protocols(&self, id: QueryId) -> Result<Vec<(ProtocolId, i64, OrgId)>> {
        let rows = sqlx::query(
            "SELECT protocol_id, version, provider_org_id FROM query_protocols WHERE query_id = $1 ORDER BY protocol_id",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    column(row, "protocol_id")?,
                    get(row, "version")?,
                    column(row, "provider_org_id")?,
                ))
            })
            .collect()
    }

    /// The groups released to consumers since `since`, oldest first, at most `limit`: what the
    /// differencing defence remembers across restarts.
    pub async fn released_groups_since(
        &self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(OrgId, String, String)>> {
        let rows = sqlx::query(
            "SELECT consumer_org_id, group_key, counts_json FROM query_released_groups \
             WHERE created_at_us >= $1 ORDER BY created_at_us LIMIT $2",
        )
        .bind(since.as_micros())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    column(row, "consumer_org_id")?,
                    get(row, "group_key")?,
                    get(row, "counts_json")?,
                ))
            })
            .collect()
    }
}

impl WriteTx {
    /// Inserts a new protocol with its first version. The same name twice for one provider
    /// answers `Conflict`.
    pub async fn insert_protocol(
        &mut self,
        protocol: &ProtocolRecord,
        first: &ProtocolVersionRecord,
        parties: &[OrgId],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO protocols (id, name, provider_org_id, latest_version, active_version, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(protocol.id.to_string())
        .bind(&protocol.name)
        .bind(protocol.provider.to_string())
        .bind(protocol.latest_version)
        .bind(protocol.active_version)
        .bind(protocol.created_at.as_micros())
        .bind(protocol.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(|error| match db_error(error) {
            Error::Conflict(_) => Error::Conflict(format!(
                "the organisation already has a protocol named `{}`; revise it instead",
                protocol.name
            )),
            other => other,
        })?;
        self.insert_protocol_version(first, parties).await
    }

    /// Adds a version (a revision), provided the newest is still `expected_latest`.
    pub async fn add_protocol_version(
        &mut self,
        expected_latest: i64,
        version: &ProtocolVersionRecord,
        parties: &[OrgId],
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE protocols SET latest_version = $1, updated_at_us = $2 WHERE id = $3 AND latest_version = $4",
        )
        .bind(version.version)
        .bind(version.created_at.as_micros())
        .bind(version.protocol_id.to_string())
        .bind(expected_latest)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if updated.rows_affected() != 1 {
            return Err(Error::Conflict(
                "the protocol was revised meanwhile; read it again and retry".into(),
            ));
        }
        self.insert_protocol_version(version, parties).await
    }

    async fn insert_protocol_version(
        &mut self,
        version: &ProtocolVersionRecord,
        parties: &[OrgId],
    ) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO protocol_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(version.protocol_id.to_string())
        .bind(version.version)
        .bind(&version.document_json)
        .bind(&version.content_hash)
        .bind(&version.state)
        .bind(orgs_to_json(&version.approvals)?)
        .bind(orgs_to_json(&version.paused_by)?)
        .bind(version.suspended_reason.as_deref())
        .bind(version.not_after.as_micros())
        .bind(version.created_at.as_micros())
        .bind(version.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        for party in parties {
            let exists = sqlx::query(
                "SELECT 1 AS one FROM protocol_parties WHERE protocol_id = $1 AND org_id = $2",
            )
            .bind(version.protocol_id.to_string())
            .bind(party.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
            if exists.is_none() {
                sqlx::query("INSERT INTO protocol_parties (protocol_id, org_id) VALUES ($1, $2)")
                    .bind(version.protocol_id.to_string())
                    .bind(party.to_string())
                    .execute(self.conn())
                    .await
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }

    /// Reads a version inside the transaction, to change it.
    pub async fn protocol_version(
        &mut self,
        id: ProtocolId,
        version: i64,
    ) -> Result<Option<ProtocolVersionRecord>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM protocol_versions WHERE protocol_id = $1 AND version = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(version)
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Writes a version's new state, approvals and pauses, provided it still is as `before`
    /// (a concurrent step in between answers `Conflict`, so no approval or pause is lost).
    pub async fn update_protocol_version(
        &mut self,
        before: &ProtocolVersionRecord,
        after: &ProtocolVersionRecord,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE protocol_versions SET state = $1, approvals_json = $2, paused_by_json = $3, \
             suspended_reason = $4, updated_at_us = $5 \
             WHERE protocol_id = $6 AND version = $7 AND state = $8 AND approvals_json = $9 AND paused_by_json = $10",
        )
        .bind(&after.state)
        .bind(orgs_to_json(&after.approvals)?)
        .bind(orgs_to_json(&after.paused_by)?)
        .bind(after.suspended_reason.as_deref())
        .bind(after.updated_at.as_micros())
        .bind(before.protocol_id.to_string())
        .bind(before.version)
        .bind(&before.state)
        .bind(orgs_to_json(&before.approvals)?)
        .bind(orgs_to_json(&before.paused_by)?)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if updated.rows_affected() != 1 {
            return Err(Error::Conflict(
                "the protocol changed meanwhile; read it again and retry".into(),
            ));
        }
        Ok(())
    }

    /// Makes `version` the one queries run under (or none).
    pub async fn set_active_protocol_version(
        &mut self,
        id: ProtocolId,
        version: Option<i64>,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE protocols SET active_version = $1, updated_at_us = $2 WHERE id = $3")
            .bind(version)
            .bind(at.as_micros())
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Records a query and the protocol versions it used.
    pub async fn insert_query(&mut self, query: &QueryRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO queries (id, consumer_org_id, actor_user_id, purpose, sql_text, outcome, rule, message, \
             rows_returned, rows_suppressed, report_json, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(query.id.to_string())
        .bind(query.consumer.to_string())
        .bind(query.actor.map(|user| user.to_string()))
        .bind(&query.purpose)
        .bind(&query.sql)
        .bind(&query.outcome)
        .bind(query.rule.as_deref())
        .bind(query.message.as_deref())
        .bind(query.rows_returned)
        .bind(query.rows_suppressed)
        .bind(&query.report_json)
        .bind(query.created_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        for (protocol_id, version, provider) in &query.protocols {
            sqlx::query(
                "INSERT INTO query_protocols (query_id, protocol_id, version, provider_org_id, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(query.id.to_string())
            .bind(protocol_id.to_string())
            .bind(*version)
            .bind(provider.to_string())
            .bind(query.created_at.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    /// Remembers groups released to a consumer.
    pub async fn insert_released_groups(
        &mut self,
        consumer: OrgId,
        groups: &[(String, String)],
        at: Timestamp,
    ) -> Result<()> {
        for (key, counts_json) in groups {
            sqlx::query(
                "INSERT INTO query_released_groups (consumer_org_id, group_key, counts_json, created_at_us) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(consumer.to_string())
            .bind(key)
            .bind(counts_json)
            .bind(at.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }
}
