//! Synthetic sources: the book's sensor readings and a deterministic
//! benchmark stream.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;
use weir_types::RecordBatch;

use crate::Result;
use crate::split::{SplitPoll, SplitReader};

/// Writes a reading as JSON: `{"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}`.
/// `n` in decimal, left-padded with `0` to `size` bytes (its last `size`
/// digits when longer).
fn write_padded(out: &mut Vec<u8>, n: u64, size: usize) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n).as_bytes();
    let digits = &digits[digits.len().saturating_sub(size)..];
    out.resize(out.len() + size - digits.len(), b'0');
    out.extend_from_slice(digits);
}

fn write_reading(out: &mut Vec<u8>, id: &[u8], timestamp: i64, temperature: f64) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\",\"timestamp\":");
    out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
    out.extend_from_slice(b",\"temperature\":");
    if temperature.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(temperature).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
    out.push(b'}');
}

/// Paces a source to a number of events per second.
#[derive(Debug)]
struct Pacer {
    rate: Option<f64>,
    started: Option<Instant>,
    emitted: u64,
}

impl Pacer {
    /// How many events may go now (`max` when unpaced), or how long to wait.
    fn allowance(&mut self, max: usize) -> Result<usize, Duration> {
        let Some(rate) = self.rate else { return Ok(max) };
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
        if due > self.emitted {
            Ok(((due - self.emitted) as usize).min(max))
        } else {
            Err(Duration::from_secs_f64(
                ((self.emitted + 1) as f64 / rate - started.elapsed().as_secs_f64()).max(0.0005),
            ))
        }
    }
}

/// The sensor generator of *Stream Processing with Apache Flink*: every
/// `interval` of event time each sensor reports a temperature in °F that
/// follows a seeded random walk (start `65 + N(0,1) * 20`, steps of
/// `N(0,1) * 0.5`). Reading `n` is from sensor `n % sensors` at tick
/// `n / sensors`. Sensor `s` belongs to parallel instance `s % parallelism`;
/// its values do not depend on the parallelism. With `disorder`, each
/// reading's timestamp is moved back by a random amount up to it (but not
/// before `start`). Instance `index` of `parallelism` is the split
/// `part-<index>-of-<parallelism>`.
#[derive(Debug)]
pub struct SensorGenerator {
    id: String,
    sensors: Vec<SensorWalk>,
    total_sensors: u64,
    events: Option<u64>,
    start: i64,
    interval_ms: i64,
    disorder_ms: u64,
    tick: u64,
    next_sensor: usize,
    /// Readings produced so far.
    produced: u64,
    pacer: Pacer,
    done: bool,
}

#[derive(Debug)]
struct SensorWalk {
    index: u64,
    id: String,
    temperature: f64,
    rng: Pcg64Mcg,
}

/// Settings of a [`SensorGenerator`].
#[derive(Debug, Clone)]
pub struct SensorSettings {
    /// Number of sensors.
    pub sensors: u32,
    /// Total events over all instances; unbounded when `None`.
    pub events: Option<u64>,
    /// Random seed.
    pub seed: u64,
    /// Event time of the first tick (ms).
    pub start: i64,
    /// Event time between ticks.
    pub interval: Duration,
    /// Maximum backwards timestamp jitter.
    pub disorder: Duration,
    /// Events per second over all instances; unlimited when `None`.
    pub rate: Option<f64>,
}

