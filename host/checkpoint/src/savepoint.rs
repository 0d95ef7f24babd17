//! Savepoints: self-contained, relocatable copies of a checkpoint that are
//! never deleted automatically.
//!
//! ```text
//! SAVEPOINTS/savepoint-3f2a9c-00000012/_manifest.json   kind "savepoint", with checksums
//! SAVEPOINTS/savepoint-3f2a9c-00000012/<node>-<subtask>.state
//! SAVEPOINTS/savepoint-3f2a9c-00000012/<node>-<subtask>.pending
//! ```
//!
//! Every state file is a backend-neutral logical snapshot (a savepoint taken
//! on RocksDB restores on memory and back), every name in the manifest is
//! relative to the savepoint's directory (move or copy it and it still
//! restores), and the manifest holds each file's SHA-256, so a damaged or
//! truncated copy is refused before anything starts.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::{IN_PROGRESS, MANIFEST, StateFiles, StoreError, io, sync_dir, write_complete};
use crate::{CheckpointStore, Manifest};

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a savepoint of checkpoint `id` of run `job_id` gets.
pub fn savepoint_name(job_id: &str, id: u64) -> String {
    format!("savepoint-{}-{id:08}", &job_id[..job_id.len().min(6)])
}

/// Writes checkpoint `manifest`'s `files` as a savepoint in `dir` (which must
/// not exist): the files, their checksums in the manifest (kind
/// `savepoint`), then one rename. Refuses state that is not logical: a
/// savepoint holds no references to a checkpoint store's shared files.
pub fn write_savepoint<B: AsRef<[u8]>>(dir: &Path, manifest: &Manifest, files: &[(String, B)]) -> Result<Manifest> {
    if dir.exists() {
        return Err(StoreError::Exists { dir: dir.to_path_buf() });
    }
    let native = manifest.operators.iter().find_map(|(node, op)| {
        op.subtasks.iter().find(|s| !matches!(s.state, StateFiles::Logical { .. })).map(|_| node)
    });
    if let Some(node) = native {
        return Err(StoreError::Manifest {
            path: dir.join(MANIFEST),
            message: format!("operator `{node}` has native state: a savepoint holds logical snapshots only"),
        });
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut manifest = manifest.clone();
    manifest.kind = "savepoint".into();
    manifest.checksums = files.iter().map(|(name, bytes)| (name.clone(), sha256(bytes.as_ref()))).collect();
    write_complete(dir, &manifest, files)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(manifest)
}

/// Checks a savepoint's files against its manifest: every file it names is
/// there with the bytes it was written with.
pub fn verify_savepoint(dir: &Path, manifest: &Manifest) -> Result<()> {
    let damaged = |message: String| StoreError::Damaged { dir: dir.to_path_buf(), message };
    if manifest.checksums.is_empty() {
        return Err(damaged("its manifest lists no file checksums (it is not a savepoint)".into()));
    }
    let mut named: Vec<&str> = Vec::new();
    for op in manifest.operators.values() {
        for s in &op.subtasks {
            match &s.state {
                StateFiles::Logical { file } => named.push(file),
                StateFiles::Rocksdb { .. } => return Err(damaged("it refers to native RocksDB files".into())),
            }
        }
    }
    named.extend(manifest.sinks.values().flat_map(|s| s.subtasks.iter().map(|p| p.file.as_str())));
    if let Some(missing) = named.iter().find(|f| !manifest.checksums.contains_key(**f)) {
        return Err(damaged(format!("its manifest has no checksum for `{missing}`")));
    }
    for (file, expected) in &manifest.checksums {
        if Path::new(file).is_absolute() || file.split('/').any(|c| c == "..") {
            return Err(damaged(format!("its manifest names `{file}`, outside the savepoint")));
        }
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| damaged(format!("cannot read `{file}`: {e}")))?;
        if sha256(&bytes) != *expected {
            return Err(damaged(format!("`{file}` ({} bytes) is not the file that was written", bytes.len())));
        }
    }
    Ok(())
}

/// Reads and verifies the savepoint in `dir`.
pub fn load_savepoint(dir: &Path) -> Result<Manifest> {
    let manifest = CheckpointStore::load(dir)?;
    verify_savepoint(dir, &manifest)?;
    Ok(manifest)
}

