//! `/api/v1/jobs`: submit, list, get, failures, cancel.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::meta::{CheckpointEntry, Failure};
use crate::view::{JobSummary, JobView};

/// Blocking work (parsing, compiling, starting) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a request's work failed: {e}")))?
}

/// Submits a job spec (YAML or JSON) naming plugins as `name@version` or
/// `name@^1.2`; they are resolved now and recorded.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body(content = String, content_type = "application/yaml", description = "The job spec (also application/json)"),
    responses((status = 201, description = "Submitted and started", body = JobView),
        (status = 400, description = "A malformed spec (the message names the field and line)", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 409, description = "Its checkpoint dir is another job's", body = ErrorBody),
        (status = 413, description = "Over 1 MiB", body = ErrorBody),
        (status = 415, description = "Neither YAML nor JSON", body = ErrorBody),
        (status = 422, description = "A plugin that is missing or does not fit its node", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let (text, format) = spec_body(&headers, body)?;
    let jobs = state.jobs.clone();
    let view = blocking(move || {
        let record = jobs.submit(&text, format)?;
        jobs.view(&record.id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A JSON request body, or the client's mistake: 415 for another content
/// type, 400 (saying what the body should be) for anything else.
pub(super) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    expected: &str,
) -> ApiResult<T> {
    body.map(|Json(t)| t).map_err(|r| match r.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(r.status(), "content_type", r.body_text()),
        _ => ApiError::bad_request("body_invalid", format!("{expected}: {}", r.body_text())),
    })
}

/// A job spec sent as a request's body: its text and format.
pub(super) fn spec_body(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(String, weir_spec::Format)> {
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            r.status(),
            "spec_too_large",
            format!("a job spec may have at most {} bytes", super::MAX_SPEC_BYTES),
        ),
        status => ApiError::new(status, "body_invalid", r.body_text()),
    })?;
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/yaml");
    let format = match kind.split(';').next().unwrap_or_default().trim() {
        "application/json" => weir_spec::Format::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/plain" => weir_spec::Format::Yaml,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                format!("a job spec is YAML (application/yaml) or JSON (application/json), not {other}"),
            ));
        }
    };
    let text = String::from_utf8(body.to_vec())
        .map_err(|e| ApiError::bad_request("spec_invalid", format!("the spec is not UTF-8: {e}")))?;
    Ok((text, format))
}

/// Lists the jobs, oldest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    responses((status = 200, description = "The jobs", body = Vec<JobSummary>)))]
pub(super) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<JobSummary>>> {
    Ok(Json(state.jobs.list()?))
}

/// One job: nodes with parallelism and tasks, figures, rates, watermarks,
/// checkpoints, restarts, plugin versions, failures.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.jobs.view(&id)?))
}

/// A job's failures with their causes, oldest first.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/failures", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "Its failures", body = Vec<Failure>),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub(super) async fn failures(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<Failure>>> {
    Ok(Json(state.jobs.failures(&id)?))
}

/// A job's last checkpoints (completed and aborted, at most 100), oldest
/// first: kept when it ends and across restarts of the server.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/checkpoints", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "Its checkpoints", body = Vec<CheckpointEntry>),
        (status = 404, description = "No such job", body = ErrorBody)))]
pub(super) async fn checkpoints(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CheckpointEntry>>> {
    Ok(Json(state.jobs.checkpoints(&id)?))
}

/// Cancels a job: it stops at once and is not resumed.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "Cancelled", body = JobView),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "It has ended", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.jobs.cancel(&id)?))
}

/// Upgrades an operator of a running job to another plugin version in
/// place, at a checkpoint barrier: records before it go to the old version,
/// records after it to the new, exactly once. A version that would fail (it
/// does not initialize, is of another world, declares a state of another
/// kind) is refused and the old one runs on.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/nodes/{node}/upgrade", tag = "jobs",
    params(("id" = String, Path, description = "The job's id"), ("node" = String, Path, description = "The operator node")),
    request_body(content = crate::upgrades::UpgradeRequest, description = "`{\"plugin\": \"name@version\"}`"),
    responses((status = 200, description = "Upgraded", body = crate::upgrades::UpgradeView),
        (status = 400, description = "A malformed body or plugin reference", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such job or node", body = ErrorBody),
        (status = 409, description = "The job has ended or is not running yet, or the upgrade's checkpoint failed", body = ErrorBody),
        (status = 422, description = "No such plugin version, or it would not run there (the old one runs on)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn upgrade(
    State(state): State<AppState>,
    Path((id, node)): Path<(String, String)>,
    body: Result<Json<crate::upgrades::UpgradeRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<crate::upgrades::UpgradeView>> {
    let request = json_body(body, "an upgrade is `{\"plugin\": \"name@version\"}`")?;
    let jobs = state.jobs.clone();
    Ok(Json(blocking(move || jobs.upgrade(&id, &node, request)).await?))
}
