//! Per-node counters shared by the node's tasks, for progress logs, the job
//! report and (with the server) Prometheus.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use weir_types::MIN_WATERMARK;

/// Counters of one node.
#[derive(Debug)]
pub struct NodeMetrics {
    /// The node id.
    pub node: String,
    /// Records received.
    pub records_in: AtomicU64,
    /// Records emitted on the main output.
    pub records_out: AtomicU64,
    /// Records emitted on side outputs.
    pub side_out: AtomicU64,
    /// Lowest watermark over the node's tasks (last reported).
    pub watermark: AtomicI64,
    /// Counters the plugin reported, by name.
    pub counters: Mutex<BTreeMap<String, u64>>,
    /// When the node first received a record (sinks: first output of the job).
    pub first_record: OnceLock<Instant>,
}

impl NodeMetrics {
    /// Zeroed counters for `node`.
    pub fn new(node: &str) -> Self {
        NodeMetrics {
            node: node.to_string(),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            side_out: AtomicU64::new(0),
            watermark: AtomicI64::new(MIN_WATERMARK),
            counters: Mutex::new(BTreeMap::new()),
            first_record: OnceLock::new(),
        }
    }

    /// Adds to a plugin counter.
    pub fn add_counter(&self, name: &str, delta: u64) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry(name.to_string()).or_default() += delta;
    }

    /// A snapshot for reports.
    pub fn report(&self) -> NodeReport {
        NodeReport {
            node: self.node.clone(),
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            side_out: self.side_out.load(Ordering::Relaxed),
            counters: self.counters.lock().unwrap_or_else(|e| e.into_inner()).clone(),
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
