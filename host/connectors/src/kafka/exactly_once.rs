//! `delivery: exactly-once`: one Kafka transaction per instance per
//! checkpoint.
//!
//! Records go into an open transaction as they come (on one of two
//! alternating producers, so the next checkpoint's records flow while the
//! last one's transaction waits for its checkpoint to complete). At the
//! barrier the transaction is flushed and becomes a batch in the
//! instance's pending state, stored with the checkpoint: its token and
//! where its records lie in the topic (per partition, the offset runs the
//! delivery reports named). When the checkpoint completes the transaction
//! commits with a *marker* — the batch's token, committed to the
//! instance's group through TxnOffsetCommit, atomically with the records.
//!
//! librdkafka cannot resume a transaction another session began (Flink does
//! so on the Java client through reflection), so a crash between the
//! checkpoint completing and the commit leaves a flushed transaction that
//! the new session's producers abort when they fence the old ones. Its
//! records are still in the topic, though: recovery reads the marker and,
//! for each batch the broker has not committed, reads the aborted records
//! back (`read_uncommitted`, at the checkpoint's offsets: [`super::replay`])
//! and writes them again in a transaction of their own (on a third
//! producer), with the batch's marker.
//!
//! When both streaming producers are busy (checkpoints complete slower than
//! they start), the interval's records wait in memory, go into the
//! checkpoint as they are, and are written at the commit.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use weir_types::RecordBatch;

use super::client::{Context, kafka};
use super::sink::{FLUSH_TIMEOUT, KafkaSinkFactory, failed_delivery, flush, rows, send_all};
use super::wal::Content;
use super::{METADATA_TIMEOUT, replay, wal};
use crate::{ConnectorError, Result, Sink, SinkContext};

/// librdkafka's default `transaction.timeout.ms`.
const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// A batch pre-committed at a barrier.
struct Pending {
    batch: wal::Batch,
    /// The streaming producer whose open (flushed) transaction holds the
    /// records; `None`: they were kept in memory (both producers were
    /// busy), to be written at the commit.
    producer: Option<usize>,
}

/// The exactly-once sink of one instance.
pub(super) struct ExactlyOnce {
    /// Two producers that alternate streaming (`<prefix>-<i>-0`, `-1`), and
    /// one that writes batches at once (`<prefix>-<i>-w`: batches kept in
    /// memory, and recovery).
    streaming: [BaseProducer<Context>; 2],
    writer: BaseProducer<Context>,
    /// The streaming producer whose transaction takes this interval's records.
    current: Option<usize>,
    topic: String,
    node: String,
    /// This instance's marker group.
    group: String,
    marker: BaseConsumer<Context>,
    /// The token the marker held when the pending batches were written.
    base: String,
    /// Records since the last barrier while no producer is free.
    buffer: wal::Records,
    /// How many records came since the last barrier.
    count: u64,
    /// Pre-committed, not yet committed, oldest first.
    pending: Vec<Pending>,
}

/// Every transactional id instance `instance` uses.
fn ids(prefix: &str, instance: u32) -> [String; 3] {
    ["0", "1", "w"].map(|slot| format!("{prefix}-{instance}-{slot}"))
}

