//! `type: kafka`: records from Kafka topics (each partition a split), and
//! records into a topic, transactionally with checkpoints.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{FieldError, RawSink, RawSource, SinkConnector, SourceConnector};

/// The topics a Kafka source reads: `topics: [a, b]`, `topics: a`, or
/// `topics: {pattern: "sensors-.*"}` (a regular expression over the whole
/// topic name; topics created later that match are picked up).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Topics {
    /// One topic.
    One(String),
    /// These topics.
    List(Vec<String>),
    /// Every topic whose name matches.
    Pattern {
        /// The regular expression (anchored at both ends).
        pattern: String,
    },
}

/// Where the partitions of a fresh start begin (a restore resumes from the
/// checkpoint's offsets; a partition found later begins at its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StartFrom {
    /// `earliest`, `latest` or `committed`.
    Named(StartName),
    /// `{timestamp: ms}`: the first record at or after this time.
    Timestamp {
        /// Milliseconds since the epoch.
        timestamp: i64,
    },
}

/// The named start positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartName {
    /// Each partition's first offset.
    Earliest,
    /// Each partition's end at start (only records written afterwards).
    Latest,
    /// The group's committed offset (the earliest where it has none).
    Committed,
}

/// How a Kafka record becomes a Weir record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaFormat {
    /// The value is JSON; key and event time by JSON pointer (`key`,
    /// `timestamp`), else the Kafka key and record timestamp.
    #[default]
    Json,
    /// Key and value bytes as they are; event time is the record timestamp.
    Raw,
}

/// Where a bounded Kafka source ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopAt {
    /// The end of each partition when the job first started (a batch job
    /// over a topic; a restore keeps the first start's ends).
    Latest,
}

/// A Kafka source's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSource {
    /// `bootstrap.servers`: `host:port[,host:port…]` (required).
    pub bootstrap: String,
    /// The topics (required).
    pub topics: Option<Topics>,
    /// The consumer group offsets are committed to after each checkpoint,
    /// for lag monitoring (default `weir-<job>-<node>`).
    pub group_id: Option<String>,
    /// Where a fresh start begins (default `earliest`).
    pub start_from: StartFrom,
    /// Ends the job at these offsets (default: unbounded).
    pub stop_at: Option<StopAt>,
    /// `json` (default) or `raw`.
    pub format: KafkaFormat,
    /// JSON pointer to the record key (`json` only; default: the Kafka key).
    pub key: Option<String>,
    /// JSON pointer to the event time in ms (`json` only; default: the
    /// Kafka record timestamp).
    pub timestamp: Option<String>,
    /// How often to look for new partitions and topics (default 10s).
    pub discovery_interval: Duration,
    /// At most this many records per second (all instances together;
    /// default: as fast as the brokers deliver), e.g. to backfill gently.
    pub rate: Option<f64>,
    /// Other librdkafka consumer properties.
    pub properties: BTreeMap<String, String>,
}

/// Whether a Kafka sink's output is transactional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// One transaction per sink instance per checkpoint, committed when
    /// the checkpoint completes (needs `checkpoint`).
    ExactlyOnce,
    /// Idempotent writes flushed at every barrier; a restart may repeat
    /// what followed the last checkpoint.
    AtLeastOnce,
}

/// A Kafka sink's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSink {
    /// `bootstrap.servers` (required).
    pub bootstrap: String,
    /// The topic written (required); partition by the record key.
    pub topic: String,
    /// `exactly-once` or `at-least-once` (default: exactly-once when the job
    /// checkpoints, else at-least-once).
    pub delivery: Option<Delivery>,
    /// The prefix of the sink's transactional ids (default
    /// `weir-<job>-<node>`): unique per job writing to a cluster.
    pub transactional_id: Option<String>,
    /// Other librdkafka producer properties.
    pub properties: BTreeMap<String, String>,
}

