//! Job metrics: Prometheus counters and gauges per node subtask, labelled
//! `job` (the name), `job_id` (unique), `node` and `subtask`. The families
//! are registered once per [`Metrics`] (one per process), whatever the
//! number of jobs; each job adds its label sets and removes them when it
//! ends. The hot path only touches atomics: a task's counters are created
//! once and kept ([`Counters`]), no lock or allocation per call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;
use weir_types::{MIN_WATERMARK, Timestamp};

/// Label sets: `job`, `job_id`, then `node` and `subtask`, and for plugin
/// counters `name`.
pub type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Families {
    records_in: Family<Labels, Counter>,
    records_out: Family<Labels, Counter>,
    side_out: Family<Labels, Counter>,
    watermark: Family<Labels, Gauge>,
    backpressured: Family<Labels, Counter>,
    lag: Family<Labels, Gauge>,
    plugin: Family<Labels, Counter>,
    checkpoints: CheckpointMetrics,
}

/// The metric families of every job of a process, registered once in one
/// registry (what `/metrics` serves).
#[derive(Clone)]
pub struct Metrics {
    families: Arc<Families>,
    registry: Arc<Mutex<Registry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The families, registered in a registry of their own (names
    /// prefixed `weir_`).
    pub fn new() -> Self {
        let m = Families::default();
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("weir");
        r.register("records_in", "Records a node subtask received", m.records_in.clone());
        r.register("records_out", "Records a node subtask emitted on its main output", m.records_out.clone());
        r.register("side_output_records", "Records a node subtask emitted on side outputs", m.side_out.clone());
        r.register("watermark_ms", "A node subtask's event-time watermark (ms since the epoch)", m.watermark.clone());
        r.register(
            "source_lag_records",
            "Records a source subtask is behind the end of its input (Kafka: the last stable offsets of its \
             partitions, as of the client's last statistics, every second)",
            m.lag.clone(),
        );
        r.register(
            "backpressured_us",
            "Time a node subtask waited to send downstream because the channel was full (microseconds): growing by \
             close to a second per second, the node is back-pressured by a slower one after it",
            m.backpressured.clone(),
        );
        r.register("operator_counter", "Counters reported by operator plugins", m.plugin.clone());
        let c = &m.checkpoints;
        r.register("checkpoints_completed", "Checkpoints completed", c.completed.clone());
        r.register("checkpoints_aborted", "Checkpoints aborted (timed out or not stored)", c.aborted.clone());
        r.register("checkpoint_last_id", "The last completed checkpoint's id", c.last_id.clone());
        r.register(
            "checkpoint_last_duration_ms",
            "Trigger to stored, last checkpoint (ms)",
            c.last_duration_ms.clone(),
        );
        r.register("checkpoint_last_bytes", "State size of the last checkpoint", c.last_bytes.clone());
        r.register(
            "checkpoint_last_incremental_bytes",
            "What the last checkpoint stored that no earlier one had",
            c.last_incremental_bytes.clone(),
        );
        r.register(
            "checkpoint_last_alignment_ms",
            "Longest barrier alignment, last checkpoint",
            c.last_alignment_ms.clone(),
        );
        r.register("job_restarts", "Job restarts after a task failure", c.restarts.clone());
        Metrics { families: Arc::new(m), registry: Arc::new(Mutex::new(registry)) }
    }

    /// Every family in the Prometheus text format.
    pub fn encode(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String does not fail");
        out
    }

    /// The metrics of one job.
    pub(crate) fn job(&self, id: &str, name: &str) -> JobMetrics {
        let labels = vec![("job".to_string(), name.to_string()), ("job_id".to_string(), id.to_string())];
        let checkpoints = self.families.checkpoints.clone();
        for family in [&checkpoints.completed, &checkpoints.aborted, &checkpoints.restarts] {
            drop(family.get_or_create(&labels));
        }
        JobMetrics {
            families: self.families.clone(),
            labels,
            tasks: Mutex::new(Vec::new()),
            history: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

/// Checkpoint metrics (labelled by job).
#[derive(Clone, Default)]
pub(crate) struct CheckpointMetrics {
    pub(crate) completed: Family<Labels, Counter>,
    pub(crate) aborted: Family<Labels, Counter>,
    pub(crate) last_id: Family<Labels, Gauge>,
    pub(crate) last_duration_ms: Family<Labels, Gauge>,
    pub(crate) last_bytes: Family<Labels, Gauge>,
    pub(crate) last_incremental_bytes: Family<Labels, Gauge>,
    pub(crate) last_alignment_ms: Family<Labels, Gauge>,
    pub(crate) restarts: Family<Labels, Counter>,
}

/// One job's metrics: its label sets in the shared families.
pub(crate) struct JobMetrics {
    families: Arc<Families>,
    labels: Labels,
    tasks: Mutex<Vec<Arc<NodeMetrics>>>,
    history: Mutex<std::collections::VecDeque<CheckpointRecord>>,
}

/// A job's checkpoint figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints aborted.
    pub aborted: u64,
    /// The last completed checkpoint's id.
    pub last_id: Option<u64>,
    /// Its duration, trigger to stored (ms).
    pub last_duration_ms: u64,
    /// Its state size (bytes).
    pub last_bytes: u64,
    /// Restarts after a task failure.
    pub restarts: u64,
    /// The last [`CHECKPOINT_HISTORY`] checkpoints, completed or aborted,
    /// oldest first.
    pub history: Vec<CheckpointRecord>,
}

/// How many checkpoints a job's history keeps.
pub const CHECKPOINT_HISTORY: usize = 100;

/// One checkpoint of a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Its id.
    pub id: u64,
    /// `checkpoint`, `savepoint` or `stop` (`checkpoint` when aborted).
    pub kind: String,
    /// When it completed or was aborted (ms since the epoch).
    pub at_ms: i64,
    /// Trigger to stored (ms); 0 when aborted.
    pub duration_ms: u64,
    /// The longest barrier alignment of a task (ms).
    pub alignment_ms: u64,
    /// Its state size (bytes).
    pub bytes: u64,
    /// What it stored that no earlier one had (bytes).
    pub incremental_bytes: u64,
    /// Why it was aborted; `None` when it completed.
    pub aborted: Option<String>,
}

impl JobMetrics {
    /// Adds `record` to the job's checkpoint history.
    pub(crate) fn record_checkpoint(&self, record: CheckpointRecord) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == CHECKPOINT_HISTORY {
            history.pop_front();
        }
        history.push_back(record);
    }

    /// The checkpoint families.
    pub(crate) fn checkpoints(&self) -> &CheckpointMetrics {
        &self.families.checkpoints
    }

    /// The job's label set.
    pub(crate) fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The metrics of subtask `subtask` of `node` (created once; a restart
    /// goes on counting in the same ones).
    pub(crate) fn task(&self, node: &str, subtask: u32) -> Arc<NodeMetrics> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tasks.iter().find(|t| t.node == node && t.subtask == subtask) {
            return t.clone();
        }
        let mut labels = self.labels.clone();
        labels.push(("node".to_string(), node.to_string()));
        labels.push(("subtask".to_string(), subtask.to_string()));
        let f = &self.families;
        let watermark = f.watermark.get_or_create(&labels).clone();
        watermark.set(MIN_WATERMARK);
        let metrics = Arc::new(NodeMetrics {
            node: node.to_string(),
            subtask,
            records_in: f.records_in.get_or_create(&labels).clone(),
            records_out: f.records_out.get_or_create(&labels).clone(),
            side_out: f.side_out.get_or_create(&labels).clone(),
            watermark,
            backpressured: f.backpressured.get_or_create(&labels).clone(),
            lag_family: f.lag.clone(),
            lag: OnceLock::new(),
            plugin: f.plugin.clone(),
            labels,
            counter_names: Mutex::new(BTreeMap::new()),
            first_record: OnceLock::new(),
        });
        tasks.push(metrics.clone());
        metrics
    }

    /// What each node did, in `order`: its subtasks summed.
    pub(crate) fn report(&self, order: &[String]) -> Vec<NodeReport> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        order
            .iter()
            .map(|node| {
                let mut report = NodeReport { node: node.clone(), ..NodeReport::default() };
                let mut watermark: Option<Timestamp> = None;
                for t in tasks.iter().filter(|t| &t.node == node) {
                    let s = t.subtask_report();
                    report.records_in += s.records_in;
                    report.records_out += s.records_out;
                    report.side_out += t.side_out.get();
                    for (name, value) in t.counters() {
                        *report.counters.entry(name).or_default() += value;
                    }
                    watermark = Some(watermark.map_or(s.watermark, |w| w.min(s.watermark)));
                    report.backpressured_us = report.backpressured_us.max(s.backpressured_us);
                    report.subtasks.push(s);
                }
                report.subtasks.sort_by_key(|s| s.index);
                report.watermark = watermark.filter(|w| *w != MIN_WATERMARK);
                report
            })
            .collect()
    }

