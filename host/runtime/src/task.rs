//! The loops that run tasks: a source (or a channel) at the head, then a
//! chain of operators and sinks that pass batches by plain function calls.
//!
//! Each task runs on its own OS thread, as in Flink: operator calls are
//! blocking CPU work, and WASI's synchronous bindings must not run inside an
//! async executor. Bounded channels between tasks give back-pressure.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use weir_connectors::{Sink, Source, SourcePoll};
use weir_types::{MAX_WATERMARK, Message, RecordBatch, TaskInfo, Timestamp, Watermark};

use weir_checkpoint::{Aligner, BarrierOutcome};

use crate::checkpointing::{CheckpointLink, CoordMsg, OperatorPart, PartState, SinkPart, TaskPart};
use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::Emitted;
use crate::route::{EdgeOut, Receiver};
use crate::watermark::{BoundedOutOfOrderness, InputWatermarks};

/// A node inside a task.
pub(crate) enum Element {
    Operator(Box<dyn Node>),
    Sink { sink: Box<dyn Sink>, metrics: Arc<NodeMetrics> },
}

impl Element {
    fn metrics(&self) -> &NodeMetrics {
        match self {
            Element::Operator(op) => op.metrics(),
            Element::Sink { metrics, .. } => metrics,
        }
    }
}

/// A node of a chain with its side-output edges.
pub(crate) struct Link {
    pub(crate) element: Element,
    pub(crate) side: HashMap<String, Vec<EdgeOut>>,
}

/// The chained nodes of a task and the edges leaving its last one.
pub(crate) struct Chain {
    pub(crate) task: TaskInfo,
    pub(crate) links: Vec<Link>,
    pub(crate) main: Vec<EdgeOut>,
    pub(crate) watermark: Timestamp,
    /// The line to the checkpoint coordinator, when checkpoints are on.
    pub(crate) checkpoints: Option<CheckpointLink>,
}

impl Chain {
    /// Pushes records into link `from` and onwards.
    fn push(&mut self, from: usize, mut batch: RecordBatch) -> Result<()> {
        for i in from..self.links.len() {
            if batch.is_empty() {
                return Ok(());
            }
            match &mut self.links[i].element {
                Element::Operator(op) => {
                    let emitted = op.process(batch)?;
                    batch = self.side_and_main(i, emitted)?;
                }
                Element::Sink { sink, metrics } => {
                    metrics.records_in.inc_by(batch.len() as u64);
                    metrics.first_record.get_or_init(Instant::now);
                    // Sinks buffer as they see fit; `finish` flushes them.
                    sink.write(&batch).map_err(|e| RuntimeError::task(&self.task, e))?;
                    return Ok(());
                }
            }
        }
        send_all(&self.task, &mut self.main, batch)
    }

    /// Sends side outputs of link `i` and returns its main output.
    fn side_and_main(&mut self, i: usize, emitted: Emitted) -> Result<RecordBatch> {
        for (name, records) in emitted.side {
            if let Some(edges) = self.links[i].side.get_mut(&name) {
                send_all(&self.task, edges, records)?;
            }
        }
        Ok(emitted.main)
    }

    /// Advances event time through the chain, then downstream.
    fn advance(&mut self, watermark: Watermark) -> Result<()> {
        if let Watermark::EventTime(t) = watermark {
            if t <= self.watermark {
                return Ok(());
            }
            self.watermark = t;
            for link in &self.links {
                link.element.metrics().watermark.set(t);
            }
            for i in 0..self.links.len() {
                if let Element::Operator(op) = &mut self.links[i].element {
                    let emitted = op.advance_watermark(t)?;
                    let main = self.side_and_main(i, emitted)?;
                    self.push(i + 1, main)?;
                }
            }
        }
        let task = self.task.clone();
        for edge in self.edges() {
            edge.broadcast_watermark(&task, watermark)?;
        }
        Ok(())
    }

    fn edges(&mut self) -> impl Iterator<Item = &mut EdgeOut> {
        self.links.iter_mut().flat_map(|l| l.side.values_mut().flatten()).chain(self.main.iter_mut())
    }

    /// Fires due processing-time timers (nothing when none is due).
    fn fire_processing_timers(&mut self) -> Result<()> {
        if self.next_processing_timer().is_none_or(|t| t > weir_types::now_ms()) {
            return Ok(());
        }
        for i in 0..self.links.len() {
            if let Element::Operator(op) = &mut self.links[i].element {
                let emitted = op.fire_processing_timers()?;
                let main = self.side_and_main(i, emitted)?;
                self.push(i + 1, main)?;
            }
        }
        Ok(())
    }

