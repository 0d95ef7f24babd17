//! Kafka clients as Weir makes them: configuration, the context that
//! reports librdkafka's logs and errors, and metadata lookups with errors a
//! user can act on.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::METADATA_TIMEOUT;
use super::wal::Written;
use crate::{ConnectorError, Result};

/// The context of every Weir Kafka client: logs go to `tracing` with the
/// node named; the last error and the first failed delivery are kept.
pub(crate) struct Context {
    node: String,
    last_error: Mutex<Option<String>>,
    failed_delivery: Mutex<Option<KafkaError>>,
    /// Each partition's end (last stable offset) from the statistics.
    ends: Mutex<std::collections::HashMap<(String, i32), i64>>,
    /// Where delivered records went, for producers that keep track.
    delivered: Option<Mutex<Written>>,
}

impl Context {
    pub(crate) fn new(node: &str) -> Self {
        Context {
            node: node.to_string(),
            last_error: Mutex::new(None),
            failed_delivery: Mutex::new(None),
            ends: Mutex::new(std::collections::HashMap::new()),
            delivered: None,
        }
    }

    /// The context of a producer that keeps track of where its delivered
    /// records went ([`Context::take_delivered`]).
    pub(crate) fn tracking(node: &str) -> Self {
        Context { delivered: Some(Mutex::new(Written::default())), ..Context::new(node) }
    }

    /// Where the records delivered since the last call went (empty when
    /// the producer does not keep track).
    pub(crate) fn take_delivered(&self) -> Written {
        self.delivered.as_ref().map(|d| std::mem::take(&mut *d.lock().expect("not poisoned"))).unwrap_or_default()
    }

    /// The end of partition `partition` of `topic` as of the last
    /// statistics (`statistics.interval.ms`), if known.
    pub(crate) fn end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.ends.lock().expect("not poisoned").get(&(topic.to_string(), partition)).copied()
    }

    /// What librdkafka last reported as an error, if anything.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("not poisoned").clone()
    }

    /// The first delivery that failed since the last call.
    pub(crate) fn take_failed_delivery(&self) -> Option<KafkaError> {
        self.failed_delivery.lock().expect("not poisoned").take()
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let node = self.node.as_str();
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", node, "{fac}: {message}");
                // `[thrd:…]: ` says nothing to a user.
                let text = message.split_once("]: ").map_or(message, |(_, rest)| rest);
                *self.last_error.lock().expect("not poisoned") = Some(text.to_string());
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", node, "{fac}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", node, "{fac}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", node, "{fac}: {message}"),
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut ends = self.ends.lock().expect("not poisoned");
        for (name, topic) in statistics.topics {
            for (id, p) in topic.partitions {
                // -1 is librdkafka's internal unassigned partition.
                let end = if p.ls_offset >= 0 { p.ls_offset } else { p.hi_offset };
                if id >= 0 && end >= 0 {
                    ends.insert((name.clone(), id), end);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Connection trouble repeats while a broker is down: debug level;
        // what a user must see ends up in the error the node fails with.
        tracing::debug!(target: "librdkafka", node = self.node.as_str(), "{error}: {reason}");
        // "1/1 brokers are down" only sums up the reasons logged before it.
        let summary = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        let mut last = self.last_error.lock().expect("not poisoned");
        if !summary || last.is_none() {
            *last = Some(reason.to_string());
        }
    }
}

impl ConsumerContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                if let Some(delivered) = &self.delivered {
                    delivered.lock().expect("not poisoned").record(message.partition(), message.offset());
                }
            }
            Err((error, _)) => {
                let mut failed = self.failed_delivery.lock().expect("not poisoned");
                failed.get_or_insert_with(|| error.clone());
            }
        }
    }
}

