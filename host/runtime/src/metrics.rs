//! Job metrics: Prometheus counters and gauges per node, shared by the
//! node's tasks (atomics, no locks on the hot path). They back the progress
//! log, the job report and `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use weir_types::MIN_WATERMARK;

/// Label sets: `job`, `node` and, for plugin counters, `name`.
pub type Labels = Vec<(String, String)>;

/// A registry shared with whoever serves `/metrics`.
pub type SharedRegistry = Arc<Mutex<Registry>>;

/// The metric families of a job, registered once.
#[derive(Clone, Default)]
pub struct JobMetrics {
    records_in: Family<Labels, Counter>,
    records_out: Family<Labels, Counter>,
    side_out: Family<Labels, Counter>,
    watermark: Family<Labels, Gauge>,
    plugin: Family<Labels, Counter>,
    checkpoints: CheckpointMetrics,
}

/// Checkpoint metrics of a job (labelled by `job`).
#[derive(Clone, Default)]
pub struct CheckpointMetrics {
    /// Completed checkpoints.
    pub completed: Family<Labels, Counter>,
    /// Aborted checkpoints (timed out or not stored).
    pub aborted: Family<Labels, Counter>,
    /// The last completed checkpoint's id.
    pub last_id: Family<Labels, Gauge>,
    /// How long it took from trigger to stored (ms).
    pub last_duration_ms: Family<Labels, Gauge>,
    /// Its state size (bytes).
    pub last_bytes: Family<Labels, Gauge>,
    /// What it stored that no earlier checkpoint had (bytes).
    pub last_incremental_bytes: Family<Labels, Gauge>,
    /// Its longest barrier alignment (ms).
    pub last_alignment_ms: Family<Labels, Gauge>,
    /// Job restarts after a task failure.
    pub restarts: Family<Labels, Counter>,
}

impl CheckpointMetrics {
    /// The label set of `job`.
    pub fn labels(job: &str) -> Labels {
        vec![("job".to_string(), job.to_string())]
    }
}

impl JobMetrics {
    /// Registers the families in `registry` (names prefixed `weir_`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = JobMetrics::default();
        let r = registry.sub_registry_with_prefix("weir");
        r.register("records_in", "Records a node received", m.records_in.clone());
        r.register("records_out", "Records a node emitted on its main output", m.records_out.clone());
        r.register("side_output_records", "Records a node emitted on side outputs", m.side_out.clone());
        r.register("watermark_ms", "A node's event-time watermark (ms since the epoch)", m.watermark.clone());
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
        m
    }

    /// The checkpoint metrics.
    pub fn checkpoints(&self) -> &CheckpointMetrics {
        &self.checkpoints
    }

    /// The metrics of one node.
    pub fn node(&self, job: &str, node: &str) -> NodeMetrics {
        let labels = vec![("job".to_string(), job.to_string()), ("node".to_string(), node.to_string())];
        let watermark = self.watermark.get_or_create(&labels).clone();
        watermark.set(MIN_WATERMARK);
        NodeMetrics {
            node: node.to_string(),
            records_in: self.records_in.get_or_create(&labels).clone(),
            records_out: self.records_out.get_or_create(&labels).clone(),
            side_out: self.side_out.get_or_create(&labels).clone(),
            watermark,
            plugin: self.plugin.clone(),
            labels,
            counter_names: Mutex::new(BTreeMap::new()),
            first_record: OnceLock::new(),
        }
    }
}

/// Metrics of one node.
pub struct NodeMetrics {
    /// The node id.
    pub node: String,
    /// Records received.
    pub records_in: Counter,
    /// Records emitted on the main output.
    pub records_out: Counter,
    /// Records emitted on side outputs.
    pub side_out: Counter,
    /// The lowest watermark any of the node's tasks reported last.
    pub watermark: Gauge,
    plugin: Family<Labels, Counter>,
    labels: Labels,
    /// Plugin counters seen, for the report.
    counter_names: Mutex<BTreeMap<String, Counter>>,
    /// When the node first received a record (sinks: first output of the job).
    pub first_record: OnceLock<Instant>,
}

impl NodeMetrics {
    /// Adds to a plugin counter.
    pub fn add_counter(&self, name: &str, delta: u64) {
        let mut names = self.counter_names.lock().unwrap_or_else(|e| e.into_inner());
        let counter = names.entry(name.to_string()).or_insert_with(|| {
            let mut labels = self.labels.clone();
            labels.push(("name".to_string(), name.to_string()));
            self.plugin.get_or_create(&labels).clone()
        });
        counter.inc_by(delta);
    }

    /// A snapshot for reports.
    pub fn report(&self) -> NodeReport {
        let names = self.counter_names.lock().unwrap_or_else(|e| e.into_inner());
        NodeReport {
            node: self.node.clone(),
            records_in: self.records_in.get(),
            records_out: self.records_out.get(),
            side_out: self.side_out.get(),
            counters: names.iter().map(|(k, c)| (k.clone(), c.get())).collect(),
        }
    }
}

/// What a node did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Renders a registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String does not fail");
    out
}
