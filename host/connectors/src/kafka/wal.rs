//! The exactly-once Kafka sink's pending state: the batches of records
//! pre-committed at barriers and not yet committed, each with the token
//! its transaction's marker carries.
//!
//! Layout (little-endian): `WKS1`, the marker group and the base token
//! (each a u32 length and UTF-8), the batch count (u32), then per batch the
//! checkpoint id (u64), the token, the record count (u32) and per record
//! the key length (i32, −1 for none) and key, the value length (u32) and
//! value, and the timestamp (i64).

use weir_types::RecordBatch;

const MAGIC: &[u8; 4] = b"WKS1";

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

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
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
    pub(crate) records: Records,
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
    let size: usize = batches.iter().map(|b| b.records.bytes.len() + b.token.len() + 16).sum();
    let mut out = Vec::with_capacity(size + group.len() + base.len() + 16);
    out.extend_from_slice(MAGIC);
    put_str(&mut out, group);
    put_str(&mut out, base);
    out.extend_from_slice(&(batches.len() as u32).to_le_bytes());
    for b in batches {
        out.extend_from_slice(&b.checkpoint.to_le_bytes());
        put_str(&mut out, &b.token);
        out.extend_from_slice(&b.records.count.to_le_bytes());
        out.extend_from_slice(&b.records.bytes);
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
    if r.take(4)? != MAGIC {
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
        let count = r.u32()?;
        let start = r.0;
        for _ in 0..count {
            r.record()?;
        }
        let bytes = start[..start.len() - r.0.len()].to_vec();
        batches.push(Batch { checkpoint, token, records: Records { bytes, count } });
    }
    Ok(Pending { group, base, batches })
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
        Batch { checkpoint, token: token.into(), records }
    }

    #[test]
    fn pending_state_round_trips_and_refuses_damage() {
        let batches = vec![batch(3, "t3", &["a", "", "ccc"]), batch(4, "t4", &[])];
        let bytes = encode("g-0", "t2", &batches.iter().collect::<Vec<_>>());
        let back = decode(&bytes).unwrap();
        let read: Vec<(Option<&[u8]>, &[u8])> = back.batches[0].records.iter().collect();
        let want: [(Option<&[u8]>, &[u8]); 3] = [(Some(b"k"), b"a"), (None, b""), (Some(b"k"), b"ccc")];
        assert_eq!(read, want);
        assert_eq!(back, Pending { group: "g-0".into(), base: "t2".into(), batches });
        assert_eq!(decode(&bytes[..bytes.len() - 1]).unwrap_err(), "the Kafka sink's pending state is truncated");
        assert!(decode(b"WPF1....").unwrap_err().starts_with("this is not a Kafka sink's pending state"));
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
