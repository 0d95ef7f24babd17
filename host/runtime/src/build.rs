//! Building a task's nodes: opening their state (restored when a
//! checkpoint is given) and creating Wasm operators and windows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_spec::{JobSpec, OperatorSpec};
use weir_state::{KeyedStateBackend, MemoryBackend, StateKind};
use weir_state_rocksdb::RocksDbBackend;
use weir_types::{TaskInfo, Timestamp};
use weir_wasm::{InitArgs, Plugin, World};

use crate::checkpointing::{Restore, RestoredState};
use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::WasmOperator;
use crate::window::{RECORDS_STATE, WINDOW_STATE, WindowFunction, WindowOperator, WindowSetup};

pub(crate) enum StateRoot {
    Memory,
    /// The root directory, and the temporary directory that holds it (if any),
    /// kept until the job ends.
    Rocks {
        root: PathBuf,
        _temp: Option<tempfile::TempDir>,
    },
}

/// A task's opened backend.
struct OpenedBackend {
    backend: Box<dyn KeyedStateBackend>,
    /// Where native checkpoints go (RocksDB).
    scratch: Option<PathBuf>,
    /// Whether restored state is already in place.
    restored: bool,
}

impl StateRoot {
    /// Opens a task's backend. A RocksDB backend restoring a RocksDB
    /// checkpoint opens the checkpoint's files in place; any other restore
    /// is applied afterwards from a logical snapshot.
    fn backend(
        &self,
        job: &str,
        task: &TaskInfo,
        max_parallelism: u32,
        restored: Option<&RestoredState>,
    ) -> Result<OpenedBackend> {
        match self {
            StateRoot::Memory => Ok(OpenedBackend {
                backend: Box::new(MemoryBackend::new(max_parallelism)),
                scratch: None,
                restored: false,
            }),
            StateRoot::Rocks { root, .. } => {
                let fail = |what: &str, dir: &Path, e: &dyn std::fmt::Display| {
                    RuntimeError::task(task, format!("cannot {what} {}: {e}", dir.display()))
                };
                let dir = root.join(job).join(format!("{}-{}", task.node, task.index));
                let scratch = root.join(job).join(format!("{}-{}.checkpoints", task.node, task.index));
                // Working state only: a start restores from a checkpoint, if any.
                for d in [&dir, &scratch] {
                    if d.exists() {
                        std::fs::remove_dir_all(d).map_err(|e| fail("reset state dir", d, &e))?;
                    }
                }
                std::fs::create_dir_all(&scratch).map_err(|e| fail("create state dir", &scratch, &e))?;
                if let Some(state @ RestoredState::Rocksdb { .. }) = restored {
                    let ids = state.place_rocksdb(&dir)?;
                    let backend = RocksDbBackend::open_restored(&dir, max_parallelism, ids)
                        .map_err(|e| fail("open restored state in", &dir, &e))?;
                    return Ok(OpenedBackend { backend: Box::new(backend), scratch: Some(scratch), restored: true });
                }
                std::fs::create_dir_all(&dir).map_err(|e| fail("create state dir", &dir, &e))?;
                let backend = RocksDbBackend::open(&dir, max_parallelism).map_err(|e| RuntimeError::task(task, e))?;
                Ok(OpenedBackend { backend: Box::new(backend), scratch: Some(scratch), restored: false })
            }
        }
    }
}

/// The logical snapshot of restored state (a RocksDB checkpoint is opened
/// in a temporary directory and its `states` read out).
fn logical_snapshot(
    state: &RestoredState,
    states: &[(String, weir_state::StateKind)],
    task: &TaskInfo,
    max_parallelism: u32,
) -> Result<Vec<u8>> {
    match state {
        RestoredState::Logical(bytes) => Ok(bytes.clone()),
        RestoredState::Rocksdb { .. } => {
            let fail = |e: &dyn std::fmt::Display| RuntimeError::task(task, format!("cannot read restored state: {e}"));
            let tmp = tempfile::Builder::new().prefix("weir-restore-").tempdir().map_err(|e| fail(&e))?;
            let dir = tmp.path().join("db");
            let ids = state.place_rocksdb(&dir)?;
            let mut db = RocksDbBackend::open_restored(&dir, max_parallelism, ids).map_err(|e| fail(&e))?;
            for (name, kind) in states {
                db.register(name, *kind).map_err(|e| fail(&e))?;
            }
            let mut bytes = Vec::new();
            weir_state::snapshot::write_snapshot(&mut db, &mut bytes).map_err(|e| fail(&e))?;
            Ok(bytes)
        }
    }
}

/// An operator's limits: the spec's, over the defaults.
fn operator_limits(o: &weir_spec::OperatorSpec) -> weir_wasm::Limits {
    let d = weir_wasm::Limits::default();
    weir_wasm::Limits {
        memory_bytes: o.limits.memory.unwrap_or(d.memory_bytes),
        call_timeout: o.limits.call_timeout.unwrap_or(d.call_timeout),
        fuel: o.limits.fuel.or(d.fuel),
        table_elements: d.table_elements,
        max_emitted: o.limits.max_emitted.unwrap_or(d.max_emitted),
    }
}

/// What an operator's plugin may reach: what the spec grants.
fn operator_grants(o: &weir_spec::OperatorSpec) -> weir_wasm::Grants {
    let dirs = o
        .grants
        .dirs
        .iter()
        .map(|d| weir_wasm::DirGrant { host: d.host.clone(), guest: d.guest.clone(), read_only: d.read_only })
        .collect();
    weir_wasm::Grants { dirs }
}

