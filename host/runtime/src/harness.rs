//! A test harness for operators: push records and watermarks, move
//! processing time, take a barrier's snapshot, restore it — at another
//! parallelism too — and swap the plugin at a barrier, then look at what
//! came out and what is in state. The real plugin, the real operator and
//! the snapshot and restore code tasks use; no dataflow around it (as
//! RisingWave tests its executors).
//!
//! ```no_run
//! use weir_runtime::harness::OperatorHarness;
//! use weir_types::Record;
//!
//! let mut h = OperatorHarness::new("target/plugins/sensor-average.wasm".as_ref(), serde_json::json!(null)).unwrap();
//! h.process(vec![Record::new(Some(b"s1".to_vec()), br#"{"id":"s1","timestamp":1000,"temperature":20.0}"#.to_vec(), 1000)]).unwrap();
//! let snapshot = h.barrier(1).unwrap();
//! // Two subtasks take over the state, each its own key groups.
//! let mut scaled = OperatorHarness::rescale(&h.setup(), &[snapshot], 2).unwrap();
//! scaled[weir_runtime::harness::subtask_of(b"s1", 2, 128)].watermark(4999).unwrap();
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use weir_spec::{JobSpec, OperatorSpec};
use weir_state::{KeyGroup, KeyedStateBackend, StateContent, StateDescriptor, StateEncoding, TimerEntry};
use weir_types::{NodeUpdate, Record, TaskInfo, Timestamp};
use weir_wasm::{Plugin, PluginEngine};

use crate::build::{NodeContext, StateRoot, operator_node};
use crate::checkpointing::restore::{RestoredPart, RestoredState};
use crate::checkpointing::snapshot::{PartState, snapshot_operator};
use crate::error::{Result, RuntimeError};
use crate::metrics::{Metrics, NodeMetrics};
use crate::node::Node;
use crate::operator::{Clock, Emitted, InstanceSetup, WasmOperator};

/// One subtask's state at a barrier, as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtaskSnapshot {
    /// The subtask's index.
    pub subtask: u32,
    /// The key groups it owned.
    pub key_groups: Range<KeyGroup>,
    /// Its watermark at the barrier.
    pub watermark: Timestamp,
    /// The states it held.
    pub states: Vec<StateDescriptor>,
    /// The logical snapshot of its backend.
    pub bytes: Vec<u8>,
}

/// What the harness builds an operator from: its spec, its plugin and the
/// job settings that matter to it.
#[derive(Clone)]
pub struct HarnessSetup {
    /// The operator's spec.
    pub operator: OperatorSpec,
    /// Its plugin, loaded (none for a window with a built-in aggregate).
    pub plugin: Option<Plugin>,
    /// Key groups of the job.
    pub max_parallelism: u32,
    /// Records per call.
    pub batch_size: usize,
}

impl HarnessSetup {
    /// Operator `node` of `spec`, its plugin loaded with `engine`.
    pub fn from_spec(spec: &JobSpec, node: &str, engine: &PluginEngine) -> Result<Self> {
        let operator = spec
            .operators
            .iter()
            .find(|o| o.id == node)
            .cloned()
            .ok_or_else(|| RuntimeError::Unavailable(format!("the spec has no operator `{node}`")))?;
        let plugin = match &operator.plugin {
            Some(path) => {
                Some(engine.load_file(path).map_err(|source| RuntimeError::Load { node: node.to_string(), source })?)
            }
            None => None,
        };
        Ok(HarnessSetup { operator, plugin, max_parallelism: spec.max_parallelism, batch_size: spec.batch_size })
    }
}

/// The subtask of `parallelism` that owns `key`.
pub fn subtask_of(key: &[u8], parallelism: u32, max_parallelism: u32) -> usize {
    weir_types::task_for_key_group(weir_types::key_group(key, max_parallelism), parallelism, max_parallelism)
}

/// Drives one operator subtask by hand.
pub struct OperatorHarness {
    node: Box<dyn Node>,
    setup: HarnessSetup,
    metrics: Arc<NodeMetrics>,
    output: Vec<Record>,
    side: Vec<(String, Record)>,
}

