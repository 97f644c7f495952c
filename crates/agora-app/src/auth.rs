//! Authentication: bearer tokens, portal sessions, password sign-in with throttling,
//! one-time sign-in links, customer sign-up, and the first start's bootstrap.

use agora_domain::actor::Acting;
use agora_domain::audit::Outcome;
use agora_domain::authz::{Action, Resource};
use agora_domain::model::{OrgKind, OrgStatus, Organisation, User};
use agora_domain::{
    Actor, Credential, Email, Error, OrgName, Password, PersonName, RequestId, Result, Role,
    SessionId, Timestamp, UserId,
};
use agora_store::SessionRecord;

use crate::secrets::{self, hashes_equal, sha256};
use crate::{App, Call, Done, event};

/// What the first start creates and prints once.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub operator: Organisation,
    pub owner: User,
    /// One-time link where the owner chooses a password and signs in.
    pub signin_link: String,
    /// An owner API token for the operator organisation, shown only now.
    pub token: String,
}

/// A successful sign-in: the cookie secret to set and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub session_secret: String,
    pub csrf_token: String,
    pub user: User,
    pub expires_at: Timestamp,
}

/// A one-time sign-in link for a user who has no password yet.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigninLink {
    pub url: String,
    pub expires_at: Timestamp,
}

/// A session as the portal uses it.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub actor: Actor,
    pub record: SessionRecord,
    pub user: User,
}

const BOOTSTRAPPED: &str = "bootstrapped_at";

impl App {
    /// Authenticates `Authorization: Bearer …`. Unknown, malformed, revoked and expired tokens
    /// all get the same answer, so that the answer tells an attacker nothing.
    pub async fn authenticate_token(&self, presented: &str) -> Result<Actor> {
        let refused = || Error::Unauthenticated("the token is unknown, revoked or expired".into());
        let prefix = secrets::token_prefix(presented).ok_or_else(refused)?;
        let presented_hash = sha256(presented);
        let now = Timestamp::now();
        if let Some(actor) = self.inner.cache.token(prefix, &presented_hash, now) {
            return Ok(actor);
        }
        let found = self
            .store()
            .token_for_authentication(prefix)
            .await?
            .ok_or_else(refused)?;
        if !hashes_equal(&found.record.secret_hash, &presented_hash)
            || !found.record.token.is_usable_at(now)
        {
            return Err(refused());
        }
        let member_role = found.member_role.ok_or_else(refused)?;
        if found.org_status != OrgStatus::Active {
            return Err(Error::forbidden(
                "org-not-active",
                "the organisation is waiting for the operator's approval",
            ));
        }
        let token = &found.record.token;
        let actor = Actor {
            user_id: Some(token.user_id),
            acting: Some(Acting {
                org_id: token.org_id,
                // A token never does more than its owner's current role allows.
                role: token.role.meet(member_role),
                is_operator: found.org_kind == OrgKind::Operator,
            }),
            credential: Credential::Token(token.id),
        };
        self.inner
            .cache
            .put_token(prefix, presented_hash, actor.clone(), token.expires_at);
        Ok(actor)
    }

