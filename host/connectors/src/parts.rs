//! The exactly-once file sink: JSON lines in part files that become visible
//! only when the checkpoint covering them completes (two-phase commit).
//!
//! Instance `i` writes `DIR/.part-<i>-<seq>.inprogress`. At a checkpoint
//! barrier the part is synced and renamed `.part-<i>-<seq>.pending`
//! (pre-commit), and the instance's pending state — every pending part not
//! yet committed, and the next sequence number — goes into the checkpoint.
//! When the checkpoint completes the sink renames its pending parts
//! `part-<i>-<seq>.jsonl` (commit). On recovery each instance commits the
//! parts the restored checkpoint lists for the old instances it takes over
//! (`k % parallelism == i`), and deletes every other pending or in-progress
//! part of those instances: the replay writes them again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_types::RecordBatch;

use crate::sink::Sink;
use crate::{ConnectorError, Result, SinkContext};

/// What an instance stores with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingState {
    /// The instance that wrote the parts.
    index: u32,
    /// Pending part names (in the sink's directory), in order.
    parts: Vec<String>,
    /// The sequence number of the instance's next part.
    next_part: u64,
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

/// The instance and sequence number of a part name (any of its forms).
fn part_of(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix('.').unwrap_or(name).strip_prefix("part-")?;
    let (index, rest) = rest.split_once('-')?;
    let seq = rest.split('.').next()?;
    Some((index.parse().ok()?, seq.parse().ok()?))
}

