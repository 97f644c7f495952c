//! Roles a user holds in an organisation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in one organisation, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Holds the organisation: everything an admin can do, plus managing owners.
    Owner,
    /// Manages members, tokens and the organisation's settings.
    Admin,
    /// Reads data and audit entries, runs queries.
    Analyst,
    /// Builds integrations: creates tokens for itself, reads events.
    Developer,
    /// Belongs to the organisation and sees its home page.
    Member,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Analyst,
        Role::Developer,
        Role::Member,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Developer => "developer",
            Role::Member => "member",
        }
    }

    /// Whether this role holds every power of `other`: owner covers all, admin covers all but
    /// owner, analyst and developer cover member and themselves, and neither covers the other.
    pub fn covers(self, other: Role) -> bool {
        self == other || self.rank() > other.rank()
    }

    /// The most powerful role that both roles cover: what a token may do when its own role and
    /// its owner's current role differ.
    pub fn meet(self, other: Role) -> Role {
        if self.covers(other) {
            other
        } else if other.covers(self) {
            self
        } else {
            Role::Member
        }
    }

    /// Rank for "may not grant more than you hold": higher is more powerful.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 4,
            Role::Admin => 3,
            Role::Analyst | Role::Developer => 2,
            Role::Member => 1,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == text).ok_or_else(|| {
            crate::Error::invalid("role", format!("`{text}` is not a role; expected one of owner, admin, analyst, developer, member"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysts_and_developers_do_not_cover_each_other() {
        assert!(Role::Owner.covers(Role::Admin) && Role::Admin.covers(Role::Developer));
        assert!(!Role::Analyst.covers(Role::Developer) && !Role::Developer.covers(Role::Analyst));
        assert_eq!(Role::Analyst.meet(Role::Developer), Role::Member);
        assert_eq!(Role::Owner.meet(Role::Analyst), Role::Analyst);
        assert_eq!(Role::Member.meet(Role::Admin), Role::Member);
        for role in Role::ALL {
            assert_eq!(role.meet(role), role);
        }
    }
}