    /// When the earliest processing-time timer is due.
    fn next_processing_timer(&self) -> Option<Timestamp> {
        self.links
            .iter()
            .filter_map(|l| match &l.element {
                Element::Operator(op) => op.next_processing_timer(),
                Element::Sink { .. } => None,
            })
            .min()
    }

    /// End of input: flush sinks and state, send the final checkpoint part,
    /// tell downstream.
    fn finish(&mut self, source: Option<serde_json::Value>) -> Result<()> {
        for link in &mut self.links {
            match &mut link.element {
                Element::Sink { sink, .. } => sink.flush().map_err(|e| RuntimeError::task(&self.task, e))?,
                Element::Operator(op) => op.backend().flush().map_err(|e| RuntimeError::task(&self.task, e))?,
            }
        }
        if let Some(link) = self.checkpoints.clone() {
            let part = self.snapshot("final", source, true)?;
            let _ = link.tx.send(CoordMsg::Finished { task: link.task, part });
        }
        let task = self.task.clone();
        for edge in self.edges() {
            edge.end(&task)?;
        }
        Ok(())
    }

    /// At barrier `id`: snapshots the chain, passes the barrier on and sends
    /// the part to the coordinator. Processing goes on right after: writing
    /// the checkpoint is the coordinator's work.
    fn checkpoint(&mut self, id: u64, source: Option<serde_json::Value>, alignment: Duration) -> Result<()> {
        let Some(link) = self.checkpoints.clone() else { return Ok(()) };
        let mut part = self.snapshot(&format!("chk-{id}"), source, false)?;
        part.alignment = alignment;
        let task = self.task.clone();
        for edge in self.edges() {
            edge.broadcast_barrier(&task, id)?;
        }
        tracing::debug!(checkpoint = id, "snapshot taken");
        let _ = link.tx.send(CoordMsg::Ack { task: link.task, id, part });
        Ok(())
    }

    /// The chain's state and pre-committed sink output. Backends with a
    /// native checkpoint (RocksDB) write it under `label` in their scratch
    /// directory; the others are copied into a logical snapshot.
    fn snapshot(&mut self, label: &str, source: Option<serde_json::Value>, finished: bool) -> Result<TaskPart> {
        let mut part = TaskPart { source, finished, ..TaskPart::default() };
        for link in &mut self.links {
            match &mut link.element {
                Element::Operator(op) => {
                    let groups = op.key_groups();
                    let scratch = op.checkpoint_scratch().map(|d| d.join(label));
                    let (node, watermark) = (op.task().node.to_string(), op.watermark());
                    let backend = op.backend();
                    let failed = |e: &dyn std::fmt::Display| {
                        RuntimeError::task(&self.task, format!("cannot snapshot state: {e}"))
                    };
                    // A stateless operator's snapshot is a few bytes: no
                    // native checkpoint (a RocksDB one has ~10 KB of metadata).
                    let native = match scratch.filter(|_| !backend.states().is_empty()) {
                        Some(dir) => {
                            if dir.exists() {
                                std::fs::remove_dir_all(&dir).map_err(|e| failed(&e))?;
                            }
                            backend.native_checkpoint(&dir).map_err(|e| failed(&e))?
                        }
                        None => None,
                    };
                    let state = match native {
                        Some(n) => PartState::Native(crate::checkpointing::LocalCheckpoint(n)),
                        None => {
                            let mut bytes = Vec::new();
                            backend
                                .flush()
                                .and_then(|()| weir_state::snapshot::write_snapshot(backend, &mut bytes))
                                .map_err(|e| failed(&e))?;
                            PartState::Logical(bytes)
                        }
                    };
                    part.operators.push(OperatorPart {
                        node,
                        state,
                        key_groups: (u32::from(groups.start), u32::from(groups.end)),
                        watermark,
                    });
                }
                Element::Sink { sink, metrics } => {
                    let pending = sink.pre_commit().map_err(|e| RuntimeError::task(&self.task, e))?;
                    if let Some(parts) = pending {
                        part.sinks.push(SinkPart { node: metrics.node.clone(), index: self.task.index, parts });
                    }
                }
            }
        }
        Ok(part)
    }
}

