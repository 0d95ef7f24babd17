//! Weir's sources and sinks, one module per connector, created through the
//! registry ([`source_factory`], [`sink_factory`]) from a node's spec.
//!
//! A source has *splits* with identities (a file's path, a generator
//! partition): a [`SourceFactory`] names the splits of a fresh start and
//! creates [`Source`] readers for any set of them, each split resuming from
//! its checkpointed position, so a checkpoint restores at another
//! parallelism. A [`Sink`] writes batches and owns its two-phase commit: it
//! pre-commits at a barrier (returning opaque pending state for the
//! checkpoint), commits when told the checkpoint completed, and is handed
//! the restored pending state when it starts. Connectors are plain
//! synchronous code; the runtime drives them.
//!
//! ```
//! use weir_connectors::{source_factory, Source, SourcePoll};
//!
//! let spec = weir_spec::JobSpec::parse(
//!     "name: demo\nsources: [{id: r, type: generator, generator: sensor-bench, events: 3}]\nsinks: [{id: o, type: blackhole, input: r}]\n",
//!     weir_spec::Format::Yaml,
//! ).unwrap();
//! let factory = source_factory(&spec.sources[0], &spec.name);
//! let splits = factory.splits(1).unwrap();
//! assert_eq!(splits, vec!["part-0-of-1".to_string()]);
//! let task = weir_types::TaskInfo { node: "r".into(), index: 0, parallelism: 1 };
//! let fresh = splits.into_iter().map(|id| weir_connectors::SplitState { id, position: None }).collect();
//! let mut reader = factory.reader(fresh, 0, &task).unwrap();
//! let SourcePoll::Records { records, .. } = reader.poll(10).unwrap() else { panic!() };
//! assert_eq!(records.len(), 3);
//! assert_eq!(records.key(1), Some(&b"sensor_1"[..]));
//! assert_eq!(reader.poll(10).unwrap(), SourcePoll::SplitDone(0));
//! ```

pub mod file;
pub mod generator;
mod kafka;
mod parts;
mod registry;
pub mod sink;
mod split;

use std::path::PathBuf;
use std::time::Duration;

use weir_types::RecordBatch;

pub use parts::PartFileSink;
pub use registry::{sink_factory, source_factory};
pub use sink::{BlackholeSink, FileSink, Sink, StdoutSink};

/// Errors of sources and sinks.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A checkpointed source position does not fit the source.
    #[error("{0}")]
    Position(String),
    /// A Kafka client call failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// librdkafka's error (boxed: it is large, and errors are rare).
        source: Box<rdkafka::error::KafkaError>,
    },
    /// An external system is not as the job needs it: unreachable, a
    /// missing topic, refused credentials.
    #[error("{0}")]
    Unavailable(String),
    /// A record from an external system could not be used.
    #[error("{at}: {message}")]
    Record {
        /// Where it is (e.g. `topic/partition offset 17`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A line of input could not be used.
    #[error("{path} line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

impl ConnectorError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
        move |source| ConnectorError::Io { path: path.to_path_buf(), source }
    }
}

/// `Result` with [`ConnectorError`].
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// What a source has for the runtime.
#[derive(Debug, PartialEq, Eq)]
pub enum SourcePoll {
    /// Records of one split, in split order.
    Records {
        /// Index of the split among the reader's (from 0 to `splits() - 1`).
        split: usize,
        /// The records.
        records: RecordBatch,
    },
    /// Nothing now (rate limit or no new data); poll again after this long.
    Pending(Duration),
    /// A split has ended; its watermark goes to the maximum.
    SplitDone(usize),
    /// Every split has ended.
    End,
}

/// One parallel reader of a source: it reads the splits it was given and
/// hands out batches tagged with their split, so the runtime can track
/// watermarks per split.
pub trait Source: Send {
    /// How many splits this reader reads.
    fn splits(&self) -> usize;
    /// The identity of split `split` (stable across runs and parallelism:
    /// what a checkpoint keys its position by).
    fn split_id(&self, split: usize) -> &str;
    /// The next batch of at most `max` records, or what else is going on.
    fn poll(&mut self, max: usize) -> Result<SourcePoll>;
    /// Where split `split` is between two polls, for a checkpoint.
    fn position(&self, split: usize) -> serde_json::Value;
    /// The split the reader polls next (so a restore continues the same
    /// interleaving of its splits).
    fn next_split(&self) -> usize;
    /// At the barrier of checkpoint `checkpoint`, before its positions are
    /// read.
    fn barrier(&mut self, checkpoint: u64) {
        let _ = checkpoint;
    }
    /// Checkpoint `checkpoint` completed (a Kafka source commits its
    /// offsets to the consumer group then, for monitoring).
    fn committed(&mut self, checkpoint: u64) {
        let _ = checkpoint;
    }
    /// How many records its splits are behind the end of their input, when
    /// the source knows (a Kafka source: from the client's statistics).
    fn lag(&self) -> Option<u64> {
        None
    }
}

/// A split handed to a reader: its identity and, after a restore, where it
/// was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitState {
    /// The split's identity.
    pub id: String,
    /// Its checkpointed position (`None`: from the start).
    pub position: Option<serde_json::Value>,
}

/// Creates the readers of one source node.
pub trait SourceFactory: Send + Sync {
    /// The splits of a fresh start with `parallelism` readers, in order.
    fn splits(&self, parallelism: u32) -> Result<Vec<String>>;
    /// The reader that reads split `split`, the `index`-th of the job's
    /// split list, at `parallelism` (by default `index % parallelism`). A
    /// source whose readers find splits on their own (new Kafka
    /// partitions) decides by the split alone.
    fn owner(&self, split: &str, index: usize, parallelism: u32) -> u32 {
        let _ = split;
        index as u32 % parallelism
    }
    /// Reader `task.index` of `splits`, starting with split `next`.
    fn reader(&self, splits: Vec<SplitState>, next: usize, task: &weir_types::TaskInfo) -> Result<Box<dyn Source>>;
}

/// Where a sink instance starts.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    /// This instance's index.
    pub index: u32,
    /// The sink's parallelism.
    pub parallelism: u32,
    /// Whether the job checkpoints: output must then become visible only
    /// when a checkpoint completes (two-phase commit).
    pub exactly_once: bool,
    /// With checkpoints: the checkpoint interval plus its timeout, the
    /// longest a transaction opened after a barrier may wait for its commit.
    pub checkpoint_span: Option<std::time::Duration>,
    /// The pending states a restored checkpoint holds for this instance to
    /// commit (or discard): of the old instances `k` with
    /// `k % parallelism == index`, as `(k, bytes)`.
    pub restored: &'a [(u32, Vec<u8>)],
}

/// Creates the instances of one sink node.
pub trait SinkFactory: Send + Sync {
    /// Instance `cx.index`, with the restored pending state committed.
    fn open(&self, cx: &SinkContext<'_>) -> Result<Box<dyn Sink>>;
}

/// The error for a checkpointed position a source cannot use.
pub(crate) fn bad_position(what: &str, position: &serde_json::Value) -> ConnectorError {
    ConnectorError::Position(format!("{what}: cannot restore from {position}"))
}
