//! Typed identifiers: a UUIDv7 behind a short prefix that says what it names (`org_…`, `usr_…`).
//!
//! The prefix makes a pasted id self-describing and lets parsing refuse an id of the wrong kind.
//! Version 7 UUIDs sort by creation time, which keeps database indexes append-mostly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let field = $field;
                let rest = text
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or_else(|| crate::Error::invalid(field, format!("expected an id starting with `{}_`, got `{}`", $prefix, text.chars().take(64).collect::<String>())))?;
                if rest.len() != 32 {
                    return Err(crate::Error::invalid(field, format!("`{}` is not a well-formed id", text.chars().take(64).collect::<String>())));
                }
                Uuid::try_parse(rest)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(field, format!("`{}` is not a well-formed id", text.chars().take(64).collect::<String>())))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An organisation: the operator or a partner.
    OrgId, "org", "org_id"
);
prefixed_id!(
    /// A person: a customer, a member of organisations, or both.
    UserId, "usr", "user_id"
);
prefixed_id!(
    /// An API token (the id, not the secret).
    TokenId, "tok", "token_id"
);
prefixed_id!(
    /// A portal sign-in session (the id, not the cookie secret).
    SessionId, "ses", "session_id"
);
prefixed_id!(
    /// An event in the outbox.
    EventId, "evt", "event_id"
);
prefixed_id!(
    /// One HTTP request, as carried in `x-request-id` and every audit entry it caused.
    RequestId, "req", "request_id"
);

prefixed_id!(
    /// A marketplace listing: a product or a service a partner offers.
    ListingId, "lst", "listing_id"
);
prefixed_id!(
    /// A bookable slot of a service listing.
    SlotId, "slt", "slot_id"
);
prefixed_id!(
    /// A customer's order: one payment, lines from one or more sellers.
    OrderId, "ord", "order_id"
);
prefixed_id!(
    /// One line of an order.
    OrderLineId, "oln", "line_id"
);
prefixed_id!(
    /// A payment at a payment provider.
    PaymentId, "pay", "payment_id"
);
prefixed_id!(
    /// A refund of part of an order line.
    RefundId, "rfd", "refund_id"
);
prefixed_id!(
    /// A commission rule set by the operator.
    CommissionRuleId, "cmr", "rule_id"
);
prefixed_id!(
    /// A payout of a seller's available funds.
    PayoutId, "pyt", "payout_id"
);
prefixed_id!(
    /// A points accrual rule.
    PointsRuleId, "ptr", "points_rule_id"
);
prefixed_id!(
    /// A lot of points: an amount granted at once, with its expiry and funder.
    LotId, "lot", "lot_id"
);
prefixed_id!(
    /// A partner-to-partner settlement window.
    WindowId, "stw", "window_id"
);
prefixed_id!(
    /// One obligation between two partners within a settlement window.
    ObligationId, "obl", "obligation_id"
);
prefixed_id!(
    /// A dataset: a versioned table an organisation owns.
    DatasetId, "dst", "dataset_id"
);
prefixed_id!(
    /// A data-sharing protocol: its versions share this id.
    ProtocolId, "pcl", "protocol_id"
);
prefixed_id!(
    /// One governed query, answered or refused.
    QueryId, "qry", "query_id"
);
prefixed_id!(
    /// A coalition's goal or sub-goal.
    GoalId, "gol", "goal_id"
);
prefixed_id!(
    /// A member's pledge towards a coalition's goal.
    PledgeId, "plg", "pledge_id"
);
prefixed_id!(
    /// A coalition's proposal: typed actions that run if it passes.
    ProposalId, "prp", "proposal_id"
);
prefixed_id!(
    /// A partner's mini-app in the superapp portal; also its OpenID Connect client id.
    MiniAppId, "app", "app_id"
);
prefixed_id!(
    /// A customer's grant of scopes to a mini-app.
    GrantId, "grt", "grant_id"
);
prefixed_id!(
    /// A payment a mini-app asks a customer to confirm in the portal's cashier.
    PaymentRequestId, "pyr", "payment_request_id"
);
prefixed_id!(
    /// A notification in a customer's inbox.
    NotificationId, "ntf", "notification_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_refuse_other_kinds() {
        let org = OrgId::new();
        let text = org.to_string();
        assert!(text.starts_with("org_"));
        assert_eq!(text.parse::<OrgId>().unwrap(), org);
        let err = text.parse::<UserId>().unwrap_err();
        assert!(err.to_string().contains("usr_"), "{err}");
        assert!("org_nothex".parse::<OrgId>().is_err());
        assert!("org_".parse::<OrgId>().is_err());
    }
}
