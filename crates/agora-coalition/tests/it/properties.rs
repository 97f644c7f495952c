//! Property tests: the tally against a naive reference model, early decisions against every continuation, and pledge activation against brute force.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use agora_coalition::{
    Ballot, Charter, Choice, Condition, Decision, Delegation, Electorate, PledgeState, Tally,
    TallyRules, active_pledges, decision, tally_rules,
};
use proptest::prelude::*;

use crate::fixtures::{at, org};
use crate::pledges::pledge;

const TOPIC: &str = "budget";

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        Just(Choice::Yes),
        Just(Choice::No),
        Just(Choice::Abstain),
        Just(Choice::Block)
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    electorate: Electorate,
    delegations: Vec<Delegation>,
    ballots: Vec<Ballot>,
    rules: TallyRules,
}

/// Members are 1..=n; ids up to n + 3 include non-members.
fn scenario() -> impl Strategy<Value = Scenario> {
    (1u32..=40).prop_flat_map(|n| {
        let weights = prop::collection::vec(0u64..=5, n as usize);
        let topic = prop_oneof![
            Just(None),
            Just(Some(TOPIC.to_owned())),
            Just(Some("other".to_owned()))
        ];
        let delegations =
            prop::collection::vec((1..=n + 3, 1..=n + 3, topic), 0..(2 * n as usize + 2));
        let ballots =
            prop::collection::vec((1..=n + 3, choice(), 0i64..6), 0..(2 * n as usize + 2));
        let rules = (
            1u32..10_000,
            0u32..=10_000,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        );
        (weights, delegations, ballots, rules).prop_map(|(weights, delegations, ballots, rules)| {
            Scenario {
                electorate: Electorate {
                    weights: weights
                        .into_iter()
                        .enumerate()
                        .map(|(i, w)| (org(i as u32 + 1), w))
                        .collect(),
                },
                delegations: delegations
                    .into_iter()
                    .map(|(from, to, topic)| Delegation {
                        from: org(from),
                        to: org(to),
                        topic,
                    })
                    .collect(),
                ballots: ballots
                    .into_iter()
                    .map(|(voter, choice, seconds)| Ballot {
                        voter: org(voter),
                        choice,
                        at: at(seconds),
                    })
                    .collect(),
                rules: TallyRules {
                    support_threshold_bps: rules.0,
                    quorum_bps: rules.1,
                    block_allowed: rules.2,
                    delegation: rules.3,
                    votes_changeable: rules.4,
                },
            }
        })
    })
}

/// The naive model: (yes, no, abstain, block, total) computed member by member.
fn reference(s: &Scenario) -> (u64, u64, u64, u64, u64) {
    let is_member = |id: &agora_domain::OrgId| s.electorate.weights.contains_key(id);
    let latest_choice = |member: &agora_domain::OrgId| -> Option<Choice> {
        let mut best: Option<&Ballot> = None;
        for ballot in s.ballots.iter().filter(|b| b.voter == *member) {
            if best.is_none_or(|b| ballot.at >= b.at) {
                best = Some(ballot);
            }
        }
        best.map(|b| b.choice)
    };
    let delegate_of = |member: &agora_domain::OrgId| -> Option<agora_domain::OrgId> {
        if !s.rules.delegation {
            return None;
        }
        let last = |topic: Option<&str>| {
            s.delegations
                .iter()
                .rev()
                .find(|d| d.from == *member && d.topic.as_deref() == topic)
                .map(|d| d.to)
        };
        last(Some(TOPIC)).or_else(|| last(None))
    };
    let mut totals = [0u64; 4];
    let mut total = 0;
    for (member, weight) in &s.electorate.weights {
        total += weight;
        let mut current = *member;
        let mut visited = HashSet::new();
        let choice = loop {
            if !is_member(&current) || !visited.insert(current) {
                break None;
            }
            if let Some(choice) = latest_choice(&current) {
                break Some(choice);
            }
            match delegate_of(&current) {
                Some(next) => current = next,
                None => break None,
            }
        };
        let slot = match choice {
            None => continue,
            Some(Choice::Yes) => 0,
            Some(Choice::No) => 1,
            Some(Choice::Abstain) => 2,
            Some(Choice::Block) if s.rules.block_allowed => 3,
            Some(Choice::Block) => 1,
        };
        totals[slot] += weight;
    }
    (totals[0], totals[1], totals[2], totals[3], total)
}

fn check_against_reference(s: &Scenario, result: &Tally) {
    let (yes, no, abstain, block, total) = reference(s);
    assert_eq!(
        (
            result.yes,
            result.no,
            result.abstain,
            result.block,
            result.total_power
        ),
        (yes, no, abstain, block, total)
    );
    let th = u128::from(s.rules.support_threshold_bps);
    let support = yes + no > 0 && u128::from(yes) * 10_000 > th * u128::from(yes + no);
    let quorum = u128::from(yes + no + abstain + block) * 10_000
        >= u128::from(s.rules.quorum_bps) * u128::from(total);
    assert_eq!(
        (result.support_reached, result.quorum_reached),
        (support, quorum)
    );
    assert!(result.participation() <= result.total_power);

    let mut sums: BTreeMap<Choice, u64> = BTreeMap::new();
    for vote in &result.votes {
        *sums.entry(vote.choice).or_default() += vote.weight;
        assert_eq!(s.electorate.weights.get(&vote.voter), Some(&vote.weight));
        // `via` is a real delegation path ending at a member whose latest ballot is this choice.
        let mut hop = vote.voter;
        for next in &vote.via {
            assert!(
                s.delegations.iter().any(|d| d.from == hop && d.to == *next),
                "{hop:?} -> {next:?}"
            );
            hop = *next;
        }
        assert!(s.ballots.iter().any(|b| b.voter == hop));
    }
    assert!(
        result
            .votes
            .windows(2)
            .all(|pair| pair[0].voter < pair[1].voter)
    );
    let sum = |choice| sums.get(&choice).copied().unwrap_or(0);
    assert_eq!(
        (
            sum(Choice::Yes),
            sum(Choice::No),
            sum(Choice::Abstain),
            sum(Choice::Block)
        ),
        (yes, no, abstain, block)
    );
}