/// The savepoints directly under `dir` (unverified; not those being
/// written), oldest first; a directory that holds none is no error.
pub fn list_savepoints(dir: &Path) -> Result<Vec<(PathBuf, Manifest)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(StoreError::Io { path: dir.to_path_buf(), source: e }),
    };
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        let in_progress = path.to_string_lossy().ends_with(IN_PROGRESS);
        if in_progress || !path.join(MANIFEST).is_file() {
            continue;
        }
        if let Ok(m) = CheckpointStore::load(&path)
            && m.kind == "savepoint"
        {
            found.push((path, m));
        }
    }
    found.sort_by(|a, b| (a.1.completed_at_ms, &a.0).cmp(&(b.1.completed_at_ms, &b.0)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{OperatorSnapshot, OperatorState, SinkSnapshot, SinkState};

    fn manifest() -> Manifest {
        let sub = OperatorSnapshot {
            subtask: 0,
            key_groups: (0, 128),
            watermark: 7,
            state: StateFiles::Logical { file: "avg-0.state".into() },
            bytes: 5,
        };
        let text = r#"{"format":2,"id":4,"kind":"checkpoint","job":"j","job_id":"abcdef0123","completed_at_ms":1,
            "duration_ms":0,"bytes":5,"incremental_bytes":5,"alignment_ms":0,"spec":"name: j","max_parallelism":128,
            "plugins":{},"finished":false,"operators":{},"sources":{},"sinks":{},"tasks":[]}"#;
        let mut m: Manifest = serde_json::from_str(text).unwrap();
        m.operators.insert("avg".into(), OperatorState { parallelism: 1, states: vec![], subtasks: vec![sub] });
        let pending = SinkSnapshot { subtask: 0, file: "out-0.pending".into() };
        m.sinks.insert("out".into(), SinkState { parallelism: 1, subtasks: vec![pending] });
        m
    }

    #[test]
    fn a_savepoint_restores_after_a_move_and_is_refused_when_damaged() {
        let root = tempfile::tempdir().unwrap();
        let files = vec![("avg-0.state".to_string(), b"state".to_vec()), ("out-0.pending".into(), b"p".to_vec())];
        let name = savepoint_name("abcdef0123", 4);
        assert_eq!(name, "savepoint-abcdef-00000004");
        let dir = root.path().join("sp").join(&name);
        let written = write_savepoint(&dir, &manifest(), &files).unwrap();
        assert_eq!(written.kind, "savepoint");
        let err = write_savepoint(&dir, &manifest(), &files).unwrap_err().to_string();
        assert_eq!(err, format!("savepoint {} already exists: a savepoint is never overwritten", dir.display()));

        let moved = root.path().join("elsewhere");
        std::fs::rename(&dir, &moved).unwrap();
        assert_eq!(load_savepoint(&moved).unwrap(), written);
        assert_eq!(list_savepoints(root.path()).unwrap(), vec![(moved.clone(), written)]);
        assert_eq!(list_savepoints(&root.path().join("none")).unwrap(), vec![]);

        std::fs::write(moved.join("avg-0.state"), b"stat").unwrap();
        let err = load_savepoint(&moved).unwrap_err().to_string();
        let tail = "nothing was restored — restore another savepoint, or a copy of this one";
        assert_eq!(
            err,
            format!(
                "savepoint {} is damaged: `avg-0.state` (4 bytes) is not the file that was written; {tail}",
                moved.display()
            )
        );
        std::fs::remove_file(moved.join("out-0.pending")).unwrap();
        std::fs::write(moved.join("avg-0.state"), b"state").unwrap();
        let err = load_savepoint(&moved).unwrap_err().to_string();
        assert!(err.contains("is damaged: cannot read `out-0.pending`: No such file or directory"), "{err}");
    }

    #[test]
    fn a_savepoint_never_holds_native_state() {
        let root = tempfile::tempdir().unwrap();
        let mut m = manifest();
        m.operators.get_mut("avg").unwrap().subtasks[0].state =
            StateFiles::Rocksdb { dir: "avg-0".into(), private: vec![], shared: BTreeMap::new() };
        let err = write_savepoint::<Vec<u8>>(&root.path().join("sp"), &m, &[]).unwrap_err().to_string();
        assert!(err.ends_with("operator `avg` has native state: a savepoint holds logical snapshots only"), "{err}");
    }
}
