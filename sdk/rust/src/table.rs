//! The per-call cache of keyed state.
//!
//! The host sends, with every batch, the content of each prefetched state for
//! the keys in the batch. Reads and writes go to this cache; when the call
//! ends, the changes are turned into `state-update`s for the host — one per
//! key and state, however many records touched it.
//!
//! Every byte of the cache lives in one arena per call: the host's prefetched
//! buffer is taken over as is (no copy), and keys and written values are
//! appended to it. Slots hold spans into the arena, and their vectors are
//! pooled across calls, so a steady stream of batches allocates nothing.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::bindings::weir::plugin::types::{Items, PrefetchedState, StateKind, StateUpdate, StateUpdates, UpdateKind};
use crate::{Error, Result};

/// Bytes in the call's arena.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u32,
    len: u32,
}

/// The bytes of a span.
fn at(arena: &[u8], span: Span) -> &[u8] {
    &arena[span.offset as usize..(span.offset + span.len) as usize]
}

/// Content of one prefetched state for one key, with what changed.
#[derive(Debug)]
enum Slot {
    Value {
        value: Option<Span>,
        dirty: bool,
    },
    List {
        items: Vec<Span>,
        original_len: usize,
        replaced: bool,
    },
    /// Entries sorted by map key (prefetched maps are small). A changed map
    /// goes back to the host whole, so one flag says whether it changed.
    Map {
        entries: Vec<(Span, Span)>,
        dirty: bool,
    },
}

impl Slot {
    /// Whether nothing changed.
    fn is_clean(&self) -> bool {
        match self {
            Slot::Value { dirty, .. } | Slot::Map { dirty, .. } => !dirty,
            Slot::List { items, original_len, replaced } => !replaced && items.len() == *original_len,
        }
    }
}

/// `same-key` (and `element_slots`) for an element without a key.
const NO_KEY: usize = u32::MAX as usize;

fn mismatch() -> Error {
    Error::new("state content does not match the declared state kind")
}

/// Vectors of finished calls, kept for the next ones.
#[derive(Debug, Default)]
struct Pools {
    spans: Vec<Vec<Span>>,
    pairs: Vec<Vec<(Span, Span)>>,
}

impl Pools {
    fn recycle(&mut self, slot: Slot) {
        match slot {
            Slot::Value { .. } => {}
            Slot::List { mut items, .. } => {
                items.clear();
                self.spans.push(items);
            }
            Slot::Map { mut entries, .. } => {
                entries.clear();
                self.pairs.push(entries);
            }
        }
    }

