//! The superapp in the portal: the customer's home with the directory of mini-apps, the host
//! page that frames a mini-app on its own origin and answers its bridge (`miniapp-host.js`
//! calls the JSON endpoints here), grants with one-click revoke, the notifications inbox, the
//! partner's console and the operator's review.

use agora_app::{
    ConsentView, GrantView, MiniAppFiguresView, MiniAppVersionView, MiniAppView, NewPaymentRequest,
    NotificationView, PaymentRequestView, PortalSession, ReviewDecision,
};
use agora_domain::miniapp::{AppCategory, parse_scopes};
use agora_domain::{Error, GrantId, MiniAppId, PaymentRequestId};
use askama::Template;
use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Nav, PortalForm, alert_text, page, request_id, session, signed_in_form};
use crate::ServerState;
use crate::extract::Query;

/// How many recently used mini-apps the home page shows.
const RECENT_MAX: u32 = 6;

#[derive(Debug, Default, Deserialize)]
pub(super) struct DirectoryParams {
    q: Option<String>,
    category: Option<String>,
}

pub(super) struct CategoryOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "apps.html")]
pub(super) struct AppsPage {
    nav: Nav,
    greeting: bool,
    q: String,
    categories: Vec<CategoryOption>,
    recent: Vec<MiniAppView>,
    apps: Vec<MiniAppView>,
    unread: usize,
    error: Option<String>,
}

/// `/apps` (and `/` for a customer): the directory, searched and by category, recently used first.
pub(super) async fn apps_page(
    State(state): State<ServerState>,
    Query(params): Query<DirectoryParams>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    customer_home(
        &state,
        &session,
        request_id(request.extensions()),
        params,
        false,
    )
    .await
}

pub(super) async fn customer_home(
    state: &ServerState,
    session: &PortalSession,
    request_id: agora_domain::RequestId,
    params: DirectoryParams,
    greeting: bool,
) -> Response {
    let call = agora_app::Call::new(&session.actor, request_id);
    let q = params.q.unwrap_or_default();
    let category = params
        .category
        .as_deref()
        .filter(|text| !text.is_empty())
        .and_then(|text| text.parse::<AppCategory>().ok());
    let mut view = AppsPage {
        nav: Nav::new(session, "apps"),
        greeting,
        categories: AppCategory::ALL
            .into_iter()
            .map(|c| CategoryOption {
                value: c.as_str(),
                label: c.label(),
                selected: Some(c) == category,
            })
            .collect(),
        q: q.clone(),
        recent: Vec::new(),
        apps: Vec::new(),
        unread: 0,
        error: None,
    };
    let loaded = async {
        view.apps = state
            .app
            .miniapp_directory(&call, Some(&q), category)
            .await?;
        if session.actor.acting.is_none() {
            if q.is_empty() && category.is_none() {
                view.recent = state.app.recently_used(&call, RECENT_MAX).await?;
            }
            view.unread = state.app.unread_notifications(&call).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(error) = loaded {
        match alert_text(&error) {
            Some(text) => view.error = Some(text),
            None => return crate::ApiError::new(error).into_response(),
        }
    }
    let mut response = page(StatusCode::OK, &view);
    // The tiles show each mini-app's icon, served from its own origin.
    let icons = state.app.miniapp_origin("*");
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' {icons}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

#[derive(Template)]
#[template(path = "miniapp.html")]
struct MiniAppPage {
    nav: Nav,
    app: MiniAppView,
    frame_src: String,
    frame_origin: String,
    /// The portal's configured origin (`public_url`): the only one mini-apps answer and can be
    /// framed by; the page warns when it is opened at another.
    portal_origin: String,
}

/// `/apps/{slug}`: the mini-app in a sandboxed frame on its own origin, and the bridge.
pub(super) async fn miniapp_page(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id(request.extensions()));
    let directory = match state.app.miniapp_directory(&call, None, None).await {
        Ok(directory) => directory,
        Err(error) => return crate::ApiError::new(error).into_response(),
    };
    let Some(app) = directory.into_iter().find(|app| app.slug == slug) else {
        return crate::ApiError::new(Error::not_found(format!("mini-app `{slug}`")))
            .into_response();
    };
    let live = match state.app.live_miniapp(&slug).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            return crate::ApiError::new(Error::not_found(format!("mini-app `{slug}`")))
                .into_response();
        }
        Err(error) => return crate::ApiError::new(error).into_response(),
    };
    let frame_src = live
        .external_url
        .clone()
        .unwrap_or_else(|| format!("{}/", app.origin));
    let frame_origin = crate::miniapp_host::origin_of(&frame_src);
    let view = MiniAppPage {
        nav: Nav::new(&session, "apps"),
        app,
        frame_src,
        frame_origin: frame_origin.clone(),
        portal_origin: crate::miniapp_host::origin_of(&state.app.config().public_url),
    };
    let mut response = page(StatusCode::OK, &view);
    // This page alone runs the portal's own script, and frames exactly the mini-app's origin.
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' {frame_origin}; connect-src 'self'; frame-src {frame_origin}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

// -----------------------------------------------------------------------------------------
// The bridge's JSON endpoints (miniapp-host.js)
// -----------------------------------------------------------------------------------------

/// A JSON request from the host page: the session, and for changes the CSRF header.
async fn bridge_session(
    state: &ServerState,
    headers: &HeaderMap,
    change: bool,
) -> Result<PortalSession, Response> {
    let Some(secret) = super::cookie(headers, super::SESSION_COOKIE) else {
        return Err(crate::ApiError::new(Error::Unauthenticated(
            "sign in to the portal first".to_owned(),
        ))
        .into_response());
    };
    let session = state
        .app
        .authenticate_session(&secret)
        .await
        .map_err(|error| crate::ApiError::new(error).into_response())?;
    if change {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !agora_app::secrets::hashes_equal(
            presented.as_bytes(),
            session.record.csrf_token.as_bytes(),
        ) {
            return Err(crate::ApiError::new(Error::forbidden(
                "portal-csrf",
                "the request did not carry this session's CSRF token; reload the page",
            ))
            .into_response());
        }
    }
    Ok(session)
}

// The error is the answer to send, like every portal helper's.
#[allow(clippy::result_large_err)]
fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|error| {
        crate::ApiError::new(Error::invalid(
            "body",
            format!("is not the expected JSON: {error}"),
        ))
        .into_response()
    })
}

