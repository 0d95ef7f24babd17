//! What a task does with a node that processes records: a Wasm operator or
//! a host-native window. Both keep keyed state and timers in a backend.

use std::ops::Range;
use std::path::Path;

use weir_state::KeyedStateBackend;
use weir_types::{RecordBatch, TaskInfo, Timestamp};

use crate::error::Result;
use crate::metrics::NodeMetrics;
use crate::operator::{Emitted, WasmOperator};

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
    fn backend(&mut self) -> &mut dyn KeyedStateBackend;
    /// The current event-time watermark.
    fn watermark(&self) -> Timestamp;
    /// The key groups this instance owns.
    fn key_groups(&self) -> Range<u16>;
    /// Where the backend may write native checkpoints.
    fn checkpoint_scratch(&self) -> Option<&Path>;
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
    fn backend(&mut self) -> &mut dyn KeyedStateBackend {
        self.instance().backend()
    }
    fn watermark(&self) -> Timestamp {
        WasmOperator::watermark(self)
    }
    fn key_groups(&self) -> Range<u16> {
        WasmOperator::key_groups(self)
    }
    fn checkpoint_scratch(&self) -> Option<&Path> {
        self.checkpoint_scratch.as_deref()
    }
}
