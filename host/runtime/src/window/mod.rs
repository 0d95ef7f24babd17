//! Host-native windows (tumbling, sliding and session windows in event
//! time, and count windows) computing a built-in aggregate, a Wasm
//! aggregate or a Wasm window processor, with Flink's rules:
//!
//! - windows are half-open `[start, end)`, `start = ts - floor_mod(ts - offset, slide)`;
//! - a window fires when the watermark reaches `end - 1`;
//! - a window is gone once `end - 1 + allowed_lateness <= watermark`; a record
//!   goes to the late output only if all its windows are gone, otherwise it
//!   joins the ones that are not;
//! - a record accepted into a window that already fired re-fires it at once
//!   with the full updated result;
//! - at the end of bounded input the MAX watermark fires every window once.
//!
//! Windows live in a map state (`windows`: window start → end, record count
//! and accumulator), a window processor's records in another
//! (`window-records`: window start and sequence number → record), and
//! timers in the timer service: all of it is part of checkpoints.

mod assign;
mod builtin;
mod function;
mod session;

use std::sync::Arc;

use rustc_hash::FxHashMap;
use weir_spec::{OnError, TriggerSpec, WindowSpec};
use weir_state::{KeyedState, StateDescriptor, StateId, StateKind};
use weir_types::{NodeUpdate, RecordBatch, TaskInfo, TimeDomain, Timestamp};

use self::assign::{Assigner, count_windows, start_key, start_of, windows as time_windows};
pub(crate) use self::function::WindowFunction;
use self::function::{Buffered, Fired, Group, UNBOUNDED};
use crate::error::{Result, RuntimeError};
use crate::metrics::{Counters, NodeMetrics};
use crate::node::Node;
use crate::operator::{Clock, DEAD_LETTER_OUTPUT, Emitted, handle_record_errors};
use crate::timers::TimerService;

/// The state holding each key's open windows.
pub(crate) const WINDOW_STATE: &str = "windows";
/// The state holding the records of each key's windows, for a window
/// processor.
pub(crate) const RECORDS_STATE: &str = "window-records";

/// The map key of a count-window key's record counter.
const SEQ_KEY: &[u8] = b"seq";

/// A stored window: its end (for a count window, its last record's time),
/// how many records it has, and its accumulator.
fn encode_window(end: Timestamp, count: u64, acc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + acc.len());
    out.extend_from_slice(&end.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(acc);
    out
}

fn decode_window(bytes: &[u8]) -> Option<(Timestamp, u64, &[u8])> {
    let end = i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let count = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((end, count, &bytes[16..]))
}

/// A stored window: its start, end, record count and accumulator.
type StoredWindow = (Timestamp, Timestamp, u64, Vec<u8>);

/// A buffered record: its map key, timestamp and value.
type BufferedRecord = (Vec<u8>, Timestamp, Vec<u8>);

/// The map key of a buffered record: its window's start, then its sequence
/// number in the window.
fn record_key(start: Timestamp, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&start_key(start));
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// What a window operator is built from.
pub(crate) struct WindowSetup<'a> {
    pub(crate) window: &'a WindowSpec,
    pub(crate) function: WindowFunction,
    /// How the function's plugin instances are made (for a swap).
    pub(crate) instance: crate::operator::InstanceSetup,
    pub(crate) on_error: OnError,
    pub(crate) batch_size: usize,
    pub(crate) watermark: Timestamp,
}

/// A keyed window operator instance.
pub(crate) struct WindowOperator {
    task: TaskInfo,
    state: KeyedState,
    windows: StateId,
    /// A window processor's buffered records.
    records: Option<StateId>,
    timers: TimerService,
    watermark: Timestamp,
    assigner: Assigner,
    trigger: TriggerSpec,
    lateness: i64,
    late_output: Option<String>,
    function: WindowFunction,
    instance: crate::operator::InstanceSetup,
    /// Processing time, for processing-time windows and early firings.
    pub(crate) clock: Clock,
    on_error: OnError,
    batch_size: usize,
    counters: Counters,
    /// A buffered record's stored form, reused.
    scratch: Vec<u8>,
}

