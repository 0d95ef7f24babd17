//! Jobs: [`start`] loads a job's plugins, gives it a unique id and runs it
//! on threads of its own, returning a [`JobHandle`] to watch it (status,
//! live metrics), trigger checkpoints, stop it at a barrier, cancel it or
//! wait for it. Any number of jobs run side by side in one process — two of
//! the same name too: their working state, checkpoints and metrics are kept
//! apart by the job id. [`run_job`] is `start` then `wait`.

mod attempt;
mod plugins;
mod progress;
mod upgrade;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use weir_spec::{JobSpec, RestartSpec, StateBackendKind};
use weir_types::{BarrierKind, Mutation};
use weir_wasm::{Plugin, PluginEngine};

pub use self::plugins::load_plugins;
pub(crate) use self::plugins::plugin_label;
pub use self::upgrade::{PendingUpgrade, Upgrade, Upgraded};
use crate::checkpointing::Restore;
use crate::checkpointing::coordinator::Request;
use crate::control::{CheckpointDone, CoordMsg};
use crate::error::{ErrorClass, Result, RuntimeError};
use crate::metrics::{CheckpointStats, JobMetrics, Metrics, NodeReport};
use crate::task::PluginTable;

/// Settings of a run that are not part of the spec.
#[derive(Debug, Clone, Default)]
pub struct JobOptions {
    /// Overrides the spec's state backend.
    pub state_backend: Option<StateBackendKind>,
    /// Overrides the spec's state directory.
    pub state_dir: Option<PathBuf>,
    /// Log progress at this interval (none when `None`).
    pub progress_interval: Option<Duration>,
    /// Set to cancel the job (e.g. on Ctrl-C); it then fails with
    /// [`RuntimeError::Cancelled`]. [`JobHandle::cancel`] does the same.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where the job's metrics go (the process's families, served at
    /// `/metrics`); families of its own when `None`.
    pub metrics: Option<Metrics>,
    /// A completed checkpoint to start from (see [`crate::find_restore`]).
    pub restore: Option<Restore>,
    /// The job's id (a server keeps one id across restarts); a new one
    /// when `None`.
    pub id: Option<String>,
    /// Per operator node, its plugin as the user names it (`name@version`
    /// from a registry), for checkpoint manifests; the plugin's file name
    /// when missing.
    pub plugin_versions: HashMap<String, String>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Its input ended and every output was committed.
    Finished,
    /// It stopped at the barrier of this checkpoint; starting from it
    /// resumes exactly there.
    Stopped {
        /// The checkpoint it stopped at.
        checkpoint: u64,
    },
}

/// What a finished job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's unique id.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// How it ended.
    pub outcome: JobOutcome,
    /// Wall time from start to end.
    pub elapsed: Duration,
    /// Per node, in spec order.
    pub nodes: Vec<NodeReport>,
    /// Time from start until the first record reached a sink.
    pub first_output: Option<Duration>,
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Its tasks are starting.
    Starting,
    /// Its tasks run.
    Running,
    /// A task failed; it restarts from its latest checkpoint.
    Restarting {
        /// Restarts so far.
        attempt: u32,
        /// Why.
        cause: String,
    },
    /// A stop was asked for: the stop barrier is on its way.
    Stopping,
    /// Its input ended.
    Finished,
    /// It stopped at a barrier.
    Stopped {
        /// The checkpoint it stopped at.
        checkpoint: u64,
    },
    /// It failed for good.
    Failed {
        /// The error's code ([`RuntimeError::code`]).
        code: &'static str,
        /// The error.
        message: String,
    },
    /// It was cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Stopped { .. } | JobStatus::Failed { .. } | JobStatus::Cancelled
        )
    }
}

/// A live view of a job.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    /// Where it is.
    pub status: JobStatus,
    /// Restarts so far.
    pub restarts: u32,
    /// Why it restarted, oldest first.
    pub failures: Vec<Restarted>,
    /// Time since it started.
    pub uptime: Duration,
    /// Per node, in spec order.
    pub nodes: Vec<NodeReport>,
    /// Its checkpoints.
    pub checkpoints: CheckpointStats,
}

/// A restart after a task failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// Which restart (1 for the first).
    pub attempt: u32,
    /// When.
    pub at: std::time::SystemTime,
    /// The failure's code ([`RuntimeError::code`]).
    pub code: &'static str,
    /// The failure.
    pub cause: String,
}

