//! Checkpoints in a running job: what tasks snapshot at a barrier
//! ([`snapshot`]), the coordinator thread that triggers checkpoints, stores
//! them and tells sinks to commit ([`coordinator`]), and restoring a job —
//! at any parallelism — from a completed checkpoint ([`restore`]).

pub(crate) mod check;
pub(crate) mod coordinator;
pub(crate) mod restore;
pub(crate) mod snapshot;

pub use check::{NodeCheck, NodeFate, RestoreCheck, StateCheck, StateFate, check_restore};
pub use restore::{Restore, find_restore};
