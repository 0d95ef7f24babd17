//! The in-memory backend: a hash map per state and key group.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use crate::{Items, KeyGroup, KeyedStateBackend, Result, StateContent, StateError, StateId, StateKind, TimerEntry};

#[derive(Debug, Clone)]
enum Cell {
    Value(Vec<u8>),
    List(Vec<Vec<u8>>),
    Map(BTreeMap<Vec<u8>, Vec<u8>>),
}

#[derive(Debug)]
struct State {
    name: String,
    kind: StateKind,
    /// One map per key group.
    groups: Vec<FxHashMap<Vec<u8>, Cell>>,
}

/// Keyed state in hash maps: fast, bounded by memory, gone with the process
/// (until snapshots exist).
#[derive(Debug)]
pub struct MemoryBackend {
    max_parallelism: u32,
    states: Vec<State>,
    timers: BTreeSet<(KeyGroup, TimerEntry)>,
}

impl MemoryBackend {
    /// An empty backend for `max_parallelism` key groups.
    pub fn new(max_parallelism: u32) -> Self {
        MemoryBackend { max_parallelism, states: Vec::new(), timers: BTreeSet::new() }
    }

    fn group(&mut self, state: StateId, kg: KeyGroup) -> Result<(&mut FxHashMap<Vec<u8>, Cell>, StateKind)> {
        let s = self.states.get_mut(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
        let kind = s.kind;
        let g =
            s.groups.get_mut(kg as usize).ok_or_else(|| StateError::Corrupt(format!("key group {kg} out of range")))?;
        Ok((g, kind))
    }

    fn cell(&mut self, state: StateId, kg: KeyGroup, key: &[u8], kind: StateKind) -> Result<&mut Cell> {
        let (g, k) = self.group(state, kg)?;
        if k != kind {
            return Err(StateError::WrongKind(state.0, k));
        }
        if !g.contains_key(key) {
            let empty = match kind {
                StateKind::Value => Cell::Value(Vec::new()),
                StateKind::List => Cell::List(Vec::new()),
                StateKind::Map => Cell::Map(BTreeMap::new()),
            };
            g.insert(key.to_vec(), empty);
        }
        Ok(g.get_mut(key).expect("inserted above"))
    }
}

fn content(cell: &Cell) -> Option<StateContent> {
    match cell {
        Cell::Value(v) => Some(StateContent::Value(v.clone())),
        Cell::List(items) if items.is_empty() => None,
        Cell::List(items) => Some(StateContent::List(items.clone())),
        Cell::Map(m) if m.is_empty() => None,
        Cell::Map(m) => Some(StateContent::Map(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())),
    }
}

impl KeyedStateBackend for MemoryBackend {
    fn register(&mut self, name: &str, kind: StateKind) -> Result<StateId> {
        if let Some(i) = self.states.iter().position(|s| s.name == name) {
            let existing = self.states[i].kind;
            if existing != kind {
                return Err(StateError::KindMismatch { name: name.to_string(), existing, requested: kind });
            }
            return Ok(StateId(i as u32));
        }
        let groups = (0..self.max_parallelism).map(|_| FxHashMap::default()).collect();
        self.states.push(State { name: name.to_string(), kind, groups });
        Ok(StateId(self.states.len() as u32 - 1))
    }

    fn states(&self) -> Vec<(String, StateKind)> {
        self.states.iter().map(|s| (s.name.clone(), s.kind)).collect()
    }

