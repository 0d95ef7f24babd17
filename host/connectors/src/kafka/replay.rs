//! Recovery of a batch whose transaction was flushed but never committed:
//! its records are still in the topic (aborted when the new session fenced
//! the old producer, but not deleted), and a `read_uncommitted` consumer
//! reads them back at the offsets the checkpoint names, to write them
//! again in a transaction of their own.
//!
//! The records stay in the topic until retention deletes them (or, on a
//! compacted topic, the cleaner removes aborted data): recovery must come
//! before that, which is what a restart strategy does. When they are gone
//! the sink fails, naming the offsets, rather than write less than the
//! checkpoint holds.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::BaseProducer;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{self, Context, kafka};
use super::sink::{KafkaSinkFactory, send_one};
use super::wal::Written;
use crate::{ConnectorError, Result};

/// How long reading back may go without a record before it gives up.
const IDLE: Duration = Duration::from_secs(30);

/// Reads the records `written` names from `topic` and sends them on
/// `producer` (in its open transaction), each partition's in offset order.
pub(super) fn rewrite(
    factory: &KafkaSinkFactory,
    topic: &str,
    written: &Written,
    checkpoint: u64,
    producer: &BaseProducer<Context>,
) -> Result<()> {
    let node = factory.node.as_str();
    let gone = |partition: i32, detail: String| {
        let (first, end) = span(&written.runs[&partition]);
        ConnectorError::Position(format!(
            "{node}: checkpoint {checkpoint}'s records in partition {partition} of topic `{topic}` (offsets {first}..{end}) \
             cannot be read back to commit them again: {detail}; they were deleted (retention, or the cleaner of a \
             compacted topic) before the job recovered, so that checkpoint's output is lost: start the job without \
             its checkpoints (a new checkpoint `dir`) to go on"
        ))
    };
    let config = client::config(
        &factory.spec.bootstrap,
        &[
            ("group.id", &format!("{}-replay", factory.prefix)),
            ("isolation.level", "read_uncommitted"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "error"),
            ("enable.partition.eof", "true"),
        ],
        &factory.spec.properties,
    );
    let consumer: BaseConsumer<Context> = client::consumer(node, &config)?;
    let mut list = TopicPartitionList::new();
    for (partition, runs) in &written.runs {
        list.add_partition_offset(topic, *partition, Offset::Offset(span(runs).0))
            .map_err(kafka(format!("{node}: cannot read back checkpoint {checkpoint}")))?;
    }
    consumer.assign(&list).map_err(kafka(format!("{node}: cannot read back checkpoint {checkpoint}")))?;
    // Per partition: the index of the run the next record may be in.
    let mut left: std::collections::BTreeMap<i32, usize> = written.runs.keys().map(|p| (*p, 0)).collect();
    let mut sent = 0u64;
    let mut last = Instant::now();
    while !left.is_empty() {
        let message = match consumer.poll(Duration::from_millis(100)) {
            None if last.elapsed() > IDLE => {
                let partition = *left.keys().next().expect("not empty");
                return Err(gone(partition, format!("no record came for {}s", IDLE.as_secs())));
            }
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) if left.contains_key(&partition) => {
                return Err(gone(partition, "the partition ends before them".into()));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => {
                return Err(ConnectorError::Kafka {
                    what: format!("{node}: cannot read back checkpoint {checkpoint} from topic `{topic}`"),
                    source: Box::new(e),
                });
            }
            Some(Ok(message)) => message,
        };
        last = Instant::now();
        let (partition, offset) = (message.partition(), message.offset());
        let Some(at) = left.get_mut(&partition) else { continue };
        let runs = &written.runs[&partition];
        while *at < runs.len() && runs[*at].1 <= offset {
            *at += 1;
        }
        if *at < runs.len() && runs[*at].0 <= offset {
            send_one(producer, topic, message.key(), message.payload().unwrap_or_default(), node)?;
            sent += 1;
            if sent.is_multiple_of(1024) {
                producer.poll(Duration::ZERO);
            }
        }
        if offset + 1 >= span(runs).1 {
            left.remove(&partition);
        }
    }
    if sent != written.count {
        return Err(ConnectorError::Position(format!(
            "{node}: checkpoint {checkpoint} wrote {} records to topic `{topic}`, but only {sent} are left at its \
             offsets: the others were deleted (a compacted topic?) before the job recovered",
            written.count
        )));
    }
    tracing::info!(node, checkpoint, records = sent, "records of an uncommitted transaction read back from the topic");
    Ok(())
}

/// The first offset of a partition's runs and the one after its last.
fn span(runs: &[(i64, i64)]) -> (i64, i64) {
    (runs.first().map_or(0, |r| r.0), runs.last().map_or(0, |r| r.1))
}
