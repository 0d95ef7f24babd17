//! The job manager: jobs submitted to the server, kept in the metadata
//! database and run on the process's runtime through job handles. Every
//! server job checkpoints (into its directory under `DATA_DIR/jobs/`
//! unless its spec says where), so a restart of the server resumes each
//! running job from its latest completed checkpoint, exactly once.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use weir_runtime::{ErrorClass, JobControl, JobOptions, JobOutcome, Metrics, RuntimeError};
use weir_spec::{CheckpointSpec, Format, JobSpec, PluginRef};

use crate::error::{ApiError, ApiResult};
use crate::meta::{CheckpointEntry, Failure, JobRecord, JobState, Metadata, NodeFigures, PinnedPlugin, VersionChange};
use crate::now_ms;
use crate::registry::{Registry, requirement};
use crate::view::{self, JobShape, JobSummary, JobView};

/// How often a job's supervisor looks at it (restarts, rates).
const SUPERVISE_TICK: Duration = Duration::from_millis(100);
/// Rates are over this long.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// The checkpoint interval of a server job whose spec sets none.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// Per node: records in and out per second, and the ms per second it
/// waited on a full channel (its back-pressure).
pub type Rates = HashMap<String, (f64, f64, f64)>;

/// Per node so far: records in and out, µs back-pressured.
type Counts = HashMap<String, (u64, u64, u64)>;

/// A job's checkpoint history: `earlier` runs' entries, then this run's,
/// the last [`weir_runtime::CHECKPOINT_HISTORY`] of them.
fn checkpoint_history(
    earlier: Vec<CheckpointEntry>,
    this_run: &[weir_runtime::CheckpointRecord],
) -> Vec<CheckpointEntry> {
    let mut all = earlier;
    all.extend(this_run.iter().map(CheckpointEntry::from));
    let keep = all.len().saturating_sub(weir_runtime::CHECKPOINT_HISTORY);
    all.drain(..keep);
    all
}

/// A job running in this process.
pub(crate) struct Live {
    pub(crate) control: JobControl,
    rates: Arc<Mutex<Rates>>,
    /// Its plan and limits, made once (status reads are frequent).
    shape: Arc<JobShape>,
}

/// The jobs of one server.
pub struct JobManager {
    pub(crate) meta: Arc<Metadata>,
    pub(crate) registry: Arc<Registry>,
    metrics: Metrics,
    jobs_dir: PathBuf,
    /// Where savepoints are kept, one directory each.
    pub(crate) savepoints_dir: PathBuf,
    /// An engine that meters fuel, for jobs that set `limits.fuel`.
    fuel_engine: OnceLock<weir_wasm::PluginEngine>,
    cache_dir: PathBuf,
    live: Mutex<HashMap<String, Live>>,
}

/// A spec as a server runs it: with checkpoints (every 10 s into the job's
/// directory) and RocksDB state there unless it says otherwise.
pub(crate) fn parse(text: &str, format: Format) -> ApiResult<JobSpec> {
    let defaults = |spec: &mut JobSpec| {
        spec.checkpoint.get_or_insert_with(|| CheckpointSpec {
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            dir: PathBuf::from("checkpoints"),
            retain: 3,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
        });
        spec.state.dir.get_or_insert_with(|| PathBuf::from("state"));
    };
    JobSpec::parse_with_defaults(text, format, defaults)
        .map_err(|e| ApiError::bad_request("spec_invalid", e.to_string()))
}

pub(crate) fn record_format(record: &JobRecord) -> Format {
    if record.format == "json" { Format::Json } else { Format::Yaml }
}

/// A runtime error at a job's start: the spec's or plugin's fault (422),
/// or the server's.
pub(crate) fn start_error(e: RuntimeError) -> ApiError {
    if e.code() == "checkpoint_dir_in_use" {
        return ApiError::conflict("checkpoint_dir_in_use", e.to_string());
    }
    match e.class() {
        ErrorClass::Invalid => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()),
        _ => ApiError::internal(e.to_string()),
    }
}

