//! The checkpoint directory.
//!
//! ```text
//! DIR/chk-00000007/_manifest.json     the manifest (written last)
//! DIR/chk-00000007/<node>-<subtask>.state   a logical state snapshot
//! DIR/chk-00000007/<node>-<subtask>/        a RocksDB checkpoint's private files
//! DIR/chk-00000007/<node>-<subtask>.pending a sink's pending state
//! DIR/shared/<id>                        RocksDB SST files, stored once
//! ```
//!
//! A checkpoint is written into `chk-N.inprogress`, its files synced, the
//! manifest written and synced, and then the directory renamed to `chk-N`:
//! a directory named `chk-N` with a manifest is complete, anything else is
//! debris of a crash and is deleted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("checkpoint store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another running job writes checkpoints to the directory.
    #[error("checkpoint dir {dir} is in use by another running job: give each job a checkpoint dir of its own")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A savepoint's files are not what its manifest says.
    #[error(
        "savepoint {dir} is damaged: {message}; nothing was restored — restore another savepoint, or a copy of this one"
    )]
    Damaged {
        /// The savepoint.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A savepoint's directory is taken.
    #[error("savepoint {dir} already exists: a savepoint is never overwritten")]
    Exists {
        /// The directory.
        dir: PathBuf,
    },
    /// A manifest could not be read.
    #[error("checkpoint manifest {path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Where an operator's state is in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum StateFiles {
    /// A backend-neutral snapshot in one file of the checkpoint directory.
    Logical {
        /// The file.
        file: String,
    },
    /// A RocksDB checkpoint: small private files in a sub-directory of the
    /// checkpoint directory, SST files in the store's `shared/` directory,
    /// stored once and referenced by every checkpoint that contains them.
    Rocksdb {
        /// The sub-directory with the private files.
        dir: String,
        /// Private file names (MANIFEST, CURRENT, OPTIONS).
        private: Vec<String>,
        /// SST file name in the database → its id in `shared/`.
        shared: BTreeMap<String, String>,
    },
}

/// The checkpoint format this crate writes and reads.
pub const FORMAT: u32 = 2;

/// A state an operator declared: its name, logical kind (`value`, `list`,
/// `map`) and storage encoding (`rows`, `packed-map`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateInfo {
    /// The state's name.
    pub name: String,
    /// Its logical kind.
    pub kind: String,
    /// How it is stored.
    pub encoding: String,
    /// The schema version its content is written at (the plugin's own
    /// versioning of its format, for migrations; 0 when it never said).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub schema: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One subtask's part of an operator's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperatorSnapshot {
    /// The subtask's index.
    pub subtask: u32,
    /// The key groups it owned (`[start, end)`: its state holds no others).
    pub key_groups: (u32, u32),
    /// Its event-time watermark at the barrier.
    pub watermark: i64,
    /// Its files.
    pub state: StateFiles,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// An operator node's state: by key group, so it restores at any parallelism.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperatorState {
    /// The node's parallelism when the checkpoint was taken.
    pub parallelism: u32,
    /// The states it declared.
    pub states: Vec<StateInfo>,
    /// Each subtask's part.
    pub subtasks: Vec<OperatorSnapshot>,
}

/// Where one split of a source was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitSnapshot {
    /// The split's identity.
    pub id: String,
    /// The subtask that read it.
    pub subtask: u32,
    /// Its position (the connector's format).
    pub position: serde_json::Value,
    /// Its watermark generator: the highest timestamp seen and whether it
    /// had ended.
    pub watermark: (i64, bool),
}

/// A source node's splits, in the order of its fresh start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceState {
    /// The node's parallelism when the checkpoint was taken.
    pub parallelism: u32,
    /// Every split.
    pub splits: Vec<SplitSnapshot>,
    /// Per subtask, the split it polls next.
    pub next: BTreeMap<u32, String>,
}

/// A sink subtask's pending state: opaque bytes in a file of the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkSnapshot {
    /// The subtask's index.
    pub subtask: u32,
    /// The file holding its pending state.
    pub file: String,
}

