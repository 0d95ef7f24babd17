//! Building a task's nodes: opening their keyed state (restored from every
//! old subtask that held some of their key groups, when a checkpoint is
//! given) and creating Wasm operators and windows over it.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_spec::OperatorSpec;
use weir_state::{KeyedState, KeyedStateBackend, MemoryBackend, StateDescriptor};
use weir_state_rocksdb::RocksDbBackend;
use weir_types::{TaskInfo, Timestamp};
use weir_wasm::{InitArgs, Plugin, World};

use crate::checkpointing::restore::{RestoredPart, RestoredState};
use crate::error::{Result, RuntimeError};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::{InstanceSetup, WasmOperator};
use crate::window::{WindowFunction, WindowOperator, WindowSetup};

/// Where a job's keyed state lives.
pub(crate) enum StateRoot {
    Memory,
    /// The job's own directory (under the root, by job id), and the
    /// temporary directory that holds it (if any), kept until the job ends.
    Rocks {
        dir: PathBuf,
        _temp: Option<tempfile::TempDir>,
    },
}

impl Drop for StateRoot {
    /// A job's working state goes with the job (checkpoints keep what lasts).
    fn drop(&mut self) {
        if let StateRoot::Rocks { dir, _temp: None } = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A node subtask's opened state.
pub(crate) struct OpenedState {
    pub(crate) state: KeyedState,
    /// Where native checkpoints go (RocksDB).
    pub(crate) scratch: Option<PathBuf>,
    /// The lowest watermark of the restored parts.
    pub(crate) watermark: Option<Timestamp>,
}

impl StateRoot {
    /// Opens a subtask's state, restored from `parts` (the old subtasks'
    /// state covering its key groups). A RocksDB backend restoring exactly
    /// one RocksDB part of the same key groups opens its files in place;
    /// every other restore copies the entries of the subtask's key groups.
    pub(crate) fn open(
        &self,
        task: &TaskInfo,
        max_parallelism: u32,
        parts: &[RestoredPart],
        states: Vec<StateDescriptor>,
    ) -> Result<OpenedState> {
        let groups = weir_types::key_groups_of_task(task.index, task.parallelism, max_parallelism);
        let watermark = parts.iter().map(|p| p.watermark).min();
        let fail = |e| RuntimeError::state(task, e);
        let (mut backend, scratch, in_place): (Box<dyn KeyedStateBackend>, _, _) = match self {
            StateRoot::Memory => (Box::new(MemoryBackend::new(max_parallelism)), None, false),
            StateRoot::Rocks { dir: root, .. } => {
                let dir = root.join(format!("{}-{}", task.node, task.index));
                let scratch = root.join(format!("{}-{}.checkpoints", task.node, task.index));
                // Working state only: a start restores from a checkpoint, if any.
                for d in [&dir, &scratch] {
                    if d.exists() {
                        std::fs::remove_dir_all(d).map_err(RuntimeError::io("cannot reset the state directory", d))?;
                    }
                }
                std::fs::create_dir_all(&scratch)
                    .map_err(RuntimeError::io("cannot create the state directory", &scratch))?;
                match parts {
                    [one @ RestoredPart { state: RestoredState::Rocksdb { .. }, .. }] if one.key_groups == groups => {
                        let ids = one.state.place_rocksdb(&dir)?;
                        let backend = RocksDbBackend::open_restored(&dir, max_parallelism, ids).map_err(fail)?;
                        (Box::new(backend), Some(scratch), true)
                    }
                    _ => {
                        std::fs::create_dir_all(&dir)
                            .map_err(RuntimeError::io("cannot create the state directory", &dir))?;
                        let backend = RocksDbBackend::open(&dir, max_parallelism).map_err(fail)?;
                        (Box::new(backend), Some(scratch), false)
                    }
                }
            }
        };
        if !in_place {
            for part in parts {
                restore_part(backend.as_mut(), part, &states, &groups, task, max_parallelism)?;
            }
        }
        let mut state = KeyedState::new(backend, max_parallelism, groups);
        state.set_restored(states);
        Ok(OpenedState { state, scratch, watermark })
    }
}

/// Copies the entries of `groups` from one old subtask's state into
/// `backend`. A RocksDB part is opened in a temporary directory first (its
/// states registered under their storage names).
fn restore_part(
    backend: &mut dyn KeyedStateBackend,
    part: &RestoredPart,
    states: &[StateDescriptor],
    groups: &Range<u16>,
    task: &TaskInfo,
    max_parallelism: u32,
) -> Result<()> {
    let fail = |e| RuntimeError::state(task, e);
    let bytes = match &part.state {
        RestoredState::Logical(file) => {
            std::fs::read(file).map_err(RuntimeError::io("cannot read checkpoint state", file))?
        }
        RestoredState::Bytes(bytes) => bytes.clone(),
        RestoredState::Rocksdb { .. } => {
            let tmp = tempfile::Builder::new()
                .prefix("weir-restore-")
                .tempdir()
                .map_err(RuntimeError::io("cannot create a temporary directory in", &std::env::temp_dir()))?;
            let dir = tmp.path().join("db");
            let ids = part.state.place_rocksdb(&dir)?;
            let mut db = RocksDbBackend::open_restored(&dir, max_parallelism, ids).map_err(fail)?;
            for s in states {
                let (name, kind) = s.storage();
                db.register(&name, kind).map_err(fail)?;
            }
            let mut bytes = Vec::new();
            weir_state::snapshot::write_snapshot(&mut db, &mut bytes).map_err(fail)?;
            bytes
        }
    };
    weir_state::snapshot::restore_snapshot(backend, &bytes, |kg| groups.contains(&kg)).map_err(fail)
}

/// An operator's limits: the spec's, over the defaults.
pub fn operator_limits(o: &OperatorSpec) -> weir_wasm::Limits {
    let d = weir_wasm::Limits::default();
    weir_wasm::Limits {
        memory_bytes: o.limits.memory.unwrap_or(d.memory_bytes),
        call_timeout: o.limits.call_timeout.unwrap_or(d.call_timeout),
        fuel: o.limits.fuel.or(d.fuel),
        table_elements: d.table_elements,
        max_emitted: o.limits.max_emitted.unwrap_or(d.max_emitted),
        // What the host copies out of a call: as much as the plugin's memory, by default.
        max_output_bytes: o.limits.max_output.or(o.limits.memory).unwrap_or(d.max_output_bytes),
    }
}

/// What an operator's plugin may reach: what the spec grants.
fn operator_grants(o: &OperatorSpec) -> weir_wasm::Grants {
    let dirs = o
        .grants
        .dirs
        .iter()
        .map(|d| weir_wasm::DirGrant { host: d.host.clone(), guest: d.guest.clone(), read_only: d.read_only })
        .collect();
    weir_wasm::Grants { dirs }
}

/// How operator `o`'s plugin instances are set up in subtask `task`.
pub(crate) fn instance_setup(o: &OperatorSpec, task: &TaskInfo, attempt: u32) -> InstanceSetup {
    InstanceSetup {
        limits: operator_limits(o),
        grants: operator_grants(o),
        args: InitArgs {
            node_id: o.id.clone(),
            config: o.config.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "null".to_string()),
            subtask_index: task.index,
            parallelism: task.parallelism,
            attempt,
        },
    }
}

/// What building one operator node needs to know.
pub(crate) struct NodeContext<'a> {
    pub(crate) max_parallelism: u32,
    pub(crate) batch_size: usize,
    pub(crate) task: TaskInfo,
    pub(crate) metrics: Arc<NodeMetrics>,
    /// The restored state of the subtask's key groups, and the states the
    /// checkpoint holds for the node.
    pub(crate) restored: (Vec<RestoredPart>, Vec<StateDescriptor>),
    /// The schema version of each restored state (those not 0).
    pub(crate) schemas: std::collections::BTreeMap<String, u32>,
    pub(crate) state_root: &'a StateRoot,
    pub(crate) attempt: u32,
}