/// A client configuration: the bootstrap servers, Weir's settings, then
/// the job's own `properties`.
pub(crate) fn config(bootstrap: &str, ours: &[(&str, &str)], properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("log_level", "6");
    for (k, v) in ours {
        config.set(*k, *v);
    }
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

/// A client call that failed, and what was being done.
pub(crate) fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> ConnectorError {
    let what = what.into();
    move |source| ConnectorError::Kafka { what, source: Box::new(source) }
}

/// Creates a consumer (also used for metadata and group offsets).
pub(crate) fn consumer(node: &str, config: &ClientConfig) -> Result<BaseConsumer<Context>> {
    config.create_with_context(Context::new(node)).map_err(kafka(format!("cannot create a Kafka consumer for {node}")))
}

/// The error for a metadata lookup that failed: the cluster is down or
/// unreachable, or refused the client.
pub(crate) fn unreachable(bootstrap: &str, context: &Context, error: &KafkaError) -> ConnectorError {
    let detail = context.last_error().unwrap_or_else(|| error.to_string());
    let code = error.rdkafka_error_code();
    let auth = matches!(
        code,
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    ) || detail.contains("SASL")
        || detail.contains("uthenticat");
    let hint = if auth {
        "check the credentials in `properties` (sasl.*, security.protocol)"
    } else if detail.contains("SSL") {
        "check the TLS settings in `properties` (security.protocol, ssl.*) against the brokers' listener"
    } else {
        "check `bootstrap` and that the brokers are up"
    };
    ConnectorError::Unavailable(format!(
        "cannot reach the Kafka cluster at {bootstrap} within {}s ({detail}): {hint}",
        METADATA_TIMEOUT.as_secs()
    ))
}

/// [`unreachable`], once the consumer's pending error events are served
/// (they say why: `Connect to ipv4#127.0.0.1:1 failed: Connection refused`).
pub(crate) fn failed(consumer: &BaseConsumer<Context>, bootstrap: &str, error: &KafkaError) -> ConnectorError {
    failed_with(
        |left| {
            let _ = consumer.poll(left);
        },
        consumer.context(),
        bootstrap,
        error,
    )
}

/// [`failed`] for any client: `poll` serves its events for at most the
/// time given.
pub(crate) fn failed_with(
    poll: impl Fn(std::time::Duration),
    context: &Context,
    bootstrap: &str,
    error: &KafkaError,
) -> ConnectorError {
    // The logs queued with the errors say why. A poll returns at each
    // error event, and one with no wait serves a single log event: poll
    // for a moment instead (the node is failing anyway).
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        poll(left);
    }
    unreachable(bootstrap, context, error)
}

/// The partitions of `topic`, or an error naming it when it does not exist.
pub(crate) fn partitions_of(
    consumer: &BaseConsumer<Context>,
    bootstrap: &str,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| failed(consumer, bootstrap, &e))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing_topic(topic, bootstrap));
    };
    match t.error() {
        None => {}
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
            return Err(missing_topic(topic, bootstrap));
        }
        Some(e) => {
            return Err(ConnectorError::Unavailable(format!(
                "topic `{topic}` on {bootstrap} cannot be read: {}",
                RDKafkaErrorCode::from(e)
            )));
        }
    }
    let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

fn missing_topic(topic: &str, bootstrap: &str) -> ConnectorError {
    ConnectorError::Unavailable(format!(
        "topic `{topic}` does not exist on {bootstrap}: create it first (Weir does not create topics)"
    ))
}

/// Every topic of the cluster whose whole name matches `pattern`, with its
/// partitions (internal `__` topics left out).
pub(crate) fn matching(
    consumer: &BaseConsumer<Context>,
    bootstrap: &str,
    pattern: &regex::Regex,
    timeout: std::time::Duration,
) -> Result<Vec<(String, Vec<i32>)>> {
    let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| failed(consumer, bootstrap, &e))?;
    let mut topics: Vec<(String, Vec<i32>)> = metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__") && t.error().is_none() && pattern.is_match(t.name()))
        .map(|t| {
            let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            partitions.sort_unstable();
            (t.name().to_string(), partitions)
        })
        .collect();
    topics.sort();
    Ok(topics)
}
