//! Error categories that callers can act on; every crate maps its failures into these.

/// Result with Agora's error by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in categories a caller can act on.
///
/// The edge maps each category to one HTTP status; the CLI to one exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is malformed or breaks a rule of its type; `field` names the culprit.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// No credential, or one that is unknown, revoked or expired.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// Authorization refused the action; `rule` names what refused it.
    #[error("forbidden by {rule}: {message}")]
    Forbidden { rule: String, message: String },
    /// The thing does not exist, or the caller may not know that it exists.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request clashes with the current state (a duplicate name, a used key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A same-key request came with a different body, or the request is well-formed but cannot be processed.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// A named limit was exceeded; retry later or ask for less.
    #[error("limit {limit} exceeded: {message}")]
    LimitExceeded { limit: String, message: String },
    /// A governed query broke a protocol rule: `rule` names it, `expression` is the part of the
    /// query at fault, `message` says how to fix it.
    #[error("refused by rule {rule} at `{expression}`: {message}")]
    Refused {
        rule: String,
        expression: String,
        message: String,
    },
    /// A dependency (the database) is not answering; retrying may help.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details go to the log, not to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn forbidden(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Forbidden {
            rule: rule.into(),
            message: message.into(),
        }
    }

    pub fn limit(limit: impl Into<String>, message: impl Into<String>) -> Self {
        Self::LimitExceeded {
            limit: limit.into(),
            message: message.into(),
        }
    }

    /// A short machine-readable name of the category, used in problem types and audit outcomes.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound { .. } => "not-found",
            Error::Conflict(_) => "conflict",
            Error::Unprocessable(_) => "unprocessable",
            Error::LimitExceeded { .. } => "limit-exceeded",
            Error::Refused { .. } => "refused",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}
