//! Restoring a job from a completed checkpoint. State is found by node id
//! and key group, source positions by split, sink pending state by subtask,
//! so a checkpoint restores into a job of another parallelism or chaining:
//! each new subtask takes the key groups it owns from every old subtask that
//! held some, the splits `k` with `k % parallelism == index`, and the pending
//! state of the old sink subtasks it takes over.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use weir_checkpoint::{CheckpointStore, Lineage, Manifest, StateFiles};
use weir_spec::{CheckpointSpec, JobSpec};
use weir_state::{StateDescriptor, StateEncoding, StateKind};
use weir_types::Timestamp;

use crate::error::{Result, RuntimeError};

/// A completed checkpoint to start from.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// One old subtask's part of an operator's state.
pub(crate) struct RestoredPart {
    pub(crate) key_groups: Range<u16>,
    pub(crate) watermark: Timestamp,
    pub(crate) state: RestoredState,
}

/// Where a part's state is.
pub(crate) enum RestoredState {
    /// A logical snapshot file.
    Logical(PathBuf),
    /// A logical snapshot in memory (the operator harness).
    Bytes(Vec<u8>),
    /// A RocksDB checkpoint's files: (name, where it is) and (name, shared
    /// id, where it is).
    Rocksdb { private: Vec<(String, PathBuf)>, shared: Vec<(String, String, PathBuf)> },
}

impl RestoredState {
    /// Lays out a RocksDB checkpoint's files in `db_dir` (emptied first),
    /// hard-linked where the filesystem allows; returns the SST name → id
    /// map for [`RocksDbBackend::open_restored`](weir_state_rocksdb::RocksDbBackend::open_restored).
    pub(crate) fn place_rocksdb(&self, db_dir: &Path) -> Result<HashMap<String, String>> {
        let RestoredState::Rocksdb { private, shared } = self else { return Ok(HashMap::new()) };
        if db_dir.exists() {
            std::fs::remove_dir_all(db_dir).map_err(RuntimeError::io("cannot clear the state directory", db_dir))?;
        }
        std::fs::create_dir_all(db_dir).map_err(RuntimeError::io("cannot create the state directory", db_dir))?;
        for (name, from) in private {
            std::fs::copy(from, db_dir.join(name)).map_err(RuntimeError::io("cannot restore", from))?;
        }
        let mut ids = HashMap::new();
        for (name, id, from) in shared {
            let to = db_dir.join(name);
            if std::fs::hard_link(from, &to).is_err() {
                std::fs::copy(from, &to).map_err(RuntimeError::io("cannot restore", from))?;
            }
            ids.insert(name.clone(), id.clone());
        }
        Ok(ids)
    }
}

/// The splits a source subtask resumes.
pub(crate) struct RestoredSource {
    /// (id, position, watermark state), in the checkpoint's split order.
    pub(crate) splits: Vec<(String, serde_json::Value, (Timestamp, bool))>,
    /// Which of them it polls first.
    pub(crate) next: usize,
}

impl Restore {
    /// Reads the checkpoint or savepoint in `dir` (a savepoint's files are
    /// checked against their checksums).
    pub fn load(dir: &Path) -> Result<Restore> {
        let manifest = CheckpointStore::load(dir)?;
        if !manifest.checksums.is_empty() {
            weir_checkpoint::verify_savepoint(dir, &manifest)?;
        }
        Ok(Restore { dir: dir.to_path_buf(), manifest })
    }

    /// What names this checkpoint from another one.
    pub fn lineage(&self) -> Lineage {
        let m = &self.manifest;
        let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Lineage { kind: m.kind.clone(), job: m.job.clone(), job_id: m.job_id.clone(), id: m.id, name }
    }

    /// Whether it is a savepoint (a self-contained copy with checksums).
    pub fn is_savepoint(&self) -> bool {
        self.manifest.kind == "savepoint" && !self.manifest.checksums.is_empty()
    }

