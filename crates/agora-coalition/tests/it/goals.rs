//! Goal trees: leaf sums, weighted and plain averages up the tree, refused trees.

use agora_coalition::{GoalNode, progress, validate_goal};
use agora_domain::Error;

use crate::fixtures::{at, goal};

fn node(id: u32, parent: Option<u32>, target: i64, weight: u32) -> GoalNode {
    GoalNode {
        id: goal(id),
        parent: parent.map(goal),
        target,
        weight,
    }
}

fn refusal(result: agora_domain::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "goal");
            message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn leaves_sum_their_pledges_and_parents_take_the_weighted_average() {
    let goals = [
        node(1, None, 1000, 0),
        node(2, Some(1), 100, 3),
        node(3, Some(1), 200, 1),
    ];
    let pledges = [
        (goal(2), 50, 10),
        (goal(2), 50, 10),
        (goal(3), 50, 0),
        (goal(1), 7, 7),
    ];
    let result = progress(&goals, &pledges).expect("a tree");
    let leaf = &result[&goal(2)];
    assert_eq!(
        (
            leaf.pledged,
            leaf.fulfilled,
            leaf.pledged_bps,
            leaf.fulfilled_bps
        ),
        (100, 20, 10_000, 2_000)
    );
    let other = &result[&goal(3)];
    assert_eq!((other.pledged_bps, other.fulfilled_bps), (2_500, 0));
    let root = &result[&goal(1)];
    // (3 * 10000 + 1 * 2500) / 4 and (3 * 2000 + 0) / 4; quantities add the direct pledge.
    assert_eq!((root.pledged_bps, root.fulfilled_bps), (8_125, 1_500));
    assert_eq!((root.pledged, root.fulfilled, root.target), (157, 27, 1000));
}

#[test]
fn parents_take_the_plain_average_when_no_child_has_weight() {
    let goals = [
        node(1, None, 1, 0),
        node(2, Some(1), 100, 0),
        node(3, Some(1), 100, 0),
        node(4, Some(3), 100, 0),
    ];
    let pledges = [(goal(2), 100, 0), (goal(4), 30, 0)];
    let result = progress(&goals, &pledges).expect("a tree");
    assert_eq!(
        result[&goal(3)].pledged_bps,
        3_000,
        "a parent of one child takes its progress"
    );
    assert_eq!(result[&goal(1)].pledged_bps, 6_500);
    assert_eq!(result[&goal(1)].pledged, 130);
}

#[test]
fn over_pledged_goals_show_above_one_hundred_percent() {
    let result = progress(&[node(1, None, 10, 0)], &[(goal(1), 25, 0)]).expect("a tree");
    assert_eq!(result[&goal(1)].pledged_bps, 25_000);
    let huge = progress(&[node(1, None, 1, 0)], &[(goal(1), i64::MAX, 0)]).expect("a tree");
    assert_eq!(huge[&goal(1)].pledged_bps, u32::MAX);
}

#[test]
fn cycles_unknown_parents_duplicates_and_bad_targets_are_refused() {
    let cycle = [
        node(1, Some(3), 10, 0),
        node(2, Some(1), 10, 0),
        node(3, Some(2), 10, 0),
        node(4, Some(1), 10, 0),
    ];
    let message = refusal(progress(&cycle, &[]));
    assert!(
        message.contains(&goal(1).to_string()) && !message.contains(&goal(4).to_string()),
        "{message}"
    );
    assert!(refusal(progress(&[node(1, Some(1), 10, 0)], &[])).contains("own ancestors"));
    assert!(refusal(progress(&[node(1, Some(9), 10, 0)], &[])).contains("not a goal"));
    assert!(
        refusal(progress(&[node(1, None, 10, 0), node(1, None, 10, 0)], &[])).contains("twice")
    );
    assert!(refusal(progress(&[node(1, None, 0, 0)], &[])).contains("positive"));
    assert!(refusal(progress(&[node(1, None, 10, 0)], &[(goal(2), 1, 0)])).contains("not a goal"));
}

#[test]
fn goal_validation_names_the_field() {
    assert_eq!(validate_goal(10, at(2), at(1)), Ok(()));
    assert!(
        matches!(validate_goal(0, at(2), at(1)), Err(Error::Invalid { field, .. }) if field == "target")
    );
    assert!(
        matches!(validate_goal(10, at(1), at(1)), Err(Error::Invalid { field, .. }) if field == "deadline")
    );
}