    /// The job's checkpoint figures.
    pub(crate) fn checkpoint_stats(&self) -> CheckpointStats {
        let c = &self.families.checkpoints;
        let labels = &self.labels;
        let id = c.last_id.get_or_create(labels).get();
        CheckpointStats {
            completed: c.completed.get_or_create(labels).get(),
            aborted: c.aborted.get_or_create(labels).get(),
            last_id: (id > 0).then_some(id as u64),
            last_duration_ms: c.last_duration_ms.get_or_create(labels).get().max(0) as u64,
            last_bytes: c.last_bytes.get_or_create(labels).get().max(0) as u64,
            restarts: c.restarts.get_or_create(labels).get(),
            history: self.history.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect(),
        }
    }

    /// Removes the job's label sets from the shared families (the job has
    /// ended; a long-running server must not keep every job it ran).
    pub(crate) fn remove(&self) {
        let f = &self.families;
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            f.records_in.remove(&t.labels);
            f.records_out.remove(&t.labels);
            f.side_out.remove(&t.labels);
            f.watermark.remove(&t.labels);
            f.backpressured.remove(&t.labels);
            f.lag.remove(&t.labels);
            for name in t.counter_names.lock().unwrap_or_else(|e| e.into_inner()).keys() {
                f.plugin.remove(&t.counter_labels(name));
            }
        }
        let c = &f.checkpoints;
        for family in [&c.completed, &c.aborted, &c.restarts] {
            family.remove(&self.labels);
        }
        for family in [&c.last_id, &c.last_duration_ms, &c.last_bytes, &c.last_incremental_bytes, &c.last_alignment_ms]
        {
            family.remove(&self.labels);
        }
    }
}

