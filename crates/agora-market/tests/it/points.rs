//! Points: accrual, redemption soonest-expiring first with per-lot allocations, expiry into breakage, and the liability.

use agora_domain::{Error, LotId, PaymentId, PointsRuleId, UserId};
use agora_market::accounts::AccountPurpose;
use agora_market::points::{self, Earning, Funder, Lot, PointsRule};
use agora_market::settlement::obligations_for_redemption;
use agora_market::{account_id, points_currency};
use uuid::Uuid;

use crate::books::{Books, Submitted};
use crate::fixtures::{DAY, at, org, user};

fn rule(n: u128, funder: Funder, expiry_days: u32) -> PointsRule {
    PointsRule {
        id: PointsRuleId::from_uuid(Uuid::from_u128(0x3000 + n)),
        earning: Earning::PerAction {
            action: "review_written".into(),
            points: 10,
        },
        funder,
        expiry_days,
    }
}

fn lot_id(n: u128) -> LotId {
    LotId::from_uuid(Uuid::from_u128(0x4000 + n))
}

fn customer_points(books: &Books, customer: UserId) -> i64 {
    books.balance(account_id(
        &AccountPurpose::CustomerPoints { customer },
        points_currency(),
    ))
}

fn replace(lots: &mut [Lot], changed: Vec<Lot>) {
    for lot in changed {
        let slot = lots.iter_mut().find(|known| known.id == lot.id).unwrap();
        *slot = lot;
    }
}

#[test]
fn points_earned_per_amount_drop_fractions_and_per_action_match_the_action() {
    let spent = PointsRule {
        earning: Earning::PerAmountSpent {
            points_per_major_unit: 2,
        },
        ..rule(1, Funder::Operator, 30)
    };
    assert_eq!(spent.points_for(1_999, 2, None), 39);
    assert_eq!(spent.points_for(1_999, 0, None), 3_998);
    assert_eq!(spent.points_for(1_999, 2, Some("review_written")), 0);
    let action = rule(2, Funder::Operator, 30);
    assert_eq!(action.points_for(0, 2, Some("review_written")), 10);
    assert_eq!(action.points_for(0, 2, Some("idea_shipped")), 0);
    for (bad, field) in [
        (rule(3, Funder::Operator, 0), "expiry_days"),
        (rule(3, Funder::Operator, 3_651), "expiry_days"),
        (
            PointsRule {
                earning: Earning::PerAction {
                    action: "x".into(),
                    points: 0,
                },
                ..rule(3, Funder::Operator, 1)
            },
            "points",
        ),
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::Invalid { field: named, .. }) if named == field),
            "{bad:?}"
        );
    }
}

#[test]
fn redemption_spends_the_soonest_expiring_lots_first_and_expiry_breaks_the_rest() {
    let mut books = Books::default();
    let customer = user(1);
    let (funder, shop) = (org(1), org(2));
    let mut lots = Vec::new();
    for (n, funder, days, points) in [
        (1, Funder::Operator, 10, 100),
        (2, Funder::Partner(funder), 5, 50),
        (3, Funder::Partner(shop), 20, 30),
    ] {
        let (lot, plan) =
            points::accrue(&rule(n, funder, days), lot_id(n), customer, points, at(0)).unwrap();
        assert_eq!(books.submit(&plan, at(0)), Submitted::Created);
        lots.push(lot);
    }
    assert_eq!(points::liability(&lots), 180);
    assert_eq!(customer_points(&books, customer), 180);

    let (changed, redemption, plan) = points::redeem(
        &lots,
        customer,
        120,
        shop,
        PaymentId::from_uuid(Uuid::from_u128(1)),
        at(DAY),
    )
    .unwrap();
    let spent: Vec<(LotId, i64)> = redemption
        .allocations
        .iter()
        .map(|allocation| (allocation.lot, allocation.points))
        .collect();
    assert_eq!(spent, [(lot_id(2), 50), (lot_id(1), 70)]);
    assert_eq!(books.submit(&plan, at(DAY)), Submitted::Created);
    replace(&mut lots, changed);
    assert_eq!(points::liability(&lots), 60);
    assert_eq!(customer_points(&books, customer), 60);
    // The partner funder owes the shop for its 50 points, the operator for its 70.
    let operator = org(0);
    let owed = obligations_for_redemption(&redemption, operator, 2).unwrap();
    let mut expect = vec![(funder, 100), (operator, 140)];
    expect.sort();
    assert_eq!(owed, expect);

    // Lot 1 expired at day 10: its 30 points are not spendable, though still owed until expired.
    let refused = points::redeem(
        &lots,
        customer,
        31,
        shop,
        PaymentId::from_uuid(Uuid::from_u128(2)),
        at(10 * DAY),
    );
    assert!(
        matches!(&refused, Err(Error::Conflict(message)) if message.contains("30 spendable")),
        "{refused:?}"
    );
    let (changed, plan) = points::expire(&lots, at(10 * DAY)).unwrap();
    assert_eq!(changed.len(), 2, "lots 1 and 2 are due; lot 2 is empty");
    assert_eq!(plan.transfers.len(), 1);
    assert_eq!(books.submit(&plan, at(10 * DAY)), Submitted::Created);
    replace(&mut lots, changed);
    assert_eq!(points::liability(&lots), 30);
    assert_eq!(customer_points(&books, customer), 30);
    assert_eq!(
        books.balance(account_id(
            &AccountPurpose::PointsBreakage,
            points_currency()
        )),
        30
    );
    // Nothing more is due; expiring again moves nothing.
    let (changed, plan) = points::expire(&lots, at(10 * DAY)).unwrap();
    assert!(changed.is_empty() && plan.is_empty());
    books.check().unwrap();
}