/// Commits pending parts: renames each to its visible name. Parts already
/// committed are skipped, so committing twice is harmless. A restore
/// (`restoring`) also skips a part that is in neither form: another sink
/// wrote it — a job started from a savepoint with a sink directory of its
/// own (a fork) — and committed it there.
fn commit_parts(dir: &Path, parts: &[String], restoring: bool) -> Result<()> {
    for part in parts {
        let Some(visible) = committed_name(part) else {
            return Err(ConnectorError::Position(format!("{part} is not a pending part name")));
        };
        let (from, to) = (dir.join(part), dir.join(&visible));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && restoring => {
                tracing::info!(part = %part, dir = %dir.display(), "a restored pending part is not in this sink's directory (another sink wrote it): skipped");
            }
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
    /// Pre-committed parts not yet committed, with their checkpoint.
    pending: Vec<(u64, String)>,
}

impl PartFileSink {
    /// Instance `cx.index` in `dir`: commits the parts `cx.restored` lists,
    /// deletes the uncommitted parts nothing will commit of the instances it
    /// takes over, and continues after its own restored (or, on a fresh
    /// start, last committed) part.
    pub fn open(dir: &Path, cx: &SinkContext<'_>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(ConnectorError::io(dir))?;
        let mut next_part = None;
        for (old, bytes) in cx.restored {
            let state: PendingState = serde_json::from_slice(bytes).map_err(|e| {
                ConnectorError::Position(format!("file sink instance {old}: unreadable pending state: {e}"))
            })?;
            commit_parts(dir, &state.parts, true)?;
            if state.index == cx.index {
                next_part = Some(state.next_part);
            }
        }
        let mut last_committed: Option<u64> = None;
        for entry in std::fs::read_dir(dir).map_err(ConnectorError::io(dir))? {
            let entry = entry.map_err(ConnectorError::io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((index, seq)) = part_of(&name) else { continue };
            if index % cx.parallelism != cx.index {
                continue;
            }
            if name.starts_with('.') {
                std::fs::remove_file(entry.path()).map_err(ConnectorError::io(&entry.path()))?;
            } else if index == cx.index && name.ends_with(".jsonl") {
                last_committed = Some(last_committed.map_or(seq, |l| l.max(seq)));
            }
        }
        let next_part = next_part.unwrap_or_else(|| last_committed.map_or(0, |l| l + 1));
        Ok(PartFileSink { dir: dir.to_path_buf(), index: cx.index, next_part, current: None, pending: Vec::new() })
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

    /// Closes the part being written (if any) as pending; returns every
    /// part still to commit.
    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        if let Some((name, mut out)) = self.current.take() {
            let path = self.dir.join(&name);
            out.flush().map_err(ConnectorError::io(&path))?;
            let file =
                out.into_inner().map_err(|e| ConnectorError::Io { path: path.clone(), source: e.into_error() })?;
            file.sync_all().map_err(ConnectorError::io(&path))?;
            let pending = pending_name(self.index, self.next_part);
            std::fs::rename(&path, self.dir.join(&pending)).map_err(ConnectorError::io(&path))?;
            self.pending.push((checkpoint, pending));
            self.next_part += 1;
        }
        let state = PendingState {
            index: self.index,
            parts: self.pending.iter().map(|(_, p)| p.clone()).collect(),
            next_part: self.next_part,
        };
        Ok(Some(serde_json::to_vec(&state).expect("pending state serializes")))
    }

    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        let due: Vec<String> = self.pending.iter().filter(|(c, _)| *c <= checkpoint).map(|(_, p)| p.clone()).collect();
        if due.is_empty() {
            return Ok(());
        }
        commit_parts(&self.dir, &due, false)?;
        self.pending.retain(|(c, _)| *c > checkpoint);
        Ok(())
    }

    /// Part files become visible only through a checkpoint's commit;
    /// flushing writes buffered lines to the part.
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

    fn open(dir: &Path, index: u32, parallelism: u32, restored: &[(u32, Vec<u8>)]) -> PartFileSink {
        PartFileSink::open(
            dir,
            &SinkContext { index, parallelism, exactly_once: true, checkpoint_span: None, restored },
        )
        .unwrap()
    }

    #[test]
    fn parts_become_visible_only_on_commit_and_recovery_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(dir.path(), 0, 1, &[]);
        sink.write(&batch(&["a", "b"])).unwrap();
        assert_eq!(names(dir.path()), vec![".part-0-000000.inprogress"]);
        let first = sink.pre_commit(1).unwrap().unwrap();
        sink.write(&batch(&["c"])).unwrap();
        let second = sink.pre_commit(2).unwrap().unwrap();
        assert_eq!(names(dir.path()), vec![".part-0-000000.pending", ".part-0-000001.pending"]);
        sink.write(&batch(&["d"])).unwrap();
        sink.flush().unwrap();
        sink.commit(1).unwrap();
        sink.commit(1).unwrap();
        assert_eq!(
            names(dir.path()),
            vec![".part-0-000001.pending", ".part-0-000002.inprogress", "part-0-000000.jsonl"]
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("part-0-000000.jsonl")).unwrap(), "a\nb\n");
        // Checkpoint 2 (pending state `second`) completed, and the process
        // died before the sink committed: the restore commits it.
        drop(sink);
        let mut again = open(dir.path(), 0, 1, &[(0, second.clone())]);
        assert_eq!(names(dir.path()), vec!["part-0-000000.jsonl", "part-0-000001.jsonl"]);
        again.write(&batch(&["d"])).unwrap();
        assert_eq!(
            again.pre_commit(3).unwrap().unwrap(),
            br#"{"index":0,"parts":[".part-0-000002.pending"],"next_part":3}"#
        );
        // A crash after checkpoint 1 only: part 1 is written again.
        drop(again);
        let again = open(dir.path(), 0, 1, &[(0, first)]);
        assert_eq!(again.next_part, 1);
        assert_eq!(names(dir.path()), vec!["part-0-000000.jsonl", "part-0-000001.jsonl"]);
        // A fresh start continues after the last committed part.
        assert_eq!(open(dir.path(), 0, 1, &[]).next_part, 2);
    }

    #[test]
    fn an_aborted_checkpoint_s_parts_are_committed_with_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = open(dir.path(), 0, 1, &[]);
        sink.write(&batch(&["a"])).unwrap();
        sink.pre_commit(1).unwrap(); // checkpoint 1 times out
        sink.write(&batch(&["b"])).unwrap();
        let state = sink.pre_commit(2).unwrap().unwrap();
        assert_eq!(state, br#"{"index":0,"parts":[".part-0-000000.pending",".part-0-000001.pending"],"next_part":2}"#);
        sink.commit(2).unwrap();
        assert_eq!(names(dir.path()), vec!["part-0-000000.jsonl", "part-0-000001.jsonl"]);
    }

    #[test]
    fn at_another_parallelism_instances_take_over_the_old_ones_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mut states = Vec::new();
        for index in 0..3 {
            let mut sink = open(dir.path(), index, 3, &[]);
            sink.write(&batch(&["x"])).unwrap();
            states.push((index, sink.pre_commit(1).unwrap().unwrap()));
            sink.write(&batch(&["lost"])).unwrap();
            sink.flush().unwrap();
        }
        // Restored at parallelism 2: instance 0 takes over 0 and 2, instance 1 takes over 1.
        let zero: Vec<_> = states.iter().filter(|(k, _)| k % 2 == 0).cloned().collect();
        let one: Vec<_> = states.iter().filter(|(k, _)| k % 2 == 1).cloned().collect();
        let first = open(dir.path(), 0, 2, &zero);
        let second = open(dir.path(), 1, 2, &one);
        assert_eq!((first.next_part, second.next_part), (1, 1));
        assert_eq!(names(dir.path()), vec!["part-0-000000.jsonl", "part-1-000000.jsonl", "part-2-000000.jsonl"]);
    }
}