impl WindowOperator {
    /// A window operator over `state` (with restored state, if any).
    pub(crate) fn new(
        task: TaskInfo,
        mut state: KeyedState,
        setup: WindowSetup<'_>,
        metrics: Arc<NodeMetrics>,
    ) -> Result<Self> {
        let fail = |e| RuntimeError::state(&task, e);
        state.begin_declarations();
        let windows = state.declare(&StateDescriptor::rows(WINDOW_STATE, StateKind::Map)).map_err(fail)?;
        let records = match setup.function.buffers_records() {
            true => Some(state.declare(&StateDescriptor::rows(RECORDS_STATE, StateKind::Map)).map_err(fail)?),
            false => None,
        };
        let timers = TimerService::restore(state.backend()).map_err(fail)?;
        Ok(WindowOperator {
            task,
            state,
            windows,
            records,
            timers,
            watermark: setup.watermark,
            assigner: Assigner::new(setup.window),
            trigger: setup.window.trigger,
            clock: Clock::Wall,
            lateness: setup.window.allowed_lateness.as_millis() as i64,
            late_output: setup.window.late_output.clone(),
            function: setup.function,
            instance: setup.instance,
            on_error: setup.on_error,
            batch_size: setup.batch_size,
            counters: Counters::new(metrics),
            scratch: Vec::new(),
        })
    }

    fn fail(&self, e: weir_state::StateError) -> RuntimeError {
        RuntimeError::state(&self.task, e)
    }

    fn corrupt(&self, what: &str) -> RuntimeError {
        RuntimeError::state(&self.task, weir_state::StateError::Corrupt(what.to_string()))
    }

    fn kg(&self, key: &[u8]) -> u16 {
        self.state.key_group(key)
    }

    fn timer(&mut self, domain: TimeDomain, at: Timestamp, key: &[u8]) -> Result<()> {
        let maxp = self.state.max_parallelism();
        self.timers.register(self.state.backend(), maxp, domain, at, key.to_vec()).map_err(|e| self.fail(e))
    }

    /// Whether windows fire when the watermark reaches their end.
    fn fires_at_end(&self) -> bool {
        matches!(self.trigger, TriggerSpec::EventTime | TriggerSpec::Every(_))
    }

    /// What decides which windows are closed: the watermark, or nothing for
    /// processing-time windows (never late).
    fn closed_upto(&self) -> Timestamp {
        match self.trigger {
            TriggerSpec::ProcessingTime => Timestamp::MIN,
            _ => self.watermark,
        }
    }

    /// Registers a new window's timers, by trigger: firing (unless it is
    /// born fired), clean-up after the allowed lateness, early firings.
    fn window_timers(&mut self, key: &[u8], end: Timestamp) -> Result<()> {
        let last = end - 1;
        match self.trigger {
            // Once the clock has passed the window's last millisecond: a
            // record arriving in that millisecond still joins it (were it
            // to fire at `last`, that record would open the window again and
            // it would fire twice).
            TriggerSpec::ProcessingTime => return self.timer(TimeDomain::ProcessingTime, end, key),
            // Fired by count only; cleaned up when the watermark passes.
            TriggerSpec::Count(_) => return self.timer(TimeDomain::EventTime, last.saturating_add(self.lateness), key),
            TriggerSpec::EventTime | TriggerSpec::Every(_) => {}
        }
        if last > self.watermark {
            self.timer(TimeDomain::EventTime, last, key)?;
            if let TriggerSpec::Every(period) = self.trigger {
                let (now, period) = (self.clock.now(), period.as_millis() as i64);
                self.timer(TimeDomain::ProcessingTime, now - now.rem_euclid(period) + period, key)?;
            }
        }
        if self.lateness > 0 {
            self.timer(TimeDomain::EventTime, last.saturating_add(self.lateness), key)?;
        }
        Ok(())
    }

