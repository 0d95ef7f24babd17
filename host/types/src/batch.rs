//! Batches of records in one buffer: how records move through Weir.
//!
//! Every key and value of a batch lives in one byte arena and each record is
//! a fixed-size [`Row`] of offsets, so building, moving, partitioning and
//! sending a batch across the Wasm boundary costs a few allocations per
//! batch rather than several per record.

use crate::{Record, Timestamp};

/// Where a record's key and value lie in its batch's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Row {
    /// Offset and length of the key, if any.
    pub key: Option<(u32, u32)>,
    /// Offset and length of the value.
    pub value: (u32, u32),
    /// Event time (ms).
    pub timestamp: Timestamp,
}

/// A borrowed record of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordRef<'a> {
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Event time (ms).
    pub timestamp: Timestamp,
}

impl RecordRef<'_> {
    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record { key: self.key.map(<[u8]>::to_vec), value: self.value.to_vec(), timestamp: self.timestamp }
    }
}

/// Records packed in one arena.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordBatch {
    data: Vec<u8>,
    rows: Vec<Row>,
}

fn span(data: &[u8], (offset, len): (u32, u32)) -> &[u8] {
    &data[offset as usize..offset as usize + len as usize]
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `rows` records and `bytes` bytes.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        RecordBatch { data: Vec::with_capacity(bytes), rows: Vec::with_capacity(rows) }
    }

    /// A batch from its parts, or `None` when a row points outside `data`
    /// (parts can come from untrusted code).
    pub fn from_parts(data: Vec<u8>, rows: Vec<Row>) -> Option<Self> {
        let fits = |(o, l): (u32, u32)| (o as usize).checked_add(l as usize).is_some_and(|end| end <= data.len());
        rows.iter().all(|r| fits(r.value) && r.key.is_none_or(fits)).then_some(RecordBatch { data, rows })
    }

    /// The parts: data and rows.
    pub fn into_parts(self) -> (Vec<u8>, Vec<Row>) {
        (self.data, self.rows)
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The data arena.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Removes every record, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.rows.clear();
    }

    fn append(&mut self, bytes: &[u8]) -> (u32, u32) {
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        (offset, bytes.len() as u32)
    }

    /// Appends a record.
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8], timestamp: Timestamp) {
        let key = key.map(|k| self.append(k));
        let value = self.append(value);
        self.rows.push(Row { key, value, timestamp });
    }

    /// Appends a record whose value `write` writes straight into the arena.
    pub fn push_with(&mut self, key: Option<&[u8]>, timestamp: Timestamp, write: impl FnOnce(&mut Vec<u8>)) {
        let key = key.map(|k| self.append(k));
        let start = self.data.len();
        write(&mut self.data);
        let value = (start as u32, (self.data.len() - start) as u32);
        self.rows.push(Row { key, value, timestamp });
    }

    /// Appends copies of every record of `other`.
    pub fn extend_from(&mut self, other: &RecordBatch) {
        if self.is_empty() {
            self.data.extend_from_slice(&other.data);
            self.rows.extend_from_slice(&other.rows);
            return;
        }
        let shift = self.data.len() as u32;
        self.data.extend_from_slice(&other.data);
        self.rows.extend(other.rows.iter().map(|r| Row {
            key: r.key.map(|(o, l)| (o + shift, l)),
            value: (r.value.0 + shift, r.value.1),
            timestamp: r.timestamp,
        }));
    }

    /// Appends a copy of a record.
    pub fn push_ref(&mut self, record: RecordRef<'_>) {
        self.push(record.key, record.value, record.timestamp);
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        self.record(&self.rows[i])
    }

    /// The record a row describes.
    pub fn record(&self, row: &Row) -> RecordRef<'_> {
        RecordRef {
            key: row.key.map(|k| span(&self.data, k)),
            value: span(&self.data, row.value),
            timestamp: row.timestamp,
        }
    }

    /// The key of record `i`.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        self.rows[i].key.map(|k| span(&self.data, k))
    }

    /// Every record, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.rows.iter().map(|r| self.record(r))
    }

    /// Sets every record's timestamp (ingestion time).
    pub fn set_timestamps(&mut self, timestamp: Timestamp) {
        self.rows.iter_mut().for_each(|r| r.timestamp = timestamp);
    }

    /// Owned copies of every record.
    pub fn to_records(&self) -> Vec<Record> {
        self.iter().map(|r| r.to_record()).collect()
    }
}

impl<'a> FromIterator<&'a Record> for RecordBatch {
    fn from_iter<I: IntoIterator<Item = &'a Record>>(iter: I) -> Self {
        let mut b = RecordBatch::new();
        for r in iter {
            b.push(r.key.as_deref(), &r.value, r.timestamp);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [Record::new(Some(b"k".to_vec()), b"v1".to_vec(), 5), Record::new(None, b"".to_vec(), -1)];
        let mut batch: RecordBatch = records.iter().collect();
        batch.push_with(Some(b"k2"), 9, |d| d.extend_from_slice(b"written"));
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.get(2).value, b"written");
        assert_eq!(batch.key(0), Some(&b"k"[..]));
        assert_eq!(&batch.to_records()[..2], &records[..]);
        let mut twice = batch.clone();
        twice.extend_from(&batch);
        assert_eq!(twice.to_records(), [batch.to_records(), batch.to_records()].concat());
    }

    #[test]
    fn rows_must_fit_the_data() {
        let row = |value| Row { key: None, value, timestamp: 0 };
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((2, 2))]).is_some());
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((2, 3))]).is_none());
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((u32::MAX, 2))]).is_none());
    }
}
