//! The exactly-once Kafka sink's pending state: the batches pre-committed
//! at barriers and not yet committed, each with the token its
//! transaction's marker carries, and where its records are.
//!
//! A batch streamed into a transaction is kept as *where it lies in the
//! topic* ([`Written`]: per partition, the offset runs the delivery reports
//! named): a few bytes whatever the batch's size, as in Flink's Kafka sink,
//! whose state is the transaction's identity. A batch that no producer took
//! during its interval (both were busy) is kept as its records.
//!
//! Layout (little-endian): `WKS2`, the marker group and the base token
//! (each a u32 length and UTF-8), the batch count (u32), then per batch the
//! checkpoint id (u64), the token and a kind byte: `0`, records — their
//! count (u32) and per record the key length (i32, −1 for none) and key,
//! the value length (u32) and value, and the timestamp (i64); `1`, in the
//! topic — the record count (u64), the partition count (u32) and per
//! partition its id (i32), its run count (u32) and per run the first offset
//! and the one after the last (i64 each). `WKS1` (earlier builds) is the
//! same with records only and no kind byte.

use weir_types::RecordBatch;

const MAGIC: &[u8; 4] = b"WKS2";
/// Earlier builds' layout: every batch as its records.
const MAGIC_V1: &[u8; 4] = b"WKS1";

const RECORDS: u8 = 0;
const IN_TOPIC: u8 = 1;

/// Records in the pending state's encoding, appended as the sink gets
/// them: pre-committing a batch is then one copy, not an encoding pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Records {
    bytes: Vec<u8>,
    count: u32,
}

impl Records {
    pub(crate) fn push(&mut self, key: Option<&[u8]>, value: &[u8], timestamp: i64) {
        match key {
            Some(k) => {
                self.bytes.extend_from_slice(&(k.len() as i32).to_le_bytes());
                self.bytes.extend_from_slice(k);
            }
            None => self.bytes.extend_from_slice(&(-1i32).to_le_bytes()),
        }
        self.bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.extend_from_slice(&timestamp.to_le_bytes());
        self.count += 1;
    }

    pub(crate) fn extend(&mut self, records: &RecordBatch) {
        self.bytes.reserve(records.data().len() + 16 * records.len());
        for r in records.iter() {
            self.push(r.key, r.value, r.timestamp);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// Each record's key and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Option<&[u8]>, &[u8])> + '_ {
        let mut r = Reader(&self.bytes);
        // Well formed: built by `push`, or checked by `decode`.
        std::iter::from_fn(move || r.record().ok()).take(self.len()).map(|(key, value, _)| (key, value))
    }
}

/// Records pre-committed at one barrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The checkpoint whose barrier pre-committed them.
    pub(crate) checkpoint: u64,
    /// Names the batch in the marker once its transaction committed.
    pub(crate) token: String,
    pub(crate) content: Content,
}

impl Batch {
    /// How many records the batch holds.
    pub(crate) fn len(&self) -> u64 {
        match &self.content {
            Content::Records(r) => r.len() as u64,
            Content::InTopic(w) => w.count,
        }
    }
}

/// Where a batch's records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// Kept here: no producer took them during the interval.
    Records(Records),
    /// Written into the topic in the batch's transaction, at these offsets.
    InTopic(Written),
}

/// Where a producer's records went: per partition, runs of consecutive
/// offsets (`start..end`), from the delivery reports. One producer's
/// records in a partition take consecutive offsets per produce request,
/// so there are few runs, and none holds another producer's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) count: u64,
    pub(crate) runs: std::collections::BTreeMap<i32, Vec<(i64, i64)>>,
    /// A delivery report carried no offset (the broker did not say).
    pub(crate) unknown: bool,
}

impl Written {
    /// One delivered record.
    pub(crate) fn record(&mut self, partition: i32, offset: i64) {
        self.count += 1;
        if offset < 0 {
            self.unknown = true;
            return;
        }
        let runs = self.runs.entry(partition).or_default();
        match runs.last_mut() {
            Some(last) if last.1 == offset => last.1 += 1,
            _ => runs.push((offset, offset + 1)),
        }
    }
}

/// A restored pending state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The marker group the batches commit with.
    pub(crate) group: String,
    /// The marker's token when the batches were written: the batch
    /// committed last before them.
    pub(crate) base: String,
    pub(crate) batches: Vec<Batch>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The pending state's bytes.
