//! Checkpoint barriers: what a barrier is for, and the change that travels
//! with it so every task applies it at the same consistent cut.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why a barrier flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarrierKind {
    /// A periodic (or triggered) checkpoint: kept under retention.
    Checkpoint,
    /// A savepoint the user asked for: every task snapshots its state in the
    /// backend-neutral format, and the checkpoint is also copied to a
    /// directory of its own that is never deleted automatically.
    Savepoint,
    /// The last barrier of a stop (with a savepoint or without): every task
    /// snapshots, its sinks commit,
    /// and it ends with nothing in flight. Event time does not advance to
    /// the end, so no window fires early; a later start resumes exactly.
    Stop,
}

impl BarrierKind {
    /// The kind's name, as in manifests and logs.
    pub fn name(self) -> &'static str {
        match self {
            BarrierKind::Checkpoint => "checkpoint",
            BarrierKind::Savepoint => "savepoint",
            BarrierKind::Stop => "stop",
        }
    }
}

impl fmt::Display for BarrierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a node changes to at a barrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeUpdate {
    /// The digest (SHA-256) of the plugin the node runs from the barrier on;
    /// the runtime holds the compiled plugin under it.
    pub plugin: Option<String>,
    /// The node's new config (JSON text), when it changes.
    pub config: Option<String>,
    /// The new plugin as its user names it (`name@version`), for manifests.
    pub label: Option<String>,
}

/// A change applied by every task a barrier passes, right after its
/// snapshot: the state at the barrier belongs to the old version, every
/// record after it goes to the new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mutation {
    /// Node id → its update.
    pub updates: BTreeMap<String, NodeUpdate>,
}

/// Barrier `id` of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// The checkpoint id (increasing within a checkpoint directory).
    pub id: u64,
    /// Why it flows.
    pub kind: BarrierKind,
    /// The change the tasks apply at it, if any.
    pub mutation: Option<Arc<Mutation>>,
    /// Tasks snapshot in the backend-neutral format (a savepoint: state
    /// that may restore on another backend), not the backend's own.
    pub portable: bool,
}

impl CheckpointBarrier {
    /// A plain checkpoint barrier.
    pub fn checkpoint(id: u64) -> Self {
        CheckpointBarrier { id, kind: BarrierKind::Checkpoint, mutation: None, portable: false }
    }

    /// Whether tasks end after it.
    pub fn stops(&self) -> bool {
        self.kind == BarrierKind::Stop
    }
}
