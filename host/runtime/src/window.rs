//! Host-native windows (tumbling, sliding and session windows in event
//! time, and count windows) computing a built-in aggregate, with Flink's
//! rules:
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
//! Accumulators live in a map state (`windows`: window start → accumulator)
//! and timers in the timer service, so both are part of checkpoints.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use weir_spec::{AggregateSpec, WindowSpec};
use weir_state::{KeyedStateBackend, StateId, StateKind};
use weir_types::{RecordBatch, TaskInfo, TimeDomain, Timestamp};

use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::Emitted;
use crate::timers::TimerService;

/// The state holding each key's open windows.
pub(crate) const WINDOW_STATE: &str = "windows";

/// Where windows start and how long they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Assigner {
    size: i64,
    slide: i64,
    offset: i64,
    /// Session windows: each record opens `[ts, ts + gap)`; windows that
    /// touch or overlap merge.
    gap: Option<i64>,
    /// Count windows: every `n` records of a key.
    count: Option<u64>,
}

impl Assigner {
    pub(crate) fn new(spec: &WindowSpec) -> Self {
        let ms = |d: std::time::Duration| d.as_millis() as i64;
        let (size, slide) = match (&spec.tumbling, &spec.sliding, &spec.session) {
            (Some(size), _, _) => (ms(*size), ms(*size)),
            (None, Some(s), _) => (ms(s.size), ms(s.slide)),
            (None, None, Some(s)) => (ms(s.gap), ms(s.gap)),
            // Count windows ignore time.
            (None, None, None) => (1, 1),
        };
        let gap = spec.session.as_ref().map(|s| ms(s.gap));
        Assigner { size, slide, offset: ms(spec.offset), gap, count: spec.count }
    }

    /// The starts of the windows `ts` belongs to, newest first.
    pub(crate) fn starts(&self, ts: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        let last = ts - (ts - self.offset).rem_euclid(self.slide);
        (0..).map(move |k| last - k * self.slide).take_while(move |start| *start > ts - self.size)
    }
}

/// A built-in aggregate's running state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    const EMPTY: Acc = Acc { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

    fn one(v: f64) -> Acc {
        Acc { count: 1, sum: v, min: v, max: v }
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn merge(&mut self, other: &Acc) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// A window's stored value: the accumulator and the window's end.
    fn encode(&self, end: Timestamp) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..8].copy_from_slice(&self.count.to_le_bytes());
        out[8..16].copy_from_slice(&self.sum.to_le_bytes());
        out[16..24].copy_from_slice(&self.min.to_le_bytes());
        out[24..32].copy_from_slice(&self.max.to_le_bytes());
        out[32..].copy_from_slice(&end.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<(Acc, Timestamp)> {
        let word = |i: usize| -> Option<[u8; 8]> { bytes.get(i * 8..i * 8 + 8)?.try_into().ok() };
        let acc = Acc {
            count: u64::from_le_bytes(word(0)?),
            sum: f64::from_le_bytes(word(1)?),
            min: f64::from_le_bytes(word(2)?),
            max: f64::from_le_bytes(word(3)?),
        };
        Some((acc, i64::from_le_bytes(word(4)?)))
    }
}

/// The number at a JSON pointer. A pointer to a top-level field (`/v`) is
/// read without building the whole document; deeper ones parse it.
fn number_at(value: &[u8], pointer: &str) -> std::result::Result<f64, String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Field<'p>(&'p str);

    impl<'de> Visitor<'de> for Field<'_> {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Option<f64>, A::Error> {
            let mut found = None;
            while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if name == self.0 && found.is_none() {
                    found = map.next_value::<Option<f64>>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let field = pointer.strip_prefix('/').filter(|f| !f.contains(['/', '~']));
    let found = match field {
        Some(field) => serde_json::Deserializer::from_slice(value)
            .deserialize_map(Field(field))
            .map_err(|e| format!("invalid JSON: {e}"))?,
        None => serde_json::from_slice::<serde_json::Value>(value)
            .map_err(|e| format!("invalid JSON: {e}"))?
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64),
    };
    found.ok_or_else(|| "not a number".to_string())
}

