//! The sandbox provider: test cards, captures and refunds within what was captured, and seeded late, duplicate, reordered notifications.

use std::collections::BTreeMap;

use agora_domain::{Error, PaymentId, RefundId};
use agora_market::sandbox::{NotificationKind, NotificationSchedule, PaymentStatus, Sandbox};
use uuid::Uuid;

use crate::fixtures::{at, euro};

fn payment(n: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(0x8000 + n))
}

fn refund(n: u128) -> RefundId {
    RefundId::from_uuid(Uuid::from_u128(0x8100 + n))
}

#[test]
fn test_cards_authorize_or_decline_with_a_reason() {
    let mut sandbox = Sandbox::new(1);
    let cases = [
        ("tok_visa", None),
        ("tok_mastercard", None),
        ("tok_declined", Some("declined")),
        ("tok_insufficient_funds", Some("insufficient funds")),
    ];
    for (n, (token, refusal)) in cases.into_iter().enumerate() {
        let answer = sandbox.authorize(payment(n as u128), euro(), 1_000, token, at(0));
        match refusal {
            None => assert_eq!(answer.unwrap().status, PaymentStatus::Authorized),
            Some(hint) => assert!(
                matches!(&answer, Err(Error::Forbidden { rule, message }) if rule == "card_declined" && message.contains(hint)),
                "{token}: {answer:?}"
            ),
        }
    }
    assert!(matches!(
        sandbox.authorize(payment(9), euro(), 1_000, "4242424242424242", at(0)),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        sandbox.authorize(payment(0), euro(), 1_000, "tok_visa", at(0)),
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        sandbox.payment(payment(2)).unwrap().status,
        PaymentStatus::Declined
    );
    assert!(sandbox.capture(payment(2), at(0)).is_err());
}

#[test]
fn refunds_never_exceed_what_was_captured_and_repeat_safely() {
    let mut sandbox = Sandbox::new(2);
    sandbox
        .authorize(payment(1), euro(), 1_000, "tok_visa", at(0))
        .unwrap();
    assert!(matches!(
        sandbox.refund(payment(1), refund(1), 100, at(0)),
        Err(Error::Conflict(_))
    ));
    sandbox.capture(payment(1), at(0)).unwrap();
    assert_eq!(sandbox.capture(payment(1), at(1)).unwrap().captured, 1_000);
    sandbox.refund(payment(1), refund(1), 600, at(2)).unwrap();
    // The same refund again is the same refund.
    assert_eq!(
        sandbox
            .refund(payment(1), refund(1), 600, at(3))
            .unwrap()
            .refunded,
        600
    );
    assert!(matches!(
        sandbox.refund(payment(1), refund(2), 401, at(3)),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        sandbox
            .refund(payment(1), refund(2), 400, at(3))
            .unwrap()
            .refunded,
        1_000
    );
}

#[test]
fn notifications_arrive_late_sometimes_twice_and_out_of_order_by_seed() {
    let history = |seed| {
        let mut sandbox = Sandbox::with_schedule(NotificationSchedule::new(seed, 600, 500));
        for n in 0..20 {
            sandbox
                .authorize(payment(n), euro(), 100, "tok_visa", at(n as i64))
                .unwrap();
            sandbox.capture(payment(n), at(n as i64)).unwrap();
        }
        assert!(sandbox.deliver(at(-1)).is_empty());
        let mut delivered = Vec::new();
        for second in (0..=700).step_by(50) {
            delivered.extend(sandbox.deliver(at(second)));
        }
        assert_eq!(
            sandbox.schedule.queued(),
            0,
            "all delivered by the longest delay"
        );
        delivered
    };
    let delivered = history(42);
    assert_eq!(delivered, history(42), "the same seed, the same history");
    assert_ne!(delivered, history(43));
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for notification in &delivered {
        *copies.entry(&notification.event_id).or_default() += 1;
    }
    assert_eq!(copies.len(), 40, "each authorization and capture notified");
    assert!(copies.values().any(|count| *count == 2), "some twice");
    assert!(copies.values().all(|count| *count <= 2));
    // Out of order: some capture arrives before its payment's authorization, or events swap.
    let ids: Vec<&str> = delivered.iter().map(|n| n.event_id.as_str()).collect();
    assert!(ids.windows(2).any(|pair| pair[0] > pair[1]), "reordered");
    assert!(
        delivered
            .iter()
            .any(|n| n.kind == NotificationKind::PaymentCaptured)
    );
    let json = serde_json::to_string(&delivered[0]).unwrap();
    assert!(
        json.contains("\"payment.authorized\"") || json.contains("\"payment.captured\""),
        "{json}"
    );
}
