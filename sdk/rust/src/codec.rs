//! Payload and state encodings.
//!
//! How a record's value or a state's content is encoded is the plugin's
//! choice. [`Json`] is readable and what sources and sinks speak at the edges
//! of a job; [`Bin`] (postcard, a compact serde format) is several times
//! faster and smaller, and is the default for state.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A serde-based encoding for record values and state.
pub trait Codec: 'static {
    /// Appends the encoding of a value to `out`.
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Decodes a value, borrowing from `bytes` where the type allows.
    fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error>;
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        Self::encode_into(value, &mut out)?;
        Ok(out)
    }
}

/// JSON, via serde_json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        serde_json::to_writer(out, value).map_err(|e| Error::new(format!("JSON encoding failed: {e}")))
    }

    fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::new(format!("invalid JSON: {e}")))
    }
}

/// A compact binary encoding (postcard). Not self-describing: both sides
/// must agree on the type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bin;

/// A postcard output that appends straight to a `Vec` (postcard's own
/// `to_extend` pushes byte by byte through `Extend`).
struct AppendTo<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Codec for Bin {
    fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        postcard::serialize_with_flavor(value, AppendTo(out))
            .map_err(|e| Error::new(format!("binary encoding failed: {e}")))
    }

    fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
        postcard::from_bytes(bytes).map_err(|e| Error::new(format!("invalid binary value: {e}")))
    }
}

/// An encoding chosen at run time, for plugins whose config picks one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// [`Json`].
    #[default]
    Json,
    /// [`Bin`].
    Binary,
}

impl Encoding {
    /// Appends the encoding of a value to `out` with the chosen codec.
    pub fn encode_into<T: Serialize + ?Sized>(self, value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Encoding::Json => Json::encode_into(value, out),
            Encoding::Binary => Bin::encode_into(value, out),
        }
    }

    /// Encodes with the chosen codec.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Decodes with the chosen codec, borrowing where the type allows.
    pub fn decode<'de, T: Deserialize<'de>>(self, bytes: &'de [u8]) -> Result<T, Error> {
        match self {
            Encoding::Json => Json::decode(bytes),
            Encoding::Binary => Bin::decode(bytes),
        }
    }
}
