//! One instantiated operator: the calls of the `operator` world, with state
//! prefetch before and state application after.

use rustc_hash::FxHashMap;
use weir_state::{Items, KeyedState, KeyedStateBackend, StateDescriptor, StateEncoding, StateId, StateKind};
use weir_types::RecordBatch;

use crate::bindings::{Operator, OperatorPre};
use crate::convert::{ItemsView, items_to_wit, lend_batch, return_batch};
use crate::host::{DeclaredState, HostState};
use crate::migration::MigrationExports;
use crate::packed;
use crate::sandbox::Sandbox;
use crate::wit::{self, StateEntry, TimeContext, UpdateKind};
use crate::{Grants, Limits, PluginError, Result};

/// `same-key` for an element without a key.
const NO_KEY: u32 = u32::MAX;
/// The most states one operator may declare (each costs the backend a
/// structure per key group).
pub const MAX_STATES: usize = 64;
/// The longest state name.
pub const MAX_STATE_NAME: usize = 256;

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
    /// Restarts of the job before this start.
    pub attempt: u32,
}

impl InitArgs {
    /// The `init-context` every world's `init` receives.
    pub(crate) fn to_wit(&self) -> wit::InitContext {
        wit::InitContext {
            node_id: self.node_id.clone(),
            config: self.config.clone(),
            subtask_index: self.subtask_index,
            parallelism: self.parallelism,
            attempt: self.attempt,
        }
    }
}

/// A live operator instance of one task. The task's keyed state is not
/// its own: the runtime lends it to each call, so the instance can be
/// replaced (another plugin version) while the state stays.
pub struct OperatorInstance {
    pub(crate) sandbox: Sandbox,
    bindings: Operator,
    /// `weir:plugin@0.2.0`'s migration exports, when the plugin has them.
    pub(crate) migration: Option<MigrationExports>,
    /// Declared handles whose content is sent with every call.
    prefetched: Vec<u32>,
    /// Reused buffer for packing maps.
    scratch: Vec<u8>,
}

impl OperatorInstance {
    pub(crate) fn new(pre: &OperatorPre<HostState>, task: &str, limits: &Limits, grants: &Grants) -> Result<Self> {
        let mut sandbox = Sandbox::new(pre.instance_pre(), task, limits, grants)?;
        let instance = sandbox.instantiate(|store| pre.instance_pre().instantiate(store))?;
        let bindings = sandbox.instantiate(|store| Operator::new(store, &instance))?;
        let migration = MigrationExports::find(&mut sandbox, &instance)?;
        Ok(OperatorInstance { sandbox, bindings, migration, prefetched: Vec::new(), scratch: Vec::new() })
    }

    /// Calls `init` and declares the plugin's states in `state` (checked
    /// against what a restored checkpoint holds there).
    pub fn init(&mut self, args: &InitArgs, state: &mut KeyedState) -> Result<wit::OperatorInfo> {
        let ctx = args.to_wit();
        self.sandbox.arm()?;
        let bindings = &self.bindings;
        let result = bindings.call_init(&mut self.sandbox.store, &ctx);
        let info = self.sandbox.check("init", result)?;
        if info.states.len() > MAX_STATES {
            return Err(PluginError::Contract(format!(
                "it declares {} states (at most {MAX_STATES})",
                info.states.len()
            )));
        }
        if let Some(long) = info.states.iter().find(|s| s.name.len() > MAX_STATE_NAME) {
            return Err(PluginError::Contract(format!(
                "it declares a state with a name of {} bytes (at most {MAX_STATE_NAME})",
                long.name.len()
            )));
        }
        let data = self.sandbox.store.data_mut();
        data.states.clear();
        data.max_parallelism = state.max_parallelism();
        self.prefetched.clear();
        state.begin_declarations();
        for (handle, desc) in info.states.iter().enumerate() {
            let kind = match desc.kind {
                wit::StateKind::Value => StateKind::Value,
                wit::StateKind::List => StateKind::List,
                wit::StateKind::Map => StateKind::Map,
            };
            let packed = desc.prefetch && kind == StateKind::Map;
            let encoding = if packed { StateEncoding::PackedMap } else { StateEncoding::Rows };
            let id = state.declare(&StateDescriptor { name: desc.name.clone(), kind, encoding })?;
            data.states.push(DeclaredState { id, kind, prefetch: desc.prefetch, packed });
            if desc.prefetch {
                self.prefetched.push(handle as u32);
            }
        }
        Ok(info)
    }

