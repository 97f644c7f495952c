//! The superapp: partners' mini-apps in one portal, with one account and one wallet.
//!
//! - `apps` (this file): registering a mini-app from its manifest and bundle, versions, the
//!   operator's review, rollback, the directory, the files each mini-app origin serves, and the
//!   partner's figures.
//! - `customer.rs`: what a customer does through the portal's bridge: launch contexts signed by
//!   the instance, consent and grants, payment requests confirmed in the portal's cashier,
//!   notifications.
//! - `oidc.rs`: the instance as an OpenID Connect provider for partners' backends.
//!
//! Every mini-app sees a customer only through a pairwise subject id (HMAC of the app and the
//! user under a key derived from the instance key), so two partners cannot correlate a customer.

mod bundle;
mod customer;
mod jws;
mod oidc;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::miniapp::{AppCategory, Manifest, Scope};
use agora_domain::{Error, MiniAppId, OrgId, Result, Timestamp, UserId};
use agora_store::{MiniAppFile, MiniAppRecord, MiniAppVersionRecord};
use serde::{Deserialize, Serialize};

use crate::{App, Call, Done, event};

pub use bundle::{Bundle, zip_files};
pub use customer::{
    ConsentScope, ConsentView, GrantView, LaunchContext, NewPaymentRequest, NotificationView,
    PAYING_LEASE_SECONDS, PaymentLine, PaymentLineInput, PaymentRequestView,
};
pub use jws::{jwk_thumbprint_kid, verify_jws};
pub use oidc::{
    AuthorizeRequest, AuthorizeStep, Discovery, OidcError, TokenRequest, TokenResponse,
};

/// The superapp's settings (`[superapp]` in `agora.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperappOptions {
    /// Mini-apps are served at `{slug}.{miniapp_domain}`, on the portal's scheme and port.
    pub miniapp_domain: String,
    /// Approve new mini-apps and versions without the operator's review.
    pub auto_approve: bool,
    /// The largest bundle zip accepted, and the most files it may hold.
    pub bundle_bytes_max: u64,
    pub bundle_files_max: u32,
    /// How long a launch context, an authorization code, an access token and a payment request live.
    pub launch_ttl_seconds: i64,
    pub code_ttl_seconds: i64,
    pub access_token_ttl_seconds: i64,
    pub payment_request_ttl_seconds: i64,
    /// How long a refresh token lives (each use rotates it; a revoked grant ends it at once).
    pub refresh_token_ttl_seconds: i64,
    /// How many notifications one mini-app may send one customer per hour.
    pub notifications_per_hour_max: i64,
}

impl Default for SuperappOptions {
    fn default() -> Self {
        Self {
            miniapp_domain: "apps.localhost".to_owned(),
            auto_approve: false,
            bundle_bytes_max: 5 * 1024 * 1024,
            bundle_files_max: 200,
            launch_ttl_seconds: 300,
            code_ttl_seconds: 60,
            access_token_ttl_seconds: 3600,
            payment_request_ttl_seconds: 900,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            notifications_per_hour_max: 5,
        }
    }
}

/// A mini-app as the directory and the console show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MiniAppView {
    pub id: MiniAppId,
    pub org_id: OrgId,
    pub seller_name: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: AppCategory,
    /// The origin its pages are served from.
    pub origin: String,
    /// The version served; absent until one is approved.
    pub live_version: Option<i64>,
    /// Whether the live version has an icon file (served at `{origin}/{icon}`).
    pub icon: Option<String>,
    pub created_at: Timestamp,
}

/// One version of a mini-app and its review.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MiniAppVersionView {
    pub app_id: MiniAppId,
    pub version: i64,
    pub manifest: Manifest,
    /// SHA-256 of the bundle zip; empty for an external entry.
    pub bundle_sha256: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub review_reason: String,
    pub reviewed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Whether it is the version served now.
    pub live: bool,
}

/// A registered mini-app: what the partner must keep (the client secret is shown once).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredMiniApp {
    pub app: MiniAppView,
    pub version: MiniAppVersionView,
    /// The OpenID Connect client secret; stored only as a hash, shown this once.
    pub client_secret: String,
}

/// The operator's decision on a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why; required to reject, shown to the partner.
    #[serde(default)]
    pub reason: String,
}

