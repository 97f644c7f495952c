//! Agora's use cases.
//!
//! Every use case receives a [`Call`] (who acts, under which request id and idempotency key),
//! asks the authorizer once, before any store is touched, and then makes its change, its audit
//! entry and its event in one transaction. A refused or failed action is audited too, in a
//! transaction of its own, so that the record of refusals cannot be rolled back with the change.

mod audit;
mod auth;
mod cache;
mod coalitions;
mod config;
mod datasets;
mod ledger;
mod ledger_ops;
mod listings;
mod market;
mod orgs;
mod protocols;
mod queries;
pub mod secrets;
pub mod superapp;

use std::sync::Arc;

use agora_domain::audit::{AuditRecord, Outcome};
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::event::NewEvent;
use agora_domain::{Actor, Error, OrgId, RequestId, Result, Timestamp};
use agora_policy::Authorizer;
use agora_store::{IdempotencyClaim, Store, WriteTx};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use agora_coalition;
pub use agora_data;
pub use agora_ledger;
pub use agora_market;
pub use agora_policy;
pub use agora_query;
pub use agora_store;
pub use audit::{ChainReport, VerifyProgress, verify_chain};
pub use auth::{Bootstrap, PortalSession, SignIn, SigninLink};
pub use coalitions::{
    CONTRIBUTOR_COLUMN, CoalitionMemberView, CoalitionSummary, CoalitionView, CountedVoteView,
    DEFAULT_POOLED_PURPOSE, DelegationView, ExecutionView, GoalView, NewCoalition, NewGoal,
    NewPledge, NewProposal, PledgeView, ProgressPoint, ProposalAction, ProposalView,
    PublicationView, TallyView, parse_choice,
};
pub use config::{Admission, AppConfig};
pub use datasets::{ColumnView, DATASET_ROWS_MAX, DatasetRows, DatasetView, UploadOutcome};
pub use ledger::{LedgerOptions, LedgerStats, LedgerWriter};
pub use ledger_ops::{
    AccountOutcome, AccountView, LEDGER_REQUEST_ITEMS_MAX, LedgerVerifyReport, NewLedgerAccount,
    TransferOutcome,
};
pub use listings::{ListingQuery, ListingUpdate, NewListing, NewSlot, SEARCH_DEPTH_MAX};
pub use market::{
    AllocationView, EXPIRY_LOTS_PER_STEP_MAX, GrantPoints, LotView, NetDebitCap, NewObligation,
    NewPointsRule, ObligationView, POINTS_RULES_MAX, PointsBalance, PointsEarning, PointsExpiry,
    PointsGrant, PointsRedemption, PointsRuleView, PointsSettings, PositionView,
    REFERENCE_BYTES_MAX, RedeemPoints, SetNetDebitCap, SettlementReport, SettlementWindowStatus,
    SettlementWindowSummary,
};
pub use market::{
    CartLine, NewCommissionRule, NewOrder, NewPayout, NewRefund, OrderView, PayWith, PayoutRun,
    RevenueView, SANDBOX_PROVIDER, SellerBalance, WalletView,
};
pub use orgs::{CreateOrg, CreateToken, CreatedToken, MemberAdded, NewMember, UpdateOrg};
pub use protocols::{
    DocumentFormat, ProtocolDiff, ProtocolVersionView, ProtocolView, parse_document,
};
pub use queries::{
    ProtocolUse, QueryAnswer, QueryInput, QueryLogEntry, QueryReportView, QueryScope,
    ResultColumnView,
};
pub use secrets::InstanceKey;
pub use superapp::{
    ConsentScope, ConsentView, GrantView, LaunchContext, MiniAppFiguresView, MiniAppVersionView,
    MiniAppView, NewPaymentRequest, NotificationView, PAYING_LEASE_SECONDS, PaymentLine,
    PaymentLineInput, PaymentRequestView, RegisteredMiniApp, ReviewDecision, SuperappOptions,
};
pub use superapp::{LiveApp, ServedFile};

/// One request's identity: who acts, which request it is, and the idempotency key it carries.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub actor: &'a Actor,
    pub request_id: RequestId,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(actor: &'a Actor, request_id: RequestId) -> Self {
        Self {
            actor,
            request_id,
            idempotency_key: None,
        }
    }

    pub fn with_idempotency_key(self, key: Option<&'a str>) -> Self {
        Self {
            idempotency_key: key,
            ..self
        }
    }
}

