//! Points: accrual rules, lots with a funder and an expiry, redemption soonest-expiring first, and expiry into breakage.
//!
//! Points are the ledger currency `PTS`, without minor units. Each accrual is a [`Lot`]: how many
//! points were granted, who funds them, when they expire and how many remain. The customer's
//! points account holds the sum of the remainders of their lots that have not been expired yet.
//!
//! - **Accrue**: points funding (funder) → customer points, the lot's points.
//! - **Redeem** at a partner: customer points → points redeemed (partner). Lots that have not
//!   expired at `now` are spent soonest-expiring first, ties by lot id; the step returns how many
//!   points came from each lot, so that the application knows which funder owes which partner
//!   (see [`crate::settlement::obligations_for_redemption`]).
//! - **Expire**: for each lot whose `expires_at` is at or before `now` and not yet expired, its
//!   remainder goes customer points → points breakage and the lot is marked expired.
//!
//! Invariant: [`liability`] (Σ remaining of lots not marked expired) equals the sum of the
//! customers' points balances.

use agora_domain::{Error, LotId, OrgId, PaymentId, PointsRuleId, Result, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{AccountPurpose, TransferCode, points_currency};
use crate::plan::{Leg, Plan, StepKey, add};

/// The longest a lot may live, in days (ten years).
pub const EXPIRY_DAYS_MAX: u32 = 3_650;
/// The most points one lot may hold.
pub const LOT_POINTS_MAX: i64 = 1_000_000_000;

/// Who pays for points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "funder", content = "partner")]
pub enum Funder {
    Operator,
    Partner(OrgId),
}

/// How a rule earns points.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "earning")]
pub enum Earning {
    /// Points per major unit spent (per euro, not per cent); fractions of a point are dropped.
    PerAmountSpent { points_per_major_unit: i64 },
    /// A fixed number of points for an action (`review_written`, `idea_shipped`, …).
    PerAction { action: String, points: i64 },
}

/// An accrual rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PointsRule {
    pub id: PointsRuleId,
    pub earning: Earning,
    pub funder: Funder,
    /// Days from accrual to expiry, `1..=3650`.
    pub expiry_days: u32,
}

impl PointsRule {
    pub fn validate(&self) -> Result<()> {
        if self.expiry_days == 0 || self.expiry_days > EXPIRY_DAYS_MAX {
            return Err(Error::invalid(
                "expiry_days",
                format!("points expire 1 to {EXPIRY_DAYS_MAX} days after accrual"),
            ));
        }
        let points = match &self.earning {
            Earning::PerAmountSpent {
                points_per_major_unit,
            } => *points_per_major_unit,
            Earning::PerAction { action, points } => {
                if action.trim().is_empty() {
                    return Err(Error::invalid(
                        "action",
                        "name the action that earns points",
                    ));
                }
                *points
            }
        };
        if !(1..=LOT_POINTS_MAX).contains(&points) {
            return Err(Error::invalid(
                "points",
                format!("a rule earns 1 to {LOT_POINTS_MAX} points"),
            ));
        }
        Ok(())
    }

    /// The points this rule earns for spending `amount` minor units of a currency with `exponent`
    /// minor digits, or for doing `action`; 0 when the rule does not apply.
    pub fn points_for(&self, amount: i64, exponent: u8, action: Option<&str>) -> i64 {
        match &self.earning {
            Earning::PerAmountSpent {
                points_per_major_unit,
            } if action.is_none() => {
                let scale = 10i128.pow(u32::from(exponent));
                let points = i128::from(amount.max(0)) * i128::from(*points_per_major_unit) / scale;
                i64::try_from(points.min(i128::from(LOT_POINTS_MAX))).expect("capped")
            }
            Earning::PerAction {
                action: earning_action,
                points,
            } if action == Some(earning_action.as_str()) => *points,
            _ => 0,
        }
    }
}

/// Points granted at once, with their funder and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub id: LotId,
    pub customer: UserId,
    pub funder: Funder,
    pub rule: PointsRuleId,
    pub points: i64,
    pub remaining: i64,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set by [`expire`]; the remainder at that moment went to breakage.
    pub expired_at: Option<Timestamp>,
}

impl Lot {
    fn spendable_at(&self, now: Timestamp) -> bool {
        self.expired_at.is_none() && now < self.expires_at && self.remaining > 0
    }
}

