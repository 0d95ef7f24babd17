//! When checkpoints start, complete and are aborted. Pure: the caller passes
//! the time and the acknowledgements; nothing here sleeps or does I/O.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The coordinator's settings (from the job spec's `checkpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Time between checkpoint starts.
    pub interval: Duration,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// Least time from the end of one checkpoint to the start of the next.
    pub min_pause: Duration,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Nothing.
    Idle,
    /// Inject barrier `id` at every source.
    Trigger(u64),
    /// Checkpoint `id` took too long and is abandoned.
    Abort(u64),
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Not for the checkpoint in progress (late, aborted, or repeated).
    Ignored,
    /// Counted; this many tasks are still to acknowledge.
    Waiting(usize),
    /// Every task acknowledged: checkpoint `id` is complete.
    Complete(u64),
}

#[derive(Debug)]
struct Pending {
    id: u64,
    started: Instant,
    acked: BTreeSet<usize>,
}

/// Decides checkpoints for a job of `tasks` tasks, numbered `0..tasks`.
/// One checkpoint is in flight at a time.
#[derive(Debug)]
pub struct Coordinator {
    config: CoordinatorConfig,
    tasks: usize,
    next_id: u64,
    pending: Option<Pending>,
    /// When the next checkpoint may start.
    next_start: Instant,
    completed: u64,
    aborted: u64,
}

impl Coordinator {
    /// A coordinator whose first checkpoint is `first_id`, due one interval
    /// after `now`.
    pub fn new(config: CoordinatorConfig, tasks: usize, first_id: u64, now: Instant) -> Self {
        Coordinator {
            config,
            tasks,
            next_id: first_id,
            pending: None,
            next_start: now + config.interval,
            completed: 0,
            aborted: 0,
        }
    }

    /// The checkpoint in progress, and when it started.
    pub fn in_progress(&self) -> Option<(u64, Instant)> {
        self.pending.as_ref().map(|p| (p.id, p.started))
    }

    /// Checkpoints completed and aborted so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.completed, self.aborted)
    }

    /// Starts a checkpoint when one is due, or aborts the one in progress
    /// when it has timed out.
    pub fn tick(&mut self, now: Instant) -> Tick {
        if let Some(p) = &self.pending {
            if now.duration_since(p.started) >= self.config.timeout {
                return self.end_pending(false, now).map(Tick::Abort).unwrap_or(Tick::Idle);
            }
            return Tick::Idle;
        }
        if now < self.next_start {
            return Tick::Idle;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending = Some(Pending { id, started: now, acked: BTreeSet::new() });
        Tick::Trigger(id)
    }

    /// Starts a checkpoint now (one asked for rather than due), unless one is
    /// in progress: then its id is the error, and the caller asks again
    /// when it is over.
    pub fn trigger_now(&mut self, now: Instant) -> Result<u64, u64> {
        if let Some(p) = &self.pending {
            return Err(p.id);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending = Some(Pending { id, started: now, acked: BTreeSet::new() });
        Ok(id)
    }

    /// Task `task` has snapshotted its part of checkpoint `id`.
    pub fn ack(&mut self, id: u64, task: usize) -> Ack {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id && task < self.tasks) else { return Ack::Ignored };
        if !p.acked.insert(task) {
            return Ack::Ignored;
        }
        let remaining = self.tasks - p.acked.len();
        if remaining > 0 {
            return Ack::Waiting(remaining);
        }
        Ack::Complete(id)
    }

    /// The completed checkpoint `id` is stored (or failed to be): the next
    /// may start after the interval and the minimum pause. Returns whether
    /// `id` was the one in progress.
    pub fn finish(&mut self, id: u64, stored: bool, now: Instant) -> bool {
        self.pending.as_ref().is_some_and(|p| p.id == id) && self.end_pending(stored, now).is_some()
    }

    /// A task could not take part in checkpoint `id` (it failed to snapshot):
    /// the checkpoint is aborted. Returns whether it was in progress.
    pub fn decline(&mut self, id: u64, now: Instant) -> bool {
        self.pending.as_ref().is_some_and(|p| p.id == id) && self.end_pending(false, now).is_some()
    }

    /// Ends the checkpoint in progress, completed or aborted: the next may
    /// start one interval after it started, and no sooner than the minimum
    /// pause after now. Returns its id.
    fn end_pending(&mut self, completed: bool, now: Instant) -> Option<u64> {
        let p = self.pending.take()?;
        match completed {
            true => self.completed += 1,
            false => self.aborted += 1,
        }
        self.next_start = (p.started + self.config.interval).max(now + self.config.min_pause);
        Some(p.id)
    }
}