/// A harness over a Wasm operator built from a plugin file alone.
fn plugin_setup(plugin: &Path, config: serde_json::Value) -> Result<HarnessSetup> {
    let engine = PluginEngine::new().map_err(|source| RuntimeError::Load { node: "harness".into(), source })?;
    let loaded = engine.load_file(plugin).map_err(|source| RuntimeError::Load { node: "harness".into(), source })?;
    let text = format!(
        "name: harness\nsources: [{{id: input, type: generator, generator: sensor-bench, events: 0}}]\n\
         operators: [{{id: harness, input: input, plugin: {}, config: {}}}]\n\
         sinks: [{{id: out, type: blackhole, input: harness}}]\nbatch_size: 1024\n",
        serde_json::Value::String(plugin.display().to_string()),
        config
    );
    let spec = JobSpec::parse(&text, weir_spec::Format::Yaml)?;
    Ok(HarnessSetup {
        operator: spec.operators[0].clone(),
        plugin: Some(loaded),
        max_parallelism: spec.max_parallelism,
        batch_size: spec.batch_size,
    })
}

impl OperatorHarness {
    /// Loads a plugin and initializes it with `config` as subtask 0 of 1,
    /// over in-memory state with 128 key groups. Processing time starts at 0.
    pub fn new(plugin: &Path, config: serde_json::Value) -> Result<Self> {
        Self::build(plugin_setup(plugin, config)?, 0, 1, Vec::new(), Vec::new())
    }

    /// The same over a given state backend (which must use 128 key groups).
    pub fn with_backend(plugin: &Path, config: serde_json::Value, backend: Box<dyn KeyedStateBackend>) -> Result<Self> {
        let setup = plugin_setup(plugin, config)?;
        let task = TaskInfo { node: setup.operator.id.as_str().into(), index: 0, parallelism: 1 };
        let metrics = Metrics::new().job("harness", "harness").task(&task.node, 0);
        let plugin = setup.plugin.clone().expect("a plugin harness has a plugin");
        let state = weir_state::KeyedState::new(backend, setup.max_parallelism, 0..setup.max_parallelism as u16);
        let instance: InstanceSetup = crate::build::instance_setup(&setup.operator, &task, 0);
        let mut op = WasmOperator::new(task, &plugin, instance, state, setup.batch_size, metrics.clone())?;
        op.clock = Clock::Manual(0);
        Ok(OperatorHarness { node: Box::new(op), setup, metrics, output: Vec::new(), side: Vec::new() })
    }

    /// Subtask `index` of `parallelism` of the operator `setup` describes,
    /// over in-memory state.
    pub fn from_setup(setup: &HarnessSetup, index: u32, parallelism: u32) -> Result<Self> {
        Self::build(setup.clone(), index, parallelism, Vec::new(), Vec::new())
    }

    /// Subtask `index` of `parallelism`, restored from the snapshots of an
    /// earlier run (of any parallelism): it takes the key groups it owns
    /// from each, as a job restoring a checkpoint does.
    pub fn restore(setup: &HarnessSetup, snapshots: &[SubtaskSnapshot], index: u32, parallelism: u32) -> Result<Self> {
        let groups = weir_types::key_groups_of_task(index, parallelism, setup.max_parallelism);
        let parts = snapshots
            .iter()
            .filter(|s| s.key_groups.start < groups.end && groups.start < s.key_groups.end)
            .map(|s| RestoredPart {
                key_groups: s.key_groups.clone(),
                watermark: s.watermark,
                state: RestoredState::Bytes(s.bytes.clone()),
            })
            .collect();
        let states = snapshots.first().map(|s| s.states.clone()).unwrap_or_default();
        Self::build(setup.clone(), index, parallelism, parts, states)
    }

    /// Every subtask at `parallelism`, restored from `snapshots`.
    pub fn rescale(setup: &HarnessSetup, snapshots: &[SubtaskSnapshot], parallelism: u32) -> Result<Vec<Self>> {
        (0..parallelism).map(|i| Self::restore(setup, snapshots, i, parallelism)).collect()
    }

