//! What a customer does with mini-apps, through the portal: launch contexts, consent and grants,
//! payment requests confirmed in the portal's cashier, and notifications.
//!
//! Every call here is the customer's own (`miniapp.use` on themselves, never through an API
//! token), except creating payment requests and reading them, which the mini-app's partner does
//! from its backend (`miniapp.manage` on its organisation).

use std::collections::BTreeSet;

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::Currency;
use agora_domain::listing::ListingKind;
use agora_domain::miniapp::{Manifest, Scope, format_scopes};
use agora_domain::{
    Error, GrantId, ListingId, MiniAppId, NotificationId, OrderId, OrgId, PaymentRequestId, Result,
    SlotId, Timestamp, UserId,
};
use agora_store::{GrantRecord, MiniAppRecord, NotificationRecord, PaymentRequestRecord};
use serde::{Deserialize, Serialize};

use super::{jws, pairwise_subject, stored_scopes};

/// How long a confirmation may hold a payment request `paying` before it is presumed
/// interrupted and settled by [`App::resume_payment_requests`]. Placing an order takes
/// milliseconds; the lease only has to outlast a slow database.
pub const PAYING_LEASE_SECONDS: i64 = 60;
use crate::{App, Call, CartLine, Done, NewOrder, PayWith, event};

/// How often one customer's launches of one mini-app are written at most.
const LAUNCH_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How many recently used mini-apps a home remembers.
const RECENT_MAX: u32 = 12;
/// How long a customer's home is served from memory; other servers' writes show within it.
const HOME_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// How many lines one payment request may hold.
const PAYMENT_LINES_MAX: usize = 50;
const NOTIFICATION_TITLE_CHARS_MAX: usize = 80;
const NOTIFICATION_BODY_CHARS_MAX: usize = 500;

/// What a mini-app learns when it launches: signed by the instance, short-lived, and limited to
/// what the customer granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaunchContext {
    /// A compact JWS (EdDSA) the mini-app's backend verifies with the instance's JWKS.
    pub token: String,
    /// The token's claims, for the mini-app's page.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub claims: serde_json::Value,
}

/// One scope in the consent dialog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentScope {
    pub scope: Scope,
    pub title: String,
    pub reason: String,
    pub granted: bool,
}

/// What the consent dialog shows: which mini-app, whose, and each scope with its reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentView {
    pub app_id: MiniAppId,
    pub name: String,
    pub seller_name: String,
    pub scopes: Vec<ConsentScope>,
}

/// A grant, as the customer's grants page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    pub id: GrantId,
    pub app_id: MiniAppId,
    pub app_name: String,
    pub app_slug: String,
    pub seller_name: String,
    pub scopes: Vec<ConsentScope>,
    pub granted_at: Timestamp,
    pub updated_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A payment a mini-app asks for: listings of the mini-app's own organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPaymentRequest {
    /// The customer, as the mini-app knows them: its pairwise subject id. Only for requests
    /// from the partner's backend; the portal knows who is signed in.
    #[serde(default)]
    pub subject: Option<String>,
    pub lines: Vec<PaymentLineInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentLineInput {
    pub listing_id: ListingId,
    pub quantity: u32,
    #[serde(default)]
    pub slot_id: Option<SlotId>,
}

/// One line of a payment request, priced by the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentLine {
    pub listing_id: ListingId,
    pub title: String,
    pub quantity: u32,
    pub slot_id: Option<SlotId>,
    pub slot_starts_at: Option<Timestamp>,
    pub unit_price: i64,
    pub amount: i64,
    pub amount_text: String,
}

/// A payment request: what the cashier shows, and its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentRequestView {
    pub id: PaymentRequestId,
    pub app_id: MiniAppId,
    pub seller: OrgId,
    pub seller_name: String,
    /// The customer's pairwise subject id for this mini-app.
    pub subject: String,
    /// `pending`, `paying`, `paid`, `cancelled` or `expired`.
    pub state: String,
    pub amount: i64,
    pub currency: String,
    pub amount_text: String,
    pub lines: Vec<PaymentLine>,
    pub order_id: Option<OrderId>,
    /// The outcome signed by the instance (a compact JWS, `typ` `agora-payment+jwt`), once decided.
    pub notification: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One notification in the inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    pub id: NotificationId,
    pub app_id: MiniAppId,
    pub app_name: String,
    pub title: String,
    pub body: String,
    pub created_at: Timestamp,
    pub read: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentDoc {
    lines: Vec<PaymentLine>,
}

impl App {
    fn customer_of(&self, call: &Call<'_>) -> Result<UserId> {
        call.actor.user_id.ok_or_else(|| {
            Error::Unauthenticated("sign in as a person to use mini-apps".to_owned())
        })
    }

