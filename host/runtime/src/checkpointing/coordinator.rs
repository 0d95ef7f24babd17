//! The checkpoint coordinator of a running job: one thread that triggers
//! checkpoints (on its interval, or when asked, e.g. to stop), collects
//! every task's part, stores the checkpoint (files, then the manifest, then
//! one rename) and only then tells the tasks that the checkpoint completed,
//! so their sinks commit. A task that finishes sends its final part, which
//! stands for it in later checkpoints; when every task has finished, a final
//! checkpoint commits the last output.
//!
//! The decisions (when to trigger, when a checkpoint is complete or timed
//! out) are `weir_checkpoint::Coordinator`'s; this thread does the I/O.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use weir_checkpoint::{
    Ack, CheckpointStore, Coordinator, CoordinatorConfig, Lineage, Manifest, OperatorSnapshot, OperatorState,
    SinkSnapshot, SinkState, SourceState, SplitSnapshot, StateFiles, StateInfo, TaskStatus, Tick,
};
use weir_spec::CheckpointSpec;
use weir_state::NativeCheckpoint;
use weir_types::{BarrierKind, CheckpointBarrier, Mutation, TaskInfo};

use super::restore::open_store;
use super::snapshot::{PartState, TaskPart};
use crate::control::{CheckpointDone, Control, CoordMsg};
use crate::error::{Result, RuntimeError};
use crate::metrics::{CheckpointRecord, JobMetrics};

/// A checkpoint's files: name (relative to its directory) and bytes.
/// A checkpoint's files: the parts' bytes as they are, read RocksDB files.
type Files<'a> = Vec<(String, Cow<'a, [u8]>)>;

/// What the coordinator needs to know about the job.
pub(crate) struct JobInfo {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) spec: String,
    pub(crate) max_parallelism: u32,
    pub(crate) plugins: BTreeMap<String, String>,
    /// Plugin as its user names it, per operator node.
    pub(crate) plugin_versions: BTreeMap<String, String>,
    /// The savepoint the job's state descends from.
    pub(crate) parent: Option<Lineage>,
    /// What this run started from.
    pub(crate) restored_from: Option<Lineage>,
    /// The tasks, by task number, and each one's control line.
    pub(crate) tasks: Vec<(TaskInfo, Sender<Control>)>,
    /// The task numbers whose head is a source (where barriers start).
    pub(crate) sources: Vec<usize>,
    /// Each node's parallelism.
    pub(crate) parallelism: HashMap<String, u32>,
    /// Each source's splits in their canonical order.
    pub(crate) split_order: HashMap<String, Vec<String>>,
    pub(crate) metrics: Arc<JobMetrics>,
}

/// A running coordinator thread.
pub(crate) struct CoordinatorHandle {
    thread: std::thread::JoinHandle<Result<()>>,
}

impl CoordinatorHandle {
    /// Starts the coordinator. Tasks hold the senders of `rx`; when the
    /// last one is gone the coordinator stops.
    pub(crate) fn start(spec: &CheckpointSpec, job: JobInfo, rx: Receiver<CoordMsg>) -> Result<CoordinatorHandle> {
        let store = open_store(spec)?;
        // Ids go on from the checkpoint the run started from (tasks count
        // barriers from there), and past any already in the directory.
        let after_restore = job.restored_from.as_ref().map_or(1, |r| r.id + 1);
        let first_id = store.completed()?.last().map_or(1, |l| l + 1).max(after_restore);
        let config = CoordinatorConfig { interval: spec.interval, timeout: spec.timeout, min_pause: spec.min_pause };
        let coordinator = Coordinator::new(config, job.tasks.len(), first_id, Instant::now());
        let mut run = Run {
            coordinator,
            store,
            retain: spec.retain,
            job,
            parts: HashMap::new(),
            finished: HashMap::new(),
            current: None,
            queued: VecDeque::new(),
            last_id: first_id - 1,
            final_stored: false,
        };
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                let span = tracing::info_span!("checkpoints", job = %run.job.name, job_id = %run.job.id);
                let _entered = span.enter();
                let result = run.run(&rx);
                run.give_up("the job ended before the checkpoint completed");
                result
            })
            .map_err(|source| RuntimeError::Thread { what: "the checkpoint coordinator".into(), source })?;
        Ok(CoordinatorHandle { thread })
    }

    /// Waits for the coordinator to stop.
    pub(crate) fn join(self) -> Result<()> {
        self.thread.join().unwrap_or_else(|_| {
            Err(RuntimeError::Panic { task: "checkpoints".into(), message: "the coordinator panicked".into() })
        })
    }
}

