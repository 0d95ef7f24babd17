//! A test harness for operator plugins: push records and watermarks, move
//! processing time, and look at what came out and what is in state — the
//! real plugin, the real driver, no dataflow around it.
//!
//! ```no_run
//! use weir_runtime::harness::OperatorHarness;
//! use weir_types::Record;
//!
//! let mut h = OperatorHarness::new("target/plugins/sensor-average.wasm".as_ref(), serde_json::json!(null)).unwrap();
//! h.process(vec![Record::new(Some(b"s1".to_vec()), br#"{"id":"s1","timestamp":1000,"temperature":20.0}"#.to_vec(), 1000)]).unwrap();
//! h.watermark(4999).unwrap();
//! assert_eq!(h.take_output().len(), 1);
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use weir_state::{KeyGroup, MemoryBackend, StateContent, TimerEntry};
use weir_types::{Record, TaskInfo, Timestamp};
use weir_wasm::{InitArgs, PluginEngine};

use crate::error::{Result, RuntimeError};
use crate::metrics::{JobMetrics, NodeMetrics};
use crate::operator::{Clock, WasmOperator};

/// Drives one operator instance by hand.
pub struct OperatorHarness {
    op: WasmOperator,
    metrics: Arc<NodeMetrics>,
    output: Vec<Record>,
    side: Vec<(String, Record)>,
    state_names: Vec<String>,
}

impl OperatorHarness {
    /// Loads a plugin and initializes it with `config` as subtask 0 of 1,
    /// over in-memory state with 128 key groups. Processing time starts at 0.
    pub fn new(plugin: &Path, config: serde_json::Value) -> Result<Self> {
        Self::with_backend(plugin, config, Box::new(MemoryBackend::new(128)))
    }

    /// The same over a given state backend (which must use 128 key groups).
    pub fn with_backend(
        plugin: &Path,
        config: serde_json::Value,
        backend: Box<dyn weir_state::KeyedStateBackend>,
    ) -> Result<Self> {
        let task = TaskInfo { node: "harness".into(), index: 0, parallelism: 1 };
        let engine = PluginEngine::new().map_err(|e| RuntimeError::Setup(e.to_string()))?;
        let plugin =
            engine.load_file(plugin).map_err(|source| RuntimeError::Load { node: "harness".into(), source })?;
        let mut instance =
            plugin.instantiate(&task.to_string(), backend, 128).map_err(|e| RuntimeError::plugin(&task, e))?;
        let info = instance
            .init(&InitArgs {
                node_id: "harness".into(),
                config: config.to_string(),
                subtask_index: 0,
                parallelism: 1,
                attempt: 0,
            })
            .map_err(|e| RuntimeError::plugin(&task, e))?;
        let metrics = Arc::new(JobMetrics::default().node("harness", "harness"));
        let mut op = WasmOperator::new(task, instance, 128, 1024, metrics.clone())?;
        op.clock = Clock::Manual(0);
        Ok(OperatorHarness {
            op,
            metrics,
            output: Vec::new(),
            side: Vec::new(),
            state_names: info.states.into_iter().map(|s| s.name).collect(),
        })
    }

    /// Processes one batch.
    pub fn process(&mut self, records: Vec<Record>) -> Result<()> {
        let emitted = self.op.process(records.iter().collect())?;
        self.collect(emitted);
        Ok(())
    }

    fn collect(&mut self, emitted: crate::operator::Emitted) {
        self.output.extend(emitted.main.to_records());
        for (name, batch) in emitted.side {
            self.side.extend(batch.iter().map(|r| (name.clone(), r.to_record())));
        }
    }

    /// Advances the watermark, firing event-time timers.
    pub fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let emitted = self.op.advance_watermark(watermark)?;
        self.collect(emitted);
        Ok(())
    }

    /// Sets processing time, firing due processing-time timers.
    pub fn set_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.op.clock = Clock::Manual(now);
        let emitted = self.op.fire_processing_timers()?;
        self.collect(emitted);
        Ok(())
    }

    /// Main output so far, emptied.
    pub fn take_output(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.output)
    }

    /// Side output records so far, emptied.
    pub fn take_side_output(&mut self) -> Vec<(String, Record)> {
        std::mem::take(&mut self.side)
    }

    /// The plugin's counters.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.metrics.report().counters
    }

    /// Every (key group, key, content) of the state the plugin declared as `name`.
    pub fn state(&mut self, name: &str) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>> {
        let handle = self.state_names.iter().position(|n| n == name).ok_or_else(|| {
            RuntimeError::Setup(format!("the plugin declared no state `{name}` (it has {:?})", self.state_names))
        })?;
        let task = self.op.task.clone();
        self.op.instance().state_entries(handle as u32).map_err(|e| RuntimeError::plugin(&task, e))
    }

    /// The timers stored in state.
    pub fn timers(&mut self) -> Result<Vec<TimerEntry>> {
        let task = self.op.task.clone();
        let timers = self.op.instance().backend().timers().map_err(|e| RuntimeError::task(&task, e))?;
        Ok(timers.into_iter().map(|(_, t)| t).collect())
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.op.watermark()
    }
}
