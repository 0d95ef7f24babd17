//! Records as operators see them: borrowed views into the batch, and the
//! packed buffers outputs are written into.

use serde::Deserialize;

use crate::Error;
use crate::bindings::weir::plugin::types::{Row, Span};
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

fn slice(data: &[u8], s: Span) -> Option<&[u8]> {
    data.get(s.offset as usize..(s.offset as usize).checked_add(s.len as usize)?)
}

/// The record a row of a packed batch describes (`None` if the host sent a
/// span outside the buffer).
pub(crate) fn view<'a>(data: &'a [u8], row: &Row) -> Option<Record<'a>> {
    let key = match row.key {
        Some(k) => Some(slice(data, k)?),
        None => None,
    };
    Some(Record { key, value: slice(data, row.value)?, timestamp: row.timestamp })
}

/// An output batch being built: one buffer, one row per record.
#[derive(Debug, Default)]
pub(crate) struct BatchBuilder {
    pub(crate) data: Vec<u8>,
    pub(crate) rows: Vec<Row>,
}

impl BatchBuilder {
    fn append(&mut self, bytes: &[u8]) -> Span {
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        Span { offset, len: bytes.len() as u32 }
    }

    pub(crate) fn push(&mut self, key: Option<&[u8]>, value: &[u8], timestamp: i64) {
        let key = key.map(|k| self.append(k));
        let value = self.append(value);
        self.rows.push(Row { key, value, timestamp });
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
        let key_span = key.map(|k| self.append(k));
        let start = self.data.len();
        if let Err(e) = write(&mut self.data) {
            self.data.truncate(mark);
            return Err(e);
        }
        let value = Span { offset: start as u32, len: (self.data.len() - start) as u32 };
        self.rows.push(Row { key: key_span, value, timestamp });
        Ok(())
    }
}
