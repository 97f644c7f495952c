//! The decision register in Popolo's shapes: a proposal as a `Motion`, its tally as a `VoteEvent`.
//!
//! Popolo (popoloproject.com, specs `motion` and `vote-event`) is the open standard for
//! parliamentary votes. Agora follows its field names so that civic tools can read a coalition's
//! register, and extends it in two places: a ballot may be `block` (Loomio's consent process),
//! and each vote carries `via`, the delegation path its weight travelled. Popolo says a vote
//! event's counts should agree with its individual votes; here they do by construction:
//! each option's count is the sum of the weights of the votes with that option.

use agora_domain::{OrgId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::charter::{BPS_WHOLE, TallyRules};
use crate::proposal::{Clock, Decision};
use crate::tally::{Choice, Electorate, Tally};

/// Popolo's `Motion`: what was proposed, under which requirement, with which result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    pub id: String,
    pub organization_id: String,
    pub text: String,
    /// The proposal's action types, comma-separated (Popolo's classification is one string).
    pub classification: String,
    /// When the proposal opened, RFC 3339.
    pub date: String,
    pub requirement: String,
    /// `pass`, `fail` or `pending`.
    pub result: String,
}

/// Popolo's `VoteEvent`: one counted vote on a motion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteEvent {
    pub id: String,
    pub motion_id: String,
    pub start_date: String,
    pub end_date: String,
    pub result: String,
    pub counts: Vec<Count>,
    pub votes: Vec<Vote>,
}

/// Popolo's `Count`: the weight given to one option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub option: Choice,
    pub value: u64,
}

/// Popolo's `Vote`, with Agora's `via` extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub voter_id: String,
    pub option: Choice,
    pub weight: u64,
    /// The delegation path from the voter to the member who cast the ballot; empty if direct.
    pub via: Vec<String>,
}

/// Popolo's result word for a decision.
pub fn result_word(decision: Decision) -> &'static str {
    match decision {
        Decision::Passes => "pass",
        Decision::Fails | Decision::Blocked => "fail",
        Decision::Undecided => "pending",
    }
}

/// The requirement in words, e.g. "support > 50% of yes+no, quorum 30% of 8 voting power
/// frozen at open (3 members)".
pub fn requirement(rules: &TallyRules, electorate: &Electorate) -> String {
    let mut text = format!(
        "support > {} of yes+no, quorum {} of {} voting power frozen at open ({} members)",
        percent(rules.support_threshold_bps),
        percent(rules.quorum_bps),
        electorate.total_power(),
        electorate.weights.len()
    );
    if rules.block_allowed {
        text.push_str(", one block fails it");
    }
    text
}

fn percent(bps: u32) -> String {
    let whole = bps / (BPS_WHOLE / 100);
    let hundredths = bps % (BPS_WHOLE / 100);
    if hundredths == 0 {
        format!("{whole}%")
    } else {
        format!("{whole}.{hundredths:02}%")
    }
}

/// The motion for a proposal.
pub fn motion(
    proposal_id: &str,
    organization_id: &OrgId,
    text: &str,
    action_types: &[String],
    opened_at: Timestamp,
    requirement: String,
    decision: Decision,
) -> Motion {
    Motion {
        id: proposal_id.to_owned(),
        organization_id: organization_id.to_string(),
        text: text.to_owned(),
        classification: action_types.join(","),
        date: opened_at.to_rfc3339(),
        requirement,
        result: result_word(decision).to_owned(),
    }
}

/// The vote event for a proposal's tally; its id is `{proposal_id}/vote`.
pub fn vote_event(
    proposal_id: &str,
    clock: &Clock,
    decision: Decision,
    tally: &Tally,
) -> VoteEvent {
    let options = [Choice::Yes, Choice::No, Choice::Abstain, Choice::Block];
    let counts = options
        .iter()
        .map(|option| Count {
            option: *option,
            value: tally
                .votes
                .iter()
                .filter(|vote| vote.choice == *option)
                .fold(0u64, |sum, vote| sum.saturating_add(vote.weight)),
        })
        .collect();
    let votes = tally
        .votes
        .iter()
        .map(|vote| Vote {
            voter_id: vote.voter.to_string(),
            option: vote.choice,
            weight: vote.weight,
            via: vote.via.iter().map(ToString::to_string).collect(),
        })
        .collect();
    VoteEvent {
        id: format!("{proposal_id}/vote"),
        motion_id: proposal_id.to_owned(),
        start_date: clock.opened_at.to_rfc3339(),
        end_date: clock.closes_at.to_rfc3339(),
        result: result_word(decision).to_owned(),
        counts,
        votes,
    }
}