/// A bridge request that changes something: the session, checked with its CSRF header, and the
/// JSON body.
async fn bridge_change<T: serde::de::DeserializeOwned>(
    state: &ServerState,
    request: Request,
) -> Result<(PortalSession, T), Response> {
    let session = bridge_session(state, request.headers(), true).await?;
    let (_, bytes) = read_body(request).await?;
    Ok((session, json_body(&bytes)?))
}

async fn read_body(request: Request) -> Result<(HeaderMap, axum::body::Bytes), Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        crate::ApiError::new(Error::invalid("body", "at most 64 KiB")).into_response()
    })?;
    Ok((parts.headers, bytes))
}

fn answer<T: serde::Serialize>(
    status: StatusCode,
    result: agora_domain::Result<T>,
    request_id: agora_domain::RequestId,
) -> Response {
    match result {
        Ok(value) => {
            let mut response = (status, Json(value)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

/// `POST /apps/{slug}/launch`: a fresh launch context.
pub(super) async fn launch(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match bridge_session(&state, request.headers(), true).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    answer(
        StatusCode::OK,
        state.app.launch_miniapp(&call, &slug).await,
        request_id,
    )
}

#[derive(serde::Serialize)]
struct ListingsAnswer {
    listings: Vec<serde_json::Value>,
}

/// `GET /apps/{slug}/listings`: what the mini-app's organisation sells.
pub(super) async fn listings(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match bridge_session(&state, request.headers(), false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = state
        .app
        .miniapp_listings(&call, &slug)
        .await
        .map(|listings| ListingsAnswer {
            listings: listings
                .into_iter()
                .map(|(listing, slots)| {
                    let (kind, stock) = match listing.kind {
                        agora_domain::listing::ListingKind::Product { stock } => ("product", stock),
                        agora_domain::listing::ListingKind::Service { .. } => ("service", None),
                    };
                    serde_json::json!({
                        "id": listing.id,
                        "title": listing.title.to_string(),
                        "description": listing.description.to_string(),
                        "category": listing.category.to_string(),
                        "kind": kind,
                        "price": listing.price,
                        "currency": listing.currency.code(),
                        "price_text": listing.currency.format(listing.price),
                        "stock": stock,
                        "slots": slots.iter().map(|slot| serde_json::json!({
                            "id": slot.id,
                            "starts_at": slot.starts_at,
                            "ends_at": slot.ends_at,
                            "available": slot.booked_by_order.is_none(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        });
    answer(StatusCode::OK, result, request_id)
}

#[derive(Deserialize)]
pub(super) struct ConsentParams {
    scopes: Option<String>,
}

/// `GET /apps/{slug}/consent?scopes=…`: what the consent dialog shows.
pub(super) async fn consent(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    Query(params): Query<ConsentParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match bridge_session(&state, request.headers(), false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result: agora_domain::Result<ConsentView> = async {
        let scopes = parse_scopes(params.scopes.as_deref().unwrap_or_default())?;
        state.app.miniapp_consent(&call, &slug, &scopes).await
    }
    .await;
    answer(
        StatusCode::OK,
        result.map(|view| {
            serde_json::json!({
                "app": { "id": view.app_id, "name": view.name, "seller_name": view.seller_name },
                "scopes": view.scopes,
            })
        }),
        request_id,
    )
}

#[derive(Deserialize)]
struct GrantInput {
    scopes: Vec<String>,
}

/// `POST /apps/{slug}/grants` `{ "scopes": [...] }`: the customer allowed in the consent dialog.
pub(super) async fn grant(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, input): (_, GrantInput) = match bridge_change(&state, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let scopes = parse_scopes(&input.scopes.join(" "))?;
        let (_, all) = state.app.grant_scopes(&call, &slug, &scopes).await?;
        Ok(serde_json::json!({ "granted": all.iter().map(|s| s.as_str()).collect::<Vec<_>>() }))
    }
    .await;
    answer(StatusCode::OK, result, request_id)
}

/// `POST /apps/{slug}/payment-requests` `{ "lines": [...] }`: priced by the server.
pub(super) async fn create_payment(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, input): (_, NewPaymentRequest) = match bridge_change(&state, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    answer(
        StatusCode::CREATED,
        state
            .app
            .request_payment_in_portal(&call, &slug, input)
            .await,
        request_id,
    )
}

/// `GET /apps/{slug}/payment-requests/{id}`: what the cashier shows.
pub(super) async fn payment(
    State(state): State<ServerState>,
    Path((slug, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match bridge_session(&state, request.headers(), false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result: agora_domain::Result<PaymentRequestView> = async {
        let id: PaymentRequestId = id.parse()?;
        state.app.customer_payment_request(&call, &slug, id).await
    }
    .await;
    answer(StatusCode::OK, result, request_id)
}

#[derive(Deserialize)]
struct ConfirmInput {
    amount: i64,
    currency: String,
}

/// `POST /apps/{slug}/payment-requests/{id}/confirm` `{ amount, currency }`: the customer pays
/// the amount the cashier showed.
pub(super) async fn confirm_payment(
    State(state): State<ServerState>,
    Path((slug, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, input): (_, ConfirmInput) = match bridge_change(&state, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let id: PaymentRequestId = id.parse()?;
        state
            .app
            .confirm_payment(&call, &slug, id, input.amount, &input.currency)
            .await
    }
    .await;
    answer(StatusCode::OK, result, request_id)
}

/// `POST /apps/{slug}/payment-requests/{id}/cancel`: the customer declined in the cashier.
pub(super) async fn cancel_payment(
    State(state): State<ServerState>,
    Path((slug, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match bridge_session(&state, request.headers(), true).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let id: PaymentRequestId = id.parse()?;
        state.app.cancel_payment(&call, &slug, id).await
    }
    .await;
    answer(StatusCode::OK, result, request_id)
}

#[derive(Deserialize)]
struct NotifyInput {
    title: String,
    #[serde(default)]
    body: String,
}

/// `POST /apps/{slug}/notifications` `{ title, body }`.
pub(super) async fn notify(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, input): (_, NotifyInput) = match bridge_change(&state, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = state
        .app
        .notify_customer(&call, &slug, &input.title, &input.body)
        .await
        .map(|id| serde_json::json!({ "id": id }));
    answer(StatusCode::CREATED, result, request_id)
}

// -----------------------------------------------------------------------------------------
// Grants and notifications
// -----------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    nav: Nav,
    active: Vec<GrantView>,
    revoked: Vec<GrantView>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct NoticeParams {
    revoked: Option<String>,
}

/// `/grants`: which mini-app may see what, since when, each with a revoke button.
pub(super) async fn grants_page(
    State(state): State<ServerState>,
    Query(params): Query<NoticeParams>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id(request.extensions()));
    match state.app.grants(&call).await {
        Ok(grants) => {
            let (active, revoked) = grants
                .into_iter()
                .partition(|grant| grant.revoked_at.is_none());
            page(
                StatusCode::OK,
                &GrantsPage {
                    nav: Nav::new(&session, "grants"),
                    active,
                    revoked,
                    notice: params
                        .revoked
                        .map(|name| format!("{name} can no longer see what you had granted; its sign-ins stop working.")),
                },
            )
        }
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

/// `POST /grants/{grant_id}/revoke`.
pub(super) async fn revoke_grant(
    State(state): State<ServerState>,
    Path(grant_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, super::CsrfForm) = match signed_in_form(&state, request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let grant_id: GrantId = grant_id.parse()?;
        let name = state
            .app
            .grants(&call)
            .await?
            .into_iter()
            .find(|grant| grant.id == grant_id)
            .map(|grant| grant.app_name)
            .unwrap_or_default();
        state.app.revoke_grant(&call, grant_id).await?;
        Ok::<_, Error>(name)
    }
    .await;
    match result {
        Ok(name) => {
            Redirect::to(&format!("/grants?revoked={}", query_encode(&name))).into_response()
        }
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    nav: Nav,
    notifications: Vec<NotificationView>,
}

/// `/notifications`: the inbox (reading it marks everything read).
pub(super) async fn notifications_page(
    State(state): State<ServerState>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id(request.extensions()));
    match state.app.notifications(&call).await {
        Ok(notifications) => page(
            StatusCode::OK,
            &NotificationsPage {
                nav: Nav::new(&session, "notifications"),
                notifications,
            },
        ),
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

// -----------------------------------------------------------------------------------------
// The partner's console and the operator's review
// -----------------------------------------------------------------------------------------

pub(super) struct ConsoleApp {
    app: MiniAppView,
    versions: Vec<MiniAppVersionView>,
    figures: MiniAppFiguresView,
}

#[derive(Template)]
#[template(path = "console_apps.html")]
struct ConsolePage {
    nav: Nav,
    org_id: String,
    apps: Vec<ConsoleApp>,
    public_url: String,
    /// `superapp.bundle_bytes_max`, for people: "5 MiB".
    bundle_size_max: String,
    /// What the last form did, or why it was refused.
    notice: Option<String>,
    alert: Option<String>,
    /// A mini-app just registered, with its client secret, shown this once.
    registered: Option<RegisteredNotice>,
}

pub(super) struct RegisteredNotice {
    name: String,
    client_id: String,
    client_secret: String,
}

/// `/console/apps`: the organisation's mini-apps, versions and review, installs, active users
/// and payments received; forms to register a mini-app, upload a version and choose the live one.
pub(super) async fn console_page(State(state): State<ServerState>, request: Request) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    console(
        &state,
        &session,
        request_id(request.extensions()),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

async fn console(
    state: &ServerState,
    session: &PortalSession,
    request_id: agora_domain::RequestId,
    status: StatusCode,
    message: Option<Result<String, String>>,
    registered: Option<RegisteredNotice>,
) -> Response {
    let Some(acting) = session.actor.acting else {
        return crate::ApiError::new(Error::forbidden(
            "portal-partner",
            "the console is for people acting for a partner organisation",
        ))
        .into_response();
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    match state.app.org_miniapps(&call, acting.org_id).await {
        Ok(apps) => page(
            status,
            &ConsolePage {
                nav: Nav::new(session, "console"),
                org_id: acting.org_id.to_string(),
                apps: apps
                    .into_iter()
                    .map(|(app, versions, figures)| ConsoleApp {
                        app,
                        versions,
                        figures,
                    })
                    .collect(),
                public_url: state.app.config().public_url.clone(),
                bundle_size_max: size_text(state.app.config().superapp.bundle_bytes_max),
                notice: message.clone().and_then(Result::ok),
                alert: message.and_then(Result::err),
                registered,
            },
        ),
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

/// A size in bytes as people read it: whole MiB or KiB when exact, else bytes.
fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    match bytes {
        0 => "0 bytes".to_owned(),
        _ if bytes.is_multiple_of(MIB) => format!("{} MiB", bytes / MIB),
        _ if bytes.is_multiple_of(1024) => format!("{} KiB", bytes / 1024),
        _ => format!("{bytes} bytes"),
    }
}

/// What the console's upload forms post: `multipart/form-data` with `csrf_token` and `bundle`
/// (a zip, or a manifest with an external entry as JSON).
struct UploadForm {
    bundle: Vec<u8>,
    is_zip: bool,
}

/// Reads an upload form within `superapp.bundle_bytes_max` (plus room for the form's own
/// fields) and checks its CSRF token.
async fn upload_form(
    state: &ServerState,
    request: Request,
) -> Result<(PortalSession, UploadForm), Response> {
    let session = session(state, request.headers()).await?;
    let request_id = request_id(request.extensions());
    let refuse = |alert: String| {
        let state = state.clone();
        let session = session.clone();
        async move {
            Err(console(
                &state,
                &session,
                request_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(Err(alert)),
                None,
            )
            .await)
        }
    };
    let max = state.app.config().superapp.bundle_bytes_max;
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(max.saturating_add(64 * 1024)).unwrap_or(usize::MAX);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return refuse(format!(
            "The file is larger than {max} bytes, the most this instance accepts (superapp.bundle_bytes_max)."
        ))
        .await;
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let Ok(mut multipart) = axum::extract::Multipart::from_request(request, state).await else {
        return refuse("The form did not arrive whole; choose the file and send it again.".into())
            .await;
    };
    let mut csrf = None;
    let mut bundle = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => {
                return refuse(
                    "The form did not arrive whole; choose the file and send it again.".into(),
                )
                .await;
            }
        };
        match field.name() {
            Some("csrf_token") => csrf = field.text().await.ok(),
            Some("bundle") => {
                let file_name = field.file_name().unwrap_or_default().to_ascii_lowercase();
                let content_type = field.content_type().unwrap_or_default().to_owned();
                let is_zip = !(file_name.ends_with(".json") || content_type == "application/json");
                bundle = field
                    .bytes()
                    .await
                    .ok()
                    .map(|bytes| (bytes.to_vec(), is_zip));
            }
            _ => {}
        }
    }
    if !csrf.is_some_and(|token| {
        super::hashes_equal(token.as_bytes(), session.record.csrf_token.as_bytes())
    }) {
        return Err(super::csrf_refused());
    }
    match bundle {
        Some((bundle, is_zip)) if !bundle.is_empty() => {
            Ok((session, UploadForm { bundle, is_zip }))
        }
        _ => {
            refuse("Choose a bundle (a .zip with manifest.json at its root) to upload.".into())
                .await
        }
    }
}

/// The console's answer to a refused form: the page again, with the reason.
async fn console_refusal(
    state: &ServerState,
    session: &PortalSession,
    request_id: agora_domain::RequestId,
    error: Error,
) -> Response {
    let status = match &error {
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let alert = match &error {
        Error::NotFound { what } => Some(format!("There is no {what}.")),
        _ => alert_text(&error),
    };
    match alert {
        Some(alert) => console(state, session, request_id, status, Some(Err(alert)), None).await,
        None => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

/// `POST /console/apps`: registers a mini-app from its first bundle and shows its client
/// secret, this once.
pub(super) async fn console_register(
    State(state): State<ServerState>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form) = match upload_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let Some(acting) = session.actor.acting else {
        return crate::ApiError::new(Error::forbidden(
            "portal-partner",
            "the console is for people acting for a partner organisation",
        ))
        .into_response();
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    match state
        .app
        .register_miniapp(&call, acting.org_id, &form.bundle, form.is_zip)
        .await
    {
        Ok(registered) => {
            let alert = format!(
                "Registered {} (version 1 is {}).",
                registered.app.name, registered.version.state
            );
            console(
                &state,
                &session,
                request_id,
                StatusCode::CREATED,
                Some(Ok(alert)),
                Some(RegisteredNotice {
                    name: registered.app.name.clone(),
                    client_id: registered.app.id.to_string(),
                    client_secret: registered.client_secret,
                }),
            )
            .await
        }
        Err(error) => console_refusal(&state, &session, request_id, error).await,
    }
}

/// `POST /console/apps/{app_id}/versions`: uploads a new version of a mini-app.
pub(super) async fn console_upload(
    State(state): State<ServerState>,
    Path(app_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form) = match upload_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let uploaded = async {
        let app_id: MiniAppId = app_id.parse()?;
        state
            .app
            .upload_miniapp_version(&call, app_id, &form.bundle, form.is_zip)
            .await
    }
    .await;
    match uploaded {
        Ok(version) => {
            let alert = format!("Uploaded version {}: {}.", version.version, version.state);
            console(
                &state,
                &session,
                request_id,
                StatusCode::CREATED,
                Some(Ok(alert)),
                None,
            )
            .await
        }
        Err(error) => console_refusal(&state, &session, request_id, error).await,
    }
}

#[derive(Deserialize)]
pub(super) struct LiveForm {
    csrf_token: String,
    version: i64,
}
portal_form!(LiveForm, super::incomplete("live version form"));

/// `POST /console/apps/{app_id}/live`: serves an approved version again (a rollback).
pub(super) async fn console_live(
    State(state): State<ServerState>,
    Path(app_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, LiveForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let app_id: MiniAppId = app_id.parse()?;
        state
            .app
            .rollback_miniapp(&call, app_id, form.version)
            .await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/console/apps").into_response(),
        Err(error) => console_refusal(&state, &session, request_id, error).await,
    }
}

pub(super) struct ReviewRow {
    app: MiniAppView,
    version: MiniAppVersionView,
    scopes: String,
}

#[derive(Template)]
#[template(path = "operator_apps.html")]
struct OperatorAppsPage {
    nav: Nav,
    queue: Vec<ReviewRow>,
    apps: Vec<MiniAppView>,
}

/// `/operator/apps`: versions waiting for review, approve or reject with a reason.
pub(super) async fn operator_apps_page(
    State(state): State<ServerState>,
    request: Request,
) -> Response {
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id(request.extensions()));
    let loaded = async {
        let queue = state.app.miniapp_review_queue(&call).await?;
        let apps = state.app.miniapp_directory(&call, None, None).await?;
        Ok::<_, Error>((queue, apps))
    }
    .await;
    match loaded {
        Ok((queue, apps)) => page(
            StatusCode::OK,
            &OperatorAppsPage {
                nav: Nav::new(&session, "operator-apps"),
                queue: queue
                    .into_iter()
                    .map(|(app, version)| ReviewRow {
                        scopes: version
                            .manifest
                            .scopes
                            .iter()
                            .map(|request| format!("{} ({})", request.scope, request.reason))
                            .collect::<Vec<_>>()
                            .join("; "),
                        app,
                        version,
                    })
                    .collect(),
                apps,
            },
        ),
        Err(error) => crate::ApiError::new(error).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct ReviewForm {
    csrf_token: String,
    decision: String,
    #[serde(default)]
    reason: String,
}
portal_form!(ReviewForm, super::incomplete("review form"));

/// `POST /operator/apps/{app_id}/versions/{version}/review`.
pub(super) async fn operator_review(
    State(state): State<ServerState>,
    Path((app_id, version)): Path<(String, i64)>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, ReviewForm) = match signed_in_form(&state, request).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let call = agora_app::Call::new(&session.actor, request_id);
    let result = async {
        let app_id: MiniAppId = app_id.parse()?;
        state
            .app
            .review_miniapp_version(
                &call,
                app_id,
                version,
                ReviewDecision {
                    decision: form.decision,
                    reason: form.reason,
                },
            )
            .await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/operator/apps").into_response(),
        Err(error) => crate::ApiError::new(error)
            .with_request_id(request_id)
            .into_response(),
    }
}

/// Percent-encodes a query value.
pub(super) fn query_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