    /// Authorizes the customer's own use of mini-apps and returns who they are.
    async fn authorize_use(&self, call: &Call<'_>) -> Result<(UserId, Resource)> {
        let customer = self.customer_of(call)?;
        let resource = Resource::Customer(customer);
        self.authorize(call, Action::MiniAppUse, &resource, &Context::default())
            .await?;
        Ok((customer, resource))
    }

    /// The live mini-app behind a slug, with its manifest.
    pub(crate) async fn launchable(&self, slug: &str) -> Result<(MiniAppRecord, Manifest)> {
        let app = self
            .store()
            .miniapp_by_slug(slug)
            .await?
            .ok_or_else(|| Error::not_found(format!("mini-app `{slug}`")))?;
        let manifest = self.live_manifest(&app).await?.ok_or_else(|| {
            Error::not_found(format!("mini-app `{slug}`: it has no approved version yet"))
        })?;
        Ok((app, manifest))
    }

    /// The mini-app's view of the customer: its pairwise subject id (remembered, so the partner
    /// can address payment requests to it).
    async fn subject_for(&self, app_id: MiniAppId, customer: UserId) -> Result<String> {
        let subject = pairwise_subject(self.key(), app_id, customer);
        let cache = &self.inner.superapp_cache;
        if cache
            .subjects
            .lock()
            .expect("subject cache")
            .contains(&(app_id, customer))
        {
            return Ok(subject);
        }
        if self.store().subject_user(app_id, &subject).await?.is_none() {
            let mut tx = self.store().write().await?;
            tx.remember_subject(app_id, &subject, customer).await?;
            tx.commit().await?;
        }
        let mut subjects = cache.subjects.lock().expect("subject cache");
        if subjects.len() > 100_000 {
            subjects.clear();
        }
        subjects.insert((app_id, customer));
        Ok(subject)
    }

    /// Claims about the customer the granted scopes allow.
    pub(crate) async fn granted_claims(
        &self,
        customer: UserId,
        scopes: &BTreeSet<Scope>,
        claims: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let user = self
            .store()
            .user(customer)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {customer}")))?;
        if scopes.contains(&Scope::Profile) {
            claims.insert("name".into(), user.display_name.to_string().into());
        }
        if scopes.contains(&Scope::Email) {
            claims.insert("email".into(), user.email.to_string().into());
        }
        Ok(())
    }