/// Metrics of one node subtask.
pub struct NodeMetrics {
    /// The node id.
    pub node: String,
    /// The subtask's index.
    pub subtask: u32,
    /// Records received.
    pub records_in: Counter,
    /// Records emitted on the main output.
    pub records_out: Counter,
    /// Records emitted on side outputs.
    pub side_out: Counter,
    /// The subtask's watermark.
    pub watermark: Gauge,
    /// Time it waited to send downstream because a channel was full (µs).
    pub backpressured: Counter,
    lag_family: Family<Labels, Gauge>,
    /// A source's lag, once it reported one.
    lag: OnceLock<Gauge>,
    plugin: Family<Labels, Counter>,
    labels: Labels,
    /// Plugin counters seen, for reports (locked only for a new name).
    counter_names: Mutex<BTreeMap<String, Counter>>,
    /// When the node first received a record (sinks: first output of the job).
    pub first_record: OnceLock<Instant>,
}

impl NodeMetrics {
    /// Metrics that no registry sees (harnesses and unit tests).
    pub fn detached(node: &str) -> Arc<Self> {
        Metrics::new().job("detached", node).task(node, 0)
    }

    /// Sets a source subtask's lag (records behind the end of its input);
    /// the series exists only for sources that report one.
    pub fn set_lag(&self, records: u64) {
        let gauge = self.lag.get_or_init(|| self.lag_family.get_or_create(&self.labels).clone());
        gauge.set(records.min(i64::MAX as u64) as i64);
    }

    fn counter_labels(&self, name: &str) -> Labels {
        let mut labels = self.labels.clone();
        labels.push(("name".to_string(), name.to_string()));
        labels
    }

    /// The plugin counter `name`, created when first used.
    fn counter(&self, name: &str) -> Counter {
        let mut names = self.counter_names.lock().unwrap_or_else(|e| e.into_inner());
        names
            .entry(name.to_string())
            .or_insert_with(|| self.plugin.get_or_create(&self.counter_labels(name)).clone())
            .clone()
    }

    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        let names = self.counter_names.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().map(|(k, c)| (k.clone(), c.get())).collect()
    }

    fn subtask_report(&self) -> SubtaskReport {
        SubtaskReport {
            index: self.subtask,
            records_in: self.records_in.get(),
            records_out: self.records_out.get(),
            watermark: self.watermark.get(),
            backpressured_us: self.backpressured.get(),
        }
    }
}

