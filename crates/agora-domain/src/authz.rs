//! The actions and resources that authorization decides on.
//!
//! Every use case names one `Action` on one `Resource` before it touches a store;
//! `agora-policy` turns these into Cedar requests.

use std::fmt;

use crate::{OrgId, TokenId, UserId};

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
}

impl Action {
    pub const ALL: [Action; 16] = [
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
}

impl Resource {
    /// The organisation this resource belongs to, if any.
    pub fn org_id(&self) -> Option<OrgId> {
        match self {
            Resource::Instance => None,
            Resource::Organisation(org_id) => Some(*org_id),
            Resource::Token { org_id, .. } => Some(*org_id),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Instance => "instance",
            Resource::Organisation(_) => "organisation",
            Resource::Token { .. } => "token",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Resource::Instance => "instance".to_owned(),
            Resource::Organisation(org_id) => org_id.to_string(),
            Resource::Token { id, .. } => id.to_string(),
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