/// Properties a job may not set: Weir owns them.
const OWNED: [(&str, &str); 6] = [
    ("bootstrap.servers", "set `bootstrap`"),
    ("group.id", "set `group_id`"),
    ("enable.auto.commit", "Weir commits offsets to the group after each checkpoint"),
    ("enable.auto.offset.store", "Weir commits offsets to the group after each checkpoint"),
    ("transactional.id", "set `transactional_id` (a prefix)"),
    ("enable.idempotence", "Weir's delivery modes need idempotent writes"),
];

fn check_properties(properties: &BTreeMap<String, String>) -> Result<(), FieldError> {
    for (name, why) in OWNED {
        if properties.contains_key(name) {
            return Err(("properties", format!("`{name}` cannot be set here: {why}")));
        }
    }
    Ok(())
}

pub(super) fn source_from_raw(raw: &RawSource) -> (SourceConnector, Vec<&'static str>) {
    let mut foreign: Vec<&'static str> = raw.generator_fields().collect();
    if raw.path.is_some() {
        foreign.push("path");
    }
    let kafka = KafkaSource {
        rate: raw.rate,
        bootstrap: raw.bootstrap.clone().unwrap_or_default(),
        topics: raw.topics.clone(),
        group_id: raw.group_id.clone(),
        start_from: raw.start_from.unwrap_or(StartFrom::Named(StartName::Earliest)),
        stop_at: raw.stop_at,
        format: raw.format.unwrap_or_default(),
        key: raw.key.clone(),
        timestamp: raw.timestamp.clone(),
        discovery_interval: raw.discovery_interval.unwrap_or(Duration::from_secs(10)),
        properties: raw.properties.clone().unwrap_or_default(),
    };
    (SourceConnector::Kafka(kafka), foreign)
}

pub(super) fn sink_from_raw(raw: &RawSink) -> (SinkConnector, Vec<&'static str>) {
    let kafka = KafkaSink {
        bootstrap: raw.bootstrap.clone().unwrap_or_default(),
        topic: raw.topic.clone().unwrap_or_default(),
        delivery: raw.delivery,
        transactional_id: raw.transactional_id.clone(),
        properties: raw.properties.clone().unwrap_or_default(),
    };
    (SinkConnector::Kafka(kafka), raw.path.is_some().then_some("path").into_iter().collect())
}

impl KafkaSource {
    pub(super) fn check(&self) -> Result<(), FieldError> {
        if self.bootstrap.trim().is_empty() {
            return Err(("bootstrap", "a kafka source needs `bootstrap` (host:port of a broker)".into()));
        }
        match &self.topics {
            None => return Err(("topics", "a kafka source needs `topics` (a name, a list, or {pattern: …})".into())),
            Some(Topics::List(list)) if list.is_empty() => {
                return Err(("topics", "needs at least one topic".into()));
            }
            Some(Topics::One(t)) if t.is_empty() => return Err(("topics", "a topic name cannot be empty".into())),
            Some(Topics::Pattern { pattern }) => {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(("topics", format!("`{pattern}` is not a regular expression: {e}")));
                }
            }
            Some(_) => {}
        }
        if self.format == KafkaFormat::Raw {
            for (field, set) in [("key", self.key.is_some()), ("timestamp", self.timestamp.is_some())] {
                if set {
                    return Err((
                        field,
                        "does not apply to `format: raw` (key and time come from the Kafka record)".into(),
                    ));
                }
            }
        }
        for (field, pointer) in [("key", &self.key), ("timestamp", &self.timestamp)] {
            if let Some(p) = pointer
                && !p.starts_with('/')
            {
                return Err((field, format!("`{p}` is not a JSON pointer (it must start with `/`, e.g. `/id`)")));
            }
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite())
        {
            return Err(("rate", "must be a positive number of records per second".into()));
        }
        if self.discovery_interval.is_zero() {
            return Err(("discovery_interval", "must be positive".into()));
        }
        check_properties(&self.properties)
    }
}

impl KafkaSink {
    /// The delivery a job with (or without) checkpoints gets.
    pub fn delivery(&self, checkpointing: bool) -> Delivery {
        self.delivery.unwrap_or(if checkpointing { Delivery::ExactlyOnce } else { Delivery::AtLeastOnce })
    }