impl ExactlyOnce {
    pub(super) fn open(factory: &KafkaSinkFactory, cx: &SinkContext<'_>) -> Result<Self> {
        let timeout = transaction_timeout(factory, cx).map(|t| t.as_millis().to_string());
        let timeout = timeout.as_deref();
        // Opening each id fences an older producer of it and aborts what
        // that one left open.
        let [a, b, w] = factory.fence(&ids(&factory.prefix, cx.index), timeout)?;
        let group = format!("{}-{}", factory.prefix, cx.index);
        let mut sink = ExactlyOnce {
            streaming: [a, b],
            writer: w,
            current: None,
            topic: factory.spec.topic.clone(),
            node: factory.node.clone(),
            marker: factory.marker(&group)?,
            group,
            base: String::new(),
            buffer: wal::Records::default(),
            count: 0,
            pending: Vec::new(),
        };
        // What the restored checkpoint holds, of this instance or (after a
        // change of parallelism) of others: their producers are fenced and
        // what the broker has not committed of their batches is written.
        for (old, bytes) in cx.restored {
            let state = wal::decode(bytes).map_err(|e| ConnectorError::Position(format!("{}: {e}", factory.node)))?;
            if *old != cx.index {
                drop(factory.fence(&ids(&factory.prefix, *old), timeout)?);
            }
            let other = if state.group == sink.group { None } else { Some(factory.marker(&state.group)?) };
            let marker = other.as_ref().unwrap_or(&sink.marker);
            let committed = read_marker(marker, &sink.topic)?;
            let left = wal::uncommitted(&state, &committed);
            if committed.is_empty() && !state.base.is_empty() && !left.is_empty() {
                tracing::warn!(
                    node = factory.node.as_str(),
                    group = state.group.as_str(),
                    "the commit marker of group {} is gone (its offsets expired after offsets.retention.minutes, or \
                     the group was deleted), so whether the checkpoint's {} pending batches were committed is \
                     unknown: they are written again, which repeats them if they were",
                    state.group,
                    left.len()
                );
            }
            for batch in left {
                sink.begin(&sink.writer, Some(batch.checkpoint))?;
                match &batch.content {
                    Content::Records(records) => {
                        send_all(&sink.writer, &sink.topic, records.iter(), &sink.node)?;
                    }
                    Content::InTopic(written) => {
                        replay::rewrite(factory, &sink.topic, written, batch.checkpoint, &sink.writer)?;
                    }
                }
                sink.finish(&sink.writer, batch, &state.group, marker)?;
            }
        }
        sink.base = read_marker(&sink.marker, &sink.topic)?;
        Ok(sink)
    }

    /// Names what failed; `checkpoint`: the batch's, `None` for the records
    /// since the last barrier.
    fn what(
        &self,
        doing: &str,
        checkpoint: Option<u64>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> ConnectorError + use<> {
        let of = match checkpoint {
            Some(id) => format!("checkpoint {id}"),
            None => "the records since the last barrier".to_string(),
        };
        kafka(format!("{}: {doing} ({of})", self.node))
    }

    fn begin(&self, producer: &BaseProducer<Context>, checkpoint: Option<u64>) -> Result<()> {
        producer.begin_transaction().map_err(self.what("cannot begin a transaction", checkpoint))?;
        // What it delivered before belongs to committed transactions.
        drop(producer.context().take_delivered());
        Ok(())
    }

    /// Adds `batch`'s marker to `producer`'s transaction and commits it.
    fn finish(
        &self,
        producer: &BaseProducer<Context>,
        batch: &wal::Batch,
        group: &str,
        marker: &BaseConsumer<Context>,
    ) -> Result<()> {
        let what = |doing: &str| self.what(doing, Some(batch.checkpoint));
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, 0, Offset::Offset(batch.checkpoint as i64))
            .map_err(what("bad marker"))?;
        offsets.find_partition(&self.topic, 0).expect("added").set_metadata(&batch.token);
        let metadata = marker.group_metadata().ok_or_else(|| {
            ConnectorError::Position(format!("{}: no group metadata for the marker group {group}", self.node))
        })?;
        producer
            .send_offsets_to_transaction(&offsets, &metadata, FLUSH_TIMEOUT)
            .map_err(what("cannot add the marker to the transaction"))?;
        flush(producer, FLUSH_TIMEOUT).map_err(what("cannot flush the transaction"))?;
        failed_delivery(producer, &self.topic, &self.node)?;
        producer.commit_transaction(FLUSH_TIMEOUT).map_err(what("cannot commit the transaction"))?;
        tracing::debug!(node = self.node.as_str(), checkpoint = batch.checkpoint, records = batch.len(), "committed");
        Ok(())
    }

    /// Flushes streaming producer `k`'s transaction of `count` records:
    /// where they went.
    fn flushed(&self, k: usize, checkpoint: u64, count: u64) -> Result<wal::Written> {
        let p = &self.streaming[k];
        flush(p, FLUSH_TIMEOUT).map_err(self.what("cannot flush the transaction", Some(checkpoint)))?;
        failed_delivery(p, &self.topic, &self.node)?;
        let written = p.context().take_delivered();
        // Recovery depends on both: it reads back exactly these records.
        if written.unknown || written.count != count {
            return Err(ConnectorError::Position(format!(
                "{}: checkpoint {checkpoint}: the brokers acknowledged {} of {count} records{}, so recovery could not \
                 find them again",
                self.node,
                written.count,
                if written.unknown { " and left offsets out" } else { "" }
            )));
        }
        Ok(written)
    }