/// Window starts as map keys that sort like the numbers.
fn start_key(start: Timestamp) -> [u8; 8] {
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

fn start_of(key: &[u8]) -> Option<Timestamp> {
    Some((u64::from_be_bytes(key.try_into().ok()?) ^ (1 << 63)) as i64)
}

/// A keyed window operator instance.
pub(crate) struct WindowOperator {
    task: TaskInfo,
    backend: Box<dyn KeyedStateBackend>,
    state: StateId,
    timers: TimerService,
    watermark: Timestamp,
    assigner: Assigner,
    lateness: i64,
    late_output: Option<String>,
    aggregate: AggregateSpec,
    max_parallelism: u32,
    batch_size: usize,
    metrics: Arc<NodeMetrics>,
    pub(crate) checkpoint_scratch: Option<PathBuf>,
}

impl WindowOperator {
    /// A window operator over `backend` (with restored state, if any).
    #[allow(clippy::too_many_arguments, reason = "one constructor for the job builder")]
    pub(crate) fn new(
        task: TaskInfo,
        mut backend: Box<dyn KeyedStateBackend>,
        window: &WindowSpec,
        aggregate: &AggregateSpec,
        max_parallelism: u32,
        batch_size: usize,
        metrics: Arc<NodeMetrics>,
        watermark: Timestamp,
    ) -> Result<Self> {
        let state = backend.register(WINDOW_STATE, StateKind::Map).map_err(|e| RuntimeError::task(&task, e))?;
        let timers = TimerService::restore(backend.as_mut()).map_err(|e| RuntimeError::task(&task, e))?;
        Ok(WindowOperator {
            task,
            backend,
            state,
            timers,
            watermark,
            assigner: Assigner::new(window),
            lateness: window.allowed_lateness.as_millis() as i64,
            late_output: window.late_output.clone(),
            aggregate: aggregate.clone(),
            max_parallelism,
            batch_size,
            metrics,
            checkpoint_scratch: None,
        })
    }

    fn fail(&self, message: String) -> RuntimeError {
        RuntimeError::Task { task: self.task.to_string(), message }
    }

    /// The number the aggregate reads from a record (1 for `count`).
    fn value_of(&self, value: &[u8]) -> Result<f64> {
        let pointer = match &self.aggregate {
            AggregateSpec::Count => return Ok(1.0),
            AggregateSpec::Sum(p) | AggregateSpec::Min(p) | AggregateSpec::Max(p) | AggregateSpec::Avg(p) => p,
        };
        number_at(value, pointer).map_err(|e| {
            let shown = String::from_utf8_lossy(&value[..value.len().min(200)]).into_owned();
            self.fail(format!("a record has no number at {pointer} ({e}): {shown}"))
        })
    }

    fn kg(&self, key: &[u8]) -> u16 {
        weir_types::key_group(key, self.max_parallelism)
    }

    /// The aggregate's result field: its name and JSON value.
    fn result_field(&self, acc: &Acc) -> (&'static str, serde_json::Value) {
        match &self.aggregate {
            AggregateSpec::Count => ("count", serde_json::json!(acc.count)),
            AggregateSpec::Sum(_) => ("sum", serde_json::json!(acc.sum)),
            AggregateSpec::Min(_) => ("min", serde_json::json!(acc.min)),
            AggregateSpec::Max(_) => ("max", serde_json::json!(acc.max)),
            AggregateSpec::Avg(_) => ("avg", serde_json::json!(acc.sum / acc.count as f64)),
        }
    }

    /// The result record of `key`'s window `[start, end)`, at event time `end - 1`.
    fn emit(&self, out: &mut RecordBatch, key: &[u8], start: Timestamp, end: Timestamp, acc: &Acc) {
        let (name, value) = self.result_field(acc);
        // Fields in a fixed, readable order: key, window, result.
        let key_json = serde_json::Value::String(String::from_utf8_lossy(key).into_owned());
        let result = format!(r#"{{"key":{key_json},"window_start":{start},"window_end":{end},"{name}":{value}}}"#);
        out.push(Some(key), result.as_bytes(), end - 1);
    }

    fn timer(&mut self, at: Timestamp, key: &[u8]) -> Result<()> {
        let (backend, maxp) = (self.backend.as_mut(), self.max_parallelism);
        self.timers
            .register(backend, maxp, TimeDomain::EventTime, at, key.to_vec())
            .map_err(|e| RuntimeError::task(&self.task, e))
    }

    /// Adds `add` to `key`'s window at `start` in state, registering its
    /// timers when the window is new; returns the updated accumulator.
    fn add_to_state(&mut self, key: &[u8], start: Timestamp, end: Timestamp, add: &Acc) -> Result<Acc> {
        let (kg, k) = (self.kg(key), start_key(start));
        let stored = self.backend.map_get(self.state, kg, key, &k).map_err(|e| RuntimeError::task(&self.task, e))?;
        let mut acc = stored.as_deref().and_then(Acc::decode).map_or(Acc::EMPTY, |(a, _)| a);
        acc.merge(add);
        self.backend
            .map_put(self.state, kg, key, &k, &acc.encode(end))
            .map_err(|e| RuntimeError::task(&self.task, e))?;
        if stored.is_none() {
            let last = end - 1;
            if last > self.watermark {
                self.timer(last, key)?;
            }
            if self.lateness > 0 {
                self.timer(last + self.lateness, key)?;
            }
        }
        Ok(acc)
    }

    /// Adds a record to `key`'s tumbling or sliding windows that are not
    /// gone: a window that fired already is updated and fires again at once;
    /// the others gather in `pending`, one state update per batch. Returns
    /// `false` when every window of the record is gone (it is late).
    fn add_to_windows<'k>(
        &mut self,
        key: &'k [u8],
        ts: Timestamp,
        value: &[u8],
        pending: &mut FxHashMap<(&'k [u8], Timestamp), Acc>,
        out: &mut RecordBatch,
    ) -> Result<bool> {
        let size = self.assigner.size;
        let alive: Vec<Timestamp> =
            self.assigner.starts(ts).filter(|start| start + size - 1 + self.lateness > self.watermark).collect();
        if alive.is_empty() {
            return Ok(false);
        }
        let value = self.value_of(value)?;
        for start in alive.into_iter().rev() {
            let end = start + size;
            if end - 1 <= self.watermark {
                // Fired already (or born late): update and fire again, with
                // everything, for this very record.
                let acc = self.add_to_state(key, start, end, &Acc::one(value))?;
                self.emit(out, key, start, end, &acc);
            } else {
                pending.entry((key, start)).or_insert(Acc::EMPTY).add(value);
            }
        }
        Ok(true)
    }

    /// Adds a record to `key`'s count window; when it holds `n` records it
    /// fires and starts over. The stored "end" is the window's last record
    /// time, the result's timestamp.
    fn add_to_count_window(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        n: u64,
        value: &[u8],
        out: &mut RecordBatch,
    ) -> Result<()> {
        let (kg, k) = (self.kg(key), start_key(0));
        let fail = |e| RuntimeError::task(&self.task, e);
        let stored = self.backend.map_get(self.state, kg, key, &k).map_err(fail)?;
        let (mut acc, last) = stored.as_deref().and_then(Acc::decode).unwrap_or((Acc::EMPTY, ts));
        acc.add(self.value_of(value)?);
        let last = last.max(ts);
        if acc.count < n {
            return self.backend.map_put(self.state, kg, key, &k, &acc.encode(last)).map_err(fail);
        }
        self.backend.map_remove(self.state, kg, key, &k).map_err(fail)?;
        let (name, value) = self.result_field(&acc);
        let key_json = serde_json::Value::String(String::from_utf8_lossy(key).into_owned());
        out.push(Some(key), format!(r#"{{"key":{key_json},"records":{n},"{name}":{value}}}"#).as_bytes(), last);
        Ok(())
    }

    /// Adds a record to `key`'s sessions: its window `[ts, ts + gap)` merges
    /// with every session it touches or overlaps, and lateness is judged on
    /// the merged window. Returns `false` when the record is late.
    fn add_to_session(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        gap: i64,
        value: &[u8],
        out: &mut RecordBatch,
    ) -> Result<bool> {
        let kg = self.kg(key);
        let fail = |e| RuntimeError::task(&self.task, e);
        let sessions = self.backend.map_range(self.state, kg, key, None, usize::MAX).map_err(fail)?;
        let (mut start, mut end, mut acc) = (ts, ts + gap, Acc::EMPTY);
        let mut merged = Vec::new();
        for (k, v) in sessions {
            let (Some(s), Some((a, e))) = (start_of(&k), Acc::decode(&v)) else {
                return Err(self.fail("corrupt window state".into()));
            };
            if s <= ts + gap && e >= ts {
                start = start.min(s);
                end = end.max(e);
                acc.merge(&a);
                merged.push(k);
            }
        }
        if end - 1 + self.lateness <= self.watermark {
            return Ok(false);
        }
        acc.add(self.value_of(value)?);
        for k in &merged {
            self.backend.map_remove(self.state, kg, key, k).map_err(fail)?;
        }
        self.backend.map_put(self.state, kg, key, &start_key(start), &acc.encode(end)).map_err(fail)?;
        // Timers of the windows merged away stay: they fire harmlessly, as
        // on_timer checks windows against state.
        if end - 1 <= self.watermark {
            self.emit(out, key, start, end, &acc);
        } else {
            self.timer(end - 1, key)?;
        }
        if self.lateness > 0 {
            self.timer(end - 1 + self.lateness, key)?;
        }
        Ok(true)
    }

    /// Fires and purges `key`'s windows due at timer time `at`.
    fn on_timer(&mut self, at: Timestamp, key: &[u8], out: &mut RecordBatch) -> Result<()> {
        let kg = self.kg(key);
        let windows = self
            .backend
            .map_range(self.state, kg, key, None, usize::MAX)
            .map_err(|e| RuntimeError::task(&self.task, e))?;
        for (k, v) in windows {
            let (Some(start), Some((acc, end))) = (start_of(&k), Acc::decode(&v)) else {
                return Err(self.fail("corrupt window state".into()));
            };
            let last = end - 1;
            if last == at {
                self.emit(out, key, start, end, &acc);
            }
            if last + self.lateness <= at {
                self.backend.map_remove(self.state, kg, key, &k).map_err(|e| RuntimeError::task(&self.task, e))?;
            }
        }
        Ok(())
    }
}

impl Node for WindowOperator {
    fn task(&self) -> &TaskInfo {
        &self.task
    }

    fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    fn process(&mut self, records: RecordBatch) -> Result<Emitted> {
        self.metrics.records_in.inc_by(records.len() as u64);
        let mut out = Emitted::default();
        let mut late = RecordBatch::new();
        // Windows that have not fired: one state update per (key, window)
        // and batch, not per record.
        let mut pending: FxHashMap<(&[u8], Timestamp), Acc> = FxHashMap::default();
        for r in records.iter() {
            let Some(key) = r.key else {
                return Err(self.fail("a window needs keyed input, and a record has no key".into()));
            };
            if let Some(n) = self.assigner.count {
                self.add_to_count_window(key, r.timestamp, n, r.value, &mut out.main)?;
                continue;
            }
            let accepted = match self.assigner.gap {
                Some(gap) => self.add_to_session(key, r.timestamp, gap, r.value, &mut out.main)?,
                None => self.add_to_windows(key, r.timestamp, r.value, &mut pending, &mut out.main)?,
            };
            if !accepted {
                match &self.late_output {
                    Some(_) => late.push_ref(r),
                    None => self.metrics.add_counter("late_records_dropped", 1),
                }
            }
        }
        for ((key, start), acc) in pending {
            self.add_to_state(key, start, start + self.assigner.size, &acc)?;
        }
        if let Some(name) = &self.late_output
            && !late.is_empty()
        {
            self.metrics.side_out.inc_by(late.len() as u64);
            out.side.push((name.clone(), late));
        }
        self.metrics.records_out.inc_by(out.main.len() as u64);
        Ok(out)
    }

    fn advance_watermark(&mut self, watermark: Timestamp) -> Result<Emitted> {
        if watermark <= self.watermark {
            return Ok(Emitted::default());
        }
        self.watermark = watermark;
        let mut out = Emitted::default();
        loop {
            let due = self
                .timers
                .pop_due(self.backend.as_mut(), self.max_parallelism, TimeDomain::EventTime, watermark, self.batch_size)
                .map_err(|e| RuntimeError::task(&self.task, e))?;
            if due.is_empty() {
                break;
            }
            for (at, key) in due {
                self.on_timer(at, &key, &mut out.main)?;
            }
        }
        self.metrics.records_out.inc_by(out.main.len() as u64);
        Ok(out)
    }

    fn fire_processing_timers(&mut self) -> Result<Emitted> {
        Ok(Emitted::default())
    }

    fn next_processing_timer(&self) -> Option<Timestamp> {
        None
    }

    fn backend(&mut self) -> &mut dyn KeyedStateBackend {
        self.backend.as_mut()
    }

    fn watermark(&self) -> Timestamp {
        self.watermark
    }

    fn key_groups(&self) -> Range<u16> {
        weir_types::key_groups_of_task(self.task.index, self.task.parallelism, self.max_parallelism)
    }

    fn checkpoint_scratch(&self) -> Option<&Path> {
        self.checkpoint_scratch.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn assigner(size: u64, slide: u64, offset: u64) -> Assigner {
        let spec = WindowSpec {
            sliding: Some(weir_spec::SlidingSpec {
                size: Duration::from_millis(size),
                slide: Duration::from_millis(slide),
            }),
            offset: Duration::from_millis(offset),
            ..WindowSpec::default()
        };
        Assigner::new(&spec)
    }

    #[test]
    fn windows_align_like_flink_even_for_negative_timestamps() {
        let tumbling = assigner(5000, 5000, 0);
        assert_eq!(tumbling.starts(4999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(tumbling.starts(5000).collect::<Vec<_>>(), vec![5000]);
        assert_eq!(tumbling.starts(-1).collect::<Vec<_>>(), vec![-5000]);
        assert_eq!(assigner(5000, 5000, 1000).starts(900).collect::<Vec<_>>(), vec![-4000]);
        let sliding = assigner(10_000, 3000, 0);
        assert_eq!(sliding.starts(7000).collect::<Vec<_>>(), vec![6000, 3000, 0], "[-3000, 7000) ends before 7000");
        assert_eq!(sliding.starts(-7000).collect::<Vec<_>>(), vec![-9000, -12_000, -15_000]);
    }

    #[test]
    fn numbers_are_read_at_pointers() {
        let v = br#"{"id":"a","t":{"x":[1,2]},"temperature":21.5,"n":null}"#;
        assert_eq!(number_at(v, "/temperature"), Ok(21.5));
        assert_eq!(number_at(v, "/t/x/1"), Ok(2.0));
        assert_eq!(number_at(v, "/n"), Err("not a number".into()));
        assert_eq!(
            number_at(v, "/id"),
            Err("invalid JSON: invalid type: string \"a\", expected f64 at line 1 column 9".into())
        );
        assert!(number_at(b"[1]", "/0").is_err());
    }

    #[test]
    fn starts_sort_as_bytes() {
        let mut starts = [-5000i64, 0, 5000, i64::MIN, -1];
        let mut keys: Vec<[u8; 8]> = starts.iter().map(|s| start_key(*s)).collect();
        keys.sort();
        starts.sort();
        assert_eq!(keys.iter().map(|k| start_of(k).unwrap()).collect::<Vec<_>>(), starts);
    }
}
