//! Members' pledges towards a goal, conditional ones included, and which of them are active.
//!
//! # Rules
//!
//! - PledgeBank's conditional pledge, "I will, if N others will": [`Condition::OthersAtLeast`]
//!   counts the distinct other members with an active pledge to the same goal. Agora adds
//!   [`Condition::TotalAtLeast`]: the goal's active pledged quantity, this pledge's included.
//! - Activation is the greatest fixed point: start with every pledge not withdrawn active and
//!   repeatedly deactivate conditional pledges whose condition fails counting only active
//!   pledges, until nothing changes. So pledges that wait on each other ("I will if 3 others
//!   will", four times) activate together, which the least fixed point would never do.
//!   Unconditional pledges not withdrawn are always active; withdrawn ones never are.
//! - PledgeBank saw that fulfilment is never complete: a pledge tracks `fulfilled` against
//!   `quantity`, and [`is_overdue`] flags one past its due time and not fulfilled.

use std::collections::{BTreeMap, BTreeSet};

use agora_domain::{Error, GoalId, OrgId, PledgeId, Result, Timestamp};
use serde::{Deserialize, Serialize};

/// When a conditional pledge takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// At least `count` other members pledge to the same goal.
    OthersAtLeast { count: u32 },
    /// The goal's active pledged quantity, this pledge's included, reaches `quantity`.
    TotalAtLeast { quantity: i64 },
}

/// A pledge as the rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PledgeState {
    pub id: PledgeId,
    pub member: OrgId,
    pub goal: GoalId,
    pub quantity: i64,
    pub due: Timestamp,
    pub condition: Option<Condition>,
    pub fulfilled: i64,
    pub withdrawn: bool,
}

/// The pledges in effect: the greatest set in which every conditional pledge's condition holds.
pub fn active_pledges(pledges: &[PledgeState]) -> BTreeSet<PledgeId> {
    let mut by_goal: BTreeMap<GoalId, Vec<&PledgeState>> = BTreeMap::new();
    for pledge in pledges.iter().filter(|pledge| !pledge.withdrawn) {
        by_goal.entry(pledge.goal).or_default().push(pledge);
    }
    let mut active = BTreeSet::new();
    for goal_pledges in by_goal.values() {
        let mut alive = vec![true; goal_pledges.len()];
        // Each pass either deactivates a pledge or ends, so this runs at most n + 1 passes.
        loop {
            let mut members: BTreeMap<OrgId, usize> = BTreeMap::new();
            let mut total: i128 = 0;
            for (pledge, _) in goal_pledges.iter().zip(&alive).filter(|(_, alive)| **alive) {
                *members.entry(pledge.member).or_default() += 1;
                // A non-positive quantity (refused by `validate_pledge`) adds nothing, which keeps
                // every condition monotone and the fixed point well defined.
                total += i128::from(pledge.quantity.max(0));
            }
            let mut changed = false;
            for (pledge, alive) in goal_pledges.iter().zip(alive.iter_mut()) {
                if !*alive {
                    continue;
                }
                let holds = match &pledge.condition {
                    None => true,
                    Some(Condition::OthersAtLeast { count }) => {
                        // The pledge itself is active, so its member is among `members`.
                        let others = members.len().saturating_sub(1);
                        others >= *count as usize
                    }
                    Some(Condition::TotalAtLeast { quantity }) => total >= i128::from(*quantity),
                };
                if !holds {
                    *alive = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        active.extend(
            goal_pledges
                .iter()
                .zip(&alive)
                .filter(|(_, alive)| **alive)
                .map(|(pledge, _)| pledge.id),
        );
    }
    active
}

/// Past due, not fully fulfilled and not withdrawn.
pub fn is_overdue(pledge: &PledgeState, now: Timestamp) -> bool {
    pledge.due < now && pledge.fulfilled < pledge.quantity && !pledge.withdrawn
}

/// Refuses a pledge that could never mean anything.
pub fn validate_pledge(
    quantity: i64,
    due: Timestamp,
    now: Timestamp,
    condition: Option<&Condition>,
) -> Result<()> {
    if quantity <= 0 {
        return Err(Error::invalid(
            "quantity",
            format!("a pledge's quantity must be positive; got {quantity}"),
        ));
    }
    if due <= now {
        return Err(Error::invalid(
            "due",
            format!("a pledge must be due in the future; {due} is not after {now}"),
        ));
    }
    match condition {
        Some(Condition::OthersAtLeast { count: 0 }) => Err(Error::invalid(
            "condition",
            "others_at_least needs a count of at least 1; leave the condition out for an unconditional pledge",
        )),
        Some(Condition::TotalAtLeast { quantity }) if *quantity <= 0 => Err(Error::invalid(
            "condition",
            format!(
                "total_at_least needs a positive quantity; got {quantity}, leave the condition out for an unconditional pledge"
            ),
        )),
        _ => Ok(()),
    }
}
