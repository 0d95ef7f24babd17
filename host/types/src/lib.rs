//! Plain data shared by every Weir crate: records, watermarks, the messages
//! that flow between tasks (checkpoint barriers with their kind and
//! mutation among them), task identity and key groups. No I/O here.
//!
//! ```
//! use weir_types::{key_group, task_for_key_group, Record};
//!
//! let record = Record::new(Some(b"sensor_7".to_vec()), b"{}".to_vec(), 1_700_000_000_000);
//! let kg = key_group(record.key.as_deref().unwrap(), 128);
//! assert!(kg < 128);
//! assert!(task_for_key_group(kg, 4, 128) < 4);
//! ```

mod barrier;
mod batch;

use std::fmt;
use std::sync::Arc;

pub use barrier::{BarrierKind, CheckpointBarrier, Mutation, NodeUpdate};
pub use batch::{RecordBatch, RecordRef, Row};

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// The watermark that fires everything: sent at the end of bounded input.
pub const MAX_WATERMARK: Timestamp = i64::MAX;
/// The watermark before any was seen.
pub const MIN_WATERMARK: Timestamp = i64::MIN;

/// One element of a stream: an optional key, an opaque value, an event
/// timestamp and optional headers. The host never parses the value on the
/// hot path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The key, if the record was keyed.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Vec<u8>,
    /// Event time (ms).
    pub timestamp: Timestamp,
    /// Metadata a connector attaches (e.g. a Kafka partition and offset);
    /// usually empty.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record without headers.
    pub fn new(key: Option<Vec<u8>>, value: Vec<u8>, timestamp: Timestamp) -> Self {
        Record { key, value, timestamp, headers: Vec::new() }
    }
}

/// A record header: a name and opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's name.
    pub name: String,
    /// Its value.
    pub value: Vec<u8>,
}

/// Event-time progress of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watermark {
    /// No record with a timestamp at or below this will follow (records that
    /// do are late).
    EventTime(Timestamp),
    /// The input has had no data for its idle timeout; downstream operators
    /// leave it out of their minimum until it sends again.
    Idle,
}

/// What flows over a channel between tasks.
#[derive(Debug)]
pub enum Message {
    /// A batch of records, in order.
    Records(RecordBatch),
    /// Event-time progress.
    Watermark(Watermark),
    /// A checkpoint barrier: everything before it belongs to its checkpoint.
    Barrier(CheckpointBarrier),
    /// The sender finished: no more messages follow.
    EndOfData,
}

/// Which clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeDomain {
    /// Fires when the watermark reaches its time.
    EventTime,
    /// Fires when the wall clock reaches its time.
    ProcessingTime,
}

/// Identity of one parallel instance of a node; displays as `node-index/parallelism`
/// so every log line names its task.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskInfo {
    /// The node id from the job spec.
    pub node: Arc<str>,
    /// This instance's index, from 0.
    pub index: u32,
    /// The node's parallelism.
    pub parallelism: u32,
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}/{}", self.node, self.index, self.parallelism)
    }
}

/// The wall clock in ms since the epoch (processing and ingestion time).
pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Default number of key groups of a keyed node.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// The key group of a key: a stable hash (xxh3) modulo `max_parallelism`.
/// Stable across runs and versions, so state stored per key group can be
/// restored anywhere.
pub fn key_group(key: &[u8], max_parallelism: u32) -> u16 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(max_parallelism.max(1))) as u16
}

/// The task (parallel instance) that owns a key group, as in Flink:
/// `kg * parallelism / max_parallelism`.
pub fn task_for_key_group(key_group: u16, parallelism: u32, max_parallelism: u32) -> usize {
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism.max(1))) as usize
}

/// The key groups a task owns: the inverse of [`task_for_key_group`].
pub fn key_groups_of_task(task: u32, parallelism: u32, max_parallelism: u32) -> std::ops::Range<u16> {
    let start = (u64::from(task) * u64::from(max_parallelism)).div_ceil(u64::from(parallelism));
    let end = (u64::from(task + 1) * u64::from(max_parallelism)).div_ceil(u64::from(parallelism));
    start as u16..end as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_group_ranges_match_assignment() {
        for parallelism in 1..=7 {
            for kg in 0..128u16 {
                let task = task_for_key_group(kg, parallelism, 128) as u32;
                assert!(key_groups_of_task(task, parallelism, 128).contains(&kg), "kg {kg} p {parallelism}");
            }
        }
    }

    #[test]
    fn key_group_is_stable() {
        // Pinned: changing the hash would orphan every stored key group.
        let pinned: Vec<u16> = [&b"sensor_7"[..], b"sensor_8", b"", b"a"].iter().map(|k| key_group(k, 128)).collect();
        assert_eq!(pinned, vec![41, 66, 66, 31]);
        assert_eq!(key_group(b"anything", 1), 0);
    }

    #[test]
    fn task_info_names_the_task() {
        let t = TaskInfo { node: "averages".into(), index: 2, parallelism: 4 };
        assert_eq!(t.to_string(), "averages-2/4");
    }
}
