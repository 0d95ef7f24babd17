//! One attempt of a job: its state opened (restored from a checkpoint when
//! given, at whatever parallelism the spec has now), its tasks wired with
//! bounded channels and control inboxes, each task on its own thread, and
//! the checkpoint coordinator beside them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::RecvTimeoutError;
use weir_connectors::{SinkContext, SplitState, sink_factory, source_factory};
use weir_spec::TimestampMode;
use weir_types::{MIN_WATERMARK, TaskInfo, Timestamp};
use weir_wasm::Plugin;

use super::{CANCEL_POLL, JobOutcome, JobStatus, Supervisor};
use crate::build::{NodeContext, operator_node, state_root};
use crate::checkpointing::Restore;
use crate::checkpointing::coordinator::{CoordinatorHandle, JobInfo};
use crate::control::{Control, TaskLink};
use crate::error::{Result, RuntimeError};
use crate::graph::{NodeRole, Partitioning, Plan};
use crate::route::{EdgeOut, Receiver, Sender};
use crate::task::{Chain, ChannelTask, Element, Link, SourceTask, SourceTime, TaskEnd, TaskRunner};

/// What one attempt of a job starts with.
pub(super) struct Attempt<'a> {
    pub(super) supervisor: &'a Supervisor,
    pub(super) attempt: u32,
    pub(super) restore: Option<&'a Restore>,
}

/// A source subtask's reader and the watermark state of its splits.
struct OpenedSource {
    reader: Box<dyn weir_connectors::Source>,
    watermarks: Vec<Option<(Timestamp, bool)>>,
}