    fn build(
        setup: HarnessSetup,
        index: u32,
        parallelism: u32,
        parts: Vec<RestoredPart>,
        states: Vec<StateDescriptor>,
    ) -> Result<Self> {
        let task = TaskInfo { node: setup.operator.id.as_str().into(), index, parallelism };
        let metrics = Metrics::new().job("harness", "harness").task(&task.node, index);
        let cx = NodeContext {
            max_parallelism: setup.max_parallelism,
            batch_size: setup.batch_size,
            task,
            metrics: metrics.clone(),
            restored: (parts, states),
            schemas: Default::default(),
            state_root: &StateRoot::Memory,
            attempt: 0,
        };
        let mut node = operator_node(cx, &setup.operator, setup.plugin.as_ref())?.node;
        node.set_clock(Clock::Manual(0));
        Ok(OperatorHarness { node, setup, metrics, output: Vec::new(), side: Vec::new() })
    }

    /// What this harness was built from.
    pub fn setup(&self) -> HarnessSetup {
        self.setup.clone()
    }

    /// Processes one batch.
    pub fn process(&mut self, records: Vec<Record>) -> Result<()> {
        let emitted = self.node.process(records.iter().collect())?;
        self.collect(emitted);
        Ok(())
    }

    fn collect(&mut self, emitted: Emitted) {
        self.output.extend(emitted.main.to_records());
        for (name, batch) in emitted.side {
            self.side.extend(batch.iter().map(|r| (name.clone(), r.to_record())));
        }
    }

    /// Advances the watermark, firing event-time timers.
    pub fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let emitted = self.node.advance_watermark(watermark)?;
        self.collect(emitted);
        Ok(())
    }

    /// Sets processing time, firing due processing-time timers.
    pub fn set_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.node.set_clock(Clock::Manual(now));
        let emitted = self.node.fire_processing_timers()?;
        self.collect(emitted);
        Ok(())
    }

    /// A barrier: the subtask's state as a checkpoint takes it (the same
    /// snapshot code tasks run).
    pub fn barrier(&mut self, id: u64) -> Result<SubtaskSnapshot> {
        let part = snapshot_operator(self.node.as_mut(), None, &format!("chk-{id}"))?;
        let PartState::Logical(bytes) = part.state else { unreachable!("no scratch directory: logical snapshots") };
        Ok(SubtaskSnapshot {
            subtask: part.subtask,
            key_groups: part.key_groups.0 as u16..part.key_groups.1 as u16,
            watermark: part.watermark,
            states: part.states,
            bytes,
        })
    }

    /// Switches the operator to another plugin (and config) over the same
    /// state, as a barrier's mutation does.
    pub fn replace_plugin(&mut self, plugin: &Plugin, config: Option<serde_json::Value>) -> Result<()> {
        let update = NodeUpdate {
            plugin: Some(plugin.digest().to_string()),
            config: config.map(|c| c.to_string()),
            label: None,
        };
        self.node.update(&update, Some(plugin))?;
        self.setup.plugin = Some(plugin.clone());
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
        self.metrics.counters().into_iter().collect()
    }

    /// Every (key group, key, content) of state `name`, as the operator
    /// sees it (packed maps unpacked).
    pub fn state(&mut self, name: &str) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>> {
        let task = self.node.task().clone();
        let state = self.node.state();
        let Some(desc) = state.descriptors().iter().find(|d| d.name == name).cloned() else {
            let names: Vec<&str> = state.descriptors().iter().map(|d| d.name.as_str()).collect();
            return Err(RuntimeError::Unavailable(format!("the operator has no state `{name}` (it has {names:?})")));
        };
        let fail = |e| RuntimeError::state(&task, e);
        let (storage, kind) = desc.storage();
        let id = state.backend().register(&storage, kind).map_err(fail)?;
        let mut entries = state.backend().entries(id).map_err(fail)?;
        if desc.encoding == StateEncoding::PackedMap {
            for (_, _, content) in &mut entries {
                if let StateContent::Value(bytes) = content {
                    *content = StateContent::Map(weir_state::packed::unpack(bytes).map_err(fail)?);
                }
            }
        }
        Ok(entries)
    }

    /// The timers stored in state.
    pub fn timers(&mut self) -> Result<Vec<TimerEntry>> {
        let task = self.node.task().clone();
        let timers = self.node.state().backend().timers().map_err(|e| RuntimeError::state(&task, e))?;
        Ok(timers.into_iter().map(|(_, t)| t).collect())
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.node.watermark()
    }
}
