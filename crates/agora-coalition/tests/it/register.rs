//! Popolo export: counts agree with the votes, words and shapes as the spec names them.

use agora_coalition::register::{requirement, result_word};
use agora_coalition::{Charter, Choice, Clock, Decision, motion, tally, vote_event};

use crate::fixtures::{at, ballot, delegate, members, org};

#[test]
fn vote_event_counts_equal_the_sum_of_votes_per_option() {
    let charter = Charter {
        block_allowed: true,
        ..Charter::default()
    };
    let result = tally(
        &charter,
        &members(6),
        &[delegate(5, 1, None), delegate(6, 5, None)],
        "t",
        &[
            ballot(1, Choice::Yes, 1),
            ballot(2, Choice::No, 1),
            ballot(3, Choice::Abstain, 1),
            ballot(4, Choice::Block, 1),
        ],
    );
    let clock = Clock {
        opened_at: at(0),
        closes_at: at(3600),
        extended: false,
    };
    let event = vote_event("prp_1", &clock, Decision::Blocked, &result);
    for count in &event.counts {
        let sum: u64 = event
            .votes
            .iter()
            .filter(|vote| vote.option == count.option)
            .map(|vote| vote.weight)
            .sum();
        assert_eq!(count.value, sum, "{:?}", count.option);
    }
    assert_eq!(
        event
            .counts
            .iter()
            .map(|count| count.value)
            .collect::<Vec<_>>(),
        vec![3, 1, 1, 1]
    );
    assert_eq!(event.result, "fail");
    assert_eq!(event.motion_id, "prp_1");
    let json = serde_json::to_value(&event).expect("serializes");
    assert_eq!(json["counts"][3]["option"], "block");
    assert_eq!(json["start_date"], "1970-01-01T00:00:00Z");
    let sixth = &json["votes"][5];
    assert_eq!(sixth["voter_id"], org(6).to_string());
    assert_eq!(
        sixth["via"],
        serde_json::json!([org(5).to_string(), org(1).to_string()])
    );
}

#[test]
fn motion_states_requirement_and_result() {
    let charter = Charter::default();
    let text = requirement(&charter.rules_for(true), &members(8));
    assert_eq!(
        text,
        "support > 66.67% of yes+no, quorum 30% of 8 voting power frozen at open (8 members)"
    );
    let motion = motion(
        "prp_1",
        &org(1),
        "Admit Acme",
        &["admit_member".to_owned(), "publish_pooled".to_owned()],
        at(0),
        text,
        Decision::Undecided,
    );
    assert_eq!(motion.result, "pending");
    assert_eq!(motion.classification, "admit_member,publish_pooled");
    assert_eq!(motion.date, "1970-01-01T00:00:00Z");
    assert_eq!(result_word(Decision::Passes), "pass");
}
