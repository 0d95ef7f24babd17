//! Assembling and running a job: plugins loaded, state opened, tasks wired
//! with bounded channels, each task on its own thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use weir_connectors::file::{FileSource, FileTimestamps};
use weir_connectors::generator::{SensorBench, SensorGenerator, SensorSettings};
use weir_connectors::{BlackholeSink, FileSink, PartFileSink, Sink, Source, StdoutSink};
use weir_spec::{
    GeneratorKind, JobSpec, RestartSpec, SinkKind, SourceKind, SourceSpec, StateBackendKind, TimestampMode,
};
use weir_types::{MIN_WATERMARK, TaskInfo};
use weir_wasm::{Plugin, PluginEngine};

use crate::build::{NodeContext, StateRoot, operator_node};
use crate::checkpointing::{CheckpointLink, CoordinatorHandle, JobInfo, Restore};
use crate::error::{Result, RuntimeError};
use crate::graph::{NodeRole, Partitioning, Plan};
use crate::metrics::{CheckpointMetrics, JobMetrics, NodeMetrics, NodeReport, SharedRegistry};
use crate::route::{EdgeOut, Receiver, Sender};
use crate::task::{Chain, ChannelTask, Element, Link, SourceTask, SourceTime, TaskRunner};

/// Settings of a run that are not part of the spec.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// Overrides the spec's state backend.
    pub state_backend: Option<StateBackendKind>,
    /// Overrides the spec's state directory.
    pub state_dir: Option<PathBuf>,
    /// Log progress at this interval (none when `None`).
    pub progress_interval: Option<Duration>,
    /// Set to stop the job (e.g. on Ctrl-C); it then fails with
    /// [`RuntimeError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where to register the job's metrics (e.g. a registry served at
    /// `/metrics`); a private one when `None`.
    pub metrics: Option<SharedRegistry>,
    /// A completed checkpoint to start from (see [`crate::find_restore`]).
    pub restore: Option<Restore>,
}

/// What a finished job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's name.
    pub name: String,
    /// Wall time from start to end.
    pub elapsed: Duration,
    /// Per node, in spec order.
    pub nodes: Vec<NodeReport>,
    /// Time from start until the first record reached a sink.
    pub first_output: Option<Duration>,
}

/// `out.jsonl` → `out-2.jsonl` for instance 2 of a parallel file sink.
fn instance_path(path: &Path, index: u32, parallelism: u32) -> PathBuf {
    if parallelism == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}

fn make_source(spec: &SourceSpec, index: u32, parallelism: u32) -> Box<dyn Source> {
    match spec.kind {
        SourceKind::Generator => match spec.generator.unwrap_or(GeneratorKind::SensorBench) {
            GeneratorKind::SensorBench => {
                Box::new(SensorBench::new(spec.events.unwrap_or(u64::MAX), index, parallelism))
            }
            GeneratorKind::Sensors => Box::new(SensorGenerator::new(
                &SensorSettings {
                    sensors: spec.sensors.unwrap_or(10),
                    events: spec.events,
                    seed: spec.seed.unwrap_or(0),
                    start: spec.start.unwrap_or_else(weir_types::now_ms),
                    interval: spec.interval.unwrap_or(Duration::from_millis(100)),
                    disorder: spec.disorder.unwrap_or_default(),
                    rate: spec.rate,
                },
                index,
                parallelism,
            )),
        },
        SourceKind::File => {
            let paths = spec.path.as_ref().map(|p| p.to_vec()).unwrap_or_default();
            let timestamps = match (&spec.timestamps, &spec.timestamp) {
                (TimestampMode::Event, Some(p)) => FileTimestamps::Pointer(p.clone()),
                _ => FileTimestamps::Ingestion,
            };
            Box::new(FileSource::new(&paths, spec.key.clone(), timestamps, index, parallelism))
        }
    }
}