proptest! {
    #[test]
    fn tally_matches_reference_model(s in scenario()) {
        let result = tally_rules(&s.rules, &s.electorate, &s.delegations, TOPIC, &s.ballots);
        check_against_reference(&s, &result);
    }

    /// With final votes, an early decision must equal the decision at the close for every way
    /// the members who have not voted directly might still vote (or not), delegations kept.
    #[test]
    fn early_decision_holds_for_every_continuation(
        s in scenario(),
        continuations in prop::collection::vec(prop::collection::vec(prop::option::of(choice()), 43), 1..24),
    ) {
        let rules = TallyRules { votes_changeable: false, ..s.rules.clone() };
        let clock = agora_coalition::Clock { opened_at: at(0), closes_at: at(100), extended: false };
        let now = tally_rules(&rules, &s.electorate, &s.delegations, TOPIC, &s.ballots);
        let early = decision(&rules, &now, true, &clock, at(50));
        // Undecided promises nothing (about half the cases); a rejection here would exhaust
        // proptest's global reject budget at thousands of cases.
        if early == Decision::Undecided {
            return Ok(());
        }
        let voted: BTreeSet<_> = s.ballots.iter().map(|b| b.voter).collect();
        // Extreme continuations first: everyone else yes, no, block, silent.
        let extremes = [Some(Choice::Yes), Some(Choice::No), Some(Choice::Block), None]
            .map(|c| vec![c; 43]);
        for continuation in extremes.iter().chain(&continuations) {
            let mut ballots = s.ballots.clone();
            for (member, _) in s.electorate.weights.iter().filter(|(m, _)| !voted.contains(m)) {
                let number = u128::from_str_radix(&member.to_string()[4..], 16).expect("hex") as usize;
                if let Some(choice) = continuation[number] {
                    let choice = if choice == Choice::Block && !rules.block_allowed { Choice::No } else { choice };
                    ballots.push(Ballot { voter: *member, choice, at: at(60) });
                }
            }
            let closed = tally_rules(&rules, &s.electorate, &s.delegations, TOPIC, &ballots);
            prop_assert_eq!(decision(&rules, &closed, true, &clock, at(100)), early);
        }
    }

    #[test]
    fn active_pledges_is_the_greatest_fixed_point(
        specs in prop::collection::vec((1u32..=5, 1u32..=2, 1i64..=20, 0u8..3, 0u32..=4, 1i64..=60, any::<bool>()), 0..=10)
    ) {
        let pledges: Vec<PledgeState> = specs.iter().enumerate().map(|(i, (member, goal, quantity, kind, count, total, withdrawn))| {
            let condition = match kind {
                0 => None,
                1 => Some(Condition::OthersAtLeast { count: *count }),
                _ => Some(Condition::TotalAtLeast { quantity: *total }),
            };
            let mut p = pledge(i as u32 + 1, *member, *goal, *quantity, condition);
            p.withdrawn = *withdrawn;
            p
        }).collect();
        let active = active_pledges(&pledges);
        let holds_in = |set: &BTreeSet<usize>, i: usize| -> bool {
            let p = &pledges[i];
            let same_goal = || set.iter().map(|j| &pledges[*j]).filter(|q| q.goal == p.goal);
            match &p.condition {
                None => true,
                Some(Condition::OthersAtLeast { count }) => {
                    let others: BTreeSet<_> = same_goal().filter(|q| q.member != p.member).map(|q| q.member).collect();
                    others.len() >= *count as usize
                }
                Some(Condition::TotalAtLeast { quantity }) => same_goal().map(|q| q.quantity).sum::<i64>() >= *quantity,
            }
        };
        let is_fixed_point = |set: &BTreeSet<usize>| set.iter().all(|i| !pledges[*i].withdrawn && holds_in(set, *i));
        let as_indices: BTreeSet<usize> = (0..pledges.len()).filter(|i| active.contains(&pledges[*i].id)).collect();
        prop_assert!(is_fixed_point(&as_indices));
        // Greatest: every self-consistent subset is contained in it.
        for mask in 0u32..(1 << pledges.len()) {
            let subset: BTreeSet<usize> = (0..pledges.len()).filter(|i| mask & (1 << i) != 0).collect();
            if is_fixed_point(&subset) {
                prop_assert!(subset.is_subset(&as_indices), "{subset:?} is consistent but not within {as_indices:?}");
            }
        }
    }
}

#[test]
fn reference_model_agrees_on_a_hand_built_cycle() {
    let s = Scenario {
        electorate: Electorate {
            weights: (1..=3).map(|i| (org(i), 1)).collect(),
        },
        delegations: vec![
            Delegation {
                from: org(1),
                to: org(2),
                topic: None,
            },
            Delegation {
                from: org(2),
                to: org(1),
                topic: None,
            },
            Delegation {
                from: org(3),
                to: org(3),
                topic: None,
            },
        ],
        ballots: vec![],
        rules: Charter::default().rules_for(false),
    };
    let result = tally_rules(&s.rules, &s.electorate, &s.delegations, TOPIC, &s.ballots);
    check_against_reference(&s, &result);
    assert_eq!(result.participation(), 0);
}
