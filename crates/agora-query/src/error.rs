//! The errors of governed querying, in categories a caller can act on.

use std::fmt;

use serde::Serialize;

/// A policy refusal: which rule refused, the offending expression, and how to fix the query.
///
/// A refusal is a value the engine returns, never a panic; the edge renders it as a 4xx
/// problem document naming `rule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// A stable rule name, for example `aggregate_function` or `join_operator`.
    pub rule: &'static str,
    /// The offending expression or plan node, as DataFusion displays it.
    pub expression: String,
    /// A sentence for the analyst: what is wrong and how to fix it.
    pub message: String,
}

impl Refusal {
    pub fn new(
        rule: &'static str,
        expression: impl fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        let expression = expression.to_string();
        // Keep refusals short: an expression can be as long as the SQL.
        let expression = if expression.chars().count() > 300 {
            let mut short: String = expression.chars().take(300).collect();
            short.push('…');
            short
        } else {
            expression
        };
        Self {
            rule,
            expression,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by rule `{}` at `{}`: {}",
            self.rule, self.expression, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document or request is malformed; `field` says where.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// The query breaks a protocol rule.
    #[error("{0}")]
    Refused(Refusal),
    /// The caller may not take this step (a lifecycle transition by a non-party, say).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The step does not apply in the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A named limit was reached (`query_timeout_ms`, `result_rows_max`, …).
    #[error("limit {limit} exceeded: {message}")]
    LimitExceeded {
        limit: &'static str,
        message: String,
    },
    /// Execution failed. Deliberately says nothing more to the consumer: an error message
    /// about shared data (a failed cast, a division by zero) is a side channel.
    /// `detail` is for the server's log only and is not part of `Display`.
    #[error("the query failed while running")]
    QueryFailed { detail: String },
    /// A bug or an unexpected engine state.
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

    /// The refusal, if this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