impl SensorGenerator {
    /// Instance `index` of `parallelism`.
    pub fn new(settings: &SensorSettings, index: u32, parallelism: u32) -> Self {
        let sensors = (0..u64::from(settings.sensors))
            .filter(|s| s % u64::from(parallelism) == u64::from(index))
            .map(|s| {
                let mut rng = Pcg64Mcg::seed_from_u64(settings.seed ^ s.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let start: f64 = StandardNormal.sample(&mut rng);
                SensorWalk { index: s, id: format!("sensor_{s}"), temperature: 65.0 + start * 20.0, rng }
            })
            .collect::<Vec<_>>();
        let share = settings.rate.map(|r| r * sensors.len() as f64 / f64::from(settings.sensors.max(1)));
        SensorGenerator {
            id: split_id(index, parallelism),
            done: sensors.is_empty(),
            sensors,
            total_sensors: u64::from(settings.sensors),
            events: settings.events,
            start: settings.start,
            interval_ms: settings.interval.as_millis() as i64,
            disorder_ms: settings.disorder.as_millis() as u64,
            tick: 0,
            next_sensor: 0,
            produced: 0,
            pacer: Pacer { rate: share, started: None, emitted: 0 },
        }
    }
}

impl SensorGenerator {
    /// The next reading: (sensor slot, timestamp, °F), or `None` at the end.
    fn next_reading(&mut self) -> Option<(usize, i64, f64)> {
        let slot = self.next_sensor;
        let sensor = &mut self.sensors[slot];
        let global = self.tick * self.total_sensors + sensor.index;
        if self.events.is_some_and(|e| global >= e) {
            self.done = true;
            return None;
        }
        let step: f64 = StandardNormal.sample(&mut sensor.rng);
        sensor.temperature += step * 0.5;
        let jitter = if self.disorder_ms > 0 { sensor.rng.random_range(0..=self.disorder_ms) as i64 } else { 0 };
        // Out of order, but never before the first reading's time.
        let jitter = jitter.min(self.tick as i64 * self.interval_ms);
        let ts = self.start + self.tick as i64 * self.interval_ms - jitter;
        let temperature = (sensor.temperature * 1000.0).round() / 1000.0;
        self.next_sensor += 1;
        if self.next_sensor == self.sensors.len() {
            self.next_sensor = 0;
            self.tick += 1;
        }
        self.produced += 1;
        Some((slot, ts, temperature))
    }
}

/// The identity of generator partition `index` of `parts`.
pub fn split_id(index: u32, parts: u32) -> String {
    format!("part-{index}-of-{parts}")
}

/// The partition a generator split id names: (index, parts).
pub fn parse_split_id(id: &str) -> Option<(u32, u32)> {
    let (index, parts) = id.strip_prefix("part-")?.split_once("-of-")?;
    let (index, parts) = (index.parse().ok()?, parts.parse().ok()?);
    (index < parts).then_some((index, parts))
}

impl SensorGenerator {
    /// Replays the seeded walks up to the position (the generator is
    /// deterministic, so this lands exactly where the checkpoint was).
    pub fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || crate::bad_position("sensors generator", position);
        let produced = position.get("produced").and_then(|v| v.as_u64()).ok_or_else(bad)?;
        let done = position.get("done").and_then(|v| v.as_bool()).ok_or_else(bad)?;
        // The walk's start time is part of where it is (a default start is
        // the wall clock of the first run, not of the restore).
        if let Some(start) = position.get("start") {
            self.start = start.as_i64().ok_or_else(bad)?;
        }
        while self.produced < produced {
            self.next_reading().ok_or_else(bad)?;
        }
        self.done |= done;
        Ok(())
    }
}

impl SplitReader for SensorGenerator {
    fn id(&self) -> &str {
        &self.id
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "produced": self.produced, "done": self.done, "start": self.start })
    }

    fn poll(&mut self, max: usize) -> Result<SplitPoll> {
        if self.done {
            return Ok(SplitPoll::Done);
        }
        let n = match self.pacer.allowance(max) {
            Ok(n) => n,
            Err(wait) => return Ok(SplitPoll::Pending(wait)),
        };
        let mut records = RecordBatch::with_capacity(n, 64 * n);
        while records.len() < n {
            let Some((sensor, ts, temperature)) = self.next_reading() else { break };
            let id = self.sensors[sensor].id.as_bytes();
            records.push_with(Some(id), ts, |out| write_reading(out, id, ts, temperature));
        }
        self.pacer.emitted += records.len() as u64;
        if records.is_empty() {
            return Ok(SplitPoll::Done);
        }
        Ok(SplitPoll::Records(records))
    }
}

/// The benchmark stream: event `i` of `events` is a reading of sensor
/// `i % 1000` (id `sensor_<n>`) at `1_700_000_000_000 + (i / 1000) * 100` ms
/// with `temp_f = 40 + 60 * ((i * 2654435761) mod 1000003) / 1000003`.
/// Instance `j` of `p` (split `part-j-of-p`) produces the events with
/// `i % p == j`.
///
/// With [`SensorBench::bytes`] it is the `bytes` generator instead: event
/// `i` has key `key-<i % 1000>`, the same timestamp, and as value `i` in
/// decimal, left-padded with `0` to `size` bytes (its last `size` digits
/// when longer).
#[derive(Debug)]
pub struct SensorBench {
    id: String,
    next: u64,
    step: u64,
    events: u64,
    ended: bool,
    /// `Some(size)`: the `bytes` generator.
    bytes: Option<usize>,
}

impl SensorBench {
    /// Instance `index` of `parallelism` over `events` events.
    pub fn new(events: u64, index: u32, parallelism: u32) -> Self {
        SensorBench {
            id: split_id(index, parallelism),
            next: u64::from(index),
            step: u64::from(parallelism.max(1)),
            events,
            ended: false,
            bytes: None,
        }
    }

    /// The `bytes` generator's instance `index` of `parallelism`: values of
    /// `size` bytes.
    pub fn bytes(events: u64, index: u32, parallelism: u32, size: usize) -> Self {
        SensorBench { bytes: Some(size), ..SensorBench::new(events, index, parallelism) }
    }