/// Accrues `points` under `rule` as a new lot: points funding (funder) → customer points.
pub fn accrue(
    rule: &PointsRule,
    lot_id: LotId,
    customer: UserId,
    points: i64,
    now: Timestamp,
) -> Result<(Lot, Plan)> {
    rule.validate()?;
    if !(1..=LOT_POINTS_MAX).contains(&points) {
        return Err(Error::invalid(
            "points",
            format!("a lot holds 1 to {LOT_POINTS_MAX} points"),
        ));
    }
    let lot = Lot {
        id: lot_id,
        customer,
        funder: rule.funder,
        rule: rule.id,
        points,
        remaining: points,
        granted_at: now,
        expires_at: now.plus_seconds(i64::from(rule.expiry_days) * 86_400),
        expired_at: None,
    };
    let plan = Plan::build(
        StepKey::new(&[&"lot", &lot_id, &"accrue"]),
        &[Leg::new(
            AccountPurpose::PointsFunding {
                funder: rule.funder,
            },
            AccountPurpose::CustomerPoints { customer },
            points_currency(),
            points,
            TransferCode::PointsAccrued,
        )],
        now,
    )?;
    Ok((lot, plan))
}

/// Points taken from one lot by a redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub lot: LotId,
    pub funder: Funder,
    pub points: i64,
}

/// A redemption as made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// A redemption is a payment in points; its id names the step.
    pub payment_id: PaymentId,
    pub customer: UserId,
    pub partner: OrgId,
    pub points: i64,
    pub allocations: Vec<Allocation>,
    pub redeemed_at: Timestamp,
}

/// Spends `points` of `customer`'s lots at `partner`, soonest-expiring first.
///
/// Returns the lots it changed (with their new remainders), the redemption with its allocations,
/// and the plan: customer points → points redeemed (partner).
pub fn redeem(
    lots: &[Lot],
    customer: UserId,
    points: i64,
    partner: OrgId,
    payment_id: PaymentId,
    now: Timestamp,
) -> Result<(Vec<Lot>, Redemption, Plan)> {
    if points < 1 {
        return Err(Error::invalid("points", "redeem at least 1 point"));
    }
    let mut spendable: Vec<&Lot> = lots
        .iter()
        .filter(|lot| lot.customer == customer && lot.spendable_at(now))
        .collect();
    spendable.sort_by_key(|lot| (lot.expires_at, lot.id));
    let mut balance: i64 = 0;
    for lot in &spendable {
        balance = add(balance, lot.remaining, "points")?;
    }
    if balance < points {
        return Err(Error::Conflict(format!(
            "customer {customer} has {balance} spendable points; redeem at most that many"
        )));
    }
    let mut rest = points;
    let mut changed = Vec::new();
    let mut allocations = Vec::new();
    for lot in spendable {
        if rest == 0 {
            break;
        }
        let taken = rest.min(lot.remaining);
        rest -= taken;
        let mut next = lot.clone();
        next.remaining -= taken;
        changed.push(next);
        allocations.push(Allocation {
            lot: lot.id,
            funder: lot.funder,
            points: taken,
        });
    }
    let plan = Plan::build(
        StepKey::new(&[&"points", &"redeem", &payment_id]),
        &[Leg::new(
            AccountPurpose::CustomerPoints { customer },
            AccountPurpose::PointsRedeemed { partner },
            points_currency(),
            points,
            TransferCode::PointsRedeemed,
        )],
        now,
    )?;
    let redemption = Redemption {
        payment_id,
        customer,
        partner,
        points,
        allocations,
        redeemed_at: now,
    };
    Ok((changed, redemption, plan))
}

/// Expires every lot due at `now`: its remainder → points breakage. Returns the lots it changed and the plan (empty when none is due).
///
/// The step's key is derived from the ids of the lots it expires, which only this step can expire.
pub fn expire(lots: &[Lot], now: Timestamp) -> Result<(Vec<Lot>, Plan)> {
    let mut due: Vec<&Lot> = lots
        .iter()
        .filter(|lot| lot.expired_at.is_none() && lot.expires_at <= now)
        .collect();
    due.sort_by_key(|lot| lot.id);
    let mut hasher = Sha256::new();
    for lot in &due {
        hasher.update(lot.id.as_uuid().as_bytes());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let key: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let legs: Vec<Leg> = due
        .iter()
        .map(|lot| {
            Leg::new(
                AccountPurpose::CustomerPoints {
                    customer: lot.customer,
                },
                AccountPurpose::PointsBreakage,
                points_currency(),
                lot.remaining,
                TransferCode::PointsExpired,
            )
        })
        .collect();
    let plan = Plan::build(StepKey::new(&[&"points", &"expire", &key]), &legs, now)?;
    let changed = due
        .into_iter()
        .map(|lot| {
            let mut next = lot.clone();
            next.expired_at = Some(now);
            next
        })
        .collect();
    Ok((changed, plan))
}

/// The points liability: Σ remaining of lots not marked expired.
pub fn liability(lots: &[Lot]) -> i64 {
    lots.iter()
        .filter(|lot| lot.expired_at.is_none())
        .map(|lot| lot.remaining)
        .sum()
}