/// A page of a listing and the cursor that continues it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched items: the extra one only tells that more exist.
    fn from_overfetch(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

/// The application: stores, engines and the authorizer, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    authorizer: Authorizer,
    config: AppConfig,
    key: InstanceKey,
    cache: cache::Cache,
    /// The ledger's single writer, started on first use: restoring the ledger reads all of it.
    ledger: tokio::sync::OnceCell<LedgerWriter>,
    market: market::Market,
    /// The datasets engine, opened on first use: it creates folders in the data folder.
    datasets: std::sync::OnceLock<agora_data::Datasets>,
    dataset_locks: datasets::DatasetLocks,
    /// The governed query engine and its released-groups history, made on first use.
    queries: tokio::sync::OnceCell<queries::QueryEngine>,
    /// Mini-apps' live versions by slug and the files their origins serve.
    superapp_cache: superapp::SuperappCache,
}

/// How a write that may be a replay began.
enum Begun<T> {
    Replay(T),
    Fresh(WriteTx, Option<IdempotencyScope>),
}

struct IdempotencyScope {
    scope: String,
    key: String,
}

/// What a finished change leaves in the audit log and the outbox.
struct Done<'a> {
    /// The audited action's name: an authorization action's (`Action::as_str`) or an authentication step's.
    action: &'static str,
    resource: &'a Resource,
    detail: serde_json::Value,
    events: Vec<NewEvent>,
}

