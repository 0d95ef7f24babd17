//! The HTTP API: `router` builds it over a server's state, so tests call it
//! without a socket.

mod jobs;
mod plugins;
mod savepoints;

pub use plugins::PluginSummary;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::auth::{Auth, require_token};
use crate::error::ApiError;
use crate::jobs::JobManager;
use crate::registry::Registry;

/// The OpenAPI document of the API, generated from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Weir control plane", description = "Plugins, jobs and metrics of a `weir serve`."),
    paths(
        health,
        plugins::list, plugins::versions, plugins::get, plugins::upload, plugins::download, plugins::delete,
        jobs::submit, jobs::list, jobs::get, jobs::failures, jobs::checkpoints, jobs::cancel, jobs::upgrade,
        savepoints::take, savepoints::list, savepoints::get, savepoints::delete, savepoints::check, savepoints::fork,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "plugins", description = "The plugin registry"),
        (name = "jobs", description = "Jobs"),
        (name = "savepoints", description = "Savepoints: take, list, check a restore")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Most bytes of a job spec.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    /// The plugin registry.
    pub registry: Arc<Registry>,
    /// The jobs.
    pub jobs: Arc<JobManager>,
    /// Every job's metrics.
    pub metrics: weir_runtime::Metrics,
}

/// The API over `state`, behind `auth`.
pub fn router(state: AppState, auth: Arc<Auth>) -> Router {
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/plugins", get(plugins::list))
        .route("/api/v1/plugins/{name}/versions", get(plugins::versions))
        .route(
            "/api/v1/plugins/{name}/versions/{version}",
            get(plugins::get).put(plugins::upload).delete(plugins::delete),
        )
        .route("/api/v1/plugins/{name}/versions/{version}/wasm", get(plugins::download))
        .route("/api/v1/jobs", get(jobs::list).post(jobs::submit).layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)))
        .route("/api/v1/jobs/{id}", get(jobs::get))
        .route("/api/v1/jobs/{id}/failures", get(jobs::failures))
        .route("/api/v1/jobs/{id}/checkpoints", get(jobs::checkpoints))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/v1/jobs/{id}/savepoints", post(savepoints::take))
        .route("/api/v1/jobs/{id}/nodes/{node}/upgrade", post(jobs::upgrade))
        .route("/api/v1/savepoints", get(savepoints::list))
        .route("/api/v1/savepoints/{name}", get(savepoints::get).delete(savepoints::delete))
        .route("/api/v1/savepoints/{name}/check", post(savepoints::check).layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)))
        .route("/api/v1/savepoints/{name}/fork", post(savepoints::fork))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    crate::ui::router()
        .merge(api.layer(axum::middleware::from_fn_with_state(auth, require_token)))
        .layer(axum::middleware::from_fn(log_request))
}

/// Logs every request with its status and duration (`weir_server::api`
/// target): errors of clients at debug, of the server at error.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match status {
        500.. => tracing::error!(%method, %path, status, ms, "request failed"),
        400.. => tracing::debug!(%method, %path, status, ms, "request refused"),
        _ => tracing::debug!(%method, %path, status, ms, "request"),
    }
    response
}

/// Whether the server answers.
#[utoipa::path(get, path = "/api/v1/health", tag = "server", responses((status = 200, description = "It does")))]
async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn openapi() -> impl IntoResponse {
    axum::Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("there is no {} here: the API is under /api/v1, the console at /", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