/// What a job's handle and its threads share.
struct Shared {
    id: String,
    name: String,
    status: Mutex<JobStatus>,
    restarts: Mutex<u32>,
    /// Each restart's cause and error code, oldest first.
    failures: Mutex<Vec<Restarted>>,
    cancel: Arc<AtomicBool>,
    /// The running attempt's coordinator (`None`: no checkpoints, or between
    /// attempts).
    coordinator: Mutex<Option<Sender<CoordMsg>>>,
    plugins: PluginTable,
    metrics: Arc<JobMetrics>,
    order: Vec<String>,
    started: Instant,
    checkpoints: bool,
    /// The spec the job runs (its operators' setup, for upgrades).
    spec: JobSpec,
    /// Per operator node with a plugin, the plugin it runs now and the
    /// name its user knows it by.
    running: Mutex<HashMap<String, (Plugin, String)>>,
}

impl Shared {
    fn set_status(&self, status: JobStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// A checkpoint that was triggered: wait for it to complete.
#[derive(Debug)]
pub struct PendingCheckpoint {
    rx: crossbeam_channel::Receiver<Result<CheckpointDone, String>>,
}

impl PendingCheckpoint {
    /// Waits until it completed (or was aborted, or the job ended first).
    pub fn wait(self) -> Result<CheckpointDone> {
        match self.rx.recv() {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(why)) => Err(RuntimeError::Unavailable(why)),
            Err(_) => Err(RuntimeError::Unavailable("the job ended before the checkpoint completed".into())),
        }
    }

    /// The same, giving up after `timeout`.
    pub fn wait_timeout(self, timeout: Duration) -> Result<CheckpointDone> {
        match self.rx.recv_timeout(timeout) {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(why)) => Err(RuntimeError::Unavailable(why)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(RuntimeError::Unavailable(format!("the checkpoint did not complete within {timeout:?}")))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(RuntimeError::Unavailable("the job ended before the checkpoint completed".into()))
            }
        }
    }
}

/// A running job: its [`JobControl`] (through `Deref`) and the one
/// [`wait`](JobHandle::wait) for its end.
pub struct JobHandle {
    control: JobControl,
    thread: Option<std::thread::JoinHandle<Result<JobReport>>>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.shared.id).field("name", &self.shared.name).finish()
    }
}

impl std::ops::Deref for JobHandle {
    type Target = JobControl;

    fn deref(&self) -> &JobControl {
        &self.control
    }
}

/// What may be asked of a running job, from anywhere (it is `Clone`): its
/// status and figures, checkpoints, stop and cancel. A server keeps one per
/// job while a supervisor thread waits on the [`JobHandle`].
#[derive(Clone)]
pub struct JobControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for JobControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobControl").field("id", &self.shared.id).field("name", &self.shared.name).finish()
    }
}

impl JobControl {
    /// The job's unique id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the job is.
    pub fn status(&self) -> JobStatus {
        self.shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its live figures.
    pub fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            status: self.status(),
            restarts: *self.shared.restarts.lock().unwrap_or_else(|e| e.into_inner()),
            failures: self.shared.failures.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            uptime: self.shared.started.elapsed(),
            nodes: self.shared.metrics.report(&self.shared.order),
            checkpoints: self.shared.metrics.checkpoint_stats(),
        }
    }

    /// Triggers a checkpoint of `kind` now (after the one in flight, if
    /// any), carrying `mutation` for the tasks it passes.
    pub fn trigger(&self, kind: BarrierKind, mutation: Option<Mutation>) -> Result<PendingCheckpoint> {
        self.request(kind, mutation, None)
    }

    fn request(
        &self,
        kind: BarrierKind,
        mutation: Option<Mutation>,
        savepoint: Option<PathBuf>,
    ) -> Result<PendingCheckpoint> {
        if !self.shared.checkpoints {
            return Err(RuntimeError::Unavailable(format!(
                "job `{}` has no `checkpoint` in its spec: nothing to write a checkpoint to",
                self.shared.name
            )));
        }
        let coordinator = self.shared.coordinator.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = coordinator.as_ref() else {
            return Err(RuntimeError::Unavailable(format!(
                "job `{}` is {:?}: try again",
                self.shared.name,
                self.status()
            )));
        };
        let (reply, rx) = crossbeam_channel::bounded(1);
        let request = Request { kind, mutation: mutation.map(Arc::new), savepoint, reply: Some(reply) };
        tx.send(CoordMsg::Request(request))
            .map_err(|_| RuntimeError::Unavailable(format!("job `{}` has ended", self.shared.name)))?;
        Ok(PendingCheckpoint { rx })
    }

    /// Triggers a checkpoint now.
    pub fn trigger_checkpoint(&self) -> Result<PendingCheckpoint> {
        self.trigger(BarrierKind::Checkpoint, None)
    }

    /// Stops the job at a barrier: a final checkpoint is taken, sinks commit
    /// it, and every task ends after it with nothing in flight. Starting
    /// from that checkpoint resumes exactly there. Event time does not jump
    /// to the end, so windows still open stay open.
    pub fn stop(&self) -> Result<PendingCheckpoint> {
        let pending = self.trigger(BarrierKind::Stop, None)?;
        self.shared.set_status(JobStatus::Stopping);
        Ok(pending)
    }

    /// Takes a savepoint into directory `dir`: a checkpoint in the
    /// backend-neutral format, copied with its checksums to
    /// `dir/savepoint-<job id>-<checkpoint id>` (the completed checkpoint
    /// says where). With `stop`, the job then stops at it, as
    /// [`stop`](Self::stop) does.
    pub fn savepoint(&self, dir: &std::path::Path, stop: bool) -> Result<PendingCheckpoint> {
        let kind = if stop { BarrierKind::Stop } else { BarrierKind::Savepoint };
        let pending = self.request(kind, None, Some(dir.to_path_buf()))?;
        if stop {
            self.shared.set_status(JobStatus::Stopping);
        }
        Ok(pending)
    }

    /// Makes `plugin` available to mutations (by its digest).
    pub fn register_plugin(&self, plugin: Plugin) {
        let mut table = self.shared.plugins.write().unwrap_or_else(|e| e.into_inner());
        table.insert(plugin.digest().to_string(), plugin);
    }

    /// Cancels the job: its tasks stop at once, nothing more is committed.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }
}

