//! The OpenID Connect provider's endpoints: discovery, JWKS, authorization (with the portal's
//! consent page), token and userinfo. The rules are in `agora-app`'s `superapp/oidc.rs`.

use agora_app::ConsentScope;
use agora_app::superapp::{AuthorizeRequest, AuthorizeStep, OidcError, TokenRequest};
use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use serde::Deserialize;

use super::{Nav, PortalForm, page, request_id, session, signed_in_form};
use crate::ServerState;
use crate::extract::Query;

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /.well-known/openid-configuration`.
pub(super) async fn discovery(State(state): State<ServerState>) -> Response {
    Json(state.app.oidc_discovery()).into_response()
}

/// `GET /oauth/jwks.json`: the instance's public key, for ID tokens, launch contexts and
/// payment notifications.
pub(super) async fn jwks(State(state): State<ServerState>) -> Response {
    let mut response = Json(state.app.oidc_jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[derive(Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    nav: Nav,
    app_name: String,
    seller_name: String,
    scopes: Vec<ConsentScope>,
    request: AuthorizeRequest,
}

#[derive(Template)]
#[template(path = "oauth_error.html")]
struct ErrorPage {
    nav: Nav,
    message: String,
}

fn answer(step: Result<AuthorizeStep, OidcError>, nav: Nav, request: AuthorizeRequest) -> Response {
    match step {
        Ok(AuthorizeStep::Redirect(uri)) => no_store(Redirect::to(&uri).into_response()),
        Ok(AuthorizeStep::Consent {
            app_name,
            seller_name,
            scopes,
        }) => no_store(page(
            StatusCode::OK,
            &ConsentPage {
                nav,
                app_name,
                seller_name,
                scopes,
                request,
            },
        )),
        Err(OidcError::Redirect(uri)) => no_store(Redirect::to(&uri).into_response()),
        Err(OidcError::NoRedirect(message)) => {
            page(StatusCode::BAD_REQUEST, &ErrorPage { nav, message })
        }
        Err(OidcError::Token { description, .. }) => page(
            StatusCode::BAD_REQUEST,
            &ErrorPage {
                nav,
                message: description,
            },
        ),
        Err(OidcError::Other(error)) => crate::ApiError::new(error).into_response(),
    }
}

/// `GET /oauth/authorize`: signs the customer in if needed, then a code or the consent page.
pub(super) async fn authorize(
    State(state): State<ServerState>,
    Query(params): Query<AuthorizeRequest>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(_) => {
            let here = request
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_else(|| "/oauth/authorize".to_owned());
            return Redirect::to(&format!(
                "/signin?next={}",
                super::superapp::query_encode(&here)
            ))
            .into_response();
        }
    };
    let call = agora_app::Call::new(&session.actor, request_id(request.extensions()));
    let step = state.app.authorize_oidc(&call, &params).await;
    answer(step, Nav::new(&session, "apps"), params)
}

#[derive(Deserialize)]
pub(super) struct ConsentForm {
    csrf_token: String,
    decision: String,
    #[serde(flatten)]
    request: AuthorizeRequest,
}
portal_form!(ConsentForm, super::incomplete("consent form"));

/// `POST /oauth/authorize`: the customer allowed or declined on the consent page.
pub(super) async fn decide(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, ConsentForm) = match signed_in_form(&state, request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let step = state
        .app
        .decide_oidc_consent(&call, &form.request, form.decision == "allow")
        .await;
    answer(step, Nav::new(&session, "apps"), form.request)
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded id and secret).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match u8::from_str_radix(&text[index + 1..index + 3], 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /oauth/token`: a code for tokens, once.
pub(super) async fn token(
    State(state): State<ServerState>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return token_error(
            400,
            "invalid_request",
            "send the token request as application/x-www-form-urlencoded",
        );
    };
    match state
        .app
        .oidc_token(&form, basic_credentials(&headers))
        .await
    {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(OidcError::Token {
            status,
            error,
            description,
        }) => token_error(status, error, &description),
        Err(OidcError::Other(error)) => crate::ApiError::new(error).into_response(),
        Err(OidcError::Redirect(message) | OidcError::NoRedirect(message)) => {
            token_error(400, "invalid_request", &message)
        }
    }
}

fn token_error(status: u16, error: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = no_store(
        (
            status,
            Json(serde_json::json!({ "error": error, "error_description": description })),
        )
            .into_response(),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"agora\""),
        );
    }
    response
}

/// `GET /oauth/userinfo` with `Authorization: Bearer …`.
pub(super) async fn userinfo(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return invalid_token("send the access token as Authorization: Bearer");
    };
    match state.app.oidc_userinfo(token).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(agora_domain::Error::Unauthenticated(message)) => invalid_token(&message),
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

fn invalid_token(description: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": "invalid_token", "error_description": description })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    no_store(response)
}