/// What building one operator node needs to know.
pub(crate) struct NodeContext<'a> {
    pub(crate) spec: &'a JobSpec,
    pub(crate) task: TaskInfo,
    /// The task name of the chain's head (what checkpoints are keyed by).
    pub(crate) chain_head: &'a str,
    pub(crate) metrics: Arc<NodeMetrics>,
    pub(crate) restore: Option<&'a Restore>,
    pub(crate) state_root: &'a StateRoot,
    pub(crate) attempt: u32,
}

/// Builds operator `o` of a task: a Wasm operator, or a window. Returns it
/// and the watermark a restored checkpoint recorded for it.
pub(crate) fn operator_node(
    cx: &NodeContext<'_>,
    o: &OperatorSpec,
    plugin: Option<&Plugin>,
) -> Result<(Box<dyn Node>, Option<Timestamp>)> {
    let (spec, task) = (cx.spec, &cx.task);
    let restored = cx.restore.map(|r| r.operator(cx.chain_head, &o.id)).transpose()?;
    let opened = cx.state_root.backend(&spec.name, task, spec.max_parallelism, restored.as_ref().map(|(s, _)| s))?;
    let restored_watermark = restored.as_ref().map(|(_, w)| *w);
    let groups = weir_types::key_groups_of_task(task.index, task.parallelism, spec.max_parallelism);
    // Logical restore, once the node's states are registered.
    let restore_logical = |backend: &mut dyn KeyedStateBackend| -> Result<()> {
        let Some((state, _)) = restored.as_ref().filter(|_| !opened.restored) else { return Ok(()) };
        let bytes = logical_snapshot(state, &backend.states(), task, spec.max_parallelism)?;
        weir_state::snapshot::restore_snapshot(backend, &bytes, |kg| groups.contains(&kg))
            .map_err(|e| RuntimeError::task(task, format!("cannot restore state: {e}")))
    };
    let limits = operator_limits(o);
    let config = o.config.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "null".to_string());
    let args = InitArgs {
        node_id: o.id.clone(),
        config,
        subtask_index: task.index,
        parallelism: task.parallelism,
        attempt: cx.attempt,
    };
    if let Some(window) = &o.window {
        let function = window_function(o, plugin, task, &limits, &args)?;
        let mut backend = opened.backend;
        backend.register(WINDOW_STATE, StateKind::Map).map_err(|e| RuntimeError::task(task, e))?;
        if function.buffers_records() {
            backend.register(RECORDS_STATE, StateKind::Map).map_err(|e| RuntimeError::task(task, e))?;
        }
        restore_logical(backend.as_mut())?;
        let setup = WindowSetup {
            window,
            function,
            on_error: o.on_error,
            max_parallelism: spec.max_parallelism,
            batch_size: spec.batch_size,
            watermark: restored_watermark.unwrap_or(weir_types::MIN_WATERMARK),
        };
        let mut op = WindowOperator::new(task.clone(), backend, setup, cx.metrics.clone())?;
        op.checkpoint_scratch = opened.scratch;
        return Ok((Box::new(op), restored_watermark));
    }
    let plugin = plugin.ok_or_else(|| RuntimeError::Setup(format!("operator `{}` has no plugin", o.id)))?;
    let mut instance = plugin
        .instantiate_with(&task.to_string(), opened.backend, spec.max_parallelism, &limits, &operator_grants(o))
        .map_err(|e| RuntimeError::plugin(task, e))?;
    instance.init(&args).map_err(|e| RuntimeError::plugin(task, e))?;
    restore_logical(instance.backend())?;
    let mut op = WasmOperator::new(task.clone(), instance, spec.max_parallelism, spec.batch_size, cx.metrics.clone())?;
    op.checkpoint_scratch = opened.scratch;
    op.on_error = o.on_error;
    op.max_emitted = limits.max_emitted;
    if let Some(w) = restored_watermark {
        op.restore_watermark(w);
    }
    Ok((Box::new(op), restored_watermark))
}

/// What window operator `o` computes: its built-in aggregate, or its
/// plugin (an aggregator or a window processor), instantiated and
/// initialized.
fn window_function(
    o: &OperatorSpec,
    plugin: Option<&Plugin>,
    task: &TaskInfo,
    limits: &weir_wasm::Limits,
    args: &InitArgs,
) -> Result<WindowFunction> {
    if let Some(aggregate) = &o.aggregate {
        return Ok(WindowFunction::Builtin(aggregate.clone()));
    }
    let plugin = plugin.ok_or_else(|| RuntimeError::Setup(format!("window `{}` has no plugin", o.id)))?;
    let (name, grants) = (task.to_string(), operator_grants(o));
    let function = match plugin.world() {
        World::Aggregator => {
            let mut instance =
                plugin.instantiate_aggregator(&name, limits, &grants).map_err(|e| RuntimeError::plugin(task, e))?;
            instance.init(args).map_err(|e| RuntimeError::plugin(task, e))?;
            WindowFunction::Aggregator(Box::new(instance))
        }
        World::WindowProcessor => {
            let mut instance = plugin
                .instantiate_window_processor(&name, limits, &grants)
                .map_err(|e| RuntimeError::plugin(task, e))?;
            instance.init(args).map_err(|e| RuntimeError::plugin(task, e))?;
            WindowFunction::Process(Box::new(instance))
        }
        World::Operator => {
            return Err(RuntimeError::Setup(format!(
                "operator `{}`: the plugin of a window must implement {} or {}, and {} implements {}",
                o.id,
                World::Aggregator,
                World::WindowProcessor,
                plugin.name(),
                World::Operator
            )));
        }
    };
    Ok(function)
}
