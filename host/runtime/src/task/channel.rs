//! A task whose head reads a channel: aligns barriers over its inputs,
//! combines their watermarks, and hears the coordinator on its inbox.

use std::collections::VecDeque;
use std::time::Instant;

use crossbeam_channel::{RecvTimeoutError, select_biased};
use weir_checkpoint::{Aligner, BarrierOutcome};
use weir_types::{CheckpointBarrier, MAX_WATERMARK, Message, Watermark};

use super::{CANCEL_CHECK, Chain, TaskEnd, until_wall};
use crate::error::{Result, RuntimeError};
use crate::route::Receiver;
use crate::watermark::InputWatermarks;

/// A task whose head reads a channel.
pub(crate) struct ChannelTask {
    pub(crate) rx: Receiver,
    pub(crate) inputs: usize,
    pub(crate) chain: Chain,
}

impl ChannelTask {
    pub(crate) fn run(mut self) -> Result<TaskEnd> {
        let mut watermarks = InputWatermarks::new(self.inputs);
        let mut ended = vec![false; self.inputs];
        let mut open = self.inputs;
        let mut aligner = Aligner::new(self.inputs);
        let mut aligning: Option<(Instant, CheckpointBarrier)> = None;
        // Messages of inputs blocked by barrier alignment, and messages to
        // handle before reading the channel again.
        let mut held: VecDeque<(u32, Message)> = VecDeque::new();
        let mut replay: VecDeque<(u32, Message)> = VecDeque::new();
        let mut inbox = self.chain.link.as_ref().map(|l| l.inbox.clone()).unwrap_or_else(crossbeam_channel::never);
        while open > 0 {
            let (slot, message) = match replay.pop_front() {
                Some(m) => m,
                None => {
                    let wait =
                        self.chain.next_processing_timer().map(until_wall).unwrap_or(CANCEL_CHECK).min(CANCEL_CHECK);
                    let received = select_biased! {
                        recv(inbox) -> control => Err(control.ok()),
                        recv(self.rx) -> m => Ok(m.map_err(|_| RecvTimeoutError::Disconnected)),
                        default(wait) => Ok(Err(RecvTimeoutError::Timeout)),
                    };
                    match received {
                        Err(Some(control)) => {
                            self.chain.control(&control)?;
                            continue;
                        }
                        // The coordinator is gone: nothing more will come.
                        Err(None) => {
                            inbox = crossbeam_channel::never();
                            continue;
                        }
                        Ok(Ok(m)) => m,
                        Ok(Err(RecvTimeoutError::Timeout)) => {
                            if self.chain.cancelled() {
                                return Err(RuntimeError::Cancelled);
                            }
                            self.chain.fire_processing_timers()?;
                            continue;
                        }
                        Ok(Err(RecvTimeoutError::Disconnected)) => {
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
                Message::Barrier(barrier) => {
                    let outcome = aligner.barrier(index, barrier.id);
                    if aligning.as_ref().is_none_or(|(_, b)| b.id < barrier.id) {
                        aligning = Some((Instant::now(), barrier));
                    }
                    outcome
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
            if let BarrierOutcome::Aligned(id) = aligned
                && let Some((since, barrier)) = aligning.take_if(|(_, b)| b.id == id)
            {
                if let Some(end) = self.chain.barrier(&barrier, None, since.elapsed())? {
                    return Ok(end);
                }
                // Held messages came before anything still to replay.
                held.append(&mut replay);
                replay = std::mem::take(&mut held);
            }
            self.chain.fire_processing_timers()?;
        }
        self.chain.finish(None)
    }
}
