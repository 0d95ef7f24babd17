//! What window functions ([`Aggregate`](crate::Aggregate),
//! [`ProcessWindow`](crate::ProcessWindow)) see of their setup and of a
//! window.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Given to a window function's `init`: its config and where it runs.
#[derive(Debug, Clone)]
pub struct WindowInit {
    pub(crate) node_id: String,
    pub(crate) config: String,
    pub(crate) subtask_index: u32,
    pub(crate) parallelism: u32,
    pub(crate) attempt: u32,
}

impl WindowInit {
    /// From the fields of the worlds' `init-context`.
    pub(crate) fn new(node_id: String, config: String, subtask_index: u32, parallelism: u32, attempt: u32) -> Self {
        WindowInit { node_id, config, subtask_index, parallelism, attempt }
    }

    /// The job node id this instance runs for.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// This instance's index among the node's parallel instances.
    pub fn subtask_index(&self) -> u32 {
        self.subtask_index
    }

    /// The node's parallelism.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    /// How many times the job restarted after a failure before this start.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The node's `config` from the job spec, deserialized (a missing config
    /// deserializes from `null`).
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.config).map_err(|e| Error::new(format!("invalid config: {e}")))
    }
}

/// A window of one key: the half-open interval `[start, end)` of event time
/// in milliseconds. Count windows have no bounds (`start` is `i64::MIN`,
/// `end` is `i64::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window<'a> {
    /// The key the window belongs to.
    pub key: &'a [u8],
    /// First instant of the window.
    pub start: i64,
    /// First instant after the window.
    pub end: i64,
}

impl<'a> Window<'a> {
    /// The key as UTF-8 (lossy: invalid bytes become U+FFFD).
    pub fn key_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.key)
    }

    /// The last instant in the window (`end - 1`), the timestamp of its
    /// results.
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }
}

/// Byte strings packed in one buffer, as the `items` WIT record holds them.
#[derive(Default)]
pub(crate) struct ItemsBuilder {
    pub(crate) data: Vec<u8>,
    pub(crate) spans: Vec<u32>,
}

impl ItemsBuilder {
    /// Appends an item written by `write`.
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        let start = self.data.len();
        if let Err(e) = write(&mut self.data) {
            self.data.truncate(start);
            return Err(e);
        }
        self.spans.extend_from_slice(&[start as u32, (self.data.len() - start) as u32]);
        Ok(())
    }
}

/// Item `i` of packed items (`None` if the host sent a span outside the
/// buffer).
#[cfg(feature = "aggregate")]
pub(crate) fn item<'a>(data: &'a [u8], spans: &[u32], i: usize) -> Option<&'a [u8]> {
    let s = spans.get(i * 2..i * 2 + 2)?;
    data.get(s[0] as usize..(s[0] as usize).checked_add(s[1] as usize)?)
}
