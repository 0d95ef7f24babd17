//! `weir serve`: the control plane on one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// `weir serve`'s options.
#[derive(Args, Debug)]
pub struct Serve {
    /// Where plugins, jobs, checkpoints and the token are kept.
    #[arg(long)]
    data_dir: PathBuf,
    /// Where to listen (loopback by default; another address needs --token-file).
    #[arg(long, default_value = weir_server::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Most bytes of one plugin upload (e.g. 64MiB).
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    max_upload: u64,
    /// The token file (else DATA_DIR/token, made at first start).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    weir_spec::bytes::parse(text)
}

pub fn serve(options: Serve) -> anyhow::Result<()> {
    let config = weir_server::ServerConfig {
        data_dir: options.data_dir,
        addr: options.addr,
        max_upload: options.max_upload,
        token_file: options.token_file,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("http")
        .build()
        .context("cannot start the HTTP runtime")?;
    let server = weir_server::Server::open(&config)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            token = %server.token_path().display(),
            resumed_jobs = server.resumed(),
            "weir serve: listening on http://{addr}"
        );
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("shutting down: running jobs resume from their latest checkpoints at the next start");
        };
        axum::serve(listener, server.router()).with_graceful_shutdown(shutdown).await.context("the HTTP server failed")
    })
}