/// A checkpoint someone asked for.
pub(crate) struct Request {
    pub(crate) kind: BarrierKind,
    pub(crate) mutation: Option<Arc<Mutation>>,
    /// Copy it as a savepoint into this directory (named
    /// `savepoint-<job id>-<checkpoint id>` there).
    pub(crate) savepoint: Option<PathBuf>,
    pub(crate) reply: Option<Sender<Result<CheckpointDone, String>>>,
}

impl Request {
    /// A request the coordinator makes itself (its interval).
    fn periodic() -> Request {
        Request { kind: BarrierKind::Checkpoint, mutation: None, savepoint: None, reply: None }
    }
}

/// The checkpoint in progress.
struct Current {
    id: u64,
    request: Request,
}

struct Run {
    coordinator: Coordinator,
    store: CheckpointStore,
    retain: usize,
    job: JobInfo,
    /// Parts of the checkpoint in progress, by task.
    parts: HashMap<usize, Arc<TaskPart>>,
    /// Final parts of finished tasks.
    finished: HashMap<usize, Arc<TaskPart>>,
    current: Option<Current>,
    queued: VecDeque<Request>,
    last_id: u64,
    /// A checkpoint with every task finished is stored: nothing is left.
    final_stored: bool,
}

const TICK: Duration = Duration::from_millis(20);

