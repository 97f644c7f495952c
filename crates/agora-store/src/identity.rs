//! Organisations, users, memberships, API tokens, sessions and sign-in throttling.

use agora_domain::model::{ApiToken, Member, OrgKind, OrgStatus, Organisation, User};
use agora_domain::{
    Email, Error, OrgId, OrgName, PersonName, Result, Role, SessionId, Timestamp, TokenId, UserId,
};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get, optional_column};

/// A user with what is needed to check a password.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    /// Argon2id PHC string; `None` when the user cannot sign in with a password.
    pub password_hash: Option<String>,
}

/// A token as stored: its public face and the hash of its secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token: ApiToken,
    pub secret_hash: Vec<u8>,
}

/// A portal session as stored.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub org_id: Option<OrgId>,
    pub csrf_token: String,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

const ORG_COLUMNS: &str = "id, name, kind, status, created_at_us";
const TOKEN_COLUMNS: &str = "id, prefix, secret_hash, name, org_id, user_id, role, created_at_us, expires_at_us, revoked_at_us";

fn org_from_row(row: &AnyRow) -> Result<Organisation> {
    Ok(Organisation {
        id: column(row, "id")?,
        name: OrgName::parse(&get::<String>(row, "name")?)?,
        kind: OrgKind::parse(&get::<String>(row, "kind")?)?,
        status: OrgStatus::parse(&get::<String>(row, "status")?)?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
    })
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: column(row, "id")?,
        email: Email::parse(&get::<String>(row, "email")?)?,
        display_name: PersonName::parse(&get::<String>(row, "display_name")?)?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        token: ApiToken {
            id: column(row, "id")?,
            prefix: get(row, "prefix")?,
            name: get(row, "name")?,
            org_id: column(row, "org_id")?,
            user_id: column(row, "user_id")?,
            role: column(row, "role")?,
            created_at: Timestamp::from_micros(get(row, "created_at_us")?),
            expires_at: get::<Option<i64>>(row, "expires_at_us")?.map(Timestamp::from_micros),
            revoked_at: get::<Option<i64>>(row, "revoked_at_us")?.map(Timestamp::from_micros),
        },
        secret_hash: get(row, "secret_hash")?,
    })
}

impl Store {
    pub async fn org(&self, org_id: OrgId) -> Result<Option<Organisation>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(org_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(org_from_row).transpose()
    }

    pub async fn operator_org(&self) -> Result<Option<Organisation>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organisations WHERE kind = 'operator'");
        let row = sqlx::query(&sql)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(org_from_row).transpose()
    }

    pub async fn org_by_name(&self, name: &OrgName) -> Result<Option<Organisation>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM organisations WHERE name_key = $1");
        let row = sqlx::query(&sql)
            .bind(name.unique_key())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(org_from_row).transpose()
    }

    /// Organisations in id order after `after`, at most `limit`.
    pub async fn orgs(&self, after: Option<OrgId>, limit: u32) -> Result<Vec<Organisation>> {
        let sql =
            format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(org_from_row).collect()
    }

    pub async fn user(&self, user_id: UserId) -> Result<Option<User>> {
        let row =
            sqlx::query("SELECT id, email, display_name, created_at_us FROM users WHERE id = $1")
                .bind(user_id.to_string())
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT id, email, display_name, created_at_us, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(UserRecord {
                user: user_from_row(&row)?,
                password_hash: get(&row, "password_hash")?,
            })
        })
        .transpose()
    }

    /// The organisations a user belongs to, with the role in each, operator first.
    pub async fn memberships_of(&self, user_id: UserId) -> Result<Vec<(Organisation, Role)>> {
        let rows = sqlx::query(
            "SELECT o.id, o.name, o.kind, o.status, o.created_at_us, m.role \
             FROM memberships m JOIN organisations o ON o.id = m.org_id \
             WHERE m.user_id = $1 ORDER BY o.kind, o.name_key",
        )
        .bind(user_id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((org_from_row(row)?, column(row, "role")?)))
            .collect()
    }

    pub async fn membership(&self, org_id: OrgId, user_id: UserId) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|row| column(&row, "role")).transpose()
    }

    /// Members of an organisation in user-id order after `after`, at most `limit`.
    pub async fn members(
        &self,
        org_id: OrgId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.display_name, m.role, m.created_at_us \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND u.id > $2 ORDER BY u.id LIMIT $3",
        )
        .bind(org_id.to_string())
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    user_id: column(row, "id")?,
                    email: Email::parse(&get::<String>(row, "email")?)?,
                    display_name: PersonName::parse(&get::<String>(row, "display_name")?)?,
                    role: column(row, "role")?,
                    since: Timestamp::from_micros(get(row, "created_at_us")?),
                })
            })
            .collect()
    }

    pub async fn token_by_prefix(&self, prefix: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE prefix = $1");
        let row = sqlx::query(&sql)
            .bind(prefix)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn token(&self, token_id: TokenId) -> Result<Option<ApiToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(token_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        Ok(row
            .as_ref()
            .map(token_from_row)
            .transpose()?
            .map(|record| record.token))
    }

    /// Tokens of an organisation in id order after `after`, at most `limit`.
    pub async fn tokens(
        &self,
        org_id: OrgId,
        after: Option<TokenId>,
        limit: u32,
    ) -> Result<Vec<ApiToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok(token_from_row(row)?.token))
            .collect()
    }

    pub async fn session_by_secret_hash(
        &self,
        secret_hash: &[u8],
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, user_id, org_id, csrf_token, expires_at_us, revoked_at_us FROM sessions WHERE secret_hash = $1",
        )
        .bind(secret_hash.to_vec())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|row| {
            Ok(SessionRecord {
                id: column(&row, "id")?,
                user_id: column(&row, "user_id")?,
                org_id: optional_column(&row, "org_id")?,
                csrf_token: get(&row, "csrf_token")?,
                expires_at: Timestamp::from_micros(get(&row, "expires_at_us")?),
                revoked_at: get::<Option<i64>>(&row, "revoked_at_us")?.map(Timestamp::from_micros),
            })
        })
        .transpose()
    }

    /// How many failed sign-ins an e-mail address had since `since`.
    pub async fn signin_failures_since(&self, email: &str, since: Timestamp) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS failures FROM signin_failures WHERE email = $1 AND failed_at_us >= $2")
            .bind(email)
            .bind(since.as_micros())
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        get(&row, "failures")
    }

    /// A named instance setting, such as whether bootstrap ran.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM instance_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.map(|row| get(&row, "value")).transpose()
    }
}

