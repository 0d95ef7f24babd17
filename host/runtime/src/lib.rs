//! The Weir dataflow runtime: a job spec becomes tasks (one per node ×
//! parallel index, forward edges chained), connected by bounded channels,
//! driven by watermarks and timers, with user operators running as Wasm
//! components over keyed state the host owns.
//!
//! ```no_run
//! # fn demo() -> Result<(), weir_runtime::RuntimeError> {
//! let spec = weir_spec::JobSpec::load("examples/sensor-averages/job.yaml".as_ref())?;
//! let engine = weir_wasm::PluginEngine::new().expect("engine");
//! let report = weir_runtime::run_job(&spec, &weir_runtime::JobOptions::default(), &engine)?;
//! println!("{} finished in {:?}", report.name, report.elapsed);
//! # Ok(()) }
//! ```

mod build;
pub mod checkpointing;
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

pub use checkpointing::{Restore, find_restore};
pub use error::{Result, RuntimeError};
pub use job::{JobOptions, JobReport, load_plugins, run_job};
pub use metrics::NodeReport;