    pub(super) fn check(&self, checkpointing: bool) -> Result<(), FieldError> {
        if self.bootstrap.trim().is_empty() {
            return Err(("bootstrap", "a kafka sink needs `bootstrap` (host:port of a broker)".into()));
        }
        if self.topic.is_empty() {
            return Err(("topic", "a kafka sink needs `topic`".into()));
        }
        if self.delivery == Some(Delivery::ExactlyOnce) && !checkpointing {
            return Err((
                "delivery",
                "exactly-once commits a transaction per checkpoint: set `checkpoint` on the job, or use `delivery: at-least-once`"
                    .into(),
            ));
        }
        check_properties(&self.properties)
    }
}

/// Reads `properties:` values that YAML typed (numbers, booleans) as the
/// strings librdkafka takes.
pub(super) fn deserialize_properties<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let map: Option<BTreeMap<String, Scalar>> = Option::deserialize(d)?;
    Ok(map.map(|m| {
        m.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Scalar::Text(s) => s,
                    Scalar::Int(i) => i.to_string(),
                    Scalar::Float(f) => f.to_string(),
                    Scalar::Bool(b) => b.to_string(),
                };
                (k, v)
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use crate::{Format, JobSpec, SinkConnector, SourceConnector, StartFrom, Topics};

    const SPEC: &str = "name: k
checkpoint: { interval: 1s, dir: c }
sources:
  - id: in
    type: kafka
    bootstrap: 127.0.0.1:9092
    topics: { pattern: 'sensors-.*' }
    start_from: { timestamp: 1700000000000 }
    properties: { fetch.max.bytes: 1048576, check.crcs: true }
sinks:
  - id: out
    type: kafka
    bootstrap: 127.0.0.1:9092
    topic: averages
    input: in
";

    fn err(text: &str) -> String {
        JobSpec::parse(text, Format::Yaml).unwrap_err().to_string()
    }

    #[test]
    fn a_kafka_spec_reads_into_typed_settings() {
        let spec = JobSpec::parse(SPEC, Format::Yaml).unwrap();
        let SourceConnector::Kafka(k) = &spec.sources[0].connector else { panic!() };
        assert_eq!(k.topics, Some(Topics::Pattern { pattern: "sensors-.*".into() }));
        assert_eq!(k.start_from, StartFrom::Timestamp { timestamp: 1_700_000_000_000 });
        assert_eq!(k.properties["fetch.max.bytes"], "1048576");
        assert_eq!(k.properties["check.crcs"], "true");
        let SinkConnector::Kafka(s) = &spec.sinks[0].connector else { panic!() };
        assert_eq!(s.delivery(true), crate::Delivery::ExactlyOnce);
        assert_eq!(s.delivery(false), crate::Delivery::AtLeastOnce);
    }

    #[test]
    fn kafka_mistakes_are_refused_at_their_line() {
        assert_eq!(
            err(&SPEC
                .replace("checkpoint: { interval: 1s, dir: c }\n", "")
                .replace("input: in", "input: in\n    delivery: exactly-once")),
            "invalid job spec at line 15: sinks `out`: field `delivery`: exactly-once commits a transaction per checkpoint: set `checkpoint` on the job, or use `delivery: at-least-once`"
        );
        assert_eq!(
            err(&SPEC.replace("check.crcs: true", "group.id: mine")),
            "invalid job spec at line 9: sources `in`: field `properties`: `group.id` cannot be set here: set `group_id`"
        );
        assert_eq!(
            err(&SPEC.replace("sensors-.*", "(unclosed")),
            "invalid job spec at line 7: sources `in`: field `topics`: `(unclosed` is not a regular expression: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"
        );
        assert_eq!(
            err(&SPEC.replace("start_from", "format: raw\n    key: /id\n    start_from")),
            "invalid job spec at line 9: sources `in`: field `key`: does not apply to `format: raw` (key and time come from the Kafka record)"
        );
        assert_eq!(
            err(&SPEC.replace("topic: averages\n", "topic: averages\n    path: x\n")),
            "invalid job spec at line 15: sinks `out`: field `path`: does not apply to a `kafka` sink"
        );
    }
}
