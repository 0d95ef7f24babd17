//! Session windows, a batch at a time with Flink's per-record rules.
//!
//! Each record opens `[ts, ts + gap)` and merges with every session of its
//! key it touches or overlaps; lateness is judged on the merged window. A
//! key's sessions are loaded once per batch and kept in memory while the
//! batch's records are assigned in order; the records a session gains are
//! added in one `add` call at the end of the batch, and each changed session
//! is stored once. The function is called earlier only where the result
//! depends on it, in the order Flink would: pending records are added before
//! sessions holding them merge, and before a session fires at once (a
//! record joining a session the watermark has passed, or a count trigger).
//! Nothing is stored before the end of the batch, so when the function
//! refuses records the batch is assigned again without them.

use rustc_hash::{FxHashMap, FxHashSet};
use weir_types::{RecordBatch, Timestamp};

use super::WindowOperator;
use super::assign::start_key;
use super::function::{Buffered, Fired, Group};
use crate::error::Result;

/// A run of a session's records, in order: those stored under a window's
/// start (moved when the session's start changes), or one of the batch's.
#[derive(Clone, Copy)]
enum Part {
    Stored { start: Timestamp, count: u64 },
    New(u32),
}

/// A session of one key during a batch.
struct Session {
    start: Timestamp,
    end: Timestamp,
    /// All its records, added or pending.
    count: u64,
    /// The accumulator of all but `pending`.
    acc: Vec<u8>,
    /// The batch's records not yet added to `acc`.
    pending: Vec<u32>,
    /// Its records in order (for a window processor only).
    parts: Vec<Part>,
    /// The starts of the stored windows it is made of.
    stored: Vec<Timestamp>,
    changed: bool,
}

/// What a batch did: the results of sessions that fired at once, records
/// late for every session, and records the function refused (left out).
#[derive(Default)]
pub(super) struct SessionBatch {
    pub(super) fired: RecordBatch,
    pub(super) late: Vec<u32>,
    pub(super) refused: Vec<(u32, String)>,
}

/// Records the function refused: nothing of the pass that met them is kept.
type Refused = Vec<(u32, String)>;

impl WindowOperator {
    /// Assigns `indexes` of `records` (in order) to their keys' sessions,
    /// firing at once where the rules say so, and stores the sessions.
    /// Refused records are left out: the batch is assigned again without
    /// them.
    pub(super) fn add_to_sessions(
        &mut self,
        records: &RecordBatch,
        indexes: &[u32],
        gap: i64,
        now: Timestamp,
    ) -> Result<SessionBatch> {
        let mut refused: Refused = Vec::new();
        let mut skip: FxHashSet<u32> = FxHashSet::default();
        loop {
            let mut fired = RecordBatch::new();
            match self.assign_sessions(records, indexes, &skip, gap, now, &mut fired)? {
                Ok(late) => {
                    refused.sort_by_key(|(i, _)| *i);
                    return Ok(SessionBatch { fired, late, refused });
                }
                Err(more) => {
                    // Start again from the stored sessions, without them.
                    skip.extend(more.iter().map(|(i, _)| *i));
                    refused.extend(more);
                }
            }
        }
    }

