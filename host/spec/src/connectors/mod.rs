//! Sources and sinks in a spec: the fields every source or sink has, and
//! one typed spec per connector `type` (in its own module), told apart by
//! the `type` field.
//!
//! A spec's nodes are flat (`{ id, type: file, path: in.jsonl }`), so the
//! document is read into one struct with every connector's fields (serde
//! then names a mistyped field and its line), and [`SourceSpec`] /
//! [`SinkSpec`] are built from it: the connector's own fields in its typed
//! spec, and any field set that belongs to another connector remembered so
//! validation refuses it at its line. Adding a connector: its module here
//! (typed spec, its fields in the raw struct, its checks), one line in
//! [`SourceConnector::from_raw`] or [`SinkConnector::from_raw`], its
//! factory in `weir-connectors`, and `docs/job-spec.md`.

mod file;
mod generator;
mod kafka;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use self::file::{FileSink, FileSource, Paths};
pub use self::generator::{GeneratorKind, GeneratorSource};
pub use self::kafka::{Delivery, KafkaFormat, KafkaSink, KafkaSource, StartFrom, StartName, StopAt, Topics};
use crate::{Inputs, TimestampMode, WatermarkSpec};

/// A source node: where records come from, and how event time is tracked.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Unique node id.
    pub id: String,
    /// Overrides the job's parallelism.
    pub parallelism: Option<u32>,
    /// Where event timestamps come from.
    pub timestamps: TimestampMode,
    /// Watermark generation (per split).
    pub watermark: WatermarkSpec,
    /// The connector and its settings.
    pub connector: SourceConnector,
    /// Fields set in the spec that do not apply to this connector.
    pub(crate) foreign: Vec<&'static str>,
}

/// A source connector's settings, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConnector {
    /// `type: generator`: synthetic sensor readings.
    Generator(GeneratorSource),
    /// `type: file`: JSON lines from files.
    File(FileSource),
    /// `type: kafka`: records from Kafka topics.
    Kafka(KafkaSource),
}

impl SourceConnector {
    /// The `type` it is written as.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConnector::Generator(_) => "generator",
            SourceConnector::File(_) => "file",
            SourceConnector::Kafka(_) => "kafka",
        }
    }

    /// The registry: a raw source's connector by its `type`, and the fields
    /// set that belong to other connectors.
    fn from_raw(raw: &RawSource) -> (SourceConnector, Vec<&'static str>) {
        let (connector, mut foreign) = match raw.kind {
            SourceType::Generator => generator::from_raw(raw),
            SourceType::File => file::source_from_raw(raw),
            SourceType::Kafka => kafka::source_from_raw(raw),
        };
        if raw.kind != SourceType::Kafka {
            foreign.extend(raw.kafka_fields());
        }
        (connector, foreign)
    }
}

/// A sink node: where results go.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Unique node id.
    pub id: String,
    /// Upstream node(s).
    pub input: Inputs,
    /// Overrides the job's parallelism.
    pub parallelism: Option<u32>,
    /// The connector and its settings.
    pub connector: SinkConnector,
    /// Fields set in the spec that do not apply to this connector.
    pub(crate) foreign: Vec<&'static str>,
}

/// A sink connector's settings, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConnector {
    /// `type: stdout`: each record's value on its own line (at-least-once).
    Stdout,
    /// `type: file`: JSON lines, exactly-once with checkpoints.
    File(FileSink),
    /// `type: blackhole`: counts and discards (benchmarks).
    Blackhole,
    /// `type: kafka`: records into a topic, transactionally with checkpoints.
    Kafka(KafkaSink),
}

impl SinkConnector {
    /// The `type` it is written as.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConnector::Stdout => "stdout",
            SinkConnector::File(_) => "file",
            SinkConnector::Blackhole => "blackhole",
            SinkConnector::Kafka(_) => "kafka",
        }
    }

    /// The registry of sinks (see [`SourceConnector::from_raw`]).
    fn from_raw(raw: &RawSink) -> (SinkConnector, Vec<&'static str>) {
        let path = raw.path.is_some().then_some("path");
        let (connector, mut foreign) = match raw.kind {
            SinkType::Stdout => (SinkConnector::Stdout, path.into_iter().collect()),
            SinkType::Blackhole => (SinkConnector::Blackhole, path.into_iter().collect()),
            SinkType::File => (SinkConnector::File(FileSink { path: raw.path.clone().unwrap_or_default() }), vec![]),
            SinkType::Kafka => kafka::sink_from_raw(raw),
        };
        if raw.kind != SinkType::Kafka {
            let kafka = [
                ("bootstrap", raw.bootstrap.is_some()),
                ("topic", raw.topic.is_some()),
                ("delivery", raw.delivery.is_some()),
                ("transactional_id", raw.transactional_id.is_some()),
                ("properties", raw.properties.is_some()),
            ];
            foreign.extend(kafka.iter().filter(|(_, set)| *set).map(|(f, _)| *f));
        }
        (connector, foreign)
    }
}

