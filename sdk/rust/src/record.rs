//! Records as operators see them: borrowed views into the batch, and the
//! packed buffers outputs are written into.

use serde::Deserialize;

use crate::Error;
#[cfg(feature = "operator")]
use crate::bindings::weir::plugin::types::RecordBatch;
use crate::codec::{Bin, Codec, Json};

/// One record of the batch being processed: a view into the batch's buffer
/// (no copy). Decode what you need from it; emit through the
/// [`Context`](crate::Context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key, if the stream is keyed.
    pub key: Option<&'a [u8]>,
    /// The payload.
    pub value: &'a [u8],
    /// Event time (ms).
    pub timestamp: i64,
}

impl<'a> Record<'a> {
    /// The key as UTF-8, if there is a key and it is valid UTF-8.
    pub fn key_str(&self) -> Option<&'a str> {
        self.key.and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Decodes the value with codec `C`, borrowing from it where `T` allows.
    pub fn decode<C: Codec, T: Deserialize<'a>>(&self) -> Result<T, Error> {
        C::decode(self.value)
    }

    /// Decodes the value as JSON.
    pub fn json<T: Deserialize<'a>>(&self) -> Result<T, Error> {
        Json::decode(self.value)
    }

    /// Decodes the value with the binary codec.
    pub fn bin<T: Deserialize<'a>>(&self) -> Result<T, Error> {
        Bin::decode(self.value)
    }
}

/// The key length that means "no key".
const NO_KEY: u32 = u32::MAX;

fn slice(data: &[u8], offset: u32, len: u32) -> Option<&[u8]> {
    data.get(offset as usize..(offset as usize).checked_add(len as usize)?)
}

/// Record `i` of a packed batch (`None` if the host sent a span outside the
/// buffer).
#[cfg(feature = "operator")]
pub(crate) fn view(batch: &RecordBatch, i: usize) -> Option<Record<'_>> {
    view_parts(&batch.data, &batch.spans, &batch.timestamps, i)
}

/// Record `i` of a packed batch given as its parts.
pub(crate) fn view_parts<'a>(data: &'a [u8], spans: &[u32], timestamps: &[i64], i: usize) -> Option<Record<'a>> {
    let s = spans.get(i * 4..i * 4 + 4)?;
    let key = if s[1] == NO_KEY { None } else { Some(slice(data, s[0], s[1])?) };
    Some(Record { key, value: slice(data, s[2], s[3])?, timestamp: *timestamps.get(i)? })
}

/// An output batch being built: one buffer, flat spans and timestamps.
#[cfg(feature = "operator")]
#[derive(Debug, Default)]
pub(crate) struct BatchBuilder {
    data: Vec<u8>,
    spans: Vec<u32>,
    timestamps: Vec<i64>,
}

#[cfg(feature = "operator")]
impl BatchBuilder {
    fn append(&mut self, bytes: &[u8]) -> (u32, u32) {
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        (offset, bytes.len() as u32)
    }

    pub(crate) fn push(&mut self, key: Option<&[u8]>, value: &[u8], timestamp: i64) {
        let (ko, kl) = key.map(|k| self.append(k)).unwrap_or((0, NO_KEY));
        let (vo, vl) = self.append(value);
        self.spans.extend_from_slice(&[ko, kl, vo, vl]);
        self.timestamps.push(timestamp);
    }

    /// Appends a record whose value `write` encodes into the buffer; on
    /// error nothing is appended.
    pub(crate) fn push_with(
        &mut self,
        key: Option<&[u8]>,
        timestamp: i64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mark = self.data.len();
        let (ko, kl) = key.map(|k| self.append(k)).unwrap_or((0, NO_KEY));
        let start = self.data.len();
        if let Err(e) = write(&mut self.data) {
            self.data.truncate(mark);
            return Err(e);
        }
        self.spans.extend_from_slice(&[ko, kl, start as u32, (self.data.len() - start) as u32]);
        self.timestamps.push(timestamp);
        Ok(())
    }

    pub(crate) fn finish(self) -> RecordBatch {
        RecordBatch { data: self.data, spans: self.spans, timestamps: self.timestamps }
    }
}
