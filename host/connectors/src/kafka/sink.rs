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

    /// `tracking`: the producer keeps track of where its records went.
    fn producer(&self, ours: &[(&str, &str)], tracking: bool) -> Result<BaseProducer<Context>> {
        let config = client::config(&self.spec.bootstrap, ours, &self.spec.properties);
        let context = if tracking { Context::tracking(&self.node) } else { Context::new(&self.node) };
        config.create_with_context(context).map_err(kafka(format!("cannot create a Kafka producer for {}", self.node)))
    }

    /// A transactional producer under `id`, initialized: any older
    /// producer of that id is fenced, its open transaction aborted. It
    /// keeps track of where its records went.
    ///
    /// `timeout`: the `transaction.timeout.ms` to ask for when the sink's
    /// properties do not set one.
    pub(super) fn transactional(&self, id: &str, timeout: Option<&str>) -> Result<BaseProducer<Context>> {
        let mut ours = vec![("transactional.id", id), ("enable.idempotence", "true")];
        ours.extend(timeout.map(|ms| ("transaction.timeout.ms", ms)));
        let producer = self.producer(&ours, true)?;
        self.connect(&producer)?;
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

    /// Brings `producer`'s connection to the cluster up before it asks for
    /// a producer id: librdkafka asks at once, and when no broker is up
    /// yet it asks again only after 500 ms — a third of the sinks opened
    /// here took half a second for that. A metadata request goes through
    /// the bootstrap server and names the brokers; a second one waits for
    /// the connection to them. (Metadata for the sink's topic creates it
    /// where the cluster creates topics on first write, as a write would.)
    fn connect(&self, producer: &BaseProducer<Context>) -> Result<()> {
        for _ in 0..2 {
            if let Err(e) = producer.client().fetch_metadata(Some(&self.spec.topic), METADATA_TIMEOUT) {
                let poll = |left| producer.poll(left);
                return Err(client::failed_with(poll, producer.context(), &self.spec.bootstrap, &e));
            }
        }
        Ok(())
    }

    /// Transactional producers under `ids`, initialized at once (each
    /// initialization is a round trip to the transaction coordinator, which
    /// waits for an older producer's open transaction to be aborted).
    pub(super) fn fence<const N: usize>(
        &self,
        ids: &[String; N],
        timeout: Option<&str>,
    ) -> Result<[BaseProducer<Context>; N]> {
        let opened: Vec<Result<BaseProducer<Context>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ids.iter().map(|id| scope.spawn(move || self.transactional(id, timeout))).collect();
            handles.into_iter().map(|h| h.join().expect("opening a producer does not panic")).collect()
        });
        let opened: Vec<BaseProducer<Context>> = opened.into_iter().collect::<Result<_>>()?;
        Ok(opened.try_into().unwrap_or_else(|_| unreachable!("one producer per id")))
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
                let producer = self.producer(&[("enable.idempotence", "true")], false)?;
                // (An idempotent producer asks for a producer id too.)
                self.connect(&producer)?;
                Ok(Box::new(AtLeastOnce { producer, topic: self.spec.topic.clone(), node: self.node.clone() }))
            }
            Delivery::ExactlyOnce => Ok(Box::new(super::exactly_once::ExactlyOnce::open(self, cx)?)),
        }
    }
}

/// A batch's keys and values, as [`send_all`] takes them.
pub(super) fn rows(records: &RecordBatch) -> impl Iterator<Item = (Option<&[u8]>, &[u8])> {
    records.iter().map(|r| (r.key, r.value))
}

/// Sends every record (key, value) to `topic`, waiting while librdkafka's
/// queue is full.
pub(super) fn send_all<'a>(
    producer: &BaseProducer<Context>,
    topic: &str,
    records: impl Iterator<Item = (Option<&'a [u8]>, &'a [u8])>,
    node: &str,
) -> Result<()> {
    for (key, value) in records {
        send_one(producer, topic, key, value, node)?;
    }
    producer.poll(Duration::ZERO);
    failed_delivery(producer, topic, node)
}

/// Sends one record, waiting while librdkafka's queue is full.
pub(super) fn send_one(
    producer: &BaseProducer<Context>,
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
    node: &str,
) -> Result<()> {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    // The record timestamp stays the write time: event times can be far
    // in the past, and time-based retention would delete them.
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(kafka(format!("{node} cannot write to topic `{topic}`"))(e)),
        }
    }
}

/// Waits until librdkafka has every record `producer` was given
/// acknowledged (or failed), serving the delivery reports.
///
/// Not `BaseProducer::flush`: in rdkafka 0.39 it polls in steps of 100 ms
/// that last their whole length, so every flush with a record in flight
/// took at least 100 ms — a tenth of a one-second checkpoint interval.
pub(super) fn flush(producer: &BaseProducer<Context>, timeout: Duration) -> std::result::Result<(), KafkaError> {
    let deadline = std::time::Instant::now() + timeout;
    // A flush with no wait: librdkafka sends what it holds at once
    // instead of lingering.
    let _ = producer.flush(Duration::ZERO);
    let mut left = producer.in_flight_count();
    while left > 0 {
        if std::time::Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        // Serves one event (a batch of delivery reports) if there is one.
        producer.poll(Duration::ZERO);
        let now = producer.in_flight_count();
        if now == left {
            std::thread::sleep(Duration::from_micros(200));
        }
        left = now;
    }
    Ok(())
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
        send_all(&self.producer, &self.topic, rows(records), &self.node)
    }

    fn flush(&mut self) -> Result<()> {
        flush(&self.producer, FLUSH_TIMEOUT)
            .map_err(kafka(format!("{} cannot flush to topic `{}`", self.node, self.topic)))?;
        failed_delivery(&self.producer, &self.topic, &self.node)
    }
}
