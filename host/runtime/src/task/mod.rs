//! The loops that run tasks: a source (or a channel) at the head, then a
//! chain of operators and sinks that pass batches by plain function calls.
//!
//! Each task runs on its own OS thread, as in Flink: operator calls are
//! blocking CPU work, and WASI's synchronous bindings must not run inside an
//! async executor. Bounded channels between tasks give back-pressure; a
//! control inbox beside them carries the coordinator's word (inject a
//! barrier, a checkpoint completed).

mod channel;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use weir_connectors::Sink;
use weir_types::{CheckpointBarrier, RecordBatch, TaskInfo, Timestamp, Watermark};
use weir_wasm::Plugin;

pub(crate) use self::channel::ChannelTask;
pub(crate) use self::source::{SourceTask, SourceTime};
use crate::checkpointing::snapshot::{SinkPart, SourcePart, TaskPart, snapshot_operator};
use crate::control::{Control, CoordMsg, TaskLink};
use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::Emitted;
use crate::route::EdgeOut;

/// The plugins a job can switch nodes to at a barrier, by digest.
pub(crate) type PluginTable = Arc<RwLock<HashMap<String, Plugin>>>;

/// A node inside a task.
pub(crate) enum Element {
    /// An operator, and where its backend may write native checkpoints.
    Operator { node: Box<dyn Node>, scratch: Option<PathBuf> },
    /// A sink.
    Sink { sink: Box<dyn Sink>, metrics: Arc<NodeMetrics> },
}

impl Element {
    fn metrics(&self) -> &NodeMetrics {
        match self {
            Element::Operator { node, .. } => node.metrics(),
            Element::Sink { metrics, .. } => metrics,
        }
    }
}

