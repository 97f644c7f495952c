//! Pledges: conditional activation as PledgeBank meant it, overdue pledges, validation.

use std::collections::BTreeSet;

use agora_coalition::{Condition, PledgeState, active_pledges, is_overdue, validate_pledge};
use agora_domain::Error;

use crate::fixtures::{at, goal, org, pledge_id};

pub fn pledge(
    id: u32,
    member: u32,
    goal_number: u32,
    quantity: i64,
    condition: Option<Condition>,
) -> PledgeState {
    PledgeState {
        id: pledge_id(id),
        member: org(member),
        goal: goal(goal_number),
        quantity,
        due: at(1000),
        condition,
        fulfilled: 0,
        withdrawn: false,
    }
}

fn ids(numbers: &[u32]) -> BTreeSet<agora_domain::PledgeId> {
    numbers.iter().map(|n| pledge_id(*n)).collect()
}

fn others(count: u32) -> Option<Condition> {
    Some(Condition::OthersAtLeast { count })
}

#[test]
fn mutual_conditional_pledges_activate_together() {
    // "I will if 3 others will", four times.
    let pledges: Vec<_> = (1..=4).map(|n| pledge(n, n, 1, 10, others(3))).collect();
    assert_eq!(active_pledges(&pledges), ids(&[1, 2, 3, 4]));
}

#[test]
fn a_condition_never_met_stays_inactive_and_drags_dependents_down() {
    let pledges = vec![
        pledge(1, 1, 1, 10, None),
        pledge(2, 2, 1, 10, others(5)),
        pledge(3, 3, 1, 10, others(2)),
    ];
    // 2 needs 5 others: never. Without 2, 3 sees only member 1: out too.
    assert_eq!(active_pledges(&pledges), ids(&[1]));
}

#[test]
fn others_count_distinct_other_members_on_the_same_goal() {
    let pledges = vec![
        pledge(1, 1, 1, 10, None),
        pledge(2, 1, 1, 10, None),
        pledge(3, 2, 2, 10, None),
        pledge(4, 3, 1, 10, others(2)),
    ];
    // Member 1 twice is one other; member 2 pledges to another goal.
    assert_eq!(active_pledges(&pledges), ids(&[1, 2, 3]));
    let mut more = pledges.clone();
    more.push(pledge(5, 4, 1, 1, None));
    assert_eq!(active_pledges(&more), ids(&[1, 2, 3, 4, 5]));
}

#[test]
fn total_at_least_counts_active_quantities_including_its_own() {
    let pledges = vec![
        pledge(1, 1, 1, 60, None),
        pledge(2, 2, 1, 40, Some(Condition::TotalAtLeast { quantity: 100 })),
        pledge(3, 3, 1, 50, Some(Condition::TotalAtLeast { quantity: 151 })),
    ];
    // 3 needs 151 but at most 150 is pledged; without 3, 2 sees exactly 100.
    assert_eq!(active_pledges(&pledges), ids(&[1, 2]));
}

#[test]
fn withdrawn_pledges_are_never_active_and_count_for_no_one() {
    let mut withdrawn = pledge(1, 1, 1, 10, None);
    withdrawn.withdrawn = true;
    let pledges = vec![withdrawn, pledge(2, 2, 1, 10, others(1))];
    assert_eq!(active_pledges(&pledges), ids(&[]));
}

#[test]
fn overdue_means_past_due_unfulfilled_and_not_withdrawn() {
    let mut p = pledge(1, 1, 1, 10, None);
    assert!(!is_overdue(&p, at(1000)), "due now is not yet overdue");
    assert!(is_overdue(&p, at(1001)));
    p.fulfilled = 10;
    assert!(!is_overdue(&p, at(1001)));
    p.fulfilled = 9;
    p.withdrawn = true;
    assert!(!is_overdue(&p, at(1001)));
}

#[test]
fn validation_names_the_field_at_fault() {
    let field = |result: agora_domain::Result<()>| match result {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(validate_pledge(10, at(2), at(1), None), Ok(()));
    assert_eq!(field(validate_pledge(0, at(2), at(1), None)), "quantity");
    assert_eq!(field(validate_pledge(-3, at(2), at(1), None)), "quantity");
    assert_eq!(field(validate_pledge(10, at(1), at(1), None)), "due");
    assert_eq!(
        field(validate_pledge(
            10,
            at(2),
            at(1),
            Some(&Condition::OthersAtLeast { count: 0 })
        )),
        "condition"
    );
    assert_eq!(
        field(validate_pledge(
            10,
            at(2),
            at(1),
            Some(&Condition::TotalAtLeast { quantity: 0 })
        )),
        "condition"
    );
    assert_eq!(
        validate_pledge(
            10,
            at(2),
            at(1),
            Some(&Condition::OthersAtLeast { count: 1 })
        ),
        Ok(())
    );
}