impl App {
    pub fn new(store: Store, authorizer: Authorizer, config: AppConfig, key: InstanceKey) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache: cache::Cache::new(std::time::Duration::from_millis(config.cache_ttl_ms)),
                store,
                authorizer,
                config,
                key,
                ledger: tokio::sync::OnceCell::new(),
                market: market::Market::default(),
                datasets: std::sync::OnceLock::new(),
                dataset_locks: datasets::DatasetLocks::default(),
                queries: tokio::sync::OnceCell::new(),
                superapp_cache: superapp::SuperappCache::default(),
            }),
        }
    }

    /// The ledger's single writer, restoring the ledger from storage on the first call.
    pub async fn ledger(&self) -> Result<&LedgerWriter> {
        let inner = &self.inner;
        inner
            .ledger
            .get_or_try_init(|| {
                LedgerWriter::start(inner.store.clone(), inner.config.ledger.clone())
            })
            .await
    }

    /// Lets the ledger writer commit and answer everything queued, then stops it. Later ledger
    /// calls answer `Unavailable`. Call once, on shutdown.
    pub async fn shutdown(&self) {
        if let Some(writer) = self.inner.ledger.get() {
            writer.clone().shutdown().await;
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    pub fn key(&self) -> &InstanceKey {
        &self.inner.key
    }

    /// Decides `action` on `resource`; a refusal is audited and returned as `Forbidden` naming the rule.
    async fn authorize(
        &self,
        call: &Call<'_>,
        action: Action,
        resource: &Resource,
        context: &Context,
    ) -> Result<()> {
        let inner = &self.inner;
        let key = (
            call.actor.clone(),
            action,
            resource.clone(),
            context.clone(),
        );
        let decision = inner.cache.decision(key, || {
            inner
                .authorizer
                .decide(call.actor, action, resource, context)
        });
        if decision.allowed {
            return Ok(());
        }
        let detail = serde_json::json!({ "rule": decision.rule, "reason": decision.message });
        self.audit_alone(call, action, resource, Outcome::Denied, detail)
            .await?;
        Err(Error::forbidden(decision.rule, decision.message))
    }

    /// Records an outcome in a transaction of its own (refusals and failures).
    async fn audit_alone(
        &self,
        call: &Call<'_>,
        action: Action,
        resource: &Resource,
        outcome: Outcome,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.inner.store.write().await?;
        tx.append_audit(&audit_record(
            call,
            action.as_str(),
            resource,
            outcome,
            &detail,
        ))
        .await?;
        tx.commit().await
    }

    /// Passes a result through, auditing it as failed if it is a domain refusal after authorization.
    async fn audited<T>(
        &self,
        call: &Call<'_>,
        action: Action,
        resource: &Resource,
        result: Result<T>,
    ) -> Result<T> {
        if let Err(error) = &result {
            let outcome = match error {
                Error::Forbidden { .. } => Outcome::Denied,
                _ => Outcome::Failed,
            };
            let detail = serde_json::json!({ "error": error.kind(), "reason": error.to_string() });
            if let Err(audit_error) = self
                .audit_alone(call, action, resource, outcome, detail)
                .await
            {
                tracing::error!(%audit_error, "could not audit a failed action");
            }
        }
        result
    }

    /// Begins a write, or finds that this idempotency key already did it and returns that result.
    async fn begin<I: Serialize, T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        action: Action,
        input: &I,
    ) -> Result<Begun<T>> {
        self.begin_as(call, action.as_str(), input).await
    }

    /// [`App::begin`] for a request that shares its authorization action with another creating
    /// request (`operation` names it), so that their idempotency keys never meet.
    async fn begin_as<I: Serialize, T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        operation: &str,
        input: &I,
    ) -> Result<Begun<T>> {
        let mut tx = self.inner.store.write().await?;
        let Some(key) = call.idempotency_key else {
            return Ok(Begun::Fresh(tx, None));
        };
        if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let scope = format!("{}:{operation}", call.actor.credential.describe());
        let request =
            serde_json::to_vec(input).map_err(|e| Error::Internal(format!("request hash: {e}")))?;
        let request_hash = Sha256::digest(&request);
        match tx.claim_idempotency_key(&scope, key, &request_hash).await? {
            IdempotencyClaim::Claimed => Ok(Begun::Fresh(
                tx,
                Some(IdempotencyScope {
                    scope,
                    key: key.to_owned(),
                }),
            )),
            IdempotencyClaim::Replay {
                request_hash: earlier,
                response,
            } => {
                if earlier != request_hash.as_slice() {
                    return Err(Error::Unprocessable(
                        "this Idempotency-Key was used with a different request body; use a new key for a new request".into(),
                    ));
                }
                serde_json::from_str(&response)
                    .map(Begun::Replay)
                    .map_err(|e| Error::Internal(format!("stored response: {e}")))
            }
        }
    }

    /// Appends the audit entry and events, stores the idempotent response, and commits.
    async fn commit<T: Serialize>(
        &self,
        mut tx: WriteTx,
        idempotency: Option<IdempotencyScope>,
        call: &Call<'_>,
        done: Done<'_>,
        response: &T,
    ) -> Result<()> {
        if let Some(IdempotencyScope { scope, key }) = idempotency {
            let text = serde_json::to_string(response)
                .map_err(|e| Error::Internal(format!("response: {e}")))?;
            tx.complete_idempotency_key(&scope, &key, &text).await?;
        }
        let record = audit_record(
            call,
            done.action,
            done.resource,
            Outcome::Succeeded,
            &done.detail,
        );
        let at = record.at;
        tx.append_audit(&record).await?;
        for event in &done.events {
            tx.insert_event(event, at).await?;
        }
        tx.commit().await?;
        // Every change so far touches identity (organisations, members, tokens, sessions): what
        // was cached may be stale now.
        self.inner.cache.clear();
        Ok(())
    }

    fn page_limit(&self, requested: Option<u32>) -> Result<u32> {
        let max = self.inner.config.page_size_max;
        match requested {
            None => Ok(self.inner.config.page_size_default.min(max)),
            Some(0) => Err(Error::invalid("limit", "must be at least 1")),
            Some(limit) if limit > max => Err(Error::invalid(
                "limit",
                format!("must be at most {max} (page_size_max)"),
            )),
            Some(limit) => Ok(limit),
        }
    }
}

fn audit_record(
    call: &Call<'_>,
    action: &str,
    resource: &Resource,
    outcome: Outcome,
    detail: &serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        at: Timestamp::now(),
        request_id: Some(call.request_id),
        actor_user_id: call.actor.user_id,
        actor_org_id: call.actor.org_id(),
        credential: call.actor.credential.describe(),
        action: action.to_owned(),
        resource_type: resource.kind().to_owned(),
        resource_id: resource.id(),
        subject_org_id: resource.org_id(),
        outcome,
        detail: detail.to_string(),
    }
}

fn event(
    event_type: &'static str,
    subject: impl ToString,
    org_id: Option<OrgId>,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        event_type,
        subject: subject.to_string(),
        org_id,
        data,
    }
}