    /// A streaming producer with no transaction in flight.
    fn free(&self) -> Option<usize> {
        (0..2).find(|k| self.current != Some(*k) && !self.pending.iter().any(|p| p.producer == Some(*k)))
    }
}

/// Kafka's default `transaction.max.timeout.ms`: the longest transaction
/// timeout a broker grants unless configured otherwise.
const BROKER_MAX_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The `transaction.timeout.ms` the sink asks for when its properties set
/// none: long enough for a streaming transaction to stay open from the
/// first record after a barrier until the next checkpoint completes
/// (interval plus checkpoint timeout), within what a broker grants by
/// default. Warns (once per sink) when that cannot be, or when the
/// configured timeout is shorter.
fn transaction_timeout(factory: &KafkaSinkFactory, cx: &SinkContext<'_>) -> Option<Duration> {
    let span = cx.checkpoint_span?;
    let set = factory.spec.properties.get("transaction.timeout.ms");
    let timeout = match set {
        Some(ms) => ms.parse().ok().map(Duration::from_millis).unwrap_or(DEFAULT_TRANSACTION_TIMEOUT),
        None => span.clamp(DEFAULT_TRANSACTION_TIMEOUT, BROKER_MAX_TRANSACTION_TIMEOUT),
    };
    if timeout < span && cx.index == 0 {
        tracing::warn!(
            node = factory.node.as_str(),
            "transaction.timeout.ms ({} ms) is shorter than the checkpoint interval plus its timeout ({} ms): \
             the broker may abort a transaction before its checkpoint completes (the job then restarts from \
             its checkpoint and writes that output again); {}",
            timeout.as_millis(),
            span.as_millis(),
            match set {
                Some(_) => "raise it in the sink's `properties`",
                None =>
                    "set it in the sink's `properties` (and the brokers' transaction.max.timeout.ms), or \
                         shorten the checkpoint timeout",
            }
        );
    }
    set.is_none().then_some(timeout)
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
        self.count += records.len() as u64;
        if let Some(k) = self.current {
            return send_all(&self.streaming[k], &self.topic, rows(records), &self.node);
        }
        self.buffer.extend(records);
        // A producer is free again: it takes the interval so far.
        if let Some(k) = self.free() {
            self.begin(&self.streaming[k], None)?;
            self.current = Some(k);
            send_all(&self.streaming[k], &self.topic, self.buffer.iter(), &self.node)?;
            self.buffer = wal::Records::default();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let count = std::mem::take(&mut self.count);
        let producer = self.current.take();
        let content = match producer {
            Some(k) if count == 0 => {
                self.streaming[k]
                    .abort_transaction(FLUSH_TIMEOUT)
                    .map_err(self.what("cannot end an empty transaction", Some(checkpoint)))?;
                None
            }
            Some(k) => Some(Content::InTopic(self.flushed(k, checkpoint, count)?)),
            None if count == 0 => None,
            None => Some(Content::Records(std::mem::take(&mut self.buffer))),
        };
        if let Some(content) = content {
            let token = uuid::Uuid::new_v4().simple().to_string();
            self.pending.push(Pending { batch: wal::Batch { checkpoint, token, content }, producer });
        }
        let batches: Vec<&wal::Batch> = self.pending.iter().map(|p| &p.batch).collect();
        Ok(Some(wal::encode(&self.group, &self.base, &batches)))
    }

    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        while self.pending.first().is_some_and(|p| p.batch.checkpoint <= checkpoint) {
            let p = self.pending.remove(0);
            let producer = match (p.producer, &p.batch.content) {
                (Some(k), _) => &self.streaming[k],
                (None, Content::Records(records)) => {
                    self.begin(&self.writer, Some(p.batch.checkpoint))?;
                    send_all(&self.writer, &self.topic, records.iter(), &self.node)?;
                    &self.writer
                }
                (None, Content::InTopic(_)) => unreachable!("a batch in the topic has its producer"),
            };
            self.finish(producer, &p.batch, &self.group, &self.marker)?;
            self.base = p.batch.token;
        }
        Ok(())
    }
}