    /// Every (key group, key, content) of a declared state, as the plugin
    /// sees it (packed maps unpacked).
    pub fn state_entries(
        &mut self,
        state: &mut KeyedState,
        handle: u32,
    ) -> Result<Vec<(u16, Vec<u8>, weir_state::StateContent)>> {
        let data = self.sandbox.store.data_mut();
        let s = *data
            .states
            .get(handle as usize)
            .ok_or_else(|| PluginError::Contract(format!("no state handle {handle}")))?;
        let mut entries = state.backend().entries(s.id)?;
        if s.packed {
            for (_, _, content) in &mut entries {
                if let weir_state::StateContent::Value(bytes) = content {
                    let mut map = Vec::new();
                    packed::for_each(bytes, |k, v| map.push((k.to_vec(), v.to_vec())))?;
                    *content = weir_state::StateContent::Map(map);
                }
            }
        }
        Ok(entries)
    }

    /// Processes a batch of records over `state`. The batch's bytes are
    /// lent to the call, not copied: it is whole again when this returns.
    pub fn process(
        &mut self,
        state: &mut KeyedState,
        records: &mut RecordBatch,
        time: TimeContext,
    ) -> Result<wit::Effects> {
        let prefetched = self.prefetch(state, (0..records.len()).map(|i| records.key(i)))?;
        let batch = wit::Batch { records: lend_batch(records), state: prefetched, time };
        let bindings = &self.bindings;
        let result = self.sandbox.lending(state, |sandbox| {
            sandbox.arm()?;
            let result = bindings.call_process(&mut sandbox.store, &batch);
            sandbox.check("process", result)
        });
        return_batch(records, batch.records);
        result
    }

    /// Fires timers (in order) over `state`.
    pub fn on_timer(
        &mut self,
        state: &mut KeyedState,
        timers: Vec<wit::FiredTimer>,
        time: TimeContext,
    ) -> Result<wit::Effects> {
        let prefetched = self.prefetch(state, timers.iter().map(|t| Some(t.key.as_slice())))?;
        let batch = wit::TimerBatch { timers, state: prefetched, time };
        let bindings = &self.bindings;
        self.sandbox.lending(state, |sandbox| {
            sandbox.arm()?;
            let result = bindings.call_on_timer(&mut sandbox.store, &batch);
            sandbox.check("on-timer", result)
        })
    }