/// Sends a batch over every edge, moving it into the last one.
fn send_all(task: &TaskInfo, edges: &mut [EdgeOut], batch: RecordBatch) -> Result<()> {
    if let Some((last, rest)) = edges.split_last_mut() {
        for edge in rest {
            edge.send(task, batch.clone())?;
        }
        last.send(task, batch)?;
    }
    Ok(())
}

/// How often a waiting task checks whether the job was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

fn until_wall(t: Timestamp) -> Duration {
    Duration::from_millis((t - weir_types::now_ms()).max(0) as u64)
}

/// Watermark settings of a source task.
#[derive(Debug, Clone)]
pub(crate) struct SourceTime {
    pub(crate) bound_ms: i64,
    pub(crate) interval: Duration,
    pub(crate) punctuated: bool,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) ingestion: bool,
}

/// A task whose head is a source.
pub(crate) struct SourceTask {
    pub(crate) source: Box<dyn Source>,
    pub(crate) time: SourceTime,
    pub(crate) batch_size: usize,
    pub(crate) metrics: Arc<NodeMetrics>,
    pub(crate) chain: Chain,
    pub(crate) cancel: Arc<AtomicBool>,
    /// Per-split watermark state from a restored checkpoint.
    pub(crate) restored_splits: Option<Vec<(Timestamp, bool)>>,
}

impl SourceTask {
    pub(crate) fn run(mut self) -> Result<()> {
        let task = self.chain.task.clone();
        let mut splits: Vec<BoundedOutOfOrderness> =
            (0..self.source.splits()).map(|_| BoundedOutOfOrderness::new(self.time.bound_ms)).collect();
        if let Some(restored) = self.restored_splits.take() {
            splits.iter_mut().zip(restored).for_each(|(s, r)| s.restore(r));
        }
        let mut injected = 0;
        let mut last_data = Instant::now();
        let mut idle = false;
        let mut next_emit = Instant::now() + self.time.interval;
        loop {
            if let Some(link) = &self.chain.checkpoints {
                let requested = link.trigger.load(Ordering::Acquire);
                if requested > injected {
                    injected = requested;
                    let position = self.position(&splits);
                    self.chain.checkpoint(requested, Some(position), Duration::ZERO)?;
                }
            }
            let polled = self.source.poll(self.batch_size).map_err(|e| RuntimeError::task(&task, e))?;
            match polled {
                SourcePoll::Records { split, mut records } => {
                    last_data = Instant::now();
                    idle = false;
                    if self.time.ingestion {
                        records.set_timestamps(weir_types::now_ms());
                    }
                    self.metrics.records_out.inc_by(records.len() as u64);
                    if self.time.punctuated {
                        self.punctuated(&mut splits, split, records)?;
                    } else {
                        for r in records.rows() {
                            splits[split].observe(r.timestamp);
                        }
                        self.chain.push(0, records)?;
                    }
                }
                SourcePoll::Pending(wait) => {
                    let wait = if self.time.punctuated {
                        wait
                    } else {
                        wait.min(next_emit.saturating_duration_since(Instant::now()))
                    };
                    std::thread::sleep(wait.min(CANCEL_CHECK));
                }
                SourcePoll::SplitDone(split) => {
                    splits[split].finish();
                    if self.time.punctuated {
                        self.emit_min(&splits)?;
                    }
                }
                SourcePoll::End => {
                    self.chain.advance(Watermark::EventTime(MAX_WATERMARK))?;
                    self.metrics.watermark.set(MAX_WATERMARK);
                    let position = self.position(&splits);
                    return self.chain.finish(Some(position));
                }
            }
            if let Some(timeout) = self.time.idle_timeout
                && !idle
                && last_data.elapsed() >= timeout
            {
                idle = true;
                self.chain.advance(Watermark::Idle)?;
            }
            if !self.time.punctuated && Instant::now() >= next_emit {
                next_emit = Instant::now() + self.time.interval;
                if !idle {
                    self.emit_min(&splits)?;
                }
            }
            if self.cancel.load(Ordering::Relaxed) {
                return Err(RuntimeError::Cancelled);
            }
        }
    }

    /// The source's position and its splits' watermark state.
    fn position(&self, splits: &[BoundedOutOfOrderness]) -> serde_json::Value {
        let watermarks: Vec<(Timestamp, bool)> = splits.iter().map(BoundedOutOfOrderness::state).collect();
        serde_json::json!({ "source": self.source.position(), "watermarks": watermarks })
    }