    /// Event `i`: (sensor id, timestamp, °F).
    pub fn event(i: u64) -> (u64, i64, f64) {
        let sensor = i % 1000;
        let ts = 1_700_000_000_000 + (i / 1000) as i64 * 100;
        let temp = 40.0 + 60.0 * ((i.wrapping_mul(2_654_435_761)) % 1_000_003) as f64 / 1_000_003.0;
        (sensor, ts, temp)
    }
}

impl SensorBench {
    /// Moves to a checkpointed position.
    pub fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || crate::bad_position("sensor-bench generator", position);
        let next = position.get("next").and_then(|v| v.as_u64()).ok_or_else(bad)?;
        if next % self.step != self.next % self.step {
            return Err(bad());
        }
        self.next = next;
        self.ended = position.get("ended").and_then(|v| v.as_bool()).ok_or_else(bad)?;
        Ok(())
    }
}

impl SplitReader for SensorBench {
    fn id(&self) -> &str {
        &self.id
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "next": self.next, "ended": self.ended })
    }

    fn poll(&mut self, max: usize) -> Result<SplitPoll> {
        if self.next >= self.events {
            self.ended = true;
            return Ok(SplitPoll::Done);
        }
        let mut records = RecordBatch::with_capacity(max, self.bytes.map_or(72, |size| size + 8) * max);
        let mut id = Vec::with_capacity(16);
        while records.len() < max && self.next < self.events {
            let (sensor, ts, temp) = Self::event(self.next);
            id.clear();
            id.extend_from_slice(if self.bytes.is_some() { &b"key-"[..] } else { &b"sensor_"[..] });
            id.extend_from_slice(itoa::Buffer::new().format(sensor).as_bytes());
            match self.bytes {
                None => records.push_with(Some(&id), ts, |out| write_reading(out, &id, ts, temp)),
                Some(size) => records.push_with(Some(&id), ts, |out| write_padded(out, self.next, size)),
            }
            self.next += self.step;
        }
        Ok(SplitPoll::Records(records))
    }
}

/// The factory of a generator source: partition `k` of the parallelism of
/// its fresh start is one split, kept at restores into other parallelisms.
#[derive(Debug, Clone)]
pub struct GeneratorFactory {
    spec: weir_spec::GeneratorSource,
}

impl GeneratorFactory {
    /// From the node's spec.
    pub fn new(spec: &weir_spec::GeneratorSource) -> Self {
        GeneratorFactory { spec: spec.clone() }
    }

    fn split(&self, split: &crate::SplitState, start: i64) -> Result<Box<dyn SplitReader>> {
        let (index, parts) = parse_split_id(&split.id).ok_or_else(|| {
            crate::ConnectorError::Position(format!("`{}` is not a generator split (part-K-of-N)", split.id))
        })?;
        let g = &self.spec;
        Ok(match g.generator.unwrap_or(weir_spec::GeneratorKind::SensorBench) {
            kind @ (weir_spec::GeneratorKind::SensorBench | weir_spec::GeneratorKind::Bytes) => {
                let events = g.events.unwrap_or(u64::MAX);
                let mut s = match kind {
                    weir_spec::GeneratorKind::Bytes => SensorBench::bytes(events, index, parts, g.value_size()),
                    _ => SensorBench::new(events, index, parts),
                };
                if let Some(p) = &split.position {
                    s.restore(p)?;
                }
                Box::new(s)
            }
            weir_spec::GeneratorKind::Sensors => {
                let settings = SensorSettings {
                    sensors: g.sensors.unwrap_or(10),
                    events: g.events,
                    seed: g.seed.unwrap_or(0),
                    start,
                    interval: g.interval.unwrap_or(Duration::from_millis(100)),
                    disorder: g.disorder.unwrap_or_default(),
                    rate: g.rate,
                };
                let mut s = SensorGenerator::new(&settings, index, parts);
                if let Some(p) = &split.position {
                    s.restore(p)?;
                }
                Box::new(s)
            }
        })
    }
}

impl SplitReader for Box<dyn SplitReader> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn poll(&mut self, max: usize) -> Result<SplitPoll> {
        (**self).poll(max)
    }
    fn position(&self) -> serde_json::Value {
        (**self).position()
    }
}

impl crate::SourceFactory for GeneratorFactory {
    fn splits(&self, parallelism: u32) -> Result<Vec<String>> {
        Ok((0..parallelism).map(|k| split_id(k, parallelism)).collect())
    }

