//! `type: generator`: the book's sensor readings, or the benchmark stream.

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
}

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
    };
    (SourceConnector::Generator(generator), foreign.iter().filter(|(_, set)| *set).map(|(f, _)| *f).collect())
}

impl GeneratorSource {
    pub(super) fn check(&self) -> Result<(), FieldError> {
        let Some(generator) = self.generator else {
            return Err((
                "generator",
                "a generator source needs `generator: sensors` or `generator: sensor-bench`".into(),
            ));
        };
        if generator == GeneratorKind::SensorBench {
            let walk_fields = [
                ("sensors", self.sensors.is_some()),
                ("seed", self.seed.is_some()),
                ("interval", self.interval.is_some()),
                ("start", self.start.is_some()),
                ("disorder", self.disorder.is_some()),
            ];
            if let Some((field, _)) = walk_fields.iter().find(|(_, set)| *set) {
                return Err((field, "does not apply to the `sensor-bench` generator (its data is fixed)".into()));
            }
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
