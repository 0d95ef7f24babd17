//! The `weir` command.

mod diff;
mod remote;
mod savepoints;
mod scaffold;
mod serve;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use weir_runtime::graph::Plan;
use weir_runtime::{JobOptions, JobOutcome, Metrics};
use weir_spec::{JobSpec, StateBackendKind};

/// Weir: stateful stream processing with sandboxed WebAssembly operators.
#[derive(Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a job in this process until its input ends (Ctrl-C stops it).
    Run {
        /// The job spec (YAML or JSON).
        spec: PathBuf,
        /// Overrides the spec's state backend: memory or rocksdb.
        #[arg(long)]
        state_backend: Option<StateBackendKind>,
        /// Overrides the spec's state directory (RocksDB).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Logs progress every so often (e.g. 5s); 0 turns it off.
        #[arg(long, default_value = "5s", value_parser = humantime_duration)]
        progress: Duration,
        /// Serves Prometheus metrics at http://ADDR/metrics while the job runs
        /// (e.g. 127.0.0.1:9249; port 0 picks a free port and logs it).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Starts from this checkpoint directory (e.g. DIR/chk-00000007).
        #[arg(long, conflicts_with_all = ["fresh", "from_savepoint"])]
        from_checkpoint: Option<PathBuf>,
        /// Starts from this savepoint (overrides the spec's `savepoint`); once
        /// the job has checkpointed since, a new start resumes from its
        /// newest checkpoint instead.
        #[arg(long)]
        from_savepoint: Option<PathBuf>,
        /// Starts even when the savepoint holds state of nodes the job no
        /// longer has (that state is dropped).
        #[arg(long)]
        allow_non_restored_state: bool,
        /// On Ctrl-C or SIGTERM, stops the job with a savepoint in this
        /// directory (a second signal cancels at once).
        #[arg(long)]
        savepoint_dir: Option<PathBuf>,
        /// Ignores earlier checkpoints in the spec's checkpoint dir.
        #[arg(long)]
        fresh: bool,
    },
    /// Savepoints: take one of a server's job, list them, check a restore.
    Savepoint(savepoints::Savepoint),
    /// Compares two jobs' JSON-lines outputs record by record (an A/B
    /// fork's), matched on a key and a time; exits 1 when they differ.
    Diff(diff::Diff),
    /// Inspects checkpoints.
    Checkpoints {
        #[command(subcommand)]
        command: CheckpointsCommand,
    },
    /// Compiles plugins ahead of time into the compile cache, so a job that
    /// uses them starts without compiling (and checks they are operators).
    Compile {
        /// Plugin components (`.wasm`).
        #[arg(required = true)]
        plugins: Vec<PathBuf>,
    },
    /// Checks a job spec and prints its tasks.
    Validate {
        /// The job spec (YAML or JSON).
        spec: PathBuf,
    },
    /// Runs the control plane: a plugin registry and jobs over HTTP.
    Serve(serve::Serve),
    /// Plugins: a new project (`new`); a server's: upload, list, versions, rm.
    Plugin {
        #[command(flatten)]
        remote: remote::Remote,
        #[command(subcommand)]
        command: remote::PluginCommand,
    },
    /// Jobs of a server: submit, list, status, cancel.
    Job {
        #[command(flatten)]
        remote: remote::Remote,
        #[command(subcommand)]
        command: remote::JobCommand,
    },
}

#[derive(Subcommand)]
enum CheckpointsCommand {
    /// Lists the completed checkpoints in a checkpoint directory.
    List {
        /// The spec's `checkpoint.dir`.
        dir: PathBuf,
    },
}

/// What a signal (Ctrl-C, SIGTERM) does to the job of `weir run`.
enum OnSignal {
    /// Cancels it.
    Cancel(Arc<AtomicBool>),
    /// Stops it with a savepoint in the directory; a second signal cancels.
    Savepoint { job: weir_runtime::JobControl, dir: PathBuf, cancel: Arc<AtomicBool> },
}

