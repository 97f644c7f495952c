//! Extractors: the authenticated caller, JSON bodies and query strings whose rejections are problems.

use agora_app::Call;
use agora_domain::{Actor, Error, RequestId};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::ServerState;
use crate::error::{ApiError, ProblemExtra, problem_response};

/// The caller of an API route, authenticated by `Authorization: Bearer`.
pub struct Caller {
    pub actor: Actor,
    pub request_id: RequestId,
    pub idempotency_key: Option<String>,
}

impl Caller {
    pub fn call(&self) -> Call<'_> {
        Call::new(&self.actor, self.request_id)
            .with_idempotency_key(self.idempotency_key.as_deref())
    }

    /// Attaches this request's id to an error.
    pub fn fail(&self, error: Error) -> ApiError {
        ApiError::new(error).with_request_id(self.request_id)
    }
}

pub fn request_id(parts: &Parts) -> RequestId {
    parts
        .extensions
        .get::<RequestId>()
        .copied()
        .unwrap_or_default()
}

impl FromRequestParts<ServerState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = request_id(parts);
        let fail = |error: Error| ApiError::new(error).with_request_id(request_id);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                fail(Error::Unauthenticated(
                    "send an API token as `Authorization: Bearer agora_…`".into(),
                ))
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                fail(Error::Unauthenticated(
                    "the Authorization header must be `Bearer <token>`".into(),
                ))
            })?;
        let actor = state
            .app
            .authenticate_token(token.trim())
            .await
            .map_err(fail)?;
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| fail(Error::invalid("Idempotency-Key", "must be visible ASCII")))?
                    .to_owned(),
            ),
        };
        Ok(Self {
            actor,
            request_id,
            idempotency_key,
        })
    }
}

/// A JSON body; malformed JSON is a 400, well-formed JSON of the wrong shape a 422,
/// a body over `request_body_bytes_max` a 413, and a missing content type a 415.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ServerState> for Json<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &ServerState) -> Result<Self, Self::Rejection> {
        let request_id = request.extensions().get::<RequestId>().copied();
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => {
                let (status, kind) = match &rejection {
                    JsonRejection::JsonSyntaxError(_) => {
                        (StatusCode::BAD_REQUEST, "malformed-json")
                    }
                    JsonRejection::JsonDataError(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-body")
                    }
                    JsonRejection::MissingJsonContentType(_) => {
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type")
                    }
                    _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large")
                    }
                    _ => (rejection.status(), "bad-body"),
                };
                let detail = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        format!(
                            "the body is larger than request_body_bytes_max ({} bytes)",
                            state.config.request_body_bytes_max
                        )
                    }
                    _ => rejection.body_text(),
                };
                let extra = ProblemExtra {
                    limit: (status == StatusCode::PAYLOAD_TOO_LARGE)
                        .then(|| "request_body_bytes_max".to_owned()),
                    request_id,
                    ..ProblemExtra::default()
                };
                Err(problem_response(status, kind, detail, extra))
            }
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; a wrong one is a 400 that says which parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => {
                let detail = match &rejection {
                    QueryRejection::FailedToDeserializeQueryString(error) => error.body_text(),
                    other => other.body_text(),
                };
                let extra = ProblemExtra {
                    request_id: Some(request_id(parts)),
                    ..ProblemExtra::default()
                };
                Err(problem_response(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    detail,
                    extra,
                ))
            }
        }
    }
}