/// Loads every operator's plugin, naming the node on failure. Distinct
/// plugin files load in parallel (compiling, or from the compile cache).
pub fn load_plugins(spec: &JobSpec, engine: &PluginEngine) -> Result<HashMap<String, Plugin>> {
    let mut paths: Vec<&Path> = spec.operators.iter().filter_map(|o| o.plugin.as_deref()).collect();
    paths.sort();
    paths.dedup();
    let mut loaded: HashMap<&Path, std::result::Result<Plugin, weir_wasm::PluginError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths.iter().map(|p| (*p, scope.spawn(move || engine.load_file(p)))).collect();
        handles.into_iter().map(|(p, h)| (p, h.join().expect("plugin loading does not panic"))).collect()
    });
    let mut plugins = HashMap::new();
    for o in &spec.operators {
        let Some(path) = o.plugin.as_deref() else { continue };
        if loaded[path].is_err() {
            let Some(Err(source)) = loaded.remove(path) else { unreachable!("checked above") };
            return Err(RuntimeError::Load { node: o.id.clone(), source });
        }
        let Some(Ok(plugin)) = loaded.get(path) else { unreachable!("checked above") };
        plugins.insert(o.id.clone(), plugin.clone());
    }
    Ok(plugins)
}

/// Runs a job to completion (bounded input), failure or cancellation. Every
/// task runs on its own thread; this call blocks until they have all ended.
///
/// With checkpoints, a task failure restarts the job from the latest
/// checkpoint of this run (or where the run started) under the spec's
/// restart strategy; each restart is logged with its cause.
pub fn run_job(spec: &JobSpec, options: &JobOptions, engine: &PluginEngine) -> Result<JobReport> {
    let started = Instant::now();
    let plugins = load_plugins(spec, engine)?;
    let job_metrics = match &options.metrics {
        Some(registry) => JobMetrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner())),
        None => JobMetrics::default(),
    };
    let restart =
        spec.checkpoint.as_ref().map(|_| spec.restart.clone().unwrap_or_else(RestartSpec::default_with_checkpoints));
    // Checkpoints this run writes have ids from here on.
    let first_id = match &spec.checkpoint {
        Some(c) => crate::checkpointing::next_id(c)?,
        None => 0,
    };
    let cancel = options.cancel.clone().unwrap_or_default();
    let mut restore = options.restore.clone();
    let mut attempt = 0;
    loop {
        let run = Attempt { plugins: &plugins, job_metrics: &job_metrics, started, attempt, restore: restore.as_ref() };
        match run_attempt(spec, options, &cancel, run) {
            Ok(report) => return Ok(report),
            Err(e @ (RuntimeError::Task { .. } | RuntimeError::Disconnected(_))) => {
                let Some(delay) = restart.as_ref().and_then(|r| r.delay_before(attempt)) else { return Err(e) };
                if let Some(c) = &spec.checkpoint
                    && let Some(latest) = crate::checkpointing::latest_since(c, first_id)?
                {
                    restore = Some(latest);
                }
                attempt += 1;
                job_metrics.checkpoints().restarts.get_or_create(&CheckpointMetrics::labels(&spec.name)).inc();
                tracing::warn!(
                    job = %spec.name,
                    attempt,
                    cause = %e,
                    delay = ?delay,
                    checkpoint = restore.as_ref().map(|r| r.manifest.id),
                    "a task failed; restarting the job from its latest checkpoint"
                );
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(RuntimeError::Cancelled);
                    }
                    std::thread::sleep(CANCEL_POLL.min(until.saturating_duration_since(Instant::now())));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// How often a restart delay checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// What one attempt of a job starts with.
struct Attempt<'a> {
    plugins: &'a HashMap<String, Plugin>,
    job_metrics: &'a JobMetrics,
    started: Instant,
    attempt: u32,
    restore: Option<&'a Restore>,
}

fn run_attempt(spec: &JobSpec, options: &JobOptions, cancel: &Arc<AtomicBool>, run: Attempt<'_>) -> Result<JobReport> {
    let Attempt { plugins, job_metrics, started, attempt, restore } = run;
    let plan = Plan::new(spec);
    let backend_kind = options.state_backend.unwrap_or(spec.state.backend);
    let state_root = match backend_kind {
        StateBackendKind::Memory => StateRoot::Memory,
        StateBackendKind::Rocksdb => match options.state_dir.clone().or_else(|| spec.state.dir.clone()) {
            Some(dir) => StateRoot::Rocks { root: dir, _temp: None },
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("weir-state-")
                    .tempdir()
                    .map_err(|e| RuntimeError::Setup(format!("cannot create a state directory: {e}")))?;
                StateRoot::Rocks { root: tmp.path().to_path_buf(), _temp: Some(tmp) }
            }
        },
    };
    let order: Vec<String> = spec
        .sources
        .iter()
        .map(|s| s.id.clone())
        .chain(spec.operators.iter().map(|o| o.id.clone()))
        .chain(spec.sinks.iter().map(|s| s.id.clone()))
        .collect();
    let metrics: HashMap<String, Arc<NodeMetrics>> =
        order.iter().map(|id| (id.clone(), Arc::new(job_metrics.node(&spec.name, id)))).collect();

    // One channel per task of every chain head that is not a source.
    let mut senders: HashMap<String, Vec<Sender>> = HashMap::new();
    let mut receivers: HashMap<(String, u32), Receiver> = HashMap::new();
    for chain in &plan.chains {
        let head = &plan.nodes[&chain[0]];
        if head.role == NodeRole::Source {
            continue;
        }
        for j in 0..head.parallelism {
            let (tx, rx) = mpsc::sync_channel(spec.channel_capacity);
            senders.entry(head.id.clone()).or_default().push(tx);
            receivers.insert((head.id.clone(), j), rx);
        }
    }
    let chained = |from: &str, to: &str| plan.chains.iter().any(|c| c.windows(2).any(|w| w[0] == from && w[1] == to));
    let edges_out = |from: &str, side: Option<&str>, j: u32| -> Vec<EdgeOut> {
        plan.edges
            .iter()
            .filter(|e| e.from == from && e.side.as_deref() == side && !(side.is_none() && chained(from, &e.to)))
            .map(|e| {
                let (bases, _) = plan.input_slots(&e.to);
                let k = plan
                    .inputs_of(&e.to)
                    .iter()
                    .position(|x| std::ptr::eq(*x, e))
                    .expect("edge is an input of its target");
                let all = &senders[&e.to];
                let targets = match e.partitioning {
                    Partitioning::Forward => vec![all[j as usize].clone()],
                    _ => all.clone(),
                };
                EdgeOut::new(
                    e.to.clone(),
                    e.partitioning.clone(),
                    targets,
                    (bases[k] + j as usize) as u32,
                    spec.max_parallelism,
                )
            })
            .collect()
    };
    let side_names = |node: &str| -> Vec<String> {
        let mut names: Vec<String> =
            plan.edges.iter().filter(|e| e.from == node).filter_map(|e| e.side.clone()).collect();
        names.sort();
        names.dedup();
        names
    };

    if let Some(r) = restore {
        r.commit_sinks()?;
        tracing::info!(checkpoint = r.manifest.id, dir = %r.dir.display(), "restoring from checkpoint");
    }
    let (coord_tx, coord_rx) = mpsc::channel();
    let trigger = Arc::new(std::sync::atomic::AtomicU64::new(0));

    // Stops this attempt's tasks: on the first failure, or when `user_cancel` is set.
    let user_cancel = cancel.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut runners: Vec<(TaskInfo, TaskRunner)> = Vec::new();
    for chain in &plan.chains {
        let head = &plan.nodes[&chain[0]];
        for j in 0..head.parallelism {
            let info = |node: &str| TaskInfo { node: node.into(), index: j, parallelism: plan.nodes[node].parallelism };
            let task = info(&head.id);
            let task_name = task.to_string();
            let mut chain_watermark = MIN_WATERMARK;
            let mut links = Vec::new();
            for id in chain.iter().filter(|id| plan.nodes[*id].role != NodeRole::Source) {
                let node_task = info(id);
                let element = match plan.nodes[id].role {
                    NodeRole::Operator => {
                        let o = spec.operators.iter().find(|o| &o.id == id).expect("operator in spec");
                        let context = NodeContext {
                            spec,
                            task: node_task.clone(),
                            chain_head: &task_name,
                            metrics: metrics[id].clone(),
                            restore,
                            state_root: &state_root,
                            attempt,
                        };
                        let (node, restored_watermark) = operator_node(&context, o, plugins.get(id))?;
                        if let Some(w) = restored_watermark {
                            chain_watermark = chain_watermark.max(w);
                        }
                        Element::Operator(node)
                    }
                    NodeRole::Sink => {
                        let s = spec.sinks.iter().find(|s| &s.id == id).expect("sink in spec");
                        let sink: Box<dyn Sink> = match s.kind {
                            SinkKind::Stdout => Box::new(StdoutSink),
                            SinkKind::Blackhole => Box::new(BlackholeSink::default()),
                            // With checkpoints: exactly-once part files in a directory.
                            SinkKind::File if spec.checkpoint.is_some() => {
                                let dir = s.path.as_deref().expect("validated");
                                let next_part = restore.and_then(|r| r.next_part(id, j));
                                Box::new(
                                    PartFileSink::open(dir, j, next_part)
                                        .map_err(|e| RuntimeError::task(&node_task, e))?,
                                )
                            }
                            SinkKind::File => {
                                let path =
                                    instance_path(s.path.as_deref().expect("validated"), j, node_task.parallelism);
                                Box::new(FileSink::create(&path).map_err(|e| RuntimeError::task(&node_task, e))?)
                            }
                        };
                        Element::Sink { sink, metrics: metrics[id].clone() }
                    }
                    NodeRole::Source => unreachable!("filtered above"),
                };
                let side = side_names(id)
                    .into_iter()
                    .map(|name| {
                        let edges = edges_out(id, Some(&name), j);
                        (name, edges)
                    })
                    .collect();
                links.push(Link { element, side });
            }
            let tail = chain.last().expect("chains are not empty");
            let checkpoints = spec.checkpoint.as_ref().map(|_| CheckpointLink {
                tx: coord_tx.clone(),
                task: runners.len(),
                trigger: trigger.clone(),
            });
            let chain_state = Chain {
                task: task.clone(),
                links,
                main: edges_out(tail, None, j),
                watermark: chain_watermark,
                checkpoints,
            };
            match head.role {
                NodeRole::Source => {
                    let s = spec.sources.iter().find(|s| s.id == head.id).expect("source in spec");
                    let mut source = make_source(s, j, head.parallelism);
                    let mut restored_splits = None;
                    if let Some(position) =
                        restore.map(|r| r.task(&task_name)).transpose()?.and_then(|t| t.source.as_ref())
                    {
                        source
                            .restore(&position["source"])
                            .map_err(|e| RuntimeError::task(&task, format!("cannot rewind the source: {e}")))?;
                        restored_splits = serde_json::from_value(position["watermarks"].clone()).ok();
                    }
                    let runner = SourceTask {
                        source,
                        restored_splits,
                        time: SourceTime {
                            bound_ms: s.watermark.max_out_of_orderness.as_millis() as i64,
                            interval: s.watermark.interval,
                            punctuated: s.watermark.punctuated,
                            idle_timeout: s.watermark.idle_timeout,
                            ingestion: s.timestamps == TimestampMode::Ingestion,
                        },
                        batch_size: spec.batch_size,
                        metrics: metrics[&head.id].clone(),
                        chain: chain_state,
                        cancel: cancel.clone(),
                    };
                    runners.push((task.clone(), TaskRunner::Source(runner)));
                }
                _ => {
                    let rx = receivers.remove(&(head.id.clone(), j)).expect("channel per task");
                    let (_, inputs) = plan.input_slots(&head.id);
                    let runner = ChannelTask { rx, inputs, chain: chain_state, cancel: cancel.clone() };
                    runners.push((task.clone(), TaskRunner::Channel(runner)));
                }
            }
        }
    }
    drop(senders);
    drop(coord_tx);
    let coordinator = match &spec.checkpoint {
        Some(c) => {
            let job = JobInfo {
                name: spec.name.clone(),
                spec: spec.text.clone(),
                plugins: plugins.iter().map(|(node, p)| (node.clone(), p.digest().to_string())).collect(),
                tasks: runners.iter().map(|(t, _)| t.clone()).collect(),
                metrics: job_metrics.checkpoints().clone(),
            };
            Some(CoordinatorHandle::start(c, job, coord_rx, trigger)?)
        }
        None => None,
    };
    tracing::info!(job = %spec.name, tasks = runners.len(), backend = ?backend_kind, "job started");

    let (done_tx, done_rx) = mpsc::channel::<Result<()>>();
    let mut threads = Vec::new();
    for (task, run) in runners {
        let done = done_tx.clone();
        let name = task.to_string();
        let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
            let span = tracing::info_span!("task", task = %name);
            let _entered = span.enter();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run())).unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(RuntimeError::Task { task: name.clone(), message: format!("panicked: {message}") })
            });
            let _ = done.send(result);
        });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                cancel.store(true, Ordering::Relaxed);
                return Err(RuntimeError::Setup(format!("cannot start task {task}: {e}")));
            }
        }
    }
    drop(done_tx);

    let (stop_progress, progress_stopped) = mpsc::channel::<()>();
    let progress = options.progress_interval.map(|every| {
        let metrics: Vec<Arc<NodeMetrics>> = order.iter().map(|id| metrics[id].clone()).collect();
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = progress_stopped.recv_timeout(every) {
                for m in &metrics {
                    let wm = m.watermark.get();
                    tracing::info!(
                        node = %m.node,
                        records_in = m.records_in.get(),
                        records_out = m.records_out.get(),
                        watermark = if wm == MIN_WATERMARK { "none".to_string() } else { wm.to_string() },
                        "progress"
                    );
                }
            }
        })
    });

    // The first real cause wins over the knock-on effects it has on other
    // tasks (disconnected channels, cancellation).
    let mut failure: Option<RuntimeError> = None;
    loop {
        let result = match done_rx.recv_timeout(CANCEL_POLL) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if user_cancel.load(Ordering::Relaxed) {
                    cancel.store(true, Ordering::Relaxed);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let Err(error) = result else { continue };
        let knock_on = |e: &RuntimeError| matches!(e, RuntimeError::Disconnected(_) | RuntimeError::Cancelled);
        if failure.as_ref().is_none_or(|f| knock_on(f) && !knock_on(&error)) {
            failure = Some(error);
        }
        cancel.store(true, Ordering::Relaxed);
    }
    for t in threads {
        let _ = t.join();
    }
    drop(stop_progress);
    if let Some(p) = progress {
        let _ = p.join();
    }
    // The coordinator may still be storing the final checkpoint from the
    // tasks' state directories: they go only after it is done.
    let stored = coordinator.map(|c| c.join());
    drop(state_root);
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(stored) = stored {
        stored?;
    }
    let nodes = order.iter().map(|id| metrics[id].report()).collect();
    let first_output =
        spec.sinks.iter().filter_map(|s| metrics[&s.id].first_record.get()).min().map(|t| t.duration_since(started));
    Ok(JobReport { name: spec.name.clone(), elapsed: started.elapsed(), nodes, first_output })
}
