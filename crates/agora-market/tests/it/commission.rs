//! Commission: the arithmetic's rounding, floor, cap and fixed part; validation; the most specific rule.

use agora_market::commission::{
    CommissionRule, CommissionTerms, FrozenCommission, LineFacts, RuleScope, commission, resolve,
};

use crate::fixtures::{euro, listing_id, org, rule, rule_id, terms};

fn check(terms: CommissionTerms, gross: i64, expect: i64) {
    assert_eq!(commission(&terms, gross), expect, "{terms:?} of {gross}");
}

#[test]
fn the_arithmetic_floors_then_adds_then_clamps() {
    // The fraction of a minor unit stays with the seller.
    check(terms(1_000, 0, 0, None), 999, 99);
    check(terms(1_250, 0, 0, None), 1, 0);
    check(terms(1_250, 0, 0, None), 8, 1);
    // The fixed part is added to the rate's share.
    check(terms(250, 30, 0, None), 1_000, 55);
    // A floor raises, a cap lowers.
    check(terms(100, 0, 50, None), 1_000, 50);
    check(terms(5_000, 0, 0, Some(100)), 1_000, 100);
    check(terms(100, 0, 50, Some(50)), 1_000_000, 50);
    // Never above the gross, whatever the fixed part or the floor.
    check(terms(0, 500, 0, None), 300, 300);
    check(terms(0, 0, 500, None), 300, 300);
    check(terms(10_000, 0, 0, None), 7, 7);
    // No overflow at the largest gross.
    check(terms(1, 0, 0, None), i64::MAX, i64::MAX / 10_000);
    check(terms(10_000, 0, 0, None), i64::MAX, i64::MAX);
    check(terms(1_000, 5, 0, None), 0, 0);
}

#[test]
fn invalid_rules_are_refused_naming_the_field() {
    let cases: Vec<(CommissionRule, &str)> = vec![
        (
            rule(1, RuleScope::Default, terms(10_001, 0, 0, None)),
            "rate_bps",
        ),
        (
            rule(1, RuleScope::Default, terms(100, -1, 0, None)),
            "fixed",
        ),
        (
            rule(1, RuleScope::Default, terms(100, 0, -1, None)),
            "floor",
        ),
        (
            rule(1, RuleScope::Default, terms(100, 0, 60, Some(50))),
            "cap",
        ),
        (
            CommissionRule {
                currency: None,
                ..rule(1, RuleScope::Default, terms(100, 5, 0, None))
            },
            "currency",
        ),
        (
            rule(
                1,
                RuleScope::Category {
                    category: " ".into(),
                },
                terms(100, 0, 0, None),
            ),
            "category",
        ),
    ];
    for (rule, field) in cases {
        match rule.validate() {
            Err(agora_domain::Error::Invalid { field: named, .. }) => {
                assert_eq!(named, field, "{rule:?}")
            }
            other => panic!("{rule:?} answered {other:?}, expected invalid {field}"),
        }
    }
    assert!(
        rule(1, RuleScope::Default, terms(10_000, 0, 50, Some(50)))
            .validate()
            .is_ok()
    );
}

#[test]
fn the_most_specific_rule_wins_and_the_newest_among_equals() {
    let (seller, other) = (org(1), org(2));
    let rules = vec![
        rule(1, RuleScope::Default, terms(1_000, 0, 0, None)),
        rule(
            2,
            RuleScope::Category {
                category: "books".into(),
            },
            terms(500, 0, 0, None),
        ),
        rule(3, RuleScope::Seller { seller }, terms(700, 0, 0, None)),
        rule(
            4,
            RuleScope::SellerCategory {
                seller,
                category: "books".into(),
            },
            terms(300, 0, 0, None),
        ),
        rule(
            5,
            RuleScope::Listing {
                listing: listing_id(9),
            },
            terms(100, 0, 0, None),
        ),
        // Newer than rule 2, same scope: wins for books of other sellers.
        rule(
            6,
            RuleScope::Category {
                category: "books".into(),
            },
            terms(400, 0, 0, None),
        ),
        // Invalid: skipped even though it is the most specific for listing 8.
        rule(
            7,
            RuleScope::Listing {
                listing: listing_id(8),
            },
            terms(20_000, 0, 0, None),
        ),
        // Another currency: skipped for euro lines.
        CommissionRule {
            currency: Some(agora_domain::ledger::Currency::parse("USD").unwrap()),
            ..rule(
                8,
                RuleScope::Seller { seller: other },
                terms(50, 0, 0, None),
            )
        },
    ];
    let line = |listing: u128, seller, category: &str| LineFacts {
        listing: listing_id(listing),
        seller,
        category: category.to_owned(),
        currency: euro(),
    };
    let cases = [
        (line(9, seller, "books"), 5),
        (line(1, seller, "books"), 4),
        (line(1, seller, "toys"), 3),
        (line(1, other, "books"), 6),
        (line(1, other, "toys"), 1),
        (line(8, other, "toys"), 1),
    ];
    for (facts, expect) in cases {
        let chosen = resolve(&rules, &facts).map(|rule| rule.id);
        assert_eq!(chosen, Some(rule_id(expect)), "{facts:?}");
    }
    assert_eq!(resolve(&[], &line(1, seller, "books")), None);
    let frozen = FrozenCommission::freeze(&rules, &line(1, seller, "books"), 10_000);
    assert_eq!(frozen.rule, Some(rule_id(4)));
    assert_eq!(frozen.amount, 300);
    let none = FrozenCommission::freeze(&[], &line(1, seller, "books"), 10_000);
    assert_eq!((none.rule, none.amount), (None, 0));
}

#[test]
fn a_pure_rate_without_currency_applies_to_any_currency() {
    let rules = vec![CommissionRule {
        currency: None,
        ..rule(1, RuleScope::Default, terms(200, 0, 0, None))
    }];
    let facts = LineFacts {
        listing: listing_id(1),
        seller: org(1),
        category: "x".into(),
        currency: agora_domain::ledger::Currency::parse("JPY").unwrap(),
    };
    assert_eq!(
        resolve(&rules, &facts).map(|rule| rule.id),
        Some(rule_id(1))
    );
}
