//! The per-call cache of keyed state.
//!
//! The host sends, with every batch, the content of each prefetched state for
//! the keys in the batch. Reads and writes go to this cache; when the call
//! ends, the changes are turned into `state-update`s for the host — one per
//! key and state, however many records touched it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::bindings::weir::plugin::types::{StateEntry, StateKind, StateOp, StateUpdate, StateValue};

/// Content of one prefetched state for one key, with what changed.
#[derive(Debug)]
pub(crate) enum Slot {
    Value { value: Option<Vec<u8>>, dirty: bool },
    List { items: Vec<Vec<u8>>, original_len: usize, replaced: bool },
    Map { entries: BTreeMap<Vec<u8>, Vec<u8>>, changed: BTreeSet<Vec<u8>>, cleared: bool },
}

impl Slot {
    fn empty(kind: StateKind) -> Slot {
        match kind {
            StateKind::Value => Slot::Value { value: None, dirty: false },
            StateKind::List => Slot::List { items: Vec::new(), original_len: 0, replaced: false },
            StateKind::Map => Slot::Map { entries: BTreeMap::new(), changed: BTreeSet::new(), cleared: false },
        }
    }

    fn from_content(content: StateValue) -> Slot {
        match content {
            StateValue::Value(v) => Slot::Value { value: Some(v), dirty: false },
            StateValue::List(items) => Slot::List { original_len: items.len(), items, replaced: false },
            StateValue::Map(entries) => {
                Slot::Map { entries: entries.into_iter().collect(), changed: BTreeSet::new(), cleared: false }
            }
        }
    }

    /// Removes everything, remembering to tell the host.
    pub(crate) fn clear(&mut self) {
        match self {
            Slot::Value { value, dirty } => {
                *value = None;
                *dirty = true;
            }
            Slot::List { items, replaced, .. } => {
                items.clear();
                *replaced = true;
            }
            Slot::Map { entries, changed, cleared } => {
                entries.clear();
                changed.clear();
                *cleared = true;
            }
        }
    }

    fn flush(self, key: &[u8], state: u32, out: &mut Vec<StateUpdate>) {
        let mut push = |op| out.push(StateUpdate { key: key.to_vec(), state, op });
        match self {
            Slot::Value { dirty: false, .. } => {}
            Slot::Value { value: Some(v), .. } => push(StateOp::Set(v)),
            Slot::Value { value: None, .. } => push(StateOp::Clear),
            Slot::List { items, replaced: true, .. } if items.is_empty() => push(StateOp::Clear),
            Slot::List { items, replaced: true, .. } => push(StateOp::SetList(items)),
            Slot::List { mut items, original_len, .. } if items.len() > original_len => {
                push(StateOp::Append(items.split_off(original_len)))
            }
            Slot::List { .. } => {}
            Slot::Map { mut entries, changed, cleared } => {
                if cleared {
                    push(StateOp::Clear);
                }
                let mut puts = Vec::new();
                let mut removes = Vec::new();
                if cleared {
                    puts = std::mem::take(&mut entries).into_iter().collect();
                } else {
                    for k in changed {
                        match entries.remove(&k) {
                            Some(v) => puts.push((k, v)),
                            None => removes.push(k),
                        }
                    }
                }
                if !removes.is_empty() {
                    push(StateOp::MapRemove(removes));
                }
                if !puts.is_empty() {
                    push(StateOp::MapPut(puts));
                }
            }
        }
    }
}

/// One distinct key of a call and its prefetched states.
#[derive(Debug)]
pub(crate) struct KeyEntry {
    pub(crate) key: Vec<u8>,
    slots: Vec<Option<Slot>>,
}

/// The keys of one call and their prefetched state.
#[derive(Debug, Default)]
pub(crate) struct StateTable {
    kinds: Vec<(StateKind, bool)>,
    pub(crate) keys: Vec<KeyEntry>,
    index: HashMap<Vec<u8>, usize>,
}

impl StateTable {
    /// A table for the declared states (kind, prefetched).
    pub(crate) fn new(kinds: Vec<(StateKind, bool)>) -> Self {
        StateTable { kinds, keys: Vec::new(), index: HashMap::new() }
    }

    /// Forgets the previous call's keys, keeping allocations.
    pub(crate) fn reset(&mut self) {
        self.keys.clear();
        self.index.clear();
    }

    /// The index of `key`, adding it when new.
    pub(crate) fn key_index(&mut self, key: &[u8]) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.keys.len();
        self.keys.push(KeyEntry { key: key.to_vec(), slots: Vec::new() });
        self.index.insert(key.to_vec(), i);
        i
    }

    /// Loads the host's prefetched entries; `key_of` maps an entry's element
    /// index to that element's key.
    pub(crate) fn load<'k>(&mut self, entries: Vec<StateEntry>, key_of: impl Fn(usize) -> Option<&'k [u8]>) {
        for entry in entries {
            let Some(key) = key_of(entry.key as usize) else { continue };
            let k = self.key_index(key);
            let state = entry.state as usize;
            if state >= self.kinds.len() {
                continue;
            }
            let slots = &mut self.keys[k].slots;
            if slots.len() <= state {
                slots.resize_with(state + 1, || None);
            }
            slots[state] = Some(Slot::from_content(entry.content));
        }
    }

    /// The slot of `state` for key `k`, created empty when absent.
    pub(crate) fn slot(&mut self, k: usize, state: u32) -> &mut Slot {
        let state = state as usize;
        let kind = self.kinds[state].0;
        let slots = &mut self.keys[k].slots;
        if slots.len() <= state {
            slots.resize_with(state + 1, || None);
        }
        slots[state].get_or_insert_with(|| Slot::empty(kind))
    }

    /// Turns every change into state updates and empties the table.
    pub(crate) fn flush(&mut self, out: &mut Vec<StateUpdate>) {
        for entry in self.keys.drain(..) {
            for (state, slot) in entry.slots.into_iter().enumerate() {
                if let Some(slot) = slot {
                    slot.flush(&entry.key, state as u32, out);
                }
            }
        }
        self.index.clear();
    }
}
