//! One error type for the edge: domain errors and request rejections as RFC 9457 problem documents.

use agora_domain::{Error, RequestId};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub request_id: Option<RequestId>,
}

impl ApiError {
    pub fn new(error: Error) -> Self {
        Self {
            error,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: RequestId) -> Self {
        self.request_id = Some(request_id);
        self
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self::new(error)
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, such as `urn:agora:problem:forbidden`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// What exactly was wrong; for 5xx, nothing internal.
    pub detail: String,
    /// For policy refusals: the rule that refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For a refused governed query: the part of the query at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// For invalid input: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For exceeded limits: the setting that limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unprocessable(_) | Error::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        // Input larger than a byte limit is too large to take; other limits (a query's memory
        // among them) say "ask for less".
        Error::LimitExceeded { limit, .. }
            if limit.ends_with("_bytes_max") && limit != "memory_bytes_max" =>
        {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        Error::LimitExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds a problem response with an explicit status (used for rejections that have their own code).
pub fn problem_response(
    status: StatusCode,
    kind: &str,
    detail: String,
    extra: ProblemExtra,
) -> Response {
    let problem = Problem {
        problem_type: format!("urn:agora:problem:{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        rule: extra.rule,
        expression: extra.expression,
        field: extra.field,
        limit: extra.limit,
        request_id: extra.request_id.map(|id| id.to_string()),
    };
    let body = serde_json::to_vec(&problem).expect("a problem document always serializes");
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[derive(Debug, Default)]
pub struct ProblemExtra {
    pub rule: Option<String>,
    pub expression: Option<String>,
    pub field: Option<String>,
    pub limit: Option<String>,
    pub request_id: Option<RequestId>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.error);
        let mut extra = ProblemExtra {
            request_id: self.request_id,
            ..ProblemExtra::default()
        };
        let detail = match &self.error {
            Error::Internal(message) => {
                tracing::error!(request_id = ?self.request_id, error = %message, "internal error");
                "something went wrong on our side; the request id identifies it in the server's log"
                    .to_owned()
            }
            Error::Unavailable(message) => {
                tracing::warn!(request_id = ?self.request_id, error = %message, "dependency unavailable");
                "a service Agora depends on is not answering; try again shortly".to_owned()
            }
            Error::Forbidden { rule, message } => {
                extra.rule = Some(rule.clone());
                message.clone()
            }
            Error::Invalid { field, message } => {
                extra.field = Some(field.clone());
                format!("{field} {message}")
            }
            Error::LimitExceeded { limit, message } => {
                extra.limit = Some(limit.clone());
                message.clone()
            }
            Error::Refused {
                rule,
                expression,
                message,
            } => {
                extra.rule = Some(rule.clone());
                extra.expression = Some(expression.clone());
                message.clone()
            }
            other => other.to_string(),
        };
        problem_response(status, self.error.kind(), detail, extra)
    }
}
