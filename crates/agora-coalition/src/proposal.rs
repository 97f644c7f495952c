//! A proposal's clock and decision: voting window, late-quorum extension, early close, timelock.
//!
//! # Rules
//!
//! - Voting lasts the charter's `voting_seconds_default` (Loomio's seven days) unless the
//!   proposer picks a duration within `voting_seconds_min..=voting_seconds_max` (Aragon OSx
//!   bounds every duration between 1 hour and 1 year; the charter's bounds lie within those).
//! - Voting is open while `now < closes_at`; from `closes_at` on the decision is final.
//! - Late quorum (OpenZeppelin's `GovernorPreventLateQuorum`): if a ballot makes the quorum
//!   reached when it was not before, and fewer than `quorum_extension_seconds` remain, the
//!   close moves to `now + quorum_extension_seconds` so that the others can react. Like
//!   OpenZeppelin, it extends at most once per proposal and only ever forward.
//! - At the close: `Blocked` if blocking is allowed and any power blocks (Loomio's consent
//!   process), else `Passes` if support and quorum are both reached, else `Fails`.
//! - A passed proposal's actions may run from `decided_at + execution_delay_seconds`
//!   (OpenZeppelin's timelock).
//!
//! # Early close, and why it needs final votes
//!
//! Aragon OSx closes a vote early once the result cannot change assuming all remaining power
//! votes against. That is sound only if cast votes are final: in Loomio (and Agora's default)
//! members may change their vote until the close, and then any counted vote may flip, so no
//! outcome is settled before the close. Aragon itself makes early execution and vote
//! replacement exclusive modes. Agora does the same: early close applies only when the
//! charter has `early_close` and not `votes_changeable`.
//!
//! Even then a member who has not voted directly may still vote, overriding its delegate, so
//! the power that may still move is the total power minus the weights of members who voted
//! directly (not minus the counted power). With `fixed` the direct voters' own counts and
//! `open` the rest, [`decision`] returns early only what holds for every way `open` could vote:
//!
//! - `Blocked` once a direct voter blocked (blocking allowed): a final vote cannot be taken back.
//! - `Passes` when blocking is impossible (not allowed, or `open` is 0), support holds with all
//!   of `open` voting no, and quorum holds on the fixed votes alone.
//! - `Fails` when blocking is impossible and either support fails with all of `open` voting yes
//!   or quorum fails with all of `open` taking part.
//! - Otherwise `Undecided`.

use agora_domain::{Error, Result, Timestamp};
use serde::{Deserialize, Serialize};

use crate::charter::{Charter, TallyRules};
use crate::tally::{Choice, Tally};

/// Where a proposal stands. The app sets `Executed`, `ExecutionFailed` and `Withdrawn` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Open,
    Passed,
    Rejected,
    Blocked,
    Executed,
    ExecutionFailed,
    Withdrawn,
}

/// A proposal's voting window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    pub opened_at: Timestamp,
    pub closes_at: Timestamp,
    /// Whether the late-quorum extension has been used.
    pub extended: bool,
}

/// What the rules say about a proposal now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Undecided,
    Passes,
    Fails,
    Blocked,
}

impl Decision {
    /// The proposal status this decision gives.
    pub fn status(self) -> ProposalStatus {
        match self {
            Decision::Undecided => ProposalStatus::Open,
            Decision::Passes => ProposalStatus::Passed,
            Decision::Fails => ProposalStatus::Rejected,
            Decision::Blocked => ProposalStatus::Blocked,
        }
    }
}

/// Opens the voting window; `voting_seconds` defaults to the charter's default duration.
pub fn open_clock(
    charter: &Charter,
    opened_at: Timestamp,
    voting_seconds: Option<i64>,
) -> Result<Clock> {
    let seconds = voting_seconds.unwrap_or(charter.voting_seconds_default);
    if !(charter.voting_seconds_min..=charter.voting_seconds_max).contains(&seconds) {
        return Err(Error::invalid(
            "voting_seconds",
            format!(
                "{seconds} seconds is outside the charter's bounds; pick between voting_seconds_min ({}) and voting_seconds_max ({}), or leave it out for the default ({})",
                charter.voting_seconds_min,
                charter.voting_seconds_max,
                charter.voting_seconds_default
            ),
        ));
    }
    Ok(Clock {
        opened_at,
        closes_at: opened_at.plus_seconds(seconds),
        extended: false,
    })
}

/// The clock after a ballot cast at `now` turned `before` into `after`.
pub fn after_vote(
    charter: &Charter,
    clock: &Clock,
    before: &Tally,
    after: &Tally,
    now: Timestamp,
) -> Clock {
    let extension = charter.quorum_extension_seconds;
    let quorum_just_reached = !before.quorum_reached && after.quorum_reached;
    let late = now > clock.closes_at.plus_seconds(-extension);
    let open = now < clock.closes_at;
    let mut clock = clock.clone();
    if extension > 0 && quorum_just_reached && late && open && !clock.extended {
        let extended_close = now.plus_seconds(extension);
        if extended_close > clock.closes_at {
            clock.closes_at = extended_close;
            clock.extended = true;
        }
    }
    clock
}

/// The decision at `now`; before the close, only an early decision that no vote can change.
pub fn decision(
    rules: &TallyRules,
    tally: &Tally,
    early_close: bool,
    clock: &Clock,
    now: Timestamp,
) -> Decision {
    if now >= clock.closes_at {
        return final_decision(rules, tally);
    }
    if !early_close || rules.votes_changeable {
        return Decision::Undecided;
    }
    early_decision(rules, tally)
}

fn final_decision(rules: &TallyRules, tally: &Tally) -> Decision {
    if rules.block_allowed && tally.block > 0 {
        Decision::Blocked
    } else if rules.support_reached(tally.yes, tally.no)
        && rules.quorum_reached(tally.participation(), tally.total_power)
    {
        Decision::Passes
    } else {
        Decision::Fails
    }
}

fn early_decision(rules: &TallyRules, tally: &Tally) -> Decision {
    let (mut yes, mut no, mut abstain, mut block) = (0u64, 0u64, 0u64, 0u64);
    for vote in tally.votes.iter().filter(|vote| vote.via.is_empty()) {
        let count = match vote.choice {
            Choice::Yes => &mut yes,
            Choice::No => &mut no,
            Choice::Abstain => &mut abstain,
            Choice::Block => &mut block,
        };
        *count = count.saturating_add(vote.weight);
    }
    if rules.block_allowed && block > 0 {
        return Decision::Blocked;
    }
    let fixed = yes
        .saturating_add(no)
        .saturating_add(abstain)
        .saturating_add(block);
    let open = tally.total_power.saturating_sub(fixed);
    if rules.block_allowed && open > 0 {
        return Decision::Undecided;
    }
    let passes_whatever_happens = rules.support_reached(yes, no.saturating_add(open))
        && rules.quorum_reached(fixed, tally.total_power);
    if passes_whatever_happens {
        return Decision::Passes;
    }
    let can_still_pass = rules.support_reached(yes.saturating_add(open), no)
        && rules.quorum_reached(fixed.saturating_add(open), tally.total_power);
    if can_still_pass {
        Decision::Undecided
    } else {
        Decision::Fails
    }
}

/// When a passed proposal's actions may run: the decision plus the charter's execution delay.
pub fn executable_at(charter: &Charter, decided_at: Timestamp) -> Timestamp {
    decided_at.plus_seconds(charter.execution_delay_seconds)
}
