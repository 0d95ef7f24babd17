//! The Weir dataflow runtime: a job spec becomes tasks (one per node ×
//! parallel index, forward edges chained), connected by bounded channels,
//! driven by watermarks and timers, with user operators running as Wasm
//! components over keyed state the runtime owns.
//!
//! [`start`] runs a job on threads of its own and returns a [`JobHandle`]:
//! its status and live metrics, checkpoints on demand, a stop at a barrier,
//! cancel, wait. Checkpoints are keyed by node id and key group, so a job
//! restores from one at another parallelism.
//!
//! ```no_run
//! # fn demo() -> Result<(), weir_runtime::RuntimeError> {
//! let spec = weir_spec::JobSpec::load("examples/sensor-averages/job.yaml".as_ref())?;
//! let engine = weir_wasm::PluginEngine::new().expect("engine");
//! let job = weir_runtime::start(&spec, &weir_runtime::JobOptions::default(), &engine)?;
//! println!("job {} is {:?}", job.id(), job.status());
//! let report = job.wait()?;
//! println!("{} finished in {:?}", report.name, report.elapsed);
//! # Ok(()) }
//! ```

mod build;
mod checkpointing;
mod control;
mod error;
pub mod graph;
pub mod harness;
mod job;
pub mod metrics;
mod node;
pub mod operator;
mod route;
mod task;
pub mod timers;
pub mod watermark;
mod window;

pub use build::operator_limits;
pub use checkpointing::{
    NodeCheck, NodeFate, Restore, RestoreCheck, StateCheck, StateFate, check_restore, find_restore,
};
pub use control::CheckpointDone;
pub use error::{ErrorClass, Result, RuntimeError};
pub use job::{
    JobControl, JobHandle, JobOptions, JobOutcome, JobReport, JobSnapshot, JobStatus, PendingCheckpoint,
    PendingUpgrade, Restarted, Upgrade, Upgraded, load_plugins, run_job, start,
};
pub use metrics::{CHECKPOINT_HISTORY, CheckpointRecord, CheckpointStats, Metrics, NodeReport};

/// Turns on the fault-injection points named in `FAILPOINTS` (crash tests;
/// a no-op unless built with the `failpoints` feature). Returns a guard to
/// keep for the process's life.
pub fn failpoints() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
