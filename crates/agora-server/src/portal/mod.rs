//! The portal: server-rendered pages that work without a JavaScript framework.
//!
//! Sessions live in an `HttpOnly`, `SameSite=Lax` cookie; every form carries a CSRF token: the
//! session's own once signed in, and before that a double-submit cookie.

use agora_app::secrets::{hashes_equal, new_secret};
use agora_domain::audit::AuditEntry;
use agora_domain::model::{ApiToken, Member, Organisation};
use agora_domain::{Error, RequestId, Role};
use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::ServerState;
use crate::api::PageParams;
use crate::extract::Query;

macro_rules! portal_form {
    ($form:ty, $incomplete:expr) => {
        impl PortalForm for $form {
            fn csrf_token(&self) -> &str {
                &self.csrf_token
            }

            fn incomplete() -> Response {
                $incomplete
            }
        }
    };
}

mod coalitions;
mod commons;
mod directory;
mod market;
mod oidc;
mod operator;
mod orders;
mod points;
mod sales;
mod settlement;
mod superapp;

const SESSION_COOKIE: &str = "agora_session";
const CSRF_COOKIE: &str = "agora_csrf";
/// Pages may load only this origin's styles and nothing from elsewhere, and never be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin))
        .route("/signin/link/{secret}", get(link_page).post(use_link))
        .route("/signup", get(signup_page).post(signup))
        .route("/signout", axum::routing::post(signout))
        .route("/audit", get(audit_page))
        .route("/tokens", axum::routing::post(create_token))
        .route(
            "/tokens/{token_id}/revoke",
            axum::routing::post(revoke_token),
        )
        .route("/market", get(market::market_page))
        .route("/market/listings/{listing_id}", get(market::listing_page))
        .route("/shop", get(market::shop_page))
        .route(
            "/shop/listings",
            axum::routing::post(market::create_listing),
        )
        .route(
            "/shop/listings/{listing_id}/archive",
            axum::routing::post(market::archive_listing),
        )
        .route(
            "/market/listings/{listing_id}/buy",
            axum::routing::post(orders::buy),
        )
        .route("/orders", get(orders::orders_page))
        .route("/orders/{order_id}", get(orders::order_page))
        .route(
            "/orders/{order_id}/cancel",
            axum::routing::post(orders::cancel),
        )
        .route("/wallet", get(orders::wallet_page))
        .route("/wallet/top-up", axum::routing::post(orders::top_up))
        .route("/shop/orders", get(sales::orders_page))
        .route("/shop/orders/{order_id}", get(sales::order_page))
        .route(
            "/shop/orders/{order_id}/fulfil",
            axum::routing::post(sales::fulfil),
        )
        .route(
            "/shop/orders/{order_id}/refund",
            axum::routing::post(sales::refund),
        )
        .route("/shop/balance", get(sales::balance_page))
        .route("/shop/payouts", axum::routing::post(sales::request_payout))
        .route("/operator/market", get(operator::market_admin_page))
        .route(
            "/operator/market/rules",
            axum::routing::post(operator::add_rule),
        )
        .route(
            "/operator/market/release",
            axum::routing::post(operator::release_due),
        )
        .route(
            "/operator/market/payouts",
            axum::routing::post(operator::run_payouts),
        )
        .route("/points", get(points::points_page))
        .route("/points/redeem", axum::routing::post(points::redeem))
        .route("/operator/points", get(points::points_admin_page))
        .route(
            "/operator/points/rules",
            axum::routing::post(points::add_rule),
        )
        .route(
            "/operator/points/rate",
            axum::routing::post(points::set_rate),
        )
        .route("/shop/settlement", get(settlement::shop_settlement_page))
        .route(
            "/shop/settlement/obligations",
            axum::routing::post(settlement::record_obligation),
        )
        .route(
            "/operator/settlement",
            get(settlement::settlement_admin_page),
        )
        .route(
            "/operator/settlement/close",
            axum::routing::post(settlement::close_window),
        )
        .route(
            "/operator/settlement/caps",
            axum::routing::post(settlement::set_cap),
        )
        .route("/data", get(commons::datasets_page))
        .route("/data/{name}", get(commons::dataset_page))
        .route("/protocols", get(commons::protocols_page))
        .route("/protocols/{protocol_id}", get(commons::protocol_page))
        .route(
            "/protocols/{protocol_id}/propose",
            axum::routing::post(commons::propose),
        )
        .route(
            "/protocols/{protocol_id}/approve",
            axum::routing::post(commons::approve),
        )
        .route(
            "/protocols/{protocol_id}/pause",
            axum::routing::post(commons::pause),
        )
        .route(
            "/protocols/{protocol_id}/resume",
            axum::routing::post(commons::resume),
        )
        .route(
            "/protocols/{protocol_id}/revoke",
            axum::routing::post(commons::revoke),
        )
        .route("/query", get(commons::query_page).post(commons::run_query))
        .route("/queries", get(commons::queries_page))
        .route("/coalitions", get(coalitions::coalitions_page))
        .route(
            "/coalitions/{coalition_id}",
            get(coalitions::coalition_page),
        )
        .route(
            "/coalitions/{coalition_id}/register.json",
            get(coalitions::register_json),
        )
        .route("/proposals/{proposal_id}", get(coalitions::proposal_page))
        .route(
            "/proposals/{proposal_id}/vote",
            axum::routing::post(coalitions::vote),
        )
        .route("/apps", get(superapp::apps_page))
        .route("/apps/{slug}", get(superapp::miniapp_page))
        .route("/apps/{slug}/launch", axum::routing::post(superapp::launch))
        .route("/apps/{slug}/listings", get(superapp::listings))
        .route("/apps/{slug}/consent", get(superapp::consent))
        .route("/apps/{slug}/grants", axum::routing::post(superapp::grant))
        .route(
            "/apps/{slug}/payment-requests",
            axum::routing::post(superapp::create_payment),
        )
        .route("/apps/{slug}/payment-requests/{id}", get(superapp::payment))
        .route(
            "/apps/{slug}/payment-requests/{id}/confirm",
            axum::routing::post(superapp::confirm_payment),
        )
        .route(
            "/apps/{slug}/payment-requests/{id}/cancel",
            axum::routing::post(superapp::cancel_payment),
        )
        .route(
            "/apps/{slug}/notifications",
            axum::routing::post(superapp::notify),
        )
        .route("/grants", get(superapp::grants_page))
        .route(
            "/grants/{grant_id}/revoke",
            axum::routing::post(superapp::revoke_grant),
        )
        .route("/notifications", get(superapp::notifications_page))
        .route(
            "/console/apps",
            get(superapp::console_page).merge(
                axum::routing::post(superapp::console_register)
                    .layer(axum::extract::DefaultBodyLimit::disable()),
            ),
        )
        .route(
            "/console/apps/{app_id}/versions",
            axum::routing::post(superapp::console_upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/console/apps/{app_id}/live",
            axum::routing::post(superapp::console_live),
        )
        .route("/operator/apps", get(superapp::operator_apps_page))
        .route(
            "/operator/apps/{app_id}/versions/{version}/review",
            axum::routing::post(superapp::operator_review),
        )
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/oauth/jwks.json", get(oidc::jwks))
        .route("/oauth/authorize", get(oidc::authorize).post(oidc::decide))
        .route("/oauth/token", axum::routing::post(oidc::token))
        .route("/oauth/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/assets/portal.css", get(stylesheet))
        .route("/assets/miniapp-host.js", get(host_script))
        .route("/assets/miniapp-host.css", get(host_stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/portal.css"),
    )
}

async fn host_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/miniapp-host.js"),
    )
}

