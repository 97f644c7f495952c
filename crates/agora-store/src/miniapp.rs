//! The superapp: mini-apps, their versions and bundle files, customers' grants, the OpenID
//! Connect provider's codes and tokens, launches, payment requests and notifications.
//!
//! Codes and access tokens are looked up by their SHA-256 hash; the store never sees them.
//! A code is spent by an `UPDATE … WHERE used_at_us IS NULL`, so two concurrent exchanges of one
//! code cannot both succeed.

use agora_domain::{
    Error, GrantId, MiniAppId, NotificationId, OrderId, OrgId, PaymentRequestId, Result, Timestamp,
    UserId,
};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get, optional_column};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniAppRecord {
    pub id: MiniAppId,
    pub org_id: OrgId,
    pub slug: String,
    pub client_secret_hash: Vec<u8>,
    pub live_version: Option<i64>,
    pub name: String,
    pub category: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniAppVersionRecord {
    pub app_id: MiniAppId,
    pub version: i64,
    pub manifest_json: String,
    pub bundle_sha256: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub review_reason: String,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniAppFile {
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: GrantId,
    pub user_id: UserId,
    pub app_id: MiniAppId,
    /// Space-separated, as OAuth writes them.
    pub scopes: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthCodeRecord {
    pub code_hash: Vec<u8>,
    pub app_id: MiniAppId,
    pub user_id: UserId,
    pub grant_id: GrantId,
    pub redirect_uri: String,
    pub scopes: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthTokenRecord {
    pub token_hash: Vec<u8>,
    pub app_id: MiniAppId,
    pub user_id: UserId,
    pub grant_id: GrantId,
    pub code_hash: Vec<u8>,
    pub scopes: String,
    pub expires_at: Timestamp,
    /// Set when revoked, and for a refresh token when it was used (it rotates).
    pub revoked_at: Option<Timestamp>,
    /// `access` or `refresh`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    pub app_id: MiniAppId,
    pub user_id: UserId,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    pub launches: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequestRecord {
    pub id: PaymentRequestId,
    pub app_id: MiniAppId,
    pub seller: OrgId,
    pub user_id: UserId,
    pub doc_json: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `paying` (with `order_id` chosen), `paid`, `cancelled` or `expired`.
    pub state: String,
    pub order_id: Option<OrderId>,
    pub notification: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub decided_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: NotificationId,
    pub user_id: UserId,
    pub app_id: MiniAppId,
    pub title: String,
    pub body: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

/// A mini-app's figures for its partner's console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MiniAppFigures {
    /// Customers holding a grant now.
    pub installs: i64,
    /// Customers who launched it since the given time.
    pub active_users: i64,
    /// Paid payment requests, and their amounts by currency.
    pub payments: i64,
    pub amounts: Vec<(String, i64)>,
}

fn micros(row: &AnyRow, name: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_micros(get(row, name)?))
}

fn optional_micros(row: &AnyRow, name: &str) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, name)?.map(Timestamp::from_micros))
}

const APP_COLUMNS: &str = "id, org_id, slug, client_secret_hash, live_version, name, category, created_at_us, updated_at_us";

fn app_from_row(row: &AnyRow) -> Result<MiniAppRecord> {
    Ok(MiniAppRecord {
        id: column(row, "id")?,
        org_id: column(row, "org_id")?,
        slug: get(row, "slug")?,
        client_secret_hash: get(row, "client_secret_hash")?,
        live_version: get(row, "live_version")?,
        name: get(row, "name")?,
        category: get(row, "category")?,
        created_at: micros(row, "created_at_us")?,
        updated_at: micros(row, "updated_at_us")?,
    })
}

const VERSION_COLUMNS: &str = "app_id, version, manifest_json, bundle_sha256, state, review_reason, reviewed_by, reviewed_at_us, created_at_us";

fn version_from_row(row: &AnyRow) -> Result<MiniAppVersionRecord> {
    Ok(MiniAppVersionRecord {
        app_id: column(row, "app_id")?,
        version: get(row, "version")?,
        manifest_json: get(row, "manifest_json")?,
        bundle_sha256: get(row, "bundle_sha256")?,
        state: get(row, "state")?,
        review_reason: get(row, "review_reason")?,
        reviewed_by: optional_column(row, "reviewed_by")?,
        reviewed_at: optional_micros(row, "reviewed_at_us")?,
        created_at: micros(row, "created_at_us")?,
    })
}

const GRANT_COLUMNS: &str =
    "id, user_id, app_id, scopes, created_at_us, updated_at_us, revoked_at_us";

fn grant_from_row(row: &AnyRow) -> Result<GrantRecord> {
    Ok(GrantRecord {
        id: column(row, "id")?,
        user_id: column(row, "user_id")?,
        app_id: column(row, "app_id")?,
        scopes: get(row, "scopes")?,
        created_at: micros(row, "created_at_us")?,
        updated_at: micros(row, "updated_at_us")?,
        revoked_at: optional_micros(row, "revoked_at_us")?,
    })
}

const CODE_COLUMNS: &str = "code_hash, app_id, user_id, grant_id, redirect_uri, scopes, nonce, code_challenge, expires_at_us, used_at_us";

fn code_from_row(row: &AnyRow) -> Result<OauthCodeRecord> {
    Ok(OauthCodeRecord {
        code_hash: get(row, "code_hash")?,
        app_id: column(row, "app_id")?,
        user_id: column(row, "user_id")?,
        grant_id: column(row, "grant_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        scopes: get(row, "scopes")?,
        nonce: get(row, "nonce")?,
        code_challenge: get(row, "code_challenge")?,
        expires_at: micros(row, "expires_at_us")?,
        used_at: optional_micros(row, "used_at_us")?,
    })
}

const TOKEN_COLUMNS: &str =
    "token_hash, app_id, user_id, grant_id, code_hash, scopes, expires_at_us, revoked_at_us, kind";

fn token_from_row(row: &AnyRow) -> Result<OauthTokenRecord> {
    Ok(OauthTokenRecord {
        token_hash: get(row, "token_hash")?,
        app_id: column(row, "app_id")?,
        user_id: column(row, "user_id")?,
        grant_id: column(row, "grant_id")?,
        code_hash: get(row, "code_hash")?,
        scopes: get(row, "scopes")?,
        expires_at: micros(row, "expires_at_us")?,
        revoked_at: optional_micros(row, "revoked_at_us")?,
        kind: get(row, "kind")?,
    })
}

const PAYMENT_COLUMNS: &str = "id, app_id, seller_org_id, user_id, doc_json, amount, currency, state, order_id, notification, created_at_us, expires_at_us, decided_at_us";

fn payment_from_row(row: &AnyRow) -> Result<PaymentRequestRecord> {
    Ok(PaymentRequestRecord {
        id: column(row, "id")?,
        app_id: column(row, "app_id")?,
        seller: column(row, "seller_org_id")?,
        user_id: column(row, "user_id")?,
        doc_json: get(row, "doc_json")?,
        amount: get(row, "amount")?,
        currency: get(row, "currency")?,
        state: get(row, "state")?,
        order_id: optional_column(row, "order_id")?,
        notification: get(row, "notification")?,
        created_at: micros(row, "created_at_us")?,
        expires_at: micros(row, "expires_at_us")?,
        decided_at: optional_micros(row, "decided_at_us")?,
    })
}

const NOTIFICATION_COLUMNS: &str = "id, user_id, app_id, title, body, created_at_us, read_at_us";

fn notification_from_row(row: &AnyRow) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        id: column(row, "id")?,
        user_id: column(row, "user_id")?,
        app_id: column(row, "app_id")?,
        title: get(row, "title")?,
        body: get(row, "body")?,
        created_at: micros(row, "created_at_us")?,
        read_at: optional_micros(row, "read_at_us")?,
    })
}