async fn signalled() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

impl OnSignal {
    fn act(&self) {
        match self {
            OnSignal::Cancel(cancel) => {
                tracing::warn!("interrupted: stopping the job");
                cancel.store(true, Ordering::Relaxed);
            }
            OnSignal::Savepoint { job, dir, .. } => {
                tracing::warn!(dir = %dir.display(), "interrupted: stopping the job with a savepoint (again to cancel)");
                match job.savepoint(dir, true) {
                    Ok(pending) => {
                        std::thread::spawn(move || match pending.wait() {
                            Ok(done) => {
                                let at = done.savepoint.unwrap_or(done.dir);
                                tracing::info!(checkpoint = done.id, savepoint = %at.display(), "savepoint written; the job stops");
                            }
                            Err(e) => tracing::error!("the savepoint failed: {e}"),
                        });
                    }
                    Err(e) => tracing::error!("cannot take a savepoint: {e}"),
                }
            }
        }
    }

    fn cancel(&self) -> &AtomicBool {
        match self {
            OnSignal::Cancel(cancel) | OnSignal::Savepoint { cancel, .. } => cancel,
        }
    }
}

/// Runs the control plane of `weir run` on a small runtime of its own:
/// signals do what `on_signal` says; with an address, `/metrics` serves the
/// registry.
fn start_control(on_signal: OnSignal, metrics_addr: Option<SocketAddr>, metrics: Metrics) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;
    let listener = match metrics_addr {
        Some(addr) => {
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(addr))
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            tracing::info!("serving Prometheus metrics at http://{}/metrics", listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };
    std::thread::Builder::new().name("control".into()).spawn(move || {
        runtime.block_on(async {
            if let Some(listener) = listener {
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let text = metrics.encode();
                        async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )],
                                text,
                            )
                        }
                    }),
                );
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!("metrics server stopped: {e}");
                    }
                });
            }
            signalled().await;
            on_signal.act();
            signalled().await;
            tracing::warn!("interrupted again: cancelling the job");
            on_signal.cancel().store(true, Ordering::Relaxed);
        })
    })?;
    Ok(())
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    s.parse::<humantime::Duration>().map(Into::into).map_err(|e| e.to_string())
}