/// What a mini-app's partner sees of its use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MiniAppFiguresView {
    pub app_id: MiniAppId,
    /// Customers holding a grant now.
    pub installs: i64,
    /// Customers who launched it in the last 30 days.
    pub active_users_30d: i64,
    /// Paid payment requests.
    pub payments: i64,
    /// Paid amounts by currency, in minor units, with their usual notation.
    pub received: Vec<AmountView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AmountView {
    pub currency: String,
    pub amount: i64,
    pub text: String,
}

/// A file a mini-app origin serves, cached in memory.
pub type ServedFile = Arc<MiniAppFile>;

/// The version a mini-app origin serves now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveApp {
    pub id: MiniAppId,
    pub version: i64,
    /// The bundle file served at `/`; `None` for an external entry (its URL).
    pub entry: Option<String>,
    pub external_url: Option<String>,
}

/// What the server keeps in memory about mini-apps: their live version by slug (briefly) and
/// the files served, so a launch under load reads no database for static files.
#[derive(Default)]
pub(crate) struct SuperappCache {
    slugs: Mutex<HashMap<String, (Instant, Option<LiveApp>)>>,
    files: Mutex<FileCache>,
    /// Every live mini-app as the directory shows it.
    directory: Mutex<Option<(Instant, Arc<Vec<MiniAppView>>)>>,
    /// When each customer's launch of each mini-app was last written: one write a minute at most.
    pub(crate) launches: Mutex<HashMap<(MiniAppId, UserId), Instant>>,
    /// Pairwise subjects already remembered in the store.
    pub(crate) subjects: Mutex<std::collections::HashSet<(MiniAppId, UserId)>>,
    /// Each customer's home: the mini-apps they launched last and their unread notifications.
    /// Forgotten when this server writes a launch or a notification for them, or reads their inbox.
    pub(crate) homes: Mutex<HashMap<UserId, (Instant, CustomerHome)>>,
}

/// What a customer's home page shows besides the directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerHome {
    pub(crate) recent: Vec<MiniAppId>,
    pub(crate) unread: usize,
}

#[derive(Default)]
struct FileCache {
    bytes: usize,
    files: HashMap<(MiniAppId, i64, String), Option<ServedFile>>,
}

const FILE_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
const SLUG_CACHE_TTL: Duration = Duration::from_secs(2);

impl SuperappCache {
    pub(crate) fn forget_home(&self, user: UserId) {
        self.homes.lock().expect("home cache").remove(&user);
    }

    pub(crate) fn forget_slugs(&self) {
        self.slugs.lock().expect("slug cache").clear();
        *self.directory.lock().expect("directory cache") = None;
    }
}

impl App {
    pub(crate) fn superapp(&self) -> &SuperappOptions {
        &self.inner.config.superapp
    }

