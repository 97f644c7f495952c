//! Proposal clocks and decisions: duration bounds, late-quorum extension, early close only with final votes, timelock.

use agora_coalition::{
    Ballot, Charter, Choice, Clock, Decision, Delegation, Electorate, ProposalStatus, Tally,
    after_vote, decision, executable_at, open_clock, tally,
};
use agora_domain::Error;

use crate::fixtures::{at, ballot, delegate, members};

const DAY: i64 = 86_400;

fn count(
    charter: &Charter,
    electorate: &Electorate,
    delegations: &[Delegation],
    ballots: &[Ballot],
) -> Tally {
    tally(charter, electorate, delegations, "t", ballots)
}

fn final_votes() -> Charter {
    Charter {
        votes_changeable: false,
        ..Charter::default()
    }
}

#[test]
fn clock_uses_the_default_or_a_duration_within_bounds() {
    let charter = Charter::default();
    let clock = open_clock(&charter, at(100), None).expect("default duration");
    assert_eq!(clock.closes_at, at(100 + 7 * DAY));
    assert!(!clock.extended);
    let clock = open_clock(&charter, at(0), Some(3600)).expect("one hour");
    assert_eq!(clock.closes_at, at(3600));
    for seconds in [3599, 30 * DAY + 1, 0, -1] {
        match open_clock(&charter, at(0), Some(seconds)) {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "voting_seconds");
                assert!(message.contains("voting_seconds_min (3600)"), "{message}");
            }
            other => panic!("{seconds}: expected a refusal, got {other:?}"),
        }
    }
}

fn clock(closes_at: i64) -> Clock {
    Clock {
        opened_at: at(0),
        closes_at: at(closes_at),
        extended: false,
    }
}

#[test]
fn late_quorum_extends_once_and_only_forward() {
    let charter = Charter::default();
    let electorate = members(10);
    let before = count(
        &charter,
        &electorate,
        &[],
        &[ballot(1, Choice::Yes, 1), ballot(2, Choice::Yes, 1)],
    );
    let after = count(
        &charter,
        &electorate,
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::Yes, 1),
            ballot(3, Choice::Yes, 1),
        ],
    );
    assert!(!before.quorum_reached && after.quorum_reached);
    let closes = 7 * DAY;

    // Reached early: no extension.
    assert_eq!(
        after_vote(&charter, &clock(closes), &before, &after, at(DAY)),
        clock(closes)
    );
    // Reached with an hour left: the close moves to a day after the vote.
    let extended = after_vote(&charter, &clock(closes), &before, &after, at(closes - 3600));
    assert_eq!(extended.closes_at, at(closes - 3600 + DAY));
    assert!(extended.extended);
    // Once extended, never again.
    let again = Clock {
        closes_at: at(closes),
        ..extended.clone()
    };
    assert_eq!(
        after_vote(&charter, &again, &before, &after, at(closes - 10)),
        again
    );
    // Quorum already reached before the vote: nothing moves.
    assert_eq!(
        after_vote(&charter, &clock(closes), &after, &after, at(closes - 10)),
        clock(closes)
    );
    // Extension 0: never.
    let never = Charter {
        quorum_extension_seconds: 0,
        ..Charter::default()
    };
    assert_eq!(
        after_vote(&never, &clock(closes), &before, &after, at(closes - 10)),
        clock(closes)
    );
    // A vote at or after the close changes nothing.
    assert_eq!(
        after_vote(&charter, &clock(closes), &before, &after, at(closes)),
        clock(closes)
    );
}

#[test]
fn at_close_support_and_quorum_decide() {
    let charter = Charter::default();
    let rules = charter.rules_for(false);
    let electorate = members(10);
    let closes = clock(DAY);
    let passed = count(
        &charter,
        &electorate,
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::Yes, 1),
            ballot(3, Choice::No, 1),
        ],
    );
    assert_eq!(
        decision(&rules, &passed, true, &closes, at(DAY)),
        Decision::Passes
    );
    let no_quorum = count(
        &charter,
        &electorate,
        &[],
        &[ballot(1, Choice::Yes, 1), ballot(2, Choice::Yes, 1)],
    );
    assert_eq!(
        decision(&rules, &no_quorum, true, &closes, at(DAY)),
        Decision::Fails
    );
    let tie = count(
        &charter,
        &electorate,
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::No, 1),
            ballot(3, Choice::Abstain, 1),
        ],
    );
    assert_eq!(
        decision(&rules, &tie, true, &closes, at(DAY)),
        Decision::Fails
    );
    assert_eq!(
        decision(&rules, &passed, true, &closes, at(DAY - 1)),
        Decision::Undecided
    );
}

#[test]
fn amendment_needs_the_higher_threshold() {
    let charter = Charter::default();
    let electorate = members(10);
    let sixty_percent = count(
        &charter,
        &electorate,
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::Yes, 1),
            ballot(3, Choice::Yes, 1),
            ballot(4, Choice::No, 1),
            ballot(5, Choice::No, 1),
        ],
    );
    let closes = clock(DAY);
    assert_eq!(
        decision(
            &charter.rules_for(false),
            &sixty_percent,
            false,
            &closes,
            at(DAY)
        ),
        Decision::Passes
    );
    assert_eq!(
        decision(
            &charter.rules_for(true),
            &sixty_percent,
            false,
            &closes,
            at(DAY)
        ),
        Decision::Fails
    );
}