    /// One pass over the batch: `Ok(late records)` once stored, or
    /// `Err(refused records)` with nothing stored.
    fn assign_sessions(
        &mut self,
        records: &RecordBatch,
        indexes: &[u32],
        skip: &FxHashSet<u32>,
        gap: i64,
        now: Timestamp,
        out: &mut RecordBatch,
    ) -> Result<std::result::Result<Vec<u32>, Refused>> {
        let closed = self.closed_upto();
        // A window processor's records are tracked, to store and fire them.
        let buffers = self.records.is_some();
        let mut keys: FxHashMap<&[u8], Vec<Session>> = FxHashMap::default();
        let mut late = Vec::new();
        for &i in indexes {
            if skip.contains(&i) {
                continue;
            }
            let r = records.get(i as usize);
            let key = r.key.expect("keyed records");
            if !keys.contains_key(key) {
                let loaded = self.load_sessions(key)?;
                keys.insert(key, loaded);
            }
            let sessions = keys.get_mut(key).expect("loaded");
            let ts = self.time_of(r.timestamp, now);
            // The sessions `[ts, ts + gap)` touches: a run, as sessions are
            // apart (so sorted by start and by end alike).
            let first = sessions.partition_point(|s| s.end < ts);
            let reach = ts.saturating_add(gap);
            let hits = first..sessions.partition_point(|s| s.start <= reach).max(first);
            let start = sessions[hits.clone()].first().map_or(ts, |s| s.start.min(ts));
            let end = sessions[hits.clone()].last().map_or(reach, |s| s.end.max(reach));
            if (end - 1).saturating_add(self.lateness) <= closed {
                late.push(i);
                continue;
            }
            let at = match hits.len() {
                0 => {
                    let at = sessions.partition_point(|s| s.start < start);
                    let acc = self.function.empty();
                    let fresh = Session {
                        start,
                        end,
                        count: 0,
                        acc,
                        pending: Vec::new(),
                        parts: Vec::new(),
                        stored: Vec::new(),
                        changed: true,
                    };
                    sessions.insert(at, fresh);
                    at
                }
                1 => first,
                _ => {
                    // Their pending records are added before they merge.
                    if let Err(refused) = self.add_pending(records, key, &mut sessions[hits.clone()])? {
                        return Ok(Err(refused));
                    }
                    let merged: Vec<Session> = sessions.drain(hits).collect();
                    let acc = self.function.merge(&self.task, merged.iter().map(|s| s.acc.clone()).collect())?;
                    let session = Session {
                        start,
                        end,
                        count: merged.iter().map(|s| s.count).sum(),
                        acc,
                        pending: Vec::new(),
                        parts: merged.iter().flat_map(|s| s.parts.iter().copied()).collect(),
                        stored: merged.iter().flat_map(|s| s.stored.iter().copied()).collect(),
                        changed: true,
                    };
                    sessions.insert(first, session);
                    first
                }
            };
            let s = &mut sessions[at];
            (s.start, s.end, s.changed) = (start, end, true);
            s.count += 1;
            s.pending.push(i);
            if buffers {
                s.parts.push(Part::New(i));
            }
            if self.count_fires(s.count) || self.fires_at_end() && end - 1 <= self.watermark {
                if let Err(refused) = self.add_pending(records, key, std::slice::from_mut(&mut sessions[at]))? {
                    return Ok(Err(refused));
                }
                self.fire_session(key, &sessions[at], records, out)?;
            }
        }
        let mut all: Vec<(&[u8], &mut Session)> =
            keys.iter_mut().flat_map(|(k, ss)| ss.iter_mut().map(move |s| (*k, s))).collect();
        if let Err(refused) = self.add_pending_of(records, &mut all)? {
            return Ok(Err(refused));
        }
        for (key, s) in all {
            if s.changed {
                self.store_session(key, s, records)?;
            }
        }
        Ok(Ok(late))
    }

    /// `key`'s stored sessions, by start.
    fn load_sessions(&mut self, key: &[u8]) -> Result<Vec<Session>> {
        let stored = self.stored_windows(key)?;
        Ok(stored
            .into_iter()
            .map(|(start, end, count, acc)| Session {
                start,
                end,
                count,
                acc,
                pending: Vec::new(),
                parts: vec![Part::Stored { start, count }],
                stored: vec![start],
                changed: false,
            })
            .collect())
    }

    fn add_pending(
        &mut self,
        records: &RecordBatch,
        key: &[u8],
        sessions: &mut [Session],
    ) -> Result<std::result::Result<(), Refused>> {
        let mut all: Vec<(&[u8], &mut Session)> = sessions.iter_mut().map(|s| (key, s)).collect();
        self.add_pending_of(records, &mut all)
    }

