//! The Kafka sink's factory and its at-least-once form: idempotent writes,
//! flushed at every barrier. The exactly-once form is in
//! [`super::exactly_once`].

use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use weir_spec::{Delivery, KafkaSink};
use weir_types::RecordBatch;

use super::METADATA_TIMEOUT;
use super::client::{self, Context, kafka};
use crate::{ConnectorError, Result, Sink, SinkContext};

/// How long a flush or a transaction call may take.
pub(super) const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// `type: kafka` sinks.
pub(crate) struct KafkaSinkFactory {
    pub(super) spec: KafkaSink,
    pub(super) node: String,
    /// The prefix of the transactional ids and marker groups.
    pub(super) prefix: String,
}

impl KafkaSinkFactory {
    pub(crate) fn new(spec: &KafkaSink, job: &str, node: &str) -> Self {
        let prefix = spec.transactional_id.clone().unwrap_or_else(|| format!("weir-{job}-{node}"));
        KafkaSinkFactory { spec: spec.clone(), node: node.to_string(), prefix }
    }

    fn producer(&self, ours: &[(&str, &str)]) -> Result<BaseProducer<Context>> {
        let config = client::config(&self.spec.bootstrap, ours, &self.spec.properties);
        config
            .create_with_context(Context::new(&self.node))
            .map_err(kafka(format!("cannot create a Kafka producer for {}", self.node)))
    }

    /// A transactional producer under `id`, initialized: any older
    /// producer of that id is fenced, its open transaction aborted.
    pub(super) fn transactional(&self, id: &str) -> Result<BaseProducer<Context>> {
        let producer = self.producer(&[("transactional.id", id), ("enable.idempotence", "true")])?;
        producer.init_transactions(METADATA_TIMEOUT).map_err(|e| match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::Fail
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure,
            ) => client::unreachable(&self.spec.bootstrap, producer.context(), &e),
            _ => {
                ConnectorError::Kafka { what: format!("cannot start transactional producer {id}"), source: Box::new(e) }
            }
        })?;
        Ok(producer)
    }

    /// The consumer that reads and writes the marker of `group` (with the
    /// sink's properties, for credentials; producer-only ones are ignored).
    pub(super) fn marker(&self, group: &str) -> Result<BaseConsumer<Context>> {
        let config = client::config(&self.spec.bootstrap, &[("group.id", group)], &self.spec.properties);
        client::consumer(&self.node, &config)
    }
}

impl crate::SinkFactory for KafkaSinkFactory {
    fn open(&self, cx: &SinkContext<'_>) -> Result<Box<dyn Sink>> {
        match self.spec.delivery(cx.exactly_once) {
            Delivery::AtLeastOnce => {
                let producer = self.producer(&[("enable.idempotence", "true")])?;
                Ok(Box::new(AtLeastOnce { producer, topic: self.spec.topic.clone(), node: self.node.clone() }))
            }
            Delivery::ExactlyOnce => Ok(Box::new(super::exactly_once::ExactlyOnce::open(self, cx)?)),
        }
    }
}

/// Sends every record of `records` to `topic` (waiting while librdkafka's
/// queue is full), keyed by the record key.
pub(super) fn send_all(producer: &BaseProducer<Context>, topic: &str, records: &RecordBatch, node: &str) -> Result<()> {
    for r in records.iter() {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(r.value);
        if let Some(key) = r.key {
            record = record.key(key);
        }
        // The record timestamp stays the write time: event times can be
        // far in the past, and time-based retention would delete them.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kafka(format!("{node} cannot write to topic `{topic}`"))(e)),
            }
        }
    }
    producer.poll(Duration::ZERO);
    failed_delivery(producer, topic, node)
}

pub(super) fn failed_delivery(producer: &BaseProducer<Context>, topic: &str, node: &str) -> Result<()> {
    match producer.context().take_failed_delivery() {
        Some(e) => Err(kafka(format!("{node}: a record could not be delivered to topic `{topic}`"))(e)),
        None => Ok(()),
    }
}

/// `delivery: at-least-once`.
struct AtLeastOnce {
    producer: BaseProducer<Context>,
    topic: String,
    node: String,
}

impl Sink for AtLeastOnce {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        send_all(&self.producer, &self.topic, records, &self.node)
    }

    fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(kafka(format!("{} cannot flush to topic `{}`", self.node, self.topic)))?;
        failed_delivery(&self.producer, &self.topic, &self.node)
    }
}
