//! `/api/v1/jobs/{id}/savepoints` and `/api/v1/savepoints`: take, list,
//! show and check savepoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::AppState;
use super::jobs::{blocking, json_body, spec_body};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::view::{RestoreCheckView, SavepointView};

/// How to take a savepoint.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavepointRequest {
    /// Stop the job at the savepoint (its sinks commit; nothing is left in
    /// flight).
    #[serde(default)]
    pub stop: bool,
}

/// Takes a savepoint of a running job now and waits until it is written.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/savepoints", tag = "savepoints",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = Option<SavepointRequest>, description = "`{\"stop\": true}` stops the job at it"),
    responses((status = 201, description = "Written", body = SavepointView),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has ended, is not running yet, or the savepoint failed", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn take(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SavepointView>)> {
    let request: SavepointRequest = match body.iter().all(u8::is_ascii_whitespace) {
        true => SavepointRequest::default(),
        false => serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("body_invalid", format!("a savepoint request is `{{\"stop\": bool}}`: {e}"))
        })?,
    };
    let jobs = state.jobs.clone();
    let view = blocking(move || jobs.savepoint(&id, request.stop)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every savepoint, oldest first; `parent` makes them a lineage tree.
#[utoipa::path(get, path = "/api/v1/savepoints", tag = "savepoints",
    responses((status = 200, description = "The savepoints", body = Vec<SavepointView>)))]
pub(super) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<SavepointView>>> {
    let jobs = state.jobs.clone();
    Ok(Json(blocking(move || jobs.savepoints()).await?))
}

/// One savepoint, its files verified against their checksums.
#[utoipa::path(get, path = "/api/v1/savepoints/{name}", tag = "savepoints",
    params(("name" = String, Path, description = "The savepoint's name")),
    responses((status = 200, description = "The savepoint", body = SavepointView),
        (status = 404, description = "No such savepoint", body = ErrorBody),
        (status = 409, description = "It is damaged", body = ErrorBody)))]
pub(super) async fn get(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<SavepointView>> {
    let jobs = state.jobs.clone();
    Ok(Json(blocking(move || jobs.savepoint_view(&name)).await?))
}

/// Deletes a savepoint (the server never does on its own).
#[utoipa::path(delete, path = "/api/v1/savepoints/{name}", tag = "savepoints",
    params(("name" = String, Path, description = "The savepoint's name")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such savepoint", body = ErrorBody),
        (status = 409, description = "A job that has not ended starts from it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let jobs = state.jobs.clone();
    blocking(move || jobs.delete_savepoint(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reports, without starting anything, whether a job of the spec in the
/// body could start from the savepoint: per node, states mapped, new,
/// carried along or refused, parallelism and plugin versions before and
/// after.
#[utoipa::path(post, path = "/api/v1/savepoints/{name}/check", tag = "savepoints",
    params(("name" = String, Path, description = "The savepoint's name")),
    request_body(content = String, content_type = "application/yaml", description = "The job spec (also application/json)"),
    responses((status = 200, description = "The report (`accepted` says whether it would start)", body = RestoreCheckView),
        (status = 400, description = "A malformed spec", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such savepoint", body = ErrorBody),
        (status = 409, description = "The savepoint is damaged", body = ErrorBody),
        (status = 413, description = "Over 1 MiB", body = ErrorBody),
        (status = 415, description = "Neither YAML nor JSON", body = ErrorBody),
        (status = 422, description = "A plugin that is missing or does not fit its node", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn check(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<RestoreCheckView>> {
    let (text, format) = spec_body(&headers, body)?;
    let jobs = state.jobs.clone();
    Ok(Json(blocking(move || jobs.check_savepoint(&name, &text, format)).await?))
}

/// Starts one job per version from the savepoint, each running another
/// version of one node and writing to sinks of its own (their paths, and
/// the job's name, get `-<label>`), to compare their outputs (`weir diff`).
/// All start or none does.
#[utoipa::path(post, path = "/api/v1/savepoints/{name}/fork", tag = "savepoints",
    params(("name" = String, Path, description = "The savepoint's name")),
    request_body(content = crate::forks::ForkRequest,
        description = "`{\"node\": \"averages\", \"versions\": {\"a\": \"sensor-average@1.0.0\", \"b\": \"sensor-average@2.0.0\"}}`"),
    responses((status = 201, description = "Every fork started", body = crate::forks::ForkView),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such savepoint", body = ErrorBody),
        (status = 409, description = "The savepoint is damaged, or a fork's checkpoint dir is taken", body = ErrorBody),
        (status = 422, description = "A fork that would not start (the others are cancelled)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn fork(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<crate::forks::ForkRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<crate::forks::ForkView>)> {
    let request = json_body(body, "a fork is `{\"node\": …, \"versions\": {\"a\": \"name@version\", …}}`")?;
    let jobs = state.jobs.clone();
    let view = blocking(move || jobs.fork(&name, &request)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
