//! Seller settings, payout schedules and payouts: a seller's available funds leave to the provider on a schedule, above a minimum.
//!
//! Days are UTC days; a week starts on Monday. A scheduled payout is due when the schedule's day
//! has come and no payout happened on that day yet; it pays out everything available, provided
//! that reaches the seller's minimum. A manual schedule is never due: the seller or the operator
//! asks for each payout, which must still reach the minimum (or be everything available).

use agora_domain::ledger::Currency;
use agora_domain::{Error, OrgId, PayoutId, Result, Timestamp};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountPurpose, TransferCode};
use crate::order::{HOLD_DAYS_MAX, RefundPolicy};
use crate::plan::{Leg, Plan, StepKey};

const MICROS_PER_DAY: i64 = 86_400_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// The UTC weekday of an instant (1970-01-01 was a Thursday).
    pub fn of(instant: Timestamp) -> Self {
        const DAYS: [Weekday; 7] = [
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
        ];
        let day = day_number(instant);
        DAYS[usize::try_from(day.rem_euclid(7)).expect("0 to 6")]
    }
}

/// Days since 1970-01-01 UTC.
fn day_number(instant: Timestamp) -> i64 {
    instant.as_micros().div_euclid(MICROS_PER_DAY)
}

/// When a seller is paid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "every")]
pub enum PayoutSchedule {
    Daily,
    Weekly { weekday: Weekday },
    Manual,
}

/// A seller's money settings, chosen by the operator (the seller picks the schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerSettings {
    /// Days a fulfilled part's money stays pending, `0..=365`.
    pub hold_days: u32,
    pub schedule: PayoutSchedule,
    /// The least a payout may be, in minor units of the payout's currency.
    pub minimum: i64,
    /// Frozen on each order line at sale.
    pub refund_policy: RefundPolicy,
    /// How far the partner's settlement position may go below zero, in minor units.
    pub net_debit_cap: i64,
}

impl Default for SellerSettings {
    /// Seven days' hold, weekly payouts on Monday above 10.00, proportional refunds, no net debit.
    fn default() -> Self {
        Self {
            hold_days: 7,
            schedule: PayoutSchedule::Weekly {
                weekday: Weekday::Monday,
            },
            minimum: 1_000,
            refund_policy: RefundPolicy::Proportional,
            net_debit_cap: 0,
        }
    }
}

impl SellerSettings {
    pub fn validate(&self) -> Result<()> {
        if self.hold_days > HOLD_DAYS_MAX {
            return Err(Error::invalid(
                "hold_days",
                format!("a hold lasts 0 to {HOLD_DAYS_MAX} days"),
            ));
        }
        if self.minimum < 1 {
            return Err(Error::invalid(
                "minimum",
                "a payout minimum is at least 1 minor unit",
            ));
        }
        if self.net_debit_cap < 0 {
            return Err(Error::invalid(
                "net_debit_cap",
                "a net debit cap is 0 or more; 0 means the partner may never owe",
            ));
        }
        Ok(())
    }
}

/// The amount to pay out now, if a scheduled payout is due: everything `available`, when it reaches the minimum.
pub fn payout_due(
    settings: &SellerSettings,
    last_payout_at: Option<Timestamp>,
    now: Timestamp,
    available: i64,
) -> Option<i64> {
    if available < settings.minimum.max(1) {
        return None;
    }
    let today = day_number(now);
    let paid_today = last_payout_at.is_some_and(|last| day_number(last) >= today);
    let due = match settings.schedule {
        PayoutSchedule::Manual => false,
        PayoutSchedule::Daily => !paid_today,
        PayoutSchedule::Weekly { weekday } => Weekday::of(now) == weekday && !paid_today,
    };
    due.then_some(available)
}

/// A payout as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRequest {
    pub id: PayoutId,
    pub seller: OrgId,
    pub currency: Currency,
    pub amount: i64,
    /// The provider the money leaves through.
    pub provider: String,
    /// The bank or provider reference the seller sees.
    pub reference: String,
}

/// A payout as made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRecord {
    pub id: PayoutId,
    pub seller: OrgId,
    pub currency: Currency,
    pub amount: i64,
    pub provider: String,
    pub reference: String,
    pub paid_at: Timestamp,
}

/// Pays out: seller available → provider clearing. `available` is the seller's available balance read from the ledger.
pub fn payout(
    request: PayoutRequest,
    settings: &SellerSettings,
    available: i64,
    now: Timestamp,
) -> Result<(PayoutRecord, Plan)> {
    if request.reference.trim().is_empty() {
        return Err(Error::invalid(
            "reference",
            "a payout needs the reference the seller will see on the transfer",
        ));
    }
    if request.amount < 1 || request.amount > available {
        return Err(Error::invalid(
            "amount",
            format!(
                "the seller has {} available; pay out 1 to that much",
                request.currency.format(available.max(0))
            ),
        ));
    }
    if request.amount < settings.minimum && request.amount != available {
        return Err(Error::invalid(
            "amount",
            format!(
                "a payout is at least {} (the seller's minimum) or everything available",
                request.currency.format(settings.minimum)
            ),
        ));
    }
    let plan = Plan::build(
        StepKey::new(&[&"payout", &request.id]),
        &[Leg::new(
            AccountPurpose::SellerAvailable {
                seller: request.seller,
            },
            AccountPurpose::ProviderClearing {
                provider: request.provider.clone(),
            },
            request.currency,
            request.amount,
            TransferCode::Payout,
        )],
        now,
    )?;
    let record = PayoutRecord {
        id: request.id,
        seller: request.seller,
        currency: request.currency,
        amount: request.amount,
        provider: request.provider,
        reference: request.reference,
        paid_at: now,
    };
    Ok((record, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_follow_the_calendar() {
        assert_eq!(Weekday::of(Timestamp::from_micros(0)), Weekday::Thursday);
        // 2025-11-23 was a Sunday.
        assert_eq!(
            Weekday::of(Timestamp::from_micros(1_763_880_000_123_456)),
            Weekday::Sunday
        );
    }
}
