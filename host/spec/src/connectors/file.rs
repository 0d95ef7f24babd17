//! `type: file`: JSON lines from files (each file a split), and JSON lines
//! into part files.

use std::path::PathBuf;

use serde::Deserialize;

use super::{FieldError, RawSource, SourceConnector};
use crate::TimestampMode;

/// One path or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Paths {
    /// One path.
    One(PathBuf),
    /// Several.
    Many(Vec<PathBuf>),
}

impl Paths {
    /// The paths as a list.
    pub fn to_vec(&self) -> Vec<PathBuf> {
        match self {
            Paths::One(p) => vec![p.clone()],
            Paths::Many(v) => v.clone(),
        }
    }
}

/// A file source's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    /// The files (each is a split), relative to the spec file.
    pub paths: Vec<PathBuf>,
    /// JSON pointer to the record key (e.g. `/id`).
    pub key: Option<String>,
    /// JSON pointer to the event timestamp in ms (e.g. `/timestamp`).
    pub timestamp: Option<String>,
}

/// A file sink's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSink {
    /// Output path (JSON lines), relative to the spec file: a file (instance
    /// `i` of several writes `NAME-i.EXT`), or with checkpoints a directory
    /// of part files.
    pub path: PathBuf,
}

pub(super) fn source_from_raw(raw: &RawSource) -> (SourceConnector, Vec<&'static str>) {
    let mut foreign: Vec<&'static str> = raw.generator_fields().collect();
    if raw.rate.is_some() {
        foreign.push("rate");
    }
    let file = FileSource {
        paths: raw.path.as_ref().map(Paths::to_vec).unwrap_or_default(),
        key: raw.key.clone(),
        timestamp: raw.timestamp.clone(),
    };
    (SourceConnector::File(file), foreign)
}

impl FileSource {
    pub(super) fn check(&self, timestamps: TimestampMode) -> Result<(), FieldError> {
        if self.paths.is_empty() {
            return Err(("path", "a file source needs `path`".into()));
        }
        for (field, pointer) in [("key", &self.key), ("timestamp", &self.timestamp)] {
            if let Some(p) = pointer
                && !p.is_empty()
                && !p.starts_with('/')
            {
                return Err((field, format!("`{p}` is not a JSON pointer (it must start with `/`, e.g. `/id`)")));
            }
        }
        if timestamps == TimestampMode::Event && self.timestamp.is_none() {
            return Err((
                "timestamp",
                "a file source with event timestamps needs a `timestamp` JSON pointer (or `timestamps: ingestion`)"
                    .into(),
            ));
        }
        Ok(())
    }
}
