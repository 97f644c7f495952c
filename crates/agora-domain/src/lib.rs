//! Agora's vocabulary: the types every other crate speaks, with their invariants, and no I/O.
//!
//! Everything here is pure: parsing and validating names, ids and roles, the actions and
//! resources that authorization decides on, the error categories callers act on, and the
//! hashing that makes the audit log tamper-evident.

pub mod actor;
pub mod audit;
pub mod authz;
pub mod dataset;
pub mod error;
pub mod event;
pub mod id;
pub mod ledger;
pub mod listing;
pub mod miniapp;
pub mod model;
pub mod name;
#[cfg(feature = "openapi")]
mod openapi;
pub mod role;
pub mod timestamp;

pub use actor::{Actor, Credential};
pub use error::{Error, Result};
pub use id::{
    CommissionRuleId, DatasetId, EventId, GoalId, GrantId, ListingId, LotId, MiniAppId,
    NotificationId, ObligationId, OrderId, OrderLineId, OrgId, PaymentId, PaymentRequestId,
    PayoutId, PledgeId, PointsRuleId, ProposalId, ProtocolId, QueryId, RefundId, RequestId,
    SessionId, SlotId, TokenId, UserId, WindowId,
};
pub use name::{Email, OrgName, Password, PersonName};
pub use role::Role;
pub use timestamp::Timestamp;
