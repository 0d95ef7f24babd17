//! Weir's sources and sinks.
//!
//! A [`Source`] instance reads one or more *splits* (a file, a generator
//! partition) and hands out batches of records tagged with their split, so
//! the runtime can track watermarks per split. A [`Sink`] writes batches.
//! Connectors are plain synchronous code; the runtime drives them.
//!
//! ```
//! use weir_connectors::{generator::SensorBench, Source, SourcePoll};
//!
//! let mut source = SensorBench::new(3, 0, 1);
//! let SourcePoll::Records { records, .. } = source.poll(10).unwrap() else { panic!() };
//! assert_eq!(records.len(), 3);
//! assert_eq!(records.key(1), Some(&b"sensor_1"[..]));
//! assert_eq!(source.poll(10).unwrap(), SourcePoll::SplitDone(0));
//! ```

pub mod file;
pub mod generator;
mod parts;
pub mod sink;

use std::path::PathBuf;
use std::time::Duration;

use weir_types::RecordBatch;

pub use parts::{PartFileSink, PendingParts, commit_parts};
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
        /// Index of the split (from 0 to `splits() - 1`).
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

/// One parallel instance of a source.
pub trait Source: Send {
    /// How many splits this instance reads.
    fn splits(&self) -> usize;
    /// The next batch of at most `max` records, or what else is going on.
    fn poll(&mut self, max: usize) -> Result<SourcePoll>;
    /// Where the source is between two polls, for a checkpoint.
    fn position(&self) -> serde_json::Value;
    /// Rewinds a fresh source to a position that [`position`](Self::position) returned.
    fn restore(&mut self, position: &serde_json::Value) -> Result<()>;
}

/// The error for a checkpointed position a source cannot use.
pub(crate) fn bad_position(what: &str, position: &serde_json::Value) -> ConnectorError {
    ConnectorError::Position(format!("{what}: cannot restore from {position}"))
}
