//! Checkpoints, the way Flink takes them (asynchronous barrier snapshots).
//!
//! This crate holds the parts that decide and the parts that store, with no
//! threads of their own: the [`Coordinator`] says when a checkpoint starts,
//! completes or is aborted; the [`Aligner`] says when a task with several
//! inputs has seen a barrier on all of them; the [`CheckpointStore`] writes
//! a checkpoint's files and its manifest so that a half-written checkpoint is
//! never taken for a complete one. The runtime wires them to tasks.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use weir_checkpoint::{Ack, Coordinator, CoordinatorConfig, Tick};
//!
//! let config = CoordinatorConfig { interval: Duration::from_secs(1), timeout: Duration::from_secs(10), min_pause: Duration::ZERO };
//! let start = Instant::now();
//! let mut c = Coordinator::new(config, 2, 1, start);
//! assert_eq!(c.tick(start + Duration::from_secs(1)), Tick::Trigger(1));
//! assert_eq!(c.ack(1, 0), Ack::Waiting(1));
//! assert!(matches!(c.ack(1, 1), Ack::Complete(1)));
//! ```

mod align;
mod coordinator;
mod savepoint;
mod store;

pub use align::{Aligner, BarrierOutcome};
pub use coordinator::{Ack, Coordinator, CoordinatorConfig, Tick, to_delete};
pub use savepoint::{list_savepoints, load_savepoint, savepoint_name, verify_savepoint, write_savepoint};
pub use store::{
    CheckpointStore, FORMAT, Lineage, Manifest, OperatorSnapshot, OperatorState, SinkSnapshot, SinkState, SourceState,
    SplitSnapshot, StateFiles, StateInfo, StoreError, StoreLock, TaskStatus,
};