    /// Emits the watermark after every record that moves it.
    fn punctuated(&mut self, splits: &mut [BoundedOutOfOrderness], split: usize, records: RecordBatch) -> Result<()> {
        let mut run = RecordBatch::new();
        for r in records.iter() {
            splits[split].observe(r.timestamp);
            run.push_ref(r);
            let wm = splits.iter().map(BoundedOutOfOrderness::current).min().unwrap_or(MAX_WATERMARK);
            if wm > self.chain.watermark {
                self.chain.push(0, std::mem::take(&mut run))?;
                self.chain.advance(Watermark::EventTime(wm))?;
                self.metrics.watermark.set(wm);
            }
        }
        self.chain.push(0, run)
    }

    fn emit_min(&mut self, splits: &[BoundedOutOfOrderness]) -> Result<()> {
        let wm = splits.iter().map(BoundedOutOfOrderness::current).min().unwrap_or(MAX_WATERMARK);
        self.metrics.watermark.set(wm);
        self.chain.advance(Watermark::EventTime(wm))
    }
}

/// A task whose head reads a channel.
pub(crate) struct ChannelTask {
    pub(crate) rx: Receiver,
    pub(crate) inputs: usize,
    pub(crate) chain: Chain,
    pub(crate) cancel: Arc<AtomicBool>,
}

impl ChannelTask {
    pub(crate) fn run(mut self) -> Result<()> {
        let mut watermarks = InputWatermarks::new(self.inputs);
        let mut ended = vec![false; self.inputs];
        let mut open = self.inputs;
        let mut aligner = Aligner::new(self.inputs);
        let mut aligning_since: Option<Instant> = None;
        // Messages of inputs blocked by barrier alignment, and messages to
        // handle before reading the channel again.
        let mut held: VecDeque<(u32, Message)> = VecDeque::new();
        let mut replay: VecDeque<(u32, Message)> = VecDeque::new();
        while open > 0 {
            let (slot, message) = match replay.pop_front() {
                Some(m) => m,
                None => {
                    let wait =
                        self.chain.next_processing_timer().map(until_wall).unwrap_or(CANCEL_CHECK).min(CANCEL_CHECK);
                    match self.rx.recv_timeout(wait) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => {
                            if self.cancel.load(Ordering::Relaxed) {
                                return Err(RuntimeError::Cancelled);
                            }
                            self.chain.fire_processing_timers()?;
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            return Err(RuntimeError::Disconnected(self.chain.task.to_string()));
                        }
                    }
                }
            };
            let index = slot as usize;
            if aligner.is_blocked(index) {
                held.push_back((slot, message));
                continue;
            }
            let aligned = match message {
                Message::Records(records) => {
                    self.chain.push(0, records)?;
                    BarrierOutcome::Wait
                }
                Message::Watermark(w) => {
                    if let Some(forward) = watermarks.update(index, w) {
                        self.chain.advance(forward)?;
                    }
                    BarrierOutcome::Wait
                }
                Message::Barrier(id) => {
                    aligning_since.get_or_insert_with(Instant::now);
                    aligner.barrier(index, id)
                }
                Message::EndOfData => {
                    if ended[index] {
                        BarrierOutcome::Wait
                    } else {
                        ended[index] = true;
                        open -= 1;
                        if let Some(forward) = watermarks.update(index, Watermark::EventTime(MAX_WATERMARK)) {
                            self.chain.advance(forward)?;
                        }
                        aligner.end(index)
                    }
                }
            };
            if let BarrierOutcome::Aligned(id) = aligned {
                let alignment = aligning_since.take().map(|t| t.elapsed()).unwrap_or_default();
                self.chain.checkpoint(id, None, alignment)?;
                // Held messages came before anything still to replay.
                held.append(&mut replay);
                replay = std::mem::take(&mut held);
            }
            self.chain.fire_processing_timers()?;
        }
        self.chain.finish(None)
    }
}

/// Either kind of task, ready to run on its thread.
pub(crate) enum TaskRunner {
    Source(SourceTask),
    Channel(ChannelTask),
}

impl TaskRunner {
    pub(crate) fn run(self) -> Result<()> {
        match self {
            TaskRunner::Source(t) => t.run(),
            TaskRunner::Channel(t) => t.run(),
        }
    }
}
