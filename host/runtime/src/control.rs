//! The control path between a job's coordinator and its tasks, beside the
//! data channels: what the coordinator tells a task, and what tasks (and
//! the job's handle) tell the coordinator.

use std::path::PathBuf;

use weir_types::{BarrierKind, CheckpointBarrier};

use crate::checkpointing::coordinator::Request;
use crate::checkpointing::snapshot::TaskPart;

/// What the coordinator tells a task.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    /// (Sources) Inject this barrier into the stream.
    Inject(CheckpointBarrier),
    /// Checkpoint `id` is stored: sinks commit what they pre-committed up
    /// to it.
    Commit(u64),
    /// Checkpoint `id` was aborted: a task waiting for it to end stops
    /// waiting.
    Aborted(u64),
}

/// What the coordinator hears.
pub(crate) enum CoordMsg {
    /// Task `task` snapshotted its part of checkpoint `id`.
    Ack { task: usize, id: u64, part: TaskPart },
    /// Task `task` finished; its final part stands in for it from now on.
    Finished { task: usize, part: TaskPart },
    /// Someone asks for a checkpoint.
    Request(Request),
}

/// A checkpoint that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDone {
    /// Its id.
    pub id: u64,
    /// Where it is.
    pub dir: PathBuf,
    /// Why it was taken.
    pub kind: BarrierKind,
    /// The savepoint it was copied to, when one was asked for.
    pub savepoint: Option<PathBuf>,
}

/// A task's lines to and from the coordinator.
pub(crate) struct TaskLink {
    pub(crate) tx: crossbeam_channel::Sender<CoordMsg>,
    /// The task's number among the job's tasks.
    pub(crate) task: usize,
    pub(crate) inbox: crossbeam_channel::Receiver<Control>,
}
