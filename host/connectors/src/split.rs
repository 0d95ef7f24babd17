//! A reader of several splits: each split reads on its own, the reader
//! takes a batch from each in turn.

use std::time::Duration;

use weir_types::RecordBatch;

use crate::{Result, Source, SourcePoll};

/// What one split has.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SplitPoll {
    /// Records, in split order.
    Records(RecordBatch),
    /// Nothing now; ask again after this long.
    Pending(Duration),
    /// The split has ended.
    Done,
}

/// One split of a source, reading on its own.
pub(crate) trait SplitReader: Send {
    /// The split's identity.
    fn id(&self) -> &str;
    /// At most `max` records, or what else is going on.
    fn poll(&mut self, max: usize) -> Result<SplitPoll>;
    /// Where it is, for a checkpoint.
    fn position(&self) -> serde_json::Value;
}

/// A [`Source`] over splits, polled round-robin.
pub(crate) struct RoundRobin<R> {
    splits: Vec<R>,
    /// Whether each split's end was reported.
    done: Vec<bool>,
    next: usize,
}

impl<R: SplitReader> RoundRobin<R> {
    /// Over `splits`, polling split `next` first.
    pub(crate) fn new(splits: Vec<R>, next: usize) -> Self {
        let done = vec![false; splits.len()];
        let next = if splits.is_empty() { 0 } else { next % splits.len() };
        RoundRobin { splits, done, next }
    }
}

impl<R: SplitReader> Source for RoundRobin<R> {
    fn splits(&self) -> usize {
        self.splits.len()
    }

    fn split_id(&self, split: usize) -> &str {
        self.splits[split].id()
    }

    fn poll(&mut self, max: usize) -> Result<SourcePoll> {
        let n = self.splits.len();
        let mut wait: Option<Duration> = None;
        for _ in 0..n {
            let index = self.next;
            self.next = (self.next + 1) % n;
            if self.done[index] {
                continue;
            }
            match self.splits[index].poll(max)? {
                SplitPoll::Records(records) if !records.is_empty() => {
                    return Ok(SourcePoll::Records { split: index, records });
                }
                SplitPoll::Records(_) => wait = Some(Duration::ZERO),
                SplitPoll::Pending(w) => wait = Some(wait.map_or(w, |x| x.min(w))),
                SplitPoll::Done => {
                    self.done[index] = true;
                    return Ok(SourcePoll::SplitDone(index));
                }
            }
        }
        Ok(match wait {
            Some(w) => SourcePoll::Pending(w),
            None => SourcePoll::End,
        })
    }

    fn position(&self, split: usize) -> serde_json::Value {
        self.splits[split].position()
    }

    fn next_split(&self) -> usize {
        self.next
    }
}
