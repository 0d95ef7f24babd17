//! `type: kafka` on librdkafka (through `rdkafka`): a source whose splits
//! are the topics' partitions, and a sink that writes one transaction per
//! instance per checkpoint.
//!
//! What both share lives here: the client configuration, the context that
//! routes librdkafka's logs and errors to `tracing` and keeps the last
//! error for the messages a user reads, and the metadata lookups that turn
//! an unreachable cluster or a missing topic into an error naming them.

mod client;
mod exactly_once;
mod replay;
mod sink;
mod source;
mod wal;

pub(crate) use sink::KafkaSinkFactory;
pub(crate) use source::KafkaSourceFactory;

/// How long a metadata lookup (at start, and when looking for new
/// partitions) may take before the cluster counts as unreachable.
pub(crate) const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A split's identity: `topic/partition` (a topic name has no `/`).
pub(crate) fn split_id(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The topic and partition of a split id.
pub(crate) fn parse_split(id: &str) -> Option<(&str, i32)> {
    let (topic, partition) = id.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?))
}

/// The instance that reads partition `partition` of `topic` at
/// `parallelism`: each topic's partitions go round-robin from an instance
/// chosen by the topic's name (Flink's rule), so the owner of a partition
/// never depends on which other partitions exist — a partition found later
/// has its owner without asking the others.
pub(crate) fn owner(topic: &str, partition: i32, parallelism: u32) -> u32 {
    let p = u64::from(parallelism.max(1));
    let start = xxhash_rust::xxh3::xxh3_64(topic.as_bytes()) % p;
    ((start + partition.max(0) as u64) % p) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_a_topic_go_round_robin_from_a_topic_chosen_instance() {
        let owners: Vec<u32> = (0..6).map(|p| owner("sensors", p, 4)).collect();
        let first = owners[0];
        assert_eq!(owners, (0..6).map(|i| (first + i) % 4).collect::<Vec<_>>());
        assert!((0..8).all(|p| owner("t", p, 1) == 0));
        assert_eq!(parse_split(&split_id("a.b-c", 7)), Some(("a.b-c", 7)));
        assert_eq!(parse_split("nonsense"), None);
    }
}
