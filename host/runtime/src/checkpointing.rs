//! Checkpoints in a running job: the coordinator thread, what tasks send
//! it, and restoring a job from a completed checkpoint.
//!
//! Sources inject barrier *n* when the coordinator raises the trigger; each
//! task snapshots at the barrier (after aligning its inputs), passes the
//! barrier on and sends its part to the coordinator. The coordinator writes
//! the parts as a checkpoint (files, then the manifest, then one rename) and
//! only then commits the sinks' pre-committed parts. A task that finishes
//! sends its final part, which stands for it in later checkpoints; when every
//! task has finished, a final checkpoint commits the last parts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use weir_checkpoint::{
    Ack, CheckpointStore, Coordinator, CoordinatorConfig, Manifest, OperatorSnapshot, SinkParts, StateFiles,
    TaskSnapshot, Tick,
};
use weir_connectors::PendingParts;
use weir_spec::{CheckpointSpec, JobSpec};
use weir_state::NativeCheckpoint;

use crate::error::{Result, RuntimeError};
use crate::metrics::{CheckpointMetrics, Labels};

/// An operator's state as taken at a barrier.
pub(crate) enum PartState {
    /// A backend-neutral snapshot.
    Logical(Vec<u8>),
    /// The backend's own checkpoint (RocksDB), in a local directory.
    Native(LocalCheckpoint),
}

/// A native checkpoint in a local directory, deleted once stored (dropped).
pub(crate) struct LocalCheckpoint(pub(crate) NativeCheckpoint);

impl Drop for LocalCheckpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// One operator's state at a barrier.
pub(crate) struct OperatorPart {
    pub(crate) node: String,
    pub(crate) state: PartState,
    pub(crate) key_groups: (u32, u32),
    pub(crate) watermark: i64,
}

/// A file sink's pre-committed parts at a barrier.
pub(crate) struct SinkPart {
    pub(crate) node: String,
    pub(crate) index: u32,
    pub(crate) parts: PendingParts,
}

/// What one task contributes to a checkpoint.
#[derive(Default)]
pub(crate) struct TaskPart {
    pub(crate) source: Option<serde_json::Value>,
    pub(crate) operators: Vec<OperatorPart>,
    pub(crate) sinks: Vec<SinkPart>,
    pub(crate) finished: bool,
    /// How long the task waited for barrier alignment.
    pub(crate) alignment: Duration,
}

pub(crate) enum CoordMsg {
    /// Task `task` snapshotted its part of checkpoint `id`.
    Ack { task: usize, id: u64, part: TaskPart },
    /// Task `task` finished; its final part stands in for it from now on.
    Finished { task: usize, part: TaskPart },
}

/// A task's line to the coordinator.
#[derive(Clone)]
pub(crate) struct CheckpointLink {
    pub(crate) tx: mpsc::Sender<CoordMsg>,
    /// The task's number among the job's tasks.
    pub(crate) task: usize,
    /// The newest checkpoint sources should inject (0: none yet).
    pub(crate) trigger: Arc<AtomicU64>,
}

/// An operator's state in a checkpoint, ready to restore.
pub(crate) enum RestoredState {
    /// A backend-neutral snapshot.
    Logical(Vec<u8>),
    /// A RocksDB checkpoint's files: (name, where it is) and (name, shared
    /// id, where it is).
    Rocksdb { private: Vec<(String, PathBuf)>, shared: Vec<(String, String, PathBuf)> },
}

