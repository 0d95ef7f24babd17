//! Per-key timers of one operator task: deduplicated, fired in time order,
//! and written through to the state backend so they are part of its state.

use std::collections::BTreeSet;

use weir_state::{KeyedStateBackend, StateError, TimerEntry};
use weir_types::{TimeDomain, Timestamp};

/// Event-time and processing-time timer queues.
#[derive(Debug, Default)]
pub struct TimerService {
    event: BTreeSet<(Timestamp, Vec<u8>)>,
    processing: BTreeSet<(Timestamp, Vec<u8>)>,
}

impl TimerService {
    /// Rebuilds the queues from the timers stored in `backend`.
    pub fn restore(backend: &mut dyn KeyedStateBackend) -> Result<Self, StateError> {
        let mut s = TimerService::default();
        for (_, t) in backend.timers()? {
            s.queue(t.domain).insert((t.timestamp, t.key));
        }
        Ok(s)
    }

    fn queue(&mut self, domain: TimeDomain) -> &mut BTreeSet<(Timestamp, Vec<u8>)> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Registers a timer; registering an existing (time, key) does nothing.
    pub fn register(
        &mut self,
        backend: &mut dyn KeyedStateBackend,
        max_parallelism: u32,
        domain: TimeDomain,
        timestamp: Timestamp,
        key: Vec<u8>,
    ) -> Result<(), StateError> {
        let kg = weir_types::key_group(&key, max_parallelism);
        let entry = TimerEntry { timestamp, key, domain };
        if self.queue(domain).insert((timestamp, entry.key.clone())) {
            backend.add_timer(kg, &entry)?;
        }
        Ok(())
    }

    /// Deletes a timer if present.
    pub fn delete(
        &mut self,
        backend: &mut dyn KeyedStateBackend,
        max_parallelism: u32,
        domain: TimeDomain,
        timestamp: Timestamp,
        key: Vec<u8>,
    ) -> Result<(), StateError> {
        let kg = weir_types::key_group(&key, max_parallelism);
        let entry = TimerEntry { timestamp, key, domain };
        if self.queue(domain).remove(&(timestamp, entry.key.clone())) {
            backend.remove_timer(kg, &entry)?;
        }
        Ok(())
    }

    /// Removes and returns up to `max` timers with time `<= upto`, in
    /// (time, key) order.
    pub fn pop_due(
        &mut self,
        backend: &mut dyn KeyedStateBackend,
        max_parallelism: u32,
        domain: TimeDomain,
        upto: Timestamp,
        max: usize,
    ) -> Result<Vec<(Timestamp, Vec<u8>)>, StateError> {
        let queue = self.queue(domain);
        let mut due = Vec::new();
        while due.len() < max {
            match queue.first() {
                Some((t, _)) if *t <= upto => due.push(queue.pop_first().expect("non-empty")),
                _ => break,
            }
        }
        for (timestamp, key) in &due {
            let kg = weir_types::key_group(key, max_parallelism);
            backend.remove_timer(kg, &TimerEntry { timestamp: *timestamp, key: key.clone(), domain })?;
        }
        Ok(due)
    }

    /// The earliest timer of a domain.
    pub fn next(&self, domain: TimeDomain) -> Option<Timestamp> {
        match domain {
            TimeDomain::EventTime => self.event.first().map(|(t, _)| *t),
            TimeDomain::ProcessingTime => self.processing.first().map(|(t, _)| *t),
        }
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.event.len() + self.processing.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use weir_state::MemoryBackend;

    use super::*;

    #[test]
    fn dedups_orders_and_persists() {
        let mut b = MemoryBackend::new(16);
        let mut t = TimerService::default();
        for (ts, k) in [(30, "b"), (10, "a"), (30, "a"), (10, "a")] {
            t.register(&mut b, 16, TimeDomain::EventTime, ts, k.as_bytes().to_vec()).unwrap();
        }
        t.register(&mut b, 16, TimeDomain::ProcessingTime, 5, b"p".to_vec()).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(b.timers().unwrap().len(), 4);
        t.delete(&mut b, 16, TimeDomain::EventTime, 30, b"b".to_vec()).unwrap();
        let due = t.pop_due(&mut b, 16, TimeDomain::EventTime, 30, 10).unwrap();
        assert_eq!(due, vec![(10, b"a".to_vec()), (30, b"a".to_vec())]);
        let restored = TimerService::restore(&mut b).unwrap();
        assert_eq!(restored.next(TimeDomain::ProcessingTime), Some(5));
        assert_eq!(restored.next(TimeDomain::EventTime), None);
    }
}