pub(crate) fn encode(group: &str, base: &str, batches: &[&Batch]) -> Vec<u8> {
    let size: usize = batches
        .iter()
        .map(|b| match &b.content {
            Content::Records(r) => r.bytes.len(),
            Content::InTopic(w) => w.runs.values().map(|r| 16 * r.len() + 8).sum(),
        })
        .map(|n| n + 32)
        .sum();
    let mut out = Vec::with_capacity(size + group.len() + base.len() + 16);
    out.extend_from_slice(MAGIC);
    put_str(&mut out, group);
    put_str(&mut out, base);
    out.extend_from_slice(&(batches.len() as u32).to_le_bytes());
    for b in batches {
        out.extend_from_slice(&b.checkpoint.to_le_bytes());
        put_str(&mut out, &b.token);
        match &b.content {
            Content::Records(r) => {
                out.push(RECORDS);
                out.extend_from_slice(&r.count.to_le_bytes());
                out.extend_from_slice(&r.bytes);
            }
            Content::InTopic(w) => {
                out.push(IN_TOPIC);
                out.extend_from_slice(&w.count.to_le_bytes());
                out.extend_from_slice(&(w.runs.len() as u32).to_le_bytes());
                for (partition, runs) in &w.runs {
                    out.extend_from_slice(&partition.to_le_bytes());
                    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
                    for (start, end) in runs {
                        out.extend_from_slice(&start.to_le_bytes());
                        out.extend_from_slice(&end.to_le_bytes());
                    }
                }
            }
        }
    }
    out
}

/// A record read back: key, value, timestamp.
type Row<'a> = (Option<&'a [u8]>, &'a [u8], i64);

/// Reads bytes off the front of a slice, failing on a short one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the Kafka sink's pending state is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    /// One record: key, value and timestamp.
    fn record(&mut self) -> Result<Row<'a>, String> {
        let key_len = self.u32()? as i32;
        let key = if key_len < 0 { None } else { Some(self.take(key_len as usize)?) };
        let value_len = self.u32()? as usize;
        let value = self.take(value_len)?;
        let timestamp = self.u64()? as i64;
        Ok((key, value, timestamp))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "the Kafka sink's pending state is damaged".into())
    }
}

/// A pending state from its bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<Pending, String> {
    let mut r = Reader(bytes);
    let magic = r.take(4)?;
    let v1 = magic == MAGIC_V1;
    if magic != MAGIC && !v1 {
        return Err(
            "this is not a Kafka sink's pending state (is the sink's `type` the one the checkpoint had?)".into()
        );
    }
    let group = r.string()?;
    let base = r.string()?;
    let count = r.u32()?;
    let mut batches = Vec::new();
    for _ in 0..count {
        let checkpoint = r.u64()?;
        let token = r.string()?;
        let content = match if v1 { RECORDS } else { r.u8()? } {
            RECORDS => Content::Records(records(&mut r)?),
            IN_TOPIC => Content::InTopic(written(&mut r)?),
            _ => return Err("the Kafka sink's pending state is damaged".into()),
        };
        batches.push(Batch { checkpoint, token, content });
    }
    Ok(Pending { group, base, batches })
}

fn records(r: &mut Reader<'_>) -> Result<Records, String> {
    let count = r.u32()?;
    let start = r.0;
    for _ in 0..count {
        r.record()?;
    }
    Ok(Records { bytes: start[..start.len() - r.0.len()].to_vec(), count })
}

fn written(r: &mut Reader<'_>) -> Result<Written, String> {
    let count = r.u64()?;
    let mut runs = std::collections::BTreeMap::new();
    for _ in 0..r.u32()? {
        let partition = r.u32()? as i32;
        let n = r.u32()?;
        let mut list = Vec::new();
        for _ in 0..n {
            let (start, end) = (r.u64()? as i64, r.u64()? as i64);
            if start < 0 || end <= start {
                return Err("the Kafka sink's pending state is damaged".into());
            }
            list.push((start, end));
        }
        runs.insert(partition, list);
    }
    Ok(Written { count, runs, unknown: false })
}

