//! The keyed state of one operator subtask, owned by the runtime and lent to
//! whichever operator runs over it: a Wasm operator, a host window, or the
//! next version of either after a swap. It knows each state's logical kind
//! and how it is stored ([`StateEncoding`]), so a restore can check a new
//! declaration against what a checkpoint holds and convert the storage when
//! only the encoding changed.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::{KeyGroup, KeyedStateBackend, Result, StateContent, StateError, StateId, StateKind, packed};

/// How a state's content is laid out in the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateEncoding {
    /// One backend row per value, list or map entry (the backend's own kind).
    Rows,
    /// A map stored whole as one packed value per key ([`packed`]): for
    /// small maps read with every call.
    PackedMap,
}

impl StateEncoding {
    /// The name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            StateEncoding::Rows => "rows",
            StateEncoding::PackedMap => "packed-map",
        }
    }

    /// The encoding a manifest names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "rows" => Some(StateEncoding::Rows),
            "packed-map" => Some(StateEncoding::PackedMap),
            _ => None,
        }
    }
}

impl StateKind {
    /// The name used in manifests and errors.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
        }
    }

    /// The kind a manifest names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "value" => Some(StateKind::Value),
            "list" => Some(StateKind::List),
            "map" => Some(StateKind::Map),
            _ => None,
        }
    }
}

/// A state an operator declared: its name, logical kind and storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateDescriptor {
    /// The state's name (what restores map state by).
    pub name: String,
    /// What the operator sees.
    pub kind: StateKind,
    /// How the backend stores it.
    pub encoding: StateEncoding,
}

impl StateDescriptor {
    /// A state stored in rows.
    pub fn rows(name: &str, kind: StateKind) -> Self {
        StateDescriptor { name: name.to_string(), kind, encoding: StateEncoding::Rows }
    }

    /// The backend state it lives in: packed maps are value states under a
    /// name of their own, so both encodings of one state can exist while
    /// one is converted into the other.
    pub fn storage(&self) -> (String, StateKind) {
        match self.encoding {
            StateEncoding::Rows => (self.name.clone(), self.kind),
            StateEncoding::PackedMap => (format!("{}#packed", self.name), StateKind::Value),
        }
    }
}

