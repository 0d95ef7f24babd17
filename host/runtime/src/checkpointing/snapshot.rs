//! What a task contributes to a checkpoint: its source's split positions,
//! each operator's keyed state (a backend's native checkpoint or a logical
//! snapshot, tagged with the key groups it covers and the states it holds)
//! and each sink's pending state.

use std::path::Path;
use std::time::Duration;

use weir_state::{NativeCheckpoint, StateDescriptor};
use weir_types::{TaskInfo, Timestamp};

use crate::error::{Result, RuntimeError};
use crate::node::Node;

/// An operator's state as taken at a barrier.
pub(crate) enum PartState {
    /// A backend-neutral snapshot.
    Logical(Vec<u8>),
    /// The backend's own checkpoint (RocksDB), in a local directory.
    Native(LocalCheckpoint),
}

/// A native checkpoint in a local directory, deleted once stored (dropped).
pub(crate) struct LocalCheckpoint(pub(crate) NativeCheckpoint);

impl Drop for LocalCheckpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// One operator subtask's state at a barrier.
pub(crate) struct OperatorPart {
    pub(crate) node: String,
    pub(crate) subtask: u32,
    pub(crate) key_groups: (u32, u32),
    pub(crate) watermark: Timestamp,
    pub(crate) states: Vec<StateDescriptor>,
    /// Each state's schema version (those not 0).
    pub(crate) schemas: std::collections::BTreeMap<String, u32>,
    pub(crate) state: PartState,
}

/// Where one split of a source was at a barrier.
pub(crate) struct SplitPart {
    pub(crate) id: String,
    pub(crate) position: serde_json::Value,
    pub(crate) watermark: (Timestamp, bool),
}

/// A source subtask's splits at a barrier.
pub(crate) struct SourcePart {
    pub(crate) node: String,
    pub(crate) subtask: u32,
    pub(crate) splits: Vec<SplitPart>,
    /// The split it polls next.
    pub(crate) next: Option<String>,
}

/// A sink subtask's pending state at a barrier.
pub(crate) struct SinkPart {
    pub(crate) node: String,
    pub(crate) subtask: u32,
    pub(crate) pending: Vec<u8>,
}

/// What one task contributes to a checkpoint.
#[derive(Default)]
pub(crate) struct TaskPart {
    pub(crate) source: Option<SourcePart>,
    pub(crate) operators: Vec<OperatorPart>,
    pub(crate) sinks: Vec<SinkPart>,
    pub(crate) finished: bool,
    /// How long the task waited for barrier alignment.
    pub(crate) alignment: Duration,
}

/// Snapshots one operator's state. A backend with a native checkpoint
/// (RocksDB) writes it into `scratch/label`; the others are copied into a
/// logical snapshot. A stateless operator's snapshot is a few bytes: no
/// native checkpoint for it (a RocksDB one has ~10 KB of metadata).
pub(crate) fn snapshot_operator(node: &mut dyn Node, scratch: Option<&Path>, label: &str) -> Result<OperatorPart> {
    let task: TaskInfo = node.task().clone();
    let watermark = node.watermark();
    let state = node.state();
    let groups = state.key_groups();
    let states = state.descriptors().to_vec();
    let schemas = state.schemas().clone();
    let failed = |e: weir_state::StateError| RuntimeError::state(&task, e);
    let backend = state.backend();
    backend.flush().map_err(failed)?;
    let native = match scratch.map(|d| d.join(label)).filter(|_| !backend.states().is_empty()) {
        Some(dir) => {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(RuntimeError::io("cannot clear the snapshot directory", &dir))?;
            }
            backend.native_checkpoint(&dir).map_err(failed)?
        }
        None => None,
    };
    let state = match native {
        Some(n) => PartState::Native(LocalCheckpoint(n)),
        None => {
            let mut bytes = Vec::new();
            weir_state::snapshot::write_snapshot(backend, &mut bytes).map_err(failed)?;
            PartState::Logical(bytes)
        }
    };
    Ok(OperatorPart {
        node: task.node.to_string(),
        subtask: task.index,
        key_groups: (u32::from(groups.start), u32::from(groups.end)),
        watermark,
        states,
        schemas,
        state,
    })
}