    fn get(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<Option<StateContent>> {
        let (g, _) = self.group(state, kg)?;
        Ok(g.get(key).and_then(content))
    }

    fn set_value(&mut self, state: StateId, kg: KeyGroup, key: &[u8], value: &[u8]) -> Result<()> {
        let (g, kind) = self.group(state, kg)?;
        if kind != StateKind::Value {
            return Err(StateError::WrongKind(state.0, kind));
        }
        match g.get_mut(key) {
            Some(Cell::Value(v)) => {
                v.clear();
                v.extend_from_slice(value);
            }
            _ => {
                g.insert(key.to_vec(), Cell::Value(value.to_vec()));
            }
        }
        Ok(())
    }

    fn visit_value(
        &mut self,
        state: StateId,
        kg: KeyGroup,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<u32>,
    ) -> Result<u32> {
        let (g, kind) = self.group(state, kg)?;
        match g.get(key) {
            None if kind == StateKind::Value => Ok(0),
            Some(Cell::Value(v)) => f(v),
            _ => Err(StateError::WrongKind(state.0, kind)),
        }
    }

    fn read_into(&mut self, state: StateId, kg: KeyGroup, key: &[u8], out: &mut Items) -> Result<u32> {
        let (g, _) = self.group(state, kg)?;
        Ok(match g.get(key) {
            None => 0,
            Some(Cell::Value(v)) => {
                out.push(v);
                1
            }
            Some(Cell::List(items)) => {
                items.iter().for_each(|i| out.push(i));
                items.len() as u32
            }
            Some(Cell::Map(m)) => {
                for (k, v) in m {
                    out.push(k);
                    out.push(v);
                }
                2 * m.len() as u32
            }
        })
    }

    fn append(&mut self, state: StateId, kg: KeyGroup, key: &[u8], item: &[u8]) -> Result<()> {
        if let Cell::List(l) = self.cell(state, kg, key, StateKind::List)? {
            l.push(item.to_vec());
        }
        Ok(())
    }

    fn map_get(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (g, kind) = self.group(state, kg)?;
        match g.get(key) {
            Some(Cell::Map(m)) => Ok(m.get(map_key).cloned()),
            Some(_) => Err(StateError::WrongKind(state.0, kind)),
            None if kind == StateKind::Map => Ok(None),
            None => Err(StateError::WrongKind(state.0, kind)),
        }
    }

    fn map_put(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8], value: &[u8]) -> Result<()> {
        if let Cell::Map(m) = self.cell(state, kg, key, StateKind::Map)? {
            match m.get_mut(map_key) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(value);
                }
                None => {
                    m.insert(map_key.to_vec(), value.to_vec());
                }
            }
        }
        Ok(())
    }

    fn map_remove(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<()> {
        let (g, kind) = self.group(state, kg)?;
        if kind != StateKind::Map {
            return Err(StateError::WrongKind(state.0, kind));
        }
        if let Some(Cell::Map(m)) = g.get_mut(key) {
            m.remove(map_key);
            if m.is_empty() {
                g.remove(key);
            }
        }
        Ok(())
    }

    fn map_range(
        &mut self,
        state: StateId,
        kg: KeyGroup,
        key: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (g, kind) = self.group(state, kg)?;
        if kind != StateKind::Map {
            return Err(StateError::WrongKind(state.0, kind));
        }
        let Some(Cell::Map(m)) = g.get(key) else { return Ok(Vec::new()) };
        let range: Box<dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>> = match start_after {
            Some(after) => Box::new(m.range::<[u8], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))),
            None => Box::new(m.iter()),
        };
        Ok(range.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn clear(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<()> {
        let (g, _) = self.group(state, kg)?;
        g.remove(key);
        Ok(())
    }

    fn add_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()> {
        self.timers.insert((kg, timer.clone()));
        Ok(())
    }

    fn remove_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()> {
        self.timers.remove(&(kg, timer.clone()));
        Ok(())
    }

    fn timers(&mut self) -> Result<Vec<(KeyGroup, TimerEntry)>> {
        Ok(self.timers.iter().cloned().collect())
    }

    fn entries(&mut self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>> {
        let s = self.states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
        let mut out = Vec::new();
        for (kg, g) in s.groups.iter().enumerate() {
            let mut keys: Vec<_> = g.iter().filter_map(|(k, c)| content(c).map(|c| (k.clone(), c))).collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(keys.into_iter().map(|(k, c)| (kg as KeyGroup, k, c)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_state_orders_ranges_and_drops_empty_maps() {
        let mut b = MemoryBackend::new(4);
        let m = b.register("m", StateKind::Map).unwrap();
        b.map_put(m, 1, b"k", b"b", b"2").unwrap();
        b.map_put(m, 1, b"k", b"a", b"1").unwrap();
        assert_eq!(b.map_range(m, 1, b"k", Some(b"a"), 10).unwrap(), vec![(b"b".to_vec(), b"2".to_vec())]);
        let mut items = Items::default();
        assert_eq!(b.read_into(m, 1, b"k", &mut items).unwrap(), 4);
        assert_eq!((items.get(0), items.get(3)), (&b"a"[..], &b"2"[..]));
        b.map_remove(m, 1, b"k", b"a").unwrap();
        b.map_remove(m, 1, b"k", b"b").unwrap();
        assert_eq!(b.get(m, 1, b"k").unwrap(), None);
        assert!(b.entries(m).unwrap().is_empty());
    }

    #[test]
    fn kinds_are_enforced() {
        let mut b = MemoryBackend::new(4);
        let v = b.register("v", StateKind::Value).unwrap();
        assert_eq!(b.register("v", StateKind::Value).unwrap(), v);
        assert_eq!(
            b.register("v", StateKind::List).unwrap_err().to_string(),
            "state `v` is a Value state, not a List state"
        );
        assert!(matches!(b.append(v, 0, b"k", b"x"), Err(StateError::WrongKind(0, StateKind::Value))));
    }
}
