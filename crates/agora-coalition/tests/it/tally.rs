//! Tally cases: delegation precedence, chains, cycles, latest ballots, strict support, quorum rounding, weights.

use agora_coalition::{
    Ballot, Charter, Choice, Delegation, Electorate, Tally, TallyRules, tally, tally_rules,
};

use crate::fixtures::{ballot, delegate, members, org};

const TOPIC: &str = "budget";

fn count(electorate: &Electorate, delegations: &[Delegation], ballots: &[Ballot]) -> Tally {
    tally(&Charter::default(), electorate, delegations, TOPIC, ballots)
}

/// (yes, no, abstain, block)
fn totals(tally: &Tally) -> (u64, u64, u64, u64) {
    (tally.yes, tally.no, tally.abstain, tally.block)
}

#[test]
fn direct_ballot_overrides_delegation() {
    let result = count(
        &members(3),
        &[delegate(1, 2, None)],
        &[ballot(1, Choice::No, 10), ballot(2, Choice::Yes, 5)],
    );
    assert_eq!(totals(&result), (1, 1, 0, 0));
    assert!(result.votes.iter().all(|vote| vote.via.is_empty()));
}

#[test]
fn topic_delegation_takes_precedence_over_general() {
    let result = count(
        &members(3),
        &[delegate(1, 2, None), delegate(1, 3, Some(TOPIC))],
        &[ballot(2, Choice::Yes, 1), ballot(3, Choice::No, 1)],
    );
    assert_eq!(totals(&result), (1, 2, 0, 0));
    assert_eq!(result.votes[0].voter, org(1));
    assert_eq!(result.votes[0].via, vec![org(3)]);
}

#[test]
fn delegation_for_another_topic_is_ignored() {
    let result = count(
        &members(2),
        &[delegate(1, 2, Some("hiring"))],
        &[ballot(2, Choice::Yes, 1)],
    );
    assert_eq!(totals(&result), (1, 0, 0, 0));
}

#[test]
fn transitive_chain_counts_with_the_end_voter_and_records_the_path() {
    let result = count(
        &members(4),
        &[
            delegate(1, 2, None),
            delegate(2, 3, Some(TOPIC)),
            delegate(3, 4, None),
        ],
        &[ballot(4, Choice::Abstain, 1)],
    );
    assert_eq!(totals(&result), (0, 0, 4, 0));
    assert_eq!(result.votes[0].via, vec![org(2), org(3), org(4)]);
    assert_eq!(result.votes[2].via, vec![org(4)]);
    assert!(result.votes[3].via.is_empty());
}

#[test]
fn cycle_counts_nothing() {
    let result = count(
        &members(4),
        &[
            delegate(1, 2, None),
            delegate(2, 3, None),
            delegate(3, 1, None),
            delegate(4, 4, None),
        ],
        &[],
    );
    assert_eq!(totals(&result), (0, 0, 0, 0));
    assert!(result.votes.is_empty());
}

#[test]
fn chain_into_a_cycle_or_out_of_the_electorate_or_to_a_silent_member_counts_nothing() {
    let result = count(
        &members(6),
        &[
            delegate(1, 2, None),
            delegate(2, 3, None),
            delegate(3, 2, None),
            delegate(4, 99, None),
            delegate(5, 6, None),
        ],
        &[ballot(6, Choice::Yes, 1), ballot(6, Choice::Yes, 2)],
    );
    // Member 5 follows 6, who voted; 1..=4 count nothing.
    assert_eq!(totals(&result), (2, 0, 0, 0));
}

#[test]
fn topic_delegation_leading_nowhere_does_not_fall_back_to_general() {
    let result = count(
        &members(3),
        &[delegate(1, 2, None), delegate(1, 3, Some(TOPIC))],
        &[ballot(2, Choice::Yes, 1)],
    );
    assert_eq!(totals(&result), (1, 0, 0, 0));
}

#[test]
fn non_members_ballots_and_delegations_are_ignored() {
    let result = count(
        &members(2),
        &[delegate(50, 1, None)],
        &[ballot(50, Choice::Yes, 1), ballot(1, Choice::No, 1)],
    );
    assert_eq!(totals(&result), (0, 1, 0, 0));
    assert_eq!(result.total_power, 2);
}

