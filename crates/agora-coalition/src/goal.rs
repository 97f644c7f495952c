//! A coalition's goal tree and its progress, rolled up from sub-goals.
//!
//! # Rules
//!
//! - A leaf's pledged and fulfilled quantities are the sums of the active pledges to it; its
//!   progress in basis points is `quantity * 10_000 / target`, rounded down. Progress above
//!   100% is kept (a goal can be over-pledged) and saturates at `u32::MAX`.
//! - A parent's progress is its children's progress averaged with the children's weights, or
//!   the plain average when every weight is 0 (Decidim's accountability results: a parent's
//!   progress is recomputed from its children). Its quantities are the sums of its children's
//!   plus pledges made to it directly; those direct pledges show in its quantities but not in
//!   its progress, which comes from the children alone, as in Decidim.
//! - A tree must be a tree: an unknown parent, a cycle, a duplicate id, a target that is not
//!   positive, or a pledge to an unknown goal is refused.

use std::collections::{BTreeMap, HashMap, VecDeque};

use agora_domain::{Error, GoalId, Result, Timestamp};
use serde::{Deserialize, Serialize};

use crate::charter::BPS_WHOLE;

/// How a parent's progress comes from its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// Quantities add up (a parent's quantities are always sums).
    Sum,
    /// Progress in basis points is the children's weighted average (what [`progress`] does).
    WeightedAverage,
}

/// A goal in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalNode {
    pub id: GoalId,
    pub parent: Option<GoalId>,
    pub target: i64,
    /// This goal's weight in its parent's average; when all siblings have 0, the plain average.
    pub weight: u32,
}

/// A goal's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub goal: GoalId,
    pub pledged: i64,
    pub fulfilled: i64,
    pub target: i64,
    pub pledged_bps: u32,
    pub fulfilled_bps: u32,
}

/// Every goal's progress, given the active pledges as `(goal, pledged, fulfilled)`.
pub fn progress(
    goals: &[GoalNode],
    active_pledges: &[(GoalId, i64, i64)],
) -> Result<BTreeMap<GoalId, Progress>> {
    let mut index: HashMap<GoalId, usize> = HashMap::with_capacity(goals.len());
    for (position, goal) in goals.iter().enumerate() {
        if goal.target <= 0 {
            return Err(Error::invalid(
                "goal",
                format!(
                    "goal {} has target {}; a target must be positive",
                    goal.id, goal.target
                ),
            ));
        }
        if index.insert(goal.id, position).is_some() {
            return Err(Error::invalid(
                "goal",
                format!("goal {} appears twice; each goal must appear once", goal.id),
            ));
        }
    }
    let mut parent_of = vec![None; goals.len()];
    let mut pending_children = vec![0usize; goals.len()];
    for (position, goal) in goals.iter().enumerate() {
        if let Some(parent) = goal.parent {
            let Some(&parent_position) = index.get(&parent) else {
                return Err(Error::invalid(
                    "goal",
                    format!(
                        "goal {} names parent {parent}, which is not a goal of this coalition",
                        goal.id
                    ),
                ));
            };
            parent_of[position] = Some(parent_position);
            pending_children[parent_position] += 1;
        }
    }

    let mut pledged = vec![0i64; goals.len()];
    let mut fulfilled = vec![0i64; goals.len()];
    for (goal, pledge_quantity, fulfilled_quantity) in active_pledges {
        let Some(&position) = index.get(goal) else {
            return Err(Error::invalid(
                "goal",
                format!("a pledge names goal {goal}, which is not a goal of this coalition"),
            ));
        };
        pledged[position] = pledged[position].saturating_add(*pledge_quantity);
        fulfilled[position] = fulfilled[position].saturating_add(*fulfilled_quantity);
    }

    // Children before parents (Kahn's order from the leaves up). Each goal has one parent, so
    // the goals never reached are exactly those on a cycle.
    let mut ready: VecDeque<usize> = (0..goals.len())
        .filter(|position| pending_children[*position] == 0)
        .collect();
    // Per parent: (sum of weight * bps, sum of weights, sum of bps, children) for both measures.
    let mut children: Vec<ChildSums> = vec![ChildSums::default(); goals.len()];
    let mut result = BTreeMap::new();
    while let Some(position) = ready.pop_front() {
        let goal = &goals[position];
        let sums = &children[position];
        let (pledged_bps, fulfilled_bps) = if sums.count == 0 {
            (
                bps(pledged[position], goal.target),
                bps(fulfilled[position], goal.target),
            )
        } else {
            (sums.pledged_average(), sums.fulfilled_average())
        };
        result.insert(
            goal.id,
            Progress {
                goal: goal.id,
                pledged: pledged[position],
                fulfilled: fulfilled[position],
                target: goal.target,
                pledged_bps,
                fulfilled_bps,
            },
        );
        if let Some(parent) = parent_of[position] {
            pledged[parent] = pledged[parent].saturating_add(pledged[position]);
            fulfilled[parent] = fulfilled[parent].saturating_add(fulfilled[position]);
            let weight = u128::from(goal.weight);
            let sums = &mut children[parent];
            sums.count += 1;
            sums.weights += weight;
            sums.pledged_weighted += weight * u128::from(pledged_bps);
            sums.fulfilled_weighted += weight * u128::from(fulfilled_bps);
            sums.pledged_plain += u128::from(pledged_bps);
            sums.fulfilled_plain += u128::from(fulfilled_bps);
            pending_children[parent] -= 1;
            if pending_children[parent] == 0 {
                ready.push_back(parent);
            }
        }
    }
    if result.len() < goals.len() {
        let cycle: Vec<String> = goals
            .iter()
            .filter(|goal| !result.contains_key(&goal.id))
            .map(|goal| goal.id.to_string())
            .collect();
        return Err(Error::invalid(
            "goal",
            format!(
                "goals {} are their own ancestors; a goal's parent chain must end at a goal without a parent",
                cycle.join(", ")
            ),
        ));
    }
    Ok(result)
}

#[derive(Clone, Default)]
struct ChildSums {
    count: u128,
    weights: u128,
    pledged_weighted: u128,
    fulfilled_weighted: u128,
    pledged_plain: u128,
    fulfilled_plain: u128,
}

impl ChildSums {
    fn pledged_average(&self) -> u32 {
        self.average(self.pledged_weighted, self.pledged_plain)
    }

    fn fulfilled_average(&self) -> u32 {
        self.average(self.fulfilled_weighted, self.fulfilled_plain)
    }

    fn average(&self, weighted: u128, plain: u128) -> u32 {
        let average = weighted
            .checked_div(self.weights)
            .unwrap_or(plain / self.count.max(1));
        u32::try_from(average).unwrap_or(u32::MAX)
    }
}

/// `quantity / target` in basis points, rounded down, 0 for a negative quantity.
fn bps(quantity: i64, target: i64) -> u32 {
    let ratio = i128::from(quantity.max(0)) * i128::from(BPS_WHOLE) / i128::from(target.max(1));
    u32::try_from(ratio).unwrap_or(u32::MAX)
}

/// Refuses a goal without a positive target or with a deadline that is not in the future.
pub fn validate_goal(target: i64, deadline: Timestamp, now: Timestamp) -> Result<()> {
    if target <= 0 {
        return Err(Error::invalid(
            "target",
            format!("a goal's target must be positive; got {target}"),
        ));
    }
    if deadline <= now {
        return Err(Error::invalid(
            "deadline",
            format!("a goal's deadline must be in the future; {deadline} is not after {now}"),
        ));
    }
    Ok(())
}