    /// A fresh launch context for the signed-in customer: who they are to this mini-app, and
    /// only what they granted. Each launch is counted (recently used, active users).
    pub async fn launch_miniapp(&self, call: &Call<'_>, slug: &str) -> Result<LaunchContext> {
        let (customer, _) = self.authorize_use(call).await?;
        let (app, _) = self.launchable(slug).await?;
        let now = Timestamp::now();
        let subject = self.subject_for(app.id, customer).await?;
        let grant = self.store().active_grant(customer, app.id).await?;
        let scopes = grant
            .as_ref()
            .map(|grant| stored_scopes(&grant.scopes))
            .unwrap_or_default();
        let iat = now.as_micros() / 1_000_000;
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), self.config().public_url.clone().into());
        claims.insert("aud".into(), app.id.to_string().into());
        claims.insert("sub".into(), subject.into());
        claims.insert("iat".into(), iat.into());
        claims.insert(
            "exp".into(),
            (iat + self.superapp().launch_ttl_seconds).into(),
        );
        claims.insert("jti".into(), crate::secrets::new_secret().into());
        claims.insert("scope".into(), format_scopes(&scopes).into());
        claims.insert("app_version".into(), app.live_version.into());
        self.granted_claims(customer, &scopes, &mut claims).await?;
        let claims = serde_json::Value::Object(claims);
        let token = jws::sign_jws(self.key(), "agora-launch+jwt", &claims);
        // Launches feed "recently used" and the partner's active users: a minute's precision is
        // enough, so a customer's repeated launches of one app write at most once a minute.
        let due = {
            let mut launches = self
                .inner
                .superapp_cache
                .launches
                .lock()
                .expect("launch cache");
            if launches.len() > 100_000 {
                launches.clear();
            }
            let due = launches
                .get(&(app.id, customer))
                .is_none_or(|at| at.elapsed() >= LAUNCH_WRITE_INTERVAL);
            if due {
                launches.insert((app.id, customer), std::time::Instant::now());
            }
            due
        };
        if due {
            let mut tx = self.store().write().await?;
            tx.record_launch(app.id, customer, now).await?;
            tx.commit().await?;
            self.inner.superapp_cache.forget_home(customer);
        }
        Ok(LaunchContext { token, claims })
    }

    /// What the consent dialog shows for `scopes` (each must be declared by the manifest).
    pub async fn miniapp_consent(
        &self,
        call: &Call<'_>,
        slug: &str,
        scopes: &BTreeSet<Scope>,
    ) -> Result<ConsentView> {
        let (customer, _) = self.authorize_use(call).await?;
        let (app, manifest) = self.launchable(slug).await?;
        check_declared(&manifest, scopes)?;
        let granted = self
            .store()
            .active_grant(customer, app.id)
            .await?
            .map(|grant| stored_scopes(&grant.scopes))
            .unwrap_or_default();
        Ok(ConsentView {
            app_id: app.id,
            name: manifest.name.clone(),
            seller_name: self.seller_name(app.org_id).await?,
            scopes: consent_scopes(&manifest, scopes, &granted),
        })
    }

    /// The customer grants `scopes` to the mini-app (added to what it holds); answers every
    /// scope it holds now.
    pub async fn grant_scopes(
        &self,
        call: &Call<'_>,
        slug: &str,
        scopes: &BTreeSet<Scope>,
    ) -> Result<(GrantId, BTreeSet<Scope>)> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            let (app, manifest) = self.launchable(slug).await?;
            check_declared(&manifest, scopes)?;
            self.grant_now(call, &resource, customer, &app, scopes)
                .await
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// Adds `scopes` to the customer's grant to `app`, creating the grant if there is none.
    pub(crate) async fn grant_now(
        &self,
        call: &Call<'_>,
        resource: &Resource,
        customer: UserId,
        app: &MiniAppRecord,
        scopes: &BTreeSet<Scope>,
    ) -> Result<(GrantId, BTreeSet<Scope>)> {
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        let (grant_id, all) = match tx.active_grant(customer, app.id).await? {
            Some(grant) => {
                let mut all = stored_scopes(&grant.scopes);
                all.extend(scopes.iter().copied());
                tx.update_grant_scopes(grant.id, &format_scopes(&all), now)
                    .await?;
                (grant.id, all)
            }
            None => {
                let all: BTreeSet<Scope> = scopes.iter().copied().collect();
                let grant = GrantRecord {
                    id: GrantId::new(),
                    user_id: customer,
                    app_id: app.id,
                    scopes: format_scopes(&all),
                    created_at: now,
                    updated_at: now,
                    revoked_at: None,
                };
                tx.insert_grant(&grant).await?;
                (grant.id, all)
            }
        };
        let data = serde_json::json!({
            "grant_id": grant_id, "app_id": app.id, "added": format_scopes(scopes), "scopes": format_scopes(&all),
        });
        let done = Done {
            action: Action::MiniAppUse.as_str(),
            resource,
            detail: data.clone(),
            // The partner learns of installs from its figures, not from who installed.
            events: vec![event(
                "miniapp.granted",
                app.id,
                Some(app.org_id),
                serde_json::json!({ "app_id": app.id, "scopes": format_scopes(&all) }),
            )],
        };
        self.commit(tx, None, call, done, &()).await?;
        Ok((grant_id, all))
    }

    /// Revokes a grant: the mini-app loses what it was granted, and every access token issued
    /// under the grant stops working at once.
    pub async fn revoke_grant(&self, call: &Call<'_>, grant_id: GrantId) -> Result<()> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            let grant = self
                .store()
                .grant(grant_id)
                .await?
                .filter(|grant| grant.user_id == customer)
                .ok_or_else(|| Error::not_found(format!("grant {grant_id}")))?;
            let app = self.existing_miniapp(grant.app_id).await?;
            let mut tx = self.store().write().await?;
            if !tx.revoke_grant(grant_id, Timestamp::now()).await? {
                return Err(Error::Conflict(format!(
                    "grant {grant_id} was revoked already"
                )));
            }
            let data = serde_json::json!({ "grant_id": grant_id, "app_id": grant.app_id });
            let done = Done {
                action: Action::MiniAppUse.as_str(),
                resource: &resource,
                detail: data,
                events: vec![event(
                    "miniapp.grant_revoked",
                    app.id,
                    Some(app.org_id),
                    serde_json::json!({ "app_id": app.id }),
                )],
            };
            self.commit(tx, None, call, done, &()).await
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// Every grant the customer gave, in force first, then revoked ones.
    pub async fn grants(&self, call: &Call<'_>) -> Result<Vec<GrantView>> {
        let (customer, _) = self.authorize_use(call).await?;
        let mut views = Vec::new();
        for grant in self.store().grants_of_user(customer).await? {
            let app = self.existing_miniapp(grant.app_id).await?;
            let manifest = self.live_manifest(&app).await?;
            let scopes = stored_scopes(&grant.scopes);
            let view = self.miniapp_view(&app).await?;
            views.push(GrantView {
                id: grant.id,
                app_id: app.id,
                app_name: view.name,
                app_slug: app.slug.clone(),
                seller_name: view.seller_name,
                scopes: scopes
                    .iter()
                    .map(|scope| ConsentScope {
                        scope: *scope,
                        title: scope.title().to_owned(),
                        reason: manifest
                            .as_ref()
                            .and_then(|m| m.reason(*scope))
                            .unwrap_or_default()
                            .to_owned(),
                        granted: grant.revoked_at.is_none(),
                    })
                    .collect(),
                granted_at: grant.created_at,
                updated_at: grant.updated_at,
                revoked_at: grant.revoked_at,
            });
        }
        views.sort_by_key(|grant| grant.revoked_at.is_some());
        Ok(views)
    }

    /// The mini-apps the customer used, most recent first.
    pub async fn recently_used(
        &self,
        call: &Call<'_>,
        limit: u32,
    ) -> Result<Vec<super::MiniAppView>> {
        let (customer, _) = self.authorize_use(call).await?;
        let home = self.customer_home(customer).await?;
        let directory = self.live_directory().await?;
        Ok(home
            .recent
            .iter()
            .take(limit as usize)
            .filter_map(|app_id| directory.iter().find(|view| view.id == *app_id))
            .cloned()
            .collect())
    }

    /// The customer's recent launches and unread count, cached for a moment.
    async fn customer_home(&self, customer: UserId) -> Result<super::CustomerHome> {
        let cache = &self.inner.superapp_cache;
        if let Some((at, home)) = cache.homes.lock().expect("home cache").get(&customer)
            && at.elapsed() < HOME_CACHE_TTL
        {
            return Ok(home.clone());
        }
        let recent = self
            .store()
            .launches_of_user(customer, RECENT_MAX)
            .await?
            .iter()
            .map(|launch| launch.app_id)
            .collect();
        let unread = self
            .store()
            .notifications_of_user(customer, 100)
            .await?
            .iter()
            .filter(|record| record.read_at.is_none())
            .count();
        let home = super::CustomerHome { recent, unread };
        let mut homes = cache.homes.lock().expect("home cache");
        if homes.len() > 100_000 {
            homes.clear();
        }
        homes.insert(customer, (std::time::Instant::now(), home.clone()));
        Ok(home)
    }

    // -------------------------------------------------------------------------------------
    // Payments
    // -------------------------------------------------------------------------------------

    /// The signed-in customer's mini-app asks for a payment for its organisation's listings: the
    /// server prices it; the cashier shows what is stored here, never what the mini-app said.
    pub async fn request_payment_in_portal(
        &self,
        call: &Call<'_>,
        slug: &str,
        input: NewPaymentRequest,
    ) -> Result<PaymentRequestView> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            if input.subject.is_some() {
                return Err(Error::invalid(
                    "subject",
                    "the portal knows who pays; only a partner's backend names the subject",
                ));
            }
            let (app, _) = self.launchable(slug).await?;
            self.create_payment_request(call, &resource, &app, customer, &input.lines)
                .await
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// The partner's backend asks a customer (by their pairwise subject id) for a payment.
    pub async fn request_payment_from_backend(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
        input: NewPaymentRequest,
    ) -> Result<PaymentRequestView> {
        let app = self.existing_miniapp(app_id).await?;
        let resource = Resource::Organisation(app.org_id);
        self.authorize(call, Action::MiniAppManage, &resource, &Context::default())
            .await?;
        let result = async {
            let subject = input.subject.as_deref().ok_or_else(|| {
                Error::invalid("subject", "name the customer by the subject id your mini-app was given")
            })?;
            let customer = self
                .store()
                .subject_user(app.id, subject)
                .await?
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "customer `{}` of mini-app {app_id}: a subject is known once the customer opened the mini-app or signed in to it",
                        subject.chars().take(64).collect::<String>()
                    ))
                })?;
            self.create_payment_request(call, &resource, &app, customer, &input.lines)
                .await
        }
        .await;
        self.audited(call, Action::MiniAppManage, &resource, result)
            .await
    }

    async fn create_payment_request(
        &self,
        call: &Call<'_>,
        resource: &Resource,
        app: &MiniAppRecord,
        customer: UserId,
        lines: &[PaymentLineInput],
    ) -> Result<PaymentRequestView> {
        let (priced, amount, currency) = self.price_lines(app.org_id, lines).await?;
        let now = Timestamp::now();
        let record = PaymentRequestRecord {
            id: PaymentRequestId::new(),
            app_id: app.id,
            seller: app.org_id,
            user_id: customer,
            doc_json: serde_json::to_string(&PaymentDoc { lines: priced })
                .map_err(|e| Error::Internal(format!("payment request: {e}")))?,
            amount,
            currency: currency.code().to_owned(),
            state: "pending".to_owned(),
            order_id: None,
            notification: None,
            created_at: now,
            expires_at: Timestamp::from_micros(
                now.as_micros() + self.superapp().payment_request_ttl_seconds * 1_000_000,
            ),
            decided_at: None,
        };
        let mut tx = self.store().write().await?;
        tx.insert_payment_request(&record).await?;
        let data = serde_json::json!({
            "payment_request": record.id, "app_id": app.id, "amount": amount, "currency": record.currency,
        });
        let done = Done {
            action: Action::MiniAppUse.as_str(),
            resource,
            detail: data.clone(),
            events: vec![event(
                "miniapp.payment_requested",
                record.id,
                Some(app.org_id),
                data,
            )],
        };
        self.commit(tx, None, call, done, &()).await?;
        self.payment_view(&record).await
    }

    /// Prices lines from the seller's active listings: one seller, one currency.
    async fn price_lines(
        &self,
        seller: OrgId,
        lines: &[PaymentLineInput],
    ) -> Result<(Vec<PaymentLine>, i64, Currency)> {
        if lines.is_empty() || lines.len() > PAYMENT_LINES_MAX {
            return Err(Error::invalid(
                "lines",
                format!("a payment request has 1 to {PAYMENT_LINES_MAX} lines"),
            ));
        }
        let mut priced = Vec::with_capacity(lines.len());
        let mut total: i64 = 0;
        let mut currency = None;
        for (index, line) in lines.iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            let listing = self
                .store()
                .listing(line.listing_id)
                .await?
                .filter(|listing| listing.seller == seller)
                .ok_or_else(|| {
                    Error::invalid(
                        field("listing_id"),
                        format!(
                            "listing {} is not one of this mini-app's organisation's listings",
                            line.listing_id
                        ),
                    )
                })?;
            if line.quantity == 0 || line.quantity > 1000 {
                return Err(Error::invalid(field("quantity"), "must be 1 to 1000"));
            }
            let slot_starts_at = match (&listing.kind, line.slot_id) {
                (ListingKind::Service { .. }, Some(slot_id)) => {
                    let slot = self
                        .store()
                        .slot(slot_id)
                        .await?
                        .filter(|slot| slot.listing_id == listing.id)
                        .ok_or_else(|| {
                            Error::invalid(
                                field("slot_id"),
                                format!("slot {slot_id} is not a slot of listing {}", listing.id),
                            )
                        })?;
                    Some(slot.starts_at)
                }
                (ListingKind::Service { .. }, None) => {
                    return Err(Error::invalid(
                        field("slot_id"),
                        "a service is booked for one of its slots",
                    ));
                }
                (ListingKind::Product { .. }, Some(_)) => {
                    return Err(Error::invalid(field("slot_id"), "a product has no slots"));
                }
                (ListingKind::Product { .. }, None) => None,
            };
            if *currency.get_or_insert(listing.currency) != listing.currency {
                return Err(Error::invalid(
                    field("listing_id"),
                    "every line of one payment is in one currency",
                ));
            }
            let amount = listing
                .price
                .checked_mul(i64::from(line.quantity))
                .ok_or_else(|| Error::invalid(field("quantity"), "the amount is too large"))?;
            total = total
                .checked_add(amount)
                .ok_or_else(|| Error::invalid("lines", "the amount is too large"))?;
            priced.push(PaymentLine {
                listing_id: listing.id,
                title: listing.title.to_string(),
                quantity: line.quantity,
                slot_id: line.slot_id,
                slot_starts_at,
                unit_price: listing.price,
                amount,
                amount_text: listing.currency.format(amount),
            });
        }
        let currency = currency.expect("at least one line");
        Ok((priced, total, currency))
    }

    /// A payment request, for the customer it is addressed to, within the mini-app it came from.
    pub async fn customer_payment_request(
        &self,
        call: &Call<'_>,
        slug: &str,
        id: PaymentRequestId,
    ) -> Result<PaymentRequestView> {
        let (customer, _) = self.authorize_use(call).await?;
        let record = self.customers_request(customer, slug, id).await?;
        self.payment_view(&record).await
    }

    async fn customers_request(
        &self,
        customer: UserId,
        slug: &str,
        id: PaymentRequestId,
    ) -> Result<PaymentRequestRecord> {
        let (app, _) = self.launchable(slug).await?;
        self.store()
            .payment_request(id)
            .await?
            .filter(|record| record.user_id == customer && record.app_id == app.id)
            .ok_or_else(|| Error::not_found(format!("payment request {id}")))
    }

    /// The customer confirms a payment in the portal's cashier, for the amount the cashier
    /// showed. It is paid from the wallet through the marketplace (commission included), once.
    pub async fn confirm_payment(
        &self,
        call: &Call<'_>,
        slug: &str,
        id: PaymentRequestId,
        shown_amount: i64,
        shown_currency: &str,
    ) -> Result<PaymentRequestView> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            let record = self.customers_request(customer, slug, id).await?;
            if record.amount != shown_amount || record.currency != shown_currency {
                return Err(Error::Conflict(format!(
                    "the payment request is for {} {}, not the {shown_amount} {shown_currency} confirmed; nothing was paid",
                    record.amount, record.currency
                )));
            }
            if record.state != "pending" {
                return Err(Error::Conflict(format!(
                    "payment request {id} is {}, not waiting for payment",
                    record.state
                )));
            }
            if Timestamp::now() >= record.expires_at {
                self.finish_payment(&record, "pending", "expired", None).await?;
                return Err(Error::Conflict(format!(
                    "payment request {id} expired; ask the mini-app for a new one"
                )));
            }
            let doc: PaymentDoc = serde_json::from_str(&record.doc_json)
                .map_err(|e| Error::Internal(format!("payment request: {e}")))?;
            // The order's id is chosen and recorded first, so that a confirmation a crash
            // interrupts can be settled from whether that order exists.
            let order_id = OrderId::new();
            let mut tx = self.store().write().await?;
            if !tx.start_paying(id, order_id, Timestamp::now()).await? {
                return Err(Error::Conflict(format!(
                    "payment request {id} is being paid or was decided already"
                )));
            }
            tx.commit().await?;
            let key = format!("payment-request:{id}:{order_id}");
            let order_call = Call {
                idempotency_key: Some(&key),
                ..*call
            };
            let new_order = NewOrder {
                lines: doc
                    .lines
                    .iter()
                    .map(|line| CartLine {
                        listing_id: line.listing_id,
                        quantity: line.quantity,
                        slot_id: line.slot_id,
                    })
                    .collect(),
                pay_with: PayWith::Wallet,
                // The prices are checked where the order is priced: what is paid is what was shown.
                expected_total: Some(record.amount),
            };
            match self
                .place_order_as(&order_call, customer, new_order, order_id)
                .await
            {
                Ok(_) => self.settle_paid(&record, order_id).await?,
                Err(error) if crate::market::left_nothing(&error) => {
                    let mut tx = self.store().write().await?;
                    tx.stop_paying(id, order_id).await?;
                    tx.commit().await?;
                    return Err(error);
                }
                // The order's step may still finish when the marketplace resumes: the request
                // stays `paying` until [`App::resume_payment_requests`] settles it.
                Err(error) => return Err(error),
            }
            let record = self
                .store()
                .payment_request(id)
                .await?
                .ok_or_else(|| Error::not_found(format!("payment request {id}")))?;
            self.payment_view(&record).await
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// The customer declines a payment in the cashier.
    pub async fn cancel_payment(
        &self,
        call: &Call<'_>,
        slug: &str,
        id: PaymentRequestId,
    ) -> Result<PaymentRequestView> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            let record = self.customers_request(customer, slug, id).await?;
            if !self
                .finish_payment(&record, "pending", "cancelled", None)
                .await?
            {
                return Err(Error::Conflict(format!(
                    "payment request {id} is {}, not waiting for payment",
                    record.state
                )));
            }
            let record = self
                .store()
                .payment_request(id)
                .await?
                .ok_or_else(|| Error::not_found(format!("payment request {id}")))?;
            self.payment_view(&record).await
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// Records a payment request as paid by its order. Should a stale-lease settlement have
    /// given it back to pending meanwhile, the order that was placed still wins.
    async fn settle_paid(&self, record: &PaymentRequestRecord, order_id: OrderId) -> Result<()> {
        if self
            .finish_payment(record, "paying", "paid", Some(order_id))
            .await?
            || self
                .finish_payment(record, "pending", "paid", Some(order_id))
                .await?
        {
            return Ok(());
        }
        tracing::error!(request = %record.id, order = %order_id, "a payment request was decided otherwise while its order was placed");
        Err(Error::Conflict(format!(
            "payment request {} was decided while order {order_id} was placed; the order stands",
            record.id
        )))
    }

    /// Settles payment requests whose confirmation was interrupted (a crash, a lost database
    /// connection) and has held its lease since before `stale_before`: paid if the order it was
    /// paying with was placed and paid, back to pending otherwise, so the customer can confirm
    /// again. The marketplace's interrupted steps are finished before any order is looked at.
    /// The server calls it at start-up and periodically with a lease of
    /// [`PAYING_LEASE_SECONDS`]. Returns how many it settled.
    pub async fn resume_payment_requests(&self, stale_before: Timestamp) -> Result<usize> {
        let mut settled = 0;
        for record in self
            .store()
            .stale_paying_requests(stale_before, 500)
            .await?
        {
            let Some(order_id) = record.order_id else {
                return Err(Error::Internal(format!(
                    "payment request {} is paying without an order",
                    record.id
                )));
            };
            let placed = {
                // Under the marketplace's lock no order of this process is half placed, and the
                // first time it is taken the steps a crash interrupted are finished.
                let _guard = self.market_lock().await?;
                self.paid_order_exists(order_id).await?
            };
            if placed {
                self.settle_paid(&record, order_id).await?;
            } else {
                let mut tx = self.store().write().await?;
                tx.stop_paying(record.id, order_id).await?;
                tx.commit().await?;
            }
            tracing::warn!(request = %record.id, order = %order_id, placed, "settled a payment request whose confirmation was interrupted");
            settled += 1;
        }
        Ok(settled)
    }

    /// Decides a payment request and signs the notification its partner reads.
    async fn finish_payment(
        &self,
        record: &PaymentRequestRecord,
        from: &str,
        state: &str,
        order_id: Option<OrderId>,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let subject = pairwise_subject(self.key(), record.app_id, record.user_id);
        let claims = serde_json::json!({
            "iss": self.config().public_url,
            "aud": record.app_id,
            "sub": subject,
            "iat": now.as_micros() / 1_000_000,
            "payment_request": record.id,
            "state": state,
            "order_id": order_id,
            "amount": record.amount,
            "currency": record.currency,
        });
        let notification = jws::sign_jws(self.key(), "agora-payment+jwt", &claims);
        let mut tx = self.store().write().await?;
        if !tx
            .decide_payment_request(record.id, from, state, order_id, &notification, now)
            .await?
        {
            return Ok(false);
        }
        tx.insert_event(
            &event(
                match state {
                    "paid" => "miniapp.payment_paid",
                    "cancelled" => "miniapp.payment_cancelled",
                    _ => "miniapp.payment_expired",
                },
                record.id,
                Some(record.seller),
                serde_json::json!({ "payment_request": record.id, "app_id": record.app_id, "state": state, "order_id": order_id, "notification": notification }),
            ),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A payment request, for the partner's backend: its outcome and the signed notification.
    pub async fn partner_payment_request(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
        id: PaymentRequestId,
    ) -> Result<PaymentRequestView> {
        let app = self.existing_miniapp(app_id).await?;
        self.authorize(
            call,
            Action::MiniAppManage,
            &Resource::Organisation(app.org_id),
            &Context::default(),
        )
        .await?;
        let record = self
            .store()
            .payment_request(id)
            .await?
            .filter(|record| record.app_id == app_id)
            .ok_or_else(|| Error::not_found(format!("payment request {id}")))?;
        self.payment_view(&record).await
    }

    async fn payment_view(&self, record: &PaymentRequestRecord) -> Result<PaymentRequestView> {
        let doc: PaymentDoc = serde_json::from_str(&record.doc_json)
            .map_err(|e| Error::Internal(format!("payment request: {e}")))?;
        let currency = Currency::parse(&record.currency)?;
        let expired = record.state == "pending" && Timestamp::now() >= record.expires_at;
        Ok(PaymentRequestView {
            id: record.id,
            app_id: record.app_id,
            seller: record.seller,
            seller_name: self.seller_name(record.seller).await?,
            subject: pairwise_subject(self.key(), record.app_id, record.user_id),
            state: if expired {
                "expired".to_owned()
            } else {
                record.state.clone()
            },
            amount: record.amount,
            currency: record.currency.clone(),
            amount_text: currency.format(record.amount),
            lines: doc.lines,
            order_id: record.order_id,
            notification: record.notification.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
        })
    }

    async fn seller_name(&self, org_id: OrgId) -> Result<String> {
        Ok(self
            .store()
            .org(org_id)
            .await?
            .map(|org| org.name.to_string())
            .unwrap_or_default())
    }

    // -------------------------------------------------------------------------------------
    // Notifications
    // -------------------------------------------------------------------------------------

    /// A mini-app the customer granted `notifications` sends them one, within the hourly limit.
    pub async fn notify_customer(
        &self,
        call: &Call<'_>,
        slug: &str,
        title: &str,
        body: &str,
    ) -> Result<NotificationId> {
        let (customer, resource) = self.authorize_use(call).await?;
        let result = async {
            let (app, manifest) = self.launchable(slug).await?;
            let granted = self
                .store()
                .active_grant(customer, app.id)
                .await?
                .map(|grant| stored_scopes(&grant.scopes))
                .unwrap_or_default();
            if !granted.contains(&Scope::Notifications) {
                return Err(Error::forbidden(
                    "miniapp-notifications-need-a-grant",
                    format!(
                        "{} may not notify you: you have not granted it `notifications`",
                        manifest.name
                    ),
                ));
            }
            let title = title.trim();
            let body = body.trim();
            let chars = |text: &str| text.chars().count();
            if chars(title) == 0 || chars(title) > NOTIFICATION_TITLE_CHARS_MAX {
                return Err(Error::invalid(
                    "title",
                    format!("must be 1 to {NOTIFICATION_TITLE_CHARS_MAX} characters"),
                ));
            }
            if chars(body) > NOTIFICATION_BODY_CHARS_MAX {
                return Err(Error::invalid(
                    "body",
                    format!("at most {NOTIFICATION_BODY_CHARS_MAX} characters"),
                ));
            }
            let now = Timestamp::now();
            let hour_ago = Timestamp::from_micros(now.as_micros() - 3_600_000_000);
            let max = self.superapp().notifications_per_hour_max;
            let mut tx = self.store().write().await?;
            if tx
                .notifications_sent_since(app.id, customer, hour_ago)
                .await?
                >= max
            {
                return Err(Error::LimitExceeded {
                    limit: "superapp.notifications_per_hour_max".to_owned(),
                    message: format!(
                        "{} sent its {max} notifications of the hour already",
                        manifest.name
                    ),
                });
            }
            let notification = NotificationRecord {
                id: NotificationId::new(),
                user_id: customer,
                app_id: app.id,
                title: title.to_owned(),
                body: body.to_owned(),
                created_at: now,
                read_at: None,
            };
            tx.insert_notification(&notification).await?;
            let done = Done {
                action: Action::MiniAppUse.as_str(),
                resource: &resource,
                detail: serde_json::json!({ "notification": notification.id, "app_id": app.id }),
                events: Vec::new(),
            };
            self.commit(tx, None, call, done, &()).await?;
            self.inner.superapp_cache.forget_home(customer);
            Ok(notification.id)
        }
        .await;
        self.audited(call, Action::MiniAppUse, &resource, result)
            .await
    }

    /// How many notifications the customer has not read (at most 100 are counted).
    pub async fn unread_notifications(&self, call: &Call<'_>) -> Result<usize> {
        let (customer, _) = self.authorize_use(call).await?;
        Ok(self.customer_home(customer).await?.unread)
    }

    /// The customer's inbox, newest first; reading it marks everything read.
    pub async fn notifications(&self, call: &Call<'_>) -> Result<Vec<NotificationView>> {
        let (customer, _) = self.authorize_use(call).await?;
        let records = self.store().notifications_of_user(customer, 100).await?;
        let mut views = Vec::with_capacity(records.len());
        for record in &records {
            let app = self.existing_miniapp(record.app_id).await?;
            views.push(NotificationView {
                id: record.id,
                app_id: app.id,
                app_name: app.name.clone(),
                title: record.title.clone(),
                body: record.body.clone(),
                created_at: record.created_at,
                read: record.read_at.is_some(),
            });
        }
        if records.iter().any(|record| record.read_at.is_none()) {
            let mut tx = self.store().write().await?;
            tx.mark_notifications_read(customer, Timestamp::now())
                .await?;
            tx.commit().await?;
            self.inner.superapp_cache.forget_home(customer);
        }
        Ok(views)
    }

    /// The listings a mini-app's organisation sells, with free slots for services.
    pub async fn miniapp_listings(
        &self,
        call: &Call<'_>,
        slug: &str,
    ) -> Result<
        Vec<(
            agora_domain::listing::Listing,
            Vec<agora_domain::listing::Slot>,
        )>,
    > {
        let (app, _) = self.launchable(slug).await?;
        let query = crate::ListingQuery {
            seller: Some(app.org_id.to_string()),
            limit: Some(self.config().page_size_max),
            ..crate::ListingQuery::default()
        };
        let page = self.listings(call, &query).await?;
        let mut out = Vec::with_capacity(page.items.len());
        for listing in page.items {
            let slots = match listing.kind {
                ListingKind::Service { .. } => {
                    self.free_slots(call, listing.id, None, Some(20))
                        .await?
                        .items
                }
                ListingKind::Product { .. } => Vec::new(),
            };
            out.push((listing, slots));
        }
        Ok(out)
    }
}

fn check_declared(manifest: &Manifest, scopes: &BTreeSet<Scope>) -> Result<()> {
    if scopes.is_empty() {
        return Err(Error::invalid("scopes", "name at least one scope"));
    }
    let declared = manifest.declared_scopes();
    if let Some(scope) = scopes.iter().find(|scope| !declared.contains(scope)) {
        return Err(Error::invalid(
            "scopes",
            format!(
                "{} does not declare `{scope}` in its manifest, so it cannot ask for it",
                manifest.name
            ),
        ));
    }
    Ok(())
}

fn consent_scopes(
    manifest: &Manifest,
    scopes: &BTreeSet<Scope>,
    granted: &BTreeSet<Scope>,
) -> Vec<ConsentScope> {
    scopes
        .iter()
        .map(|scope| ConsentScope {
            scope: *scope,
            title: scope.title().to_owned(),
            reason: manifest.reason(*scope).unwrap_or_default().to_owned(),
            granted: granted.contains(scope),
        })
        .collect()
}

pub(crate) fn consent_for(
    manifest: &Manifest,
    scopes: &BTreeSet<Scope>,
    granted: &BTreeSet<Scope>,
) -> Vec<ConsentScope> {
    consent_scopes(manifest, scopes, granted)
}
