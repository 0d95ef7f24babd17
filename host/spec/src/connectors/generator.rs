//! `type: generator`: the book's sensor readings, or the benchmark streams.

use std::time::Duration;

use serde::Deserialize;

use super::{FieldError, RawSource, SourceConnector};

/// Kinds of generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorKind {
    /// The book's sensor generator: random-walk temperatures in °F.
    Sensors,
    /// Deterministic readings for benchmarks: event i is sensor `i % 1000`.
    SensorBench,
    /// Fixed-size values for connector benchmarks: event i has key
    /// `key-<i % 1000>` and a `size`-byte value.
    Bytes,
}

/// `bytes`: a value's size unless `size` says otherwise.
const DEFAULT_BYTES_SIZE: usize = 100;
/// `bytes`: the largest `size`.
const MAX_BYTES_SIZE: usize = 1 << 20;

/// A generator source's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorSource {
    /// `sensors` or `sensor-bench` (required).
    pub generator: Option<GeneratorKind>,
    /// Total number of events (all parallel instances together); unbounded when absent.
    pub events: Option<u64>,
    /// `sensors`: number of sensors (default 10).
    pub sensors: Option<u32>,
    /// `sensors`: random seed (default 0).
    pub seed: Option<u64>,
    /// `sensors`: event time between two readings of a sensor (default 100ms).
    pub interval: Option<Duration>,
    /// `sensors`: event time of the first reading, in ms (default: now).
    pub start: Option<i64>,
    /// `sensors`: at most this many events per second (default: as fast as possible).
    pub rate: Option<f64>,
    /// `sensors`: readings are delayed by up to this much event time, at random (default 0).
    pub disorder: Option<Duration>,
    /// `bytes`: each value's size in bytes (default 100).
    pub size: Option<usize>,
}

pub(super) fn from_raw(raw: &RawSource) -> (SourceConnector, Vec<&'static str>) {
    let foreign = [("path", raw.path.is_some()), ("key", raw.key.is_some()), ("timestamp", raw.timestamp.is_some())];
    let generator = GeneratorSource {
        generator: raw.generator,
        events: raw.events,
        sensors: raw.sensors,
        seed: raw.seed,
        interval: raw.interval,
        start: raw.start,
        rate: raw.rate,
        disorder: raw.disorder,
        size: raw.size,
    };
    (SourceConnector::Generator(generator), foreign.iter().filter(|(_, set)| *set).map(|(f, _)| *f).collect())
}

impl GeneratorSource {
    /// `bytes`: each value's size.
    pub fn value_size(&self) -> usize {
        self.size.unwrap_or(DEFAULT_BYTES_SIZE)
    }

    pub(super) fn check(&self) -> Result<(), FieldError> {
        let Some(generator) = self.generator else {
            return Err((
                "generator",
                "a generator source needs `generator: sensors`, `sensor-bench` or `bytes`".into(),
            ));
        };
        let fixed = match generator {
            GeneratorKind::SensorBench => Some("sensor-bench"),
            GeneratorKind::Bytes => Some("bytes"),
            GeneratorKind::Sensors => None,
        };
        if let Some(name) = fixed {
            let walk_fields = [
                ("sensors", self.sensors.is_some()),
                ("seed", self.seed.is_some()),
                ("interval", self.interval.is_some()),
                ("start", self.start.is_some()),
                ("disorder", self.disorder.is_some()),
            ];
            if let Some((field, _)) = walk_fields.iter().find(|(_, set)| *set) {
                return Err((field, format!("does not apply to the `{name}` generator (its data is fixed)")));
            }
        }
        match (generator, self.size) {
            (GeneratorKind::Bytes, Some(size)) if size > MAX_BYTES_SIZE => {
                return Err(("size", format!("must be at most {MAX_BYTES_SIZE} bytes")));
            }
            (GeneratorKind::Bytes, _) | (_, None) => {}
            (_, Some(_)) => return Err(("size", "applies only to the `bytes` generator".into())),
        }
        if self.sensors == Some(0) {
            return Err(("sensors", "must be at least 1".into()));
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite())
        {
            return Err(("rate", "must be a positive number of events per second".into()));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            return Err(("interval", "must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Format, JobSpec, SourceConnector};

    fn parse(generator: &str) -> Result<JobSpec, String> {
        let fields: String = generator.split(", ").map(|f| format!("    {f}\n")).collect();
        let text = format!(
            "name: t\nsources:\n  - id: g\n    type: generator\n{fields}sinks:\n  - {{ id: out, type: blackhole, input: g }}\n"
        );
        JobSpec::parse(&text, Format::Yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_bytes_generator_takes_a_size_and_nothing_of_the_sensors() {
        let spec = parse("generator: bytes, events: 10").unwrap();
        let SourceConnector::Generator(g) = &spec.sources[0].connector else { panic!("a generator") };
        assert_eq!(g.value_size(), 100);
        let spec = parse("generator: bytes, size: 16").unwrap();
        let SourceConnector::Generator(g) = &spec.sources[0].connector else { panic!("a generator") };
        assert_eq!(g.value_size(), 16);
        assert_eq!(
            parse("generator: bytes, size: 2000000").unwrap_err(),
            "invalid job spec at line 6: sources `g`: field `size`: must be at most 1048576 bytes"
        );
        assert_eq!(
            parse("generator: bytes, seed: 3").unwrap_err(),
            "invalid job spec at line 6: sources `g`: field `seed`: does not apply to the `bytes` generator (its data is fixed)"
        );
        assert_eq!(
            parse("generator: sensors, size: 3").unwrap_err(),
            "invalid job spec at line 6: sources `g`: field `size`: applies only to the `bytes` generator"
        );
    }
}
