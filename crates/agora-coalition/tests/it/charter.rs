//! Charter validation: each unsafe rule refused with its field named, and amendment diffs.

use agora_coalition::Charter;
use agora_domain::Error;

fn refusal(charter: &Charter) -> String {
    match charter.validate() {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "charter");
            message
        }
        other => panic!("expected an invalid charter, got {other:?}"),
    }
}

/// Each case changes one thing in the default charter and names the fields the refusal must mention.
fn check(change: impl Fn(&mut Charter), fields: &[&str]) {
    let mut charter = Charter::default();
    change(&mut charter);
    let message = refusal(&charter);
    for field in fields {
        assert!(message.contains(field), "`{field}` missing from: {message}");
    }
}

#[test]
fn default_charter_is_valid() {
    assert_eq!(Charter::default().validate(), Ok(()));
}

#[test]
fn default_values_are_the_documented_ones() {
    let charter = Charter::default();
    assert_eq!(charter.support_threshold_bps, 5000);
    assert_eq!(charter.quorum_bps, 3000);
    assert_eq!(charter.voting_seconds_min, 3600);
    assert_eq!(charter.voting_seconds_max, 30 * 86_400);
    assert_eq!(charter.voting_seconds_default, 7 * 86_400);
    assert!(charter.early_close && charter.delegation && charter.votes_changeable);
    assert!(!charter.block_allowed);
    assert_eq!(charter.quorum_extension_seconds, 86_400);
    assert_eq!(charter.execution_delay_seconds, 0);
    assert_eq!(charter.amendment_support_threshold_bps, 6667);
    assert_eq!(charter.pooled.min_contributors, 5);
    assert_eq!(charter.pooled.contributor_share_bps_max, 2500);
    assert_eq!(charter.pooled.min_age_days, 90);
}

#[test]
fn each_unsafe_rule_is_refused_naming_its_field() {
    check(
        |c| c.support_threshold_bps = 0,
        &["support_threshold_bps is 0"],
    );
    check(
        |c| c.support_threshold_bps = 10_000,
        &["support_threshold_bps is 10000"],
    );
    check(
        |c| c.support_threshold_bps = 10_001,
        &["support_threshold_bps is 10001"],
    );
    check(
        |c| c.amendment_support_threshold_bps = 4999,
        &["amendment_support_threshold_bps is 4999", "at least 5000"],
    );
    check(
        |c| {
            c.support_threshold_bps = 7000;
            c.amendment_support_threshold_bps = 6000;
        },
        &[
            "amendment_support_threshold_bps is 6000",
            "support_threshold_bps (7000)",
        ],
    );
    check(
        |c| c.amendment_support_threshold_bps = 10_500,
        &["amendment_support_threshold_bps is 10500"],
    );
    check(|c| c.quorum_bps = 0, &["quorum_bps is 0", "1000"]);
    check(|c| c.quorum_bps = 999, &["quorum_bps is 999"]);
    check(|c| c.quorum_bps = 10_001, &["quorum_bps is 10001"]);
    check(
        |c| c.voting_seconds_min = 3599,
        &["voting_seconds_min is 3599", "3600"],
    );
    check(
        |c| c.voting_seconds_max = 31_536_001,
        &["voting_seconds_max is 31536001", "31536000"],
    );
    check(
        |c| c.voting_seconds_default = 60,
        &["voting_seconds_default is 60"],
    );
    check(
        |c| c.voting_seconds_min = 8 * 86_400,
        &["voting_seconds_min (691200) is above voting_seconds_default"],
    );
    check(
        |c| c.voting_seconds_max = 86_400,
        &["voting_seconds_default (604800) is above voting_seconds_max"],
    );
    check(
        |c| c.quorum_extension_seconds = -1,
        &["quorum_extension_seconds is -1"],
    );
    check(
        |c| c.execution_delay_seconds = -5,
        &["execution_delay_seconds is -5"],
    );
    check(
        |c| c.execution_delay_seconds = 31_536_001,
        &["execution_delay_seconds is 31536001"],
    );
    check(
        |c| c.pooled.min_contributors = 2,
        &["pooled.min_contributors is 2", "at least 3"],
    );
    check(
        |c| c.pooled.contributor_share_bps_max = 0,
        &["pooled.contributor_share_bps_max is 0"],
    );
    check(
        |c| c.pooled.contributor_share_bps_max = 5001,
        &["pooled.contributor_share_bps_max is 5001", "5000"],
    );
    check(
        |c| c.pooled.min_age_days = 3651,
        &["pooled.min_age_days is 3651", "3650"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        |c| {
            c.support_threshold_bps = 0;
            c.quorum_bps = 0;
            c.pooled.min_contributors = 1;
        },
        &[
            "support_threshold_bps",
            "quorum_bps",
            "pooled.min_contributors",
        ],
    );
}

#[test]
fn bounds_themselves_are_accepted() {
    let charter = Charter {
        support_threshold_bps: 9999,
        amendment_support_threshold_bps: 9999,
        quorum_bps: 1000,
        voting_seconds_min: 3600,
        voting_seconds_default: 3600,
        voting_seconds_max: 31_536_000,
        execution_delay_seconds: 31_536_000,
        ..Charter::default()
    };
    assert_eq!(charter.validate(), Ok(()));
}

#[test]
fn amendment_rules_use_the_amendment_threshold() {
    let charter = Charter::default();
    assert_eq!(charter.rules_for(false).support_threshold_bps, 5000);
    assert_eq!(charter.rules_for(true).support_threshold_bps, 6667);
}

#[test]
fn changes_list_the_fields_that_differ() {
    let before = Charter::default();
    let mut after = before.clone();
    assert!(before.changes(&after).is_empty());
    after.quorum_bps = 4000;
    after.pooled.min_age_days = 30;
    after.vote_weight = agora_coalition::VoteWeight::ByStake;
    assert_eq!(
        before.changes(&after),
        vec![
            "quorum_bps: 3000 -> 4000".to_owned(),
            "vote_weight: OnePerMember -> ByStake".to_owned(),
            "pooled.min_age_days: 90 -> 30".to_owned(),
        ]
    );
}

#[test]
fn a_stored_charter_missing_newer_fields_reads_with_defaults() {
    let charter: Charter =
        serde_json::from_str(r#"{"quorum_bps": 4000, "vote_weight": "by_pledge"}"#)
            .expect("a partial charter deserializes");
    assert_eq!(charter.quorum_bps, 4000);
    assert_eq!(charter.vote_weight, agora_coalition::VoteWeight::ByPledge);
    assert!(charter.votes_changeable);
    let round_trip: Charter =
        serde_json::from_str(&serde_json::to_string(&charter).expect("serializes"))
            .expect("reads back");
    assert_eq!(round_trip, charter);
}
