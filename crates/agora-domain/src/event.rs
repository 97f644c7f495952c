//! Events: records of something that happened, written in the same transaction as the change.

use serde::{Deserialize, Serialize};

use crate::{EventId, OrgId, Timestamp};

/// An event as the outbox holds it; later delivered as webhooks and streams (CloudEvents shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: EventId,
    /// Position in the outbox; feeds page by it. Assigned in commit order.
    pub seq: i64,
    /// Dotted type, such as `org.created` or `token.revoked`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The id of the thing it is about.
    pub subject: String,
    /// The organisation whose feed carries it.
    pub org_id: Option<OrgId>,
    pub time: Timestamp,
    pub data: serde_json::Value,
}

/// An event before the outbox gives it an id and a place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub subject: String,
    pub org_id: Option<OrgId>,
    pub data: serde_json::Value,
}
