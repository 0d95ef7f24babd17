//! Helpers on the WIT `record` type.

use serde::{Serialize, de::DeserializeOwned};

use crate::codec::{Bin, Codec, Json};
use crate::{Error, Record};

impl Record {
    /// A record with a key, a value and an event timestamp (ms).
    pub fn new(key: Option<Vec<u8>>, value: Vec<u8>, timestamp: i64) -> Self {
        Record { key, value, timestamp }
    }

    /// The key as UTF-8, if there is a key and it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_deref().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Decodes the value with codec `C`.
    pub fn decode<C: Codec, T: DeserializeOwned>(&self) -> Result<T, Error> {
        C::decode(&self.value)
    }

    /// Decodes the value as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Json::decode(&self.value)
    }

    /// Decodes the value with the binary codec.
    pub fn bin<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Bin::decode(&self.value)
    }

    /// A copy of this record's envelope (key, timestamp) with a new value.
    pub fn with_value(&self, value: Vec<u8>) -> Record {
        Record { key: self.key.clone(), value, timestamp: self.timestamp }
    }

    /// Encodes `value` with codec `C` into a record with this envelope.
    pub fn with_encoded<C: Codec, T: Serialize + ?Sized>(&self, value: &T) -> Result<Record, Error> {
        Ok(self.with_value(C::encode(value)?))
    }
}
