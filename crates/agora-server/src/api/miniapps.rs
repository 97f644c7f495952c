//! Mini-apps for partners' backends and the operator: registering, versions, review, rollback,
//! figures, and payment requests addressed to customers by their pairwise subject id.

use agora_app::{
    MiniAppFiguresView, MiniAppVersionView, MiniAppView, NewPaymentRequest, PaymentRequestView,
    RegisteredMiniApp, ReviewDecision,
};
use agora_domain::miniapp::AppCategory;
use agora_domain::{MiniAppId, OrgId, PaymentRequestId};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: std::str::FromStr<Err = agora_domain::Error>>(
    caller: &Caller,
    text: &str,
) -> ApiResult<T> {
    text.parse().map_err(|e| caller.fail(e))
}

/// Reads an upload: a bundle zip (`application/zip`) or a manifest alone (`application/json`),
/// within `superapp.bundle_bytes_max`.
async fn upload(
    state: &ServerState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(Vec<u8>, bool)> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let is_zip = match media_type.split(';').next().unwrap_or_default().trim() {
        "application/zip" | "application/x-zip-compressed" => true,
        "application/json" => false,
        other => {
            return Err(caller.fail(agora_domain::Error::invalid(
                "Content-Type",
                format!("upload a bundle as application/zip or a manifest with an external entry as application/json, not `{other}`"),
            )));
        }
    };
    let max = state.app.config().superapp.bundle_bytes_max;
    let bytes = axum::body::to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| {
            caller.fail(agora_domain::Error::LimitExceeded {
                limit: "superapp.bundle_bytes_max".to_owned(),
                message: format!(
                    "the upload is larger than {max} bytes (superapp.bundle_bytes_max)"
                ),
            })
        })?;
    Ok((bytes.to_vec(), is_zip))
}

/// Registers a mini-app for the organisation from its first version: a zip with
/// `manifest.json` at its root (its files are served on the mini-app's own origin), or a
/// manifest alone with an external entry. The client secret for OpenID Connect is shown once.
/// The version waits for the operator's review unless `superapp.auto_approve` is on.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/miniapps", tag = "superapp",
    params(("org_id" = String, Path)),
    request_body(content = Vec<u8>, description = "A bundle zip (application/zip) or a manifest (application/json)", content_type = "application/zip"),
    responses(
        (status = 201, body = RegisteredMiniApp),
        (status = 400, description = "A bad manifest or bundle: `field` and `detail` name the culprit", body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "The slug is taken", body = Problem),
        (status = 429, description = "Over `superapp.bundle_bytes_max` or `bundle_files_max`", body = Problem),
    ))]
pub async fn register(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<RegisteredMiniApp>)> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let (bytes, is_zip) = upload(&state, &caller, &headers, body).await?;
    let registered = state
        .app
        .register_miniapp(&caller.call(), org_id, &bytes, is_zip)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// One mini-app of the organisation: versions and review, and its figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct MiniAppDetail {
    pub app: MiniAppView,
    pub versions: Vec<MiniAppVersionView>,
    pub figures: MiniAppFiguresView,
}

/// The organisation's mini-apps, each with its versions and figures.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/miniapps", tag = "superapp",
    params(("org_id" = String, Path)),
    responses((status = 200, body = Vec<MiniAppDetail>), (status = 403, body = Problem)))]
pub async fn of_org(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Vec<MiniAppDetail>>> {
    let org_id: OrgId = parse(&caller, &org_id)?;
    let apps = state
        .app
        .org_miniapps(&caller.call(), org_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(
        apps.into_iter()
            .map(|(app, versions, figures)| MiniAppDetail {
                app,
                versions,
                figures,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// Words that must all appear in the name, description or seller.
    pub q: Option<String>,
    /// One of health, food, shopping, travel, finance, services, other.
    pub category: Option<String>,
}

/// The directory: every approved mini-app, searched and narrowed by category.
#[utoipa::path(get, path = "/api/v1/miniapps", tag = "superapp",
    params(DirectoryQuery),
    responses((status = 200, body = Vec<MiniAppView>), (status = 400, body = Problem)))]
pub async fn directory(
    State(state): State<ServerState>,
    caller: Caller,
    Query(query): Query<DirectoryQuery>,
) -> ApiResult<Json<Vec<MiniAppView>>> {
    let category = query
        .category
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(str::parse::<AppCategory>)
        .transpose()
        .map_err(|e| caller.fail(e))?;
    let apps = state
        .app
        .miniapp_directory(&caller.call(), query.q.as_deref(), category)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(apps))
}

/// One mini-app with its versions and figures (its organisation, or the operator).
#[utoipa::path(get, path = "/api/v1/miniapps/{app_id}", tag = "superapp",
    params(("app_id" = String, Path)),
    responses((status = 200, body = MiniAppDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<MiniAppDetail>> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let (app, versions, figures) = state
        .app
        .miniapp_detail(&caller.call(), app_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(MiniAppDetail {
        app,
        versions,
        figures,
    }))
}

/// Uploads a new version (same bodies as registering; the slug cannot change).
#[utoipa::path(post, path = "/api/v1/miniapps/{app_id}/versions", tag = "superapp",
    params(("app_id" = String, Path)),
    request_body(content = Vec<u8>, description = "A bundle zip (application/zip) or a manifest (application/json)", content_type = "application/zip"),
    responses(
        (status = 201, body = MiniAppVersionView),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 429, body = Problem),
    ))]