impl Run {
    fn run(&mut self, rx: &Receiver<CoordMsg>) -> Result<()> {
        loop {
            // Once every task has finished only the final checkpoint is left.
            let all_finished = self.finished.len() == self.job.tasks.len();
            if all_finished && !self.final_stored && self.current.is_none() {
                self.store_final()?;
            }
            let tick = match all_finished {
                false => self.coordinator.tick(Instant::now()),
                true => Tick::Idle,
            };
            match tick {
                Tick::Idle => {}
                Tick::Trigger(id) => self.trigger(id, Request::periodic())?,
                Tick::Abort(id) => self.abort(id, "it timed out"),
            }
            if self.current.is_none()
                && !all_finished
                && let Some(request) = self.queued.pop_front()
            {
                match self.coordinator.trigger_now(Instant::now()) {
                    Ok(id) => self.trigger(id, request)?,
                    Err(_) => self.queued.push_front(request),
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(CoordMsg::Ack { task, id, part }) => {
                    if self.current.as_ref().is_some_and(|c| c.id == id) {
                        self.accept(id, task, Arc::new(part))?;
                    }
                }
                Ok(CoordMsg::Finished { task, part }) => {
                    let part = Arc::new(part);
                    self.finished.insert(task, part.clone());
                    if let Some(id) = self.current.as_ref().map(|c| c.id)
                        && !self.parts.contains_key(&task)
                    {
                        self.accept(id, task, part)?;
                    }
                }
                Ok(CoordMsg::Request(request)) => {
                    if self.finished.len() == self.job.tasks.len() {
                        // Nothing runs to take it: the final checkpoint stands for it.
                        if let Some(reply) = request.reply {
                            let _ = reply.send(Err("the job has finished".into()));
                        }
                    } else {
                        self.queued.push_back(request);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn trigger(&mut self, id: u64, request: Request) -> Result<()> {
        tracing::debug!(checkpoint = id, kind = %request.kind, "checkpoint triggered");
        self.last_id = id;
        self.parts.clear();
        let portable = request.kind == BarrierKind::Savepoint || request.savepoint.is_some();
        let barrier = CheckpointBarrier { id, kind: request.kind, mutation: request.mutation.clone(), portable };
        self.current = Some(Current { id, request });
        for &task in &self.job.sources {
            // A source that has finished has no inbox any more; its final
            // part stands for it.
            let _ = self.job.tasks[task].1.send(Control::Inject(barrier.clone()));
        }
        let finished: Vec<(usize, Arc<TaskPart>)> = self.finished.iter().map(|(t, p)| (*t, p.clone())).collect();
        for (task, part) in finished {
            self.accept(id, task, part)?;
        }
        Ok(())
    }

    /// Task `task`'s part of checkpoint `id`; completes it when it was the last.
    fn accept(&mut self, id: u64, task: usize, part: Arc<TaskPart>) -> Result<()> {
        self.parts.insert(task, part);
        match self.coordinator.ack(id, task) {
            Ack::Complete(id) => self.complete(id),
            Ack::Waiting(_) | Ack::Ignored => Ok(()),
        }
    }

    fn abort(&mut self, id: u64, why: &str) {
        self.job.metrics.checkpoints().aborted.get_or_create(self.job.metrics.labels()).inc();
        self.job.metrics.record_checkpoint(CheckpointRecord {
            id,
            kind: self.current.as_ref().map_or(BarrierKind::Checkpoint, |c| c.request.kind).name().to_string(),
            at_ms: weir_types::now_ms(),
            duration_ms: 0,
            alignment_ms: 0,
            bytes: 0,
            incremental_bytes: 0,
            aborted: Some(why.to_string()),
        });
        tracing::warn!(checkpoint = id, "checkpoint aborted: {why}");
        self.parts.clear();
        if let Some(current) = self.current.take()
            && let Some(reply) = current.request.reply
        {
            let _ = reply.send(Err(format!("checkpoint {id} was aborted: {why}")));
        }
        self.broadcast(Control::Aborted(id));
    }

    /// Every task has acknowledged `id`: store it (and copy it to a
    /// savepoint, when one was asked for), then tell the tasks. From a
    /// checkpoint whose barrier swapped plugins on, its manifest and every
    /// later one name the new plugins: they run after it.
    fn complete(&mut self, id: u64) -> Result<()> {
        let started = self.coordinator.in_progress().map(|(_, t)| t).unwrap_or_else(Instant::now);
        let parts = std::mem::take(&mut self.parts);
        let Some(current) = self.current.take() else { return Ok(()) };
        let request = current.request;
        let (plugins, versions) = self.plugins_after(request.mutation.as_deref());
        let stored = self.write(id, request.kind, &parts, started.elapsed(), (&plugins, &versions));
        self.coordinator.finish(id, stored.is_ok(), Instant::now());
        let (manifest, files) = match stored {
            Ok(stored) => stored,
            Err(e) => {
                self.current = Some(Current { id, request });
                self.abort(id, &format!("it could not be stored: {e}"));
                return Ok(());
            }
        };
        fail::fail_point!("checkpoint-stored", |_| std::process::abort());
        (self.job.plugins, self.job.plugin_versions) = (plugins, versions);
        let savepoint = request.savepoint.as_ref().map(|parent| {
            let dir = parent.join(weir_checkpoint::savepoint_name(&self.job.id, id));
            match weir_checkpoint::write_savepoint(&dir, &manifest, &files) {
                Ok(_) => {
                    tracing::info!(checkpoint = id, dir = %dir.display(), bytes = manifest.bytes, "savepoint written");
                    Ok(dir)
                }
                Err(e) => Err(format!("checkpoint {id} completed, but its savepoint could not be written: {e}")),
            }
        });
        self.final_stored = manifest.finished;
        self.completed(&manifest);
        if let Some(reply) = request.reply {
            let done = match savepoint {
                Some(Err(why)) => Err(why),
                Some(Ok(dir)) => {
                    Ok(CheckpointDone { id, dir: self.store.path(id), kind: request.kind, savepoint: Some(dir) })
                }
                None => Ok(CheckpointDone { id, dir: self.store.path(id), kind: request.kind, savepoint: None }),
            };
            let _ = reply.send(done);
        }
        Ok(())
    }

    /// The plugins (digests, and as their users name them) that run after a
    /// barrier carrying `mutation`.
    fn plugins_after(&self, mutation: Option<&Mutation>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let (mut plugins, mut versions) = (self.job.plugins.clone(), self.job.plugin_versions.clone());
        for (node, update) in mutation.map(|m| &m.updates).into_iter().flatten() {
            if let Some(digest) = &update.plugin {
                plugins.insert(node.clone(), digest.clone());
                versions.insert(node.clone(), update.label.clone().unwrap_or_else(|| digest[..12].to_string()));
            }
        }
        (plugins, versions)
    }

    /// The final checkpoint, when every task finished.
    fn store_final(&mut self) -> Result<()> {
        let id = self.last_id + 1;
        self.last_id = id;
        let parts = self.finished.clone();
        let plugins = (&self.job.plugins.clone(), &self.job.plugin_versions.clone());
        let (manifest, _) = self.write(id, BarrierKind::Checkpoint, &parts, Duration::ZERO, plugins)?;
        self.final_stored = true;
        tracing::info!(checkpoint = id, bytes = manifest.bytes, "final checkpoint completed");
        self.completed(&manifest);
        Ok(())
    }

    /// A stored checkpoint: tell the tasks (their sinks commit), record it
    /// in the metrics, delete what retention lets go.
    fn completed(&self, manifest: &Manifest) {
        tracing::info!(
            checkpoint = manifest.id,
            kind = %manifest.kind,
            duration_ms = manifest.duration_ms,
            alignment_ms = manifest.alignment_ms,
            bytes = manifest.bytes,
            incremental_bytes = manifest.incremental_bytes,
            "checkpoint completed"
        );
        self.broadcast(Control::Commit(manifest.id));
        let (m, labels) = (self.job.metrics.checkpoints(), self.job.metrics.labels());
        m.completed.get_or_create(labels).inc();
        m.last_id.get_or_create(labels).set(manifest.id as i64);
        m.last_duration_ms.get_or_create(labels).set(manifest.duration_ms as i64);
        m.last_bytes.get_or_create(labels).set(manifest.bytes as i64);
        m.last_incremental_bytes.get_or_create(labels).set(manifest.incremental_bytes as i64);
        m.last_alignment_ms.get_or_create(labels).set(manifest.alignment_ms as i64);
        self.job.metrics.record_checkpoint(CheckpointRecord {
            id: manifest.id,
            kind: manifest.kind.clone(),
            at_ms: manifest.completed_at_ms,
            duration_ms: manifest.duration_ms,
            alignment_ms: manifest.alignment_ms,
            bytes: manifest.bytes,
            incremental_bytes: manifest.incremental_bytes,
            aborted: None,
        });
        self.prune();
    }

    fn broadcast(&self, control: Control) {
        for (_, tx) in &self.job.tasks {
            let _ = tx.send(control.clone());
        }
    }

    /// Answers every request still waiting: nothing will complete it.
    fn give_up(&mut self, why: &str) {
        let replies = self.current.take().and_then(|c| c.request.reply).into_iter();
        for reply in replies.chain(self.queued.drain(..).filter_map(|r| r.reply)) {
            let _ = reply.send(Err(why.to_string()));
        }
    }

    fn prune(&self) {
        // Savepoints are copies in directories of their own: the store's
        // checkpoints are all under retention.
        let Ok(checkpoints) = self.store.completed() else { return };
        for old in weir_checkpoint::to_delete(&checkpoints, self.retain) {
            if let Err(e) = self.store.delete(old) {
                tracing::warn!(checkpoint = old, error = %e, "cannot delete an old checkpoint");
            }
        }
        if let Err(e) = self.store.collect_shared() {
            tracing::warn!(error = %e, "cannot delete unreferenced shared checkpoint files");
        }
    }

    /// Stores a native checkpoint: shared files once in the store, private
    /// ones (read now) into the checkpoint's `sub` directory. Returns the
    /// manifest entry, the total size and the bytes newly stored.
    fn store_native(&self, native: &NativeCheckpoint, sub: &str, files: &mut Files) -> Result<(StateFiles, u64, u64)> {
        let (mut size, mut new) = (0, 0);
        let mut shared = BTreeMap::new();
        for (name, id) in &native.shared {
            let path = native.dir.join(name);
            new += self.store.put_shared(id, &path)?;
            size += std::fs::metadata(&path).map_err(RuntimeError::io("cannot read", &path))?.len();
            shared.insert(name.clone(), id.clone());
        }
        for name in &native.private {
            let path = native.dir.join(name);
            let data = std::fs::read(&path).map_err(RuntimeError::io("cannot read", &path))?;
            size += data.len() as u64;
            new += data.len() as u64;
            files.push((format!("{sub}/{name}"), Cow::Owned(data)));
        }
        Ok((StateFiles::Rocksdb { dir: sub.to_string(), private: native.private.clone(), shared }, size, new))
    }

    /// Writes checkpoint `id` into the store; returns its manifest and files.
    fn write<'a>(
        &self,
        id: u64,
        kind: BarrierKind,
        parts: &'a HashMap<usize, Arc<TaskPart>>,
        took: Duration,
        (plugins, plugin_versions): (&BTreeMap<String, String>, &BTreeMap<String, String>),
    ) -> Result<(Manifest, Files<'a>)> {
        let mut files = Vec::new();
        let (mut bytes, mut incremental, mut alignment) = (0, 0, Duration::ZERO);
        let (mut operators, mut sources, mut sinks) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let parallelism = |node: &str| self.job.parallelism.get(node).copied().unwrap_or(1);
        let mut tasks = Vec::new();
        for (number, (task, _)) in self.job.tasks.iter().enumerate() {
            let part =
                parts.get(&number).ok_or_else(|| RuntimeError::Unavailable(format!("task {task} has no part")))?;
            tasks.push(TaskStatus { task: task.to_string(), finished: part.finished });
            alignment = alignment.max(part.alignment);
            for op in &part.operators {
                let sub = format!("{}-{}", op.node, op.subtask);
                let (state, size, new) = match &op.state {
                    PartState::Logical(data) => {
                        let file = format!("{sub}.state");
                        files.push((file.clone(), Cow::Borrowed(data.as_slice())));
                        (StateFiles::Logical { file }, data.len() as u64, data.len() as u64)
                    }
                    PartState::Native(native) => self.store_native(&native.0, &sub, &mut files)?,
                };
                bytes += size;
                incremental += new;
                let entry = operators.entry(op.node.clone()).or_insert_with(|| OperatorState {
                    parallelism: parallelism(&op.node),
                    states: op
                        .states
                        .iter()
                        .map(|s| StateInfo {
                            name: s.name.clone(),
                            kind: s.kind.name().into(),
                            encoding: s.encoding.name().into(),
                            schema: op.schemas.get(&s.name).copied().unwrap_or(0),
                        })
                        .collect(),
                    subtasks: Vec::new(),
                });
                entry.subtasks.push(OperatorSnapshot {
                    subtask: op.subtask,
                    key_groups: op.key_groups,
                    watermark: op.watermark,
                    state,
                    bytes: size,
                });
            }
            if let Some(source) = &part.source {
                let entry = sources.entry(source.node.clone()).or_insert_with(|| SourceState {
                    parallelism: parallelism(&source.node),
                    splits: Vec::new(),
                    next: BTreeMap::new(),
                });
                entry.splits.extend(source.splits.iter().map(|s| SplitSnapshot {
                    id: s.id.clone(),
                    subtask: source.subtask,
                    position: s.position.clone(),
                    watermark: s.watermark,
                }));
                if let Some(next) = &source.next {
                    entry.next.insert(source.subtask, next.clone());
                }
            }
            for sink in &part.sinks {
                let file = format!("{}-{}.pending", sink.node, sink.subtask);
                bytes += sink.pending.len() as u64;
                incremental += sink.pending.len() as u64;
                files.push((file.clone(), Cow::Borrowed(sink.pending.as_slice())));
                let entry = sinks
                    .entry(sink.node.clone())
                    .or_insert_with(|| SinkState { parallelism: parallelism(&sink.node), subtasks: Vec::new() });
                entry.subtasks.push(SinkSnapshot { subtask: sink.subtask, file });
            }
        }
        for op in operators.values_mut() {
            op.subtasks.sort_by_key(|s| s.subtask);
        }
        for (node, source) in &mut sources {
            let order = self.job.split_order.get(node);
            let rank = |id: &str| order.and_then(|o| o.iter().position(|s| s == id)).unwrap_or(usize::MAX);
            source.splits.sort_by_key(|s| rank(&s.id));
        }
        for sink in sinks.values_mut() {
            sink.subtasks.sort_by_key(|s| s.subtask);
        }
        let manifest = Manifest {
            format: weir_checkpoint::FORMAT,
            id,
            kind: kind.name().to_string(),
            job: self.job.name.clone(),
            job_id: self.job.id.clone(),
            completed_at_ms: weir_types::now_ms(),
            duration_ms: took.as_millis() as u64,
            bytes,
            incremental_bytes: incremental,
            alignment_ms: alignment.as_millis() as u64,
            spec: self.job.spec.clone(),
            max_parallelism: self.job.max_parallelism,
            plugins: plugins.clone(),
            finished: tasks.iter().all(|t| t.finished),
            operators,
            sources,
            sinks,
            tasks,
            parent: self.job.parent.clone(),
            restored_from: self.job.restored_from.clone(),
            plugin_versions: plugin_versions.clone(),
            checksums: BTreeMap::new(),
        };
        self.store.write(&manifest, &files)?;
        Ok((manifest, files))
    }
}
