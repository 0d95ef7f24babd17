//! One instantiated operator: the calls of the `operator` world, with state
//! prefetch before and state application after.

use rustc_hash::FxHashSet;
use wasmtime::Store;
use weir_state::{KeyedStateBackend, StateKind};
use weir_types::Record;

use crate::bindings::{Operator, OperatorPre};
use crate::host::{HostState, to_wit};
use crate::wit::{self, StateEntry, StateOp, StateUpdate, TimeContext};
use crate::{PluginError, Result, describe};

/// Arguments of `init`.
#[derive(Debug, Clone)]
pub struct InitArgs {
    /// The node id.
    pub node_id: String,
    /// The operator config as JSON text (`null` when absent).
    pub config: String,
    /// This instance's index.
    pub subtask_index: u32,
    /// The node's parallelism.
    pub parallelism: u32,
}

/// A live operator instance of one task. It owns the task's keyed state.
pub struct OperatorInstance {
    store: Store<HostState>,
    bindings: Operator,
    /// Declared handles whose content is sent with every call.
    prefetched: Vec<u32>,
}

impl OperatorInstance {
    pub(crate) fn new(
        pre: &OperatorPre<HostState>,
        task: &str,
        backend: Box<dyn KeyedStateBackend>,
        max_parallelism: u32,
    ) -> Result<Self> {
        let mut store = Store::new(pre.engine(), HostState::new(task, backend, max_parallelism));
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|e| PluginError::Trap { call: "instantiate", message: describe(&e) })?;
        Ok(OperatorInstance { store, bindings, prefetched: Vec::new() })
    }

    /// Calls `init` and registers the declared states in the backend.
    pub fn init(&mut self, args: &InitArgs) -> Result<wit::OperatorInfo> {
        let ctx = wit::InitContext {
            node_id: args.node_id.clone(),
            config: args.config.clone(),
            subtask_index: args.subtask_index,
            parallelism: args.parallelism,
        };
        let result = self.bindings.call_init(&mut self.store, &ctx);
        let info = self.check("init", result)?;
        let data = self.store.data_mut();
        data.states.clear();
        self.prefetched.clear();
        for (handle, desc) in info.states.iter().enumerate() {
            let kind = match desc.kind {
                wit::StateKind::Value => StateKind::Value,
                wit::StateKind::List => StateKind::List,
                wit::StateKind::Map => StateKind::Map,
            };
            let id = data.backend.register(&desc.name, kind)?;
            data.states.push((id, kind));
            if desc.prefetch {
                self.prefetched.push(handle as u32);
            }
        }
        Ok(info)
    }

    /// The task's keyed state.
    pub fn backend(&mut self) -> &mut dyn KeyedStateBackend {
        self.store.data_mut().backend.as_mut()
    }

    /// The backend state id of a declared handle, with its name.
    pub fn state_id(&self, handle: u32) -> Option<weir_state::StateId> {
        self.store.data().states.get(handle as usize).map(|(id, _)| *id)
    }

    /// Processes a batch of records.
    pub fn process(&mut self, records: Vec<Record>, time: TimeContext) -> Result<wit::Effects> {
        let records: Vec<wit::Record> =
            records.into_iter().map(|r| wit::Record { key: r.key, value: r.value, timestamp: r.timestamp }).collect();
        let state = self.prefetch(records.iter().map(|r| r.key.as_deref()))?;
        let batch = wit::Batch { records, state, time };
        let result = self.bindings.call_process(&mut self.store, &batch);
        self.check("process", result)
    }

    /// Fires timers (in order).
    pub fn on_timer(&mut self, timers: Vec<wit::FiredTimer>, time: TimeContext) -> Result<wit::Effects> {
        let state = self.prefetch(timers.iter().map(|t| Some(t.key.as_slice())))?;
        let batch = wit::TimerBatch { timers, state, time };
        let result = self.bindings.call_on_timer(&mut self.store, &batch);
        self.check("on-timer", result)
    }

    /// Reads every prefetched state for the distinct keys of a call.
    fn prefetch<'k>(&mut self, keys: impl Iterator<Item = Option<&'k [u8]>>) -> Result<Vec<StateEntry>> {
        let mut entries = Vec::new();
        if self.prefetched.is_empty() {
            return Ok(entries);
        }
        let data = self.store.data_mut();
        let mut seen: FxHashSet<&[u8]> = FxHashSet::default();
        for (index, key) in keys.enumerate() {
            let Some(key) = key else { continue };
            if !seen.insert(key) {
                continue;
            }
            let kg = weir_types::key_group(key, data.max_parallelism);
            for &handle in &self.prefetched {
                let (id, _) = data.states[handle as usize];
                if let Some(content) = data.backend.get(id, kg, key)? {
                    entries.push(StateEntry { key: index as u32, state: handle, content: to_wit(content) });
                }
            }
        }
        Ok(entries)
    }

    /// Applies a call's state updates to the backend.
    pub fn apply_state_updates(&mut self, updates: Vec<StateUpdate>) -> Result<()> {
        let data = self.store.data_mut();
        for update in updates {
            let Some(&(id, kind)) = data.states.get(update.state as usize) else {
                return Err(PluginError::Contract(format!("state update for unknown state handle {}", update.state)));
            };
            let kg = weir_types::key_group(&update.key, data.max_parallelism);
            let key = &update.key;
            let wrong = || PluginError::Contract(format!("state handle {} is a {kind:?} state", update.state));
            match update.op {
                StateOp::Set(v) if kind == StateKind::Value => data.backend.set_value(id, kg, key, &v)?,
                StateOp::SetList(items) if kind == StateKind::List => data.backend.set_list(id, kg, key, items)?,
                StateOp::Append(items) if kind == StateKind::List => data.backend.append(id, kg, key, items)?,
                StateOp::MapPut(entries) if kind == StateKind::Map => data.backend.map_put(id, kg, key, entries)?,
                StateOp::MapRemove(keys) if kind == StateKind::Map => data.backend.map_remove(id, kg, key, keys)?,
                StateOp::Clear => data.backend.clear(id, kg, key)?,
                _ => return Err(wrong()),
            }
        }
        Ok(())
    }

    fn check<T>(&self, call: &'static str, result: wasmtime::Result<Result<T, wit::OperatorError>>) -> Result<T> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(PluginError::Operator { call, message: e.message }),
            Err(e) => {
                let mut message = describe(&e);
                let said = guest_stderr(&self.store.data().stderr.contents());
                if !said.is_empty() {
                    message.push_str(&format!(" (guest stderr: {said})"));
                }
                Err(PluginError::Trap { call, message })
            }
        }
    }
}

/// The guest's stderr on one line, without Rust's backtrace hint, at most
/// the last 2 KiB.
fn guest_stderr(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let joined = lines.join(" ");
    match joined.char_indices().rev().nth(2048) {
        Some((i, _)) => format!("…{}", &joined[i..]),
        None => joined,
    }
}
