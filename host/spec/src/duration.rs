//! Durations in specs: `"5s"`, `"200ms"`, `"1m 30s"` or a number of
//! milliseconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// Parses a duration written as humantime text or as milliseconds.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)
        .map_err(|_| de::Error::custom("expected a duration such as \"5s\", \"200ms\" or a number of milliseconds"))?
    {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(text) => humantime::parse_duration(text.trim())
            .map_err(|e| de::Error::custom(format!("invalid duration {text:?}: {e}"))),
    }
}

/// The same for optional fields.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}
