//! Watermark generation at sources and combination at operators.

use weir_types::{MAX_WATERMARK, MIN_WATERMARK, Timestamp, Watermark};

/// Bounded out-of-orderness for one split, Flink's formula:
/// `watermark = max_timestamp - bound - 1`.
#[derive(Debug, Clone)]
pub struct BoundedOutOfOrderness {
    bound_ms: i64,
    max_timestamp: Timestamp,
    done: bool,
}

impl BoundedOutOfOrderness {
    /// A generator allowing records up to `bound_ms` behind the maximum.
    pub fn new(bound_ms: i64) -> Self {
        BoundedOutOfOrderness { bound_ms, max_timestamp: MIN_WATERMARK, done: false }
    }

    /// Notes a record's timestamp.
    pub fn observe(&mut self, timestamp: Timestamp) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Marks the split finished: its watermark becomes the maximum.
    pub fn finish(&mut self) {
        self.done = true;
    }

    /// The largest timestamp seen and whether the split finished, for a
    /// checkpoint.
    pub fn state(&self) -> (Timestamp, bool) {
        (self.max_timestamp, self.done)
    }

    /// Continues from a checkpointed [`state`](Self::state).
    pub fn restore(&mut self, (max_timestamp, done): (Timestamp, bool)) {
        self.max_timestamp = max_timestamp;
        self.done = done;
    }

    /// Whether the split is finished.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The current watermark.
    pub fn current(&self) -> Timestamp {
        if self.done {
            return MAX_WATERMARK;
        }
        if self.max_timestamp == MIN_WATERMARK {
            return MIN_WATERMARK;
        }
        self.max_timestamp.saturating_sub(self.bound_ms).saturating_sub(1)
    }
}

/// Combines the watermarks of several inputs: the minimum over the inputs
/// that are not idle, never going backwards.
#[derive(Debug, Clone)]
pub struct InputWatermarks {
    inputs: Vec<(Timestamp, bool)>,
    current: Timestamp,
    idle_sent: bool,
}

impl InputWatermarks {
    /// `n` inputs, all at the minimum and active.
    pub fn new(n: usize) -> Self {
        InputWatermarks { inputs: vec![(MIN_WATERMARK, false); n], current: MIN_WATERMARK, idle_sent: false }
    }

    /// The combined watermark.
    pub fn current(&self) -> Timestamp {
        self.current
    }

    /// Records input `i`'s watermark or idleness; returns what to forward
    /// downstream when the combined state changed.
    pub fn update(&mut self, i: usize, watermark: Watermark) -> Option<Watermark> {
        match watermark {
            Watermark::EventTime(t) => {
                let slot = &mut self.inputs[i];
                slot.0 = slot.0.max(t);
                slot.1 = false;
            }
            Watermark::Idle => self.inputs[i].1 = true,
        }
        let active = self.inputs.iter().filter(|(_, idle)| !idle).map(|(t, _)| *t).min();
        match active {
            None if !self.idle_sent => {
                self.idle_sent = true;
                Some(Watermark::Idle)
            }
            None => None,
            Some(min) if min > self.current => {
                self.current = min;
                self.idle_sent = false;
                Some(Watermark::EventTime(min))
            }
            Some(_) if self.idle_sent => {
                // Back from idle without progress: downstream must count us again.
                self.idle_sent = false;
                Some(Watermark::EventTime(self.current))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_out_of_orderness_uses_flinks_formula() {
        let mut g = BoundedOutOfOrderness::new(1000);
        assert_eq!(g.current(), MIN_WATERMARK);
        g.observe(5000);
        g.observe(4000);
        assert_eq!(g.current(), 3999);
        g.finish();
        assert_eq!(g.current(), MAX_WATERMARK);
    }

    #[test]
    fn minimum_over_inputs_skipping_idle_ones() {
        let mut w = InputWatermarks::new(2);
        assert_eq!(w.update(0, Watermark::EventTime(10)), None);
        assert_eq!(w.update(1, Watermark::EventTime(5)), Some(Watermark::EventTime(5)));
        assert_eq!(w.update(1, Watermark::Idle), Some(Watermark::EventTime(10)));
        assert_eq!(w.update(0, Watermark::Idle), Some(Watermark::Idle));
        assert_eq!(w.update(1, Watermark::EventTime(7)), Some(Watermark::EventTime(10)));
        // Input 0 is still idle: input 1 alone decides.
        assert_eq!(w.update(1, Watermark::EventTime(12)), Some(Watermark::EventTime(12)));
        // Input 0 is back, ahead of input 1: no change.
        assert_eq!(w.update(0, Watermark::EventTime(20)), None);
        assert_eq!(w.update(1, Watermark::EventTime(25)), Some(Watermark::EventTime(20)));
        // Never backwards.
        assert_eq!(w.update(1, Watermark::EventTime(3)), None);
        assert_eq!(w.current(), 20);
    }
}