async fn host_stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../assets/miniapp-host.css"),
    )
}

/// Renders a page with the headers every portal page carries.
fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(state: &ServerState, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let secure = if state.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}"
    );
    HeaderValue::from_str(&text).expect("cookie values are hex and names are constants")
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

fn request_id(request_extensions: &axum::http::Extensions) -> RequestId {
    request_extensions
        .get::<RequestId>()
        .copied()
        .unwrap_or_default()
}

/// The page's frame for a signed-in person: who they are, the session's CSRF token for every
/// form, and which links the navigation offers. The links only guide; every page still asks
/// the application, which authorizes.
pub struct Nav {
    /// Which link is the current page.
    pub current: &'static str,
    pub csrf_token: String,
    pub user_name: String,
    /// Acts for an organisation (a partner or the operator).
    pub acts_for_org: bool,
    /// Acts for a partner organisation: its shop, its orders, its balance and its settlement.
    pub sells: bool,
    /// Acts for the operator as an owner or admin: the market's, settlement's and points' administration.
    pub operates: bool,
    /// Acts for an organisation as an owner, admin or analyst: its datasets, protocols and queries.
    pub analyses: bool,
}

impl Nav {
    fn new(session: &agora_app::PortalSession, current: &'static str) -> Self {
        let acting = session.actor.acting;
        Self {
            current,
            csrf_token: session.record.csrf_token.clone(),
            user_name: session.user.display_name.to_string(),
            acts_for_org: acting.is_some(),
            sells: acting.is_some_and(|acting| !acting.is_operator),
            operates: acting.is_some_and(|acting| {
                acting.is_operator && matches!(acting.role, Role::Owner | Role::Admin)
            }),
            analyses: acting.is_some_and(|acting| {
                matches!(acting.role, Role::Owner | Role::Admin | Role::Analyst)
            }),
        }
    }
}