    /// The origin a mini-app is served from: `{scheme}://{slug}.{miniapp_domain}{:port}`.
    pub fn miniapp_origin(&self, slug: &str) -> String {
        let public = &self.inner.config.public_url;
        let (scheme, rest) = public.split_once("://").unwrap_or(("http", public));
        let host_port = rest.split('/').next().unwrap_or_default();
        let port = host_port
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, port)| format!(":{port}"))
            .unwrap_or_default();
        format!("{scheme}://{slug}.{}{port}", self.superapp().miniapp_domain)
    }

    /// The slug a request's `Host` names, if it is a mini-app origin of this instance.
    pub fn miniapp_slug_of_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let slug = host
            .strip_suffix(self.superapp().miniapp_domain.as_str())?
            .strip_suffix('.')?;
        (!slug.is_empty() && !slug.contains('.')).then_some(slug)
    }

    // -------------------------------------------------------------------------------------
    // Registering and reviewing
    // -------------------------------------------------------------------------------------

    /// Registers a mini-app for `org_id` from its first version: a bundle zip with
    /// `manifest.json` at its root, or a manifest alone with an external entry.
    pub async fn register_miniapp(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        upload: &[u8],
        is_zip: bool,
    ) -> Result<RegisteredMiniApp> {
        let action = Action::MiniAppManage;
        let resource = Resource::Organisation(org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let bundle = self.read_upload(upload, is_zip)?;
            if self.store().org(org_id).await?.is_none() {
                return Err(Error::not_found(format!("organisation {org_id}")));
            }
            let now = Timestamp::now();
            let secret = crate::secrets::new_secret();
            let app = MiniAppRecord {
                id: MiniAppId::new(),
                org_id,
                slug: bundle.manifest.slug.clone(),
                client_secret_hash: crate::secrets::sha256(&secret),
                live_version: None,
                name: bundle.manifest.name.clone(),
                category: bundle.manifest.category.as_str().to_owned(),
                created_at: now,
                updated_at: now,
            };
            let mut tx = self.store().write().await?;
            tx.insert_miniapp(&app).await?;
            let (version, live) = self.insert_version(&mut tx, &app, 1, &bundle, now).await?;
            if live {
                tx.update_miniapp(app.id, &app.name, &app.category, Some(1), now)
                    .await?;
            }
            let data = serde_json::json!({
                "app_id": app.id, "slug": app.slug, "version": 1, "state": version.state,
                "bundle_sha256": version.bundle_sha256,
            });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("miniapp.registered", app.id, Some(org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.inner.superapp_cache.forget_slugs();
            let app = self.existing_miniapp(app.id).await?;
            Ok(RegisteredMiniApp {
                app: self.miniapp_view(&app).await?,
                version: self.version_view(&app, &version)?,
                client_secret: secret,
            })
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Uploads a new version of a mini-app; it waits for review unless the instance approves
    /// automatically. The slug cannot change.
    pub async fn upload_miniapp_version(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
        upload: &[u8],
        is_zip: bool,
    ) -> Result<MiniAppVersionView> {
        let action = Action::MiniAppManage;
        let app = self.existing_miniapp(app_id).await?;
        let resource = Resource::Organisation(app.org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let bundle = self.read_upload(upload, is_zip)?;
            if bundle.manifest.slug != app.slug {
                return Err(Error::invalid(
                    "slug",
                    format!(
                        "a version keeps its mini-app's slug `{}` (the manifest says `{}`); register a new mini-app for a new slug",
                        app.slug, bundle.manifest.slug
                    ),
                ));
            }
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let app = tx
                .miniapp_for_update(app_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("mini-app {app_id}")))?;
            let number = tx.latest_miniapp_version(app_id).await? + 1;
            let (version, live) = self
                .insert_version(&mut tx, &app, number, &bundle, now)
                .await?;
            let live_version = if live { Some(number) } else { app.live_version };
            tx.update_miniapp(
                app.id,
                &bundle.manifest.name,
                bundle.manifest.category.as_str(),
                live_version,
                now,
            )
            .await?;
            let data = serde_json::json!({
                "app_id": app.id, "version": number, "state": version.state,
                "bundle_sha256": version.bundle_sha256,
            });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("miniapp.version_uploaded", app.id, Some(app.org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.inner.superapp_cache.forget_slugs();
            let app = self.existing_miniapp(app_id).await?;
            self.version_view(&app, &version)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    fn read_upload(&self, upload: &[u8], is_zip: bool) -> Result<Bundle> {
        let options = self.superapp();
        if is_zip {
            Bundle::from_zip(upload, options.bundle_bytes_max, options.bundle_files_max)
        } else {
            let manifest = Manifest::parse(upload)?;
            if manifest.is_bundle() {
                return Err(Error::invalid(
                    "entry",
                    "a manifest posted alone needs an external entry (`{\"url\": \"https://…\"}`); upload a zip for a bundle",
                ));
            }
            Ok(Bundle {
                manifest,
                files: Vec::new(),
                sha256: String::new(),
            })
        }
    }

    async fn insert_version(
        &self,
        tx: &mut agora_store::WriteTx,
        app: &MiniAppRecord,
        number: i64,
        bundle: &Bundle,
        now: Timestamp,
    ) -> Result<(MiniAppVersionRecord, bool)> {
        let auto = self.superapp().auto_approve;
        let version = MiniAppVersionRecord {
            app_id: app.id,
            version: number,
            manifest_json: serde_json::to_string(&bundle.manifest)
                .map_err(|e| Error::Internal(format!("manifest: {e}")))?,
            bundle_sha256: bundle.sha256.clone(),
            state: if auto { "approved" } else { "pending" }.to_owned(),
            review_reason: if auto {
                "approved automatically (superapp.auto_approve)".to_owned()
            } else {
                String::new()
            },
            reviewed_by: None,
            reviewed_at: auto.then_some(now),
            created_at: now,
        };
        tx.insert_miniapp_version(&version).await?;
        for file in &bundle.files {
            tx.insert_miniapp_file(app.id, number, file).await?;
        }
        Ok((version, auto))
    }

    /// The operator approves or rejects a pending version. Approving makes it the live version.
    pub async fn review_miniapp_version(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
        version: i64,
        decision: ReviewDecision,
    ) -> Result<MiniAppVersionView> {
        let action = Action::MiniAppReview;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let approve = match decision.decision.as_str() {
                "approve" => true,
                "reject" => false,
                other => {
                    return Err(Error::invalid(
                        "decision",
                        format!("`{other}` is not a decision: `approve` or `reject`"),
                    ));
                }
            };
            let reason = decision.reason.trim();
            if !approve && reason.is_empty() {
                return Err(Error::invalid(
                    "reason",
                    "say why the version is rejected: the partner reads it",
                ));
            }
            if reason.chars().count() > 1000 {
                return Err(Error::invalid("reason", "at most 1000 characters"));
            }
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let app = tx
                .miniapp_for_update(app_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("mini-app {app_id}")))?;
            let state = if approve { "approved" } else { "rejected" };
            if !tx
                .review_miniapp_version(app_id, version, state, reason, call.actor.user_id, now)
                .await?
            {
                return Err(Error::Conflict(format!(
                    "version {version} of mini-app {app_id} is not waiting for review (it does not exist or was decided)"
                )));
            }
            if approve {
                tx.update_miniapp(app.id, &app.name, &app.category, Some(version), now)
                    .await?;
            }
            let data = serde_json::json!({
                "app_id": app_id, "version": version, "decision": state, "reason": reason,
            });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event(
                    if approve { "miniapp.version_approved" } else { "miniapp.version_rejected" },
                    app_id,
                    Some(app.org_id),
                    data,
                )],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.inner.superapp_cache.forget_slugs();
            let app = self.existing_miniapp(app_id).await?;
            let record = self
                .store()
                .miniapp_version(app_id, version)
                .await?
                .ok_or_else(|| Error::not_found(format!("version {version}")))?;
            self.version_view(&app, &record)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Serves an earlier approved version again (the partner's owners, admins and developers,
    /// or the operator).
    pub async fn rollback_miniapp(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
        version: i64,
    ) -> Result<MiniAppView> {
        let action = Action::MiniAppManage;
        let app = self.existing_miniapp(app_id).await?;
        let resource = Resource::Organisation(app.org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            let app = tx
                .miniapp_for_update(app_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("mini-app {app_id}")))?;
            let record = self
                .store()
                .miniapp_version(app_id, version)
                .await?
                .ok_or_else(|| Error::not_found(format!("version {version} of {app_id}")))?;
            if record.state != "approved" {
                return Err(Error::Conflict(format!(
                    "version {version} is {}: only an approved version can be served",
                    record.state
                )));
            }
            let manifest = parse_stored_manifest(&record)?;
            tx.update_miniapp(
                app.id,
                &manifest.name,
                manifest.category.as_str(),
                Some(version),
                now,
            )
            .await?;
            let data = serde_json::json!({ "app_id": app_id, "version": version, "previous": app.live_version });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("miniapp.rolled_back", app_id, Some(app.org_id), data)],
            };
            self.commit(tx, None, call, done, &()).await?;
            self.inner.superapp_cache.forget_slugs();
            let app = self.existing_miniapp(app_id).await?;
            self.miniapp_view(&app).await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    // -------------------------------------------------------------------------------------
    // Reading
    // -------------------------------------------------------------------------------------

    /// The directory: approved mini-apps, optionally searched by words and narrowed to a category.
    pub async fn miniapp_directory(
        &self,
        call: &Call<'_>,
        search: Option<&str>,
        category: Option<AppCategory>,
    ) -> Result<Vec<MiniAppView>> {
        self.authorize(
            call,
            Action::MiniAppBrowse,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let words: Vec<String> = search
            .unwrap_or_default()
            .split_whitespace()
            .take(10)
            .map(str::to_lowercase)
            .collect();
        let views = self
            .live_directory()
            .await?
            .iter()
            .filter(|view| category.is_none_or(|category| view.category == category))
            .filter(|view| {
                let text = format!(
                    "{} {} {} {}",
                    view.name, view.description, view.seller_name, view.slug
                )
                .to_lowercase();
                words.iter().all(|word| text.contains(word.as_str()))
            })
            .cloned()
            .collect();
        Ok(views)
    }

    /// Every live mini-app, by name (cached for a moment; changes here forget it at once).
    pub(crate) async fn live_directory(&self) -> Result<Arc<Vec<MiniAppView>>> {
        if let Some((at, views)) = self
            .inner
            .superapp_cache
            .directory
            .lock()
            .expect("directory cache")
            .as_ref()
            && at.elapsed() < SLUG_CACHE_TTL
        {
            return Ok(views.clone());
        }
        let mut views = Vec::new();
        for app in self.store().miniapps(None).await? {
            if app.live_version.is_some() {
                views.push(self.miniapp_view(&app).await?);
            }
        }
        views.sort_by_key(|view| view.name.to_lowercase());
        let views = Arc::new(views);
        *self
            .inner
            .superapp_cache
            .directory
            .lock()
            .expect("directory cache") = Some((Instant::now(), views.clone()));
        Ok(views)
    }

    /// An organisation's mini-apps with every version (its owners, admins and developers; the operator).
    pub async fn org_miniapps(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
    ) -> Result<Vec<(MiniAppView, Vec<MiniAppVersionView>, MiniAppFiguresView)>> {
        self.authorize(
            call,
            Action::MiniAppManage,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let mut out = Vec::new();
        for app in self.store().miniapps(Some(org_id)).await? {
            let versions = self
                .store()
                .miniapp_versions(app.id)
                .await?
                .iter()
                .map(|version| self.version_view(&app, version))
                .collect::<Result<Vec<_>>>()?;
            let figures = self.figures_of(&app).await?;
            out.push((self.miniapp_view(&app).await?, versions, figures));
        }
        Ok(out)
    }

    /// One mini-app with its versions, for its partner or the operator.
    pub async fn miniapp_detail(
        &self,
        call: &Call<'_>,
        app_id: MiniAppId,
    ) -> Result<(MiniAppView, Vec<MiniAppVersionView>, MiniAppFiguresView)> {
        let app = self.existing_miniapp(app_id).await?;
        self.authorize(
            call,
            Action::MiniAppManage,
            &Resource::Organisation(app.org_id),
            &Context::default(),
        )
        .await?;
        let versions = self
            .store()
            .miniapp_versions(app.id)
            .await?
            .iter()
            .map(|version| self.version_view(&app, version))
            .collect::<Result<Vec<_>>>()?;
        let figures = self.figures_of(&app).await?;
        Ok((self.miniapp_view(&app).await?, versions, figures))
    }

    /// Versions waiting for review, for the operator.
    pub async fn miniapp_review_queue(
        &self,
        call: &Call<'_>,
    ) -> Result<Vec<(MiniAppView, MiniAppVersionView)>> {
        self.authorize(
            call,
            Action::MiniAppReview,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let mut out = Vec::new();
        for version in self.store().pending_miniapp_versions().await? {
            let app = self.existing_miniapp(version.app_id).await?;
            out.push((
                self.miniapp_view(&app).await?,
                self.version_view(&app, &version)?,
            ));
        }
        Ok(out)
    }

    async fn figures_of(&self, app: &MiniAppRecord) -> Result<MiniAppFiguresView> {
        let since = Timestamp::from_micros(Timestamp::now().as_micros() - 30 * 86_400_000_000);
        let figures = self.store().miniapp_figures(app.id, since).await?;
        Ok(MiniAppFiguresView {
            app_id: app.id,
            installs: figures.installs,
            active_users_30d: figures.active_users,
            payments: figures.payments,
            received: figures
                .amounts
                .into_iter()
                .map(|(currency, amount)| AmountView {
                    text: agora_domain::ledger::Currency::parse(&currency)
                        .map(|c| c.format(amount))
                        .unwrap_or_else(|_| format!("{amount} {currency}")),
                    currency,
                    amount,
                })
                .collect(),
        })
    }

    /// The live mini-app behind a slug: its id, live version and entry (cached for a moment).
    pub async fn live_miniapp(&self, slug: &str) -> Result<Option<LiveApp>> {
        if let Some((at, found)) = self
            .inner
            .superapp_cache
            .slugs
            .lock()
            .expect("slug cache")
            .get(slug)
            && at.elapsed() < SLUG_CACHE_TTL
        {
            return Ok(found.clone());
        }
        let found = match self.store().miniapp_by_slug(slug).await? {
            Some(app) => match self.live_manifest(&app).await? {
                Some(manifest) => Some(LiveApp {
                    id: app.id,
                    version: app.live_version.unwrap_or_default(),
                    entry: match &manifest.entry {
                        agora_domain::miniapp::Entry::Bundle(path) => Some(path.clone()),
                        agora_domain::miniapp::Entry::External { .. } => None,
                    },
                    external_url: match manifest.entry {
                        agora_domain::miniapp::Entry::External { url } => Some(url),
                        agora_domain::miniapp::Entry::Bundle(_) => None,
                    },
                }),
                None => None,
            },
            None => None,
        };
        let mut slugs = self.inner.superapp_cache.slugs.lock().expect("slug cache");
        if slugs.len() > 10_000 {
            slugs.clear();
        }
        slugs.insert(slug.to_owned(), (Instant::now(), found.clone()));
        Ok(found)
    }

    /// A file of a mini-app's live version, for its origin. Public: these are the pages the
    /// partner published; `manifest.json` is never served.
    pub async fn miniapp_file(
        &self,
        app_id: MiniAppId,
        version: i64,
        path: &str,
    ) -> Result<Option<ServedFile>> {
        let key = (app_id, version, path.to_owned());
        if let Some(found) = self
            .inner
            .superapp_cache
            .files
            .lock()
            .expect("file cache")
            .files
            .get(&key)
        {
            return Ok(found.clone());
        }
        let found = if path == agora_domain::miniapp::MANIFEST_FILE {
            None
        } else {
            self.store()
                .miniapp_file(app_id, version, path)
                .await?
                .map(Arc::new)
        };
        let mut cache = self.inner.superapp_cache.files.lock().expect("file cache");
        let size = found.as_ref().map_or(64, |file| file.body.len() + 64);
        if cache.bytes + size > FILE_CACHE_BYTES_MAX {
            cache.files.clear();
            cache.bytes = 0;
        }
        cache.bytes += size;
        cache.files.insert(key, found.clone());
        Ok(found)
    }

    /// The manifest of a mini-app's live version.
    pub async fn live_manifest(&self, app: &MiniAppRecord) -> Result<Option<Manifest>> {
        let Some(version) = app.live_version else {
            return Ok(None);
        };
        let record = self
            .store()
            .miniapp_version(app.id, version)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("live version {version} of {} is missing", app.id))
            })?;
        parse_stored_manifest(&record).map(Some)
    }

    pub(crate) async fn existing_miniapp(&self, app_id: MiniAppId) -> Result<MiniAppRecord> {
        self.store()
            .miniapp(app_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("mini-app {app_id}")))
    }

    pub(crate) async fn miniapp_view(&self, app: &MiniAppRecord) -> Result<MiniAppView> {
        let manifest = match self.live_manifest(app).await? {
            Some(manifest) => manifest,
            None => {
                let versions = self.store().miniapp_versions(app.id).await?;
                let latest = versions
                    .last()
                    .ok_or_else(|| Error::Internal(format!("{} has no version", app.id)))?;
                parse_stored_manifest(latest)?
            }
        };
        let seller_name = self
            .store()
            .org(app.org_id)
            .await?
            .map(|org| org.name.to_string())
            .unwrap_or_default();
        Ok(MiniAppView {
            id: app.id,
            org_id: app.org_id,
            seller_name,
            slug: app.slug.clone(),
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            category: manifest.category,
            origin: self.miniapp_origin(&app.slug),
            live_version: app.live_version,
            icon: manifest.icon.clone(),
            created_at: app.created_at,
        })
    }

    fn version_view(
        &self,
        app: &MiniAppRecord,
        record: &MiniAppVersionRecord,
    ) -> Result<MiniAppVersionView> {
        Ok(MiniAppVersionView {
            app_id: record.app_id,
            version: record.version,
            manifest: parse_stored_manifest(record)?,
            bundle_sha256: record.bundle_sha256.clone(),
            state: record.state.clone(),
            review_reason: record.review_reason.clone(),
            reviewed_at: record.reviewed_at,
            created_at: record.created_at,
            live: app.live_version == Some(record.version),
        })
    }
}

fn parse_stored_manifest(record: &MiniAppVersionRecord) -> Result<Manifest> {
    serde_json::from_str(&record.manifest_json).map_err(|e| {
        Error::Internal(format!(
            "stored manifest of {} v{}: {e}",
            record.app_id, record.version
        ))
    })
}

/// Scopes as a set, from the stored space-separated text.
pub(crate) fn stored_scopes(text: &str) -> BTreeSet<Scope> {
    agora_domain::miniapp::parse_scopes(text).unwrap_or_default()
}

/// The user a pairwise subject id stands for is looked up in the store; this derives it.
pub(crate) fn pairwise_subject(
    key: &crate::InstanceKey,
    app_id: MiniAppId,
    user: UserId,
) -> String {
    use base64::Engine;
    let digest = key.derive(
        b"agora pairwise subject v1",
        format!("{app_id}:{user}").as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..20])
}