    /// `key`'s window at `start` as stored, or a new one.
    fn load<'k>(&mut self, key: &'k [u8], start: Timestamp, end: Timestamp) -> Result<Group<'k>> {
        let kg = self.kg(key);
        let stored =
            self.state.backend().map_get(self.windows, kg, key, &start_key(start)).map_err(|e| self.fail(e))?;
        let mut group =
            Group { key, start, end, stored: stored.is_some(), count_before: 0, acc: Vec::new(), records: Vec::new() };
        match stored {
            Some(bytes) => {
                let (end, count, acc) = decode_window(&bytes).ok_or_else(|| self.corrupt("window state"))?;
                (group.end, group.count_before, group.acc) = (end, count, acc.to_vec());
            }
            None => group.acc = self.function.empty(),
        }
        Ok(group)
    }

    fn store(&mut self, g: &Group<'_>) -> Result<()> {
        self.put_window(g.key, g.start, g.end, g.count_before + g.records.len() as u64, &g.acc)
    }

    /// Stores `key`'s window at `start`.
    fn put_window(&mut self, key: &[u8], start: Timestamp, end: Timestamp, count: u64, acc: &[u8]) -> Result<()> {
        let value = encode_window(end, count, acc);
        let kg = self.kg(key);
        self.state.backend().map_put(self.windows, kg, key, &start_key(start), &value).map_err(|e| self.fail(e))
    }

    /// `key`'s stored windows, in start order.
    fn stored_windows(&mut self, key: &[u8]) -> Result<Vec<StoredWindow>> {
        let kg = self.kg(key);
        let stored =
            self.state.backend().map_range(self.windows, kg, key, None, usize::MAX).map_err(|e| self.fail(e))?;
        let mut windows = Vec::with_capacity(stored.len());
        for (k, v) in &stored {
            if k == SEQ_KEY {
                continue;
            }
            let (Some(start), Some((end, count, acc))) = (start_of(k), decode_window(v)) else {
                return Err(self.corrupt("window state"));
            };
            windows.push((start, end, count, acc.to_vec()));
        }
        Ok(windows)
    }

    /// Buffers a group's records (for a window processor), after the
    /// window's earlier ones.
    fn buffer(&mut self, g: &Group<'_>, batch: &RecordBatch) -> Result<()> {
        for (seq, &i) in (g.count_before..).zip(&g.records) {
            let r = batch.get(i as usize);
            self.put_record(g.key, g.start, seq, r.timestamp, r.value)?;
        }
        Ok(())
    }

    /// Buffers one record as number `seq` of `key`'s window at `start` (for
    /// a window processor; nothing otherwise).
    fn put_record(&mut self, key: &[u8], start: Timestamp, seq: u64, ts: Timestamp, value: &[u8]) -> Result<()> {
        let Some(state) = self.records else { return Ok(()) };
        let kg = self.kg(key);
        let mut stored = std::mem::take(&mut self.scratch);
        stored.clear();
        stored.extend_from_slice(&ts.to_le_bytes());
        stored.extend_from_slice(value);
        let put = self.state.backend().map_put(state, kg, key, &record_key(start, seq), &stored);
        self.scratch = stored;
        put.map_err(|e| self.fail(e))
    }

    /// The time that places a record in windows: its event time, or the
    /// clock's `now` for processing-time windows.
    /// (A record at the largest timestamp counts as one before it: windows
    /// end at the largest timestamp at the latest, and exclude their end.)
    fn time_of(&self, timestamp: Timestamp, now: Timestamp) -> Timestamp {
        match self.trigger {
            TriggerSpec::ProcessingTime => now,
            _ => timestamp.min(Timestamp::MAX - 1),
        }
    }

    /// The buffered records of `key`'s window at `start`: (map key,
    /// timestamp, value) in sequence order.
    fn buffered(&mut self, key: &[u8], start: Timestamp) -> Result<Vec<BufferedRecord>> {
        let Some(state) = self.records else { return Ok(Vec::new()) };
        let (kg, prefix) = (self.kg(key), start_key(start));
        let mut out = Vec::new();
        let mut after = prefix.to_vec();
        loop {
            let page = self.state.backend().map_range(state, kg, key, Some(&after), 1024).map_err(|e| self.fail(e))?;
            let full = page.len() == 1024;
            for (k, v) in page {
                if !k.starts_with(&prefix) {
                    return Ok(out);
                }
                let ts = v.get(..8).and_then(|t| t.try_into().ok()).map(i64::from_le_bytes);
                let ts = ts.ok_or_else(|| self.corrupt("window state: a buffered record"))?;
                after.clone_from(&k);
                out.push((k, ts, v[8..].to_vec()));
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Removes `key`'s window at `start` and its `count` buffered records
    /// (numbered `0..count`: their keys are known, nothing is read).
    fn purge(&mut self, key: &[u8], start: Timestamp, count: u64) -> Result<()> {
        let kg = self.kg(key);
        self.state.backend().map_remove(self.windows, kg, key, &start_key(start)).map_err(|e| self.fail(e))?;
        if let Some(state) = self.records {
            for seq in 0..count {
                self.state.backend().map_remove(state, kg, key, &record_key(start, seq)).map_err(|e| self.fail(e))?;
            }
        }
        Ok(())
    }

    /// Adds a fired window, with its buffered records, to what a call
    /// computes results for.
    fn collect(
        &mut self,
        fired: &mut Vec<Fired>,
        buffered: &mut Buffered,
        window: Fired,
        extra: &[u32],
        batch: Option<&RecordBatch>,
    ) -> Result<()> {
        if self.records.is_some() {
            let first = buffered.records.len() as u32;
            for (_, ts, value) in self.buffered(&window.key, window.start)? {
                buffered.records.push(Some(&window.key), &value, ts);
            }
            if let Some(batch) = batch {
                for &i in extra {
                    buffered.records.push_ref(batch.get(i as usize));
                }
            }
            buffered.ranges.extend_from_slice(&[first, buffered.records.len() as u32 - first]);
        }
        fired.push(window);
        Ok(())
    }

    /// Computes and emits the results of fired windows.
    fn emit(&mut self, fired: Vec<Fired>, buffered: Buffered, out: &mut RecordBatch) -> Result<()> {
        for (i, value) in self.function.results(&self.task, &fired, buffered)? {
            let f = &fired[i];
            out.push(Some(&f.key), &value, f.timestamp);
        }
        Ok(())
    }

    /// Adds one record to `key`'s window `[start, end)` at once (state
    /// updated, timers of a new window registered). Returns the window, or
    /// `None` when the function could not add the record.
    fn add_now<'k>(
        &mut self,
        key: &'k [u8],
        (start, end): (Timestamp, Timestamp),
        record: weir_types::RecordRef<'_>,
        failures: &mut Vec<(u32, String)>,
        index: u32,
    ) -> Result<Option<Group<'k>>> {
        let mut one = RecordBatch::new();
        one.push_ref(record);
        let mut groups = [self.load(key, start, end)?];
        groups[0].records.push(0);
        if let Some(f) = self.function.add(&self.task, &one, &mut groups)?.pop() {
            failures.push((index, f.message));
            return Ok(None);
        }
        let [g] = groups;
        self.buffer(&g, &one)?;
        self.store(&g)?;
        if !g.stored {
            self.window_timers(key, end)?;
        }
        Ok(Some(g))
    }

    /// Fires a stored window at once.
    fn fire_now(&mut self, g: &Group<'_>, out: &mut RecordBatch) -> Result<()> {
        let window = Fired {
            key: g.key.to_vec(),
            start: g.start,
            end: g.end,
            timestamp: g.end.saturating_sub(1),
            count: g.count_before + g.records.len() as u64,
            acc: g.acc.clone(),
        };
        let (mut fired, mut buffered) = (Vec::new(), Buffered::default());
        self.collect(&mut fired, &mut buffered, window, &[], None)?;
        self.emit(fired, buffered, out)
    }

    /// Whether a window that now holds `count` records fires by count.
    fn count_fires(&self, count: u64) -> bool {
        matches!(self.trigger, TriggerSpec::Count(n) if count.is_multiple_of(n))
    }

    /// Collects `key`'s windows a timer at `at` fires, and purges those
    /// it ends: event time fires windows ending at `at` (by the default
    /// triggers) and purges those past their lateness; processing time fires
    /// and purges processing-time windows, or fires open windows early.
    fn on_timer(
        &mut self,
        domain: TimeDomain,
        at: Timestamp,
        key: &[u8],
        fired: &mut Vec<Fired>,
        buffered: &mut Buffered,
    ) -> Result<()> {
        let mut open = false;
        for (start, end, count, acc) in self.stored_windows(key)? {
            let last = end - 1;
            let window = Fired { key: key.to_vec(), start, end, timestamp: last, count, acc };
            match (domain, self.trigger) {
                (TimeDomain::ProcessingTime, TriggerSpec::Every(_)) => {
                    if last > self.watermark {
                        self.collect(fired, buffered, window, &[], None)?;
                        open = true;
                    }
                }
                (TimeDomain::ProcessingTime, _) => {
                    if last <= at {
                        self.collect(fired, buffered, window, &[], None)?;
                        self.purge(key, start, count)?;
                    }
                }
                (TimeDomain::EventTime, _) => {
                    if last == at && self.fires_at_end() {
                        self.collect(fired, buffered, window, &[], None)?;
                    }
                    if last.saturating_add(self.lateness) <= at {
                        self.purge(key, start, count)?;
                    }
                }
            }
        }
        if let (true, TriggerSpec::Every(period)) = (open, self.trigger) {
            self.timer(TimeDomain::ProcessingTime, at + period.as_millis() as i64, key)?;
        }
        Ok(())
    }

    /// Fires the timers of `domain` due at `upto`, in batches.
    fn fire_timers(&mut self, domain: TimeDomain, upto: Timestamp, out: &mut RecordBatch) -> Result<()> {
        let maxp = self.state.max_parallelism();
        loop {
            let due = self
                .timers
                .pop_due(self.state.backend(), maxp, domain, upto, self.batch_size)
                .map_err(|e| self.fail(e))?;
            if due.is_empty() {
                return Ok(());
            }
            let (mut fired, mut buffered) = (Vec::new(), Buffered::default());
            for (at, key) in due {
                self.on_timer(domain, at, &key, &mut fired, &mut buffered)?;
            }
            self.emit(fired, buffered, out)?;
        }
    }

    /// How many records `key` has had (count windows).
    fn seq(&mut self, key: &[u8]) -> Result<u64> {
        let kg = self.kg(key);
        let stored = self.state.backend().map_get(self.windows, kg, key, SEQ_KEY).map_err(|e| self.fail(e))?;
        match stored {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_le_bytes(
                bytes.as_slice().try_into().map_err(|_| self.corrupt("window state: a record count"))?,
            )),
        }
    }

    /// The index in `groups` of `key`'s window at `start`, loaded when
    /// first touched in this call.
    fn group<'k>(
        &mut self,
        groups: &mut Vec<Group<'k>>,
        open: &mut FxHashMap<(&'k [u8], Timestamp), usize>,
        key: &'k [u8],
        (start, end): (Timestamp, Timestamp),
    ) -> Result<usize> {
        if let Some(&gi) = open.get(&(key, start)) {
            return Ok(gi);
        }
        groups.push(self.load(key, start, end)?);
        open.insert((key, start), groups.len() - 1);
        Ok(groups.len() - 1)
    }

    /// A record too late for all its windows: to the late output, or
    /// dropped and counted.
    fn late(&mut self, r: weir_types::RecordRef<'_>, late: &mut RecordBatch) {
        match &self.late_output {
            Some(_) => late.push_ref(r),
            None => self.counters.add("late_records_dropped", 1),
        }
    }

    /// Records the function failed on, by the node's `on_error`.
    fn failed(&mut self, failures: &mut [(u32, String)], input: &RecordBatch, out: &mut Emitted) -> Result<()> {
        failures.sort_by_key(|(i, _)| *i);
        let who = match &self.function {
            WindowFunction::Builtin(_) => "the window aggregate",
            _ => "plugin",
        };
        let dead =
            handle_record_errors(&self.task, self.on_error, &mut self.counters, who, failures, "record", Some(input))?;
        if let Some(batch) = dead {
            self.counters.node().side_out.inc_by(batch.len() as u64);
            out.side.push((DEAD_LETTER_OUTPUT.to_string(), batch));
        }
        Ok(())
    }
}

