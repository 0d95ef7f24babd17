//! Errors of a job. Every variant keeps its cause typed (spec, plugin,
//! connector, state, checkpoint, I/O) and names the node or task, so the
//! restart strategy can tell a job that cannot run from one that failed
//! while running ([`RuntimeError::class`]), and an API can answer with a
//! stable code ([`RuntimeError::code`]).

use weir_types::TaskInfo;

/// What kind of failure an error is: what the restart strategy does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The job as given cannot run (a bad spec, a plugin that does not load
    /// or fails its `init`, a checkpoint that does not fit): restarting
    /// would fail the same way, so it is not retried. Fix the input.
    Invalid,
    /// A failure while running (a trap, a bad record, an I/O error): the job
    /// restarts from its latest checkpoint under its restart strategy.
    Runtime,
    /// The job was cancelled.
    Cancelled,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec is invalid or its references are broken.
    #[error(transparent)]
    Spec(#[from] weir_spec::SpecError),
    /// An operator's plugin could not be loaded.
    #[error("operator `{node}`: {source}")]
    Load {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: weir_wasm::PluginError,
    },
    /// An operator names a plugin of a registry (`name@version`), which only
    /// a server resolves.
    #[error(
        "operator `{node}` names plugin `{plugin}` of a registry: submit the job to a server (`weir job submit`), \
         or give the path of its .wasm file"
    )]
    Unresolved {
        /// The node.
        node: String,
        /// The reference.
        plugin: String,
    },
    /// An operator's plugin does not fit its node (e.g. the wrong world for
    /// a window).
    #[error("operator `{node}`: {message}")]
    Config {
        /// The node.
        node: String,
        /// What does not fit.
        message: String,
    },
    /// A plugin failed in a task (trap, limit, error, broken contract).
    #[error("task {task} failed: {source}")]
    Plugin {
        /// The task, as `node-index/parallelism`.
        task: String,
        /// Why.
        #[source]
        source: weir_wasm::PluginError,
    },
    /// A source or sink failed.
    #[error("task {task} failed: {source}")]
    Connector {
        /// The task.
        task: String,
        /// Why.
        #[source]
        source: weir_connectors::ConnectorError,
    },
    /// Keyed state failed.
    #[error("task {task} failed: {source}")]
    State {
        /// The task.
        task: String,
        /// Why.
        #[source]
        source: weir_state::StateError,
    },
    /// A record could not be handled by the host (no key to partition by, a
    /// refused record under `on_error: fail`, too many outputs).
    #[error("task {task} failed: {message}")]
    Record {
        /// The task.
        task: String,
        /// What is wrong.
        message: String,
    },
    /// Writing or reading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] weir_checkpoint::StoreError),
    /// A running node cannot be switched to another plugin: it runs on with
    /// the one it had.
    #[error("cannot upgrade operator `{node}` to {plugin}: {message}; it runs on with {current}")]
    Upgrade {
        /// The node.
        node: String,
        /// The plugin it was to switch to.
        plugin: String,
        /// The plugin it runs on with.
        current: String,
        /// Why.
        message: String,
    },
    /// The checkpoint at whose barrier a task switched plugins was aborted:
    /// the job restarts from the one before, on the plugins it ran then.
    #[error(
        "task {task}: checkpoint {checkpoint}, at whose barrier it switched plugins, was aborted: the job restarts \
         from the checkpoint before, on the plugins it ran then"
    )]
    UpgradeAborted {
        /// The task.
        task: String,
        /// The checkpoint.
        checkpoint: u64,
    },
    /// A node could not switch plugins at a barrier: the task fails before
    /// it acknowledges the barrier, so the job restarts from the checkpoint
    /// before, on the plugins it ran then.
    #[error("task {task}: cannot switch operator `{node}` at barrier {checkpoint}: {source}")]
    SwitchFailed {
        /// The task.
        task: String,
        /// The node.
        node: String,
        /// The barrier.
        checkpoint: u64,
        /// Why.
        #[source]
        source: Box<RuntimeError>,
    },
    /// A checkpoint cannot be restored into this job.
    #[error("checkpoint {checkpoint}: {message}")]
    Restore {
        /// The checkpoint's id or directory.
        checkpoint: String,
        /// Why it does not fit.
        message: String,
    },
    /// A file or directory of the job could not be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What it is for.
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A task panicked: a bug in Weir.
    #[error("task {task} panicked: {message}")]
    Panic {
        /// The task.
        task: String,
        /// The panic message.
        message: String,
    },
    /// A task lost its downstream (because another task failed).
    #[error("task {0}: downstream task stopped")]
    Disconnected(String),
    /// The job was cancelled (Ctrl-C, or another task failed first).
    #[error("the job was cancelled")]
    Cancelled,
    /// The job cannot do what was asked now (e.g. a checkpoint of a job
    /// without a checkpoint directory, or of one that has ended).
    #[error("{0}")]
    Unavailable(String),
    /// A thread of the job could not be started.
    #[error("cannot start {what}: {source}")]
    Thread {
        /// Which thread.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn plugin(task: &TaskInfo, source: weir_wasm::PluginError) -> Self {
        RuntimeError::Plugin { task: task.to_string(), source }
    }

    pub(crate) fn connector(task: &TaskInfo, source: weir_connectors::ConnectorError) -> Self {
        RuntimeError::Connector { task: task.to_string(), source }
    }

    pub(crate) fn state(task: &TaskInfo, source: weir_state::StateError) -> Self {
        RuntimeError::State { task: task.to_string(), source }
    }

    pub(crate) fn record(task: &TaskInfo, message: impl Into<String>) -> Self {
        RuntimeError::Record { task: task.to_string(), message: message.into() }
    }

    pub(crate) fn io<'a>(what: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| RuntimeError::Io { what, path: path.to_path_buf(), source }
    }

    /// What the restart strategy does with it.
    pub fn class(&self) -> ErrorClass {
        use weir_wasm::PluginError as P;
        match self {
            RuntimeError::Spec(_) | RuntimeError::Load { .. } | RuntimeError::Config { .. } => ErrorClass::Invalid,
            RuntimeError::Unresolved { .. } => ErrorClass::Invalid,
            RuntimeError::Restore { .. } | RuntimeError::Unavailable(_) => ErrorClass::Invalid,
            RuntimeError::Upgrade { .. } => ErrorClass::Invalid,
            // A plugin that fails its `init`, or is not what its node needs,
            // fails the same way every time.
            RuntimeError::Plugin { source, .. } => match source {
                P::Operator { call: "init", .. } | P::Trap { call: "init", .. } => ErrorClass::Invalid,
                P::WrongWorld { .. } | P::Invalid { .. } | P::Read { .. } => ErrorClass::Invalid,
                P::State(weir_state::StateError::KindChanged { .. } | weir_state::StateError::Duplicate(_)) => {
                    ErrorClass::Invalid
                }
                _ => ErrorClass::Runtime,
            },
            RuntimeError::State { source: weir_state::StateError::KindChanged { .. }, .. } => ErrorClass::Invalid,
            RuntimeError::Checkpoint(weir_checkpoint::StoreError::Locked { .. }) => ErrorClass::Invalid,
            RuntimeError::Cancelled => ErrorClass::Cancelled,
            _ => ErrorClass::Runtime,
        }
    }

    /// A stable, machine-readable code for the error (what an HTTP API
    /// returns beside the message).
    pub fn code(&self) -> &'static str {
        use weir_wasm::PluginError as P;
        match self {
            RuntimeError::Spec(_) => "spec_invalid",
            RuntimeError::Load { source: P::Read { .. }, .. } => "plugin_not_found",
            RuntimeError::Unresolved { .. } => "plugin_unresolved",
            RuntimeError::Load { .. } => "plugin_invalid",
            RuntimeError::Config { .. } => "plugin_wrong_world",
            RuntimeError::Plugin { source, .. } => match source {
                P::Operator { call: "init", .. } | P::Trap { call: "init", .. } => "plugin_init_failed",
                P::Trap { .. } => "plugin_trapped",
                P::Limit { .. } => "plugin_limit",
                P::Operator { .. } => "plugin_failed",
                P::Contract(_) => "plugin_contract",
                P::WrongWorld { .. } | P::Invalid { .. } | P::Read { .. } => "plugin_invalid",
                P::State(_) => "state_failed",
                P::Engine(_) => "engine_failed",
            },
            RuntimeError::Connector { .. } => "connector_failed",
            RuntimeError::State { .. } => "state_failed",
            RuntimeError::Record { .. } => "record_failed",
            RuntimeError::Checkpoint(weir_checkpoint::StoreError::Locked { .. }) => "checkpoint_dir_in_use",
            RuntimeError::Checkpoint(_) => "checkpoint_failed",
            RuntimeError::Restore { .. } => "restore_incompatible",
            RuntimeError::Upgrade { .. } => "upgrade_refused",
            RuntimeError::UpgradeAborted { .. } => "upgrade_aborted",
            RuntimeError::SwitchFailed { .. } => "upgrade_failed",
            RuntimeError::Io { .. } => "io_failed",
            RuntimeError::Panic { .. } => "internal",
            RuntimeError::Disconnected(_) => "task_disconnected",
            RuntimeError::Cancelled => "cancelled",
            RuntimeError::Unavailable(_) => "unavailable",
            RuntimeError::Thread { .. } => "internal",
        }
    }

    /// Whether this error only follows from another task's failure (it is
    /// not the cause worth reporting).
    pub(crate) fn is_knock_on(&self) -> bool {
        matches!(self, RuntimeError::Disconnected(_) | RuntimeError::Cancelled)
    }
}

/// `Result` with [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_failure_is_not_retried_and_a_trap_is() {
        let task = TaskInfo { node: "op".into(), index: 0, parallelism: 1 };
        let init = RuntimeError::plugin(
            &task,
            weir_wasm::PluginError::Operator { call: "init", message: "no such table".into() },
        );
        assert_eq!((init.class(), init.code()), (ErrorClass::Invalid, "plugin_init_failed"));
        assert_eq!(init.to_string(), "task op-0/1 failed: plugin failed in `init`: no such table");
        let trap = RuntimeError::plugin(&task, weir_wasm::PluginError::Trap { call: "process", message: "x".into() });
        assert_eq!((trap.class(), trap.code()), (ErrorClass::Runtime, "plugin_trapped"));
        assert_eq!(RuntimeError::Cancelled.class(), ErrorClass::Cancelled);
    }
}