    /// Authenticates a session cookie's secret.
    pub async fn authenticate_session(&self, secret: &str) -> Result<PortalSession> {
        let refused =
            || Error::Unauthenticated("the session is unknown, expired or signed out".into());
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refused());
        }
        let secret_hash = sha256(secret);
        if let Some(session) = self.inner.cache.session(&secret_hash, Timestamp::now()) {
            return Ok(session);
        }
        let record = self
            .store()
            .session_by_secret_hash(&secret_hash)
            .await?
            .ok_or_else(refused)?;
        if record.revoked_at.is_some() || record.expires_at <= Timestamp::now() {
            return Err(refused());
        }
        let user = self
            .store()
            .user(record.user_id)
            .await?
            .ok_or_else(refused)?;
        let acting = match record.org_id {
            Some(org_id) => {
                let org = self.store().org(org_id).await?;
                let role = self.store().membership(org_id, record.user_id).await?;
                match (org, role) {
                    (Some(org), Some(role)) if org.status == OrgStatus::Active => Some(Acting {
                        org_id,
                        role,
                        is_operator: org.kind == OrgKind::Operator,
                    }),
                    _ => None,
                }
            }
            None => None,
        };
        let actor = Actor {
            user_id: Some(record.user_id),
            acting,
            credential: Credential::Session(record.id),
        };
        let session = PortalSession {
            actor,
            record,
            user,
        };
        self.inner.cache.put_session(secret_hash, &session);
        Ok(session)
    }

    /// Signs in with e-mail and password, refusing after too many recent failures.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        request_id: RequestId,
    ) -> Result<SignIn> {
        let config = self.config();
        let now = Timestamp::now();
        let email_key = email.trim().to_lowercase();
        let window_start = now.plus_seconds(-config.signin_failure_window_seconds);
        let system = Actor::system();
        let call = Call::new(&system, request_id);
        let resource = Resource::Instance;
        if self
            .store()
            .signin_failures_since(&email_key, window_start)
            .await?
            >= config.signin_failures_max
        {
            let minutes = (config.signin_failure_window_seconds + 59) / 60;
            let error = Error::limit(
                "signin_failures_max",
                format!(
                    "too many failed sign-ins for this address; try again in {minutes} minutes"
                ),
            );
            let detail = serde_json::json!({ "email": email_key, "reason": "throttled" });
            let mut tx = self.store().write().await?;
            tx.append_audit(&crate::audit_record(
                &call,
                SESSION_CREATE,
                &resource,
                Outcome::Denied,
                &detail,
            ))
            .await?;
            tx.commit().await?;
            return Err(error);
        }
        let record = match Email::parse(email) {
            Ok(email) => self.store().user_by_email(&email).await?,
            Err(_) => None,
        };
        let stored_hash = record
            .as_ref()
            .and_then(|record| record.password_hash.clone());
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            // Verify against a decoy when there is no user, so that timing does not reveal who exists.
            let hash = stored_hash
                .as_deref()
                .unwrap_or_else(|| secrets::decoy_password_hash());
            secrets::verify_password(&password, hash)
        })
        .await
        .map_err(|e| Error::Internal(format!("password check: {e}")))?;
        let user = match (record, matches) {
            (Some(record), true) if record.password_hash.is_some() => record.user,
            _ => {
                let mut tx = self.store().write().await?;
                tx.record_signin_failure(&email_key, now).await?;
                let detail = serde_json::json!({ "email": email_key, "reason": "credentials did not match" });
                let record =
                    crate::audit_record(&call, SESSION_CREATE, &resource, Outcome::Failed, &detail);
                tx.append_audit(&record).await?;
                tx.commit().await?;
                return Err(Error::Unauthenticated(
                    "the e-mail address and password did not match".into(),
                ));
            }
        };
        let mut tx = self.store().write().await?;
        tx.clear_signin_failures(&email_key, window_start).await?;
        tx.commit().await?;
        self.open_session(user, request_id).await
    }

    /// Creates a session for a user who just proved who they are.
    async fn open_session(&self, user: User, request_id: RequestId) -> Result<SignIn> {
        let now = Timestamp::now();
        let memberships = self.store().memberships_of(user.id).await?;
        let acting = memberships.first().map(|(org, role)| Acting {
            org_id: org.id,
            role: *role,
            is_operator: org.kind == OrgKind::Operator,
        });
        let org_id = acting.map(|acting| acting.org_id);
        let session_secret = secrets::new_secret();
        let record = SessionRecord {
            id: SessionId::new(),
            user_id: user.id,
            org_id,
            csrf_token: secrets::new_secret(),
            expires_at: now.plus_seconds(self.config().session_ttl_seconds),
            revoked_at: None,
        };
        // Acting for the organisation, so that the sign-in shows in that organisation's audit log.
        let actor = Actor {
            user_id: Some(user.id),
            acting,
            credential: Credential::Session(record.id),
        };
        let call = Call::new(&actor, request_id);
        let mut tx = self.store().write().await?;
        tx.insert_session(&record, &sha256(&session_secret), now)
            .await?;
        let resource = Resource::Instance;
        let done = Done {
            action: SESSION_CREATE,
            resource: &resource,
            detail: serde_json::json!({ "session": record.id.to_string() }),
            events: vec![],
        };
        self.commit(tx, None, &call, done, &()).await?;
        Ok(SignIn {
            session_secret,
            csrf_token: record.csrf_token,
            user,
            expires_at: record.expires_at,
        })
    }

    pub async fn sign_out(&self, session: &PortalSession, request_id: RequestId) -> Result<()> {
        let call = Call::new(&session.actor, request_id);
        let mut tx = self.store().write().await?;
        tx.revoke_session(session.record.id, Timestamp::now())
            .await?;
        let resource = Resource::Instance;
        let done = Done {
            action: "session.delete",
            resource: &resource,
            detail: serde_json::json!({}),
            events: vec![],
        };
        self.commit(tx, None, &call, done, &()).await
    }

    /// Creates a customer account: a user without an organisation.
    pub async fn sign_up(
        &self,
        email: &str,
        display_name: &str,
        password: &str,
        request_id: RequestId,
    ) -> Result<SignIn> {
        let email = Email::parse(email)?;
        let display_name = PersonName::parse(display_name)?;
        let password = Password::parse(password)?;
        let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
            .await
            .map_err(|e| Error::Internal(format!("password hashing: {e}")))??;
        let user = User {
            id: UserId::new(),
            email,
            display_name,
            created_at: Timestamp::now(),
        };
        let actor = Actor {
            user_id: Some(user.id),
            acting: None,
            credential: Credential::System,
        };
        let call = Call::new(&actor, request_id);
        let mut tx = self.store().write().await?;
        tx.insert_user(&user, Some(&hash)).await?;
        let resource = Resource::Instance;
        let done = Done {
            action: "user.create",
            resource: &resource,
            detail: serde_json::json!({ "user": user.id.to_string(), "email": user.email.as_str() }),
            events: vec![event(
                "user.created",
                user.id,
                None,
                serde_json::json!({ "user_id": user.id }),
            )],
        };
        self.commit(tx, None, &call, done, &()).await?;
        self.open_session(user, request_id).await
    }

    /// Whether a sign-in link is still good (for showing its page).
    pub async fn signin_link_is_valid(&self, secret: &str) -> Result<bool> {
        Ok(self
            .store()
            .signin_link_user(&sha256(secret), Timestamp::now())
            .await?
            .is_some())
    }

    /// Uses a one-time link: sets the user's password and signs them in. Works once.
    pub async fn use_signin_link(
        &self,
        secret: &str,
        password: &str,
        request_id: RequestId,
    ) -> Result<SignIn> {
        let password = Password::parse(password)?;
        let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
            .await
            .map_err(|e| Error::Internal(format!("password hashing: {e}")))??;
        let mut tx = self.store().write().await?;
        let user_id = tx
            .use_signin_link(&sha256(secret), Timestamp::now())
            .await?
            .ok_or_else(|| Error::Unauthenticated("this sign-in link was already used or has expired; ask an administrator for a new one".into()))?;
        tx.set_password_hash(user_id, &hash).await?;
        let actor = Actor {
            user_id: Some(user_id),
            acting: None,
            credential: Credential::System,
        };
        let call = Call::new(&actor, request_id);
        let resource = Resource::Instance;
        let done = Done {
            action: "user.set_password",
            resource: &resource,
            detail: serde_json::json!({ "user": user_id.to_string() }),
            events: vec![],
        };
        self.commit(tx, None, &call, done, &()).await?;
        let user = self
            .store()
            .user(user_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {user_id}")))?;
        self.open_session(user, request_id).await
    }

    /// Makes a one-time sign-in link for a user, inside the caller's transaction.
    pub(crate) async fn new_signin_link(
        &self,
        tx: &mut agora_store::WriteTx,
        user_id: UserId,
    ) -> Result<SigninLink> {
        let secret = secrets::new_secret();
        let expires_at = Timestamp::now().plus_seconds(self.config().signin_link_ttl_seconds);
        tx.insert_signin_link(&sha256(&secret), user_id, expires_at)
            .await?;
        let base = self.config().public_url.trim_end_matches('/');
        Ok(SigninLink {
            url: format!("{base}/signin/link/{secret}"),
            expires_at,
        })
    }

    /// On the first start: the operator organisation, its owner, a sign-in link and a token.
    /// Returns `None` when the instance was bootstrapped before.
    pub async fn bootstrap(
        &self,
        operator_name: &str,
        owner_email: &str,
    ) -> Result<Option<Bootstrap>> {
        if self.store().setting(BOOTSTRAPPED).await?.is_some() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let operator = Organisation {
            id: agora_domain::OrgId::new(),
            name: OrgName::parse(operator_name)?,
            kind: OrgKind::Operator,
            status: OrgStatus::Active,
            created_at: now,
        };
        let owner = User {
            id: UserId::new(),
            email: Email::parse(owner_email)?,
            display_name: PersonName::parse("Operator owner")?,
            created_at: now,
        };
        let token = secrets::new_token();
        let token_record = agora_domain::model::ApiToken {
            id: agora_domain::TokenId::new(),
            prefix: token.prefix.clone(),
            name: "bootstrap".into(),
            org_id: operator.id,
            user_id: owner.id,
            role: Role::Owner,
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        let system = Actor::system();
        let call = Call::new(&system, RequestId::new());
        let mut tx = self.store().write().await?;
        tx.set_setting(BOOTSTRAPPED, &now.to_rfc3339()).await?;
        tx.insert_org(&operator).await?;
        tx.insert_user(&owner, None).await?;
        tx.upsert_membership(operator.id, owner.id, Role::Owner, now)
            .await?;
        tx.insert_token(&token_record, &token.hash).await?;
        let signin_link = self.new_signin_link(&mut tx, owner.id).await?;
        let resource = Resource::Organisation(operator.id);
        let done = Done {
            action: Action::OrgCreate.as_str(),
            resource: &resource,
            detail: serde_json::json!({ "bootstrap": true, "name": operator.name.as_str(), "owner": owner.email.as_str() }),
            events: vec![event(
                "org.created",
                operator.id,
                Some(operator.id),
                serde_json::json!({ "name": operator.name.as_str(), "kind": "operator" }),
            )],
        };
        self.commit(tx, None, &call, done, &()).await?;
        Ok(Some(Bootstrap {
            operator,
            owner,
            signin_link: signin_link.url,
            token: token.full,
        }))
    }
}

/// The audited name of a sign-in, successful or not.
const SESSION_CREATE: &str = "session.create";

impl App {
    /// A fresh one-time sign-in link for an existing user (offline administration).
    pub async fn signin_link_for(&self, email: &str) -> Result<SigninLink> {
        let email = Email::parse(email)?;
        let user = self
            .store()
            .user_by_email(&email)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {email}")))?;
        let system = Actor::system();
        let call = Call::new(&system, RequestId::new());
        let mut tx = self.store().write().await?;
        let link = self.new_signin_link(&mut tx, user.user.id).await?;
        let resource = Resource::Instance;
        let done = Done {
            action: "user.signin_link",
            resource: &resource,
            detail: serde_json::json!({ "user": user.user.id.to_string() }),
            events: vec![],
        };
        self.commit(tx, None, &call, done, &()).await?;
        Ok(link)
    }
}
