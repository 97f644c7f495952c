//! Protocol documents: validation errors, the content hash, and the lifecycle.

use agora_query::{
    ColumnClass, ColumnRule, DatasetSchema, Error, Protocol, ProtocolState, ProtocolVersion,
};

use crate::{brand, grocer, now, other_brand, sales_protocol};

fn sales_schema() -> Vec<DatasetSchema> {
    vec![DatasetSchema {
        name: "sales".into(),
        columns: crate::sales_schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect(),
    }]
}

/// The fields of every validation error, in order.
fn problems(protocol: &Protocol) -> Vec<String> {
    match protocol.validate(&sales_schema()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|error| match error {
                Error::Invalid { field, .. } => field,
                other => panic!("validation returns Invalid only: {other}"),
            })
            .collect(),
    }
}

#[test]
fn validation_names_each_problem() {
    type Edit = fn(&mut Protocol);
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        ("the fixture is valid", |_| {}, vec![]),
        (
            "unknown column",
            |p| {
                p.datasets[0].columns.push(ColumnRule {
                    name: "shoe_size".into(),
                    class: ColumnClass::Dimension,
                    allowed: true,
                })
            },
            vec!["datasets.sales.columns.shoe_size"],
        ),
        (
            "a metric also marked join_key",
            |p| {
                p.datasets[0].columns.push(ColumnRule {
                    name: "revenue".into(),
                    class: ColumnClass::JoinKey,
                    allowed: true,
                })
            },
            vec!["datasets.sales.columns.revenue"],
        ),
        (
            "threshold below 2",
            |p| p.output.min_entities_per_row = Some(1),
            vec!["output.min_entities_per_row"],
        ),
        (
            "contributors below 2",
            |p| p.output.min_contributors_per_statistic = Some(0),
            vec!["output.min_contributors_per_statistic"],
        ),
        (
            "share over 100",
            |p| p.output.contributor_share_percent_max = Some(140),
            vec!["output.contributor_share_percent_max"],
        ),
        (
            "unknown dataset",
            |p| p.datasets[0].name = "salez".into(),
            vec!["datasets.salez"],
        ),
        (
            "column without class",
            |p| {
                p.datasets[0].columns.retain(|c| c.name != "cost");
            },
            vec!["datasets.sales.columns.cost"],
        ),
        (
            "non join_key joinable",
            |p| p.joins.joinable_columns = vec!["store".into()],
            vec!["joins.joinable_columns.store"],
        ),
        (
            "blank remainder label",
            |p| p.output.suppressed_remainder = Some(" ".into()),
            vec!["output.suppressed_remainder"],
        ),
        ("no consumers", |p| p.consumers.clear(), vec!["consumers"]),
        (
            "provider consumes itself",
            |p| p.consumers.push(p.provider),
            vec!["consumers"],
        ),
        (
            "purpose with SQL in it",
            |p| p.purposes.push("x'; drop".into()),
            vec!["purposes"],
        ),
        (
            "window backwards",
            |p| std::mem::swap(&mut p.validity.not_before, &mut p.validity.not_after),
            vec!["validity"],
        ),
        (
            "age without timestamp",
            |p| {
                p.datasets[0].columns.iter_mut().for_each(|c| {
                    if c.class == ColumnClass::Timestamp {
                        c.class = ColumnClass::Dimension
                    }
                });
            },
            vec!["output.min_data_age_days"],
        ),
        (
            "two entity columns",
            |p| {
                p.datasets[0].columns.iter_mut().for_each(|c| {
                    if c.name == "loyalty_card" {
                        c.class = ColumnClass::EntityId
                    }
                });
                p.joins.joinable_columns.clear();
            },
            vec!["datasets.sales"],
        ),
    ];
    for (name, edit, expected) in cases {
        let mut protocol = sales_protocol();
        edit(&mut protocol);
        assert_eq!(problems(&protocol), expected, "{name}");
    }
}