#[test]
fn block_fails_at_close_when_allowed() {
    let charter = Charter {
        block_allowed: true,
        ..Charter::default()
    };
    let result = count(
        &charter,
        &members(4),
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::Yes, 1),
            ballot(3, Choice::Yes, 1),
            ballot(4, Choice::Block, 1),
        ],
    );
    let rules = charter.rules_for(false);
    assert_eq!(
        decision(&rules, &result, true, &clock(DAY), at(DAY)),
        Decision::Blocked
    );
    assert_eq!(Decision::Blocked.status(), ProposalStatus::Blocked);
    // Votes are changeable by default: the block may be withdrawn, so nothing closes early.
    assert_eq!(
        decision(&rules, &result, true, &clock(DAY), at(10)),
        Decision::Undecided
    );
}

#[test]
fn changeable_votes_never_close_early_even_when_unanimous() {
    let charter = Charter::default();
    let unanimous = count(
        &charter,
        &members(3),
        &[],
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::Yes, 1),
            ballot(3, Choice::Yes, 1),
        ],
    );
    assert_eq!(
        decision(
            &charter.rules_for(false),
            &unanimous,
            true,
            &clock(DAY),
            at(10)
        ),
        Decision::Undecided
    );
}

#[test]
fn final_votes_close_early_once_remaining_power_cannot_flip_it() {
    let charter = final_votes();
    let rules = charter.rules_for(false);
    let electorate = members(10);
    // 6 yes of 10: even if the other 4 vote no, 6 > 4 and quorum holds.
    let six = count(
        &charter,
        &electorate,
        &[],
        &(1..=6)
            .map(|m| ballot(m, Choice::Yes, 1))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        decision(&rules, &six, true, &clock(DAY), at(10)),
        Decision::Passes
    );
    assert_eq!(
        decision(&rules, &six, false, &clock(DAY), at(10)),
        Decision::Undecided,
        "early_close off"
    );
    // 5 yes of 10: the other 5 voting no would make it a tie, which fails.
    let five = count(
        &charter,
        &electorate,
        &[],
        &(1..=5)
            .map(|m| ballot(m, Choice::Yes, 1))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        decision(&rules, &five, true, &clock(DAY), at(10)),
        Decision::Undecided
    );
    // 5 no of 10: the other 5 voting yes would tie, so it can no longer pass.
    let five_no = count(
        &charter,
        &electorate,
        &[],
        &(1..=5)
            .map(|m| ballot(m, Choice::No, 1))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        decision(&rules, &five_no, true, &clock(DAY), at(10)),
        Decision::Fails
    );
}

#[test]
fn delegated_power_is_not_final_because_the_delegator_may_still_vote() {
    let charter = final_votes();
    let rules = charter.rules_for(false);
    let electorate = members(10);
    // Member 1 votes yes for itself and 5 delegators: counted 6 yes, but only 1 is final.
    let delegations: Vec<_> = (2..=6).map(|m| delegate(m, 1, None)).collect();
    let result = count(
        &charter,
        &electorate,
        &delegations,
        &[ballot(1, Choice::Yes, 1)],
    );
    assert_eq!(result.yes, 6);
    assert_eq!(
        decision(&rules, &result, true, &clock(DAY), at(10)),
        Decision::Undecided
    );
}

#[test]
fn final_votes_fail_early_when_quorum_is_out_of_reach_never() {
    // Quorum can always be reached while power remains, so a lone abstention decides nothing.
    let charter = final_votes();
    let result = count(
        &charter,
        &members(10),
        &[],
        &[ballot(1, Choice::Abstain, 1)],
    );
    assert_eq!(
        decision(
            &charter.rules_for(false),
            &result,
            true,
            &clock(DAY),
            at(10)
        ),
        Decision::Undecided
    );
}

#[test]
fn final_votes_with_blocking_allowed() {
    let charter = Charter {
        block_allowed: true,
        ..final_votes()
    };
    let rules = charter.rules_for(false);
    let electorate = members(10);
    let mut ballots: Vec<_> = (1..=9).map(|m| ballot(m, Choice::Yes, 1)).collect();
    let nine = count(&charter, &electorate, &[], &ballots);
    assert_eq!(
        decision(&rules, &nine, true, &clock(DAY), at(10)),
        Decision::Undecided,
        "member 10 could still block"
    );
    ballots.push(ballot(10, Choice::Yes, 1));
    let all = count(&charter, &electorate, &[], &ballots);
    assert_eq!(
        decision(&rules, &all, true, &clock(DAY), at(10)),
        Decision::Passes
    );
    let blocked = count(&charter, &electorate, &[], &[ballot(3, Choice::Block, 1)]);
    assert_eq!(
        decision(&rules, &blocked, true, &clock(DAY), at(10)),
        Decision::Blocked
    );
}

#[test]
fn execution_waits_for_the_delay() {
    let charter = Charter {
        execution_delay_seconds: 2 * DAY,
        ..Charter::default()
    };
    assert_eq!(executable_at(&charter, at(100)), at(100 + 2 * DAY));
    assert_eq!(executable_at(&Charter::default(), at(100)), at(100));
}