/// A node of a chain with its side-output edges.
pub(crate) struct Link {
    pub(crate) element: Element,
    pub(crate) side: HashMap<String, Vec<EdgeOut>>,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskEnd {
    /// Its input ended.
    Finished,
    /// It stopped at a stop barrier.
    Stopped,
}

/// The chained nodes of a task and the edges leaving its last one.
pub(crate) struct Chain {
    pub(crate) task: TaskInfo,
    pub(crate) links: Vec<Link>,
    pub(crate) main: Vec<EdgeOut>,
    pub(crate) watermark: Timestamp,
    /// The lines to and from the checkpoint coordinator, when checkpoints are on.
    pub(crate) link: Option<TaskLink>,
    /// Plugins a barrier's mutation may switch nodes to.
    pub(crate) plugins: PluginTable,
    pub(crate) cancel: Arc<AtomicBool>,
    /// The newest barrier this task passed.
    pub(crate) last_barrier: u64,
    /// The barrier at which a node of this chain switched plugins, until
    /// its checkpoint completed.
    pub(crate) upgraded_at: Option<u64>,
}

impl Chain {
    /// Pushes records into link `from` and onwards.
    fn push(&mut self, from: usize, mut batch: RecordBatch) -> Result<()> {
        for i in from..self.links.len() {
            if batch.is_empty() {
                return Ok(());
            }
            match &mut self.links[i].element {
                Element::Operator { node, .. } => {
                    let emitted = node.process(batch)?;
                    batch = self.side_and_main(i, emitted)?;
                }
                Element::Sink { sink, metrics } => {
                    metrics.records_in.inc_by(batch.len() as u64);
                    metrics.first_record.get_or_init(Instant::now);
                    // Sinks buffer as they see fit; `finish` flushes them.
                    sink.write(&batch).map_err(|e| RuntimeError::connector(&self.task, e))?;
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
                if let Element::Operator { node, .. } = &mut self.links[i].element {
                    let emitted = node.advance_watermark(t)?;
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
            if let Element::Operator { node, .. } = &mut self.links[i].element {
                let emitted = node.fire_processing_timers()?;
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
                Element::Operator { node, .. } => node.next_processing_timer(),
                Element::Sink { .. } => None,
            })
            .min()
    }

    /// Whether the job was cancelled.
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Handles a word from the coordinator that is not for a source.
    fn control(&mut self, control: &Control) -> Result<()> {
        match control {
            Control::Commit(id) => {
                self.commit(*id)?;
                if self.upgraded_at.is_some_and(|at| at <= *id) {
                    self.upgraded_at = None;
                }
            }
            // The nodes switched at a barrier whose checkpoint will never
            // name the new version: back to the checkpoint before, on the
            // old one (every task of the job restarts there).
            Control::Aborted(id) if self.upgraded_at == Some(*id) => {
                return Err(RuntimeError::UpgradeAborted { task: self.task.to_string(), checkpoint: *id });
            }
            _ => {}
        }
        Ok(())
    }

    /// Checkpoint `id` completed: every sink commits up to it.
    fn commit(&mut self, id: u64) -> Result<()> {
        let mut sinks = 0;
        for link in &mut self.links {
            if let Element::Sink { sink, .. } = &mut link.element {
                sink.commit(id).map_err(|e| RuntimeError::connector(&self.task, e))?;
                sinks += 1;
            }
        }
        // (Without the `failpoints` feature the fail point is nothing.)
        let _ = sinks;
        fail::fail_point!("sink-committed", sinks > 0, |_| std::process::abort());
        Ok(())
    }

    /// End of input: flush sinks and state, send the final checkpoint part,
    /// tell downstream; then wait until a checkpoint with the final part
    /// completed, so the sinks commit their last output.
    fn finish(&mut self, source: Option<SourcePart>) -> Result<TaskEnd> {
        for link in &mut self.links {
            match &mut link.element {
                Element::Sink { sink, .. } => sink.flush().map_err(|e| RuntimeError::connector(&self.task, e))?,
                Element::Operator { node, .. } => {
                    node.state().backend().flush().map_err(|e| RuntimeError::state(&self.task, e))?
                }
            }
        }
        // The final part goes into the next checkpoint that completes.
        let tag = self.last_barrier + 1;
        let mut pending = false;
        if let Some(link) = &self.link {
            let tx = link.tx.clone();
            let task = link.task;
            let part = self.snapshot(tag, "final", source, true, false)?;
            pending = !part.sinks.is_empty();
            let _ = tx.send(CoordMsg::Finished { task, part });
        }
        let task = self.task.clone();
        for edge in self.edges() {
            edge.end(&task)?;
        }
        if pending {
            self.await_commit(tag)?;
        }
        Ok(TaskEnd::Finished)
    }

    /// Waits for a checkpoint of id `tag` or later to complete and commits
    /// it; stops waiting when it was aborted or the coordinator is gone.
    fn await_commit(&mut self, tag: u64) -> Result<()> {
        let Some(inbox) = self.link.as_ref().map(|l| l.inbox.clone()) else { return Ok(()) };
        loop {
            match inbox.recv_timeout(CANCEL_CHECK) {
                Ok(Control::Commit(id)) if id >= tag => return self.commit(id),
                Ok(Control::Aborted(id)) if id >= tag => {
                    tracing::warn!(checkpoint = id, "the checkpoint this task waited for was aborted");
                    return Ok(());
                }
                Ok(other) => self.control(&other)?,
                Err(RecvTimeoutError::Timeout) if self.cancelled() => return Err(RuntimeError::Cancelled),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// At a barrier: snapshots the chain (backend-neutral for a savepoint), applies the barrier's mutation (the state at the barrier
    /// belongs to the old version; a node that cannot take its update fails
    /// the task before it acknowledges, so the checkpoint never completes
    /// and the job restarts from the one before, on the old version), passes
    /// the barrier on and sends the part to the coordinator. Processing goes
    /// on right after — writing the checkpoint is the coordinator's work —
    /// unless it is a stop barrier: the task then ends once its sinks
    /// committed. Returns whether the task goes on.
    fn barrier(
        &mut self,
        barrier: &CheckpointBarrier,
        source: Option<SourcePart>,
        alignment: Duration,
    ) -> Result<Option<TaskEnd>> {
        self.last_barrier = self.last_barrier.max(barrier.id);
        let Some((tx, task)) = self.link.as_ref().map(|l| (l.tx.clone(), l.task)) else { return Ok(None) };
        let label = format!("chk-{}", barrier.id);
        let mut part = self.snapshot(barrier.id, &label, source, false, barrier.portable)?;
        part.alignment = alignment;
        let pending = !part.sinks.is_empty();
        fail::fail_point!("sink-pre-committed", pending, |_| std::process::abort());
        if let Some(mutation) = &barrier.mutation
            && self.apply(barrier.id, mutation)?
        {
            self.upgraded_at = Some(barrier.id);
        }
        let me = self.task.clone();
        for edge in self.edges() {
            edge.broadcast_barrier(&me, barrier)?;
        }
        tracing::debug!(checkpoint = barrier.id, kind = %barrier.kind, "snapshot taken");
        let _ = tx.send(CoordMsg::Ack { task, id: barrier.id, part });
        if barrier.stops() {
            if pending {
                self.await_commit(barrier.id)?;
            }
            return Ok(Some(TaskEnd::Stopped));
        }
        Ok(None)
    }

    /// Applies a barrier's mutation to the nodes of this chain it names;
    /// returns whether it named any.
    fn apply(&mut self, id: u64, mutation: &weir_types::Mutation) -> Result<bool> {
        let mut applied = false;
        for link in &mut self.links {
            let Element::Operator { node, .. } = &mut link.element else { continue };
            let Some(update) = mutation.updates.get(&*node.task().node) else { continue };
            let plugin = match &update.plugin {
                Some(digest) => {
                    let table = self.plugins.read().unwrap_or_else(|e| e.into_inner());
                    Some(table.get(digest).cloned().ok_or_else(|| {
                        RuntimeError::Unavailable(format!(
                            "task {}: the plugin with digest {digest} that barrier {id} switches to is not loaded",
                            self.task
                        ))
                    })?)
                }
                None => None,
            };
            node.update(update, plugin.as_ref()).map_err(|e| RuntimeError::SwitchFailed {
                task: self.task.to_string(),
                node: node.task().node.to_string(),
                checkpoint: id,
                source: Box::new(e),
            })?;
            applied = true;
            tracing::info!(checkpoint = id, node = %node.task().node, "node updated at the barrier");
        }
        Ok(applied)
    }

    /// The chain's state and pre-committed sink output at barrier `id`;
    /// `portable`: every operator's in the backend-neutral format.
    fn snapshot(
        &mut self,
        id: u64,
        label: &str,
        source: Option<SourcePart>,
        finished: bool,
        portable: bool,
    ) -> Result<TaskPart> {
        let mut part = TaskPart { source, finished, ..TaskPart::default() };
        for link in &mut self.links {
            match &mut link.element {
                Element::Operator { node, scratch } => {
                    let scratch = scratch.as_deref().filter(|_| !portable);
                    part.operators.push(snapshot_operator(node.as_mut(), scratch, label)?);
                }
                Element::Sink { sink, metrics } => {
                    let pending = sink.pre_commit(id).map_err(|e| RuntimeError::connector(&self.task, e))?;
                    if let Some(pending) = pending {
                        part.sinks.push(SinkPart { node: metrics.node.clone(), subtask: self.task.index, pending });
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

/// Either kind of task, ready to run on its thread.
pub(crate) enum TaskRunner {
    Source(SourceTask),
    Channel(ChannelTask),
}

impl TaskRunner {
    pub(crate) fn run(self) -> Result<TaskEnd> {
        match self {
            TaskRunner::Source(t) => t.run(),
            TaskRunner::Channel(t) => t.run(),
        }
    }
}