/// Which completed checkpoints to delete so that the newest `retain` stay.
pub fn to_delete(completed: &[u64], retain: usize) -> Vec<u64> {
    let mut ids = completed.to_vec();
    ids.sort_unstable();
    let cut = ids.len().saturating_sub(retain);
    ids.truncate(cut);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn config() -> CoordinatorConfig {
        CoordinatorConfig { interval: 10 * S, timeout: 5 * S, min_pause: 3 * S }
    }

    #[test]
    fn triggers_on_interval_and_completes_when_every_task_acked() {
        let t0 = Instant::now();
        let mut c = Coordinator::new(config(), 3, 7, t0);
        assert_eq!(c.tick(t0 + 9 * S), Tick::Idle);
        assert_eq!(c.tick(t0 + 10 * S), Tick::Trigger(7));
        assert_eq!(c.tick(t0 + 11 * S), Tick::Idle, "one in flight");
        assert_eq!(c.ack(7, 2), Ack::Waiting(2));
        assert_eq!(c.ack(7, 2), Ack::Ignored, "a repeated ack counts once");
        assert_eq!(c.ack(6, 0), Ack::Ignored, "an old checkpoint's ack");
        assert_eq!(c.ack(7, 9), Ack::Ignored, "no such task");
        assert_eq!(c.ack(7, 0), Ack::Waiting(1));
        assert_eq!(c.ack(7, 1), Ack::Complete(7));
        assert!(c.finish(7, true, t0 + 12 * S));
        assert_eq!(c.counts(), (1, 0));
        // Next start: interval after the last start (20 s), at least the pause after the end (15 s).
        assert_eq!(c.tick(t0 + 19 * S), Tick::Idle);
        assert_eq!(c.tick(t0 + 20 * S), Tick::Trigger(8));
    }

    #[test]
    fn min_pause_delays_the_next_start_after_a_slow_checkpoint() {
        let t0 = Instant::now();
        let mut c = Coordinator::new(config(), 1, 1, t0);
        assert_eq!(c.tick(t0 + 10 * S), Tick::Trigger(1));
        assert_eq!(c.ack(1, 0), Ack::Complete(1));
        c.finish(1, true, t0 + 19 * S);
        assert_eq!(c.tick(t0 + 21 * S), Tick::Idle, "pause runs to 22 s");
        assert_eq!(c.tick(t0 + 22 * S), Tick::Trigger(2));
    }

    #[test]
    fn a_timed_out_or_declined_checkpoint_is_aborted_and_the_job_goes_on() {
        let t0 = Instant::now();
        let mut c = Coordinator::new(config(), 2, 1, t0);
        assert_eq!(c.tick(t0 + 10 * S), Tick::Trigger(1));
        assert_eq!(c.ack(1, 0), Ack::Waiting(1));
        assert_eq!(c.tick(t0 + 14 * S), Tick::Idle);
        assert_eq!(c.tick(t0 + 15 * S), Tick::Abort(1));
        assert_eq!(c.ack(1, 1), Ack::Ignored, "too late");
        assert_eq!(c.tick(t0 + 20 * S), Tick::Trigger(2));
        assert!(c.decline(2, t0 + 21 * S));
        assert!(!c.decline(2, t0 + 21 * S));
        assert_eq!(c.counts(), (0, 2));
        assert_eq!(c.tick(t0 + 29 * S), Tick::Idle);
        assert_eq!(c.tick(t0 + 30 * S), Tick::Trigger(3));
        assert!(!c.finish(2, true, t0 + 30 * S), "an aborted checkpoint cannot finish");
    }

    #[test]
    fn a_checkpoint_asked_for_starts_at_once_unless_one_is_in_flight() {
        let t0 = Instant::now();
        let mut c = Coordinator::new(config(), 1, 4, t0);
        assert_eq!(c.trigger_now(t0 + S), Ok(4));
        assert_eq!(c.trigger_now(t0 + S), Err(4));
        assert_eq!(c.ack(4, 0), Ack::Complete(4));
        assert!(c.finish(4, true, t0 + 2 * S));
        assert_eq!(c.trigger_now(t0 + 2 * S), Ok(5), "min_pause applies to periodic ones only");
    }

    #[test]
    fn retention_keeps_the_newest() {
        assert_eq!(to_delete(&[4, 1, 3, 2], 2), vec![1, 2]);
        assert_eq!(to_delete(&[1], 3), Vec::<u64>::new());
    }
}
