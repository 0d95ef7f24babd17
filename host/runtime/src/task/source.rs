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

impl SourceTask {
    pub(crate) fn run(mut self) -> Result<TaskEnd> {
        let task = self.chain.task.clone();
        let mut splits: Vec<BoundedOutOfOrderness> =
            (0..self.source.splits()).map(|_| BoundedOutOfOrderness::new(self.time.bound_ms)).collect();
        for (s, r) in splits.iter_mut().zip(std::mem::take(&mut self.restored_splits)) {
            if let Some(r) = r {
                s.restore(r);
            }
        }
        let mut last_data = Instant::now();
        let mut idle = false;
        let mut next_emit = Instant::now() + self.time.interval;
        let inbox = self.chain.link.as_ref().map(|l| l.inbox.clone());
        loop {
            while let Some(control) = inbox.as_ref().and_then(|i| i.try_recv().ok()) {
                let Control::Inject(barrier) = control else {
                    self.chain.control(&control)?;
                    continue;
                };
                let position = self.position(&splits);
                if let Some(end) = self.chain.barrier(&barrier, Some(position), Duration::ZERO)? {
                    return Ok(end);
                }
            }
            let polled = self.source.poll(self.batch_size).map_err(|e| RuntimeError::connector(&task, e))?;
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
            if self.chain.cancelled() {
                return Err(RuntimeError::Cancelled);
            }
        }
    }

    /// Every split's position and watermark state.
    fn position(&self, splits: &[BoundedOutOfOrderness]) -> SourcePart {
        let parts = splits
            .iter()
            .enumerate()
            .map(|(i, w)| SplitPart {
                id: self.source.split_id(i).to_string(),
                position: self.source.position(i),
                watermark: w.state(),
            })
            .collect();
        let next = (self.source.splits() > 0).then(|| self.source.split_id(self.source.next_split()).to_string());
        SourcePart { node: self.chain.task.node.to_string(), subtask: self.chain.task.index, splits: parts, next }
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
