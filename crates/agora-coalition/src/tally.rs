//! Counting a proposal's ballots: latest ballot per member, liquid delegation, support and quorum.
//!
//! # Rules
//!
//! - Only members of the [`Electorate`] frozen when the proposal opened count; ballots and
//!   delegations from anyone else are ignored (the app refuses them earlier).
//! - A member may cast several ballots; the latest counts (greatest `at`, ties broken by the
//!   later position in the slice). Loomio lets people change their vote until the close.
//! - A member's own ballot always overrides its delegation (liquid democracy: a delegate never
//!   silences the member).
//! - A member without a ballot follows its delegation for the proposal's topic, or else its
//!   general delegation (`topic: None`), hop by hop until a member who voted; its weight counts
//!   with that member's choice and [`CountedVote::via`] records the path. A chain that ends at a
//!   member with no ballot and no delegation, leaves the electorate, or cycles counts nothing.
//!   At every hop the topic delegation takes precedence over the general one, even if it leads
//!   nowhere. If a member has several delegations for the same topic, the last one in the slice
//!   counts (the app keeps one per member and topic).
//! - Delegated and weighted voting exist in Decidim only as third-party modules and are
//!   Loomio's most requested missing features; Agora has them in the core, off with
//!   `Charter::delegation = false`.
//! - A member of weight 0 (no pledge under `VoteWeight::ByPledge`, say) adds nothing to any
//!   count and is left out of [`Tally::votes`], but may still vote as a delegate for others.
//! - `block` counts only if the charter allows blocking; otherwise a block ballot counts as
//!   `no` (the app refuses such ballots earlier, so this is a fallback).
//! - Support is yes / (yes + no) compared strictly, quorum is participation / total power
//!   compared with `>=` (Aragon OSx and OpenZeppelin Governor; see [`TallyRules`]).
//!
//! # Cost
//!
//! Time is linear in members + delegations + ballots, plus the length of the `via` paths in
//! the result: each member's chain is resolved once and remembered.

use std::collections::{BTreeMap, HashMap};

use agora_domain::{OrgId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::charter::{Charter, TallyRules};

/// A ballot's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Yes,
    No,
    Abstain,
    Block,
}

/// One ballot a member cast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ballot {
    pub voter: OrgId,
    pub choice: Choice,
    pub at: Timestamp,
}

/// `from` lets `to` vote for it on `topic`, or on every topic when `topic` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegation {
    pub from: OrgId,
    pub to: OrgId,
    pub topic: Option<String>,
}

/// The members who may vote on one proposal and their weights, frozen when it opened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Electorate {
    pub weights: BTreeMap<OrgId, u64>,
}

impl Electorate {
    /// Every member with weight 1 (`VoteWeight::OnePerMember`).
    pub fn one_per_member(members: impl IntoIterator<Item = OrgId>) -> Self {
        Self {
            weights: members.into_iter().map(|member| (member, 1)).collect(),
        }
    }

    /// The sum of the weights (saturating, though no real electorate comes near `u64::MAX`).
    pub fn total_power(&self) -> u64 {
        self.weights
            .values()
            .fold(0u64, |sum, weight| sum.saturating_add(*weight))
    }
}

/// One member's weight as counted, and through whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountedVote {
    pub voter: OrgId,
    pub choice: Choice,
    pub weight: u64,
    /// The delegates from `voter` to the member who voted directly (that member last); empty
    /// if `voter` voted itself.
    pub via: Vec<OrgId>,
}

/// The count of one proposal at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
    pub block: u64,
    pub total_power: u64,
    /// Sorted by voter.
    pub votes: Vec<CountedVote>,
    pub support_reached: bool,
    pub quorum_reached: bool,
}

impl Tally {
    /// yes + no + abstain + block.
    pub fn participation(&self) -> u64 {
        self.yes
            .saturating_add(self.no)
            .saturating_add(self.abstain)
            .saturating_add(self.block)
    }
}

/// Tallies an ordinary proposal with the charter's ordinary support threshold.
pub fn tally(
    charter: &Charter,
    electorate: &Electorate,
    delegations: &[Delegation],
    topic: &str,
    ballots: &[Ballot],
) -> Tally {
    tally_rules(
        &charter.rules_for(false),
        electorate,
        delegations,
        topic,
        ballots,
    )
}

