//! Sending records and watermarks over the edges that leave a task.

use weir_spec::KeyBy;
use weir_types::{CheckpointBarrier, Message, RecordBatch, TaskInfo, Watermark, key_group, task_for_key_group};

use crate::error::{Result, RuntimeError};
use crate::graph::Partitioning;

/// A channel into a task: (input slot, message).
pub type Sender = crossbeam_channel::Sender<(u32, Message)>;
/// The receiving end.
pub type Receiver = crossbeam_channel::Receiver<(u32, Message)>;

/// One outgoing edge of a task.
pub struct EdgeOut {
    pub(crate) to: String,
    pub(crate) partitioning: Partitioning,
    /// Every downstream task (a single one for forward edges).
    pub(crate) targets: Vec<Sender>,
    /// This task's input slot at the targets.
    pub(crate) slot: u32,
    pub(crate) max_parallelism: u32,
    buffers: Vec<RecordBatch>,
    next: usize,
    /// Time spent waiting for a full channel (µs): the sending node's
    /// back-pressure.
    backpressured: prometheus_client::metrics::counter::Counter,
}

impl EdgeOut {
    pub(crate) fn new(
        to: String,
        partitioning: Partitioning,
        targets: Vec<Sender>,
        slot: u32,
        max_parallelism: u32,
        backpressured: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        let buffers = targets.iter().map(|_| RecordBatch::new()).collect();
        let next = slot as usize % targets.len().max(1);
        EdgeOut { to, partitioning, targets, slot, max_parallelism, buffers, next, backpressured }
    }

    /// Sends a batch, partitioned.
    pub(crate) fn send(&mut self, task: &TaskInfo, records: RecordBatch) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let n = self.targets.len();
        match &self.partitioning {
            Partitioning::Forward => return self.deliver(task, 0, Message::Records(records)),
            Partitioning::Rebalance if n == 1 => return self.deliver(task, 0, Message::Records(records)),
            // One target and keys already in place: nothing to copy.
            Partitioning::Hash(KeyBy::RecordKey) if n == 1 && records.rows().iter().all(|r| r.key.is_some()) => {
                return self.deliver(task, 0, Message::Records(records));
            }
            // Whole batches in turn: no copy, and batches stay large.
            Partitioning::Rebalance => {
                let target = self.next;
                self.next = (self.next + 1) % n;
                return self.deliver(task, target, Message::Records(records));
            }
            Partitioning::Hash(key_by) => {
                for r in records.iter() {
                    let extracted;
                    let key = match key_by {
                        KeyBy::Pointer(p) => {
                            extracted = key_from_value(r.value, p).map_err(|m| {
                                RuntimeError::record(task, format!("cannot key a record for `{}` by {p}: {m}", self.to))
                            })?;
                            extracted.as_slice()
                        }
                        KeyBy::RecordKey => r.key.ok_or_else(|| {
                            RuntimeError::record(
                                task,
                                format!(
                                    "`{}` is keyed by the record key, but a record has no key (set `key` on the source or use a JSON pointer in `key_by`)",
                                    self.to
                                ),
                            )
                        })?,
                    };
                    let target =
                        task_for_key_group(key_group(key, self.max_parallelism), n as u32, self.max_parallelism);
                    self.buffers[target].push(Some(key), r.value, r.timestamp);
                    if !r.headers.is_empty() {
                        self.buffers[target].set_last_headers(r.headers.to_vec());
                    }
                }
            }
        }
        for i in 0..n {
            if !self.buffers[i].is_empty() {
                let batch = std::mem::take(&mut self.buffers[i]);
                self.deliver(task, i, Message::Records(batch))?;
            }
        }
        Ok(())
    }

    /// Sends a watermark to every target.
    pub(crate) fn broadcast_watermark(&mut self, task: &TaskInfo, watermark: Watermark) -> Result<()> {
        for i in 0..self.targets.len() {
            self.deliver(task, i, Message::Watermark(watermark))?;
        }
        Ok(())
    }

    /// Sends a checkpoint barrier to every target.
    pub(crate) fn broadcast_barrier(&mut self, task: &TaskInfo, barrier: &CheckpointBarrier) -> Result<()> {
        for i in 0..self.targets.len() {
            self.deliver(task, i, Message::Barrier(barrier.clone()))?;
        }
        Ok(())
    }

    /// Tells every target that this task is done.
    pub(crate) fn end(&mut self, task: &TaskInfo) -> Result<()> {
        for i in 0..self.targets.len() {
            self.deliver(task, i, Message::EndOfData)?;
        }
        Ok(())
    }

    /// Sends to one target; a full channel blocks, and the time it blocks
    /// is counted as back-pressure (as Flink's `backPressuredTimeMsPerSecond`).
    fn deliver(&self, task: &TaskInfo, target: usize, message: Message) -> Result<()> {
        let gone = || RuntimeError::Disconnected(task.to_string());
        match self.targets[target].try_send((self.slot, message)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(message)) => {
                let started = std::time::Instant::now();
                let sent = self.targets[target].send(message).map_err(|_| gone());
                self.backpressured.inc_by(started.elapsed().as_micros() as u64);
                sent
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(gone()),
        }
    }
}

/// The key at a JSON pointer (see [`weir_connectors::file::key_bytes`]).
pub(crate) fn key_from_value(value: &[u8], pointer: &str) -> std::result::Result<Vec<u8>, String> {
    let json: serde_json::Value = serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    json.pointer(pointer).map(weir_connectors::file::key_bytes).ok_or_else(|| "no such field".to_string())
}
