//! `/api/v1/jobs`: submit, list, get, failures, cancel.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::meta::Failure;
use crate::view::{JobSummary, JobView};

/// Blocking work (parsing, compiling, starting) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a request's work failed: {e}")))?
}

pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
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
    let jobs = state.jobs.clone();
    let view = blocking(move || {
        let record = jobs.submit(&text, format)?;
        jobs.view(&record.id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<JobSummary>>> {
    Ok(Json(state.jobs.list()?))
}

pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.jobs.view(&id)?))
}

pub(super) async fn failures(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<Failure>>> {
    Ok(Json(state.jobs.failures(&id)?))
}

pub(super) async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.jobs.cancel(&id)?))
}
