//! A task whose head is a source: polls its reader, generates watermarks
//! per split, and injects the barriers the coordinator asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_connectors::{Source, SourcePoll};
use weir_types::{MAX_WATERMARK, RecordBatch, Timestamp, Watermark};

use super::{CANCEL_CHECK, Chain, TaskEnd};
use crate::checkpointing::snapshot::{SourcePart, SplitPart};
use crate::control::Control;
use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::watermark::BoundedOutOfOrderness;

/// How often a source task reads its source's lag into the metrics.
const LAG_EVERY: Duration = Duration::from_millis(500);

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
    /// Per-split watermark state from a restored checkpoint (by split).
    pub(crate) restored_splits: Vec<Option<(Timestamp, bool)>>,
}

/// The event-time clock of one split: its watermark generator, and when it
/// last had data (a split silent for `idle_timeout` stops holding back the
/// task's watermark until it has data again, as Flink's per-split
/// idleness).
struct SplitClock {
    watermark: BoundedOutOfOrderness,
    last_data: Instant,
    idle: bool,
}

impl SplitClock {
    fn new(bound_ms: i64) -> Self {
        SplitClock { watermark: BoundedOutOfOrderness::new(bound_ms), last_data: Instant::now(), idle: false }
    }

    /// Whether it no longer holds back the watermark.
    fn out(&self) -> bool {
        self.idle || self.watermark.is_done()
    }
}

/// The task's watermark: the least of the splits that hold it back, or
/// `None` when none does (every split idle or done, or no split yet).
fn combined(splits: &[SplitClock]) -> Option<Timestamp> {
    if splits.is_empty() {
        return None;
    }
    let active = splits.iter().filter(|s| !s.idle);
    match splits.iter().all(SplitClock::out) && splits.iter().any(|s| s.idle) {
        true => None,
        false => Some(active.map(|s| s.watermark.current()).min().unwrap_or(MAX_WATERMARK)),
    }
}

/// The least watermark of the splits that had data (or ended), `None`
/// when none did.
fn reached(splits: &[SplitClock]) -> Option<Timestamp> {
    splits
        .iter()
        .filter(|s| s.watermark.is_done() || s.watermark.state().0 > weir_types::MIN_WATERMARK)
        .map(|s| s.watermark.current())
        .min()
}

impl SourceTask {
    pub(crate) fn run(mut self) -> Result<TaskEnd> {
        let task = self.chain.task.clone();
        let bound = self.time.bound_ms;
        let mut splits: Vec<SplitClock> = (0..self.source.splits()).map(|_| SplitClock::new(bound)).collect();
        for (s, r) in splits.iter_mut().zip(std::mem::take(&mut self.restored_splits)) {
            if let Some(r) = r {
                s.watermark.restore(r);
            }
        }
        let mut idle = false;
        let mut next_emit = Instant::now() + self.time.interval;
        let mut next_lag = Instant::now();
        let inbox = self.chain.link.as_ref().map(|l| l.inbox.clone());
        loop {
            while let Some(control) = inbox.as_ref().and_then(|i| i.try_recv().ok()) {
                let barrier = match control {
                    Control::Inject(barrier) => barrier,
                    Control::Commit(id) => {
                        self.source.committed(id);
                        self.chain.control(&control)?;
                        continue;
                    }
                    other => {
                        self.chain.control(&other)?;
                        continue;
                    }
                };
                self.source.barrier(barrier.id);
                let position = self.position(&splits);
                if let Some(end) = self.chain.barrier(&barrier, Some(position), Duration::ZERO)? {
                    return Ok(end);
                }
            }
            let polled = self.source.poll(self.batch_size).map_err(|e| RuntimeError::connector(&task, e))?;
            // A source may find new splits (a Kafka partition) as it goes;
            // one without any yet is idle (as in Flink), so that
            // downstream operators do not wait for it.
            while splits.len() < self.source.splits() {
                splits.push(SplitClock::new(bound));
            }
            if splits.is_empty() && !idle && !matches!(polled, SourcePoll::End) {
                idle = true;
                self.chain.advance(Watermark::Idle)?;
            }
            match polled {
                SourcePoll::Records { split, mut records } => {
                    let clock = &mut splits[split];
                    clock.last_data = Instant::now();
                    clock.idle = false;
                    idle = false;
                    if self.time.ingestion {
                        records.set_timestamps(weir_types::now_ms());
                    }
                    self.metrics.records_out.inc_by(records.len() as u64);
                    if self.time.punctuated {
                        self.punctuated(&mut splits, split, records)?;
                    } else {
                        for r in records.rows() {
                            splits[split].watermark.observe(r.timestamp);
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
                    splits[split].watermark.finish();
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
            if let Some(timeout) = self.time.idle_timeout {
                let mut changed = false;
                for s in splits.iter_mut().filter(|s| !s.out() && s.last_data.elapsed() >= timeout) {
                    s.idle = true;
                    changed = true;
                }
                if changed && combined(&splits).is_none() && !idle {
                    // The last splits went idle together: what those with
                    // data reached was held back only by splits now idle.
                    if let Some(wm) = reached(&splits)
                        && wm > self.chain.watermark
                    {
                        self.metrics.watermark.set(wm);
                        self.chain.advance(Watermark::EventTime(wm))?;
                    }
                    idle = true;
                    self.chain.advance(Watermark::Idle)?;
                } else if changed && self.time.punctuated {
                    self.emit_min(&splits)?;
                }
            }
            if !self.time.punctuated && Instant::now() >= next_emit {
                next_emit = Instant::now() + self.time.interval;
                if !idle {
                    self.emit_min(&splits)?;
                }
            }
            if Instant::now() >= next_lag {
                next_lag = Instant::now() + LAG_EVERY;
                if let Some(lag) = self.source.lag() {
                    self.metrics.set_lag(lag);
                }
            }
            if self.chain.cancelled() {
                return Err(RuntimeError::Cancelled);
            }
        }
    }

    /// Every split's position and watermark state.
    fn position(&self, splits: &[SplitClock]) -> SourcePart {
        let parts = splits
            .iter()
            .enumerate()
            .map(|(i, s)| SplitPart {
                id: self.source.split_id(i).to_string(),
                position: self.source.position(i),
                watermark: s.watermark.state(),
            })
            .collect();
        let next = (self.source.splits() > 0).then(|| self.source.split_id(self.source.next_split()).to_string());
        SourcePart { node: self.chain.task.node.to_string(), subtask: self.chain.task.index, splits: parts, next }
    }

    /// Emits the watermark after every record that moves it.
    fn punctuated(&mut self, splits: &mut [SplitClock], split: usize, records: RecordBatch) -> Result<()> {
        let mut run = RecordBatch::new();
        for r in records.iter() {
            splits[split].watermark.observe(r.timestamp);
            run.push_ref(r);
            let Some(wm) = combined(splits) else { continue };
            if wm > self.chain.watermark {
                self.chain.push(0, std::mem::take(&mut run))?;
                self.chain.advance(Watermark::EventTime(wm))?;
                self.metrics.watermark.set(wm);
            }
        }
        self.chain.push(0, run)
    }

    fn emit_min(&mut self, splits: &[SplitClock]) -> Result<()> {
        let Some(wm) = combined(splits) else { return Ok(()) };
        self.metrics.watermark.set(wm);
        self.chain.advance(Watermark::EventTime(wm))
    }
}