/// The batches of `pending` the broker has not committed, given the token
/// its marker holds: all when it holds the base, those after the batch it
/// names, none when it names something later (the batches were committed
/// and more after them: a job restored from an older savepoint). All when
/// it holds nothing: the marker expired, and writing a batch again is the
/// lesser harm than losing it.
pub(crate) fn uncommitted<'a>(pending: &'a Pending, marker: &str) -> &'a [Batch] {
    if marker == pending.base || marker.is_empty() {
        return &pending.batches;
    }
    match pending.batches.iter().position(|b| b.token == marker) {
        Some(i) => &pending.batches[i + 1..],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(checkpoint: u64, token: &str, values: &[&str]) -> Batch {
        let mut batch = RecordBatch::new();
        for (i, v) in values.iter().enumerate() {
            batch.push((i % 2 == 0).then_some(b"k".as_slice()), v.as_bytes(), i as i64 - 1);
        }
        let mut records = Records::default();
        records.extend(&batch);
        Batch { checkpoint, token: token.into(), content: Content::Records(records) }
    }

    fn in_topic(checkpoint: u64, token: &str, delivered: &[(i32, i64)]) -> Batch {
        let mut written = Written::default();
        for (partition, offset) in delivered {
            written.record(*partition, *offset);
        }
        Batch { checkpoint, token: token.into(), content: Content::InTopic(written) }
    }

    #[test]
    fn pending_state_round_trips_and_refuses_damage() {
        let batches = vec![batch(3, "t3", &["a", "", "ccc"]), batch(4, "t4", &[])];
        let bytes = encode("g-0", "t2", &batches.iter().collect::<Vec<_>>());
        let back = decode(&bytes).unwrap();
        let Content::Records(records) = &back.batches[0].content else { panic!("records") };
        let read: Vec<(Option<&[u8]>, &[u8])> = records.iter().collect();
        let want: [(Option<&[u8]>, &[u8]); 3] = [(Some(b"k"), b"a"), (None, b""), (Some(b"k"), b"ccc")];
        assert_eq!(read, want);
        assert_eq!(back, Pending { group: "g-0".into(), base: "t2".into(), batches });
        assert_eq!(decode(&bytes[..bytes.len() - 1]).unwrap_err(), "the Kafka sink's pending state is truncated");
        assert!(decode(b"WPF1....").unwrap_err().starts_with("this is not a Kafka sink's pending state"));
    }

    #[test]
    fn a_batch_in_the_topic_is_its_offset_runs() {
        // Partition 1 gets offsets 5..8 and 10 (another producer wrote 8
        // and 9), partition 0 gets 0..2.
        let delivered = [(1, 5), (1, 6), (0, 0), (1, 7), (0, 1), (1, 10)];
        let b = in_topic(7, "t7", &delivered);
        let Content::InTopic(w) = &b.content else { panic!("in topic") };
        assert_eq!(w.count, 6);
        assert_eq!(w.runs, [(0, vec![(0, 2)]), (1, vec![(5, 8), (10, 11)])].into_iter().collect());
        assert_eq!(b.len(), 6);
        // Its size does not depend on the records': 16 bytes per run.
        assert_eq!(encode("g-1", "t5", &[&b]).len(), 21 + 8 + 6 + 1 + 8 + 4 + (8 + 16) + (8 + 32));
        let batches = vec![batch(6, "t6", &["a"]), b];
        let bytes = encode("g-1", "t5", &batches.iter().collect::<Vec<_>>());
        assert_eq!(decode(&bytes).unwrap(), Pending { group: "g-1".into(), base: "t5".into(), batches });
        assert_eq!(decode(&bytes[..bytes.len() - 3]).unwrap_err(), "the Kafka sink's pending state is truncated");
        // No offset in a delivery report: known, so the sink can refuse.
        let mut w = Written::default();
        w.record(0, -1);
        assert!(w.unknown);
    }

    #[test]
    fn earlier_builds_pending_state_still_reads() {
        // WKS1: group "g", base "b", one batch (checkpoint 2, token "t")
        // of one record with key "k", value "v", timestamp 9.
        let mut v1 = b"WKS1".to_vec();
        for s in ["g", "b"] {
            v1.extend_from_slice(&(s.len() as u32).to_le_bytes());
            v1.extend_from_slice(s.as_bytes());
        }
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&2u64.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(b"t");
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&1i32.to_le_bytes());
        v1.extend_from_slice(b"k");
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(b"v");
        v1.extend_from_slice(&9i64.to_le_bytes());
        let mut records = Records::default();
        records.push(Some(b"k"), b"v", 9);
        let want = Batch { checkpoint: 2, token: "t".into(), content: Content::Records(records) };
        assert_eq!(decode(&v1).unwrap(), Pending { group: "g".into(), base: "b".into(), batches: vec![want] });
    }

    #[test]
    fn the_marker_says_which_batches_are_left() {
        let pending = Pending {
            group: "g".into(),
            base: "t2".into(),
            batches: vec![batch(3, "t3", &["a"]), batch(4, "t4", &["b"])],
        };
        let checkpoints = |m: &str| uncommitted(&pending, m).iter().map(|b| b.checkpoint).collect::<Vec<_>>();
        assert_eq!(checkpoints("t2"), vec![3, 4]);
        assert_eq!(checkpoints("t3"), vec![4]);
        assert_eq!(checkpoints("t4"), Vec::<u64>::new());
        assert_eq!(checkpoints("t9"), Vec::<u64>::new());
        assert_eq!(checkpoints(""), vec![3, 4]);
    }
}
