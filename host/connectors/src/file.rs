//! JSON-lines files. Key and event time are read once, here, from JSON
//! pointers; after the source nobody parses the value to route it.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use weir_types::RecordBatch;

use crate::{ConnectorError, Result, Source, SourcePoll};

/// Where a file source's timestamps come from.
#[derive(Debug, Clone)]
pub enum FileTimestamps {
    /// The number at this JSON pointer (ms).
    Pointer(String),
    /// The wall clock at reading time.
    Ingestion,
}

struct Split {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    line: u64,
    /// Bytes consumed so far.
    offset: u64,
    done: bool,
}

/// Reads JSON lines from files; each file is a split. Instance `i` of `p`
/// reads files `i, i + p, ...`, taking a batch from each in turn.
pub struct FileSource {
    splits: Vec<Split>,
    key: Option<String>,
    timestamps: FileTimestamps,
    next: usize,
}

impl FileSource {
    /// Instance `index` of `parallelism` over `paths`.
    pub fn new(
        paths: &[PathBuf],
        key: Option<String>,
        timestamps: FileTimestamps,
        index: u32,
        parallelism: u32,
    ) -> Self {
        let splits = paths
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % parallelism == index)
            .map(|(_, p)| Split { path: p.clone(), reader: None, line: 0, offset: 0, done: false })
            .collect();
        FileSource { splits, key, timestamps, next: 0 }
    }
}

/// The record key for a JSON value: a string's bytes, any other value's
/// JSON text. The file source's `key` and an operator's `key_by` pointer both
/// use this rule.
pub fn key_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

impl Source for FileSource {
    fn splits(&self) -> usize {
        self.splits.len()
    }

    fn poll(&mut self, max: usize) -> Result<SourcePoll> {
        let n = self.splits.len();
        for _ in 0..n {
            let index = self.next;
            self.next = (self.next + 1) % n;
            let split = &mut self.splits[index];
            if split.done {
                continue;
            }
            if split.reader.is_none() {
                let mut file = File::open(&split.path).map_err(ConnectorError::io(&split.path))?;
                file.seek(SeekFrom::Start(split.offset)).map_err(ConnectorError::io(&split.path))?;
                split.reader = Some(BufReader::with_capacity(256 * 1024, file));
            }
            let reader = split.reader.as_mut().expect("opened above");
            let mut records = RecordBatch::with_capacity(max.min(4096), 64 * max.min(4096));
            let mut line = String::new();
            while records.len() < max {
                line.clear();
                let read = reader
                    .read_line(&mut line)
                    .map_err(|source| ConnectorError::Io { path: split.path.clone(), source })?;
                if read == 0 {
                    split.done = true;
                    break;
                }
                split.offset += read as u64;
                split.line += 1;
                let text = line.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                let parse_err =
                    |message: String| ConnectorError::Parse { path: split.path.clone(), line: split.line, message };
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| parse_err(format!("invalid JSON: {e}")))?;
                let key = match &self.key {
                    Some(p) => Some(key_bytes(json.pointer(p).ok_or_else(|| parse_err(format!("no key at {p}")))?)),
                    None => None,
                };
                let timestamp = match &self.timestamps {
                    FileTimestamps::Pointer(p) => json
                        .pointer(p)
                        .and_then(serde_json::Value::as_i64)
                        .ok_or_else(|| parse_err(format!("no integer timestamp (ms) at {p}")))?,
                    FileTimestamps::Ingestion => weir_types::now_ms(),
                };
                records.push(key.as_deref(), text.as_bytes(), timestamp);
            }
            if !records.is_empty() {
                return Ok(SourcePoll::Records { split: index, records });
            }
            if split.done {
                return Ok(SourcePoll::SplitDone(index));
            }
        }
        Ok(SourcePoll::End)
    }

    fn position(&self) -> serde_json::Value {
        let splits: Vec<_> = self
            .splits
            .iter()
            .map(|s| serde_json::json!({"path": s.path, "offset": s.offset, "line": s.line, "done": s.done}))
            .collect();
        serde_json::json!({ "splits": splits, "next": self.next })
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || crate::bad_position("file source", position);
        let splits = position.get("splits").and_then(|s| s.as_array()).ok_or_else(bad)?;
        if splits.len() != self.splits.len() {
            return Err(bad());
        }
        for (split, p) in self.splits.iter_mut().zip(splits) {
            if p.get("path").and_then(|v| v.as_str()) != split.path.to_str() {
                return Err(bad());
            }
            split.offset = p.get("offset").and_then(|v| v.as_u64()).ok_or_else(bad)?;
            split.line = p.get("line").and_then(|v| v.as_u64()).ok_or_else(bad)?;
            split.done = p.get("done").and_then(|v| v.as_bool()).ok_or_else(bad)?;
            split.reader = None;
        }
        self.next = position.get("next").and_then(|v| v.as_u64()).ok_or_else(bad)? as usize % self.splits.len().max(1);
        Ok(())
    }
}