/// The keyed state of one operator subtask.
pub struct KeyedState {
    backend: Box<dyn KeyedStateBackend>,
    max_parallelism: u32,
    key_groups: Range<KeyGroup>,
    /// Every state known: restored ones and those declared since.
    known: Vec<StateDescriptor>,
    /// The names the running operator declared, in order.
    declared: Vec<String>,
    /// The schema version each state's content is written at (a plugin's
    /// own versioning of its format; 0 when it never said).
    schemas: BTreeMap<String, u32>,
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("max_parallelism", &self.max_parallelism)
            .field("key_groups", &self.key_groups)
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl KeyedState {
    /// State over `backend` for a subtask owning `key_groups` of
    /// `max_parallelism`.
    pub fn new(backend: Box<dyn KeyedStateBackend>, max_parallelism: u32, key_groups: Range<KeyGroup>) -> Self {
        KeyedState {
            backend,
            max_parallelism,
            key_groups,
            known: Vec::new(),
            declared: Vec::new(),
            schemas: BTreeMap::new(),
        }
    }

    /// The states a restored checkpoint holds (checked against later
    /// declarations).
    pub fn set_restored(&mut self, states: Vec<StateDescriptor>) {
        self.known = states;
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut dyn KeyedStateBackend {
        self.backend.as_mut()
    }

    /// Exchanges the backend with `slot`: how a plugin's store borrows it
    /// for one call (and gives it back with the same call).
    pub fn swap_backend(&mut self, slot: &mut Box<dyn KeyedStateBackend>) {
        std::mem::swap(&mut self.backend, slot);
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> u32 {
        self.max_parallelism
    }

    /// The key groups this subtask owns.
    pub fn key_groups(&self) -> Range<KeyGroup> {
        self.key_groups.clone()
    }

    /// The key group of a key.
    pub fn key_group(&self, key: &[u8]) -> KeyGroup {
        weir_types::key_group(key, self.max_parallelism)
    }

    /// Every known state: what a snapshot records.
    pub fn descriptors(&self) -> &[StateDescriptor] {
        &self.known
    }

    /// The names the running operator declared, in order.
    pub fn declared(&self) -> &[String] {
        &self.declared
    }

    /// The schema version state `name` is written at.
    pub fn schema(&self, name: &str) -> u32 {
        self.schemas.get(name).copied().unwrap_or(0)
    }

    /// Every state's schema version that is not 0.
    pub fn schemas(&self) -> &BTreeMap<String, u32> {
        &self.schemas
    }

    /// Records that state `name` is now written at schema `version`.
    pub fn set_schema(&mut self, name: &str, version: u32) {
        match version {
            0 => self.schemas.remove(name),
            v => self.schemas.insert(name.to_string(), v),
        };
    }

    /// Forgets the running operator's declarations (a new instance is about
    /// to declare its own); the states themselves stay.
    pub fn begin_declarations(&mut self) {
        self.declared.clear();
    }

    /// Declares a state for the running operator and returns its backend id.
    /// A state of the same name from a checkpoint must have the same kind;
    /// when only its encoding differs, it is converted.
    pub fn declare(&mut self, state: &StateDescriptor) -> Result<StateId> {
        if self.declared.contains(&state.name) {
            return Err(StateError::Duplicate(state.name.clone()));
        }
        if let Some(i) = self.known.iter().position(|k| k.name == state.name) {
            let known = self.known[i].clone();
            if known.kind != state.kind {
                return Err(StateError::KindChanged {
                    name: state.name.clone(),
                    stored: known.kind,
                    declared: state.kind,
                });
            }
            if known.encoding != state.encoding {
                self.convert(&known, state)?;
            }
            self.known[i] = state.clone();
        } else {
            self.known.push(state.clone());
        }
        self.declared.push(state.name.clone());
        let (name, kind) = state.storage();
        self.backend.register(&name, kind)
    }

    /// Moves a map state from one encoding into the other.
    fn convert(&mut self, from: &StateDescriptor, to: &StateDescriptor) -> Result<()> {
        let (from_name, from_kind) = from.storage();
        let (to_name, to_kind) = to.storage();
        let source = self.backend.register(&from_name, from_kind)?;
        let target = self.backend.register(&to_name, to_kind)?;
        let mut moved = 0u64;
        for (kg, key, content) in self.backend.entries(source)? {
            match (from.encoding, content) {
                (StateEncoding::PackedMap, StateContent::Value(bytes)) => {
                    for (k, v) in packed::unpack(&bytes)? {
                        self.backend.map_put(target, kg, &key, &k, &v)?;
                    }
                }
                (StateEncoding::Rows, StateContent::Map(mut entries)) => {
                    let bytes = packed::pack(&mut entries);
                    self.backend.set_value(target, kg, &key, &bytes)?;
                }
                (_, other) => {
                    return Err(StateError::Corrupt(format!(
                        "state `{}` stored as {} holds {other:?}",
                        from.name,
                        from.encoding.name()
                    )));
                }
            }
            self.backend.clear(source, kg, &key)?;
            moved += 1;
        }
        tracing::info!(
            state = %from.name,
            from = from.encoding.name(),
            to = to.encoding.name(),
            keys = moved,
            "converted a restored state to its new encoding"
        );
        Ok(())
    }
}

/// What stands in for a lent backend (a zero-sized box: lending allocates
/// nothing). Every operation fails: state is only reachable during a call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlent;

impl Unlent {
    fn refuse<T>(&self) -> Result<T> {
        Err(StateError::NotLent)
    }
}

impl KeyedStateBackend for Unlent {
    fn register(&mut self, _: &str, _: StateKind) -> Result<StateId> {
        self.refuse()
    }
    fn states(&self) -> Vec<(String, StateKind)> {
        Vec::new()
    }
    fn get(&mut self, _: StateId, _: KeyGroup, _: &[u8]) -> Result<Option<StateContent>> {
        self.refuse()
    }
    fn visit_value(
        &mut self,
        _: StateId,
        _: KeyGroup,
        _: &[u8],
        _: &mut dyn FnMut(&[u8]) -> Result<u32>,
    ) -> Result<u32> {
        self.refuse()
    }
    fn set_value(&mut self, _: StateId, _: KeyGroup, _: &[u8], _: &[u8]) -> Result<()> {
        self.refuse()
    }
    fn append(&mut self, _: StateId, _: KeyGroup, _: &[u8], _: &[u8]) -> Result<()> {
        self.refuse()
    }
    fn map_get(&mut self, _: StateId, _: KeyGroup, _: &[u8], _: &[u8]) -> Result<Option<Vec<u8>>> {
        self.refuse()
    }
    fn map_put(&mut self, _: StateId, _: KeyGroup, _: &[u8], _: &[u8], _: &[u8]) -> Result<()> {
        self.refuse()
    }
    fn map_remove(&mut self, _: StateId, _: KeyGroup, _: &[u8], _: &[u8]) -> Result<()> {
        self.refuse()
    }
    fn map_range(
        &mut self,
        _: StateId,
        _: KeyGroup,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.refuse()
    }
    fn clear(&mut self, _: StateId, _: KeyGroup, _: &[u8]) -> Result<()> {
        self.refuse()
    }
    fn add_timer(&mut self, _: KeyGroup, _: &crate::TimerEntry) -> Result<()> {
        self.refuse()
    }
    fn remove_timer(&mut self, _: KeyGroup, _: &crate::TimerEntry) -> Result<()> {
        self.refuse()
    }
    fn timers(&mut self) -> Result<Vec<(KeyGroup, crate::TimerEntry)>> {
        self.refuse()
    }
    fn entries(&mut self, _: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>> {
        self.refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    fn state() -> KeyedState {
        KeyedState::new(Box::new(MemoryBackend::new(8)), 8, 0..8)
    }

    #[test]
    fn a_redeclared_state_must_keep_its_kind_and_may_change_its_encoding() {
        let mut s = state();
        let packed = StateDescriptor { name: "m".into(), kind: StateKind::Map, encoding: StateEncoding::PackedMap };
        s.begin_declarations();
        let id = s.declare(&packed).unwrap();
        let mut entries = vec![(b"b".to_vec(), b"2".to_vec()), (b"a".to_vec(), b"1".to_vec())];
        let bytes = packed::pack(&mut entries);
        s.backend().set_value(id, 3, b"k", &bytes).unwrap();
        let err = s.declare(&packed).unwrap_err();
        assert_eq!(err.to_string(), "state `m` is declared twice");

        // The next version reads the map row by row.
        s.begin_declarations();
        let rows = s.declare(&StateDescriptor::rows("m", StateKind::Map)).unwrap();
        assert_eq!(
            s.backend().get(rows, 3, b"k").unwrap(),
            Some(StateContent::Map(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]))
        );
        assert_eq!(s.backend().get(id, 3, b"k").unwrap(), None, "the packed copy is gone");
        assert_eq!(s.descriptors(), &[StateDescriptor::rows("m", StateKind::Map)]);

        // And back.
        s.begin_declarations();
        let again = s.declare(&packed).unwrap();
        assert_eq!(s.backend().get(again, 3, b"k").unwrap(), Some(StateContent::Value(bytes)));

        s.begin_declarations();
        let err = s.declare(&StateDescriptor::rows("m", StateKind::Value)).unwrap_err();
        assert_eq!(err.to_string(), "state `m` holds a map state and is now declared as a value state");
    }
}