    fn empty(&mut self, kind: StateKind) -> Slot {
        match kind {
            StateKind::Value => Slot::Value { value: None, dirty: false },
            StateKind::List => {
                Slot::List { items: self.spans.pop().unwrap_or_default(), original_len: 0, replaced: false }
            }
            StateKind::Map => Slot::Map { entries: self.pairs.pop().unwrap_or_default(), dirty: false },
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

/// The keys of one call and their prefetched state.
#[derive(Debug, Default)]
pub(crate) struct StateTable {
    kinds: Vec<StateKind>,
    arena: Vec<u8>,
    /// The call's distinct keys.
    keys: Vec<Span>,
    /// `kinds.len()` slots per key.
    slots: Vec<Option<Slot>>,
    /// FxHash of a key → its index (collisions fall back to a scan); used
    /// when the host did not group the call's keys.
    index: FxHashMap<u64, usize>,
    /// Each element's key index, from the host's grouping.
    element_slots: Vec<usize>,
    pools: Pools,
    /// Reused buffer for encoding map keys.
    scratch: Vec<u8>,
}

impl StateTable {
    /// A table for the declared states' kinds, in handle order.
    pub(crate) fn new(kinds: Vec<StateKind>) -> Self {
        StateTable { kinds, ..StateTable::default() }
    }

    /// Forgets the previous call's keys, keeping allocations.
    pub(crate) fn reset(&mut self) {
        for slot in self.slots.drain(..).flatten() {
            self.pools.recycle(slot);
        }
        self.keys.clear();
        self.index.clear();
        self.element_slots.clear();
        self.arena.clear();
    }

    fn append(&mut self, bytes: &[u8]) -> Span {
        let offset = self.arena.len() as u32;
        self.arena.extend_from_slice(bytes);
        Span { offset, len: bytes.len() as u32 }
    }

    /// Appends what `write` writes to the arena; nothing on error.
    fn append_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<Span> {
        let start = self.arena.len();
        if let Err(e) = write(&mut self.arena) {
            self.arena.truncate(start);
            return Err(e);
        }
        Ok(Span { offset: start as u32, len: (self.arena.len() - start) as u32 })
    }

    /// The index of `key`, adding it when new.
    pub(crate) fn key_index(&mut self, key: &[u8]) -> usize {
        let mut h = FxHasher::default();
        h.write(key);
        let hash = h.finish();
        if let Some(&i) = self.index.get(&hash) {
            if at(&self.arena, self.keys[i]) == key {
                return i;
            }
            if let Some(i) = self.keys.iter().position(|&s| at(&self.arena, s) == key) {
                return i;
            }
        }
        let i = self.keys.len();
        let span = self.append(key);
        self.keys.push(span);
        self.slots.resize_with(self.slots.len() + self.kinds.len(), || None);
        self.index.entry(hash).or_insert(i);
        i
    }

    /// Gives each distinct key of the call its index from the host's
    /// grouping (`same-key`), without hashing. When the grouping is absent
    /// or malformed, keys are looked up by hash instead.
    fn group_keys<'k>(&mut self, same_key: &[u32], elements: usize, key_of: &impl Fn(usize) -> Option<&'k [u8]>) {
        self.element_slots.clear();
        if same_key.len() != elements {
            return;
        }
        for (i, &first) in same_key.iter().enumerate() {
            let slot = match (first as usize, key_of(i)) {
                (NO_KEY, None) => NO_KEY,
                (f, Some(key)) if f == i => {
                    let span = self.append(key);
                    self.keys.push(span);
                    self.slots.resize_with(self.slots.len() + self.kinds.len(), || None);
                    self.keys.len() - 1
                }
                (f, Some(_)) if f < i && self.element_slots[f] != NO_KEY => self.element_slots[f],
                _ => {
                    // Not a grouping this table can use: start over by hash.
                    self.keys.clear();
                    self.slots.clear();
                    self.element_slots.clear();
                    return;
                }
            };
            self.element_slots.push(slot);
        }
    }

    /// The key index of element `i` of the call, when the host grouped keys.
    pub(crate) fn slot_of(&self, i: usize) -> Option<usize> {
        self.element_slots.get(i).copied().filter(|&s| s != NO_KEY)
    }

    /// Takes over the host's prefetched state for a call of `elements`
    /// records or timers; `key_of` maps an element's index to its key.
    /// Call right after [`reset`](Self::reset).
    pub(crate) fn load<'k>(
        &mut self,
        state: PrefetchedState,
        elements: usize,
        key_of: impl Fn(usize) -> Option<&'k [u8]>,
    ) {
        let PrefetchedState { items: Items { data, spans }, entries, same_key } = state;
        self.arena = data;
        self.group_keys(&same_key, elements, &key_of);
        let arena_len = self.arena.len();
        let item = |i: u32| -> Option<Span> {
            let at = (i as usize).checked_mul(2)?;
            let (offset, len) = (*spans.get(at)?, *spans.get(at + 1)?);
            (offset as usize).checked_add(len as usize).filter(|&end| end <= arena_len)?;
            Some(Span { offset, len })
        };
        for entry in &entries {
            let Some(key) = key_of(entry.key as usize) else { continue };
            let handle = entry.state as usize;
            let Some(&kind) = self.kinds.get(handle) else { continue };
            let items = (0..entry.item_count).filter_map(|i| item(entry.first_item.saturating_add(i)));
            let mut slot = self.pools.empty(kind);
            match &mut slot {
                Slot::Value { value, .. } => *value = items.take(1).next(),
                Slot::List { items: list, original_len, .. } => {
                    list.extend(items);
                    *original_len = list.len();
                }
                Slot::Map { entries, .. } => {
                    let mut items = items;
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        entries.push((k, v));
                    }
                    // The host sends entries in key order; do not rely on it.
                    let arena = &self.arena;
                    if !entries.is_sorted_by(|a, b| at(arena, a.0) <= at(arena, b.0)) {
                        entries.sort_by(|a, b| at(arena, a.0).cmp(at(arena, b.0)));
                    }
                }
            }
            let k = match self.slot_of(entry.key as usize) {
                Some(k) => k,
                None => self.key_index(key),
            };
            if let Some(old) = self.slots[k * self.kinds.len() + handle].replace(slot) {
                self.pools.recycle(old);
            }
        }
    }