/// The longest counter name a plugin may report.
pub(crate) const MAX_COUNTER_NAME: usize = 128;
/// The most distinct counters one plugin instance may report.
pub(crate) const MAX_COUNTERS: usize = 1000;

/// A task's plugin counters by name, owned by the task: after a counter's
/// first use, adding to it is one atomic add.
pub(crate) struct Counters {
    metrics: Arc<NodeMetrics>,
    known: FxHashMap<String, Counter>,
}

impl Counters {
    pub(crate) fn new(metrics: Arc<NodeMetrics>) -> Self {
        Counters { metrics, known: FxHashMap::default() }
    }

    /// Adds to counter `name`.
    pub(crate) fn add(&mut self, name: &str, delta: u64) {
        match self.known.get(name) {
            Some(c) => {
                c.inc_by(delta);
            }
            None => {
                let c = self.metrics.counter(name);
                c.inc_by(delta);
                self.known.insert(name.to_string(), c);
            }
        }
    }

    /// Adds to a counter a plugin reported: its name at most
    /// [`MAX_COUNTER_NAME`] bytes, at most [`MAX_COUNTERS`] of them.
    pub(crate) fn add_reported(&mut self, name: &str, delta: u64) -> Result<(), String> {
        if name.len() > MAX_COUNTER_NAME {
            return Err(format!(
                "it reported a counter with a name of {} bytes (at most {MAX_COUNTER_NAME})",
                name.len()
            ));
        }
        if !self.known.contains_key(name) && self.known.len() >= MAX_COUNTERS {
            return Err(format!("it reported more than {MAX_COUNTERS} distinct counters"));
        }
        self.add(name, delta);
        Ok(())
    }

    /// The node subtask's metrics.
    pub(crate) fn node(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }
}

/// What a node did (its subtasks summed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// The node id.
    pub node: String,
    /// Records received.
    pub records_in: u64,
    /// Records emitted on the main output.
    pub records_out: u64,
    /// Records emitted on side outputs.
    pub side_out: u64,
    /// Plugin counters.
    pub counters: BTreeMap<String, u64>,
    /// The lowest watermark of its subtasks (`None` before any).
    pub watermark: Option<Timestamp>,
    /// The longest time one of its subtasks waited to send downstream
    /// because a channel was full (µs): the back-pressure signal.
    pub backpressured_us: u64,
    /// Each subtask.
    pub subtasks: Vec<SubtaskReport>,
}

/// What one subtask did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtaskReport {
    /// The subtask's index.
    pub index: u32,
    /// Records received.
    pub records_in: u64,
    /// Records emitted on the main output.
    pub records_out: u64,
    /// Its watermark.
    pub watermark: Timestamp,
    /// Time it waited to send downstream because a channel was full (µs).
    pub backpressured_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_jobs_of_one_name_share_families_and_keep_apart() {
        let metrics = Metrics::new();
        let (a, b) = (metrics.job("id-a", "same"), metrics.job("id-b", "same"));
        a.task("avg", 0).records_in.inc_by(3);
        a.task("avg", 1).records_in.inc_by(4);
        b.task("avg", 0).records_in.inc_by(10);
        let mut counters = Counters::new(a.task("avg", 1));
        counters.add("late", 2);
        counters.add("late", 1);
        let report = a.report(&["avg".to_string()]);
        assert_eq!((report[0].records_in, report[0].counters.get("late")), (7, Some(&3)));
        assert_eq!(b.report(&["avg".to_string()])[0].records_in, 10);
        let text = metrics.encode();
        assert_eq!(text.matches("# TYPE weir_records_in counter").count(), 1, "{text}");
        assert!(text.contains(r#"weir_records_in_total{job="same",job_id="id-a",node="avg",subtask="1"} 4"#), "{text}");
        a.remove();
        let text = metrics.encode();
        assert!(!text.contains("id-a"), "{text}");
        assert!(text.contains(r#"job_id="id-b""#), "{text}");
    }
}
