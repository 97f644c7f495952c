//! A small marketplace for the cases: a currency, instants, sellers, customers, listings and rules.

use agora_domain::ledger::Currency;
use agora_domain::{CommissionRuleId, ListingId, OrderId, OrderLineId, OrgId, Timestamp, UserId};
use agora_market::commission::{CommissionRule, CommissionTerms, RuleScope};
use agora_market::order::{LineInput, ListingFacts, PlaceOrder, RefundPolicy};
use uuid::Uuid;

pub fn euro() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

/// Monday 2026-01-05 00:00 UTC, plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_767_571_200_000_000).plus_seconds(seconds)
}

pub const DAY: i64 = 86_400;

pub fn org(n: u128) -> OrgId {
    OrgId::from_uuid(Uuid::from_u128(0x0A00 + n))
}

pub fn user(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x0B00 + n))
}

pub fn listing_id(n: u128) -> ListingId {
    ListingId::from_uuid(Uuid::from_u128(0x0C00 + n))
}

pub fn rule_id(n: u128) -> CommissionRuleId {
    CommissionRuleId::from_uuid(Uuid::from_u128(0x0D00 + n))
}

pub fn order_id(n: u128) -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(0x0E00 + n))
}

pub fn line_id(order: u128, line: u128) -> OrderLineId {
    OrderLineId::from_uuid(Uuid::from_u128(0x0F00_0000 + order * 1_000 + line))
}

pub fn terms(rate_bps: u32, fixed: i64, floor: i64, cap: Option<i64>) -> CommissionTerms {
    CommissionTerms {
        rate_bps,
        fixed,
        floor,
        cap,
    }
}

pub fn rule(n: u128, scope: RuleScope, terms: CommissionTerms) -> CommissionRule {
    CommissionRule {
        id: rule_id(n),
        scope,
        currency: Some(euro()),
        terms,
    }
}

pub fn listing(n: u128, seller: OrgId, category: &str, unit_price: i64) -> ListingFacts {
    ListingFacts {
        listing: listing_id(n),
        seller,
        title: format!("listing {n}"),
        category: category.to_owned(),
        currency: euro(),
        unit_price,
    }
}

/// A cart of `(listing, quantity, policy)` for `customer`.
pub fn cart(
    order: u128,
    customer: UserId,
    items: &[(ListingFacts, u32, RefundPolicy)],
) -> PlaceOrder {
    PlaceOrder {
        id: order_id(order),
        customer,
        lines: items
            .iter()
            .enumerate()
            .map(|(index, (listing, quantity, refund_policy))| LineInput {
                id: line_id(order, index as u128),
                listing: listing.clone(),
                quantity: *quantity,
                refund_policy: *refund_policy,
            })
            .collect(),
    }
}