/// Where a member's weight goes, once resolved.
#[derive(Clone, Copy, PartialEq)]
enum Resolution {
    Unvisited,
    /// On the chain being walked right now: meeting it again means a cycle.
    OnPath,
    /// Counts nothing.
    Lost,
    /// Counts with the ballot of this member (itself if it voted).
    Reaches(usize),
}

/// Tallies with explicit rules (from [`Charter::rules_for`]).
pub fn tally_rules(
    rules: &TallyRules,
    electorate: &Electorate,
    delegations: &[Delegation],
    topic: &str,
    ballots: &[Ballot],
) -> Tally {
    // Members in voter order, so that the votes come out sorted.
    let members: Vec<(OrgId, u64)> = electorate
        .weights
        .iter()
        .map(|(member, weight)| (*member, *weight))
        .collect();
    let index: HashMap<OrgId, usize> = members
        .iter()
        .enumerate()
        .map(|(position, (member, _))| (*member, position))
        .collect();

    // The latest ballot per member; `>=` lets a later ballot in the slice win a tie.
    let mut latest: Vec<Option<(Timestamp, Choice)>> = vec![None; members.len()];
    for ballot in ballots {
        if let Some(&position) = index.get(&ballot.voter) {
            let newer = match latest[position] {
                Some((at, _)) => ballot.at >= at,
                None => true,
            };
            if newer {
                latest[position] = Some((ballot.at, ballot.choice));
            }
        }
    }

    // Each member's next hop: `Some(None)` is a delegation that leaves the electorate.
    let mut next: Vec<Option<Option<usize>>> = vec![None; members.len()];
    if rules.delegation {
        let mut general: Vec<Option<Option<usize>>> = vec![None; members.len()];
        for delegation in delegations {
            let Some(&from) = index.get(&delegation.from) else {
                continue;
            };
            let to = index.get(&delegation.to).copied();
            match delegation.topic.as_deref() {
                None => general[from] = Some(to),
                Some(own) if own == topic => next[from] = Some(to),
                Some(_) => {}
            }
        }
        for (hop, fallback) in next.iter_mut().zip(general) {
            if hop.is_none() {
                *hop = fallback;
            }
        }
    }

    let mut resolution = vec![Resolution::Unvisited; members.len()];
    let mut path = Vec::new();
    for start in 0..members.len() {
        if resolution[start] != Resolution::Unvisited {
            continue;
        }
        let mut current = start;
        let outcome = loop {
            match resolution[current] {
                Resolution::Lost => break Resolution::Lost,
                Resolution::Reaches(voter) => break Resolution::Reaches(voter),
                Resolution::OnPath => break Resolution::Lost,
                Resolution::Unvisited => {}
            }
            if latest[current].is_some() {
                resolution[current] = Resolution::Reaches(current);
                break Resolution::Reaches(current);
            }
            resolution[current] = Resolution::OnPath;
            path.push(current);
            match next[current] {
                Some(Some(to)) => current = to,
                Some(None) | None => break Resolution::Lost,
            }
        };
        for member in path.drain(..) {
            resolution[member] = outcome;
        }
    }

    let mut tally = Tally {
        yes: 0,
        no: 0,
        abstain: 0,
        block: 0,
        total_power: electorate.total_power(),
        votes: Vec::new(),
        support_reached: false,
        quorum_reached: false,
    };
    for (position, (member, weight)) in members.iter().enumerate() {
        if *weight == 0 {
            continue;
        }
        let Resolution::Reaches(voter) = resolution[position] else {
            continue;
        };
        let Some((_, choice)) = latest[voter] else {
            continue;
        };
        let choice = match choice {
            Choice::Block if !rules.block_allowed => Choice::No,
            other => other,
        };
        let count = match choice {
            Choice::Yes => &mut tally.yes,
            Choice::No => &mut tally.no,
            Choice::Abstain => &mut tally.abstain,
            Choice::Block => &mut tally.block,
        };
        *count = count.saturating_add(*weight);
        let mut via = Vec::new();
        let mut hop = position;
        while hop != voter {
            match next[hop] {
                Some(Some(to)) => {
                    via.push(members[to].0);
                    hop = to;
                }
                // Unreachable: a member resolved to `voter` has a chain of hops ending there.
                _ => break,
            }
        }
        tally.votes.push(CountedVote {
            voter: *member,
            choice,
            weight: *weight,
            via,
        });
    }
    tally.support_reached = rules.support_reached(tally.yes, tally.no);
    tally.quorum_reached = rules.quorum_reached(tally.participation(), tally.total_power);
    tally
}