    /// The savepoint state restored from it descends from: itself when it
    /// is one, else the one its own state descends from.
    pub fn parent(&self) -> Option<Lineage> {
        match self.is_savepoint() {
            true => Some(self.lineage()),
            false => self.manifest.parent.clone(),
        }
    }

    /// Whether every task had finished: the job ran to its end.
    pub fn job_finished(&self) -> bool {
        self.manifest.finished
    }

    fn refuse(&self, message: String) -> RuntimeError {
        RuntimeError::Restore { checkpoint: self.dir.display().to_string(), message }
    }

    /// The state parts operator `node` needs for `key_groups`, and the
    /// states the checkpoint holds for it.
    pub(crate) fn operator(
        &self,
        node: &str,
        key_groups: &Range<u16>,
    ) -> Result<(Vec<RestoredPart>, Vec<StateDescriptor>)> {
        let Some(op) = self.manifest.operators.get(node) else { return Ok((Vec::new(), Vec::new())) };
        let mut states = Vec::with_capacity(op.states.len());
        for s in &op.states {
            let (Some(kind), Some(encoding)) = (StateKind::from_name(&s.kind), StateEncoding::from_name(&s.encoding))
            else {
                return Err(self.refuse(format!(
                    "operator `{node}` state `{}` is a {} state stored as {}, which this Weir does not know",
                    s.name, s.kind, s.encoding
                )));
            };
            states.push(StateDescriptor { name: s.name.clone(), kind, encoding });
        }
        // The store is the checkpoint's parent directory (shared RocksDB files).
        let store = CheckpointStore::open(self.dir.parent().unwrap_or(&self.dir))?;
        let mut parts = Vec::new();
        for sub in &op.subtasks {
            let groups = sub.key_groups.0 as u16..sub.key_groups.1 as u16;
            if groups.end <= key_groups.start || key_groups.end <= groups.start {
                continue;
            }
            let state = match &sub.state {
                StateFiles::Logical { file } => RestoredState::Logical(self.dir.join(file)),
                StateFiles::Rocksdb { dir, private, shared } => RestoredState::Rocksdb {
                    private: private.iter().map(|p| (p.clone(), self.dir.join(dir).join(p))).collect(),
                    shared: shared.iter().map(|(name, id)| (name.clone(), id.clone(), store.shared_path(id))).collect(),
                },
            };
            parts.push(RestoredPart { key_groups: groups, watermark: sub.watermark, state });
        }
        Ok((parts, states))
    }

    /// The schema version of each state of operator `node` (those not 0).
    pub(crate) fn schemas(&self, node: &str) -> std::collections::BTreeMap<String, u32> {
        let states = self.manifest.operators.get(node).map(|op| op.states.as_slice()).unwrap_or_default();
        states.iter().filter(|s| s.schema != 0).map(|s| (s.name.clone(), s.schema)).collect()
    }

    /// The splits source `node` subtask `index` resumes: those `owner`
    /// (given a split's place in the list and its id) gives it; `None` when
    /// the checkpoint has none of the node (it starts afresh).
    pub(crate) fn source(
        &self,
        node: &str,
        index: u32,
        parallelism: u32,
        owner: &dyn Fn(usize, &str) -> u32,
    ) -> Option<RestoredSource> {
        let source = self.manifest.sources.get(node)?;
        let splits: Vec<_> = source
            .splits
            .iter()
            .enumerate()
            .filter(|(k, s)| owner(*k, &s.id) == index)
            .map(|(_, s)| (s.id.clone(), s.position.clone(), s.watermark))
            .collect();
        // The same subtask at the same parallelism goes on with the split it
        // would have polled next.
        let next = match source.parallelism == parallelism {
            true => source.next.get(&index).and_then(|id| splits.iter().position(|(s, _, _)| s == id)).unwrap_or(0),
            false => 0,
        };
        Some(RestoredSource { splits, next })
    }