/// A built operator node: the node, where it writes native checkpoints,
/// and the watermark a restored checkpoint recorded for it.
pub(crate) struct BuiltNode {
    pub(crate) node: Box<dyn Node>,
    pub(crate) scratch: Option<PathBuf>,
    pub(crate) watermark: Option<Timestamp>,
}

/// Builds operator `o` of a task: a Wasm operator, or a window.
pub(crate) fn operator_node(cx: NodeContext<'_>, o: &OperatorSpec, plugin: Option<&Plugin>) -> Result<BuiltNode> {
    let task = &cx.task;
    let (parts, states) = cx.restored;
    let mut opened = cx.state_root.open(task, cx.max_parallelism, &parts, states)?;
    for (name, version) in &cx.schemas {
        opened.state.set_schema(name, *version);
    }
    let setup = instance_setup(o, task, cx.attempt);
    if let Some(window) = &o.window {
        let function = window_function(o, plugin, task, &setup)?;
        let setup = WindowSetup {
            window,
            function,
            instance: setup,
            on_error: o.on_error,
            batch_size: cx.batch_size,
            watermark: opened.watermark.unwrap_or(weir_types::MIN_WATERMARK),
        };
        let op = WindowOperator::new(task.clone(), opened.state, setup, cx.metrics.clone())?;
        return Ok(BuiltNode { node: Box::new(op), scratch: opened.scratch, watermark: opened.watermark });
    }
    let plugin = plugin
        .ok_or_else(|| RuntimeError::Config { node: o.id.clone(), message: "the operator has no plugin".into() })?;
    let mut op = WasmOperator::new(task.clone(), plugin, setup, opened.state, cx.batch_size, cx.metrics.clone())?;
    op.on_error = o.on_error;
    if let Some(w) = opened.watermark {
        op.restore_watermark(w);
    }
    Ok(BuiltNode { node: Box::new(op), scratch: opened.scratch, watermark: opened.watermark })
}