impl Attempt<'_> {
    /// Each operator node's plugin and the name its user knows it by. A
    /// restart from one of this job's own checkpoints runs the plugins that
    /// checkpoint recorded (a hot swap's new version, from the swap's
    /// checkpoint on); any other start runs the spec's.
    fn plugins(&self) -> HashMap<String, (Plugin, String)> {
        let Supervisor { options, plugins, shared, .. } = self.supervisor;
        let own = self.restore.filter(|r| r.manifest.job_id == shared.id);
        let table = shared.plugins.read().unwrap_or_else(|e| e.into_inner());
        let label = |node: &str, p: &Plugin| {
            options.plugin_versions.get(node).cloned().unwrap_or_else(|| super::plugin_label(p))
        };
        plugins
            .iter()
            .map(|(node, spec_plugin)| {
                let recorded = own.and_then(|r| {
                    let digest = r.manifest.plugins.get(node)?;
                    let plugin = table.get(digest).filter(|_| digest != spec_plugin.digest())?;
                    Some((
                        plugin.clone(),
                        r.manifest.plugin_versions.get(node).cloned().unwrap_or_else(|| super::plugin_label(plugin)),
                    ))
                });
                let chosen = recorded.unwrap_or_else(|| (spec_plugin.clone(), label(node, spec_plugin)));
                (node.clone(), chosen)
            })
            .collect()
    }

    pub(super) fn run(&self) -> Result<JobOutcome> {
        let Supervisor { spec, options, shared, .. } = self.supervisor;
        let (attempt, restore) = (self.attempt, self.restore);
        let plan = Plan::new(spec);
        let backend_kind = options.state_backend.unwrap_or(spec.state.backend);
        let state_dir = options.state_dir.clone().or_else(|| spec.state.dir.clone());
        let state_root = state_root(backend_kind, state_dir.as_deref(), &shared.id)?;

        // One channel per task of every chain head that is not a source.
        let mut senders: HashMap<String, Vec<Sender>> = HashMap::new();
        let mut receivers: HashMap<(String, u32), Receiver> = HashMap::new();
        for chain in &plan.chains {
            let head = &plan.nodes[&chain[0]];
            if head.role == NodeRole::Source {
                continue;
            }
            for j in 0..head.parallelism {
                let (tx, rx) = crossbeam_channel::bounded(spec.channel_capacity);
                senders.entry(head.id.clone()).or_default().push(tx);
                receivers.insert((head.id.clone(), j), rx);
            }
        }
        let chained =
            |from: &str, to: &str| plan.chains.iter().any(|c| c.windows(2).any(|w| w[0] == from && w[1] == to));
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
                        shared.metrics.task(from, j).backpressured.clone(),
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
            tracing::info!(checkpoint = r.manifest.id, dir = %r.dir.display(), "restoring from checkpoint");
        }
        let plugins = self.plugins();
        *shared.running.lock().unwrap_or_else(|e| e.into_inner()) = plugins.clone();
        let (coord_tx, coord_rx) = crossbeam_channel::unbounded();
        // Stops this attempt's tasks: on the first failure, or on the user's cancel.
        let cancel = Arc::new(AtomicBool::new(false));
        let mut runners: Vec<(TaskInfo, TaskRunner)> = Vec::new();
        let mut controls = Vec::new();
        let mut source_tasks = Vec::new();
        let mut split_order: HashMap<String, Vec<String>> = HashMap::new();
        let sources: HashMap<&str, Box<dyn weir_connectors::SourceFactory>> =
            spec.sources.iter().map(|s| (s.id.as_str(), source_factory(s, &spec.name))).collect();
        let sinks: HashMap<&str, Box<dyn weir_connectors::SinkFactory>> =
            spec.sinks.iter().map(|s| (s.id.as_str(), sink_factory(s, &spec.name))).collect();
        for chain in &plan.chains {
            let head = &plan.nodes[&chain[0]];
            for j in 0..head.parallelism {
                let info =
                    |node: &str| TaskInfo { node: node.into(), index: j, parallelism: plan.nodes[node].parallelism };
                let task = info(&head.id);
                let mut chain_watermark = MIN_WATERMARK;
                let mut links = Vec::new();
                for id in chain.iter().filter(|id| plan.nodes[*id].role != NodeRole::Source) {
                    let node_task = info(id);
                    let metrics = shared.metrics.task(id, j);
                    let element = match plan.nodes[id].role {
                        NodeRole::Operator => {
                            let o = spec.operators.iter().find(|o| &o.id == id).expect("operator in spec");
                            let groups = weir_types::key_groups_of_task(j, node_task.parallelism, spec.max_parallelism);
                            let restored = match restore {
                                Some(r) => r.operator(id, &groups)?,
                                None => (Vec::new(), Vec::new()),
                            };
                            let context = NodeContext {
                                max_parallelism: spec.max_parallelism,
                                batch_size: spec.batch_size,
                                task: node_task.clone(),
                                metrics,
                                restored,
                                schemas: restore.map(|r| r.schemas(id)).unwrap_or_default(),
                                state_root: &state_root,
                                attempt,
                            };
                            let built = operator_node(context, o, plugins.get(id).map(|(p, _)| p))?;
                            if let Some(w) = built.watermark {
                                chain_watermark = chain_watermark.max(w);
                            }
                            Element::Operator { node: built.node, scratch: built.scratch }
                        }
                        NodeRole::Sink => {
                            let restored = match restore {
                                Some(r) => r.sink(id, j, node_task.parallelism)?,
                                None => Vec::new(),
                            };
                            let cx = SinkContext {
                                index: j,
                                parallelism: node_task.parallelism,
                                exactly_once: spec.checkpoint.is_some(),
                                checkpoint_span: spec.checkpoint.as_ref().map(|c| c.interval + c.timeout),
                                restored: &restored,
                            };
                            let sink =
                                sinks[id.as_str()].open(&cx).map_err(|e| RuntimeError::connector(&node_task, e))?;
                            Element::Sink { sink, metrics }
                        }
                        NodeRole::Source => unreachable!("filtered above"),
                    };
                    let side =
                        side_names(id).into_iter().map(|name| (name.clone(), edges_out(id, Some(&name), j))).collect();
                    links.push(Link { element, side });
                }
                let tail = chain.last().expect("chains are not empty");
                let (control_tx, inbox) = crossbeam_channel::unbounded::<Control>();
                let number = runners.len();
                controls.push((task.clone(), control_tx));
                let link = spec.checkpoint.as_ref().map(|_| TaskLink { tx: coord_tx.clone(), task: number, inbox });
                let chain_state = Chain {
                    task: task.clone(),
                    links,
                    main: edges_out(tail, None, j),
                    watermark: chain_watermark,
                    link,
                    plugins: shared.plugins.clone(),
                    cancel: cancel.clone(),
                    last_barrier: restore.map_or(0, |r| r.manifest.id),
                    upgraded_at: None,
                };
                match head.role {
                    NodeRole::Source => {
                        let s = spec.sources.iter().find(|s| s.id == head.id).expect("source in spec");
                        let factory = &sources[s.id.as_str()];
                        let opened = open_source(factory.as_ref(), &head.id, &task, restore, &mut split_order)?;
                        let runner = SourceTask {
                            source: opened.reader,
                            restored_splits: opened.watermarks,
                            time: SourceTime {
                                bound_ms: s.watermark.max_out_of_orderness.as_millis() as i64,
                                interval: s.watermark.interval,
                                punctuated: s.watermark.punctuated,
                                idle_timeout: s.watermark.idle_timeout,
                                ingestion: s.timestamps == TimestampMode::Ingestion,
                            },
                            batch_size: spec.batch_size,
                            metrics: shared.metrics.task(&head.id, j),
                            chain: chain_state,
                        };
                        source_tasks.push(number);
                        runners.push((task.clone(), TaskRunner::Source(runner)));
                    }
                    _ => {
                        let rx = receivers.remove(&(head.id.clone(), j)).expect("channel per task");
                        let (_, inputs) = plan.input_slots(&head.id);
                        let runner = ChannelTask { rx, inputs, chain: chain_state };
                        runners.push((task.clone(), TaskRunner::Channel(runner)));
                    }
                }
            }
        }
        drop(senders);
        // The handle's line for checkpoint requests; the coordinator ends
        // when the tasks and this are gone.
        let requests = coord_tx.clone();
        drop(coord_tx);
        let coordinator = match &spec.checkpoint {
            Some(c) => {
                let job = JobInfo {
                    name: spec.name.clone(),
                    id: shared.id.clone(),
                    spec: spec.text.clone(),
                    max_parallelism: spec.max_parallelism,
                    plugins: plugins.iter().map(|(node, (p, _))| (node.clone(), p.digest().to_string())).collect(),
                    plugin_versions: plugins.iter().map(|(node, (_, label))| (node.clone(), label.clone())).collect(),
                    parent: restore.and_then(Restore::parent),
                    restored_from: restore.map(Restore::lineage),
                    tasks: controls,
                    sources: source_tasks,
                    parallelism: plan.nodes.iter().map(|(id, n)| (id.clone(), n.parallelism)).collect(),
                    split_order,
                    metrics: shared.metrics.clone(),
                };
                Some(CoordinatorHandle::start(c, job, coord_rx)?)
            }
            None => None,
        };
        tracing::info!(tasks = runners.len(), backend = ?backend_kind, attempt, "job started");

        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Result<TaskEnd>>();
        let mut threads = Vec::new();
        for (task, run) in runners {
            let done = done_tx.clone();
            let name = task.to_string();
            let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
                let span = tracing::info_span!("task", task = %name);
                let _entered = span.enter();
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run())).unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Err(RuntimeError::Panic { task: name.clone(), message })
                    });
                let _ = done.send(result);
            });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(source) => {
                    cancel.store(true, Ordering::Relaxed);
                    return Err(RuntimeError::Thread { what: format!("task {task}"), source });
                }
            }
        }
        drop(done_tx);
        if coordinator.is_some() {
            *shared.coordinator.lock().unwrap_or_else(|e| e.into_inner()) = Some(requests);
        } else {
            drop(requests);
        }
        {
            let mut status = shared.status.lock().unwrap_or_else(|e| e.into_inner());
            if !matches!(*status, JobStatus::Stopping) {
                *status = JobStatus::Running;
            }
        }
        let progress = options.progress_interval.map(|every| super::progress::start(shared.clone(), every));

        // The first real cause wins over the knock-on effects it has on other
        // tasks (disconnected channels, cancellation).
        let mut failure: Option<RuntimeError> = None;
        let mut stopped = false;
        loop {
            let result = match done_rx.recv_timeout(CANCEL_POLL) {
                Ok(result) => result,
                Err(RecvTimeoutError::Timeout) => {
                    if shared.cancel.load(Ordering::Relaxed) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match result {
                Ok(TaskEnd::Stopped) => stopped = true,
                Ok(TaskEnd::Finished) => {}
                Err(error) => {
                    if failure.as_ref().is_none_or(|f| f.is_knock_on() && !error.is_knock_on()) {
                        failure = Some(error);
                    }
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        }
        for t in threads {
            let _ = t.join();
        }
        *shared.coordinator.lock().unwrap_or_else(|e| e.into_inner()) = None;
        drop(progress);
        // The coordinator may still be storing the final checkpoint from the
        // tasks' state directories: they go only after it is done.
        let stored = coordinator.map(CoordinatorHandle::join);
        drop(state_root);
        if let Some(e) = failure {
            // Tasks the user's cancel stopped may see each other go first.
            if e.is_knock_on() && shared.cancel.load(Ordering::Relaxed) {
                return Err(RuntimeError::Cancelled);
            }
            return Err(e);
        }
        if let Some(stored) = stored {
            stored?;
        }
        if stopped {
            let checkpoint = shared.metrics.checkpoint_stats().last_id.unwrap_or_default();
            tracing::info!(checkpoint, "job stopped at a barrier");
            return Ok(JobOutcome::Stopped { checkpoint });
        }
        Ok(JobOutcome::Finished)
    }
}

/// Opens source subtask `task`'s reader: the splits of the checkpoint's
/// split list (each resuming from its position), or of a fresh start's,
/// that the factory says this subtask owns.
fn open_source(
    factory: &dyn weir_connectors::SourceFactory,
    node: &str,
    task: &TaskInfo,
    restore: Option<&Restore>,
    split_order: &mut HashMap<String, Vec<String>>,
) -> Result<OpenedSource> {
    let fail = |e| RuntimeError::connector(task, e);
    let owner = |k: usize, id: &str| factory.owner(id, k, task.parallelism);
    let restored = restore.and_then(|r| r.source(node, task.index, task.parallelism, &owner));
    let order = match restore.and_then(|r| r.manifest.sources.get(node)) {
        Some(s) => s.splits.iter().map(|s| s.id.clone()).collect(),
        // Asked once per node (a Kafka source looks its partitions up).
        None => match split_order.get(node) {
            Some(order) => order.clone(),
            None => factory.splits(task.parallelism).map_err(fail)?,
        },
    };
    let (splits, watermarks, next) = match restored {
        Some(r) => {
            let splits = r.splits.iter().map(|(id, p, _)| SplitState { id: id.clone(), position: Some(p.clone()) });
            (splits.collect(), r.splits.iter().map(|(_, _, w)| Some(*w)).collect(), r.next)
        }
        None => {
            let mine: Vec<SplitState> = order
                .iter()
                .enumerate()
                .filter(|(k, id)| owner(*k, id) == task.index)
                .map(|(_, id)| SplitState { id: id.clone(), position: None })
                .collect();
            let watermarks = vec![None; mine.len()];
            (mine, watermarks, 0)
        }
    };
    split_order.insert(node.to_string(), order);
    let reader = factory.reader(splits, next, task).map_err(fail)?;
    Ok(OpenedSource { reader, watermarks })
}