    /// The index in `slots` of `state` for key `k`; the slot is created
    /// empty when absent.
    fn slot_at(&mut self, k: usize, state: u32) -> usize {
        let kind = self.kinds[state as usize];
        let at = k * self.kinds.len() + state as usize;
        if self.slots[at].is_none() {
            self.slots[at] = Some(self.pools.empty(kind));
        }
        at
    }

    fn slot(&mut self, k: usize, state: u32) -> &mut Slot {
        let at = self.slot_at(k, state);
        self.slots[at].as_mut().expect("created by slot_at")
    }

    /// Runs `f` with `encode`'s output (a map key) in a reused buffer.
    pub(crate) fn with_scratch<R>(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
        f: impl FnOnce(&mut Self, &[u8]) -> Result<R>,
    ) -> Result<R> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = encode(&mut scratch).and_then(|()| f(self, &scratch));
        self.scratch = scratch;
        result
    }

    /// A value state's value.
    pub(crate) fn value(&mut self, k: usize, state: u32) -> Result<Option<&[u8]>> {
        match *self.slot(k, state) {
            Slot::Value { value, .. } => Ok(value.map(|s| at(&self.arena, s))),
            _ => Err(mismatch()),
        }
    }

    /// Sets a value state to what `write` writes.
    pub(crate) fn set_value_with(
        &mut self,
        k: usize,
        state: u32,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let Slot::Value { .. } = self.slot(k, state) else { return Err(mismatch()) };
        let span = self.append_with(write)?;
        if let Slot::Value { value, dirty } = self.slot(k, state) {
            *value = Some(span);
            *dirty = true;
        }
        Ok(())
    }

    /// A list state's items.
    pub(crate) fn list(&mut self, k: usize, state: u32) -> Result<impl Iterator<Item = &[u8]>> {
        let i = self.slot_at(k, state);
        let Some(Slot::List { items, .. }) = &self.slots[i] else { return Err(mismatch()) };
        let arena = &self.arena;
        Ok(items.iter().map(move |&s| at(arena, s)))
    }

    /// Appends what `write` writes to a list state.
    pub(crate) fn push_with(
        &mut self,
        k: usize,
        state: u32,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let Slot::List { .. } = self.slot(k, state) else { return Err(mismatch()) };
        let span = self.append_with(write)?;
        if let Slot::List { items, .. } = self.slot(k, state) {
            items.push(span);
        }
        Ok(())
    }

    /// Empties a state, remembering to tell the host.
    pub(crate) fn clear(&mut self, k: usize, state: u32) {
        match self.slot(k, state) {
            Slot::Value { value, dirty } => {
                *value = None;
                *dirty = true;
            }
            Slot::List { items, replaced, .. } => {
                items.clear();
                *replaced = true;
            }
            Slot::Map { entries, dirty } => {
                entries.clear();
                *dirty = true;
            }
        }
    }

    /// A map slot's index in `slots` and where `key` is (or would be) in it.
    fn map_find(&mut self, k: usize, state: u32, key: &[u8]) -> Result<(usize, std::result::Result<usize, usize>)> {
        let i = self.slot_at(k, state);
        let Some(Slot::Map { entries, .. }) = &self.slots[i] else { return Err(mismatch()) };
        Ok((i, entries.binary_search_by(|(ek, _)| at(&self.arena, *ek).cmp(key))))
    }

    /// A map state's value for `key`.
    pub(crate) fn map_get(&mut self, k: usize, state: u32, key: &[u8]) -> Result<Option<&[u8]>> {
        let (i, found) = self.map_find(k, state, key)?;
        let Some(Slot::Map { entries, .. }) = &self.slots[i] else { return Err(mismatch()) };
        Ok(found.ok().map(|e| at(&self.arena, entries[e].1)))
    }

    /// Sets a map state's `key` to what `write` writes.
    pub(crate) fn map_put_with(
        &mut self,
        k: usize,
        state: u32,
        key: &[u8],
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let (i, found) = self.map_find(k, state, key)?;
        let value = self.append_with(write)?;
        let new_key = found.is_err().then(|| self.append(key));
        let Some(Slot::Map { entries, dirty }) = &mut self.slots[i] else { return Err(mismatch()) };
        match (found, new_key) {
            (Ok(e), _) => entries[e].1 = value,
            (Err(e), Some(key)) => entries.insert(e, (key, value)),
            (Err(_), None) => unreachable!("a new entry has a key"),
        }
        *dirty = true;
        Ok(())
    }

    /// Removes `key` from a map state.
    pub(crate) fn map_remove(&mut self, k: usize, state: u32, key: &[u8]) -> Result<()> {
        let (i, found) = self.map_find(k, state, key)?;
        if let (Ok(e), Some(Slot::Map { entries, dirty })) = (found, &mut self.slots[i]) {
            entries.remove(e);
            *dirty = true;
        }
        Ok(())
    }

    /// A map state's entries in key order.
    pub(crate) fn map_iter(&mut self, k: usize, state: u32) -> Result<impl Iterator<Item = (&[u8], &[u8])>> {
        let i = self.slot_at(k, state);
        let Some(Slot::Map { entries, .. }) = &self.slots[i] else { return Err(mismatch()) };
        let arena = &self.arena;
        Ok(entries.iter().map(move |&(k, v)| (at(arena, k), at(arena, v))))
    }

    /// Turns every change into state updates and empties the table.
    pub(crate) fn flush(&mut self, out: &mut UpdatesBuilder) {
        let n = self.kinds.len();
        for (k, &key_span) in self.keys.iter().enumerate().filter(|_| n > 0) {
            let mut key: Option<u32> = None;
            for (state, slot) in self.slots[k * n..(k + 1) * n].iter().enumerate() {
                let Some(slot) = slot else { continue };
                if slot.is_clean() {
                    continue;
                }
                let key = *key.get_or_insert_with(|| out.item(at(&self.arena, key_span)));
                let state = state as u32;
                let arena = &self.arena;
                let bytes = |s: &Span| at(arena, *s);
                match slot {
                    Slot::Value { value: Some(v), .. } => out.push(state, key, UpdateKind::Set, [bytes(v)]),
                    Slot::Value { value: None, .. } => out.push(state, key, UpdateKind::Clear, []),
                    Slot::List { items, replaced: true, .. } => {
                        out.push(state, key, UpdateKind::Replace, items.iter().map(bytes))
                    }
                    Slot::List { items, original_len, .. } => {
                        out.push(state, key, UpdateKind::Append, items[*original_len..].iter().map(bytes))
                    }
                    // A changed map goes back whole, in key order: the host
                    // stores it as sent, one write and no read.
                    Slot::Map { entries, .. } => out.push(
                        state,
                        key,
                        UpdateKind::Replace,
                        entries.iter().flat_map(|(k, v)| [bytes(k), bytes(v)]),
                    ),
                }
            }
        }
        self.reset();
    }
}
