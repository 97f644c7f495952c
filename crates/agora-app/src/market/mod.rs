//! The marketplace's use cases: the operator's rules, orders and payments, fulfilment, refunds,
//! payouts, points and partner settlement. `agora-market` decides every step; this module
//! authorizes it, loads the state it needs, and carries it out ([`steps`]).

mod idempotency;
mod orders;
mod points;
mod provider;
mod replay;
mod settlement;
mod steps;

use agora_domain::Result;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use crate::App;

pub(crate) use idempotency::left_nothing;
pub use orders::{
    CartLine, NewCommissionRule, NewOrder, NewPayout, NewRefund, OrderView, PayWith, PayoutRun,
    RevenueView, SANDBOX_PROVIDER, SellerBalance, WalletView,
};
pub(crate) use steps::{Doc, Step, StepEvent};

pub use points::{
    AllocationView, EXPIRY_LOTS_PER_STEP_MAX, GrantPoints, LotView, NewPointsRule,
    POINTS_RULES_MAX, PointsBalance, PointsEarning, PointsExpiry, PointsGrant, PointsRedemption,
    PointsRuleView, PointsSettings, RedeemPoints,
};
pub use replay::REFERENCE_BYTES_MAX;
pub use settlement::{
    NetDebitCap, NewObligation, ObligationView, PositionView, SetNetDebitCap, SettlementReport,
    SettlementWindowStatus, SettlementWindowSummary,
};

/// The marketplace's shared state in the application.
#[derive(Default)]
pub(crate) struct Market {
    /// Serialises marketplace steps: each reads the state it changes, so two must not interleave.
    lock: Mutex<()>,
    /// Set once the steps a crash interrupted have been resumed.
    resumed: OnceCell<()>,
}

impl App {
    /// Finishes every marketplace step a crash left planned. The server calls it at start-up,
    /// before it serves; any marketplace call would do it first anyway.
    pub async fn resume_market(&self) -> Result<()> {
        self.market_lock().await.map(drop)
    }

    /// Takes the marketplace lock; the first time, finishes every step a crash left planned.
    pub(crate) async fn market_lock(&self) -> Result<MutexGuard<'_, ()>> {
        let market = &self.inner.market;
        let guard = market.lock.lock().await;
        market
            .resumed
            .get_or_try_init(|| async {
                let resumed = self.resume_planned_steps().await?;
                if resumed > 0 {
                    tracing::warn!(
                        resumed,
                        "finished marketplace steps a crash had interrupted"
                    );
                }
                Ok::<(), agora_domain::Error>(())
            })
            .await?;
        Ok(guard)
    }
}