impl JobHandle {
    /// A control of the job that can be kept apart from this handle.
    pub fn control(&self) -> JobControl {
        self.control.clone()
    }

    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Waits for the job to end.
    pub fn wait(mut self) -> Result<JobReport> {
        let thread = self.thread.take().expect("a handle waits once");
        thread.join().unwrap_or_else(|_| {
            Err(RuntimeError::Panic {
                task: format!("job {}", self.shared.id),
                message: "the job thread panicked".into(),
            })
        })
    }
}

/// A new job id: 32 hex digits, unique.
fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Starts a job: loads its plugins (failing at once if one does not load),
/// then runs it on threads of its own. With checkpoints, a task failure
/// restarts the job from the latest checkpoint of this run (or where the
/// run started) under the spec's restart strategy; an error that would
/// repeat (a bad spec, a plugin failing its `init`) is not retried.
pub fn start(spec: &JobSpec, options: &JobOptions, engine: &PluginEngine) -> Result<JobHandle> {
    let started = Instant::now();
    let plugins = load_plugins(spec, engine)?;
    // A job's own checkpoint (a server resuming it) fits it; anything else
    // is checked node by node before anything starts.
    if let Some(r) = options.restore.as_ref().filter(|r| options.id.as_deref() != Some(r.manifest.job_id.as_str())) {
        let check = crate::checkpointing::check_restore(r, spec, &plugins, &options.plugin_versions)?;
        if !check.accepted() {
            let message = check.reasons().collect::<Vec<_>>().join("; ");
            return Err(RuntimeError::Restore { checkpoint: r.dir.display().to_string(), message });
        }
    }
    // The checkpoint directory is this job's until it ends.
    let lock = spec.checkpoint.as_ref().map(crate::checkpointing::restore::lock).transpose()?;
    let id = options.id.clone().unwrap_or_else(new_job_id);
    let metrics = Arc::new(options.metrics.clone().unwrap_or_default().job(&id, &spec.name));
    let order: Vec<String> = spec
        .sources
        .iter()
        .map(|s| s.id.clone())
        .chain(spec.operators.iter().map(|o| o.id.clone()))
        .chain(spec.sinks.iter().map(|s| s.id.clone()))
        .collect();
    let table: HashMap<String, Plugin> = plugins.values().map(|p| (p.digest().to_string(), p.clone())).collect();
    let shared = Arc::new(Shared {
        id: id.clone(),
        name: spec.name.clone(),
        status: Mutex::new(JobStatus::Starting),
        restarts: Mutex::new(0),
        failures: Mutex::new(Vec::new()),
        cancel: options.cancel.clone().unwrap_or_default(),
        coordinator: Mutex::new(None),
        plugins: Arc::new(RwLock::new(table)),
        metrics,
        order,
        started,
        checkpoints: spec.checkpoint.is_some(),
        spec: spec.clone(),
        running: Mutex::new(HashMap::new()),
    });
    let supervisor =
        Supervisor { spec: spec.clone(), options: options.clone(), plugins, shared: shared.clone(), _lock: lock };
    let thread = std::thread::Builder::new()
        .name(format!("job-{}", &id[..8]))
        .spawn(move || {
            let span = tracing::info_span!("job", job = %supervisor.spec.name, job_id = %supervisor.shared.id);
            let _entered = span.enter();
            let result = supervisor.run();
            let status = match &result {
                Ok(r) => match r.outcome {
                    JobOutcome::Finished => JobStatus::Finished,
                    JobOutcome::Stopped { checkpoint } => JobStatus::Stopped { checkpoint },
                },
                Err(RuntimeError::Cancelled) => JobStatus::Cancelled,
                Err(e) => JobStatus::Failed { code: e.code(), message: e.to_string() },
            };
            supervisor.shared.set_status(status);
            supervisor.shared.metrics.remove();
            result
        })
        .map_err(|source| RuntimeError::Thread { what: "the job".into(), source })?;
    Ok(JobHandle { control: JobControl { shared }, thread: Some(thread) })
}

