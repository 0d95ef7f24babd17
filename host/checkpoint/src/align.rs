//! Barrier alignment for a task with several inputs: after barrier *n*
//! arrives on an input, that input is blocked (its later messages wait)
//! until barrier *n* has arrived on every open input. Pure.

/// What a barrier did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarrierOutcome {
    /// Other inputs have not delivered it yet.
    Wait,
    /// Every open input delivered barrier `id`: snapshot now.
    Aligned(u64),
    /// An older barrier than the one being aligned: drop it.
    Stale,
}

/// Alignment state over a task's input slots.
#[derive(Debug)]
pub struct Aligner {
    blocked: Vec<bool>,
    ended: Vec<bool>,
    current: Option<u64>,
}

impl Aligner {
    /// For `inputs` input slots.
    pub fn new(inputs: usize) -> Self {
        Aligner { blocked: vec![false; inputs], ended: vec![false; inputs], current: None }
    }

    /// Whether messages from `slot` must wait.
    pub fn is_blocked(&self, slot: usize) -> bool {
        self.blocked[slot]
    }

    /// Barrier `id` arrived on `slot`.
    pub fn barrier(&mut self, slot: usize, id: u64) -> BarrierOutcome {
        match self.current {
            Some(c) if id < c => return BarrierOutcome::Stale,
            // A newer barrier: the one being aligned was abandoned upstream.
            Some(c) if id > c => self.blocked.iter_mut().for_each(|b| *b = false),
            _ => {}
        }
        self.current = Some(id);
        self.blocked[slot] = true;
        self.check()
    }

    /// `slot` ended: it no longer holds up alignment.
    pub fn end(&mut self, slot: usize) -> BarrierOutcome {
        self.ended[slot] = true;
        self.blocked[slot] = false;
        match self.current {
            Some(_) if self.blocked.iter().any(|b| *b) => self.check(),
            _ => BarrierOutcome::Wait,
        }
    }

    fn check(&mut self) -> BarrierOutcome {
        let all = self.blocked.iter().zip(&self.ended).all(|(b, e)| *b || *e);
        match (all, self.current) {
            (true, Some(id)) => {
                self.blocked.iter_mut().for_each(|b| *b = false);
                self.current = None;
                BarrierOutcome::Aligned(id)
            }
            _ => BarrierOutcome::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_when_every_open_input_delivered_the_barrier() {
        let mut a = Aligner::new(3);
        assert_eq!(a.barrier(1, 5), BarrierOutcome::Wait);
        assert!(a.is_blocked(1) && !a.is_blocked(0));
        assert_eq!(a.barrier(0, 5), BarrierOutcome::Wait);
        assert_eq!(a.barrier(2, 5), BarrierOutcome::Aligned(5));
        assert!(!a.is_blocked(0) && !a.is_blocked(1) && !a.is_blocked(2));
    }

    #[test]
    fn an_ended_input_does_not_hold_up_alignment() {
        let mut a = Aligner::new(2);
        assert_eq!(a.barrier(0, 1), BarrierOutcome::Wait);
        assert_eq!(a.end(1), BarrierOutcome::Aligned(1));
        assert_eq!(a.barrier(0, 2), BarrierOutcome::Aligned(2), "one open input left");
    }

    #[test]
    fn a_newer_barrier_supersedes_and_an_older_one_is_stale() {
        let mut a = Aligner::new(2);
        assert_eq!(a.barrier(0, 1), BarrierOutcome::Wait);
        assert_eq!(a.barrier(1, 2), BarrierOutcome::Wait);
        assert!(!a.is_blocked(0), "checkpoint 1 was abandoned: input 0 flows again");
        assert_eq!(a.barrier(0, 1), BarrierOutcome::Stale);
        assert_eq!(a.barrier(0, 2), BarrierOutcome::Aligned(2));
    }
}