    /// Adds the sessions' pending records to their accumulators, in one
    /// call. `Err` with the records the function refused.
    fn add_pending_of(
        &mut self,
        records: &RecordBatch,
        sessions: &mut [(&[u8], &mut Session)],
    ) -> Result<std::result::Result<(), Refused>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut of: Vec<usize> = Vec::new();
        for (n, (key, s)) in sessions.iter_mut().enumerate() {
            if s.pending.is_empty() {
                continue;
            }
            let records = std::mem::take(&mut s.pending);
            groups.push(Group {
                key,
                start: s.start,
                end: s.end,
                stored: true,
                count_before: s.count - records.len() as u64,
                acc: std::mem::take(&mut s.acc),
                records,
            });
            of.push(n);
        }
        if groups.is_empty() {
            return Ok(Ok(()));
        }
        // The function gets the batch, or just the pending records when
        // they are fewer (a session firing at once adds one record).
        let pending: usize = groups.iter().map(|g| g.records.len()).sum();
        let mut index: Vec<u32> = Vec::new();
        let mut some = RecordBatch::new();
        if pending < records.len() {
            for g in &mut groups {
                for r in &mut g.records {
                    some.push_ref(records.get(*r as usize));
                    index.push(*r);
                    *r = index.len() as u32 - 1;
                }
            }
        }
        let batch = if index.is_empty() { records } else { &some };
        let refused = self.function.add(&self.task, batch, &mut groups)?;
        if !refused.is_empty() {
            let original = |i: u32| if index.is_empty() { i } else { index[i as usize] };
            return Ok(Err(refused.into_iter().map(|f| (original(f.index), f.message)).collect()));
        }
        for (g, n) in groups.into_iter().zip(of) {
            sessions[n].1.acc = g.acc;
        }
        Ok(Ok(()))
    }

    /// Fires a session at once, with its records for a processor.
    fn fire_session(&mut self, key: &[u8], s: &Session, records: &RecordBatch, out: &mut RecordBatch) -> Result<()> {
        let window = Fired {
            key: key.to_vec(),
            start: s.start,
            end: s.end,
            timestamp: s.end - 1,
            count: s.count,
            acc: s.acc.clone(),
        };
        let mut buffered = Buffered::default();
        if self.records.is_some() {
            for part in &s.parts {
                match *part {
                    Part::Stored { start, .. } => {
                        for (_, ts, value) in self.buffered(key, start)? {
                            buffered.records.push(Some(key), &value, ts);
                        }
                    }
                    Part::New(i) => buffered.records.push_ref(records.get(i as usize)),
                }
            }
            buffered.ranges.extend_from_slice(&[0, buffered.records.len() as u32]);
        }
        self.emit(vec![window], buffered, out)
    }

    /// Stores a changed session: its window (the stored ones it merged
    /// with removed), its records renumbered under its start (for a
    /// processor), and its timers. Timers of windows merged away stay: they
    /// fire harmlessly, as timers check windows against state.
    fn store_session(&mut self, key: &[u8], s: &Session, records: &RecordBatch) -> Result<()> {
        let kg = self.kg(key);
        if let Some(state) = self.records {
            let mut seq = 0;
            for part in &s.parts {
                match *part {
                    // The first session's records keep their numbers.
                    Part::Stored { start, count } if start == s.start && seq == 0 => seq += count,
                    Part::Stored { start, .. } => {
                        for (k, t, v) in self.buffered(key, start)? {
                            self.state.backend().map_remove(state, kg, key, &k).map_err(|e| self.fail(e))?;
                            self.put_record(key, s.start, seq, t, &v)?;
                            seq += 1;
                        }
                    }
                    Part::New(i) => {
                        let r = records.get(i as usize);
                        self.put_record(key, s.start, seq, r.timestamp, r.value)?;
                        seq += 1;
                    }
                }
            }
        }
        for &start in &s.stored {
            if start != s.start {
                self.state.backend().map_remove(self.windows, kg, key, &start_key(start)).map_err(|e| self.fail(e))?;
            }
        }
        self.put_window(key, s.start, s.end, s.count, &s.acc)?;
        self.window_timers(key, s.end)
    }
}
