//! The actions and resources that authorization decides on.
//!
//! Every use case names one `Action` on one `Resource` before it touches a store;
//! `agora-policy` turns these into Cedar requests.

use std::fmt;

use crate::{OrderId, OrgId, ProtocolId, TokenId, UserId};

/// Something an actor may try to do. The string form is the Cedar action id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OrgCreate,
    OrgList,
    OrgRead,
    OrgUpdate,
    OrgApprove,
    MemberList,
    MemberAdd,
    MemberRemove,
    TokenCreate,
    TokenList,
    TokenRevoke,
    AuditRead,
    AuditReadAll,
    AuditChainRead,
    AuditCheckpoint,
    EventRead,
    // The marketplace and the ledger.
    ListingRead,
    ListingManage,
    OrderPlace,
    OrderRead,
    OrderFulfil,
    OrderRefund,
    WalletRead,
    WalletTopUp,
    PointsRead,
    PointsRedeem,
    PointsGrant,
    SellerRead,
    PayoutRequest,
    SettlementRecord,
    SettlementRead,
    MarketOperate,
    MarketReadAll,
    LedgerRead,
    LedgerWrite,
    // The data commons.
    DatasetManage,
    DatasetRead,
    ProtocolCreate,
    ProtocolRead,
    ProtocolManage,
    ProtocolDecide,
    QueryRun,
    QueryRead,
    // Coalitions.
    CoalitionCreate,
    CoalitionRead,
    CoalitionParticipate,
    CoalitionContribute,
    CoalitionSteward,
    CoalitionExecute,
    // The superapp.
    MiniAppBrowse,
    MiniAppManage,
    MiniAppReview,
    MiniAppUse,
}