/// The refusal of an operator's page to anyone who does not act for the operator.
fn not_operator() -> Error {
    Error::Forbidden {
        rule: "portal-operator".to_owned(),
        message: "this page is the operator's; you do not act for the operator".to_owned(),
    }
}

/// What a person reads in the page's alert when a use case refuses: the rule or the state that
/// stood in the way, and so what to do next. `None` for failures that are not theirs to fix.
fn alert_text(error: &Error) -> Option<String> {
    let sentence = |text: &str| {
        let mut chars = text.chars();
        let first = chars.next().map(|c| c.to_uppercase().to_string());
        let text = format!("{}{}", first.unwrap_or_default(), chars.as_str());
        if text.ends_with('.') {
            text
        } else {
            format!("{text}.")
        }
    };
    match error {
        Error::Invalid { field, message } => Some(sentence(&format!(
            "the {} {message}",
            field.replace('_', " ")
        ))),
        Error::Conflict(message) | Error::Unprocessable(message) => Some(sentence(message)),
        Error::LimitExceeded { message, .. } => Some(sentence(message)),
        Error::Forbidden { message, .. } => Some(sentence(&format!("not allowed: {message}"))),
        _ => None,
    }
}

/// The signed-in session, or a redirect to the sign-in page.
async fn session(
    state: &ServerState,
    headers: &HeaderMap,
) -> Result<agora_app::PortalSession, Response> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/signin").into_response());
    };
    match state.app.authenticate_session(&secret).await {
        Ok(session) => Ok(session),
        Err(Error::Unauthenticated(_)) => Err(with_cookie(
            Redirect::to("/signin").into_response(),
            set_cookie(state, SESSION_COOKIE, "", 0),
        )),
        Err(error) => Err(crate::ApiError::new(error).into_response()),
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    csrf_token: String,
    email: String,
    error: Option<String>,
    /// Where to go once signed in: a path on this site (the authorization endpoint, …).
    next: String,
}

#[derive(Deserialize, Default)]
struct NextParams {
    next: Option<String>,
}

/// A `next` worth following: a path on this site, never another site (`//host`, `/\\host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(char::is_control) =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn signin_page(
    State(state): State<ServerState>,
    Query(params): Query<NextParams>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(params.next.as_deref());
    if let Some(secret) = cookie(&headers, SESSION_COOKIE)
        && state.app.authenticate_session(&secret).await.is_ok()
    {
        return Redirect::to(&next).into_response();
    }
    let csrf_token = new_secret();
    let response = page(
        StatusCode::OK,
        &SigninPage {
            csrf_token: csrf_token.clone(),
            email: String::new(),
            error: None,
            next,
        },
    );
    with_cookie(response, set_cookie(&state, CSRF_COOKIE, &csrf_token, 3600))
}

#[derive(Deserialize)]
struct SigninForm {
    email: String,
    password: String,
    csrf_token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Checks a double-submit CSRF token: the form's copy must equal the cookie's.
fn csrf_matches(headers: &HeaderMap, form_token: &str) -> bool {
    cookie(headers, CSRF_COOKIE).is_some_and(|cookie_token| {
        !cookie_token.is_empty() && hashes_equal(cookie_token.as_bytes(), form_token.as_bytes())
    })
}

/// A form the portal accepts: it carries a CSRF token, and says what to answer when incomplete.
trait PortalForm: serde::de::DeserializeOwned {
    fn csrf_token(&self) -> &str;