impl RestoredState {
    /// Lays out a RocksDB checkpoint's files in `db_dir` (emptied first),
    /// hard-linked where the filesystem allows; returns the SST name → id
    /// map for [`RocksDbBackend::open_restored`](weir_state_rocksdb::RocksDbBackend::open_restored).
    pub(crate) fn place_rocksdb(&self, db_dir: &Path) -> Result<HashMap<String, String>> {
        let RestoredState::Rocksdb { private, shared } = self else { return Ok(HashMap::new()) };
        let fail =
            |what: &Path, e: std::io::Error| RuntimeError::Setup(format!("cannot restore {}: {e}", what.display()));
        if db_dir.exists() {
            std::fs::remove_dir_all(db_dir).map_err(|e| fail(db_dir, e))?;
        }
        std::fs::create_dir_all(db_dir).map_err(|e| fail(db_dir, e))?;
        for (name, from) in private {
            std::fs::copy(from, db_dir.join(name)).map_err(|e| fail(from, e))?;
        }
        let mut ids = HashMap::new();
        for (name, id, from) in shared {
            let to = db_dir.join(name);
            if std::fs::hard_link(from, &to).is_err() {
                std::fs::copy(from, &to).map_err(|e| fail(from, e))?;
            }
            ids.insert(name.clone(), id.clone());
        }
        Ok(ids)
    }
}

/// A completed checkpoint to start from.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Restore {
    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Restore> {
        let manifest = CheckpointStore::load(dir).map_err(|e| RuntimeError::Setup(e.to_string()))?;
        Ok(Restore { dir: dir.to_path_buf(), manifest })
    }

    /// Whether every task had finished: the job ran to its end.
    pub fn job_finished(&self) -> bool {
        self.manifest.tasks.iter().all(|t| t.finished)
    }

    pub(crate) fn task(&self, task: &str) -> Result<&TaskSnapshot> {
        self.manifest.tasks.iter().find(|t| t.task == task).ok_or_else(|| {
            RuntimeError::Setup(format!(
                "checkpoint {} has no part for task {task} (restoring at another parallelism or job shape is not supported yet)",
                self.manifest.id
            ))
        })
    }

    /// The state of operator `node` in task `task`, and its watermark.
    pub(crate) fn operator(&self, task: &str, node: &str) -> Result<(RestoredState, i64)> {
        let part = self.task(task)?;
        let op = part.operators.iter().find(|o| o.node == node).ok_or_else(|| {
            RuntimeError::Setup(format!("checkpoint {} has no state for operator `{node}`", self.manifest.id))
        })?;
        let state = match &op.state {
            StateFiles::Logical { file } => {
                let path = self.dir.join(file);
                let bytes = std::fs::read(&path).map_err(|e| {
                    RuntimeError::Setup(format!("cannot read checkpoint state {}: {e}", path.display()))
                })?;
                RestoredState::Logical(bytes)
            }
            StateFiles::Rocksdb { dir, private, shared } => {
                // The store is the checkpoint's parent directory.
                let store = CheckpointStore::open(self.dir.parent().unwrap_or(&self.dir))
                    .map_err(|e| RuntimeError::Setup(e.to_string()))?;
                RestoredState::Rocksdb {
                    private: private.iter().map(|p| (p.clone(), self.dir.join(dir).join(p))).collect(),
                    shared: shared.iter().map(|(name, id)| (name.clone(), id.clone(), store.shared_path(id))).collect(),
                }
            }
        };
        Ok((state, op.watermark))
    }

    /// The next part number of sink `node` instance `index`.
    pub(crate) fn next_part(&self, node: &str, index: u32) -> Option<u64> {
        self.manifest
            .tasks
            .iter()
            .flat_map(|t| &t.sinks)
            .find(|s| s.node == node && s.index == index)
            .map(|s| s.next_part)
    }

    /// Commits the sinks' parts this checkpoint lists (again: idempotent).
    pub(crate) fn commit_sinks(&self) -> Result<()> {
        commit_all(self.manifest.tasks.iter().flat_map(|t| &t.sinks))
    }
}

fn commit_all<'a>(sinks: impl Iterator<Item = &'a SinkParts>) -> Result<()> {
    for s in sinks {
        weir_connectors::commit_parts(&s.dir, &s.parts)
            .map_err(|e| RuntimeError::Setup(format!("cannot commit the parts of sink `{}`: {e}", s.node)))?;
    }
    Ok(())
}