impl JobManager {
    /// The manager of the jobs under `data_dir/jobs`.
    pub fn new(meta: Arc<Metadata>, registry: Arc<Registry>, metrics: Metrics, data_dir: &std::path::Path) -> Self {
        JobManager {
            meta,
            registry,
            metrics,
            jobs_dir: data_dir.join("jobs"),
            savepoints_dir: data_dir.join("savepoints"),
            fuel_engine: OnceLock::new(),
            cache_dir: data_dir.join("cache"),
            live: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a spec (YAML or JSON): resolves its plugins in the registry,
    /// stores the job and starts it.
    pub fn submit(self: &Arc<Self>, text: &str, format: Format) -> ApiResult<JobRecord> {
        let spec = parse(text, format)?;
        let plugins = self.pin_plugins(&spec)?;
        let from_savepoint = match &spec.savepoint {
            Some(s) => Some(self.savepoint_manifest(&s.path.display().to_string())?.id),
            None => None,
        };
        let submitted_at_ms = now_ms();
        let history = plugins
            .iter()
            .map(|(node, pin)| VersionChange {
                at_ms: submitted_at_ms,
                node: node.clone(),
                from: None,
                to: pin.label(),
                checkpoint: from_savepoint,
                outcome: "started".into(),
                message: None,
            })
            .collect();
        let record = JobRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: spec.name.clone(),
            spec: text.to_string(),
            format: match format {
                Format::Json => "json".into(),
                Format::Yaml => "yaml".into(),
            },
            plugins,
            state: JobState::Running,
            submitted_at_ms,
            ended_at_ms: None,
            failures: Vec::new(),
            resumed: 0,
            nodes: Vec::new(),
            history,
            checkpoints: Vec::new(),
        };
        // Stored first: a crash from here on resumes it. Refused at its
        // start, it is no job.
        self.meta.put_job(&record)?;
        if let Err(e) = self.launch(&record, false) {
            self.meta.delete_job(&record.id)?;
            return Err(e);
        }
        tracing::info!(job = %record.name, job_id = %record.id, "job submitted");
        Ok(record)
    }

    /// Each operator's plugin, resolved in the registry and checked against
    /// what its node needs.
    pub(crate) fn pin_plugins(&self, spec: &JobSpec) -> ApiResult<BTreeMap<String, PinnedPlugin>> {
        let mut pins = BTreeMap::new();
        for o in &spec.operators {
            let Some(path) = o.plugin.as_deref() else { continue };
            let reference = match PluginRef::of_path(path) {
                Some(Ok(r)) => r,
                Some(Err(message)) => return Err(ApiError::bad_request("spec_invalid", message)),
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "plugin_path",
                        format!(
                            "operator `{}` names the file `{}`: a server runs plugins of its registry, named \
                             `name@version` — upload it (weir plugin upload) and name it so",
                            o.id,
                            path.display()
                        ),
                    ));
                }
            };
            let found = self.registry.resolve(&reference)?;
            let fits = match o.window.is_some() {
                true => found.world == "aggregator" || found.world == "window-processor",
                false => found.world == "operator",
            };
            if !fits {
                let wanted = match o.window.is_some() {
                    true => "a window: its plugin must be an aggregator or a window-processor",
                    false => "not a window: its plugin must be an operator",
                };
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "plugin_wrong_world",
                    format!(
                        "operator `{}` is {wanted}, and {}@{} is {} {}",
                        o.id,
                        found.name,
                        found.version,
                        if found.world.starts_with(['a', 'o']) { "an" } else { "a" },
                        found.world
                    ),
                ));
            }
            let pin = PinnedPlugin {
                name: found.name,
                version: found.version,
                requested: requirement(&reference),
                sha256: found.sha256,
            };
            pins.insert(o.id.clone(), pin);
        }
        Ok(pins)
    }

    /// The spec as it runs here: plugins from their blobs, relative paths
    /// under the job's directory, checkpoints and RocksDB state there by
    /// default.
    fn runnable(&self, record: &JobRecord) -> ApiResult<JobSpec> {
        let spec = parse(&record.spec, record_format(record))?;
        self.place(spec, &record.plugins, &self.job_dir(&record.id))
    }

    /// Job `id`'s directory.
    pub(crate) fn job_dir(&self, id: &str) -> PathBuf {
        self.jobs_dir.join(id)
    }

    /// A spec with its plugins' blobs, its savepoint among this server's,
    /// and relative paths under `dir`.
    pub(crate) fn place(
        &self,
        mut spec: JobSpec,
        pins: &BTreeMap<String, PinnedPlugin>,
        dir: &std::path::Path,
    ) -> ApiResult<JobSpec> {
        for o in &mut spec.operators {
            if let Some(pin) = pins.get(&o.id) {
                o.plugin = Some(self.registry.blob(&pin.sha256));
            }
        }
        if let Some(s) = &mut spec.savepoint {
            s.path = self.savepoint_dir(&s.path.display().to_string())?;
        }
        spec.resolve_paths(dir);
        Ok(spec)
    }

    pub(crate) fn engine(&self, spec: &JobSpec) -> ApiResult<weir_wasm::PluginEngine> {
        if !spec.operators.iter().any(|o| o.limits.fuel.is_some()) {
            return Ok(self.registry.engine().clone());
        }
        if let Some(engine) = self.fuel_engine.get() {
            return Ok(engine.clone());
        }
        let options = weir_wasm::EngineOptions { cache: Some(self.cache_dir.join("fuel")), fuel: true };
        let engine = weir_wasm::PluginEngine::with_options(options).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(self.fuel_engine.get_or_init(|| engine).clone())
    }

    /// Starts a stored job (or, `resuming`, resumes it from its latest
    /// checkpoint), with a supervisor thread that records how it ends.
    fn launch(self: &Arc<Self>, record: &JobRecord, resuming: bool) -> ApiResult<()> {
        let recovered = match resuming {
            true => self.recover_versions(record)?,
            false => None,
        };
        let record = recovered.as_ref().unwrap_or(record);
        let spec = self.runnable(record)?;
        let checkpoints = spec.checkpoint.as_ref().map(|c| weir_checkpoint::CheckpointStore::open(&c.dir));
        let earlier = match checkpoints {
            Some(Ok(store)) if !resuming => store.latest().ok().flatten(),
            _ => None,
        };
        if let Some((dir, manifest)) = earlier {
            let dir = dir.parent().unwrap_or(&dir).display().to_string();
            return Err(ApiError::conflict(
                "checkpoint_dir_in_use",
                format!(
                    "checkpoint dir {dir} already holds checkpoints of job `{}`: give this job a checkpoint.dir of its \
                     own, or none (the server then keeps its checkpoints in its data dir)",
                    manifest.job
                ),
            ));
        }
        let restore = weir_runtime::find_restore(&spec, false, None).map_err(start_error)?;
        if restore.as_ref().is_some_and(weir_runtime::Restore::job_finished) {
            self.end(&record.id, JobState::Finished, None, Vec::new(), &[]);
            return Ok(());
        }
        if let Some(r) = &restore {
            tracing::info!(job = %record.name, job_id = %record.id, checkpoint = r.manifest.id, "resuming from checkpoint");
        }
        let plugin_versions = record.plugins.iter().map(|(node, p)| (node.clone(), p.label())).collect();
        let options = JobOptions {
            metrics: Some(self.metrics.clone()),
            restore,
            id: Some(record.id.clone()),
            plugin_versions,
            ..JobOptions::default()
        };
        let engine = self.engine(&spec)?;
        let handle = weir_runtime::start(&spec, &options, &engine).map_err(start_error)?;
        let rates = Arc::new(Mutex::new(Rates::new()));
        let shape = Arc::new(JobShape::of(&spec));
        self.live().insert(record.id.clone(), Live { control: handle.control(), rates: rates.clone(), shape });
        let manager = self.clone();
        let id = record.id.clone();
        std::thread::Builder::new()
            .name(format!("supervise-{}", &id[..8]))
            .spawn(move || manager.supervise(&id, handle, &rates))
            .map_err(|e| ApiError::internal(format!("cannot start a supervisor thread: {e}")))?;
        Ok(())
    }

    /// Watches a job until it ends: records its restarts with their causes
    /// and its rates, then how it ended.
    fn supervise(&self, id: &str, handle: weir_runtime::JobHandle, rates: &Mutex<Rates>) {
        let mut seen_restarts = 0;
        let mut last: Option<(Instant, Counts)> = None;
        while !handle.is_finished() {
            std::thread::sleep(SUPERVISE_TICK);
            let snapshot = handle.snapshot();
            seen_restarts = self.record_restarts(id, &snapshot.failures, seen_restarts);
            let due = last.as_ref().is_none_or(|(at, _)| at.elapsed() >= RATE_WINDOW);
            if due {
                let now = Instant::now();
                let counts: Counts = snapshot
                    .nodes
                    .into_iter()
                    .map(|n| (n.node, (n.records_in, n.records_out, n.backpressured_us)))
                    .collect();
                if let Some((at, before)) = &last {
                    let secs = now.duration_since(*at).as_secs_f64();
                    let mut r = rates.lock().unwrap_or_else(|e| e.into_inner());
                    for (node, &(i, o, b)) in &counts {
                        let (bi, bo, bb) = before.get(node).copied().unwrap_or_default();
                        let per_s = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
                        r.insert(node.clone(), (per_s(i, bi), per_s(o, bo), (per_s(b, bb) / 1000.0).min(1000.0)));
                    }
                }
                last = Some((now, counts));
            }
        }
        let snapshot = handle.snapshot();
        self.record_restarts(id, &snapshot.failures, seen_restarts);
        let nodes = view::figures(&snapshot.nodes);
        let checkpoints = snapshot.checkpoints.history;
        let (state, failure) = match handle.wait() {
            Ok(report) => match report.outcome {
                JobOutcome::Finished => (JobState::Finished, None),
                JobOutcome::Stopped { .. } => (JobState::Stopped, None),
            },
            Err(RuntimeError::Cancelled) => (JobState::Cancelled, None),
            Err(e) => (JobState::Failed, Some((e.code(), e.to_string()))),
        };
        match &failure {
            Some((code, message)) => tracing::warn!(job_id = %id, %code, %message, "job failed"),
            None => tracing::info!(job_id = %id, state = ?state, "job ended"),
        }
        self.live().remove(id);
        self.end(id, state, failure, nodes, &checkpoints);
    }

    /// Records the restarts past the first `seen`; returns how many there are.
    fn record_restarts(&self, id: &str, restarts: &[weir_runtime::Restarted], seen: usize) -> usize {
        for r in restarts.iter().skip(seen) {
            let at_ms = r.at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            let failure = Failure { at_ms, code: r.code.to_string(), message: r.cause.clone() };
            if let Err(e) = self.meta.update_job(id, |j| j.failures.push(failure)) {
                tracing::error!(job_id = %id, "cannot record a restart: {e}");
            }
        }
        restarts.len()
    }

    /// Records that a job ended (a cancelled job stays cancelled), with its
    /// last run's node figures and checkpoints.
    fn end(
        &self,
        id: &str,
        state: JobState,
        failure: Option<(&str, String)>,
        nodes: Vec<NodeFigures>,
        checkpoints: &[weir_runtime::CheckpointRecord],
    ) {
        let result = self.meta.update_job(id, |j| {
            j.checkpoints = checkpoint_history(std::mem::take(&mut j.checkpoints), checkpoints);
            if j.state != JobState::Cancelled {
                j.state = state;
            }
            j.ended_at_ms.get_or_insert(now_ms());
            if let Some((code, message)) = failure {
                j.failures.push(Failure { at_ms: now_ms(), code: code.to_string(), message });
            }
            if !nodes.is_empty() {
                j.nodes = nodes;
            }
        });
        if let Err(e) = result {
            tracing::error!(job_id = %id, "cannot record the end of the job: {e}");
        }
    }

    /// Resumes every job that was running when the server last stopped.
    pub fn resume_all(self: &Arc<Self>) -> Result<usize, crate::ServerError> {
        let mut resumed = 0;
        for job in self.meta.jobs()?.into_iter().filter(|j| j.state == JobState::Running) {
            let job = self.meta.update_job(&job.id, |j| j.resumed += 1)?.unwrap_or(job);
            match self.launch(&job, true) {
                Ok(()) => resumed += 1,
                Err(e) => {
                    tracing::error!(job = %job.name, job_id = %job.id, "cannot resume the job: {}", e.message);
                    self.end(&job.id, JobState::Failed, Some((e.code, e.message)), Vec::new(), &[]);
                }
            }
        }
        Ok(resumed)
    }

    /// Cancels a job: it stops at once and is not resumed.
    pub fn cancel(&self, id: &str) -> ApiResult<JobView> {
        let record = self.record(id)?;
        if record.state.is_terminal() {
            return Err(ApiError::conflict(
                "job_ended",
                format!("job {id} has already ended ({}): there is nothing to cancel", record.state.as_str()),
            ));
        }
        self.meta.update_job(id, |j| j.state = JobState::Cancelled)?;
        if let Some(live) = self.live().get(id) {
            live.control.cancel();
        }
        tracing::info!(job_id = %id, "job cancelled");
        self.view(id)
    }

    pub(crate) fn record(&self, id: &str) -> ApiResult<JobRecord> {
        self.meta.job(id)?.ok_or_else(|| {
            ApiError::not_found("job_not_found", format!("there is no job {id} (weir job list shows the jobs)"))
        })
    }

    /// Every job, oldest first.
    pub fn list(&self) -> ApiResult<Vec<JobSummary>> {
        let jobs = self.meta.jobs()?;
        let live = self.live();
        let running: HashMap<&str, (weir_runtime::JobSnapshot, Rates, Arc<JobShape>)> = live
            .iter()
            .map(|(id, l)| {
                let rates = l.rates.lock().unwrap_or_else(|e| e.into_inner()).clone();
                (id.as_str(), (l.control.snapshot(), rates, l.shape.clone()))
            })
            .collect();
        Ok(jobs
            .iter()
            .map(|j| view::summary(j, running.get(j.id.as_str()).map(|(s, r, shape)| (s, r, &shape.plan))))
            .collect())
    }

    /// One job, with its live figures when it runs here.
    pub fn view(&self, id: &str) -> ApiResult<JobView> {
        let record = self.record(id)?;
        let live = self.live();
        let running = live.get(id).map(|l| {
            let rates = l.rates.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (l.control.snapshot(), rates, l.shape.clone())
        });
        drop(live);
        let (running, shape) = match running {
            Some((snapshot, rates, shape)) => (Some((snapshot, rates)), shape),
            None => (None, Arc::new(JobShape::of(&parse(&record.spec, record_format(&record))?))),
        };
        Ok(view::job(&record, &shape, running))
    }

    /// A job's last checkpoints, oldest first: those of its earlier runs
    /// and, while it runs here, this run's.
    pub fn checkpoints(&self, id: &str) -> ApiResult<Vec<CheckpointEntry>> {
        let record = self.record(id)?;
        let live = self.live().get(id).map(|l| l.control.snapshot().checkpoints.history).unwrap_or_default();
        Ok(checkpoint_history(record.checkpoints, &live))
    }

    /// The failures of a job, oldest first.
    pub fn failures(&self, id: &str) -> ApiResult<Vec<Failure>> {
        Ok(self.record(id)?.failures)
    }
}