    /// Reads every prefetched state for the distinct keys of a call into one
    /// packed buffer, and groups the call's elements by key.
    fn prefetch<'k>(
        &mut self,
        state: &mut KeyedState,
        keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>,
    ) -> Result<wit::PrefetchedState> {
        let mut items = Items::default();
        let mut entries = Vec::new();
        let mut same_key = Vec::new();
        if !self.prefetched.is_empty() {
            let data = self.sandbox.store.data();
            let max_parallelism = state.max_parallelism();
            let backend = state.backend();
            same_key.reserve(keys.len());
            let mut first: FxHashMap<&[u8], u32> = FxHashMap::with_capacity_and_hasher(keys.len(), Default::default());
            for (index, key) in keys.enumerate() {
                let index = index as u32;
                let Some(key) = key else {
                    same_key.push(NO_KEY);
                    continue;
                };
                let first = *first.entry(key).or_insert(index);
                same_key.push(first);
                if first != index {
                    continue;
                }
                let kg = weir_types::key_group(key, max_parallelism);
                for &handle in &self.prefetched {
                    let s = data.states[handle as usize];
                    let first_item = items.len() as u32;
                    let item_count = if s.packed {
                        backend.visit_value(s.id, kg, key, &mut |bytes| packed::unpack_into(bytes, &mut items))?
                    } else {
                        backend.read_into(s.id, kg, key, &mut items)?
                    };
                    if item_count > 0 {
                        entries.push(StateEntry { key: index, state: handle, first_item, item_count });
                    }
                }
            }
        }
        Ok(wit::PrefetchedState { items: items_to_wit(items), entries, same_key })
    }

    /// Applies a call's state updates to `state`: all of them, or — when
    /// one does not fit its state or its items — none (checked first).
    pub fn apply_state_updates(&mut self, state: &mut KeyedState, updates: &wit::StateUpdates) -> Result<()> {
        let states = &self.sandbox.store.data().states;
        let items = ItemsView(&updates.items);
        check_updates(states, &items, &updates.updates)?;
        let maxp = state.max_parallelism();
        let backend = state.backend();
        // A packed map being rewritten whole: (handle, key, entries).
        let mut rewrite: Option<(u32, &[u8], MapEntries)> = None;
        for u in &updates.updates {
            // `check_updates` admitted the handle, the items and the kind.
            let s = states[u.state as usize];
            let key = items.get(u.key)?;
            if rewrite.as_ref().is_some_and(|(h, k, _)| (*h, *k) != (u.state, key)) {
                let (h, k, entries) = rewrite.take().expect("checked");
                write_packed(backend, states, maxp, h, k, entries)?;
            }
            let kg = weir_types::key_group(key, maxp);
            let operand = |i: u32| items.get(u.first_item.saturating_add(i));
            if s.packed {
                // The common case: the whole map, in key order, stored as sent.
                if u.kind == UpdateKind::Replace {
                    rewrite = None; // superseded (other keys' were written above)
                    if !packed::pack_sorted_into(u.item_count, operand, &mut self.scratch)? {
                        self.scratch = packed::pack(&mut pairs(u.item_count, operand)?);
                    }
                    store_packed(backend, s.id, kg, key, &self.scratch)?;
                    continue;
                }
                // Clear starts a whole rewrite; other changes apply to the
                // rewrite in progress, or else to the stored map.
                let entries = match (&mut rewrite, u.kind) {
                    (_, UpdateKind::Clear) => {
                        rewrite = Some((u.state, key, Vec::new()));
                        continue;
                    }
                    (Some((_, _, entries)), _) => entries,
                    (None, _) => {
                        let mut entries = Vec::new();
                        if let Some(weir_state::StateContent::Value(bytes)) = backend.get(s.id, kg, key)? {
                            packed::for_each(&bytes, |k, v| entries.push((k.to_vec(), v.to_vec())))?;
                        }
                        &mut rewrite.insert((u.state, key, entries)).2
                    }
                };
                match u.kind {
                    UpdateKind::MapPut => entries.extend(pairs(u.item_count, operand)?),
                    UpdateKind::MapRemove => {
                        for i in 0..u.item_count {
                            let k = operand(i)?;
                            entries.retain(|(ek, _)| ek != k);
                        }
                    }
                    _ => unreachable!("check_updates admits only updates that fit their state"),
                }
                continue;
            }
            match (u.kind, s.kind) {
                (UpdateKind::Clear, _) | (UpdateKind::Replace, StateKind::Value) if u.item_count == 0 => {
                    backend.clear(s.id, kg, key)?
                }
                (UpdateKind::Set | UpdateKind::Replace, StateKind::Value) if u.item_count == 1 => {
                    backend.set_value(s.id, kg, key, operand(0)?)?
                }
                (UpdateKind::Replace, StateKind::List) => {
                    backend.clear(s.id, kg, key)?;
                    for i in 0..u.item_count {
                        backend.append(s.id, kg, key, operand(i)?)?;
                    }
                }
                (UpdateKind::Replace, StateKind::Map) => {
                    let entries = pairs(u.item_count, operand)?;
                    backend.clear(s.id, kg, key)?;
                    for (k, v) in &entries {
                        backend.map_put(s.id, kg, key, k, v)?;
                    }
                }
                (UpdateKind::Append, StateKind::List) => {
                    for i in 0..u.item_count {
                        backend.append(s.id, kg, key, operand(i)?)?;
                    }
                }
                (UpdateKind::MapPut, StateKind::Map) => {
                    for i in (0..u.item_count).step_by(2) {
                        backend.map_put(s.id, kg, key, operand(i)?, operand(i + 1)?)?;
                    }
                }
                (UpdateKind::MapRemove, StateKind::Map) => {
                    for i in 0..u.item_count {
                        backend.map_remove(s.id, kg, key, operand(i)?)?;
                    }
                }
                _ => unreachable!("check_updates admits only updates that fit their state"),
            }
        }
        if let Some((h, k, entries)) = rewrite {
            write_packed(backend, states, maxp, h, k, entries)?;
        }
        Ok(())
    }
}

