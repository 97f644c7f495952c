//! OpenAPI schemas for the types that serialize as strings (ids, names, times, hashes).

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

macro_rules! string_schema {
    ($($type:ty => $description:literal, $example:literal;)*) => {$(
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }
        impl ToSchema for $type {}
    )*};
}

string_schema! {
    crate::OrgId => "An organisation id", "org_0196f1d0a3c27d3e8f5a9b1c2d3e4f50";
    crate::UserId => "A user id", "usr_0196f1d0a3c27d3e8f5a9b1c2d3e4f51";
    crate::TokenId => "An API token id", "tok_0196f1d0a3c27d3e8f5a9b1c2d3e4f52";
    crate::EventId => "An event id", "evt_0196f1d0a3c27d3e8f5a9b1c2d3e4f53";
    crate::RequestId => "A request id", "req_0196f1d0a3c27d3e8f5a9b1c2d3e4f54";
    crate::OrgName => "An organisation name, 2 to 100 characters, unique regardless of case", "FreshMart";
    crate::PersonName => "A person's display name, 1 to 100 characters", "Ana Lima";
    crate::Email => "An e-mail address, kept in lower case", "ana@freshmart.example";
    crate::Timestamp => "An instant, RFC 3339 in UTC with microseconds", "2026-11-23T06:40:00.123456Z";
    crate::ledger::AccountId => "A ledger account id", "acc_0196f1d0a3c27d3e8f5a9b1c2d3e4f55";
    crate::ledger::TransferId => "A ledger transfer id, chosen by the client", "trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f56";
    crate::ledger::Currency => "An ISO 4217 currency code, or PTS for points", "EUR";
    crate::OrderId => "An order id", "ord_0196f1d0a3c27d3e8f5a9b1c2d3e4f57";
    crate::OrderLineId => "An order line id", "oln_0196f1d0a3c27d3e8f5a9b1c2d3e4f58";
    crate::PaymentId => "A payment id at a payment provider", "pay_0196f1d0a3c27d3e8f5a9b1c2d3e4f59";
    crate::RefundId => "A refund id", "rfd_0196f1d0a3c27d3e8f5a9b1c2d3e4f5a";
    crate::CommissionRuleId => "A commission rule id", "cmr_0196f1d0a3c27d3e8f5a9b1c2d3e4f5b";
    crate::PayoutId => "A payout id", "pyt_0196f1d0a3c27d3e8f5a9b1c2d3e4f5c";
    crate::PointsRuleId => "A points rule id", "ptr_0196f1d0a3c27d3e8f5a9b1c2d3e4f5d";
    crate::LotId => "A points lot id", "lot_0196f1d0a3c27d3e8f5a9b1c2d3e4f5e";
    crate::WindowId => "A settlement window id", "stw_0196f1d0a3c27d3e8f5a9b1c2d3e4f5f";
    crate::ObligationId => "A settlement obligation id", "obl_0196f1d0a3c27d3e8f5a9b1c2d3e4f60";
    crate::ListingId => "A listing id", "lst_0196f1d0a3c27d3e8f5a9b1c2d3e4f55";
    crate::SlotId => "A bookable slot id", "slt_0196f1d0a3c27d3e8f5a9b1c2d3e4f56";
    crate::DatasetId => "A dataset id", "dst_0196f1d0a3c27d3e8f5a9b1c2d3e4f61";
    crate::ProtocolId => "A data-sharing protocol id", "pcl_0196f1d0a3c27d3e8f5a9b1c2d3e4f62";
    crate::QueryId => "A governed query id", "qry_0196f1d0a3c27d3e8f5a9b1c2d3e4f63";
    crate::GoalId => "A coalition goal id", "gol_0196f1d0a3c27d3e8f5a9b1c2d3e4f64";
    crate::PledgeId => "A pledge id", "plg_0196f1d0a3c27d3e8f5a9b1c2d3e4f65";
    crate::ProposalId => "A coalition proposal id", "prp_0196f1d0a3c27d3e8f5a9b1c2d3e4f66";
    crate::MiniAppId => "A mini-app id, also its OpenID Connect client id", "app_0196f1d0a3c27d3e8f5a9b1c2d3e4f67";
    crate::GrantId => "A customer's grant to a mini-app", "grt_0196f1d0a3c27d3e8f5a9b1c2d3e4f68";
    crate::PaymentRequestId => "A payment request id", "pyr_0196f1d0a3c27d3e8f5a9b1c2d3e4f69";
    crate::NotificationId => "A notification id", "ntf_0196f1d0a3c27d3e8f5a9b1c2d3e4f6a";
    crate::dataset::DatasetName => "A dataset name: a-z, 0-9 and _, starting with a letter, at most 63 characters", "store_sales";
    crate::audit::Hash32 => "A SHA-256 value in lower-case hex", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
}