pub async fn upload_version(
    State(state): State<ServerState>,
    caller: Caller,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<MiniAppVersionView>)> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let (bytes, is_zip) = upload(&state, &caller, &headers, body).await?;
    let version = state
        .app
        .upload_miniapp_version(&caller.call(), app_id, &bytes, is_zip)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// The operator approves (it becomes the live version) or rejects (with a reason) a version.
#[utoipa::path(post, path = "/api/v1/miniapps/{app_id}/versions/{version}/review", tag = "superapp",
    params(("app_id" = String, Path), ("version" = i64, Path)),
    request_body = ReviewDecision,
    responses(
        (status = 200, body = MiniAppVersionView),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "Not waiting for review", body = Problem),
    ))]
pub async fn review(
    State(state): State<ServerState>,
    caller: Caller,
    Path((app_id, version)): Path<(String, i64)>,
    Json(decision): Json<ReviewDecision>,
) -> ApiResult<Json<MiniAppVersionView>> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let version = state
        .app
        .review_miniapp_version(&caller.call(), app_id, version, decision)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// An approved version to serve again.
    pub version: i64,
}

/// Serves an earlier approved version again.
#[utoipa::path(post, path = "/api/v1/miniapps/{app_id}/rollback", tag = "superapp",
    params(("app_id" = String, Path)),
    request_body = Rollback,
    responses((status = 200, body = MiniAppView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn rollback(
    State(state): State<ServerState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Json(input): Json<Rollback>,
) -> ApiResult<Json<MiniAppView>> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let app = state
        .app
        .rollback_miniapp(&caller.call(), app_id, input.version)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(app))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItem {
    pub app: MiniAppView,
    pub version: MiniAppVersionView,
}

/// Versions waiting for the operator's review, oldest first.
#[utoipa::path(get, path = "/api/v1/miniapp-reviews", tag = "superapp",
    responses((status = 200, body = Vec<ReviewItem>), (status = 403, body = Problem)))]
pub async fn review_queue(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ReviewItem>>> {
    let queue = state
        .app
        .miniapp_review_queue(&caller.call())
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(
        queue
            .into_iter()
            .map(|(app, version)| ReviewItem { app, version })
            .collect(),
    ))
}

/// Asks a customer (named by the pairwise `subject` the mini-app was given) to pay for the
/// organisation's listings. Agora prices it; the customer sees it in the portal's cashier when
/// the mini-app calls `requestPayment({paymentRequest: id})`, and only they can confirm it.
#[utoipa::path(post, path = "/api/v1/miniapps/{app_id}/payment-requests", tag = "superapp",
    params(("app_id" = String, Path)),
    request_body = NewPaymentRequest,
    responses(
        (status = 201, body = PaymentRequestView),
        (status = 400, description = "A listing that is not the organisation's, a missing slot, …", body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No customer has that subject for this mini-app", body = Problem),
    ))]
pub async fn request_payment(
    State(state): State<ServerState>,
    caller: Caller,
    Path(app_id): Path<String>,
    Json(input): Json<NewPaymentRequest>,
) -> ApiResult<(StatusCode, Json<PaymentRequestView>)> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let view = state
        .app
        .request_payment_from_backend(&caller.call(), app_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A payment request's outcome, with the notification the instance signed (verify it with
/// `/oauth/jwks.json`): how the partner learns it was paid, never from the mini-app's word.
#[utoipa::path(get, path = "/api/v1/miniapps/{app_id}/payment-requests/{payment_request_id}", tag = "superapp",
    params(("app_id" = String, Path), ("payment_request_id" = String, Path)),
    responses((status = 200, body = PaymentRequestView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn payment_request(
    State(state): State<ServerState>,
    caller: Caller,
    Path((app_id, id)): Path<(String, String)>,
) -> ApiResult<Json<PaymentRequestView>> {
    let app_id: MiniAppId = parse(&caller, &app_id)?;
    let id: PaymentRequestId = parse(&caller, &id)?;
    let view = state
        .app
        .partner_payment_request(&caller.call(), app_id, id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(view))
}
