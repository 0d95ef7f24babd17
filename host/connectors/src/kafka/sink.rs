//! The Kafka sink. At-least-once: idempotent writes, flushed at every
//! barrier. Exactly-once: one Kafka transaction per instance per
//! checkpoint, under the instance's deterministic `transactional.id`
//! (`<prefix>-<instance>`; opening it fences an older producer and aborts
//! what that one left open).
//!
//! librdkafka cannot resume a transaction an earlier process began (Flink
//! does so on the Java client by setting the producer id and epoch by
//! reflection), so a transaction that was only flushed at the barrier
//! would be lost by a crash between the checkpoint completing and the
//! commit. Instead the sink keeps each checkpoint's records in the
//! checkpoint (its pending state) and writes them in one transaction when
//! the checkpoint completes. The transaction also commits, through
//! TxnOffsetCommit, a marker to the instance's own group (`<prefix>-<instance>`):
//! a token naming the batch, atomically with the records. Recovery reads
//! the marker and writes exactly the batches the broker has not committed.
//! Output becomes visible when the checkpoint completes, as with Flink.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use weir_spec::{Delivery, KafkaSink};
use weir_types::RecordBatch;

use super::client::{self, Context, kafka};
use super::{METADATA_TIMEOUT, wal};
use crate::{ConnectorError, Result, Sink, SinkContext};

/// How long a flush or a transaction call may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// `type: kafka` sinks.
pub(crate) struct KafkaSinkFactory {
    spec: KafkaSink,
    node: String,
    prefix: String,
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

    /// A transactional producer under `<prefix>-<instance>`, initialized:
    /// any older producer of that id is fenced, its open transaction
    /// aborted.
    fn transactional(&self, instance: u32) -> Result<BaseProducer<Context>> {
        let id = format!("{}-{instance}", self.prefix);
        let producer = self.producer(&[("transactional.id", &id), ("enable.idempotence", "true")])?;
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

    /// The consumer that reads and writes instance `instance`'s marker.
    fn marker(&self, group: &str) -> Result<BaseConsumer<Context>> {
        let config = client::config(&self.spec.bootstrap, &[("group.id", group)], &BTreeMap::new());
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
            Delivery::ExactlyOnce => Ok(Box::new(ExactlyOnce::open(self, cx)?)),
        }
    }
}

/// Sends every record of `records` to `topic` (waiting while librdkafka's
/// queue is full), keyed by the record key.
fn send_all(producer: &BaseProducer<Context>, topic: &str, records: &RecordBatch, node: &str) -> Result<()> {
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

fn failed_delivery(producer: &BaseProducer<Context>, topic: &str, node: &str) -> Result<()> {
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

/// `delivery: exactly-once`.
struct ExactlyOnce {
    producer: BaseProducer<Context>,
    topic: String,
    node: String,
    /// This instance's marker group.
    group: String,
    marker: BaseConsumer<Context>,
    /// The token the marker held when the pending batches were written.
    base: String,
    /// Records since the last barrier.
    buffer: RecordBatch,
    /// Batches pre-committed and not yet committed, oldest first.
    pending: Vec<wal::Batch>,
}

impl ExactlyOnce {
    fn open(factory: &KafkaSinkFactory, cx: &SinkContext<'_>) -> Result<Self> {
        let producer = factory.transactional(cx.index)?;
        let group = format!("{}-{}", factory.prefix, cx.index);
        let mut sink = ExactlyOnce {
            producer,
            topic: factory.spec.topic.clone(),
            node: factory.node.clone(),
            marker: factory.marker(&group)?,
            group,
            base: String::new(),
            buffer: RecordBatch::new(),
            pending: Vec::new(),
        };
        // What the restored checkpoint holds, of this instance or (after a
        // change of parallelism) of others: their producers are fenced and
        // what the broker has not committed of their batches is written.
        for (old, bytes) in cx.restored {
            let state = wal::decode(bytes).map_err(|e| ConnectorError::Position(format!("{}: {e}", factory.node)))?;
            if *old != cx.index {
                drop(factory.transactional(*old)?);
            }
            let marker = if state.group == sink.group { None } else { Some(factory.marker(&state.group)?) };
            let marker = marker.as_ref().unwrap_or(&sink.marker);
            let committed = read_marker(marker, &sink.topic)?;
            for batch in wal::uncommitted(&state, &committed) {
                sink.transaction(batch, &state.group, marker)?;
            }
        }
        sink.base = read_marker(&sink.marker, &sink.topic)?;
        Ok(sink)
    }

    /// Writes `batch` in one transaction with the marker of `group`.
    fn transaction(&self, batch: &wal::Batch, group: &str, marker: &BaseConsumer<Context>) -> Result<()> {
        let what =
            |doing: &str| kafka(format!("{}: {doing} (checkpoint {}, group {group})", self.node, batch.checkpoint));
        self.producer.begin_transaction().map_err(what("cannot begin a transaction"))?;
        send_all(&self.producer, &self.topic, &batch.records, &self.node)?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, 0, Offset::Offset(batch.checkpoint as i64))
            .map_err(what("bad marker"))?;
        offsets.find_partition(&self.topic, 0).expect("added").set_metadata(&batch.token);
        let metadata = marker.group_metadata().ok_or_else(|| {
            ConnectorError::Position(format!("{}: no group metadata for the marker group {group}", self.node))
        })?;
        self.producer
            .send_offsets_to_transaction(&offsets, &metadata, FLUSH_TIMEOUT)
            .map_err(what("cannot add the marker to the transaction"))?;
        self.producer.flush(FLUSH_TIMEOUT).map_err(what("cannot flush the transaction"))?;
        failed_delivery(&self.producer, &self.topic, &self.node)?;
        self.producer.commit_transaction(FLUSH_TIMEOUT).map_err(what("cannot commit the transaction"))?;
        tracing::debug!(
            node = self.node.as_str(),
            checkpoint = batch.checkpoint,
            records = batch.records.len(),
            "committed"
        );
        Ok(())
    }
}

/// The token the marker of `marker`'s group holds (empty when none).
fn read_marker(marker: &BaseConsumer<Context>, topic: &str) -> Result<String> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    let committed = marker
        .committed_offsets(list, METADATA_TIMEOUT)
        .map_err(kafka(format!("cannot read the commit marker of topic `{topic}`")))?;
    Ok(committed.find_partition(topic, 0).map(|e| e.metadata().to_string()).unwrap_or_default())
}

impl Sink for ExactlyOnce {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        self.buffer.extend_from(records);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let records = std::mem::take(&mut self.buffer);
        if !records.is_empty() {
            let token = uuid::Uuid::new_v4().simple().to_string();
            self.pending.push(wal::Batch { checkpoint, token, records });
        }
        Ok(Some(wal::encode(&self.group, &self.base, &self.pending)))
    }

    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        while self.pending.first().is_some_and(|b| b.checkpoint <= checkpoint) {
            let batch = self.pending.remove(0);
            self.transaction(&batch, &self.group, &self.marker)?;
            self.base = batch.token;
        }
        Ok(())
    }
}
