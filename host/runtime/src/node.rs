//! What a task does with a node that processes records: a Wasm operator or
//! a host-native window. Both run over keyed state the runtime owns.

use weir_state::KeyedState;
use weir_types::{NodeUpdate, RecordBatch, TaskInfo, Timestamp};
use weir_wasm::Plugin;

use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::operator::{Clock, Emitted, WasmOperator};

/// A record-processing node of a chain.
pub(crate) trait Node: Send {
    /// The node's task.
    fn task(&self) -> &TaskInfo;
    /// Its metrics.
    fn metrics(&self) -> &NodeMetrics;
    /// Handles a batch.
    fn process(&mut self, records: RecordBatch) -> Result<Emitted>;
    /// Moves event time on, firing what is due.
    fn advance_watermark(&mut self, watermark: Timestamp) -> Result<Emitted>;
    /// Fires due processing-time timers.
    fn fire_processing_timers(&mut self) -> Result<Emitted>;
    /// When the next processing-time timer is due.
    fn next_processing_timer(&self) -> Option<Timestamp>;
    /// The keyed state (for flushing and snapshots).
    fn state(&mut self) -> &mut KeyedState;
    /// The current event-time watermark.
    fn watermark(&self) -> Timestamp;
    /// Where processing time comes from (tests move it by hand).
    fn set_clock(&mut self, clock: Clock);
    /// Applies an update a barrier carries: from now on the node runs
    /// `plugin` (if given) with its new config, over the same state.
    fn update(&mut self, update: &NodeUpdate, plugin: Option<&Plugin>) -> Result<()>;
}

impl Node for WasmOperator {
    fn task(&self) -> &TaskInfo {
        &self.task
    }
    fn metrics(&self) -> &NodeMetrics {
        WasmOperator::metrics(self)
    }
    fn process(&mut self, records: RecordBatch) -> Result<Emitted> {
        WasmOperator::process(self, records)
    }
    fn advance_watermark(&mut self, watermark: Timestamp) -> Result<Emitted> {
        WasmOperator::advance_watermark(self, watermark)
    }
    fn fire_processing_timers(&mut self) -> Result<Emitted> {
        WasmOperator::fire_processing_timers(self)
    }
    fn next_processing_timer(&self) -> Option<Timestamp> {
        WasmOperator::next_processing_timer(self)
    }
    fn state(&mut self) -> &mut KeyedState {
        WasmOperator::state(self)
    }
    fn watermark(&self) -> Timestamp {
        WasmOperator::watermark(self)
    }
    fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }
    fn update(&mut self, update: &NodeUpdate, plugin: Option<&Plugin>) -> Result<()> {
        match (plugin, &update.plugin) {
            (Some(plugin), _) => self.replace_plugin(plugin, update.config.as_deref()),
            (None, Some(digest)) => {
                Err(RuntimeError::Unavailable(format!("task {}: no loaded plugin has digest {digest}", self.task)))
            }
            (None, None) => {
                let current = self.plugin().clone();
                self.replace_plugin(&current, update.config.as_deref())
            }
        }
    }
}