impl Action {
    pub const ALL: [Action; 53] = [
        Action::OrgCreate,
        Action::OrgList,
        Action::OrgRead,
        Action::OrgUpdate,
        Action::OrgApprove,
        Action::MemberList,
        Action::MemberAdd,
        Action::MemberRemove,
        Action::TokenCreate,
        Action::TokenList,
        Action::TokenRevoke,
        Action::AuditRead,
        Action::AuditReadAll,
        Action::AuditChainRead,
        Action::AuditCheckpoint,
        Action::EventRead,
        Action::ListingRead,
        Action::ListingManage,
        Action::OrderPlace,
        Action::OrderRead,
        Action::OrderFulfil,
        Action::OrderRefund,
        Action::WalletRead,
        Action::WalletTopUp,
        Action::PointsRead,
        Action::PointsRedeem,
        Action::PointsGrant,
        Action::SellerRead,
        Action::PayoutRequest,
        Action::SettlementRecord,
        Action::SettlementRead,
        Action::MarketOperate,
        Action::MarketReadAll,
        Action::LedgerRead,
        Action::LedgerWrite,
        Action::DatasetManage,
        Action::DatasetRead,
        Action::ProtocolCreate,
        Action::ProtocolRead,
        Action::ProtocolManage,
        Action::ProtocolDecide,
        Action::QueryRun,
        Action::QueryRead,
        Action::CoalitionCreate,
        Action::CoalitionRead,
        Action::CoalitionParticipate,
        Action::CoalitionContribute,
        Action::CoalitionSteward,
        Action::CoalitionExecute,
        Action::MiniAppBrowse,
        Action::MiniAppManage,
        Action::MiniAppReview,
        Action::MiniAppUse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::OrgCreate => "org.create",
            Action::OrgList => "org.list",
            Action::OrgRead => "org.read",
            Action::OrgUpdate => "org.update",
            Action::OrgApprove => "org.approve",
            Action::MemberList => "member.list",
            Action::MemberAdd => "member.add",
            Action::MemberRemove => "member.remove",
            Action::TokenCreate => "token.create",
            Action::TokenList => "token.list",
            Action::TokenRevoke => "token.revoke",
            Action::AuditRead => "audit.read",
            Action::AuditReadAll => "audit.read_all",
            Action::AuditChainRead => "audit.chain_read",
            Action::AuditCheckpoint => "audit.checkpoint",
            Action::EventRead => "event.read",
            Action::ListingRead => "listing.read",
            Action::ListingManage => "listing.manage",
            Action::OrderPlace => "order.place",
            Action::OrderRead => "order.read",
            Action::OrderFulfil => "order.fulfil",
            Action::OrderRefund => "order.refund",
            Action::WalletRead => "wallet.read",
            Action::WalletTopUp => "wallet.top_up",
            Action::PointsRead => "points.read",
            Action::PointsRedeem => "points.redeem",
            Action::PointsGrant => "points.grant",
            Action::SellerRead => "seller.read",
            Action::PayoutRequest => "payout.request",
            Action::SettlementRecord => "settlement.record",
            Action::SettlementRead => "settlement.read",
            Action::MarketOperate => "market.operate",
            Action::MarketReadAll => "market.read_all",
            Action::LedgerRead => "ledger.read",
            Action::LedgerWrite => "ledger.write",
            Action::DatasetManage => "dataset.manage",
            Action::DatasetRead => "dataset.read",
            Action::ProtocolCreate => "protocol.create",
            Action::ProtocolRead => "protocol.read",
            Action::ProtocolManage => "protocol.manage",
            Action::ProtocolDecide => "protocol.decide",
            Action::QueryRun => "query.run",
            Action::QueryRead => "query.read",
            Action::CoalitionCreate => "coalition.create",
            Action::CoalitionRead => "coalition.read",
            Action::CoalitionParticipate => "coalition.participate",
            Action::CoalitionContribute => "coalition.contribute",
            Action::CoalitionSteward => "coalition.steward",
            Action::CoalitionExecute => "coalition.execute",
            Action::MiniAppBrowse => "miniapp.browse",
            Action::MiniAppManage => "miniapp.manage",
            Action::MiniAppReview => "miniapp.review",
            Action::MiniAppUse => "miniapp.use",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action is done to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The whole instance: creating organisations, the chain of audit digests.
    Instance,
    /// One organisation and everything it owns that has no finer resource (members, audit, events).
    Organisation(OrgId),
    /// One API token.
    Token {
        id: TokenId,
        org_id: OrgId,
        owner: UserId,
    },
    /// A person as a customer: their orders to place, their wallet and their points.
    Customer(UserId),
    /// One order: its customer and the organisations that sell on it.
    Order {
        id: OrderId,
        customer: UserId,
        sellers: Vec<OrgId>,
    },
    /// One data-sharing protocol: the organisation that provides the data and every party
    /// (the provider and the consumers).
    Protocol {
        id: ProtocolId,
        provider: OrgId,
        parties: Vec<OrgId>,
    },
    /// One coalition (an organisation of organisations): its member organisations, and those
    /// of them that are stewards.
    Coalition {
        id: OrgId,
        members: Vec<OrgId>,
        stewards: Vec<OrgId>,
    },
}

impl Resource {
    /// The organisation this resource belongs to, if any.
    pub fn org_id(&self) -> Option<OrgId> {
        match self {
            Resource::Instance => None,
            Resource::Organisation(org_id) => Some(*org_id),
            Resource::Token { org_id, .. } => Some(*org_id),
            Resource::Customer(_) => None,
            // An order with one seller belongs to it; one with several belongs to no single organisation.
            Resource::Order { sellers, .. } => match sellers.as_slice() {
                [seller] => Some(*seller),
                _ => None,
            },
            Resource::Protocol { provider, .. } => Some(*provider),
            Resource::Coalition { id, .. } => Some(*id),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Instance => "instance",
            Resource::Organisation(_) => "organisation",
            Resource::Token { .. } => "token",
            Resource::Customer(_) => "customer",
            Resource::Order { .. } => "order",
            Resource::Protocol { .. } => "protocol",
            Resource::Coalition { .. } => "coalition",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Resource::Instance => "instance".to_owned(),
            Resource::Organisation(org_id) => org_id.to_string(),
            Resource::Token { id, .. } => id.to_string(),
            Resource::Customer(user_id) => user_id.to_string(),
            Resource::Order { id, .. } => id.to_string(),
            Resource::Protocol { id, .. } => id.to_string(),
            Resource::Coalition { id, .. } => id.to_string(),
        }
    }
}

/// Facts about the request that a policy may look at besides principal and resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Context {
    /// The role a member or token would receive (`member.add`, `token.create`).
    pub granted_role: Option<crate::Role>,
    /// The current role of the member being changed or removed.
    pub target_role: Option<crate::Role>,
}
