//! Datasets: streaming uploads (a new dataset or its next version), the schema and classes, the
//! versions, rows as of any version, and deletion. Only the owning organisation reaches these.

use agora_app::{DatasetRows, DatasetView, Page, UploadOutcome};
use agora_domain::OrgId;
use agora_domain::dataset::{ColumnClassing, DatasetVersion, UploadFormat};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ServerState;
use crate::api::PageParams;
use crate::error::{ApiError, Problem, ProblemExtra, problem_response};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

fn org(caller: &Caller, text: &str) -> ApiResult<OrgId> {
    text.parse().map_err(|e| caller.fail(e))
}

/// Uploads a file as a new dataset (version 1, answered `201`) or as the next version of the
/// organisation's dataset of that name (`200`). The body is streamed: CSV with a header line
/// (`text/csv`), JSON lines (`application/x-ndjson`), or Parquet
/// (`application/vnd.apache.parquet`). A malformed file, or one whose columns do not match the
/// dataset's, is refused with the line and column of its first error, and nothing of it is written.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/datasets/{name}/versions", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path, description = "a-z, 0-9 and _, starting with a letter")),
    request_body(content = Vec<u8>, description = "The file, as text/csv, application/x-ndjson or application/vnd.apache.parquet", content_type = "text/csv"),
    responses(
        (status = 201, description = "The dataset was created", body = UploadOutcome),
        (status = 200, description = "A version was appended", body = UploadOutcome),
        (status = 400, description = "The file is malformed: `detail` names the line and column", body = Problem),
        (status = 403, body = Problem),
        (status = 413, description = "Larger than `upload_bytes_max`", body = Problem),
        (status = 415, description = "Not CSV, JSON lines or Parquet", body = Problem),
        (status = 429, description = "More rows than `upload_rows_max`", body = Problem),
    ))]
pub async fn upload(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let org_id = org(&caller, &org_id)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(format) = UploadFormat::from_media_type(media_type) else {
        return Ok(problem_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "an upload's Content-Type is {}, not `{media_type}`",
                UploadFormat::MEDIA_TYPES
            ),
            ProblemExtra {
                request_id: Some(caller.request_id),
                ..ProblemExtra::default()
            },
        ));
    };
    let outcome = state
        .app
        .upload_dataset(
            &caller.call(),
            org_id,
            &name,
            format,
            body.into_data_stream(),
        )
        .await
        .map_err(|e| caller.fail(e))?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// The organisation's datasets in name order.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/datasets", tag = "datasets",
    params(("org_id" = String, Path), PageParams),
    responses((status = 200, body = Page<DatasetView>), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<DatasetView>>> {
    let org_id = org(&caller, &org_id)?;
    let datasets = state
        .app
        .datasets(&caller.call(), org_id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(datasets))
}

/// One dataset: its columns with their types and classes, and its current version.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/datasets/{name}", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = DatasetView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
) -> ApiResult<Json<DatasetView>> {
    let org_id = org(&caller, &org_id)?;
    let dataset = state
        .app
        .dataset(&caller.call(), org_id, &name)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(dataset))
}

/// Deletes a dataset: it is no longer listed, read or queried, and the protocols that use it are
/// suspended (event `dataset.deleted`). Its name is free again.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/datasets/{name}", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = DatasetView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
) -> ApiResult<Json<DatasetView>> {
    let org_id = org(&caller, &org_id)?;
    let dataset = state
        .app
        .delete_dataset(&caller.call(), org_id, &name)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(dataset))
}

/// A dataset's versions, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/datasets/{name}/versions", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path), PageParams),
    responses((status = 200, body = Page<DatasetVersion>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn versions(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<DatasetVersion>>> {
    let org_id = org(&caller, &org_id)?;
    let versions = state
        .app
        .dataset_versions(
            &caller.call(),
            org_id,
            &name,
            page.cursor.as_deref(),
            page.limit,
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(versions))
}

/// Which rows to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RowsParams {
    /// The version to read as of; the current one when absent.
    pub version: Option<i64>,
    /// At most this many rows: 1 to 1000, 100 by default.
    pub limit: Option<u32>,
}

/// Rows of a dataset as of a version.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/datasets/{name}/rows", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path), RowsParams),
    responses((status = 200, body = DatasetRows), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rows(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
    Query(params): Query<RowsParams>,
) -> ApiResult<Json<DatasetRows>> {
    let org_id = org(&caller, &org_id)?;
    let rows = state
        .app
        .dataset_rows(&caller.call(), org_id, &name, params.version, params.limit)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(rows))
}

/// Gives the dataset's columns their classes, replacing the earlier ones; a column left out is
/// unclassified, which means `blocked`. A column classed twice, a column the dataset does not
/// have, or a class its type cannot hold is refused naming the column.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/datasets/{name}/classes", tag = "datasets",
    params(("org_id" = String, Path), ("name" = String, Path)),
    request_body = Vec<ColumnClassing>,
    responses((status = 200, body = DatasetView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn classify(
    State(state): State<ServerState>,
    caller: Caller,
    Path((org_id, name)): Path<(String, String)>,
    Json(classings): Json<Vec<ColumnClassing>>,
) -> ApiResult<Json<DatasetView>> {
    let org_id = org(&caller, &org_id)?;
    let dataset = state
        .app
        .classify_dataset(&caller.call(), org_id, &name, classings)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(dataset))
}