/// Runs a job to completion (bounded input), failure, cancellation or a
/// stop: [`start`], then [`JobHandle::wait`].
pub fn run_job(spec: &JobSpec, options: &JobOptions, engine: &PluginEngine) -> Result<JobReport> {
    start(spec, options, engine)?.wait()
}

/// How often a restart delay checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// The thread that runs a job's attempts.
struct Supervisor {
    spec: JobSpec,
    options: JobOptions,
    plugins: HashMap<String, Plugin>,
    shared: Arc<Shared>,
    /// The hold on the checkpoint directory.
    _lock: Option<weir_checkpoint::StoreLock>,
}

impl Supervisor {
    fn run(&self) -> Result<JobReport> {
        let spec = &self.spec;
        let restart = spec
            .checkpoint
            .as_ref()
            .map(|_| spec.restart.clone().unwrap_or_else(RestartSpec::default_with_checkpoints));
        // Checkpoints this run writes have ids from here on.
        let first_id = match &spec.checkpoint {
            Some(c) => {
                let after_restore = self.options.restore.as_ref().map_or(1, |r| r.manifest.id + 1);
                crate::checkpointing::restore::next_id(c)?.max(after_restore)
            }
            None => 0,
        };
        let mut restore = self.options.restore.clone();
        let mut attempt = 0;
        loop {
            let run = attempt::Attempt { supervisor: self, attempt, restore: restore.as_ref() };
            match run.run() {
                Ok(outcome) => return Ok(self.report(outcome)),
                Err(e) if e.class() == ErrorClass::Runtime => {
                    let Some(delay) = restart.as_ref().and_then(|r| r.delay_before(attempt)) else { return Err(e) };
                    if let Some(c) = &spec.checkpoint
                        && let Some(latest) = crate::checkpointing::restore::latest_since(c, first_id)?
                    {
                        restore = Some(latest);
                    }
                    attempt += 1;
                    *self.shared.restarts.lock().unwrap_or_else(|e| e.into_inner()) = attempt;
                    self.shared.failures.lock().unwrap_or_else(|e| e.into_inner()).push(Restarted {
                        attempt,
                        at: std::time::SystemTime::now(),
                        code: e.code(),
                        cause: e.to_string(),
                    });
                    self.shared.set_status(JobStatus::Restarting { attempt, cause: e.to_string() });
                    let (m, labels) = (self.shared.metrics.checkpoints(), self.shared.metrics.labels());
                    m.restarts.get_or_create(labels).inc();
                    tracing::warn!(
                        attempt,
                        cause = %e,
                        delay = ?delay,
                        checkpoint = restore.as_ref().map(|r| r.manifest.id),
                        "a task failed; restarting the job from its latest checkpoint"
                    );
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        if self.shared.cancel.load(Ordering::Relaxed) {
                            return Err(RuntimeError::Cancelled);
                        }
                        std::thread::sleep(CANCEL_POLL.min(until.saturating_duration_since(Instant::now())));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn report(&self, outcome: JobOutcome) -> JobReport {
        let nodes = self.shared.metrics.report(&self.shared.order);
        let started = self.shared.started;
        let first_output = self
            .spec
            .sinks
            .iter()
            .flat_map(|s| (0..self.spec.parallelism_of(s.parallelism)).map(|i| self.shared.metrics.task(&s.id, i)))
            .filter_map(|m| m.first_record.get().copied())
            .min()
            .map(|t| t.duration_since(started));
        JobReport {
            id: self.shared.id.clone(),
            name: self.spec.name.clone(),
            outcome,
            elapsed: started.elapsed(),
            nodes,
            first_output,
        }
    }
}