    fn reader(
        &self,
        splits: Vec<crate::SplitState>,
        next: usize,
        _: &weir_types::TaskInfo,
    ) -> Result<Box<dyn crate::Source>> {
        // Every split of one reader shares the start time of the walk.
        let start = self.spec.start.unwrap_or_else(weir_types::now_ms);
        let splits = splits.iter().map(|s| self.split(s, start)).collect::<Result<Vec<_>>>()?;
        Ok(Box::new(crate::split::RoundRobin::new(splits, next)))
    }
}

#[cfg(test)]
mod tests {
    use weir_types::Record;

    use super::*;

    #[test]
    fn readings_are_json() {
        let mut out = Vec::new();
        write_reading(&mut out, b"sensor_7", 1_700_000_000_000, 71.3);
        assert_eq!(out, br#"{"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}"#);
    }

    #[test]
    fn the_bytes_generator_gives_fixed_size_values() {
        let mut split = SensorBench::bytes(1003, 1, 2, 6);
        let records = drain(&mut split);
        assert_eq!(records.len(), 501);
        assert_eq!(records[0].key.as_deref(), Some(&b"key-1"[..]));
        assert_eq!(records[0].value, b"000001");
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
        assert_eq!(records[500].key.as_deref(), Some(&b"key-1"[..]));
        assert_eq!(records[500].value, b"001001");
        assert_eq!(records[500].timestamp, 1_700_000_000_100);
        let mut out = Vec::new();
        write_padded(&mut out, 1_234_567, 3);
        assert_eq!(out, b"567");
        out.clear();
        write_padded(&mut out, 7, 0);
        assert!(out.is_empty());
    }

    fn drain(split: &mut dyn SplitReader) -> Vec<Record> {
        let mut out = Vec::new();
        loop {
            match split.poll(7).unwrap() {
                SplitPoll::Records(records) => out.extend(records.to_records()),
                SplitPoll::Pending(_) => {}
                SplitPoll::Done => return out,
            }
        }
    }

    #[test]
    fn generators_resume_from_a_position() {
        let mut original = SensorBench::new(100, 1, 2);
        for _ in 0..3 {
            original.poll(7).unwrap();
        }
        let position = original.position();
        let mut fresh = SensorBench::new(100, 1, 2);
        fresh.restore(&position).unwrap();
        assert_eq!(fresh.position(), position);
        assert_eq!(drain(&mut fresh), drain(&mut original));
        let err = fresh.restore(&serde_json::json!({"nonsense": 1})).unwrap_err().to_string();
        assert!(err.contains("cannot restore from {\"nonsense\":1}"), "{err}");

        let settings = SensorSettings {
            sensors: 4,
            events: Some(90),
            seed: 7,
            start: 0,
            interval: Duration::from_millis(100),
            disorder: Duration::from_millis(300),
            rate: None,
        };
        let mut original = SensorGenerator::new(&settings, 0, 1);
        for _ in 0..3 {
            original.poll(7).unwrap();
        }
        let mut fresh = SensorGenerator::new(&settings, 0, 1);
        fresh.restore(&original.position()).unwrap();
        assert_eq!(fresh.position(), original.position());
        assert_eq!(drain(&mut fresh), drain(&mut original));
        assert_eq!(fresh.id(), "part-0-of-1");
        assert_eq!(parse_split_id("part-3-of-4"), Some((3, 4)));
        assert_eq!(parse_split_id("part-4-of-4"), None);
    }

    #[test]
    fn sensor_bench_matches_its_formula() {
        let mut s = SensorBench::new(2001, 0, 1);
        let all = drain(&mut s);
        assert_eq!(all.len(), 2001);
        assert_eq!(all[2000].timestamp, 1_700_000_000_200);
        assert_eq!(all[1001].key.as_deref(), Some(&b"sensor_1"[..]));
        let (_, _, t) = SensorBench::event(1);
        assert_eq!(t, 40.0 + 60.0 * (2_654_435_761u64 % 1_000_003) as f64 / 1_000_003.0);
    }

    #[test]
    fn sensors_do_not_depend_on_parallelism() {
        let settings = SensorSettings {
            sensors: 5,
            events: Some(53),
            seed: 42,
            start: 0,
            interval: Duration::from_millis(100),
            disorder: Duration::from_millis(50),
            rate: None,
        };
        let mut one = drain(&mut SensorGenerator::new(&settings, 0, 1));
        let mut three: Vec<Record> = (0..3).flat_map(|i| drain(&mut SensorGenerator::new(&settings, i, 3))).collect();
        assert_eq!(one.len(), 53);
        one.sort_by(|a, b| a.value.cmp(&b.value));
        three.sort_by(|a, b| a.value.cmp(&b.value));
        assert_eq!(one, three);
        assert!(one.iter().all(|r| r.timestamp <= 10 * 100 && r.timestamp >= 0));
    }
}