impl WriteTx {
    pub async fn insert_org(&mut self, org: &Organisation) -> Result<()> {
        sqlx::query("INSERT INTO organisations (id, name, name_key, kind, status, created_at_us) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(org.id.to_string())
            .bind(org.name.as_str())
            .bind(org.name.unique_key())
            .bind(org.kind.as_str())
            .bind(org.status.as_str())
            .bind(org.created_at.as_micros())
            .execute(self.conn())
            .await
            .map_err(|e| match db_error(e) {
                Error::Conflict(_) => Error::Conflict(format!("an organisation named `{}` already exists", org.name)),
                other => other,
            })?;
        Ok(())
    }

    pub async fn set_org_status(&mut self, org_id: OrgId, status: OrgStatus) -> Result<()> {
        let done = sqlx::query("UPDATE organisations SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(org_id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("organisation {org_id}")));
        }
        Ok(())
    }

    pub async fn rename_org(&mut self, org_id: OrgId, name: &OrgName) -> Result<()> {
        let done = sqlx::query("UPDATE organisations SET name = $1, name_key = $2 WHERE id = $3")
            .bind(name.as_str())
            .bind(name.unique_key())
            .bind(org_id.to_string())
            .execute(self.conn())
            .await
            .map_err(|e| match db_error(e) {
                Error::Conflict(_) => {
                    Error::Conflict(format!("an organisation named `{name}` already exists"))
                }
                other => other,
            })?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("organisation {org_id}")));
        }
        Ok(())
    }

    pub async fn insert_user(&mut self, user: &User, password_hash: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO users (id, email, display_name, password_hash, created_at_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(user.id.to_string())
            .bind(user.email.as_str())
            .bind(user.display_name.as_str())
            .bind(password_hash)
            .bind(user.created_at.as_micros())
            .execute(self.conn())
            .await
            .map_err(|e| match db_error(e) {
                Error::Conflict(_) => Error::Conflict(format!("a user with e-mail {} already exists", user.email)),
                other => other,
            })?;
        Ok(())
    }

    /// Adds a member, or changes the role of an existing one.
    pub async fn upsert_membership(
        &mut self,
        org_id: OrgId,
        user_id: UserId,
        role: Role,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org_id.to_string())
        .bind(user_id.to_string())
        .bind(role.as_str())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Counts the owners of an organisation, inside the transaction (to keep at least one).
    pub async fn owner_count(&mut self, org_id: OrgId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS owners FROM memberships WHERE org_id = $1 AND role = 'owner'",
        )
        .bind(org_id.to_string())
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        get(&row, "owners")
    }

    pub async fn delete_membership(&mut self, org_id: OrgId, user_id: UserId) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id.to_string())
            .bind(user_id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("member {user_id} of {org_id}")));
        }
        // Tokens act for the organisation on the member's behalf; they go with the membership.
        sqlx::query("UPDATE api_tokens SET revoked_at_us = $1 WHERE org_id = $2 AND user_id = $3 AND revoked_at_us IS NULL")
            .bind(Timestamp::now().as_micros())
            .bind(org_id.to_string())
            .bind(user_id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_token(&mut self, token: &ApiToken, secret_hash: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, prefix, secret_hash, name, org_id, user_id, role, created_at_us, expires_at_us, revoked_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(token.id.to_string())
        .bind(token.prefix.as_str())
        .bind(secret_hash.to_vec())
        .bind(token.name.as_str())
        .bind(token.org_id.to_string())
        .bind(token.user_id.to_string())
        .bind(token.role.as_str())
        .bind(token.created_at.as_micros())
        .bind(token.expires_at.map(Timestamp::as_micros))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Revokes a token; revoking an already revoked token keeps the first revocation time.
    pub async fn revoke_token(&mut self, token_id: TokenId, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = $1 WHERE id = $2 AND revoked_at_us IS NULL",
        )
        .bind(at.as_micros())
        .bind(token_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_session(
        &mut self,
        session: &SessionRecord,
        secret_hash: &[u8],
        created_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, org_id, csrf_token, created_at_us, expires_at_us, revoked_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(session.id.to_string())
        .bind(secret_hash.to_vec())
        .bind(session.user_id.to_string())
        .bind(session.org_id.map(|id| id.to_string()))
        .bind(session.csrf_token.as_str())
        .bind(created_at.as_micros())
        .bind(session.expires_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn revoke_session(&mut self, session_id: SessionId, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at_us = $1 WHERE id = $2 AND revoked_at_us IS NULL",
        )
        .bind(at.as_micros())
        .bind(session_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn record_signin_failure(&mut self, email: &str, at: Timestamp) -> Result<()> {
        sqlx::query("INSERT INTO signin_failures (email, failed_at_us) VALUES ($1, $2)")
            .bind(email)
            .bind(at.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Forgets failures older than `before`, and all of them for `email` after a good sign-in.
    pub async fn clear_signin_failures(&mut self, email: &str, before: Timestamp) -> Result<()> {
        sqlx::query("DELETE FROM signin_failures WHERE email = $1 OR failed_at_us < $2")
            .bind(email)
            .bind(before.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn set_setting(&mut self, name: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO instance_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// What authenticating a token needs, read in one query.
#[derive(Debug, Clone)]
pub struct TokenAuthentication {
    pub record: TokenRecord,
    /// The owner's current role in the token's organisation; `None` if no longer a member.
    pub member_role: Option<Role>,
    pub org_kind: OrgKind,
    pub org_status: OrgStatus,
}

impl Store {
    pub async fn token_for_authentication(
        &self,
        prefix: &str,
    ) -> Result<Option<TokenAuthentication>> {
        let row = sqlx::query(
            "SELECT t.id, t.prefix, t.secret_hash, t.name, t.org_id, t.user_id, t.role, t.created_at_us, \
                    t.expires_at_us, t.revoked_at_us, m.role AS member_role, o.kind AS org_kind, o.status AS org_status \
             FROM api_tokens t JOIN organisations o ON o.id = t.org_id \
             LEFT JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id \
             WHERE t.prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|row| {
            Ok(TokenAuthentication {
                record: token_from_row(&row)?,
                member_role: optional_column(&row, "member_role")?,
                org_kind: OrgKind::parse(&get::<String>(&row, "org_kind")?)?,
                org_status: OrgStatus::parse(&get::<String>(&row, "org_status")?)?,
            })
        })
        .transpose()
    }

    /// The user a one-time sign-in link belongs to, if it is unused and unexpired at `now`.
    pub async fn signin_link_user(
        &self,
        secret_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<UserId>> {
        let row = sqlx::query(
            "SELECT user_id FROM signin_links WHERE secret_hash = $1 AND used_at_us IS NULL AND expires_at_us > $2",
        )
        .bind(secret_hash.to_vec())
        .bind(now.as_micros())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.map(|row| column(&row, "user_id")).transpose()
    }
}

impl WriteTx {
    pub async fn insert_signin_link(
        &mut self,
        secret_hash: &[u8],
        user_id: UserId,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query("INSERT INTO signin_links (secret_hash, user_id, expires_at_us, used_at_us) VALUES ($1, $2, $3, NULL)")
            .bind(secret_hash.to_vec())
            .bind(user_id.to_string())
            .bind(expires_at.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Marks a link used; returns its user only if it was unused and unexpired (so it works once).
    pub async fn use_signin_link(
        &mut self,
        secret_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<UserId>> {
        let row = sqlx::query(
            "UPDATE signin_links SET used_at_us = $1 WHERE secret_hash = $2 AND used_at_us IS NULL AND expires_at_us > $1 \
             RETURNING user_id",
        )
        .bind(now.as_micros())
        .bind(secret_hash.to_vec())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.map(|row| column(&row, "user_id")).transpose()
    }

    pub async fn set_password_hash(&mut self, user_id: UserId, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn user_by_email(&mut self, email: &Email) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT id, email, display_name, created_at_us FROM users WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }
}