impl Node for WindowOperator {
    fn task(&self) -> &TaskInfo {
        &self.task
    }

    fn metrics(&self) -> &NodeMetrics {
        self.counters.node()
    }

    fn process(&mut self, records: RecordBatch) -> Result<Emitted> {
        self.counters.node().records_in.inc_by(records.len() as u64);
        let mut out = Emitted::default();
        let mut late = RecordBatch::new();
        let mut failures: Vec<(u32, String)> = Vec::new();
        // Windows that do not fire during this call: their records are
        // added in one go at the end, one state update per window.
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut open: FxHashMap<(&[u8], Timestamp), usize> = FxHashMap::default();
        // Count windows that filled up, in order, and each key's count.
        let mut complete: Vec<usize> = Vec::new();
        let mut seqs: FxHashMap<&[u8], u64> = FxHashMap::default();
        let now = self.clock.now();
        let by_count = matches!(self.trigger, TriggerSpec::Count(_));
        // Nothing in a call moves the watermark.
        let closed = self.closed_upto();
        // The time windows of the record at hand (one buffer for the call).
        let mut windows: Vec<(Timestamp, Timestamp)> = Vec::new();
        // Records the function refused, which take no place in a count
        // window: the batch's count windows are assigned again without them.
        let mut refused_records: rustc_hash::FxHashSet<u32> = Default::default();
        // The records for session windows, handled after the loop.
        let mut sessions: Vec<u32> = Vec::new();
        'assign: loop {
            for (i, r) in records.iter().enumerate() {
                if !refused_records.is_empty() && refused_records.contains(&(i as u32)) {
                    continue;
                }
                let Some(key) = r.key else {
                    return Err(RuntimeError::record(
                        &self.task,
                        "a window needs keyed input, and a record has no key",
                    ));
                };
                let time = self.time_of(r.timestamp, now);
                windows.clear();
                match self.assigner {
                    Assigner::Count { size, slide } => {
                        let seq = match seqs.get(key) {
                            Some(seq) => seq + 1,
                            None => self.seq(key)? + 1,
                        };
                        seqs.insert(key, seq);
                        for e in count_windows(seq, size, slide) {
                            let gi = self.group(&mut groups, &mut open, key, (e as i64, r.timestamp))?;
                            let g = &mut groups[gi];
                            g.records.push(i as u32);
                            g.end = g.end.max(r.timestamp);
                            if e == seq {
                                complete.push(gi);
                            }
                        }
                        continue;
                    }
                    Assigner::Session { .. } => {
                        sessions.push(i as u32);
                        continue;
                    }
                    Assigner::Global => windows.push((Timestamp::MIN, Timestamp::MAX)),
                    Assigner::Time { size, slide, offset } => windows.extend(
                        time_windows(time, size, slide, offset)
                            .filter(|(_, end)| (end - 1).saturating_add(self.lateness) > closed),
                    ),
                }
                if windows.is_empty() {
                    self.late(r, &mut late);
                }
                for &(start, end) in windows.iter().rev() {
                    if by_count || self.fires_at_end() && end - 1 <= closed {
                        // Fires by count, or fired already (or is born late):
                        // added now, and fires again at once with everything.
                        if let Some(g) = self.add_now(key, (start, end), r, &mut failures, i as u32)?
                            && (!by_count || self.count_fires(g.count_before + 1))
                        {
                            self.fire_now(&g, &mut out.main)?;
                        }
                        continue;
                    }
                    let gi = self.group(&mut groups, &mut open, key, (start, end))?;
                    groups[gi].records.push(i as u32);
                }
            }
            let refused = self.function.add(&self.task, &records, &mut groups)?;
            if !refused.is_empty() {
                if matches!(self.assigner, Assigner::Count { .. }) {
                    // Nothing is stored yet: assign the batch again from the
                    // stored windows, without the refused records.
                    refused_records.extend(refused.iter().map(|f| f.index));
                    failures.extend(refused.into_iter().map(|f| (f.index, f.message)));
                    (groups, complete, seqs) = Default::default();
                    open.clear();
                    continue 'assign;
                }
                // A failed record stays out of its windows.
                let failed: rustc_hash::FxHashSet<u32> = refused.iter().map(|f| f.index).collect();
                for g in &mut groups {
                    g.records.retain(|r| !failed.contains(r));
                }
                failures.extend(refused.into_iter().map(|f| (f.index, f.message)));
            }
            break;
        }
        if let (Assigner::Session { gap }, false) = (self.assigner, sessions.is_empty()) {
            let batch = self.add_to_sessions(&records, &sessions, gap, now)?;
            out.main.extend_from(&batch.fired);
            for i in batch.late {
                self.late(records.get(i as usize), &mut late);
            }
            failures.extend(batch.refused);
        }
        // Filled count windows fire and go.
        let (mut fired, mut buffered) = (Vec::new(), Buffered::default());
        for &gi in &complete {
            let g = &groups[gi];
            let window = Fired {
                key: g.key.to_vec(),
                start: UNBOUNDED.0,
                end: UNBOUNDED.1,
                timestamp: g.end,
                count: g.count_before + g.records.len() as u64,
                acc: g.acc.clone(),
            };
            self.collect(&mut fired, &mut buffered, window, &g.records, Some(&records))?;
            if g.stored {
                self.purge(g.key, g.start, g.count_before)?;
            }
        }
        let mut filled = vec![false; groups.len()];
        for &gi in &complete {
            filled[gi] = true;
        }
        for (g, filled) in groups.iter().zip(filled) {
            if filled || g.records.is_empty() && !g.stored {
                continue;
            }
            self.buffer(g, &records)?;
            self.store(g)?;
            if !g.stored && !matches!(self.assigner, Assigner::Count { .. }) {
                self.window_timers(g.key, g.end)?;
            }
        }
        for (key, seq) in seqs {
            let kg = self.kg(key);
            self.state
                .backend()
                .map_put(self.windows, kg, key, SEQ_KEY, &seq.to_le_bytes())
                .map_err(|e| self.fail(e))?;
        }
        self.emit(fired, buffered, &mut out.main)?;
        if !failures.is_empty() {
            self.failed(&mut failures, &records, &mut out)?;
        }
        if let Some(name) = &self.late_output
            && !late.is_empty()
        {
            self.counters.node().side_out.inc_by(late.len() as u64);
            out.side.push((name.clone(), late));
        }
        self.counters.node().records_out.inc_by(out.main.len() as u64);
        Ok(out)
    }

    fn advance_watermark(&mut self, watermark: Timestamp) -> Result<Emitted> {
        if watermark <= self.watermark {
            return Ok(Emitted::default());
        }
        self.watermark = watermark;
        let mut out = Emitted::default();
        self.fire_timers(TimeDomain::EventTime, watermark, &mut out.main)?;
        // At the end of input, processing-time windows fire too.
        if watermark == weir_types::MAX_WATERMARK && self.trigger == TriggerSpec::ProcessingTime {
            self.fire_timers(TimeDomain::ProcessingTime, Timestamp::MAX, &mut out.main)?;
        }
        self.counters.node().records_out.inc_by(out.main.len() as u64);
        Ok(out)
    }

    fn fire_processing_timers(&mut self) -> Result<Emitted> {
        let mut out = Emitted::default();
        self.fire_timers(TimeDomain::ProcessingTime, self.clock.now(), &mut out.main)?;
        self.counters.node().records_out.inc_by(out.main.len() as u64);
        Ok(out)
    }

    fn next_processing_timer(&self) -> Option<Timestamp> {
        self.timers.next(TimeDomain::ProcessingTime)
    }

    fn state(&mut self) -> &mut KeyedState {
        &mut self.state
    }

    fn watermark(&self) -> Timestamp {
        self.watermark
    }

    fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// A window's function plugin can be replaced by another of the same
    /// world: the windows, accumulators and buffered records are the
    /// host's and stay.
    fn update(&mut self, update: &NodeUpdate, plugin: Option<&weir_wasm::Plugin>) -> Result<()> {
        let mut instance = self.instance.clone();
        if let Some(config) = &update.config {
            instance.args.config = config.clone();
        }
        let refuse = |message: String| RuntimeError::Config { node: self.task.node.to_string(), message };
        let Some(plugin) = plugin else {
            return Err(refuse("a window's function is replaced by a plugin: the update names none".into()));
        };
        let same_world = matches!(
            (&self.function, plugin.world()),
            (WindowFunction::Aggregator(_), weir_wasm::World::Aggregator)
                | (WindowFunction::Process(_), weir_wasm::World::WindowProcessor)
        );
        if !same_world {
            return Err(refuse(format!(
                "a window's function can only be replaced by one of the same world, and {} implements {}",
                plugin.name(),
                plugin.world()
            )));
        }
        self.function = crate::build::window_plugin(plugin, &self.task, &instance)?;
        self.instance = instance;
        self.counters.add("plugin_swaps", 1);
        tracing::info!(task = %self.task, plugin = %plugin.name(), digest = %plugin.digest(), "window function replaced");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