impl Store {
    pub async fn miniapp(&self, id: MiniAppId) -> Result<Option<MiniAppRecord>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM miniapps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn miniapp_by_slug(&self, slug: &str) -> Result<Option<MiniAppRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM miniapps WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// An organisation's mini-apps, or every mini-app (`None`), oldest first.
    pub async fn miniapps(&self, org_id: Option<OrgId>) -> Result<Vec<MiniAppRecord>> {
        let sql = match org_id {
            Some(_) => format!("SELECT {APP_COLUMNS} FROM miniapps WHERE org_id = $1 ORDER BY id"),
            None => format!("SELECT {APP_COLUMNS} FROM miniapps ORDER BY id"),
        };
        let mut query = sqlx::query(&sql);
        if let Some(org_id) = org_id {
            query = query.bind(org_id.to_string());
        }
        let rows = query.fetch_all(self.pool()).await.map_err(db_error)?;
        rows.iter().map(app_from_row).collect()
    }

    pub async fn miniapp_versions(&self, app_id: MiniAppId) -> Result<Vec<MiniAppVersionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM miniapp_versions WHERE app_id = $1 ORDER BY version"
        ))
        .bind(app_id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn miniapp_version(
        &self,
        app_id: MiniAppId,
        version: i64,
    ) -> Result<Option<MiniAppVersionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM miniapp_versions WHERE app_id = $1 AND version = $2"
        ))
        .bind(app_id.to_string())
        .bind(version)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Versions waiting for the operator's review, oldest first.
    pub async fn pending_miniapp_versions(&self) -> Result<Vec<MiniAppVersionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM miniapp_versions WHERE state = 'pending' ORDER BY created_at_us"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn miniapp_file(
        &self,
        app_id: MiniAppId,
        version: i64,
        path: &str,
    ) -> Result<Option<MiniAppFile>> {
        let row = sqlx::query(
            "SELECT path, content_type, body FROM miniapp_files WHERE app_id = $1 AND version = $2 AND path = $3",
        )
        .bind(app_id.to_string())
        .bind(version)
        .bind(path)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|row| {
            Ok(MiniAppFile {
                path: get(&row, "path")?,
                content_type: get(&row, "content_type")?,
                body: get(&row, "body")?,
            })
        })
        .transpose()
    }

    /// The customer's grant to the mini-app that is in force, if any.
    pub async fn active_grant(
        &self,
        user_id: UserId,
        app_id: MiniAppId,
    ) -> Result<Option<GrantRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM miniapp_grants WHERE user_id = $1 AND app_id = $2 AND revoked_at_us IS NULL"
        ))
        .bind(user_id.to_string())
        .bind(app_id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    pub async fn grant(&self, id: GrantId) -> Result<Option<GrantRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM miniapp_grants WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Every grant a customer gave, in force or revoked, newest first.
    pub async fn grants_of_user(&self, user_id: UserId) -> Result<Vec<GrantRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM miniapp_grants WHERE user_id = $1 ORDER BY created_at_us DESC, id DESC"
        ))
        .bind(user_id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(grant_from_row).collect()
    }

    pub async fn oauth_token(&self, token_hash: &[u8]) -> Result<Option<OauthTokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash.to_vec())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The mini-apps a customer launched, most recent first.
    pub async fn launches_of_user(&self, user_id: UserId, limit: u32) -> Result<Vec<LaunchRecord>> {
        let rows = sqlx::query(
            "SELECT app_id, user_id, first_at_us, last_at_us, launches FROM miniapp_launches \
             WHERE user_id = $1 ORDER BY last_at_us DESC LIMIT $2",
        )
        .bind(user_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(LaunchRecord {
                    app_id: column(row, "app_id")?,
                    user_id: column(row, "user_id")?,
                    first_at: micros(row, "first_at_us")?,
                    last_at: micros(row, "last_at_us")?,
                    launches: get(row, "launches")?,
                })
            })
            .collect()
    }

    /// Installs, active users since `active_since`, and paid payment requests of a mini-app.
    pub async fn miniapp_figures(
        &self,
        app_id: MiniAppId,
        active_since: Timestamp,
    ) -> Result<MiniAppFigures> {
        let app = app_id.to_string();
        let installs: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT user_id) FROM miniapp_grants WHERE app_id = $1 AND revoked_at_us IS NULL",
        )
        .bind(&app)
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        let active_users: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM miniapp_launches WHERE app_id = $1 AND last_at_us >= $2",
        )
        .bind(&app)
        .bind(active_since.as_micros())
        .fetch_one(self.pool())
        .await
        .map_err(db_error)?;
        let rows = sqlx::query(
            "SELECT currency, COUNT(*) AS payments, CAST(SUM(amount) AS BIGINT) AS amount FROM payment_requests \
             WHERE app_id = $1 AND state = 'paid' GROUP BY currency ORDER BY currency",
        )
        .bind(&app)
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        let mut figures = MiniAppFigures {
            installs,
            active_users,
            ..MiniAppFigures::default()
        };
        for row in &rows {
            figures.payments += get::<i64>(row, "payments")?;
            figures
                .amounts
                .push((get(row, "currency")?, get::<i64>(row, "amount")?));
        }
        Ok(figures)
    }

    pub async fn payment_request(
        &self,
        id: PaymentRequestId,
    ) -> Result<Option<PaymentRequestRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_requests WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// A mini-app's payment requests, newest first.
    pub async fn payment_requests_of_app(
        &self,
        app_id: MiniAppId,
        limit: u32,
    ) -> Result<Vec<PaymentRequestRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_requests WHERE app_id = $1 ORDER BY created_at_us DESC LIMIT $2"
        ))
        .bind(app_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Payment requests being paid since before `before`: confirmations that may have been
    /// interrupted, oldest first.
    pub async fn stale_paying_requests(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<PaymentRequestRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_requests WHERE state = 'paying' AND paying_since_us < $1 \
             ORDER BY paying_since_us LIMIT $2"
        ))
        .bind(before.as_micros())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(payment_from_row).collect()
    }

    /// The customer a mini-app's pairwise subject id stands for.
    pub async fn subject_user(&self, app_id: MiniAppId, subject: &str) -> Result<Option<UserId>> {
        let row =
            sqlx::query("SELECT user_id FROM miniapp_subjects WHERE app_id = $1 AND subject = $2")
                .bind(app_id.to_string())
                .bind(subject)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
        row.as_ref().map(|row| column(row, "user_id")).transpose()
    }

    /// A customer's inbox, newest first.
    pub async fn notifications_of_user(
        &self,
        user_id: UserId,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY created_at_us DESC LIMIT $2"
        ))
        .bind(user_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(notification_from_row).collect()
    }
}