    /// The answer to a post that does not parse as this form.
    fn incomplete() -> Response;
}

fn incomplete(what: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("the {what} was incomplete"),
    )
        .into_response()
}

portal_form!(SigninForm, incomplete("sign-in form"));
portal_form!(SignupForm, incomplete("sign-up form"));
portal_form!(LinkForm, incomplete("form"));
portal_form!(TokenForm, incomplete("token form"));
// A form that is nothing but its CSRF token is refused as a forgery when it does not parse.
portal_form!(CsrfForm, csrf_refused());

/// A form posted before signing in, once its token matches the double-submit CSRF cookie.
async fn anonymous_form<F: PortalForm>(
    state: &ServerState,
    request: Request,
) -> Result<F, Response> {
    let headers = request.headers().clone();
    let Ok(Form(form)) = Form::<F>::from_request(request, state).await else {
        return Err(F::incomplete());
    };
    if !csrf_matches(&headers, form.csrf_token()) {
        return Err(csrf_refused());
    }
    Ok(form)
}

/// A form posted by a signed-in person, once its token matches the session's CSRF token;
/// otherwise the answer to send (a redirect to sign in, or a refusal).
async fn signed_in_form<F: PortalForm>(
    state: &ServerState,
    request: Request,
) -> Result<(agora_app::PortalSession, F), Response> {
    let session = session(state, request.headers()).await?;
    let Ok(Form(form)) = Form::<F>::from_request(request, state).await else {
        return Err(F::incomplete());
    };
    if !hashes_equal(
        form.csrf_token().as_bytes(),
        session.record.csrf_token.as_bytes(),
    ) {
        return Err(csrf_refused());
    }
    Ok((session, form))
}

fn csrf_refused() -> Response {
    (StatusCode::FORBIDDEN, Html("<!doctype html><title>Form expired</title><p>This form expired or did not come from this site. <a href=\"/signin\">Reload the sign-in page</a> and try again.</p>")).into_response()
}

