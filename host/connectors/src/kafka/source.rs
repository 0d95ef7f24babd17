//! The Kafka source: every partition of the topics is a split, read from
//! its own librdkafka queue, so the runtime keeps a watermark per
//! partition. Offsets live in the checkpoint (the next offset to read, and
//! in bounded mode where to stop); after a checkpoint completes they are
//! also committed to the consumer group, for lag monitoring only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use weir_spec::{KafkaFormat, KafkaSource, StartFrom, StartName, StopAt, TimestampMode, Topics};
use weir_types::{RecordBatch, TaskInfo, Timestamp};

use super::client::{self, Context, kafka};
use super::{METADATA_TIMEOUT, owner, parse_split, split_id};
use crate::{ConnectorError, Result, Source, SourcePoll, SplitState};

/// How long an idle reader waits before polling its queues again.
const IDLE_WAIT: Duration = Duration::from_millis(2);

/// `type: kafka` sources.
#[derive(Clone)]
pub(crate) struct KafkaSourceFactory {
    spec: KafkaSource,
    node: String,
    group: String,
    /// The `topics: {pattern}` regex, anchored.
    pattern: Option<regex::Regex>,
    ingestion: bool,
}

impl KafkaSourceFactory {
    pub(crate) fn new(spec: &KafkaSource, timestamps: TimestampMode, job: &str, node: &str) -> Self {
        let pattern = match &spec.topics {
            Some(Topics::Pattern { pattern }) => regex::Regex::new(&format!("^(?:{pattern})$")).ok(),
            _ => None,
        };
        KafkaSourceFactory {
            spec: spec.clone(),
            node: node.to_string(),
            group: spec.group_id.clone().unwrap_or_else(|| format!("weir-{job}-{node}")),
            pattern,
            ingestion: timestamps == TimestampMode::Ingestion,
        }
    }

