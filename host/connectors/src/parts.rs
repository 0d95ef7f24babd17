//! The exactly-once file sink: JSON lines in part files that become visible
//! only when the checkpoint covering them completes (two-phase commit).
//!
//! Instance `i` writes `DIR/.part-<i>-<seq>.inprogress`. At a checkpoint
//! barrier the part is synced and renamed `.part-<i>-<seq>.pending`
//! (pre-commit); when the checkpoint completes the runtime renames it
//! `part-<i>-<seq>.jsonl` (commit). On recovery the parts the restored
//! checkpoint lists are committed and every other pending or in-progress
//! part of the instance is deleted: the replay writes them again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use weir_types::RecordBatch;

use crate::sink::Sink;
use crate::{ConnectorError, Result};

/// Parts pre-committed at a barrier, to commit when its checkpoint completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingParts {
    /// The sink's directory.
    pub dir: PathBuf,
    /// Pending part names (in `dir`), in order.
    pub parts: Vec<String>,
    /// The sequence number the instance's next part will have.
    pub next_part: u64,
}

fn pending_name(index: u32, seq: u64) -> String {
    format!(".part-{index}-{seq:06}.pending")
}

fn in_progress_name(index: u32, seq: u64) -> String {
    format!(".part-{index}-{seq:06}.inprogress")
}

/// The visible name of a pending part.
fn committed_name(pending: &str) -> Option<String> {
    let stem = pending.strip_prefix('.')?.strip_suffix(".pending")?;
    Some(format!("{stem}.jsonl"))
}

/// Commits pending parts: renames each to its visible name. Parts already
/// committed are skipped, so committing twice is harmless.
pub fn commit_parts(dir: &Path, parts: &[String]) -> Result<()> {
    for part in parts {
        let Some(visible) = committed_name(part) else {
            return Err(ConnectorError::Position(format!("{part} is not a pending part name")));
        };
        let (from, to) = (dir.join(part), dir.join(&visible));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
            Err(e) => return Err(ConnectorError::Io { path: from, source: e }),
        }
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(ConnectorError::io(dir))
}

/// One instance of the part-file sink.
#[derive(Debug)]
pub struct PartFileSink {
    dir: PathBuf,
    index: u32,
    next_part: u64,
    current: Option<(String, BufWriter<File>)>,
}

impl PartFileSink {
    /// Instance `index` in `dir`. `next_part` is where a restored checkpoint
    /// left off (`None` on a fresh start: after the instance's last committed
    /// part). Pending and in-progress parts of this instance that nothing
    /// will commit are deleted.
    pub fn open(dir: &Path, index: u32, next_part: Option<u64>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(ConnectorError::io(dir))?;
        let mut last_committed: Option<u64> = None;
        for entry in std::fs::read_dir(dir).map_err(ConnectorError::io(dir))? {
            let entry = entry.map_err(ConnectorError::io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = format!("part-{index}-");
            if let Some(rest) = name.strip_prefix(&format!(".{ours}")) {
                if rest.ends_with(".pending") || rest.ends_with(".inprogress") {
                    std::fs::remove_file(entry.path()).map_err(ConnectorError::io(&entry.path()))?;
                }
            } else if let Some(seq) = name.strip_prefix(&ours).and_then(|r| r.strip_suffix(".jsonl"))
                && let Ok(seq) = seq.parse::<u64>()
            {
                last_committed = Some(last_committed.map_or(seq, |l| l.max(seq)));
            }
        }
        let next_part = next_part.unwrap_or_else(|| last_committed.map_or(0, |l| l + 1));
        Ok(PartFileSink { dir: dir.to_path_buf(), index, next_part, current: None })
    }
}

impl Sink for PartFileSink {
    fn write(&mut self, records: &RecordBatch) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.current.is_none() {
            let name = in_progress_name(self.index, self.next_part);
            let path = self.dir.join(&name);
            let file = File::create(&path).map_err(ConnectorError::io(&path))?;
            self.current = Some((name, BufWriter::with_capacity(256 * 1024, file)));
        }
        let (name, out) = self.current.as_mut().expect("opened above");
        for r in records.iter() {
            out.write_all(r.value)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|source| ConnectorError::Io { path: self.dir.join(&*name), source })?;
        }
        Ok(())
    }

    /// Closes the part being written (if any) as pending and returns the
    /// parts to commit with the checkpoint being taken.
    fn pre_commit(&mut self) -> Result<Option<PendingParts>> {
        let mut parts = Vec::new();
        if let Some((name, mut out)) = self.current.take() {
            let path = self.dir.join(&name);
            out.flush().map_err(ConnectorError::io(&path))?;
            let file =
                out.into_inner().map_err(|e| ConnectorError::Io { path: path.clone(), source: e.into_error() })?;
            file.sync_all().map_err(ConnectorError::io(&path))?;
            let pending = pending_name(self.index, self.next_part);
            std::fs::rename(&path, self.dir.join(&pending)).map_err(ConnectorError::io(&path))?;
            parts.push(pending);
            self.next_part += 1;
        }
        Ok(Some(PendingParts { dir: self.dir.clone(), parts, next_part: self.next_part }))
    }

    /// Part files become visible only through [`pre_commit`](Sink::pre_commit)
    /// and [`commit_parts`]; flushing writes buffered lines to the part.
    fn flush(&mut self) -> Result<()> {
        if let Some((name, out)) = &mut self.current {
            out.flush().map_err(|source| ConnectorError::Io { path: self.dir.join(&*name), source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lines: &[&str]) -> RecordBatch {
        let mut b = RecordBatch::new();
        for l in lines {
            b.push(None, l.as_bytes(), 0);
        }
        b
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }

    #[test]
    fn parts_become_visible_only_on_commit_and_recovery_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = PartFileSink::open(dir.path(), 0, None).unwrap();
        sink.write(&batch(&["a", "b"])).unwrap();
        assert_eq!(names(dir.path()), vec![".part-0-000000.inprogress"]);
        let first = sink.pre_commit().unwrap().unwrap();
        assert_eq!(first.parts, vec![".part-0-000000.pending"]);
        assert_eq!(first.next_part, 1);
        assert!(sink.pre_commit().unwrap().unwrap().parts.is_empty(), "nothing written since");
        sink.write(&batch(&["c"])).unwrap();
        let second = sink.pre_commit().unwrap().unwrap();
        sink.write(&batch(&["d"])).unwrap();
        sink.flush().unwrap();
        commit_parts(dir.path(), &first.parts).unwrap();
        commit_parts(dir.path(), &first.parts).unwrap();
        assert_eq!(
            names(dir.path()),
            vec![".part-0-000001.pending", ".part-0-000002.inprogress", "part-0-000000.jsonl"]
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("part-0-000000.jsonl")).unwrap(), "a\nb\n");
        // A crash; the checkpoint of `second` never completed: recover from `first`.
        drop(sink);
        let mut again = PartFileSink::open(dir.path(), 0, Some(first.next_part)).unwrap();
        assert_eq!(names(dir.path()), vec!["part-0-000000.jsonl"]);
        again.write(&batch(&["c"])).unwrap();
        assert_eq!(again.pre_commit().unwrap().unwrap().parts, second.parts);
        // A fresh start continues after the last committed part.
        assert_eq!(PartFileSink::open(dir.path(), 0, None).unwrap().next_part, 1);
    }
}
