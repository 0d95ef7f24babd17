//! JSON-lines files. Key and event time are read once, here, from JSON
//! pointers; after the source nobody parses the value to route it.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use weir_types::RecordBatch;

use crate::split::{RoundRobin, SplitPoll, SplitReader};
use crate::{ConnectorError, Result, Source};

/// Where a file source's timestamps come from.
#[derive(Debug, Clone)]
pub enum FileTimestamps {
    /// The number at this JSON pointer (ms).
    Pointer(String),
    /// The wall clock at reading time.
    Ingestion,
}

/// One file of a file source: a split whose identity is its path, and
/// whose position is the byte offset (and line) read up to.
pub(crate) struct FileSplit {
    id: String,
    path: PathBuf,
    reader: Option<BufReader<File>>,
    line: u64,
    /// Bytes consumed so far.
    offset: u64,
    done: bool,
    key: Option<String>,
    timestamps: FileTimestamps,
}

impl FileSplit {
    pub(crate) fn new(path: &std::path::Path, key: Option<String>, timestamps: FileTimestamps) -> Self {
        FileSplit {
            id: path.display().to_string(),
            path: path.to_path_buf(),
            reader: None,
            line: 0,
            offset: 0,
            done: false,
            key,
            timestamps,
        }
    }

    /// Moves to a checkpointed position.
    pub(crate) fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || crate::bad_position(&format!("file source split {}", self.id), position);
        self.offset = position.get("offset").and_then(|v| v.as_u64()).ok_or_else(bad)?;
        self.line = position.get("line").and_then(|v| v.as_u64()).ok_or_else(bad)?;
        self.done = position.get("done").and_then(|v| v.as_bool()).ok_or_else(bad)?;
        self.reader = None;
        Ok(())
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

impl SplitReader for FileSplit {
    fn id(&self) -> &str {
        &self.id
    }

    fn poll(&mut self, max: usize) -> Result<SplitPoll> {
        if self.done {
            return Ok(SplitPoll::Done);
        }
        if self.reader.is_none() {
            let mut file = File::open(&self.path).map_err(ConnectorError::io(&self.path))?;
            file.seek(SeekFrom::Start(self.offset)).map_err(ConnectorError::io(&self.path))?;
            self.reader = Some(BufReader::with_capacity(256 * 1024, file));
        }
        let reader = self.reader.as_mut().expect("opened above");
        let mut records = RecordBatch::with_capacity(max.min(4096), 64 * max.min(4096));
        let mut line = String::new();
        while records.len() < max {
            line.clear();
            let read =
                reader.read_line(&mut line).map_err(|source| ConnectorError::Io { path: self.path.clone(), source })?;
            if read == 0 {
                self.done = true;
                break;
            }
            self.offset += read as u64;
            self.line += 1;
            let text = line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let parse_err =
                |message: String| ConnectorError::Parse { path: self.path.clone(), line: self.line, message };
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
        match (records.is_empty(), self.done) {
            (true, true) => Ok(SplitPoll::Done),
            _ => Ok(SplitPoll::Records(records)),
        }
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!({"offset": self.offset, "line": self.line, "done": self.done})
    }
}

/// The factory of a file source: each file is a split, named by its path.
#[derive(Debug, Clone)]
pub struct FileSourceFactory {
    paths: Vec<PathBuf>,
    key: Option<String>,
    timestamps: FileTimestamps,
}

impl FileSourceFactory {
    /// From the node's spec.
    pub fn new(spec: &weir_spec::FileSource, mode: weir_spec::TimestampMode) -> Self {
        let timestamps = match (mode, &spec.timestamp) {
            (weir_spec::TimestampMode::Event, Some(p)) => FileTimestamps::Pointer(p.clone()),
            _ => FileTimestamps::Ingestion,
        };
        FileSourceFactory { paths: spec.paths.clone(), key: spec.key.clone(), timestamps }
    }
}

impl crate::SourceFactory for FileSourceFactory {
    fn splits(&self, _parallelism: u32) -> Result<Vec<String>> {
        Ok(self.paths.iter().map(|p| p.display().to_string()).collect())
    }

    fn reader(&self, splits: Vec<crate::SplitState>, next: usize, _: &weir_types::TaskInfo) -> Result<Box<dyn Source>> {
        let mut readers = Vec::with_capacity(splits.len());
        for split in splits {
            let mut reader = FileSplit::new(std::path::Path::new(&split.id), self.key.clone(), self.timestamps.clone());
            if let Some(p) = &split.position {
                reader.restore(p)?;
            }
            readers.push(reader);
        }
        Ok(Box::new(RoundRobin::new(readers, next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceFactory, SourcePoll, SplitState};

    fn drain(source: &mut dyn Source) -> Vec<weir_types::Record> {
        let mut out = Vec::new();
        loop {
            match source.poll(7).unwrap() {
                SourcePoll::Records { records, .. } => out.extend(records.to_records()),
                SourcePoll::Pending(_) | SourcePoll::SplitDone(_) => {}
                SourcePoll::End => return out,
            }
        }
    }

    #[test]
    fn each_file_resumes_from_its_position_in_any_reader() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..2)
            .map(|f| {
                let path = dir.path().join(format!("{f}.jsonl"));
                let lines: String = (0..40).map(|i| format!("{{\"k\":\"f{f}\",\"t\":{i}}}\n")).collect();
                std::fs::write(&path, lines).unwrap();
                path
            })
            .collect();
        let spec = weir_spec::FileSource { paths, key: Some("/k".into()), timestamp: Some("/t".into()) };
        let factory = FileSourceFactory::new(&spec, weir_spec::TimestampMode::Event);
        let ids = factory.splits(4).unwrap();
        let task = weir_types::TaskInfo { node: "f".into(), index: 0, parallelism: 1 };
        let fresh = |ids: &[String]| ids.iter().map(|id| SplitState { id: id.clone(), position: None }).collect();
        let mut one = factory.reader(fresh(&ids), 0, &task).unwrap();
        let all = drain(one.as_mut());
        assert_eq!(all.len(), 80);

        // Two readers, one file each, stopped part-way; one reader resumes both.
        let mut first = factory.reader(fresh(&ids[..1]), 0, &task).unwrap();
        let mut second = factory.reader(fresh(&ids[1..]), 0, &task).unwrap();
        let mut seen = Vec::new();
        for reader in [&mut first, &mut second] {
            for _ in 0..2 {
                let SourcePoll::Records { records, .. } = reader.poll(7).unwrap() else { panic!() };
                seen.extend(records.to_records());
            }
        }
        let resumed: Vec<SplitState> = [(&first, &ids[0]), (&second, &ids[1])]
            .iter()
            .map(|(r, id)| SplitState { id: (*id).clone(), position: Some(r.position(0)) })
            .collect();
        let mut merged = factory.reader(resumed, 1, &task).unwrap();
        assert_eq!(merged.split_id(0), ids[0]);
        seen.extend(drain(merged.as_mut()));
        let key = |r: &weir_types::Record| (r.key.clone(), r.timestamp);
        let (mut seen, mut all) = (seen, all);
        seen.sort_by_key(key);
        all.sort_by_key(key);
        assert_eq!(seen, all, "every line exactly once");

        let bad = SplitState { id: ids[0].clone(), position: Some(serde_json::json!({"nonsense": 1})) };
        let err = factory.reader(vec![bad], 0, &task).err().unwrap().to_string();
        assert!(err.ends_with("cannot restore from {\"nonsense\":1}"), "{err}");
    }
}
