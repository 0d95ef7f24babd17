//! Batches of records in one buffer: how records move through Weir.
//!
//! Every key and value of a batch lives in one byte arena and each record is
//! a fixed-size [`Row`] of offsets, so building, moving, partitioning and
//! sending a batch across the Wasm boundary costs a few allocations per
//! batch rather than several per record. Headers (connector metadata such
//! as a Kafka partition and offset) are kept beside the rows, and only
//! when some record of the batch has any.

use crate::{Header, Record, Timestamp};

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
    /// Headers (empty for most records).
    pub headers: &'a [Header],
}

impl RecordRef<'_> {
    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.to_vec(),
            timestamp: self.timestamp,
            headers: self.headers.to_vec(),
        }
    }
}

/// Records packed in one arena.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordBatch {
    data: Vec<u8>,
    rows: Vec<Row>,
    /// Each row's headers, when some row has any.
    headers: Option<Vec<Vec<Header>>>,
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
        RecordBatch { data: Vec::with_capacity(bytes), rows: Vec::with_capacity(rows), headers: None }
    }

    /// A batch from its parts, or `None` when a row points outside `data`
    /// (parts can come from untrusted code).
    pub fn from_parts(data: Vec<u8>, rows: Vec<Row>) -> Option<Self> {
        let fits = |(o, l): (u32, u32)| (o as usize).checked_add(l as usize).is_some_and(|end| end <= data.len());
        rows.iter().all(|r| fits(r.value) && r.key.is_none_or(fits)).then_some(RecordBatch {
            data,
            rows,
            headers: None,
        })
    }

    /// The parts: data and rows (headers are dropped).
    pub fn into_parts(self) -> (Vec<u8>, Vec<Row>) {
        (self.data, self.rows)
    }

    /// Moves the data arena out, leaving the rows (which point into it):
    /// for lending the bytes to a call that takes them owned, without a
    /// copy. Reading records before [`restore_data`](Self::restore_data)
    /// panics.
    pub fn take_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }

    /// Puts back the arena [`take_data`](Self::take_data) moved out.
    pub fn restore_data(&mut self, data: Vec<u8>) {
        self.data = data;
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
        self.headers = None;
    }

    /// Whether some record has headers.
    pub fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    /// Keeps the headers column as long as the rows (a record pushed
    /// without headers gets none).
    fn pad_headers(&mut self) {
        if let Some(h) = &mut self.headers {
            h.resize_with(self.rows.len(), Vec::new);
        }
    }

    /// Sets the headers of the last record pushed.
    pub fn set_last_headers(&mut self, headers: Vec<Header>) {
        if headers.is_empty() && self.headers.is_none() {
            return;
        }
        let rows = self.rows.len();
        let column = self.headers.get_or_insert_with(Vec::new);
        column.resize_with(rows, Vec::new);
        if let Some(last) = column.last_mut() {
            *last = headers;
        }
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
        self.pad_headers();
    }

    /// Appends a record whose value `write` writes straight into the arena.
    pub fn push_with(&mut self, key: Option<&[u8]>, timestamp: Timestamp, write: impl FnOnce(&mut Vec<u8>)) {
        let key = key.map(|k| self.append(k));
        let start = self.data.len();
        write(&mut self.data);
        let value = (start as u32, (self.data.len() - start) as u32);
        self.rows.push(Row { key, value, timestamp });
        self.pad_headers();
    }

    /// Appends copies of every record of `other`.
    pub fn extend_from(&mut self, other: &RecordBatch) {
        if other.headers.is_some() || self.headers.is_some() {
            let before = self.rows.len();
            let column = self.headers.get_or_insert_with(Vec::new);
            column.resize_with(before, Vec::new);
            match &other.headers {
                Some(h) => column.extend_from_slice(h),
                None => column.resize_with(before + other.rows.len(), Vec::new),
            }
        }
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

    /// Appends a copy of a record, headers included.
    pub fn push_ref(&mut self, record: RecordRef<'_>) {
        self.push(record.key, record.value, record.timestamp);
        if !record.headers.is_empty() {
            self.set_last_headers(record.headers.to_vec());
        }
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        self.record(i, &self.rows[i])
    }

    /// The record row `i` describes.
    fn record(&self, i: usize, row: &Row) -> RecordRef<'_> {
        RecordRef {
            key: row.key.map(|k| span(&self.data, k)),
            value: span(&self.data, row.value),
            timestamp: row.timestamp,
            headers: self.headers.as_ref().map_or(&[][..], |h| &h[i]),
        }
    }

    /// The key of record `i`.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        self.rows[i].key.map(|k| span(&self.data, k))
    }

    /// Every record, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.rows.iter().enumerate().map(|(i, r)| self.record(i, r))
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
            if !r.headers.is_empty() {
                b.set_last_headers(r.headers.clone());
            }
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
    fn headers_follow_their_records() {
        let header = Header { name: "partition".into(), value: b"3".to_vec() };
        let mut plain = RecordBatch::new();
        plain.push(Some(b"a"), b"1", 1);
        let mut with = RecordBatch::new();
        with.push(Some(b"b"), b"2", 2);
        with.set_last_headers(vec![header.clone()]);
        assert!(!plain.has_headers() && with.has_headers());
        let mut both = plain.clone();
        both.extend_from(&with);
        both.push(None, b"3", 3);
        let headers: Vec<&[Header]> = both.iter().map(|r| r.headers).collect();
        assert_eq!(headers, vec![&[][..], &[header.clone()][..], &[][..]]);
        let mut copied = RecordBatch::new();
        both.iter().for_each(|r| copied.push_ref(r));
        assert_eq!(copied, both);
        assert_eq!(both.to_records()[1].headers, vec![header]);
        both.clear();
        assert!(!both.has_headers());
    }

    #[test]
    fn rows_must_fit_the_data() {
        let row = |value| Row { key: None, value, timestamp: 0 };
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((2, 2))]).is_some());
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((2, 3))]).is_none());
        assert!(RecordBatch::from_parts(vec![0; 4], vec![row((u32::MAX, 2))]).is_none());
    }
}