/// Which checkpoint `weir run` starts from: `from` when given, else the
/// newest in the spec's checkpoint directory unless `fresh`.
pub fn find_restore(spec: &JobSpec, fresh: bool, from: Option<&Path>) -> Result<Option<Restore>> {
    if let Some(dir) = from {
        return Restore::load(dir).map(Some);
    }
    let Some(c) = &spec.checkpoint else { return Ok(None) };
    if fresh {
        return Ok(None);
    }
    let store = open_store(c)?;
    let Some((dir, manifest)) = store.latest().map_err(|e| RuntimeError::Setup(e.to_string()))? else {
        return Ok(None);
    };
    if manifest.job != spec.name {
        return Err(RuntimeError::Setup(format!(
            "checkpoint dir {} holds checkpoints of job `{}`, not `{}`",
            c.dir.display(),
            manifest.job,
            spec.name
        )));
    }
    Ok(Some(Restore { dir, manifest }))
}

/// The id the next checkpoint written to `c.dir` gets.
pub(crate) fn next_id(c: &CheckpointSpec) -> Result<u64> {
    let store = open_store(c)?;
    Ok(store.completed().map_err(|e| RuntimeError::Setup(e.to_string()))?.last().map_or(1, |l| l + 1))
}

/// The newest checkpoint in `c.dir` with an id of at least `first_id`.
pub(crate) fn latest_since(c: &CheckpointSpec, first_id: u64) -> Result<Option<Restore>> {
    let store = open_store(c)?;
    match store.latest().map_err(|e| RuntimeError::Setup(e.to_string()))? {
        Some((dir, manifest)) if manifest.id >= first_id => Ok(Some(Restore { dir, manifest })),
        _ => Ok(None),
    }
}

fn open_store(c: &CheckpointSpec) -> Result<CheckpointStore> {
    let store = CheckpointStore::open(&c.dir).map_err(|e| RuntimeError::Setup(e.to_string()))?;
    store.clean_debris().map_err(|e| RuntimeError::Setup(e.to_string()))?;
    Ok(store)
}

/// What the coordinator needs to know about the job.
pub(crate) struct JobInfo {
    pub(crate) name: String,
    pub(crate) spec: String,
    pub(crate) plugins: BTreeMap<String, String>,
    /// The tasks, by task number.
    pub(crate) tasks: Vec<weir_types::TaskInfo>,
    pub(crate) metrics: CheckpointMetrics,
}

/// A running coordinator thread.
pub(crate) struct CoordinatorHandle {
    thread: std::thread::JoinHandle<Result<()>>,
}

impl CoordinatorHandle {
    /// Starts the coordinator. Tasks hold the senders; when the last one is
    /// gone the coordinator writes the final checkpoint if every task
    /// finished, and stops.
    pub(crate) fn start(
        spec: &CheckpointSpec,
        job: JobInfo,
        rx: mpsc::Receiver<CoordMsg>,
        trigger: Arc<AtomicU64>,
    ) -> Result<CoordinatorHandle> {
        let labels = CheckpointMetrics::labels(&job.name);
        for family in [&job.metrics.completed, &job.metrics.aborted, &job.metrics.restarts] {
            drop(family.get_or_create(&labels));
        }
        let store = open_store(spec)?;
        let first_id = store.completed().map_err(|e| RuntimeError::Setup(e.to_string()))?.last().map_or(1, |l| l + 1);
        let config = CoordinatorConfig { interval: spec.interval, timeout: spec.timeout, min_pause: spec.min_pause };
        let coordinator = Coordinator::new(config, job.tasks.len(), first_id, Instant::now());
        let mut run = Run {
            coordinator,
            store,
            retain: spec.retain,
            job,
            trigger,
            parts: HashMap::new(),
            finished: HashMap::new(),
            last_id: first_id - 1,
            final_stored: false,
        };
        let thread = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || {
                let span = tracing::info_span!("checkpoints");
                let _entered = span.enter();
                run.run(rx)
            })
            .map_err(|e| RuntimeError::Setup(format!("cannot start the checkpoint coordinator: {e}")))?;
        Ok(CoordinatorHandle { thread })
    }

    /// Waits for the coordinator to stop.
    pub(crate) fn join(self) -> Result<()> {
        self.thread.join().unwrap_or_else(|_| Err(RuntimeError::Setup("the checkpoint coordinator panicked".into())))
    }
}

