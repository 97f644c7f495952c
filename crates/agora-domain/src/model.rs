//! The records of the foundation: organisations, users, memberships, tokens, checkpoints.

use serde::{Deserialize, Serialize};

use crate::audit::Hash32;
use crate::{Email, OrgId, OrgName, PersonName, Role, Timestamp, TokenId, UserId};

/// Whether an organisation runs the instance or takes part in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrgKind {
    Operator,
    Partner,
}

/// Where an organisation stands in admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrgStatus {
    /// Admitted: its members can act.
    Active,
    /// Waiting for the operator's approval (when admission is by approval).
    Pending,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(text: &str) -> Result<Self, crate::Error> {
                match text {
                    $($text => Ok($name::$variant),)*
                    other => Err(crate::Error::invalid(stringify!($name), format!("unknown value `{other}`"))),
                }
            }
        }
    };
}
text_enum!(OrgKind { Operator => "operator", Partner => "partner" });
text_enum!(OrgStatus { Active => "active", Pending => "pending" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organisation {
    pub id: OrgId,
    pub name: OrgName,
    pub kind: OrgKind,
    pub status: OrgStatus,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub display_name: PersonName,
    pub created_at: Timestamp,
}

/// A user's place in an organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: UserId,
    pub email: Email,
    pub display_name: PersonName,
    pub role: Role,
    pub since: Timestamp,
}

/// An API token as anyone may see it: never the secret, only its visible prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: TokenId,
    /// The first characters of the token, so that a leaked token can be identified.
    pub prefix: String,
    pub name: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// A signed statement by the instance that its audit chain had `head_hash` at entry `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    pub seq: i64,
    pub head_hash: Hash32,
    pub at: Timestamp,
    /// Hex of the Ed25519 public key that signed it.
    pub key_id: String,
    /// Hex of the Ed25519 signature over `audit::checkpoint_message`.
    pub signature: String,
}
