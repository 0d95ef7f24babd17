//! The per-call cache of keyed state.
//!
//! The host sends, with every batch, the content of each prefetched state for
//! the keys in the batch. Reads and writes go to this cache; when the call
//! ends, the changes are turned into `state-update`s for the host — one per
//! key and state, however many records touched it.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::bindings::weir::plugin::types::{Items, PrefetchedState, StateKind, StateUpdate, StateUpdates, UpdateKind};

/// Content of one prefetched state for one key, with what changed.
#[derive(Debug)]
pub(crate) enum Slot {
    Value { value: Option<Vec<u8>>, dirty: bool },
    List { items: Vec<Vec<u8>>, original_len: usize, replaced: bool },
    Map(MapSlot),
}

/// One key's map, as a vector sorted by map key (maps of a key are small
/// when prefetched). A changed map goes back to the host whole, so one flag
/// says whether it changed.
#[derive(Debug, Default)]
pub(crate) struct MapSlot {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    dirty: bool,
}

impl MapSlot {
    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_slice().cmp(key))
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(key).ok().map(|i| self.entries[i].1.as_slice())
    }

    /// Sets `key`'s value to what `write` writes, reusing the old value's
    /// buffer when there is one.
    pub(crate) fn put_with<E>(
        &mut self,
        key: &[u8],
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.find(key) {
            Ok(i) => {
                let value = &mut self.entries[i].1;
                value.clear();
                write(value)?;
            }
            Err(i) => {
                let mut value = Vec::new();
                write(&mut value)?;
                self.entries.insert(i, (key.to_vec(), value));
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        if let Ok(i) = self.find(key) {
            self.entries.remove(i);
            self.dirty = true;
        }
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Whether there is no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Slot {
    fn empty(kind: StateKind) -> Slot {
        match kind {
            StateKind::Value => Slot::Value { value: None, dirty: false },
            StateKind::List => Slot::List { items: Vec::new(), original_len: 0, replaced: false },
            StateKind::Map => Slot::Map(MapSlot::default()),
        }
    }

    fn from_items(kind: StateKind, items: &[&[u8]]) -> Slot {
        match kind {
            StateKind::Value => Slot::Value { value: items.first().map(|v| v.to_vec()), dirty: false },
            StateKind::List => Slot::List {
                items: items.iter().map(|i| i.to_vec()).collect(),
                original_len: items.len(),
                replaced: false,
            },
            StateKind::Map => {
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> =
                    items.chunks_exact(2).map(|kv| (kv[0].to_vec(), kv[1].to_vec())).collect();
                // The host sends entries in key order; do not rely on it.
                if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                Slot::Map(MapSlot { entries, dirty: false })
            }
        }
    }

    /// Whether nothing changed.
    fn is_clean(&self) -> bool {
        match self {
            Slot::Value { dirty, .. } => !dirty,
            Slot::List { items, original_len, replaced } => !replaced && items.len() == *original_len,
            Slot::Map(m) => !m.dirty,
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
            Slot::Map(m) => {
                m.entries.clear();
                m.dirty = true;
            }
        }
    }

    fn flush(self, key: u32, state: u32, out: &mut UpdatesBuilder) {
        match self {
            Slot::Value { dirty: false, .. } => {}
            Slot::Value { value: Some(v), .. } => out.push(state, key, UpdateKind::Set, [v.as_slice()]),
            Slot::Value { value: None, .. } => out.push(state, key, UpdateKind::Clear, []),
            Slot::List { items, replaced: true, .. } => {
                out.push(state, key, UpdateKind::Clear, []);
                if !items.is_empty() {
                    out.push(state, key, UpdateKind::Append, items.iter().map(Vec::as_slice));
                }
            }
            Slot::List { items, original_len, .. } if items.len() > original_len => {
                out.push(state, key, UpdateKind::Append, items[original_len..].iter().map(Vec::as_slice))
            }
            Slot::List { .. } => {}
            // A changed map goes back whole: the host stores prefetched maps
            // as one value, so a rewrite costs one write and no read.
            Slot::Map(m) => {
                out.push(state, key, UpdateKind::Clear, []);
                if !m.is_empty() {
                    out.push(state, key, UpdateKind::MapPut, m.iter().flat_map(|(k, v)| [k, v]));
                }
            }
        }
    }
}

/// State updates being packed for the host.
#[derive(Debug, Default)]
pub(crate) struct UpdatesBuilder {
    data: Vec<u8>,
    /// Offset and length per item.
    spans: Vec<u32>,
    updates: Vec<StateUpdate>,
}

impl UpdatesBuilder {
    fn item(&mut self, bytes: &[u8]) -> u32 {
        self.spans.extend_from_slice(&[self.data.len() as u32, bytes.len() as u32]);
        self.data.extend_from_slice(bytes);
        self.spans.len() as u32 / 2 - 1
    }

    /// Adds the key as an item and returns its index.
    pub(crate) fn key(&mut self, key: &[u8]) -> u32 {
        self.item(key)
    }

    fn push<'i>(&mut self, state: u32, key: u32, kind: UpdateKind, operands: impl IntoIterator<Item = &'i [u8]>) {
        let first_item = self.spans.len() as u32 / 2;
        for o in operands {
            self.item(o);
        }
        let item_count = self.spans.len() as u32 / 2 - first_item;
        self.updates.push(StateUpdate { state, key, kind, first_item, item_count });
    }

    pub(crate) fn finish(self) -> StateUpdates {
        StateUpdates { items: Items { data: self.data, spans: self.spans }, updates: self.updates }
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
    kinds: Vec<StateKind>,
    pub(crate) keys: Vec<KeyEntry>,
    /// FxHash of a key → its index (collisions fall back to a scan).
    index: FxHashMap<u64, usize>,
    /// Reused buffer for encoding map keys.
    pub(crate) scratch: Vec<u8>,
}

impl StateTable {
    /// A table for the declared states' kinds, in handle order.
    pub(crate) fn new(kinds: Vec<StateKind>) -> Self {
        StateTable { kinds, keys: Vec::new(), index: FxHashMap::default(), scratch: Vec::new() }
    }

    /// Forgets the previous call's keys, keeping allocations.
    pub(crate) fn reset(&mut self) {
        self.keys.clear();
        self.index.clear();
    }

    /// The index of `key`, adding it when new.
    pub(crate) fn key_index(&mut self, key: &[u8]) -> usize {
        let mut h = FxHasher::default();
        h.write(key);
        let hash = h.finish();
        if let Some(&i) = self.index.get(&hash) {
            if self.keys[i].key == key {
                return i;
            }
            if let Some(i) = self.keys.iter().position(|e| e.key == key) {
                return i;
            }
        }
        let i = self.keys.len();
        self.keys.push(KeyEntry { key: key.to_vec(), slots: Vec::new() });
        self.index.entry(hash).or_insert(i);
        i
    }

    /// Loads the host's prefetched state; `key_of` maps an entry's element
    /// index to that element's key.
    pub(crate) fn load<'k>(&mut self, state: &PrefetchedState, key_of: impl Fn(usize) -> Option<&'k [u8]>) {
        let items = &state.items;
        let item = |i: u32| -> Option<&[u8]> {
            let at = (i as usize).checked_mul(2)?;
            let (offset, len) = (*items.spans.get(at)? as usize, *items.spans.get(at + 1)? as usize);
            items.data.get(offset..offset.checked_add(len)?)
        };
        let mut scratch: Vec<&[u8]> = Vec::new();
        for entry in &state.entries {
            let Some(key) = key_of(entry.key as usize) else { continue };
            let handle = entry.state as usize;
            let Some(&kind) = self.kinds.get(handle) else { continue };
            scratch.clear();
            scratch.extend((0..entry.item_count).filter_map(|i| item(entry.first_item.saturating_add(i))));
            let slot = Slot::from_items(kind, &scratch);
            let k = self.key_index(key);
            let slots = &mut self.keys[k].slots;
            if slots.len() <= handle {
                slots.resize_with(handle + 1, || None);
            }
            slots[handle] = Some(slot);
        }
    }

    /// The slot of `state` for key `k`, created empty when absent.
    pub(crate) fn slot(&mut self, k: usize, state: u32) -> &mut Slot {
        let state = state as usize;
        let kind = self.kinds[state];
        let slots = &mut self.keys[k].slots;
        if slots.len() <= state {
            slots.resize_with(state + 1, || None);
        }
        slots[state].get_or_insert_with(|| Slot::empty(kind))
    }

    /// Turns every change into state updates and empties the table.
    pub(crate) fn flush(&mut self, out: &mut UpdatesBuilder) {
        for entry in self.keys.drain(..) {
            let mut key: Option<u32> = None;
            for (state, slot) in entry.slots.into_iter().enumerate() {
                let Some(slot) = slot else { continue };
                if slot.is_clean() {
                    continue;
                }
                let k = *key.get_or_insert_with(|| out.key(&entry.key));
                slot.flush(k, state as u32, out);
            }
        }
        self.index.clear();
    }
}