struct Run {
    coordinator: Coordinator,
    store: CheckpointStore,
    retain: usize,
    job: JobInfo,
    trigger: Arc<AtomicU64>,
    /// Parts of the checkpoint in progress, by task.
    parts: HashMap<usize, Arc<TaskPart>>,
    /// Final parts of finished tasks.
    finished: HashMap<usize, Arc<TaskPart>>,
    last_id: u64,
    /// A checkpoint with every task finished is stored: nothing is left.
    final_stored: bool,
}

const TICK: Duration = Duration::from_millis(20);

impl Run {
    fn run(&mut self, rx: mpsc::Receiver<CoordMsg>) -> Result<()> {
        loop {
            // Once every task has finished only the final checkpoint is left.
            let tick = match self.finished.len() < self.job.tasks.len() {
                true => self.coordinator.tick(Instant::now()),
                false => Tick::Idle,
            };
            match tick {
                Tick::Idle => {}
                Tick::Trigger(id) => self.trigger(id)?,
                Tick::Abort(id) => {
                    self.job.metrics.aborted.get_or_create(&self.labels()).inc();
                    tracing::warn!(checkpoint = id, "checkpoint timed out and was aborted");
                    self.parts.clear();
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(CoordMsg::Ack { task, id, part }) => {
                    if self.coordinator.in_progress().is_some_and(|(p, _)| p == id) {
                        self.accept(id, task, Arc::new(part))?;
                    }
                }
                Ok(CoordMsg::Finished { task, part }) => {
                    let part = Arc::new(part);
                    self.finished.insert(task, part.clone());
                    if let Some((id, _)) = self.coordinator.in_progress()
                        && !self.parts.contains_key(&task)
                    {
                        self.accept(id, task, part)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.end(),
            }
        }
    }

    fn trigger(&mut self, id: u64) -> Result<()> {
        tracing::debug!(checkpoint = id, "checkpoint triggered");
        self.last_id = id;
        self.parts.clear();
        self.trigger.store(id, Ordering::Release);
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

    /// Every task has acknowledged `id`: store it, then commit its sinks.
    fn complete(&mut self, id: u64) -> Result<()> {
        let started = self.coordinator.in_progress().map(|(_, t)| t).unwrap_or_else(Instant::now);
        let parts = std::mem::take(&mut self.parts);
        let stored = self.write(id, &parts, started.elapsed());
        self.coordinator.finish(id, stored.is_ok(), Instant::now());
        match stored {
            Ok(manifest) => {
                self.commit(&manifest)?;
                self.final_stored = manifest.tasks.iter().all(|t| t.finished);
                tracing::info!(
                    checkpoint = id,
                    duration_ms = manifest.duration_ms,
                    alignment_ms = manifest.alignment_ms,
                    bytes = manifest.bytes,
                    incremental_bytes = manifest.incremental_bytes,
                    "checkpoint completed"
                );
            }
            Err(e) => {
                self.job.metrics.aborted.get_or_create(&self.labels()).inc();
                tracing::warn!(checkpoint = id, error = %e, "checkpoint could not be stored and was aborted")
            }
        }
        Ok(())
    }

    /// The final checkpoint, when every task finished; nothing otherwise.
    fn end(&mut self) -> Result<()> {
        if self.final_stored || self.finished.len() < self.job.tasks.len() {
            return Ok(());
        }
        let id = self.last_id + 1;
        let parts = std::mem::take(&mut self.finished);
        let manifest = self.write(id, &parts, Duration::ZERO).map_err(RuntimeError::Setup)?;
        self.commit(&manifest)?;
        tracing::info!(checkpoint = id, bytes = manifest.bytes, "final checkpoint completed");
        Ok(())
    }

    /// A stored checkpoint: commit its sinks' parts, record it in the
    /// metrics, delete what retention lets go.
    fn commit(&self, manifest: &Manifest) -> Result<()> {
        commit_all(manifest.tasks.iter().flat_map(|t| &t.sinks))?;
        self.record(manifest);
        self.prune();
        Ok(())
    }

    fn labels(&self) -> Labels {
        CheckpointMetrics::labels(&self.job.name)
    }

    fn record(&self, manifest: &Manifest) {
        let (m, labels) = (&self.job.metrics, self.labels());
        m.completed.get_or_create(&labels).inc();
        m.last_id.get_or_create(&labels).set(manifest.id as i64);
        m.last_duration_ms.get_or_create(&labels).set(manifest.duration_ms as i64);
        m.last_bytes.get_or_create(&labels).set(manifest.bytes as i64);
        m.last_incremental_bytes.get_or_create(&labels).set(manifest.incremental_bytes as i64);
        m.last_alignment_ms.get_or_create(&labels).set(manifest.alignment_ms as i64);
    }

    fn prune(&self) {
        let Ok(completed) = self.store.completed() else { return };
        for old in weir_checkpoint::to_delete(&completed, self.retain) {
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
    fn store_native(
        &self,
        native: &NativeCheckpoint,
        sub: &str,
        files: &mut Vec<(String, Vec<u8>)>,
    ) -> std::result::Result<(StateFiles, u64, u64), String> {
        let (mut size, mut new) = (0, 0);
        let mut shared = BTreeMap::new();
        for (name, id) in &native.shared {
            let path = native.dir.join(name);
            new += self.store.put_shared(id, &path).map_err(|e| e.to_string())?;
            size += std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            shared.insert(name.clone(), id.clone());
        }
        for name in &native.private {
            let path = native.dir.join(name);
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            size += data.len() as u64;
            new += data.len() as u64;
            files.push((format!("{sub}/{name}"), data));
        }
        Ok((StateFiles::Rocksdb { dir: sub.to_string(), private: native.private.clone(), shared }, size, new))
    }

    fn write(
        &self,
        id: u64,
        parts: &HashMap<usize, Arc<TaskPart>>,
        took: Duration,
    ) -> std::result::Result<Manifest, String> {
        let mut files = Vec::new();
        let mut tasks = Vec::new();
        let (mut bytes, mut incremental, mut alignment) = (0, 0, Duration::ZERO);
        for (number, task) in self.job.tasks.iter().enumerate() {
            let part = parts.get(&number).ok_or_else(|| format!("task {task} has no part"))?;
            let mut operators = Vec::new();
            for op in &part.operators {
                let (state, size, new) = match &op.state {
                    PartState::Logical(data) => {
                        let file = format!("{}-{}.state", op.node, task.index);
                        files.push((file.clone(), data.clone()));
                        (StateFiles::Logical { file }, data.len() as u64, data.len() as u64)
                    }
                    PartState::Native(native) => {
                        self.store_native(&native.0, &format!("{}-{}", op.node, task.index), &mut files)?
                    }
                };
                bytes += size;
                incremental += new;
                operators.push(OperatorSnapshot {
                    node: op.node.clone(),
                    state,
                    bytes: size,
                    key_groups: op.key_groups,
                    watermark: op.watermark,
                });
            }
            alignment = alignment.max(part.alignment);
            let sinks = part
                .sinks
                .iter()
                .map(|s| SinkParts {
                    node: s.node.clone(),
                    index: s.index,
                    dir: s.parts.dir.clone(),
                    parts: s.parts.parts.clone(),
                    next_part: s.parts.next_part,
                })
                .collect();
            tasks.push(TaskSnapshot {
                task: task.to_string(),
                source: part.source.clone(),
                operators,
                sinks,
                finished: part.finished,
            });
        }
        let manifest = Manifest {
            id,
            job: self.job.name.clone(),
            completed_at_ms: weir_types::now_ms(),
            duration_ms: took.as_millis() as u64,
            bytes,
            incremental_bytes: incremental,
            alignment_ms: alignment.as_millis() as u64,
            spec: self.job.spec.clone(),
            plugins: self.job.plugins.clone(),
            tasks,
        };
        self.store.write(&manifest, &files).map_err(|e| e.to_string())?;
        Ok(manifest)
    }
}
