//! `/api/v1/plugins`: upload, list, get, download and delete versions.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::meta::PluginVersion;
use crate::registry::{check_name, check_version};

/// A plugin in the list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PluginSummary {
    /// Its name.
    pub name: String,
    /// Its versions, oldest first.
    pub versions: Vec<String>,
    /// The newest version's world.
    pub world: String,
    /// Per version, the jobs that have not ended and run it (their ids).
    pub used_by: std::collections::BTreeMap<String, Vec<String>>,
}

/// Lists the plugins, each with its versions.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses((status = 200, description = "The plugins", body = Vec<PluginSummary>)))]
pub(super) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<PluginSummary>>> {
    let mut list: Vec<PluginSummary> = Vec::new();
    for v in state.registry.all()? {
        match list.last_mut() {
            Some(last) if last.name == v.name => {
                last.versions.push(v.version);
                last.world = v.world;
            }
            _ => list.push(PluginSummary {
                name: v.name,
                versions: vec![v.version],
                world: v.world,
                used_by: Default::default(),
            }),
        }
    }
    for job in state.jobs.meta.jobs()?.into_iter().filter(|j| !j.state.is_terminal()) {
        for pinned in job.plugins.values() {
            if let Some(p) = list.iter_mut().find(|p| p.name == pinned.name) {
                let users = p.used_by.entry(pinned.version.clone()).or_default();
                if !users.contains(&job.id) {
                    users.push(job.id.clone());
                }
            }
        }
    }
    Ok(Json(list))
}

/// Lists the versions of a plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/versions", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "Its versions, oldest first", body = Vec<PluginVersion>),
        (status = 400, description = "Not a plugin name", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub(super) async fn versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PluginVersion>>> {
    check_name(&name)?;
    Ok(Json(state.registry.versions(&name)?))
}

fn checked(name: &str, version: &str) -> ApiResult<()> {
    check_name(name)?;
    check_version(version).map(drop)
}

/// One version's metadata.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name"), ("version" = String, Path, description = "A semantic version")),
    responses((status = 200, description = "The version", body = PluginVersion),
        (status = 400, description = "Not a name or version", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PluginVersion>> {
    checked(&name, &version)?;
    Ok(Json(state.registry.get(&name, &version)?))
}

/// Uploads a component as a version: checked (a component of a
/// `weir:plugin` world this host supports) and compiled before it is
/// visible. Versions are immutable.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name"), ("version" = String, Path, description = "A semantic version")),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component's bytes"),
    responses((status = 201, description = "Uploaded", body = PluginVersion),
        (status = 200, description = "The same bytes were there already", body = PluginVersion),
        (status = 400, description = "Bad name or version, an empty or cut-off upload", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 409, description = "Other bytes under this version", body = ErrorBody),
        (status = 413, description = "Over the upload limit", body = ErrorBody),
        (status = 415, description = "Not application/wasm", body = ErrorBody),
        (status = 422, description = "Not a component this host runs", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn upload(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && kind != "application/wasm"
        && kind != "application/octet-stream"
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!("an upload is a Wasm component: send it as application/wasm, not {kind}"),
        ));
    }
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let uploaded = state.registry.upload(&name, &version, length, body).await?;
    let status = if uploaded.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(uploaded.version)).into_response())
}

/// The version's component bytes.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/versions/{version}/wasm", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name"), ("version" = String, Path, description = "A semantic version")),
    responses((status = 200, description = "The component", body = Vec<u8>, content_type = "application/wasm"),
        (status = 400, description = "Not a name or version", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody)))]
pub(super) async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    checked(&name, &version)?;
    let v = state.registry.get(&name, &version)?;
    let bytes = tokio::fs::read(state.registry.blob(&v.sha256))
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the blob of {name}@{version}: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

/// Deletes a version (refused while a running job uses it).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name"), ("version" = String, Path, description = "A semantic version")),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a name or version", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 409, description = "A running job uses it", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    checked(&name, &version)?;
    state.registry.delete(&name, &version)?;
    Ok(StatusCode::NO_CONTENT)
}