/// A sink node's pending states.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkState {
    /// The node's parallelism when the checkpoint was taken.
    pub parallelism: u32,
    /// The subtasks that had something to commit.
    pub subtasks: Vec<SinkSnapshot>,
}

/// Whether a task had finished at a checkpoint (for display).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskStatus {
    /// The task (`node-index/parallelism` of its chain head).
    pub task: String,
    /// Whether its input had ended.
    pub finished: bool,
}

/// A completed checkpoint. State is keyed by node id and key group, source
/// positions by split, so it restores into another parallelism or chaining.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The format version ([`FORMAT`]).
    pub format: u32,
    /// The checkpoint id (increasing).
    pub id: u64,
    /// `checkpoint`, `savepoint` or `stop`.
    pub kind: String,
    /// The job's name.
    pub job: String,
    /// The id of the run that took it.
    pub job_id: String,
    /// When it completed (ms since the epoch).
    pub completed_at_ms: i64,
    /// How long it took from trigger to complete, in ms.
    pub duration_ms: u64,
    /// Total size of its state files (shared ones included).
    pub bytes: u64,
    /// Bytes this checkpoint stored that no earlier one had.
    pub incremental_bytes: u64,
    /// The longest barrier alignment of a task, in ms.
    pub alignment_ms: u64,
    /// The job spec as written.
    pub spec: String,
    /// The number of key groups (a restore needs the same).
    pub max_parallelism: u32,
    /// Plugin digest (SHA-256) per operator node.
    pub plugins: BTreeMap<String, String>,
    /// Every task had finished: the job ran to its end.
    pub finished: bool,
    /// Operator state by node id.
    pub operators: BTreeMap<String, OperatorState>,
    /// Source positions by node id.
    pub sources: BTreeMap<String, SourceState>,
    /// Sink pending state by node id.
    pub sinks: BTreeMap<String, SinkState>,
    /// The tasks and whether each had finished.
    pub tasks: Vec<TaskStatus>,
    /// The savepoint the job's state descends from (through any number of
    /// checkpoints and restarts): the parent in the savepoint tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Lineage>,
    /// The checkpoint or savepoint the run that took this one started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<Lineage>,
    /// Per operator node with a plugin, the plugin as its user knows it:
    /// `name@version` from a registry, the file name otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugin_versions: BTreeMap<String, String>,
    /// A savepoint's files (every one but the manifest) → SHA-256: a copy
    /// that was damaged or cut short is refused before anything starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

/// A checkpoint or savepoint named from another one: where state came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lineage {
    /// `checkpoint`, `savepoint` or `stop`.
    pub kind: String,
    /// The job that took it.
    pub job: String,
    /// The id of the run that took it.
    pub job_id: String,
    /// Its checkpoint id (with `job_id`, what identifies it wherever it is).
    pub id: u64,
    /// Its directory's name when it was restored from.
    pub name: String,
}

impl Lineage {
    /// Whether `manifest` is the checkpoint this names.
    pub fn names(&self, manifest: &Manifest) -> bool {
        self.job_id == manifest.job_id && self.id == manifest.id
    }
}

pub(crate) const MANIFEST: &str = "_manifest.json";
const LOCK: &str = "_lock";
const SHARED: &str = "shared";
pub(crate) const IN_PROGRESS: &str = ".inprogress";

/// Writes `files` and then `manifest` into `done` + `.inprogress` (emptied
/// first), syncs them and renames the directory to `done`: a directory
/// with a manifest and without the suffix is complete.
pub(crate) fn write_complete<B: AsRef<[u8]>>(done: &Path, manifest: &Manifest, files: &[(String, B)]) -> Result<()> {
    let name = done.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = done.with_file_name(format!("{name}{IN_PROGRESS}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = tmp.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&path))
    };
    for (name, bytes) in files {
        write(name, bytes.as_ref())?;
    }
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    write(MANIFEST, &json)?;
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, done).map_err(io(done))
}