    /// The pending states sink `node` subtask `index` of `parallelism`
    /// commits: of the old subtasks `k` with `k % parallelism == index`.
    pub(crate) fn sink(&self, node: &str, index: u32, parallelism: u32) -> Result<Vec<(u32, Vec<u8>)>> {
        let Some(sink) = self.manifest.sinks.get(node) else { return Ok(Vec::new()) };
        let mut pending = Vec::new();
        for s in sink.subtasks.iter().filter(|s| s.subtask % parallelism == index) {
            let path = self.dir.join(&s.file);
            let bytes = std::fs::read(&path).map_err(RuntimeError::io("cannot read sink state", &path))?;
            pending.push((s.subtask, bytes));
        }
        Ok(pending)
    }
}

/// Which checkpoint a job starts from: `from` when given; else the newest
/// in the spec's checkpoint directory (unless `fresh`) — but when the spec
/// names a `savepoint`, the newest checkpoint only if it descends from that
/// savepoint (the job ran from it and checkpointed since), the savepoint
/// otherwise.
pub fn find_restore(spec: &JobSpec, fresh: bool, from: Option<&Path>) -> Result<Option<Restore>> {
    if let Some(dir) = from {
        return Restore::load(dir).map(Some);
    }
    let savepoint = spec.savepoint.as_ref().map(|s| Restore::load(&s.path)).transpose()?;
    let latest = match (&spec.checkpoint, fresh) {
        (Some(c), false) => {
            // Read only: another job may hold the directory (its start says so).
            let store = CheckpointStore::open(&c.dir)?;
            store.latest()?.map(|(dir, manifest)| (c, Restore { dir, manifest }))
        }
        _ => None,
    };
    if let Some(sp) = savepoint {
        let descends = |r: &Restore| r.manifest.parent.as_ref().is_some_and(|p| p.names(&sp.manifest));
        return Ok(Some(match latest {
            Some((_, latest)) if descends(&latest) => {
                tracing::info!(
                    checkpoint = latest.manifest.id,
                    savepoint = %sp.dir.display(),
                    "the job has checkpointed since it started from its savepoint: resuming from the newest checkpoint"
                );
                latest
            }
            _ => sp,
        }));
    }
    let Some((c, latest)) = latest else { return Ok(None) };
    if latest.manifest.job != spec.name {
        return Err(RuntimeError::Restore {
            checkpoint: latest.dir.display().to_string(),
            message: format!(
                "checkpoint dir {} holds checkpoints of job `{}`, not `{}`",
                c.dir.display(),
                latest.manifest.job,
                spec.name
            ),
        });
    }
    Ok(Some(latest))
}

/// Takes `c.dir` for the running job: no other job may write there.
pub(crate) fn lock(c: &CheckpointSpec) -> Result<weir_checkpoint::StoreLock> {
    Ok(CheckpointStore::open(&c.dir)?.lock()?)
}

/// The id the next checkpoint written to `c.dir` gets.
pub(crate) fn next_id(c: &CheckpointSpec) -> Result<u64> {
    let store = open_store(c)?;
    Ok(store.completed()?.last().map_or(1, |l| l + 1))
}

/// The newest checkpoint in `c.dir` with an id of at least `first_id`.
pub(crate) fn latest_since(c: &CheckpointSpec, first_id: u64) -> Result<Option<Restore>> {
    let store = open_store(c)?;
    match store.latest()? {
        Some((dir, manifest)) if manifest.id >= first_id => Ok(Some(Restore { dir, manifest })),
        _ => Ok(None),
    }
}

/// The checkpoint store of `c.dir`, with a crash's debris cleaned away
/// (only while the job holds its [`lock`]).
pub(crate) fn open_store(c: &CheckpointSpec) -> Result<CheckpointStore> {
    let store = CheckpointStore::open(&c.dir)?;
    store.clean_debris()?;
    Ok(store)
}