/// The source types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SourceType {
    Generator,
    File,
    Kafka,
}

/// The sink types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkType {
    Stdout,
    File,
    Blackhole,
    Kafka,
}

/// A source as written: the common fields and every connector's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    id: String,
    #[serde(rename = "type")]
    kind: SourceType,
    parallelism: Option<u32>,
    #[serde(default)]
    timestamps: TimestampMode,
    #[serde(default)]
    watermark: WatermarkSpec,
    // generator
    generator: Option<GeneratorKind>,
    events: Option<u64>,
    sensors: Option<u32>,
    seed: Option<u64>,
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    interval: Option<Duration>,
    start: Option<i64>,
    rate: Option<f64>,
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    disorder: Option<Duration>,
    size: Option<usize>,
    // file (key and timestamp: kafka too)
    path: Option<Paths>,
    key: Option<String>,
    timestamp: Option<String>,
    // kafka
    bootstrap: Option<String>,
    topics: Option<Topics>,
    group_id: Option<String>,
    start_from: Option<StartFrom>,
    stop_at: Option<StopAt>,
    format: Option<KafkaFormat>,
    #[serde(default, deserialize_with = "crate::duration::deserialize_opt")]
    discovery_interval: Option<Duration>,
    #[serde(default, deserialize_with = "kafka::deserialize_properties")]
    properties: Option<std::collections::BTreeMap<String, String>>,
}

impl RawSource {
    /// The generator's own fields that are set (`rate` is Kafka's too).
    fn generator_fields(&self) -> impl Iterator<Item = &'static str> + use<> {
        let set = [
            ("generator", self.generator.is_some()),
            ("events", self.events.is_some()),
            ("sensors", self.sensors.is_some()),
            ("seed", self.seed.is_some()),
            ("interval", self.interval.is_some()),
            ("start", self.start.is_some()),
            ("disorder", self.disorder.is_some()),
            ("size", self.size.is_some()),
        ];
        set.into_iter().filter(|(_, set)| *set).map(|(f, _)| f)
    }

    /// The Kafka fields set (foreign to the other sources).
    fn kafka_fields(&self) -> impl Iterator<Item = &'static str> + use<> {
        let set = [
            ("bootstrap", self.bootstrap.is_some()),
            ("topics", self.topics.is_some()),
            ("group_id", self.group_id.is_some()),
            ("start_from", self.start_from.is_some()),
            ("stop_at", self.stop_at.is_some()),
            ("format", self.format.is_some()),
            ("discovery_interval", self.discovery_interval.is_some()),
            ("properties", self.properties.is_some()),
        ];
        set.into_iter().filter(|(_, set)| *set).map(|(f, _)| f)
    }
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawSource::deserialize(d)?;
        let (connector, foreign) = SourceConnector::from_raw(&raw);
        Ok(SourceSpec {
            id: raw.id,
            parallelism: raw.parallelism,
            timestamps: raw.timestamps,
            watermark: raw.watermark,
            connector,
            foreign,
        })
    }
}

/// A sink as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    id: String,
    #[serde(rename = "type")]
    kind: SinkType,
    input: Inputs,
    parallelism: Option<u32>,
    // file
    path: Option<PathBuf>,
    // kafka
    bootstrap: Option<String>,
    topic: Option<String>,
    delivery: Option<Delivery>,
    transactional_id: Option<String>,
    #[serde(default, deserialize_with = "kafka::deserialize_properties")]
    properties: Option<std::collections::BTreeMap<String, String>>,
}

impl<'de> Deserialize<'de> for SinkSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawSink::deserialize(d)?;
        let (connector, foreign) = SinkConnector::from_raw(&raw);
        Ok(SinkSpec { id: raw.id, input: raw.input, parallelism: raw.parallelism, connector, foreign })
    }
}

/// What a connector's checks report: the field and what is wrong with it.
pub(crate) type FieldError = (&'static str, String);

impl SourceSpec {
    /// The connector's own checks.
    pub(crate) fn check(&self) -> Result<(), FieldError> {
        if let Some(field) = self.foreign.first() {
            return Err((field, format!("does not apply to a `{}` source", self.connector.type_name())));
        }
        match &self.connector {
            SourceConnector::Generator(g) => g.check(),
            SourceConnector::File(f) => f.check(self.timestamps),
            SourceConnector::Kafka(k) => k.check(),
        }
    }
}

impl SinkSpec {
    /// The connector's own checks.
    pub(crate) fn check(&self, checkpointing: bool) -> Result<(), FieldError> {
        if let Some(field) = self.foreign.first() {
            return Err((field, format!("does not apply to a `{}` sink", self.connector.type_name())));
        }
        match &self.connector {
            SinkConnector::File(f) if f.path.as_os_str().is_empty() => Err(("path", "a file sink needs `path`".into())),
            SinkConnector::Kafka(k) => k.check(checkpointing),
            _ => Ok(()),
        }
    }
}
