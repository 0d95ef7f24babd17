//! The Weir control plane behind `weir serve`: a plugin registry, a job
//! manager and their metadata in a data directory, served over HTTP (axum)
//! under `/api/v1`, with Prometheus metrics at `/metrics` and a web console
//! at `/` ([`ui`]).
//!
//! The HTTP layer drives jobs only through the runtime's job handles;
//! [`api::router`] builds the API over a [`Server`] so tests can call it
//! without a socket:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = weir_server::ServerConfig::new("/var/lib/weir".into());
//! let server = weir_server::Server::open(&config)?;
//! let listener = tokio::net::TcpListener::bind(config.addr).await?;
//! axum::serve(listener, server.router()).await?;
//! # Ok(()) }
//! ```
//!
//! The data directory holds `meta.redb` (the metadata database),
//! `plugins/<sha256>.wasm` (uploaded components), `cache/` (compiled
//! plugins), `jobs/<id>/` (each job's checkpoints and state),
//! `savepoints/<name>/` (savepoints, never deleted by the server) and `token`.

pub mod api;
pub mod auth;
pub mod error;
pub mod forks;
pub mod jobs;
pub mod meta;
pub mod registry;
mod savepoints;
pub mod ui;
pub mod upgrades;
pub mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{ApiError, ApiResult};

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8081";
/// The default upload limit.
pub const DEFAULT_MAX_UPLOAD: u64 = 64 << 20;

/// How a server starts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where everything is kept.
    pub data_dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Most bytes of one plugin upload.
    pub max_upload: u64,
    /// The token file (else `DATA_DIR/token`, made at first start).
    pub token_file: Option<PathBuf>,
}

impl ServerConfig {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            max_upload: DEFAULT_MAX_UPLOAD,
            token_file: None,
        }
    }
}

/// A server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file or directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    /// The Wasm engine could not be set up.
    #[error(transparent)]
    Engine(#[from] weir_wasm::PluginError),
    /// A non-loopback address without a token file.
    #[error(
        "{addr} is not a loopback address: a server reachable from other machines needs --token-file (every \
         call, reads too, then needs its token)"
    )]
    Exposed {
        /// The address.
        addr: SocketAddr,
    },
}

impl ServerError {
    /// An I/O error on `path`, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
        move |source| ServerError::Io { path: path.to_path_buf(), source }
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A server's state, opened from its data directory.
pub struct Server {
    state: api::AppState,
    auth: Arc<auth::Auth>,
    token_path: PathBuf,
    resumed: usize,
}

impl Server {
    /// Opens the data directory (making it at first start), cleans what a
    /// crash left, and resumes the jobs that were running.
    pub fn open(config: &ServerConfig) -> Result<Server, ServerError> {
        let loopback = config.addr.ip().is_loopback();
        if !loopback && config.token_file.is_none() {
            return Err(ServerError::Exposed { addr: config.addr });
        }
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(ServerError::io(dir))?;
        let (token, token_path) =
            auth::load_or_create(config.token_file.as_deref(), &dir.join("token")).map_err(ServerError::io(dir))?;
        let meta = Arc::new(meta::Metadata::open(&dir.join("meta.redb"))?);
        let engine = weir_wasm::PluginEngine::with_options(weir_wasm::EngineOptions {
            cache: Some(dir.join("cache")),
            fuel: false,
        })?;
        let registry = Arc::new(
            registry::Registry::open(meta.clone(), engine, dir, config.max_upload).map_err(ServerError::io(dir))?,
        );
        let cleaned = registry.clean()?;
        if cleaned > 0 {
            tracing::info!(files = cleaned, "removed what an earlier run left half-done");
        }
        let metrics = weir_runtime::Metrics::new();
        let jobs = Arc::new(jobs::JobManager::new(meta, registry.clone(), metrics.clone(), dir));
        let resumed = jobs.resume_all()?;
        let state = api::AppState { registry, jobs, metrics };
        Ok(Server { state, auth: Arc::new(auth::Auth::new(&token, !loopback)), token_path, resumed })
    }

    /// The HTTP API.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone(), self.auth.clone())
    }

    /// Where the token is.
    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    /// How many jobs it resumed when it opened.
    pub fn resumed(&self) -> usize {
        self.resumed
    }
}