#[test]
fn latest_ballot_counts_and_ties_go_to_the_later_in_the_slice() {
    let result = count(
        &members(2),
        &[],
        &[
            ballot(1, Choice::No, 20),
            ballot(1, Choice::Yes, 10),
            ballot(2, Choice::No, 5),
            ballot(2, Choice::Abstain, 5),
        ],
    );
    assert_eq!(totals(&result), (0, 1, 1, 0));
}

#[test]
fn exactly_half_yes_does_not_reach_a_half_threshold() {
    let result = count(
        &members(4),
        &[],
        &[ballot(1, Choice::Yes, 1), ballot(2, Choice::No, 1)],
    );
    assert!(!result.support_reached);
    let result = count(
        &members(4),
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::No, 1),
            ballot(3, Choice::Yes, 1),
        ],
    );
    assert!(result.support_reached);
}

#[test]
fn abstentions_only_reach_quorum_but_not_support() {
    let result = count(&members(2), &[], &[ballot(1, Choice::Abstain, 1)]);
    assert!(result.quorum_reached);
    assert!(!result.support_reached);
}

#[test]
fn quorum_rounds_up() {
    let rules = TallyRules {
        quorum_bps: 1500,
        ..Charter::default().rules_for(false)
    };
    let one = tally_rules(
        &rules,
        &members(10),
        &[],
        TOPIC,
        &[ballot(1, Choice::Yes, 1)],
    );
    assert!(!one.quorum_reached, "15% of 10 needs 2, not 1");
    let two = tally_rules(
        &rules,
        &members(10),
        &[],
        TOPIC,
        &[ballot(1, Choice::Yes, 1), ballot(2, Choice::No, 1)],
    );
    assert!(two.quorum_reached);
}

#[test]
fn weights_count_and_weight_zero_counts_nothing_but_may_be_a_delegate() {
    let electorate = Electorate {
        weights: [(org(1), 5), (org(2), 0), (org(3), 2), (org(4), 1)]
            .into_iter()
            .collect(),
    };
    let result = count(
        &electorate,
        &[delegate(1, 2, None)],
        &[ballot(2, Choice::Yes, 1), ballot(3, Choice::No, 1)],
    );
    assert_eq!(totals(&result), (5, 2, 0, 0));
    assert_eq!(result.total_power, 8);
    assert_eq!(result.votes.len(), 2, "weight-0 member 2 is not listed");
    assert_eq!(result.votes[0].via, vec![org(2)]);
}

#[test]
fn delegation_switched_off_ignores_delegations() {
    let charter = Charter {
        delegation: false,
        ..Charter::default()
    };
    let result = tally(
        &charter,
        &members(2),
        &[delegate(1, 2, None)],
        TOPIC,
        &[ballot(2, Choice::Yes, 1)],
    );
    assert_eq!(totals(&result), (1, 0, 0, 0));
}

#[test]
fn block_counts_only_when_allowed_otherwise_as_no() {
    let ballots = [ballot(1, Choice::Block, 1), ballot(2, Choice::Yes, 1)];
    let result = count(&members(2), &[delegate(3, 1, None)], &ballots);
    assert_eq!(totals(&result), (1, 1, 0, 0));
    let charter = Charter {
        block_allowed: true,
        ..Charter::default()
    };
    let result = tally(
        &charter,
        &members(3),
        &[delegate(3, 1, None)],
        TOPIC,
        &ballots,
    );
    assert_eq!(totals(&result), (1, 0, 0, 2));
}

#[test]
fn votes_are_sorted_by_voter() {
    let result = count(
        &members(5),
        &[],
        &[
            ballot(5, Choice::Yes, 1),
            ballot(2, Choice::No, 1),
            ballot(4, Choice::Yes, 1),
        ],
    );
    let voters: Vec<_> = result.votes.iter().map(|vote| vote.voter).collect();
    assert_eq!(voters, vec![org(2), org(4), org(5)]);
}

#[test]
fn empty_electorate_tallies_to_nothing() {
    let result = count(&Electorate::default(), &[], &[]);
    assert_eq!(totals(&result), (0, 0, 0, 0));
    assert!(!result.support_reached);
    assert_eq!(result.total_power, 0);
}

#[test]
fn long_chain_of_three_thousand_resolves() {
    let n = 3000;
    let delegations: Vec<_> = (1..n)
        .map(|member| delegate(member, member + 1, None))
        .collect();
    let result = count(&members(n), &delegations, &[ballot(n, Choice::Yes, 1)]);
    assert_eq!(result.yes, u64::from(n));
    assert_eq!(result.votes[0].via.len(), (n - 1) as usize);
}
