//! Organisations, their members and their API tokens.

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::model::{ApiToken, Member, OrgKind, OrgStatus, Organisation, User};
use agora_domain::{
    Email, Error, OrgId, OrgName, Password, PersonName, Result, Role, Timestamp, TokenId, UserId,
};
use serde::{Deserialize, Serialize};

use crate::auth::SigninLink;
use crate::secrets;
use crate::{Admission, App, Begun, Call, Done, Page, event};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateOrg {
    pub name: OrgName,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateOrg {
    pub name: OrgName,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewMember {
    pub email: Email,
    pub role: Role,
    /// Used when the user does not exist yet.
    pub display_name: Option<PersonName>,
    /// Only the instance itself (seeding, offline admin) may set a password; others get a sign-in link.
    #[serde(skip)]
    pub password: Option<Password>,
}

/// The parts of a new member that identify the request, for idempotency.
#[derive(Serialize)]
struct NewMemberKey<'a> {
    org_id: OrgId,
    email: &'a Email,
    role: Role,
    display_name: Option<&'a PersonName>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberAdded {
    pub member: Member,
    /// A one-time link for a new user to choose a password; shown once.
    pub signin_link: Option<SigninLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateToken {
    /// What the token is for, to recognise it in the list ("ci", "bi dashboard").
    pub name: String,
    pub role: Role,
    /// Days until the token stops working; none for no expiry.
    pub expires_in_days: Option<u32>,
}

/// A new token: its record, and the secret shown only in this response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

/// What `create_token` stores for a replay: never the secret.
#[derive(Serialize, Deserialize)]
struct CreatedTokenReplay {
    token: ApiToken,
}

pub const TOKEN_NAME_CHARS_MAX: usize = 100;
pub const TOKEN_EXPIRY_DAYS_MAX: u32 = 3650;

impl App {
    pub async fn create_org(&self, call: &Call<'_>, input: CreateOrg) -> Result<Organisation> {
        let action = Action::OrgCreate;
        self.authorize(call, action, &Resource::Instance, &Context::default())
            .await?;
        let result = async {
            let (tx, idempotency) = match self.begin(call, action, &input).await? {
                Begun::Replay(org) => return Ok(org),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let mut tx = tx;
            let by_operator = call.actor.acting.is_some_and(|acting| acting.is_operator)
                || call.actor.is_system();
            let status = match self.config().admission {
                Admission::Approval if !by_operator => OrgStatus::Pending,
                _ => OrgStatus::Active,
            };
            let now = Timestamp::now();
            let org = Organisation {
                id: OrgId::new(),
                name: input.name.clone(),
                kind: OrgKind::Partner,
                status,
                created_at: now,
            };
            tx.insert_org(&org).await?;
            if let Some(user_id) = call.actor.user_id {
                tx.upsert_membership(org.id, user_id, Role::Owner, now)
                    .await?;
            }
            let resource = Resource::Organisation(org.id);
            let data = serde_json::json!({ "name": org.name.as_str(), "status": org.status });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("org.created", org.id, Some(org.id), data)],
            };
            self.commit(tx, idempotency, call, done, &org).await?;
            Ok(org)
        }
        .await;
        self.audited(call, action, &Resource::Instance, result)
            .await
    }

    pub async fn org(&self, call: &Call<'_>, org_id: OrgId) -> Result<Organisation> {
        let resource = Resource::Organisation(org_id);
        self.authorize(call, Action::OrgRead, &resource, &Context::default())
            .await?;
        if let Some(org) = self.inner.cache.org(org_id) {
            return Ok(org);
        }
        let org = self
            .store()
            .org(org_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("organisation {org_id}")))?;
        self.inner.cache.put_org(&org);
        Ok(org)
    }

    pub async fn orgs(
        &self,
        call: &Call<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Organisation>> {
        self.authorize(
            call,
            Action::OrgList,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let after = cursor
            .map(|cursor| cursor.parse::<OrgId>())
            .transpose()
            .map_err(|_| invalid_cursor())?;
        let orgs = self.store().orgs(after, limit + 1).await?;
        Ok(Page::from_overfetch(orgs, limit, |org| org.id.to_string()))
    }

    pub async fn update_org(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        input: UpdateOrg,
    ) -> Result<Organisation> {
        let action = Action::OrgUpdate;
        let resource = Resource::Organisation(org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let mut tx = self.store().write().await?;
            tx.rename_org(org_id, &input.name).await?;
            let data = serde_json::json!({ "name": input.name.as_str() });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("org.updated", org_id, Some(org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.store()
                .org(org_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("organisation {org_id}")))
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Admits an organisation that was waiting for approval.
    pub async fn approve_org(&self, call: &Call<'_>, org_id: OrgId) -> Result<Organisation> {
        let action = Action::OrgApprove;
        let resource = Resource::Organisation(org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        // Approving an admitted organisation again changes nothing, and says so by changing nothing.
        if let Some(org) = self.store().org(org_id).await?
            && org.status == OrgStatus::Active
        {
            return Ok(org);
        }
        let result = async {
            let mut tx = self.store().write().await?;
            tx.set_org_status(org_id, OrgStatus::Active).await?;
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: serde_json::json!({}),
                events: vec![event(
                    "org.approved",
                    org_id,
                    Some(org_id),
                    serde_json::json!({}),
                )],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.store()
                .org(org_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("organisation {org_id}")))
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    pub async fn members(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Member>> {
        self.authorize(
            call,
            Action::MemberList,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let after = cursor
            .map(|cursor| cursor.parse::<UserId>())
            .transpose()
            .map_err(|_| invalid_cursor())?;
        let members = self.store().members(org_id, after, limit + 1).await?;
        Ok(Page::from_overfetch(members, limit, |member| {
            member.user_id.to_string()
        }))
    }

    /// Adds a user to an organisation (creating the user if the e-mail is new), or changes their role.
    pub async fn add_member(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        input: NewMember,
    ) -> Result<MemberAdded> {
        let action = Action::MemberAdd;
        let resource = Resource::Organisation(org_id);
        // Changing an existing member's role is judged by what they are now, too (owners-manage-owners).
        let target_role = match self.store().user_by_email(&input.email).await? {
            Some(existing) => self.store().membership(org_id, existing.user.id).await?,
            None => None,
        };
        let context = Context {
            granted_role: Some(input.role),
            target_role,
        };
        self.authorize(call, action, &resource, &context).await?;
        if input.password.is_some() && !call.actor.is_system() {
            return Err(Error::invalid(
                "password",
                "only the instance sets passwords for others; new members get a sign-in link",
            ));
        }
        let key = NewMemberKey {
            org_id,
            email: &input.email,
            role: input.role,
            display_name: input.display_name.as_ref(),
        };
        let result = async {
            let (mut tx, idempotency) = match self.begin(call, action, &key).await? {
                Begun::Replay(added) => return Ok(added),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let now = Timestamp::now();
            let mut signin_link = None;
            let user = match tx.user_by_email(&input.email).await? {
                Some(user) => user,
                None => {
                    let display_name = match &input.display_name {
                        Some(name) => name.clone(),
                        None => PersonName::parse(
                            input.email.as_str().split('@').next().unwrap_or("member"),
                        )?,
                    };
                    let user = User {
                        id: UserId::new(),
                        email: input.email.clone(),
                        display_name,
                        created_at: now,
                    };
                    let hash = match &input.password {
                        Some(password) => {
                            let password = password.clone();
                            Some(
                                tokio::task::spawn_blocking(move || {
                                    secrets::hash_password(&password)
                                })
                                .await
                                .map_err(|e| Error::Internal(format!("password hashing: {e}")))??,
                            )
                        }
                        None => None,
                    };
                    tx.insert_user(&user, hash.as_deref()).await?;
                    if hash.is_none() {
                        signin_link = Some(self.new_signin_link(&mut tx, user.id).await?);
                    }
                    user
                }
            };
            tx.upsert_membership(org_id, user.id, input.role, now)
                .await?;
            if tx.owner_count(org_id).await? == 0 {
                return Err(Error::Conflict(
                    "an organisation keeps at least one owner; make someone else owner first"
                        .into(),
                ));
            }
            let member = Member {
                user_id: user.id,
                email: user.email,
                display_name: user.display_name,
                role: input.role,
                since: now,
            };
            let data = serde_json::json!({ "user_id": member.user_id, "role": member.role });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("member.added", member.user_id, Some(org_id), data)],
            };
            // A replay gets the member without the link: a link's secret is never stored.
            let replay = MemberAdded {
                member: member.clone(),
                signin_link: None,
            };
            self.commit(tx, idempotency, call, done, &replay).await?;
            let added = MemberAdded {
                member,
                signin_link,
            };
            Ok(added)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    pub async fn remove_member(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        user_id: UserId,
    ) -> Result<()> {
        let action = Action::MemberRemove;
        let resource = Resource::Organisation(org_id);
        let context = Context {
            target_role: self.store().membership(org_id, user_id).await?,
            ..Context::default()
        };
        self.authorize(call, action, &resource, &context).await?;
        let result = async {
            let mut tx = self.store().write().await?;
            tx.delete_membership(org_id, user_id).await?;
            if tx.owner_count(org_id).await? == 0 {
                return Err(Error::Conflict(
                    "an organisation keeps at least one owner; make someone else owner first"
                        .into(),
                ));
            }
            let data = serde_json::json!({ "user_id": user_id });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("member.removed", user_id, Some(org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Creates a token for the acting user in `org_id`; the secret is in this answer only.
    ///
    /// A replay with the same Idempotency-Key returns the token's record without the secret,
    /// since the secret is never stored.
    pub async fn create_token(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        input: CreateToken,
    ) -> Result<CreatedToken> {
        let action = Action::TokenCreate;
        let resource = Resource::Organisation(org_id);
        let context = Context {
            granted_role: Some(input.role),
            ..Context::default()
        };
        self.authorize(call, action, &resource, &context).await?;
        let result = async {
            let name = input.name.trim();
            if name.is_empty() || name.chars().count() > TOKEN_NAME_CHARS_MAX || name.chars().any(char::is_control) {
                return Err(Error::invalid("name", format!("must be 1 to {TOKEN_NAME_CHARS_MAX} characters without control characters")));
            }
            if input.expires_in_days.is_some_and(|days| days == 0 || days > TOKEN_EXPIRY_DAYS_MAX) {
                return Err(Error::invalid("expires_in_days", format!("must be 1 to {TOKEN_EXPIRY_DAYS_MAX}")));
            }
            let user_id = match call.actor.user_id {
                Some(user_id) => user_id,
                // The instance itself makes tokens on behalf of the organisation's first owner.
                None => self
                    .store()
                    .members(org_id, None, u32::MAX)
                    .await?
                    .into_iter()
                    .find(|member| member.role == Role::Owner)
                    .map(|member| member.user_id)
                    .ok_or_else(|| Error::not_found(format!("an owner of {org_id}")))?,
            };
            if self.store().membership(org_id, user_id).await?.is_none() {
                return Err(Error::invalid("org_id", "tokens act for a member; you are not a member of this organisation"));
            }
            let (mut tx, idempotency) = match self.begin(call, action, &(org_id, &input)).await? {
                Begun::Replay(CreatedTokenReplay { token }) => return Ok(CreatedToken { token, secret: String::new() }),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let now = Timestamp::now();
            let secret = secrets::new_token();
            let token = ApiToken {
                id: TokenId::new(),
                prefix: secret.prefix.clone(),
                name: name.to_owned(),
                org_id,
                user_id,
                role: input.role,
                created_at: now,
                expires_at: input.expires_in_days.map(|days| now.plus_seconds(i64::from(days) * 86_400)),
                revoked_at: None,
            };
            tx.insert_token(&token, &secret.hash).await?;
            let data = serde_json::json!({ "token_id": token.id, "prefix": token.prefix, "role": token.role, "name": token.name });
            let done = Done { action: action.as_str(), resource: &resource, detail: data.clone(), events: vec![event("token.created", token.id, Some(org_id), data)] };
            self.commit(tx, idempotency, call, done, &CreatedTokenReplay { token: token.clone() }).await?;
            Ok(CreatedToken { token, secret: secret.full })
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    pub async fn tokens(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ApiToken>> {
        self.authorize(
            call,
            Action::TokenList,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let after = cursor
            .map(|cursor| cursor.parse::<TokenId>())
            .transpose()
            .map_err(|_| invalid_cursor())?;
        let tokens = self.store().tokens(org_id, after, limit + 1).await?;
        Ok(Page::from_overfetch(tokens, limit, |token| {
            token.id.to_string()
        }))
    }

    pub async fn revoke_token(&self, call: &Call<'_>, token_id: TokenId) -> Result<ApiToken> {
        let token = self
            .store()
            .token(token_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("token {token_id}")))?;
        let action = Action::TokenRevoke;
        let resource = Resource::Token {
            id: token.id,
            org_id: token.org_id,
            owner: token.user_id,
        };
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        if token.revoked_at.is_some() {
            // Revoked already: the first revocation stands, and nothing is recorded twice.
            return Ok(token);
        }
        let result = async {
            let mut tx = self.store().write().await?;
            tx.revoke_token(token_id, Timestamp::now()).await?;
            let data = serde_json::json!({ "token_id": token_id, "prefix": token.prefix });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("token.revoked", token_id, Some(token.org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.store()
                .token(token_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("token {token_id}")))
        }
        .await;
        self.audited(call, action, &resource, result).await
    }
}

pub(crate) fn invalid_cursor() -> Error {
    Error::invalid("cursor", "is not a cursor this listing gave out")
}