    fn consumer(&self) -> Result<BaseConsumer<Context>> {
        let eof = if self.spec.stop_at.is_some() { "true" } else { "false" };
        let ours = [
            ("group.id", self.group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", eof),
            // An offset the log no longer has (retention) resumes at the
            // oldest it has, not at its end.
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            // Partition ends for the lag metric.
            ("statistics.interval.ms", "1000"),
        ];
        let config = client::config(&self.spec.bootstrap, &ours, &self.spec.properties);
        client::consumer(&self.node, &config)
    }

    /// Every partition of the source's topics, sorted.
    fn partitions(&self, consumer: &BaseConsumer<Context>, timeout: Duration) -> Result<Vec<(String, i32)>> {
        let bootstrap = &self.spec.bootstrap;
        let topics: Vec<(String, Vec<i32>)> = match (&self.spec.topics, &self.pattern) {
            (Some(Topics::Pattern { .. }), Some(pattern)) => client::matching(consumer, bootstrap, pattern, timeout)?,
            (Some(Topics::One(t)), _) => vec![(t.clone(), client::partitions_of(consumer, bootstrap, t, timeout)?)],
            (Some(Topics::List(list)), _) => list
                .iter()
                .map(|t| Ok((t.clone(), client::partitions_of(consumer, bootstrap, t, timeout)?)))
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        let mut all: Vec<(String, i32)> =
            topics.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect();
        all.sort();
        Ok(all)
    }

    /// Where a fresh partition starts, per `start_from`; `watermarks` gives
    /// a partition's low and high watermarks.
    fn start_offsets(
        &self,
        consumer: &BaseConsumer<Context>,
        fresh: &[(String, i32)],
        mut watermarks: impl FnMut(&str, i32) -> Result<(i64, i64)>,
    ) -> Result<Vec<i64>> {
        let bootstrap = &self.spec.bootstrap;
        let mut list = TopicPartitionList::new();
        match self.spec.start_from {
            StartFrom::Named(StartName::Earliest) => fresh.iter().map(|(t, p)| Ok(watermarks(t, *p)?.0)).collect(),
            StartFrom::Named(StartName::Latest) => fresh.iter().map(|(t, p)| Ok(watermarks(t, *p)?.1)).collect(),
            StartFrom::Named(StartName::Committed) => {
                for (t, p) in fresh {
                    list.add_partition(t, *p);
                }
                let committed = consumer
                    .committed_offsets(list, METADATA_TIMEOUT)
                    .map_err(kafka(format!("cannot read the committed offsets of group {}", self.group)))?;
                fresh
                    .iter()
                    .map(|(t, p)| match committed.find_partition(t, *p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => Ok(o),
                        _ => Ok(watermarks(t, *p)?.0),
                    })
                    .collect()
            }
            StartFrom::Timestamp { timestamp } => {
                for (t, p) in fresh {
                    list.add_partition_offset(t, *p, Offset::Offset(timestamp)).map_err(kafka("bad partition"))?;
                }
                let found = consumer
                    .offsets_for_times(list, METADATA_TIMEOUT)
                    .map_err(|e| client::failed(consumer, bootstrap, &e))?;
                fresh
                    .iter()
                    .map(|(t, p)| {
                        let elem = found.find_partition(t, *p);
                        match elem.as_ref().map(|e| (e.offset(), e.error())) {
                            Some((Offset::Offset(o), Ok(()))) => Ok(o),
                            // No record at or after the time: the end.
                            Some((Offset::End, Ok(()))) => Ok(watermarks(t, *p)?.1),
                            Some((_, Err(e))) => Err(kafka(format!("cannot look up offsets by time in {t}/{p}"))(e)),
                            other => Err(ConnectorError::Unavailable(format!(
                                "looking up offsets by time in {t}/{p} gave {other:?}"
                            ))),
                        }
                    })
                    .collect()
            }
        }
    }
}

impl crate::SourceFactory for KafkaSourceFactory {
    fn splits(&self, _parallelism: u32) -> Result<Vec<String>> {
        let consumer = self.consumer()?;
        let partitions = self.partitions(&consumer, METADATA_TIMEOUT)?;
        if partitions.is_empty() {
            tracing::warn!(node = self.node.as_str(), "no topic matches the source's pattern yet");
        }
        Ok(partitions.iter().map(|(t, p)| split_id(t, *p)).collect())
    }

    fn owner(&self, split: &str, index: usize, parallelism: u32) -> u32 {
        match parse_split(split) {
            Some((topic, partition)) => owner(topic, partition, parallelism),
            None => index as u32 % parallelism,
        }
    }

    fn reader(&self, splits: Vec<SplitState>, next: usize, task: &TaskInfo) -> Result<Box<dyn Source>> {
        let consumer = Arc::new(self.consumer()?);
        let mut parts = Vec::with_capacity(splits.len());
        let mut fresh = Vec::new();
        for split in &splits {
            let (topic, partition) = parse_split(&split.id).ok_or_else(|| {
                ConnectorError::Position(format!("`{}` is not a Kafka split (topic/partition)", split.id))
            })?;
            let (offset, stop) = match &split.position {
                Some(p) => {
                    let bad = || crate::bad_position(&format!("kafka source split {}", split.id), p);
                    let offset = p.get("offset").and_then(|v| v.as_i64()).ok_or_else(bad)?;
                    (offset, p.get("stop").and_then(|v| v.as_i64()))
                }
                None => {
                    fresh.push((parts.len(), (topic.to_string(), partition)));
                    (0, None)
                }
            };
            parts.push(PartitionState { id: split.id.clone(), topic: topic.to_string(), partition, offset, stop });
        }
        // Each fresh partition's watermarks, asked for once (for its start
        // and, bounded, its stop).
        let mut marks: HashMap<(String, i32), (i64, i64)> = HashMap::new();
        let mut watermarks = |topic: &str, partition: i32| -> Result<(i64, i64)> {
            if let Some(m) = marks.get(&(topic.to_string(), partition)) {
                return Ok(*m);
            }
            let m = consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .map_err(|e| client::failed(&consumer, &self.spec.bootstrap, &e))?;
            marks.insert((topic.to_string(), partition), m);
            Ok(m)
        };
        let fresh_ids: Vec<(String, i32)> = fresh.iter().map(|(_, tp)| tp.clone()).collect();
        let starts = self.start_offsets(&consumer, &fresh_ids, &mut watermarks)?;
        for ((i, (topic, partition)), start) in fresh.iter().zip(starts) {
            parts[*i].offset = start;
            if self.spec.stop_at == Some(StopAt::Latest) {
                parts[*i].stop = Some(watermarks(topic, *partition)?.1);
            }
        }
        let discovery = match self.spec.stop_at {
            // A bounded source reads what existed at start.
            Some(_) => None,
            None => Some(self.spec.discovery_interval),
        };
        let mut reader = KafkaReader {
            factory: self.clone(),
            consumer,
            parts: Vec::new(),
            next: 0,
            task: task.clone(),
            discovery,
            last_discovery: Instant::now(),
            barriers: VecDeque::new(),
            pace: self.spec.rate.map(|r| (r / f64::from(task.parallelism.max(1)), Instant::now(), 0)),
        };
        reader.add(parts)?;
        reader.next = if reader.parts.is_empty() { 0 } else { next % reader.parts.len() };
        Ok(Box::new(reader))
    }
}

/// A partition's identity and position, before it is assigned.
struct PartitionState {
    id: String,
    topic: String,
    partition: i32,
    /// The next offset to read.
    offset: i64,
    /// Bounded: the offset it ends at.
    stop: Option<i64>,
}

/// A partition being read.
struct Partition {
    state: PartitionState,
    queue: rdkafka::consumer::base_consumer::PartitionQueue<Context>,
    /// It reached `stop` (reported to the runtime).
    done: bool,
}

/// One parallel reader of a Kafka source.
struct KafkaReader {
    factory: KafkaSourceFactory,
    consumer: Arc<BaseConsumer<Context>>,
    parts: Vec<Partition>,
    next: usize,
    task: TaskInfo,
    /// How often to look for new partitions (unbounded only).
    discovery: Option<Duration>,
    last_discovery: Instant,
    /// The offsets at each barrier whose checkpoint has not completed.
    barriers: VecDeque<(u64, TopicPartitionList)>,
    /// `rate`: this instance's records per second, since when, how many.
    pace: Option<(f64, Instant, u64)>,
}

impl KafkaReader {
    /// Starts reading `parts` (each from its own queue).
    fn add(&mut self, parts: Vec<PartitionState>) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for state in parts {
            let done = state.stop.is_some_and(|stop| state.offset >= stop);
            tracing::info!(task = %self.task, split = state.id.as_str(), offset = state.offset, stop = ?state.stop, "reading");
            let queue = self.consumer.split_partition_queue(&state.topic, state.partition).ok_or_else(|| {
                ConnectorError::Position(format!(
                    "cannot read partition {} of topic `{}`",
                    state.partition, state.topic
                ))
            })?;
            if !done {
                list.add_partition_offset(&state.topic, state.partition, Offset::Offset(state.offset))
                    .map_err(kafka("bad partition"))?;
            }
            self.parts.push(Partition { state, queue, done });
        }
        if list.count() > 0 {
            self.consumer
                .incremental_assign(&list)
                .map_err(kafka(format!("cannot assign partitions to {}", self.task)))?;
        }
        Ok(())
    }

    /// New partitions (and topics, for a pattern) that this instance owns.
    fn discover(&mut self) -> Result<()> {
        let Some(every) = self.discovery else { return Ok(()) };
        if self.last_discovery.elapsed() < every {
            return Ok(());
        }
        self.last_discovery = Instant::now();
        let found = match self.factory.partitions(&self.consumer, Duration::from_secs(2)) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(task = %self.task, "looking for new Kafka partitions failed: {e}");
                return Ok(());
            }
        };
        let new: Vec<PartitionState> = found
            .into_iter()
            .filter(|(t, p)| owner(t, *p, self.task.parallelism) == self.task.index)
            .filter(|(t, p)| !self.parts.iter().any(|x| x.state.topic == *t && x.state.partition == *p))
            .map(|(topic, partition)| {
                tracing::info!(task = %self.task, topic, partition, "reading a new Kafka partition from its start");
                PartitionState { id: split_id(&topic, partition), topic, partition, offset: 0, stop: None }
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        // A partition found after the start is read from its beginning.
        let mut with_start = Vec::with_capacity(new.len());
        for mut state in new {
            let (low, _) = self
                .consumer
                .fetch_watermarks(&state.topic, state.partition, METADATA_TIMEOUT)
                .map_err(|e| client::failed(&self.consumer, &self.factory.spec.bootstrap, &e))?;
            state.offset = low;
            with_start.push(state);
        }
        self.add(with_start)
    }

    /// Errors on the consumer's own queue (not of one partition).
    fn serve(&mut self) -> Result<()> {
        while let Some(event) = self.consumer.poll(Duration::ZERO) {
            match event {
                Ok(message) => {
                    // Not expected (every partition has its own queue).
                    tracing::debug!(task = %self.task, topic = message.topic(), "message on the main queue");
                }
                Err(e) => self.check(e)?,
            }
        }
        Ok(())
    }

    /// A consumer error: fatal ones fail the task, others are retried by
    /// librdkafka and only logged.
    fn check(&self, error: KafkaError) -> Result<()> {
        use rdkafka::types::RDKafkaErrorCode as Code;
        let fatal = matches!(
            error.rdkafka_error_code(),
            Some(
                Code::UnknownTopicOrPartition
                    | Code::UnknownTopic
                    | Code::UnknownPartition
                    | Code::TopicAuthorizationFailed
                    | Code::GroupAuthorizationFailed
                    | Code::SaslAuthenticationFailed
                    | Code::Authentication
                    | Code::Fatal
            )
        ) || matches!(error, KafkaError::MessageConsumptionFatal(_));
        if fatal {
            return Err(ConnectorError::Kafka {
                what: format!("{} cannot read from Kafka", self.task),
                source: Box::new(error),
            });
        }
        tracing::warn!(task = %self.task, "Kafka consumer: {error}");
        Ok(())
    }

    /// Every partition's next offset.
    fn offsets(&self) -> TopicPartitionList {
        let mut offsets = TopicPartitionList::new();
        for p in &self.parts {
            let _ = offsets.add_partition_offset(&p.state.topic, p.state.partition, Offset::Offset(p.state.offset));
        }
        offsets
    }

    /// Where partition `i` is after an end-of-partition event (past any
    /// transaction markers).
    fn position_of(&self, i: usize) -> Option<i64> {
        let p = &self.parts[i].state;
        let positions = self.consumer.position().ok()?;
        match positions.find_partition(&p.topic, p.partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    /// Up to `max` records of partition `i`.
    fn read(&mut self, i: usize, max: usize) -> Result<RecordBatch> {
        let mut records = RecordBatch::with_capacity(max.min(1024), 128 * max.min(1024));
        let mut eof = false;
        let format = self.factory.spec.format;
        while records.len() < max {
            let part = &self.parts[i];
            let Some(event) = part.queue.poll(Duration::ZERO) else { break };
            match event {
                Ok(message) => {
                    let offset = message.offset();
                    if part.state.stop.is_some_and(|stop| offset >= stop) {
                        let stop = part.state.stop.expect("checked");
                        self.parts[i].state.offset = stop;
                        break;
                    }
                    push(&mut records, &message, format, &self.factory, &part.state)?;
                    self.parts[i].state.offset = offset + 1;
                }
                Err(KafkaError::PartitionEOF(_)) => {
                    eof = true;
                    break;
                }
                Err(e) => self.check(e)?,
            }
        }
        if eof
            && self.parts[i].state.stop.is_some()
            && let Some(position) = self.position_of(i)
        {
            let state = &mut self.parts[i].state;
            state.offset = state.offset.max(position);
        }
        Ok(records)
    }
}

/// Appends a Kafka record as a Weir record.
fn push(
    records: &mut RecordBatch,
    message: &BorrowedMessage<'_>,
    format: KafkaFormat,
    factory: &KafkaSourceFactory,
    state: &PartitionState,
) -> Result<()> {
    let value = message.payload().unwrap_or_default();
    let record_time = || message.timestamp().to_millis().unwrap_or_else(weir_types::now_ms);
    let (key, timestamp): (Option<std::borrow::Cow<'_, [u8]>>, Timestamp) = match format {
        KafkaFormat::Raw => (message.key().map(Into::into), record_time()),
        KafkaFormat::Json if factory.spec.key.is_none() && factory.spec.timestamp.is_none() => {
            (message.key().map(Into::into), record_time())
        }
        KafkaFormat::Json => {
            let bad = |what: String| ConnectorError::Record {
                at: format!("{} offset {}", state.id, message.offset()),
                message: what,
            };
            let json: serde_json::Value =
                serde_json::from_slice(value).map_err(|e| bad(format!("invalid JSON: {e}")))?;
            let key = match &factory.spec.key {
                Some(p) => {
                    Some(crate::file::key_bytes(json.pointer(p).ok_or_else(|| bad(format!("no key at {p}")))?).into())
                }
                None => message.key().map(Into::into),
            };
            let timestamp = match &factory.spec.timestamp {
                Some(p) => json
                    .pointer(p)
                    .and_then(serde_json::Value::as_i64)
                    .ok_or_else(|| bad(format!("no integer timestamp (ms) at {p}")))?,
                None => record_time(),
            };
            (key, timestamp)
        }
    };
    let timestamp = if factory.ingestion { weir_types::now_ms() } else { timestamp };
    records.push(key.as_deref(), value, timestamp);
    Ok(())
}

impl Source for KafkaReader {
    fn splits(&self) -> usize {
        self.parts.len()
    }

    fn split_id(&self, split: usize) -> &str {
        &self.parts[split].state.id
    }

    fn poll(&mut self, max: usize) -> Result<SourcePoll> {
        self.serve()?;
        self.discover()?;
        let mut max = max;
        if let Some((rate, since, sent)) = self.pace {
            let allowed = (since.elapsed().as_secs_f64() * rate) as u64;
            if allowed <= sent {
                return Ok(SourcePoll::Pending(Duration::from_secs_f64((1.0 / rate).min(0.01))));
            }
            max = max.min((allowed - sent) as usize);
        }
        let n = self.parts.len();
        for _ in 0..n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            if self.parts[i].done {
                continue;
            }
            let records = self.read(i, max)?;
            if let Some((_, _, sent)) = &mut self.pace {
                *sent += records.len() as u64;
            }
            if !records.is_empty() {
                return Ok(SourcePoll::Records { split: i, records });
            }
            let state = &self.parts[i].state;
            if state.stop.is_some_and(|stop| state.offset >= stop) {
                self.parts[i].done = true;
                return Ok(SourcePoll::SplitDone(i));
            }
        }
        if self.discovery.is_none() && self.parts.iter().all(|p| p.done) {
            // The ends, for the group: a later `start_from: committed` goes
            // on from here.
            let offsets = self.offsets();
            if offsets.count() > 0
                && let Err(e) = self.consumer.commit(&offsets, CommitMode::Sync)
            {
                tracing::warn!(task = %self.task, "committing offsets to group {} failed: {e}", self.factory.group);
            }
            return Ok(SourcePoll::End);
        }
        Ok(SourcePoll::Pending(IDLE_WAIT))
    }

    fn position(&self, split: usize) -> serde_json::Value {
        let state = &self.parts[split].state;
        match state.stop {
            Some(stop) => serde_json::json!({"offset": state.offset, "stop": stop}),
            None => serde_json::json!({"offset": state.offset}),
        }
    }

    fn next_split(&self) -> usize {
        self.next
    }

    fn lag(&self) -> Option<u64> {
        let context = self.consumer.context();
        let mut known = false;
        let mut lag = 0u64;
        for p in self.parts.iter().filter(|p| !p.done) {
            if let Some(end) = context.end(&p.state.topic, p.state.partition) {
                known = true;
                lag += (end - p.state.offset).max(0) as u64;
            }
        }
        (known || self.parts.iter().all(|p| p.done)).then_some(lag)
    }

    fn barrier(&mut self, checkpoint: u64) {
        let offsets = self.offsets();
        self.barriers.push_back((checkpoint, offsets));
    }

    fn committed(&mut self, checkpoint: u64) {
        let mut newest = None;
        while self.barriers.front().is_some_and(|(id, _)| *id <= checkpoint) {
            newest = self.barriers.pop_front().map(|(_, offsets)| offsets);
        }
        // For lag monitoring only: the checkpoint is what a restore uses.
        if let Some(offsets) = newest
            && offsets.count() > 0
            && let Err(e) = self.consumer.commit(&offsets, CommitMode::Async)
        {
            tracing::warn!(task = %self.task, "committing offsets to group {} failed: {e}", self.factory.group);
        }
    }
}
