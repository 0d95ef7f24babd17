//! Payload and state encodings.
//!
//! How a record's value or a state's content is encoded is the plugin's
//! choice. [`Json`] is readable and what sources and sinks speak at the edges
//! of a job; [`Bin`] (postcard, a compact serde format) is several times
//! faster and smaller, and is the default for state.

use serde::{Serialize, de::DeserializeOwned};

use crate::Error;

/// A serde-based encoding for record values and state.
pub trait Codec: 'static {
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error>;
    /// Decodes a value.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error>;
}

/// JSON, via serde_json.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|e| Error::new(format!("JSON encoding failed: {e}")))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::new(format!("invalid JSON: {e}")))
    }
}

/// A compact binary encoding (postcard). Not self-describing: both sides
/// must agree on the type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bin;

impl Codec for Bin {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
        postcard::to_allocvec(value).map_err(|e| Error::new(format!("binary encoding failed: {e}")))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
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
    /// Encodes with the chosen codec.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, Error> {
        match self {
            Encoding::Json => Json::encode(value),
            Encoding::Binary => Bin::encode(value),
        }
    }

    /// Decodes with the chosen codec.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, Error> {
        match self {
            Encoding::Json => Json::decode(bytes),
            Encoding::Binary => Bin::decode(bytes),
        }
    }
}
