//! Payouts: when a schedule is due, the minimum, and the plan from available funds.

use agora_domain::{Error, PayoutId};
use agora_market::payout::{
    self, PayoutRequest, PayoutSchedule, SellerSettings, Weekday, payout_due,
};
use uuid::Uuid;

use crate::fixtures::{DAY, at, euro, org};

#[test]
fn scheduled_payouts_are_due_once_per_day_above_the_minimum() {
    let settings = |schedule| SellerSettings {
        schedule,
        minimum: 1_000,
        ..SellerSettings::default()
    };
    let monday = at(0);
    let tuesday = at(DAY);
    let daily = settings(PayoutSchedule::Daily);
    let weekly = settings(PayoutSchedule::Weekly {
        weekday: Weekday::Monday,
    });
    let manual = settings(PayoutSchedule::Manual);
    let cases = [
        (&daily, None, monday, 5_000, Some(5_000)),
        (&daily, None, monday, 999, None),
        (
            &daily,
            Some(monday),
            monday.plus_seconds(3_600),
            5_000,
            None,
        ),
        (&daily, Some(monday), tuesday, 5_000, Some(5_000)),
        (&weekly, None, monday, 5_000, Some(5_000)),
        (&weekly, None, tuesday, 5_000, None),
        (&weekly, Some(at(-7 * DAY)), monday, 1_000, Some(1_000)),
        (&manual, None, monday, 5_000, None),
    ];
    for (settings, last, now, available, expect) in cases {
        assert_eq!(
            payout_due(settings, last, now, available),
            expect,
            "{:?} last {last:?} now {now} available {available}",
            settings.schedule
        );
    }
}

#[test]
fn a_payout_is_at_least_the_minimum_and_at_most_what_is_available() {
    let settings = SellerSettings::default();
    let request = |amount| PayoutRequest {
        id: PayoutId::from_uuid(Uuid::from_u128(1)),
        seller: org(1),
        currency: euro(),
        amount,
        provider: "sandbox".into(),
        reference: "AGORA-PAYOUT-1".into(),
    };
    for amount in [0, 500, 5_001] {
        assert!(
            matches!(
                payout::payout(request(amount), &settings, 5_000, at(0)),
                Err(Error::Invalid { .. })
            ),
            "{amount}"
        );
    }
    // Below the minimum only when it empties the balance.
    assert!(payout::payout(request(800), &settings, 800, at(0)).is_ok());
    let (record, plan) = payout::payout(request(5_000), &settings, 5_000, at(0)).unwrap();
    assert_eq!(record.reference, "AGORA-PAYOUT-1");
    assert_eq!(plan.transfers.len(), 1);
    assert_eq!(plan.transfers[0].amount, 5_000);
    assert!(SellerSettings::default().validate().is_ok());
}
