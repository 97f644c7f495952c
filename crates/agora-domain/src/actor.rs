//! Who is acting: the authenticated principal that every use case receives.

use serde::Serialize;

use crate::{OrgId, ProposalId, Role, SessionId, TokenId, UserId};

/// How the actor proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Credential {
    /// An API token, scoped to one organisation and role.
    Token(TokenId),
    /// A portal session cookie.
    Session(SessionId),
    /// The instance itself: start-up bootstrap and offline admin commands on the data directory.
    System,
    /// A coalition acting through a proposal its members passed (its actions: approving a
    /// protocol as a party, publishing pooled statistics).
    Proposal(ProposalId),
}

impl Credential {
    pub fn describe(&self) -> String {
        match self {
            Credential::Token(id) => format!("token:{id}"),
            Credential::Session(id) => format!("session:{id}"),
            Credential::System => "system".to_owned(),
            Credential::Proposal(id) => format!("proposal:{id}"),
        }
    }
}

/// The organisation an actor acts for, and in which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Acting {
    pub org_id: OrgId,
    pub role: Role,
    /// Whether `org_id` is the operator organisation that runs the instance.
    pub is_operator: bool,
}

/// An authenticated principal.
///
/// Invariant: a token actor always has `acting` (tokens are scoped to one organisation);
/// a customer has `user_id` and no `acting`; the system actor has neither.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub acting: Option<Acting>,
    pub credential: Credential,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            user_id: None,
            acting: None,
            credential: Credential::System,
        }
    }

    pub fn org_id(&self) -> Option<OrgId> {
        self.acting.map(|acting| acting.org_id)
    }

    pub fn is_system(&self) -> bool {
        self.credential == Credential::System
    }
}