/// Checks that every update names a declared state, lies inside the items
/// buffer and fits its state's kind: what makes applying them all-or-nothing
/// (only storage can fail after this).
fn check_updates(states: &[DeclaredState], items: &ItemsView<'_>, updates: &[wit::StateUpdate]) -> Result<()> {
    for (n, u) in updates.iter().enumerate() {
        let Some(s) = states.get(u.state as usize) else {
            return Err(PluginError::Contract(format!("state update #{n} is for unknown state handle {}", u.state)));
        };
        items.get(u.key)?;
        let end = u.first_item.checked_add(u.item_count);
        if end.is_none_or(|end| end > items.len()) {
            return Err(PluginError::Contract(format!(
                "state update #{n} has items {}..+{} of {}",
                u.first_item,
                u.item_count,
                items.len()
            )));
        }
        for i in u.first_item..u.first_item + u.item_count {
            items.get(i)?;
        }
        let even = u.item_count.is_multiple_of(2);
        let fits = match (u.kind, s.kind) {
            (UpdateKind::Clear, _) => u.item_count == 0,
            (UpdateKind::Set, StateKind::Value) => u.item_count == 1,
            (UpdateKind::Replace, StateKind::Value) => u.item_count <= 1,
            (UpdateKind::Replace, StateKind::List) | (UpdateKind::Append, StateKind::List) => true,
            (UpdateKind::Replace | UpdateKind::MapPut, StateKind::Map) => even,
            (UpdateKind::MapRemove, StateKind::Map) => true,
            _ => false,
        };
        if !fits {
            let kind = match u.kind {
                UpdateKind::Set => "set",
                UpdateKind::Append => "append",
                UpdateKind::MapPut => "map-put",
                UpdateKind::MapRemove => "map-remove",
                UpdateKind::Clear => "clear",
                UpdateKind::Replace => "replace",
            };
            return Err(PluginError::Contract(format!(
                "`{kind}` with {} items does not apply to state handle {} (a {} state)",
                u.item_count,
                u.state,
                s.kind.name()
            )));
        }
    }
    Ok(())
}

/// A map's entries in write order.
type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// `count` items (key, value, ...) as map entries.
fn pairs<'a>(count: u32, item: impl Fn(u32) -> Result<&'a [u8]>) -> Result<MapEntries> {
    if !count.is_multiple_of(2) {
        return Err(PluginError::Contract(format!("a map update has {count} items, not key-value pairs")));
    }
    (0..count).step_by(2).map(|i| Ok((item(i)?.to_vec(), item(i + 1)?.to_vec()))).collect()
}

/// Stores a packed map (or removes it when empty).
fn write_packed(
    backend: &mut dyn KeyedStateBackend,
    states: &[DeclaredState],
    max_parallelism: u32,
    handle: u32,
    key: &[u8],
    mut entries: MapEntries,
) -> Result<()> {
    let id = states[handle as usize].id;
    let kg = weir_types::key_group(key, max_parallelism);
    store_packed(backend, id, kg, key, &packed::pack(&mut entries))
}

/// Stores packed map bytes as the key's value, or clears it when empty.
fn store_packed(backend: &mut dyn KeyedStateBackend, id: StateId, kg: u16, key: &[u8], bytes: &[u8]) -> Result<()> {
    match bytes.is_empty() {
        true => backend.clear(id, kg, key)?,
        false => backend.set_value(id, kg, key, bytes)?,
    }
    Ok(())
}