#[test]
fn documents_parse_from_toml_and_json_and_refuse_unknown_keys() {
    let protocol = sales_protocol();
    let json = serde_json::to_string_pretty(&protocol).expect("serializes");
    assert_eq!(Protocol::from_json(&json).expect("round trip"), protocol);
    let with_typo = crate::sales_protocol_toml().replace("min_data_age_days", "min_data_age_dayz");
    assert!(matches!(
        Protocol::from_toml(&with_typo),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn the_content_hash_is_canonical_and_changes_with_any_rule() {
    let protocol = sales_protocol();
    let reparsed = Protocol::from_json(&serde_json::to_string_pretty(&protocol).expect("json"))
        .expect("parses");
    assert_eq!(protocol.content_hash(), reparsed.content_hash());
    assert_eq!(protocol.content_hash().as_str().len(), 64);
    let mut stricter = protocol.clone();
    stricter.output.min_entities_per_row = Some(100);
    assert_ne!(protocol.content_hash(), stricter.content_hash());
}

#[test]
fn lifecycle_activates_only_when_every_party_approved_this_exact_hash() {
    let mut version = ProtocolVersion::draft(sales_protocol());
    let hash = version.hash.clone();
    let at = now();
    // Approving a draft, or as a stranger, is refused.
    assert!(matches!(
        version.approve(grocer(), &hash, at),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        version.propose(other_brand()),
        Err(Error::Forbidden(_))
    ));
    version.propose(grocer()).expect("a party proposes");
    // An approval for another hash does not count.
    let other_hash = ProtocolVersion::draft({
        let mut p = sales_protocol();
        p.purposes.push("pricing".into());
        p
    })
    .hash;
    assert!(matches!(
        version.approve(brand(), &other_hash, at),
        Err(Error::Conflict(_))
    ));
    let step = version
        .approve(grocer(), &hash, at)
        .expect("provider approves");
    assert_eq!(step.to, ProtocolState::Proposed);
    assert!(!version.is_active_at(at));
    let step = version
        .approve(brand(), &hash, at)
        .expect("consumer approves");
    assert_eq!(
        (step.from, step.to),
        (ProtocolState::Proposed, ProtocolState::Active)
    );
    assert!(version.is_active_at(at));

    // Any party pauses; it resumes when everyone who paused resumed.
    version.pause(brand()).expect("consumer pauses");
    version.pause(grocer()).expect("provider pauses too");
    assert!(!version.is_active_at(at));
    assert!(matches!(
        version.resume(other_brand()),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        version.resume(brand()).expect("resumes").to,
        ProtocolState::Paused
    );
    assert_eq!(
        version.resume(grocer()).expect("resumes").to,
        ProtocolState::Active
    );

    // A change is a new version that needs every approval again.
    let mut changed = sales_protocol();
    changed.output.min_entities_per_row = Some(80);
    let mut next = version.revise(changed).expect("a new version");
    assert_eq!(next.document.version, 2);
    assert_eq!(next.state, ProtocolState::Draft);
    assert!(next.approvals.is_empty());
    next.propose(brand()).expect("proposed");
    assert!(
        matches!(next.approve(brand(), &hash, at), Err(Error::Conflict(_))),
        "the old hash does not approve the new version"
    );

    // Only the provider revokes; a revoked protocol is final.
    assert!(matches!(version.revoke(brand()), Err(Error::Forbidden(_))));
    version.revoke(grocer()).expect("provider revokes");
    assert!(!version.is_active_at(at));
    assert!(matches!(version.pause(brand()), Err(Error::Conflict(_))));
    assert!(matches!(
        version.revise(sales_protocol()),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn protocols_expire_at_the_end_of_their_window() {
    let mut version = ProtocolVersion::draft(sales_protocol());
    let hash = version.hash.clone();
    version.propose(grocer()).expect("proposed");
    version.approve(grocer(), &hash, now()).expect("approved");
    version.approve(brand(), &hash, now()).expect("approved");
    assert!(version.expire(now()).is_none());
    let end = version.document.validity.not_after;
    assert!(!version.is_active_at(end));
    let step = version.expire(end).expect("expires");
    assert_eq!(step.to, ProtocolState::Expired);
    assert!(
        version.expire(end.plus_seconds(1)).is_none(),
        "expiring twice does nothing"
    );
}