/// What window operator `o` computes: its built-in aggregate, or its
/// plugin (an aggregator or a window processor), instantiated and
/// initialized.
fn window_function(
    o: &OperatorSpec,
    plugin: Option<&Plugin>,
    task: &TaskInfo,
    setup: &InstanceSetup,
) -> Result<WindowFunction> {
    if let Some(aggregate) = &o.aggregate {
        return Ok(WindowFunction::Builtin(aggregate.clone()));
    }
    let plugin = plugin
        .ok_or_else(|| RuntimeError::Config { node: o.id.clone(), message: "the window has no plugin".into() })?;
    if plugin.world() == World::Operator {
        return Err(RuntimeError::Config {
            node: o.id.clone(),
            message: format!(
                "the plugin of a window must implement {} or {}, and {} implements {}",
                World::Aggregator,
                World::WindowProcessor,
                plugin.name(),
                World::Operator
            ),
        });
    }
    window_plugin(plugin, task, setup)
}

/// A window function instance of `plugin` (an aggregator or a window
/// processor), initialized.
pub(crate) fn window_plugin(plugin: &Plugin, task: &TaskInfo, setup: &InstanceSetup) -> Result<WindowFunction> {
    let name = task.to_string();
    let fail = |e| RuntimeError::plugin(task, e);
    Ok(match plugin.world() {
        World::WindowProcessor => {
            let mut instance =
                plugin.instantiate_window_processor(&name, &setup.limits, &setup.grants).map_err(fail)?;
            instance.init(&setup.args).map_err(fail)?;
            WindowFunction::Process(Box::new(instance))
        }
        // An operator is refused by `instantiate_aggregator` with both worlds named.
        World::Aggregator | World::Operator => {
            let mut instance = plugin.instantiate_aggregator(&name, &setup.limits, &setup.grants).map_err(fail)?;
            instance.init(&setup.args).map_err(fail)?;
            WindowFunction::Aggregator(Box::new(instance))
        }
    })
}

/// A job's state root: memory, or RocksDB under `dir` (a temporary
/// directory when `None`), in a directory of the job's own id.
pub(crate) fn state_root(backend: weir_spec::StateBackendKind, dir: Option<&Path>, job_id: &str) -> Result<StateRoot> {
    match (backend, dir) {
        (weir_spec::StateBackendKind::Memory, _) => Ok(StateRoot::Memory),
        (weir_spec::StateBackendKind::Rocksdb, Some(dir)) => {
            Ok(StateRoot::Rocks { dir: dir.join(job_id), _temp: None })
        }
        (weir_spec::StateBackendKind::Rocksdb, None) => {
            let tmp = tempfile::Builder::new()
                .prefix("weir-state-")
                .tempdir()
                .map_err(RuntimeError::io("cannot create a state directory in", &std::env::temp_dir()))?;
            Ok(StateRoot::Rocks { dir: tmp.path().join(job_id), _temp: Some(tmp) })
        }
    }
}