/// An error and its causes on one line, each cause once: errors here name
/// their cause in their own message too, and a chain printed as is would
/// repeat it (`cannot read plugin x: No such file…: No such file…`).
fn report(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

fn main() -> ExitCode {
    // Colours only for a person at a terminal (and never with NO_COLOR).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    // Crash tests name their fault points in FAILPOINTS (inert otherwise).
    let _failpoints = weir_runtime::failpoints();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(options) => serve::serve(options),
        Command::Plugin { remote, command } => remote::plugin(&remote, command),
        Command::Job { remote, command } => remote::job(&remote, command),
        Command::Compile { plugins } => {
            let engine = weir_wasm::PluginEngine::new()?;
            for path in plugins {
                let started = std::time::Instant::now();
                let plugin = engine.load_file(&path)?;
                tracing::info!(plugin = %path.display(), digest = %plugin.digest(), took = ?started.elapsed(), "compiled");
            }
            Ok(())
        }
        Command::Validate { spec } => {
            let spec = JobSpec::load(&spec)?;
            let plan = Plan::new(&spec);
            eprintln!("job `{}` is valid; tasks:", spec.name);
            for chain in &plan.chains {
                let p = plan.nodes[&chain[0]].parallelism;
                eprintln!("  {} × {p}", chain.join(" → "));
            }
            Ok(())
        }
        Command::Checkpoints { command: CheckpointsCommand::List { dir } } => {
            let store = weir_checkpoint::CheckpointStore::open(&dir)?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>6}  {:<24}  {:>8}  {:>12}  {:<10}  tasks",
                "id", "completed (UTC)", "took ms", "state bytes", "kind"
            )?;
            for id in store.completed()? {
                let m = weir_checkpoint::CheckpointStore::load(&store.path(id))?;
                let at = humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH + Duration::from_millis(m.completed_at_ms.max(0) as u64),
                );
                let finished = m.tasks.iter().filter(|t| t.finished).count();
                writeln!(
                    out,
                    "{:>6}  {:<24}  {:>8}  {:>12}  {:<10}  {} ({} finished)",
                    m.id,
                    at.to_string(),
                    m.duration_ms,
                    m.bytes,
                    m.kind,
                    m.tasks.len(),
                    finished
                )?;
            }
            Ok(())
        }
        Command::Savepoint(command) => savepoints::run(command),
        Command::Diff(d) => match diff::diff(&d)? {
            true => Ok(()),
            false => std::process::exit(1),
        },
        Command::Run {
            spec,
            state_backend,
            state_dir,
            progress,
            metrics_addr,
            from_checkpoint,
            from_savepoint,
            allow_non_restored_state,
            savepoint_dir,
            fresh,
        } => {
            let mut spec = JobSpec::load(&spec)?;
            if let Some(path) = from_savepoint {
                spec.savepoint = Some(weir_spec::SavepointSpec { path, allow_non_restored_state: false });
            }
            if let Some(s) = spec.savepoint.as_mut() {
                s.allow_non_restored_state |= allow_non_restored_state;
            }
            if savepoint_dir.is_some() && spec.checkpoint.is_none() {
                anyhow::bail!("--savepoint-dir needs checkpoints: give the spec a `checkpoint` section");
            }
            let restore = weir_runtime::find_restore(&spec, fresh, from_checkpoint.as_deref())?;
            if let Some(r) = &restore {
                if r.job_finished() {
                    tracing::info!(
                        job = %spec.name,
                        checkpoint = r.manifest.id,
                        "the job already ran to its end; nothing to do (--fresh runs it again)"
                    );
                    return Ok(());
                }
                let kind = if r.is_savepoint() { "savepoint" } else { "checkpoint" };
                tracing::info!(job = %spec.name, checkpoint = r.manifest.id, from = %r.dir.display(), "resuming from {kind}");
            }
            // Fuel metering costs every plugin some speed: only when asked.
            let fuel = spec.operators.iter().any(|o| o.limits.fuel.is_some());
            let engine = weir_wasm::PluginEngine::with_options(weir_wasm::EngineOptions {
                cache: weir_wasm::cache::default_dir(),
                fuel,
            })?;
            let cancel = Arc::new(AtomicBool::new(false));
            let metrics = Metrics::new();
            let options = JobOptions {
                state_backend,
                state_dir,
                progress_interval: (!progress.is_zero()).then_some(progress),
                cancel: Some(cancel.clone()),
                metrics: Some(metrics.clone()),
                restore,
                ..JobOptions::default()
            };
            let job = weir_runtime::start(&spec, &options, &engine)?;
            tracing::info!(job = %spec.name, job_id = %job.id(), "job submitted");
            let on_signal = match savepoint_dir {
                Some(dir) => OnSignal::Savepoint { job: job.control(), dir, cancel },
                None => OnSignal::Cancel(cancel),
            };
            start_control(on_signal, metrics_addr, metrics)?;
            let report = match job.wait() {
                Err(weir_runtime::RuntimeError::Cancelled) => anyhow::bail!("interrupted"),
                other => other?,
            };
            match report.outcome {
                JobOutcome::Finished => {
                    tracing::info!(job = %report.name, elapsed = ?report.elapsed, first_output = ?report.first_output, "job finished")
                }
                JobOutcome::Stopped { checkpoint } => {
                    tracing::info!(job = %report.name, checkpoint, "job stopped at a barrier")
                }
            }
            for n in &report.nodes {
                let counters: Vec<String> = n.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                tracing::info!(
                    node = %n.node,
                    records_in = n.records_in,
                    records_out = n.records_out,
                    side_out = n.side_out,
                    counters = %counters.join(" "),
                    "summary"
                );
            }
            Ok(())
        }
    }
}