async fn signin(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let form: SigninForm = match anonymous_form(&state, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match state
        .app
        .sign_in(&form.email, &form.password, request_id)
        .await
    {
        Ok(signed_in) => {
            let max_age = state.app.config().session_ttl_seconds;
            let response = with_cookie(
                Redirect::to(&safe_next(form.next.as_deref())).into_response(),
                set_cookie(&state, SESSION_COOKIE, &signed_in.session_secret, max_age),
            );
            with_cookie(response, set_cookie(&state, CSRF_COOKIE, "", 0))
        }
        Err(error @ (Error::Unauthenticated(_) | Error::LimitExceeded { .. })) => {
            let (status, message) = match &error {
                Error::LimitExceeded { message, .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Sign-in refused: {message}."),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "The e-mail address and password did not match.".to_owned(),
                ),
            };
            page(
                status,
                &SigninPage {
                    csrf_token: form.csrf_token,
                    email: form.email,
                    error: Some(message),
                    next: safe_next(form.next.as_deref()),
                },
            )
        }
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    csrf_token: String,
    display_name: String,
    email: String,
    error: Option<String>,
}

async fn signup_page(State(state): State<ServerState>) -> Response {
    let csrf_token = new_secret();
    let view = SignupPage {
        csrf_token: csrf_token.clone(),
        display_name: String::new(),
        email: String::new(),
        error: None,
    };
    with_cookie(
        page(StatusCode::OK, &view),
        set_cookie(&state, CSRF_COOKIE, &csrf_token, 3600),
    )
}

#[derive(Deserialize)]
struct SignupForm {
    display_name: String,
    email: String,
    password: String,
    csrf_token: String,
}

/// Creates a customer account (a user without an organisation) and signs it in.
async fn signup(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let form: SignupForm = match anonymous_form(&state, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let again = |form: SignupForm, message: String| {
        let view = SignupPage {
            csrf_token: form.csrf_token,
            display_name: form.display_name,
            email: form.email,
            error: Some(message),
        };
        page(StatusCode::UNPROCESSABLE_ENTITY, &view)
    };
    match state
        .app
        .sign_up(&form.email, &form.display_name, &form.password, request_id)
        .await
    {
        Ok(signed_in) => {
            let max_age = state.app.config().session_ttl_seconds;
            let response = with_cookie(
                Redirect::to("/").into_response(),
                set_cookie(&state, SESSION_COOKIE, &signed_in.session_secret, max_age),
            );
            with_cookie(response, set_cookie(&state, CSRF_COOKIE, "", 0))
        }
        Err(Error::Conflict(_)) => again(
            form,
            "An account with this e-mail address exists already; sign in instead.".to_owned(),
        ),
        Err(Error::Invalid { field, message }) => {
            again(form, format!("The {} {message}.", field.replace('_', " ")))
        }
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn signout(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    if let Err(error) = state.app.sign_out(&session, request_id).await {
        return crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response();
    }
    with_cookie(
        Redirect::to("/signin").into_response(),
        set_cookie(&state, SESSION_COOKIE, "", 0),
    )
}

#[derive(Template)]
#[template(path = "signin_link.html")]
struct LinkPage {
    secret: String,
    csrf_token: String,
    valid: bool,
    error: Option<String>,
}

async fn link_page(State(state): State<ServerState>, Path(secret): Path<String>) -> Response {
    let valid = match state.app.signin_link_is_valid(&secret).await {
        Ok(valid) => valid,
        Err(error) => return crate::ApiError::new(error).into_response(),
    };
    let csrf_token = new_secret();
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let response = page(
        status,
        &LinkPage {
            secret,
            csrf_token: csrf_token.clone(),
            valid,
            error: None,
        },
    );
    with_cookie(response, set_cookie(&state, CSRF_COOKIE, &csrf_token, 3600))
}

#[derive(Deserialize)]
struct LinkForm {
    password: String,
    password_again: String,
    csrf_token: String,
}

async fn use_link(
    State(state): State<ServerState>,
    Path(secret): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let form: LinkForm = match anonymous_form(&state, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let again = |message: String| {
        page(
            StatusCode::BAD_REQUEST,
            &LinkPage {
                secret: secret.clone(),
                csrf_token: form.csrf_token.clone(),
                valid: true,
                error: Some(message),
            },
        )
    };
    if form.password != form.password_again {
        return again("The two passwords differ.".into());
    }
    match state
        .app
        .use_signin_link(&secret, &form.password, request_id)
        .await
    {
        Ok(signed_in) => {
            let max_age = state.app.config().session_ttl_seconds;
            with_cookie(
                Redirect::to("/").into_response(),
                set_cookie(&state, SESSION_COOKIE, &signed_in.session_secret, max_age),
            )
        }
        Err(Error::Invalid { message, .. }) => again(format!("The password {message}.")),
        Err(Error::Unauthenticated(message)) => page(
            StatusCode::GONE,
            &LinkPage {
                secret: secret.clone(),
                csrf_token: form.csrf_token.clone(),
                valid: false,
                error: Some(message),
            },
        ),
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    org: Option<Organisation>,
    role: String,
    members: Vec<Member>,
    show_tokens: bool,
    tokens: Vec<ApiToken>,
    /// Roles this user may give a token: the ones their own role covers.
    grantable_roles: Vec<&'static str>,
}

async fn home(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if session.actor.acting.is_none() {
        return superapp::customer_home(
            &state,
            &session,
            request_id,
            superapp::DirectoryParams::default(),
            true,
        )
        .await;
    }
    let call = agora_app::Call::new(&session.actor, request_id);
    let mut view = HomePage {
        nav: Nav::new(&session, "home"),
        org: None,
        role: String::new(),
        members: vec![],
        show_tokens: false,
        tokens: vec![],
        grantable_roles: vec![],
    };
    if let Some(acting) = session.actor.acting {
        let loaded = async {
            view.org = Some(state.app.org(&call, acting.org_id).await?);
            view.role = acting.role.to_string();
            view.members = state
                .app
                .members(&call, acting.org_id, None, None)
                .await?
                .items;
            view.show_tokens = acting.role != Role::Member;
            view.grantable_roles = Role::ALL
                .into_iter()
                .filter(|role| acting.role.covers(*role))
                .map(Role::as_str)
                .collect();
            if view.show_tokens {
                view.tokens = state
                    .app
                    .tokens(&call, acting.org_id, None, None)
                    .await?
                    .items;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(error) = loaded {
            return crate::ApiError::new(error)
                .with_request_id(request_id)
                .into_response();
        }
    }
    page(StatusCode::OK, &view)
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    org_name: Option<String>,
    entries: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

async fn audit_page(
    State(state): State<ServerState>,
    Query(params): Query<PageParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let mut view = AuditPage {
        nav: Nav::new(&session, "audit"),
        org_name: None,
        entries: vec![],
        next_cursor: None,
    };
    if let Some(acting) = session.actor.acting {
        let loaded = async {
            let org = state.app.org(&call, acting.org_id).await?;
            let page = state
                .app
                .audit_entries(
                    &call,
                    Some(acting.org_id),
                    params.cursor.as_deref(),
                    params.limit,
                )
                .await?;
            Ok::<_, Error>((org, page))
        }
        .await;
        match loaded {
            Ok((org, page)) => {
                view.org_name = Some(org.name.to_string());
                view.entries = page.items;
                view.next_cursor = page.next_cursor;
            }
            Err(error @ Error::Forbidden { .. }) => {
                let status = crate::error::status_of(&error);
                return (status, Html(format!("<!doctype html><title>Not allowed</title><p>{}</p><p><a href=\"/\">Home</a></p>", askama_escape(&error.to_string())))).into_response();
            }
            Err(error) => {
                return crate::ApiError::new(error)
                    .with_request_id(request_id)
                    .into_response();
            }
        }
    }
    page(StatusCode::OK, &view)
}

fn askama_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

use axum::extract::FromRequest;

#[derive(Template)]
#[template(path = "token_created.html")]
struct TokenCreatedPage {
    nav: Nav,
    name: String,
    role: String,
    secret: String,
    server: String,
}

#[derive(Deserialize)]
struct TokenForm {
    csrf_token: String,
    name: String,
    role: String,
    expires_in_days: Option<String>,
}

/// Creates a token for the signed-in user in the organisation they act for; shows its secret once.
async fn create_token(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, TokenForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let Some(acting) = session.actor.acting else {
        return (
            StatusCode::FORBIDDEN,
            "you act for no organisation, so you cannot make its tokens",
        )
            .into_response();
    };
    let parsed = (|| {
        let role: Role = form.role.parse()?;
        let expires_in_days = match form.expires_in_days.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(days) => Some(days.parse::<u32>().map_err(|_| {
                Error::invalid("expires_in_days", "must be a whole number of days")
            })?),
        };
        Ok::<_, Error>(agora_app::CreateToken {
            name: form.name.clone(),
            role,
            expires_in_days,
        })
    })();
    let call = agora_app::Call::new(&session.actor, request_id);
    let created = match parsed {
        Ok(input) => state.app.create_token(&call, acting.org_id, input).await,
        Err(error) => Err(error),
    };
    match created {
        Ok(created) => {
            let view = TokenCreatedPage {
                nav: Nav::new(&session, "home"),
                name: created.token.name,
                role: created.token.role.to_string(),
                secret: created.secret,
                server: state.app.config().public_url.clone(),
            };
            page(StatusCode::CREATED, &view)
        }
        Err(error) => error_page(error, request_id),
    }
}

/// Revokes a token of the organisation the user acts for, then returns home.
async fn revoke_token(
    State(state): State<ServerState>,
    Path(token_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let revoked = match token_id.parse() {
        Ok(token_id) => state.app.revoke_token(&call, token_id).await,
        Err(error) => Err(error),
    };
    match revoked {
        Ok(_) => Redirect::to("/").into_response(),
        Err(error) => error_page(error, request_id),
    }
}

/// A refusal or invalid input as a page a person can act on; anything else as a problem.
fn error_page(error: Error, request_id: RequestId) -> Response {
    match &error {
        Error::Forbidden { .. }
        | Error::Invalid { .. }
        | Error::NotFound { .. }
        | Error::Conflict(_) => {
            let status = crate::error::status_of(&error);
            let body = format!(
                "<!doctype html><title>Not done</title><link rel=\"stylesheet\" href=\"/assets/portal.css\"><main><p role=\"alert\" class=\"alert\">{}</p><p><a href=\"/\">Back</a></p></main>",
                askama_escape(&error.to_string())
            );
            (status, Html(body)).into_response()
        }
        _ => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}