/// A job's hold on a checkpoint directory: while it lives no other job (in
/// this process or another) can take the directory.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// The checkpoints of one job, in one directory.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl CheckpointStore {
    /// The store in `dir` (created when missing).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(CheckpointStore { dir: dir.to_path_buf() })
    }

    /// Takes the directory for one running job (an advisory lock on its
    /// `_lock` file, released when the [`StoreLock`] is dropped or the
    /// process dies).
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.dir.join(LOCK);
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked { dir: self.dir.clone() }),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// The directory of checkpoint `id`.
    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("chk-{id:08}"))
    }

    /// Writes checkpoint `id`: its files, then its manifest, then makes it
    /// complete with one rename.
    pub fn write<B: AsRef<[u8]>>(&self, manifest: &Manifest, files: &[(String, B)]) -> Result<PathBuf> {
        let done = self.path(manifest.id);
        write_complete(&done, manifest, files)?;
        sync_dir(&self.dir)?;
        Ok(done)
    }

    /// Ids of the complete checkpoints, oldest first.
    pub fn completed(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix("chk-").and_then(|n| n.parse::<u64>().ok())
                && entry.path().join(MANIFEST).is_file()
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The newest complete checkpoint's manifest and directory.
    pub fn latest(&self) -> Result<Option<(PathBuf, Manifest)>> {
        match self.completed()?.last() {
            Some(&id) => Ok(Some((self.path(id), Self::load(&self.path(id))?))),
            None => Ok(None),
        }
    }

    /// Reads the manifest of the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let format = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| StoreError::Manifest { path: path.clone(), message: e.to_string() })?
            .get("format")
            .and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(FORMAT)) {
            let message = match format {
                None => "written by an older Weir (format 1), which this one cannot restore: start the job afresh (`weir run --fresh`)".to_string(),
                Some(f) => format!("format {f}, and this Weir reads format {FORMAT}"),
            };
            return Err(StoreError::Manifest { path, message });
        }
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Manifest { path, message: e.to_string() })
    }

    /// Where shared file `id` is kept.
    pub fn shared_path(&self, id: &str) -> PathBuf {
        self.dir.join(SHARED).join(id)
    }

    /// Stores `source` as shared file `id` unless it is already there;
    /// returns the bytes stored (0 when it was there). A hard link when
    /// `source` is on the same filesystem, a copy otherwise.
    pub fn put_shared(&self, id: &str, source: &Path) -> Result<u64> {
        let target = self.shared_path(id);
        if target.exists() {
            return Ok(0);
        }
        let dir = self.dir.join(SHARED);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = dir.join(format!(".{id}{IN_PROGRESS}"));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(source, &tmp).is_err() {
            std::fs::copy(source, &tmp).map_err(io(source))?;
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        Ok(std::fs::metadata(&target).map_err(io(&target))?.len())
    }

    /// Deletes shared files no complete checkpoint refers to; returns how
    /// many.
    pub fn collect_shared(&self) -> Result<usize> {
        let dir = self.dir.join(SHARED);
        if !dir.exists() {
            return Ok(0);
        }
        let mut referenced = std::collections::BTreeSet::new();
        for id in self.completed()? {
            for operator in Self::load(&self.path(id))?.operators.into_values() {
                for subtask in operator.subtasks {
                    if let StateFiles::Rocksdb { shared, .. } = subtask.state {
                        referenced.extend(shared.into_values());
                    }
                }
            }
        }
        let mut deleted = 0;
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if !referenced.contains(&*entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Deletes checkpoint `id`.
    pub fn delete(&self, id: u64) -> Result<()> {
        let path = self.path(id);
        std::fs::remove_dir_all(&path).map_err(io(&path))
    }

    /// Deletes what a crash left half-written.
    pub fn clean_debris(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let complete = entry.path().join(MANIFEST).is_file() && !name.ends_with(IN_PROGRESS);
            if name.starts_with("chk-") && !complete {
                std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: u64) -> Manifest {
        Manifest {
            format: FORMAT,
            id,
            kind: "checkpoint".into(),
            job: "j".into(),
            job_id: "0123".into(),
            completed_at_ms: 1,
            duration_ms: 2,
            bytes: 3,
            incremental_bytes: 3,
            alignment_ms: 0,
            spec: "name: j".into(),
            max_parallelism: 128,
            plugins: BTreeMap::from([("avg".into(), "ab12".into())]),
            finished: false,
            operators: BTreeMap::new(),
            sources: BTreeMap::from([(
                "src".into(),
                SourceState {
                    parallelism: 1,
                    splits: vec![SplitSnapshot {
                        id: "part-0-of-1".into(),
                        subtask: 0,
                        position: serde_json::json!({"next": 5}),
                        watermark: (7, false),
                    }],
                    next: BTreeMap::new(),
                },
            )]),
            sinks: BTreeMap::new(),
            tasks: vec![TaskStatus { task: "src-0/1".into(), finished: false }],
            parent: None,
            restored_from: None,
            plugin_versions: BTreeMap::new(),
            checksums: BTreeMap::new(),
        }
    }

    #[test]
    fn only_complete_checkpoints_count_and_debris_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        assert_eq!(store.latest().unwrap(), None);
        store.write(&manifest(1), &[("a.state".into(), b"xyz".to_vec())]).unwrap();
        store.write::<Vec<u8>>(&manifest(2), &[]).unwrap();
        // A crash while writing 3, and a directory without a manifest.
        std::fs::create_dir_all(dir.path().join("chk-00000003.inprogress")).unwrap();
        std::fs::create_dir_all(dir.path().join("chk-00000004")).unwrap();
        assert_eq!(store.completed().unwrap(), vec![1, 2]);
        let (path, latest) = store.latest().unwrap().unwrap();
        assert_eq!((path, latest), (store.path(2), manifest(2)));
        assert_eq!(std::fs::read(store.path(1).join("a.state")).unwrap(), b"xyz");
        store.clean_debris().unwrap();
        store.delete(1).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, vec!["chk-00000002"]);
    }

    #[test]
    fn shared_files_are_stored_once_and_collected_when_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().join("checkpoints")).unwrap();
        let sst = dir.path().join("000009.sst");
        std::fs::write(&sst, b"sorted strings").unwrap();
        assert_eq!(store.put_shared("a-000009.sst", &sst).unwrap(), 14);
        assert_eq!(store.put_shared("a-000009.sst", &sst).unwrap(), 0, "stored once");
        std::fs::write(dir.path().join("other.sst"), b"x").unwrap();
        store.put_shared("b-000010.sst", &dir.path().join("other.sst")).unwrap();
        let mut m = manifest(1);
        let subtask = OperatorSnapshot {
            subtask: 0,
            state: StateFiles::Rocksdb {
                dir: "avg-0".into(),
                private: vec!["CURRENT".into()],
                shared: BTreeMap::from([("000009.sst".into(), "a-000009.sst".into())]),
            },
            bytes: 20,
            key_groups: (0, 128),
            watermark: 5,
        };
        let info = StateInfo { name: "windows".into(), kind: "map".into(), encoding: "packed-map".into(), schema: 0 };
        m.operators.insert("avg".into(), OperatorState { parallelism: 1, states: vec![info], subtasks: vec![subtask] });
        store.write(&m, &[("avg-0/CURRENT".into(), b"MANIFEST-000005\n".to_vec())]).unwrap();
        assert_eq!(store.collect_shared().unwrap(), 1);
        assert_eq!(std::fs::read(store.shared_path("a-000009.sst")).unwrap(), b"sorted strings");
        assert!(!store.shared_path("b-000010.sst").exists());
        assert_eq!(CheckpointStore::load(&store.path(1)).unwrap(), m);
        assert!(store.path(1).join("avg-0/CURRENT").is_file());
    }

    #[test]
    fn one_job_at_a_time_holds_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let held = store.lock().unwrap();
        let err = store.lock().unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "checkpoint dir {} is in use by another running job: give each job a checkpoint dir of its own",
                dir.path().display()
            )
        );
        drop(held);
        store.lock().unwrap();
    }

    #[test]
    fn a_manifest_of_another_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), br#"{"id": 3, "job": "j", "tasks": []}"#).unwrap();
        let err = CheckpointStore::load(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("written by an older Weir (format 1), which this one cannot restore: start the job afresh (`weir run --fresh`)"), "{err}");
    }
}
