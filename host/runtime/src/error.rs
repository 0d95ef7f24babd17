//! Errors of a running job. Every variant names the task or node.

use weir_types::TaskInfo;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec is invalid or its plugin/file references are broken.
    #[error(transparent)]
    Spec(#[from] weir_spec::SpecError),
    /// An operator's plugin could not be loaded.
    #[error("operator `{node}`: {source}")]
    Load {
        /// The node.
        node: String,
        /// Why.
        source: weir_wasm::PluginError,
    },
    /// A task failed.
    #[error("task {task} failed: {message}")]
    Task {
        /// The task, as `node-index/parallelism`.
        task: String,
        /// What happened.
        message: String,
    },
    /// A task lost its downstream (because another task failed).
    #[error("task {0}: downstream task stopped")]
    Disconnected(String),
    /// The job was cancelled (Ctrl-C, or another task failed first).
    #[error("the job was cancelled")]
    Cancelled,
    /// Setting up the job failed.
    #[error("{0}")]
    Setup(String),
}

impl RuntimeError {
    pub(crate) fn task(task: &TaskInfo, e: impl std::fmt::Display) -> Self {
        RuntimeError::Task { task: task.to_string(), message: e.to_string() }
    }

    pub(crate) fn plugin(task: &TaskInfo, e: weir_wasm::PluginError) -> Self {
        RuntimeError::Task { task: task.to_string(), message: e.to_string() }
    }
}

/// `Result` with [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