impl WriteTx {
    pub async fn insert_miniapp(&mut self, app: &MiniAppRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO miniapps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(app.id.to_string())
        .bind(app.org_id.to_string())
        .bind(&app.slug)
        .bind(app.client_secret_hash.clone())
        .bind(app.live_version)
        .bind(&app.name)
        .bind(&app.category)
        .bind(app.created_at.as_micros())
        .bind(app.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(|error| match db_error(error) {
            Error::Conflict(_) => Error::Conflict(format!(
                "the slug `{}` is taken by another mini-app; choose another in the manifest",
                app.slug
            )),
            other => other,
        })?;
        Ok(())
    }

    /// The mini-app, read under this transaction (for the next version number).
    pub async fn miniapp_for_update(&mut self, id: MiniAppId) -> Result<Option<MiniAppRecord>> {
        // Touching the row first takes its lock on PostgreSQL; SQLite writes one at a time anyway.
        sqlx::query("UPDATE miniapps SET updated_at_us = updated_at_us WHERE id = $1")
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM miniapps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn latest_miniapp_version(&mut self, id: MiniAppId) -> Result<i64> {
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM miniapp_versions WHERE app_id = $1")
                .bind(id.to_string())
                .fetch_one(self.conn())
                .await
                .map_err(db_error)?;
        Ok(latest.unwrap_or(0))
    }

    pub async fn update_miniapp(
        &mut self,
        id: MiniAppId,
        name: &str,
        category: &str,
        live_version: Option<i64>,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE miniapps SET name = $2, category = $3, live_version = $4, updated_at_us = $5 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(category)
        .bind(live_version)
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_miniapp_version(&mut self, version: &MiniAppVersionRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO miniapp_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(version.app_id.to_string())
        .bind(version.version)
        .bind(&version.manifest_json)
        .bind(&version.bundle_sha256)
        .bind(&version.state)
        .bind(&version.review_reason)
        .bind(version.reviewed_by.map(|id| id.to_string()))
        .bind(version.reviewed_at.map(Timestamp::as_micros))
        .bind(version.created_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_miniapp_file(
        &mut self,
        app_id: MiniAppId,
        version: i64,
        file: &MiniAppFile,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO miniapp_files (app_id, version, path, content_type, body) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(app_id.to_string())
        .bind(version)
        .bind(&file.path)
        .bind(&file.content_type)
        .bind(file.body.clone())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Decides a pending version; `false` if it was not pending any more.
    pub async fn review_miniapp_version(
        &mut self,
        app_id: MiniAppId,
        version: i64,
        state: &str,
        reason: &str,
        by: Option<UserId>,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE miniapp_versions SET state = $3, review_reason = $4, reviewed_by = $5, reviewed_at_us = $6 \
             WHERE app_id = $1 AND version = $2 AND state = 'pending'",
        )
        .bind(app_id.to_string())
        .bind(version)
        .bind(state)
        .bind(reason)
        .bind(by.map(|id| id.to_string()))
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// The customer's grant in force, read under this transaction.
    pub async fn active_grant(
        &mut self,
        user_id: UserId,
        app_id: MiniAppId,
    ) -> Result<Option<GrantRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM miniapp_grants WHERE user_id = $1 AND app_id = $2 AND revoked_at_us IS NULL"
        ))
        .bind(user_id.to_string())
        .bind(app_id.to_string())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    pub async fn insert_grant(&mut self, grant: &GrantRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO miniapp_grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(grant.id.to_string())
        .bind(grant.user_id.to_string())
        .bind(grant.app_id.to_string())
        .bind(&grant.scopes)
        .bind(grant.created_at.as_micros())
        .bind(grant.updated_at.as_micros())
        .bind(grant.revoked_at.map(Timestamp::as_micros))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn update_grant_scopes(
        &mut self,
        id: GrantId,
        scopes: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE miniapp_grants SET scopes = $2, updated_at_us = $3 WHERE id = $1 AND revoked_at_us IS NULL",
        )
        .bind(id.to_string())
        .bind(scopes)
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Revokes a grant and every access token issued under it; `false` if it was not in force.
    pub async fn revoke_grant(&mut self, id: GrantId, at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE miniapp_grants SET revoked_at_us = $2, updated_at_us = $2 WHERE id = $1 AND revoked_at_us IS NULL",
        )
        .bind(id.to_string())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        sqlx::query(
            "UPDATE oauth_tokens SET revoked_at_us = $2 WHERE grant_id = $1 AND revoked_at_us IS NULL",
        )
        .bind(id.to_string())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_oauth_code(&mut self, code: &OauthCodeRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oauth_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(code.code_hash.clone())
        .bind(code.app_id.to_string())
        .bind(code.user_id.to_string())
        .bind(code.grant_id.to_string())
        .bind(&code.redirect_uri)
        .bind(&code.scopes)
        .bind(code.nonce.clone())
        .bind(&code.code_challenge)
        .bind(code.expires_at.as_micros())
        .bind(code.used_at.map(Timestamp::as_micros))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn oauth_code(&mut self, code_hash: &[u8]) -> Result<Option<OauthCodeRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM oauth_codes WHERE code_hash = $1"
        ))
        .bind(code_hash.to_vec())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.as_ref().map(code_from_row).transpose()
    }

    /// Spends a code; `false` if it was spent already (by this or a concurrent exchange).
    pub async fn spend_oauth_code(&mut self, code_hash: &[u8], at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth_codes SET used_at_us = $2 WHERE code_hash = $1 AND used_at_us IS NULL",
        )
        .bind(code_hash.to_vec())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Spends a refresh token (it rotates): `false` if it was spent or revoked already.
    pub async fn spend_refresh_token(&mut self, token_hash: &[u8], at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at_us = $2 \
             WHERE token_hash = $1 AND kind = 'refresh' AND revoked_at_us IS NULL",
        )
        .bind(token_hash.to_vec())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes the tokens issued for a code: what RFC 6749 §4.1.2 asks when a code is replayed.
    pub async fn revoke_tokens_of_code(&mut self, code_hash: &[u8], at: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at_us = $2 WHERE code_hash = $1 AND revoked_at_us IS NULL",
        )
        .bind(code_hash.to_vec())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    pub async fn insert_oauth_token(&mut self, token: &OauthTokenRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oauth_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(token.token_hash.clone())
        .bind(token.app_id.to_string())
        .bind(token.user_id.to_string())
        .bind(token.grant_id.to_string())
        .bind(token.code_hash.clone())
        .bind(&token.scopes)
        .bind(token.expires_at.as_micros())
        .bind(token.revoked_at.map(Timestamp::as_micros))
        .bind(&token.kind)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn record_launch(
        &mut self,
        app_id: MiniAppId,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO miniapp_launches (app_id, user_id, first_at_us, last_at_us, launches) VALUES ($1, $2, $3, $3, 1) \
             ON CONFLICT (app_id, user_id) DO UPDATE SET last_at_us = excluded.last_at_us, launches = miniapp_launches.launches + 1",
        )
        .bind(app_id.to_string())
        .bind(user_id.to_string())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Remembers which customer a pairwise subject id stands for (once).
    pub async fn remember_subject(
        &mut self,
        app_id: MiniAppId,
        subject: &str,
        user_id: UserId,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO miniapp_subjects (app_id, subject, user_id) VALUES ($1, $2, $3) ON CONFLICT (app_id, subject) DO NOTHING",
        )
        .bind(app_id.to_string())
        .bind(subject)
        .bind(user_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Starts paying a pending payment request with the order `order_id` (not placed yet), as of
    /// `at`; `false` if the request was not pending.
    pub async fn start_paying(
        &mut self,
        id: PaymentRequestId,
        order_id: OrderId,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE payment_requests SET state = 'paying', order_id = $2, paying_since_us = $3 \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(id.to_string())
        .bind(order_id.to_string())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a payment request paid with `order_id` back to pending: that order was never placed.
    /// `false` if the request is no longer being paid with it.
    pub async fn stop_paying(&mut self, id: PaymentRequestId, order_id: OrderId) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE payment_requests SET state = 'pending', order_id = NULL, paying_since_us = NULL \
             WHERE id = $1 AND state = 'paying' AND order_id = $2",
        )
        .bind(id.to_string())
        .bind(order_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_payment_request(&mut self, request: &PaymentRequestRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO payment_requests ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(request.id.to_string())
        .bind(request.app_id.to_string())
        .bind(request.seller.to_string())
        .bind(request.user_id.to_string())
        .bind(&request.doc_json)
        .bind(request.amount)
        .bind(&request.currency)
        .bind(&request.state)
        .bind(request.order_id.map(|id| id.to_string()))
        .bind(request.notification.clone())
        .bind(request.created_at.as_micros())
        .bind(request.expires_at.as_micros())
        .bind(request.decided_at.map(Timestamp::as_micros))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Moves a payment request from `from` to its outcome; `false` if it was not in `from` any
    /// more, so one request is paid at most once however many confirmations race.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_payment_request(
        &mut self,
        id: PaymentRequestId,
        from: &str,
        state: &str,
        order_id: Option<OrderId>,
        notification: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE payment_requests SET state = $2, order_id = $3, notification = $4, decided_at_us = $5 \
             WHERE id = $1 AND state = $6",
        )
        .bind(id.to_string())
        .bind(state)
        .bind(order_id.map(|id| id.to_string()))
        .bind(notification)
        .bind(at.as_micros())
        .bind(from)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// How many notifications a mini-app sent a customer since `since`.
    pub async fn notifications_sent_since(
        &mut self,
        app_id: MiniAppId,
        user_id: UserId,
        since: Timestamp,
    ) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE app_id = $1 AND user_id = $2 AND created_at_us >= $3",
        )
        .bind(app_id.to_string())
        .bind(user_id.to_string())
        .bind(since.as_micros())
        .fetch_one(self.conn())
        .await
        .map_err(db_error)
    }

    pub async fn insert_notification(&mut self, notification: &NotificationRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO notifications ({NOTIFICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(notification.id.to_string())
        .bind(notification.user_id.to_string())
        .bind(notification.app_id.to_string())
        .bind(&notification.title)
        .bind(&notification.body)
        .bind(notification.created_at.as_micros())
        .bind(notification.read_at.map(Timestamp::as_micros))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Marks every unread notification of a customer read.
    pub async fn mark_notifications_read(&mut self, user_id: UserId, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET read_at_us = $2 WHERE user_id = $1 AND read_at_us IS NULL",
        )
        .bind(user_id.to_string())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
