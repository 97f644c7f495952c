//! The payment-provider adapter: what the marketplace asks of a card payment provider, and the
//! built-in sandbox that implements it.
//!
//! The marketplace never trusts a notification's claims: a notification only says "look at
//! payment P again", and the marketplace reads the payment's state back through
//! [`PaymentProvider::payment`] and acts on that, idempotently. So a provider may deliver late,
//! twice and out of order, as real ones do. A real provider (Stripe, Adyen) implements the same
//! calls over its API and feeds its webhooks to `App::payment_notification`.

use agora_domain::ledger::Currency;
use agora_domain::{Error, PaymentId, RefundId, Result, Timestamp};
use agora_market::sandbox::{Notification, NotificationSchedule, PaymentStatus, Sandbox};

use crate::App;

/// A payment's state at the provider, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProviderPayment {
    pub id: PaymentId,
    pub captured: bool,
    /// What the provider captured, in minor units.
    pub captured_amount: i64,
}

/// What the marketplace asks of a card payment provider.
pub(crate) trait PaymentProvider {
    /// The provider's name, as ledger accounts (`provider clearing`) and notifications name it.
    fn name(&self) -> &'static str;

    /// Reserves `amount` on the card the token stands for; a declined card is `Forbidden`
    /// naming the reason.
    async fn authorize(
        &self,
        app: &App,
        payment: PaymentId,
        currency: Currency,
        amount: i64,
        token: &str,
        now: Timestamp,
    ) -> Result<()>;

    /// Captures an authorized payment (a repeat changes nothing); the provider notifies later.
    async fn capture(&self, app: &App, payment: PaymentId, now: Timestamp) -> Result<()>;

    /// Sends `amount` of a captured payment back to the card; a repeated refund id changes nothing.
    async fn refund(
        &self,
        app: &App,
        payment: PaymentId,
        refund: RefundId,
        amount: i64,
        now: Timestamp,
    ) -> Result<()>;

    /// The payment's state now.
    async fn payment(&self, app: &App, payment: PaymentId) -> Result<Option<ProviderPayment>>;

    /// The notifications the provider delivers by `now` (a real provider's arrive as webhooks).
    async fn due_notifications(&self, app: &App, now: Timestamp) -> Result<Vec<Notification>>;
}

/// The built-in sandbox provider: `agora_market::sandbox`'s seeded model, its state kept as a
/// marketplace document so that it survives restarts. Notifications are scheduled with the
/// configured delay and duplication, and delivered by the server's housekeeping task.
pub(crate) struct SandboxProvider;

const SANDBOX_DOC: &str = "sandbox";

impl SandboxProvider {
    async fn load(app: &App) -> Result<Sandbox> {
        match app.store().document(SANDBOX_DOC, "sandbox").await? {
            Some(doc) => serde_json::from_str(&doc.body)
                .map_err(|e| Error::Internal(format!("the sandbox provider's state: {e}"))),
            None => Ok(Sandbox::with_schedule(NotificationSchedule::new(
                app.config().sandbox_seed,
                app.config().sandbox_delay_seconds_max,
                app.config().sandbox_duplicate_per_mille,
            ))),
        }
    }

    async fn save(app: &App, sandbox: &Sandbox) -> Result<()> {
        let body = serde_json::to_string(sandbox)
            .map_err(|e| Error::Internal(format!("the sandbox provider's state: {e}")))?;
        let mut tx = app.store().write().await?;
        tx.put_document(
            &agora_store::DocumentWrite {
                kind: SANDBOX_DOC,
                id: "sandbox",
                owner: None,
                status: None,
                sort_key: None,
                body: &body,
            },
            Timestamp::now(),
        )
        .await?;
        tx.commit().await
    }
}

impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn authorize(
        &self,
        app: &App,
        payment: PaymentId,
        currency: Currency,
        amount: i64,
        token: &str,
        now: Timestamp,
    ) -> Result<()> {
        let mut sandbox = Self::load(app).await?;
        let authorized = sandbox
            .authorize(payment, currency, amount, token, now)
            .map(|_| ());
        // A declined card is remembered too: the provider notifies the failure.
        Self::save(app, &sandbox).await?;
        authorized
    }

    async fn capture(&self, app: &App, payment: PaymentId, now: Timestamp) -> Result<()> {
        let mut sandbox = Self::load(app).await?;
        sandbox.capture(payment, now)?;
        Self::save(app, &sandbox).await
    }

    async fn refund(
        &self,
        app: &App,
        payment: PaymentId,
        refund: RefundId,
        amount: i64,
        now: Timestamp,
    ) -> Result<()> {
        let mut sandbox = Self::load(app).await?;
        sandbox.refund(payment, refund, amount, now)?;
        Self::save(app, &sandbox).await
    }

    async fn payment(&self, app: &App, payment: PaymentId) -> Result<Option<ProviderPayment>> {
        Ok(Self::load(app)
            .await?
            .payment(payment)
            .map(|payment| ProviderPayment {
                id: payment.id,
                captured: payment.status == PaymentStatus::Captured,
                captured_amount: payment.captured,
            }))
    }

    async fn due_notifications(&self, app: &App, now: Timestamp) -> Result<Vec<Notification>> {
        let mut sandbox = Self::load(app).await?;
        let due = sandbox.deliver(now);
        if !due.is_empty() {
            Self::save(app, &sandbox).await?;
        }
        Ok(due)
    }
}
