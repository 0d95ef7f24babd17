//! The RocksDB keyed state backend for Weir.
//!
//! One database per operator task, one column family per state, and keys
//! prefixed by key group (big-endian), so a key group is a contiguous key
//! range — the unit later snapshots and rescaling work with.
//!
//! | state | RocksDB key | RocksDB value |
//! |---|---|---|
//! | value | `kg · len(key) · key` | the value |
//! | list | `kg · len(key) · key` | items, each `len · bytes`, appended with a merge operator |
//! | map | `kg · len(key) · key · map_key` | the entry's value |
//!
//! (Prefetched maps never reach this layout: `weir-wasm` stores them packed
//! in a value state, one point lookup per key.)
//! | timers (`_timers`) | `kg · domain · time · key` | empty |
//!
//! The write-ahead log is off: durability comes from checkpoints, as in
//! Flink's RocksDB backend. Writes are collected in a write batch and
//! applied before the next read.
//!
//! ```
//! use weir_state::{KeyedStateBackend, StateContent, StateKind};
//! use weir_state_rocksdb::RocksDbBackend;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut backend = RocksDbBackend::open(dir.path(), 128).unwrap();
//! let items = backend.register("items", StateKind::List).unwrap();
//! backend.append(items, 3, b"k", b"a").unwrap();
//! backend.append(items, 3, b"k", b"b").unwrap();
//! assert_eq!(backend.get(items, 3, b"k").unwrap(), Some(StateContent::List(vec![b"a".to_vec(), b"b".to_vec()])));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, MergeOperands, Options, ReadOptions, WriteBatch, WriteOptions,
};
use weir_state::{
    Items, KeyGroup, KeyedStateBackend, NativeCheckpoint, Result, StateContent, StateError, StateId, StateKind,
    TimerEntry,
};
use weir_types::TimeDomain;

const TIMERS_CF: &str = "_timers";

struct State {
    cf: String,
    kind: StateKind,
}

/// Keyed state in a RocksDB database on local disk.
pub struct RocksDbBackend {
    db: DB,
    /// Names this database's SST files get in a checkpoint store: restored
    /// files keep the id they were restored from; files this instance
    /// writes get `<instance>-<name>`.
    shared_ids: HashMap<String, String>,
    instance: String,
    states: Vec<State>,
    cf_options: Options,
    pending: WriteBatch,
    write_options: WriteOptions,
}

fn storage(e: rocksdb::Error) -> StateError {
    StateError::Storage(e.into_string())
}

fn append_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
    for op in operands {
        out.extend_from_slice(op);
    }
    Some(out)
}

fn column_options() -> Options {
    let mut o = Options::default();
    // Small memtables keep the footprint of many tasks and states low.
    o.set_write_buffer_size(8 << 20);
    o.set_max_write_buffer_number(2);
    o.set_merge_operator_associative("weir-list-append", append_merge);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // State is rewritten every batch: overwrite memtable entries in place
    // instead of stacking versions that every read must then step over. Safe
    // here: one task owns the database and never reads through a snapshot.
    o.set_inplace_update_support(true);
    o
}

fn key_prefix(kg: KeyGroup, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + key.len());
    k.extend_from_slice(&kg.to_be_bytes());
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn for_each_item(mut bytes: &[u8], mut f: impl FnMut(&[u8])) -> Result<()> {
    while !bytes.is_empty() {
        let (len, rest) =
            bytes.split_first_chunk::<4>().ok_or_else(|| StateError::Corrupt("truncated list item".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(StateError::Corrupt("truncated list item".into()));
        }
        f(&rest[..len]);
        bytes = &rest[len..];
    }
    Ok(())
}

fn decode_items(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut items = Vec::new();
    for_each_item(bytes, |i| items.push(i.to_vec()))?;
    Ok(items)
}

fn timer_key(kg: KeyGroup, t: &TimerEntry) -> Vec<u8> {
    let mut k = Vec::with_capacity(11 + t.key.len());
    k.extend_from_slice(&kg.to_be_bytes());
    k.push(match t.domain {
        TimeDomain::EventTime => 0,
        TimeDomain::ProcessingTime => 1,
    });
    // Flip the sign bit so negative times sort before positive ones.
    k.extend_from_slice(&((t.timestamp as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&t.key);
    k
}

fn decode_timer(k: &[u8]) -> Result<(KeyGroup, TimerEntry)> {
    if k.len() < 11 {
        return Err(StateError::Corrupt("short timer key".into()));
    }
    let kg = u16::from_be_bytes([k[0], k[1]]);
    let domain = if k[2] == 0 { TimeDomain::EventTime } else { TimeDomain::ProcessingTime };
    let ts = u64::from_be_bytes(k[3..11].try_into().expect("8 bytes")) ^ (1 << 63);
    Ok((kg, TimerEntry { timestamp: ts as i64, key: k[11..].to_vec(), domain }))
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name).ok_or_else(|| StateError::Storage(format!("missing column family {name}")))
}

/// The column family of `state`, checking its kind.
fn checked<'a>(db: &'a DB, states: &[State], state: StateId, kind: StateKind) -> Result<&'a rocksdb::ColumnFamily> {
    let s = states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
    if s.kind != kind {
        return Err(StateError::WrongKind(state.0, s.kind));
    }
    cf(db, &s.cf)
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl RocksDbBackend {
    /// Opens (creating if needed) a database in `dir` for `max_parallelism`
    /// key groups. Existing column families are reopened, so state survives
    /// a reopen of the same directory.
    pub fn open(dir: &Path, max_parallelism: u32) -> Result<Self> {
        let _ = max_parallelism;
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_background_jobs(2);
        // Required by in-place memtable updates.
        db_options.set_allow_concurrent_memtable_write(false);
        let cf_options = column_options();
        let mut names = DB::list_cf(&db_options, dir).unwrap_or_default();
        if !names.iter().any(|n| n == TIMERS_CF) {
            names.push(TIMERS_CF.to_string());
        }
        let cfs = names.iter().map(|n| ColumnFamilyDescriptor::new(n, column_options()));
        let db = DB::open_cf_descriptors(&db_options, dir, cfs).map_err(storage)?;
        let mut write_options = WriteOptions::default();
        write_options.disable_wal(true);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let instance = format!("{:x}", nanos ^ (u128::from(std::process::id()) << 64));
        Ok(RocksDbBackend {
            db,
            shared_ids: HashMap::new(),
            instance,
            states: Vec::new(),
            cf_options,
            pending: WriteBatch::default(),
            write_options,
        })
    }

    /// Opens a database whose files were restored from a checkpoint store
    /// into `dir`; `shared_ids` maps each restored SST file name to its id
    /// there, so later checkpoints refer to the same stored file.
    pub fn open_restored(dir: &Path, max_parallelism: u32, shared_ids: HashMap<String, String>) -> Result<Self> {
        let mut backend = Self::open(dir, max_parallelism)?;
        backend.shared_ids = shared_ids;
        Ok(backend)
    }

    fn state(&self, state: StateId) -> Result<&State> {
        self.states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        cf(&self.db, name)
    }

    fn apply_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.db.write_opt(batch, &self.write_options).map_err(storage)
    }

    fn scan_prefix(
        &mut self,
        cf: &str,
        prefix: &[u8],
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.apply_pending()?;
        let cf = self.cf(cf)?;
        let mut opts = ReadOptions::default();
        if let Some(end) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        let from = start.map(<[u8]>::to_vec).unwrap_or_else(|| prefix.to_vec());
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(cf, opts, IteratorMode::From(&from, Direction::Forward)) {
            let (k, v) = item.map_err(storage)?;
            if !k.starts_with(prefix) {
                break;
            }
            if start.is_some_and(|s| *k == *s) {
                continue;
            }
            out.push((k[prefix.len()..].to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl KeyedStateBackend for RocksDbBackend {
    fn register(&mut self, name: &str, kind: StateKind) -> Result<StateId> {
        if let Some(i) = self.states.iter().position(|s| s.cf == name) {
            let existing = self.states[i].kind;
            if existing != kind {
                return Err(StateError::KindMismatch { name: name.to_string(), existing, requested: kind });
            }
            return Ok(StateId(i as u32));
        }
        if name == TIMERS_CF {
            return Err(StateError::Storage(format!("`{TIMERS_CF}` is reserved")));
        }
        if self.db.cf_handle(name).is_none() {
            self.db.create_cf(name, &self.cf_options).map_err(storage)?;
        }
        self.states.push(State { cf: name.to_string(), kind });
        Ok(StateId(self.states.len() as u32 - 1))
    }

    fn states(&self) -> Vec<(String, StateKind)> {
        self.states.iter().map(|s| (s.cf.clone(), s.kind)).collect()
    }

    fn get(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<Option<StateContent>> {
        self.apply_pending()?;
        let s = self.state(state)?;
        let (kind, name) = (s.kind, s.cf.clone());
        let prefix = key_prefix(kg, key);
        match kind {
            StateKind::Value => {
                let cf = self.cf(&name)?;
                Ok(self.db.get_cf(cf, &prefix).map_err(storage)?.map(StateContent::Value))
            }
            StateKind::List => {
                let cf = self.cf(&name)?;
                match self.db.get_cf(cf, &prefix).map_err(storage)? {
                    Some(bytes) if !bytes.is_empty() => Ok(Some(StateContent::List(decode_items(&bytes)?))),
                    _ => Ok(None),
                }
            }
            StateKind::Map => {
                let entries = self.scan_prefix(&name, &prefix, None, usize::MAX)?;
                Ok((!entries.is_empty()).then_some(StateContent::Map(entries)))
            }
        }
    }

    fn visit_value(
        &mut self,
        state: StateId,
        kg: KeyGroup,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<u32>,
    ) -> Result<u32> {
        self.apply_pending()?;
        let s = self.states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
        if s.kind != StateKind::Value {
            return Err(StateError::WrongKind(state.0, s.kind));
        }
        match self.db.get_pinned_cf(cf(&self.db, &s.cf)?, key_prefix(kg, key)).map_err(storage)? {
            Some(v) => f(&v),
            None => Ok(0),
        }
    }

    fn read_into(&mut self, state: StateId, kg: KeyGroup, key: &[u8], out: &mut Items) -> Result<u32> {
        self.apply_pending()?;
        let s = self.states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
        let kind = s.kind;
        let cf = cf(&self.db, &s.cf)?;
        let prefix = key_prefix(kg, key);
        match kind {
            StateKind::Value => Ok(match self.db.get_pinned_cf(cf, &prefix).map_err(storage)? {
                Some(v) => {
                    out.push(&v);
                    1
                }
                None => 0,
            }),
            StateKind::List => match self.db.get_pinned_cf(cf, &prefix).map_err(storage)? {
                Some(bytes) => {
                    let mut n = 0;
                    for_each_item(&bytes, |item| {
                        out.push(item);
                        n += 1;
                    })?;
                    Ok(n)
                }
                None => Ok(0),
            },
            StateKind::Map => {
                let name = s.cf.clone();
                let entries = self.scan_prefix(&name, &prefix, None, usize::MAX)?;
                for (k, v) in &entries {
                    out.push(k);
                    out.push(v);
                }
                Ok(2 * entries.len() as u32)
            }
        }
    }

    fn set_value(&mut self, state: StateId, kg: KeyGroup, key: &[u8], value: &[u8]) -> Result<()> {
        let cf = checked(&self.db, &self.states, state, StateKind::Value)?;
        self.pending.put_cf(cf, key_prefix(kg, key), value);
        Ok(())
    }

    fn append(&mut self, state: StateId, kg: KeyGroup, key: &[u8], item: &[u8]) -> Result<()> {
        let cf = checked(&self.db, &self.states, state, StateKind::List)?;
        let mut encoded = Vec::with_capacity(item.len() + 4);
        encoded.extend_from_slice(&(item.len() as u32).to_le_bytes());
        encoded.extend_from_slice(item);
        self.pending.merge_cf(cf, key_prefix(kg, key), encoded);
        Ok(())
    }

    fn map_get(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.apply_pending()?;
        let cf = checked(&self.db, &self.states, state, StateKind::Map)?;
        let mut k = key_prefix(kg, key);
        k.extend_from_slice(map_key);
        self.db.get_cf(cf, k).map_err(storage)
    }

    fn map_put(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8], value: &[u8]) -> Result<()> {
        let cf = checked(&self.db, &self.states, state, StateKind::Map)?;
        let mut k = key_prefix(kg, key);
        k.extend_from_slice(map_key);
        self.pending.put_cf(cf, k, value);
        Ok(())
    }

    fn map_remove(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<()> {
        let cf = checked(&self.db, &self.states, state, StateKind::Map)?;
        let mut k = key_prefix(kg, key);
        k.extend_from_slice(map_key);
        self.pending.delete_cf(cf, k);
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
        let name = self.state(state)?.cf.clone();
        checked(&self.db, &self.states, state, StateKind::Map)?;
        let prefix = key_prefix(kg, key);
        let start = start_after.map(|a| [prefix.as_slice(), a].concat());
        self.scan_prefix(&name, &prefix, start.as_deref(), limit)
    }

    fn clear(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<()> {
        let s = self.states.get(state.0 as usize).ok_or(StateError::UnknownState(state.0))?;
        let kind = s.kind;
        let cf = cf(&self.db, &s.cf)?;
        let prefix = key_prefix(kg, key);
        match kind {
            StateKind::Value | StateKind::List => self.pending.delete_cf(cf, prefix),
            StateKind::Map => match prefix_end(&prefix) {
                Some(end) => self.pending.delete_range_cf(cf, prefix, end),
                None => return Err(StateError::Storage("cannot clear an unbounded key range".into())),
            },
        }
        Ok(())
    }

    fn add_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()> {
        let cf = cf(&self.db, TIMERS_CF)?;
        self.pending.put_cf(cf, timer_key(kg, timer), []);
        Ok(())
    }

    fn remove_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()> {
        let cf = cf(&self.db, TIMERS_CF)?;
        self.pending.delete_cf(cf, timer_key(kg, timer));
        Ok(())
    }

    fn timers(&mut self) -> Result<Vec<(KeyGroup, TimerEntry)>> {
        self.apply_pending()?;
        let cf = self.cf(TIMERS_CF)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = item.map_err(storage)?;
            out.push(decode_timer(&k)?);
        }
        Ok(out)
    }

    fn entries(&mut self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>> {
        self.apply_pending()?;
        let s = self.state(state)?;
        let kind = s.kind;
        let cf = self.cf(&s.cf)?;
        let mut out: Vec<(KeyGroup, Vec<u8>, StateContent)> = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(storage)?;
            if k.len() < 6 {
                return Err(StateError::Corrupt("short state key".into()));
            }
            let kg = u16::from_be_bytes([k[0], k[1]]);
            let len = u32::from_be_bytes(k[2..6].try_into().expect("4 bytes")) as usize;
            let key = k.get(6..6 + len).ok_or_else(|| StateError::Corrupt("truncated state key".into()))?.to_vec();
            match kind {
                StateKind::Value => out.push((kg, key, StateContent::Value(v.to_vec()))),
                StateKind::List => out.push((kg, key, StateContent::List(decode_items(&v)?))),
                StateKind::Map => {
                    let entry = (k[6 + len..].to_vec(), v.to_vec());
                    match out.last_mut() {
                        Some((g, last, StateContent::Map(m))) if *g == kg && *last == key => m.push(entry),
                        _ => out.push((kg, key, StateContent::Map(vec![entry]))),
                    }
                }
            }
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<()> {
        self.apply_pending()
    }

    /// A RocksDB checkpoint: memtables flushed, SST files hard-linked (the
    /// shared part), a fresh MANIFEST, CURRENT and OPTIONS (the private part).
    fn native_checkpoint(&mut self, dir: &Path) -> Result<Option<NativeCheckpoint>> {
        self.apply_pending()?;
        rocksdb::checkpoint::Checkpoint::new(&self.db).and_then(|c| c.create_checkpoint(dir)).map_err(storage)?;
        let io = |e: std::io::Error| StateError::Storage(format!("{}: {e}", dir.display()));
        let (mut shared, mut private) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sst") {
                let id = self.shared_ids.get(&name).cloned().unwrap_or_else(|| format!("{}-{name}", self.instance));
                shared.push((name, id));
            } else {
                private.push(name);
            }
        }
        shared.sort();
        private.sort();
        Ok(Some(NativeCheckpoint { dir: PathBuf::from(dir), shared, private }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_native_checkpoint_reopens_with_the_same_state_and_keeps_shared_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = RocksDbBackend::open(&dir.path().join("db"), 128).unwrap();
        let v = db.register("v", StateKind::Value).unwrap();
        db.set_value(v, 7, b"k", b"one").unwrap();
        let first = db.native_checkpoint(&dir.path().join("chk-1")).unwrap().unwrap();
        assert_eq!(first.shared.len(), 1, "{first:?}");
        assert!(first.private.iter().any(|p| p == "CURRENT"), "{first:?}");
        let (sst, id) = first.shared[0].clone();
        assert_eq!(id, format!("{}-{sst}", db.instance));
        db.set_value(v, 7, b"k2", b"two").unwrap();
        let second = db.native_checkpoint(&dir.path().join("chk-2")).unwrap().unwrap();
        assert_eq!(second.shared.len(), 2);
        assert!(second.shared.contains(&(sst.clone(), id.clone())), "the first SST is shared: {second:?}");

        // Restore the first checkpoint elsewhere, as a checkpoint store would.
        let restored = dir.path().join("restored");
        std::fs::create_dir_all(&restored).unwrap();
        for f in first.private.iter().chain(first.shared.iter().map(|(n, _)| n)) {
            std::fs::copy(first.dir.join(f), restored.join(f)).unwrap();
        }
        let ids = HashMap::from([(sst.clone(), id.clone())]);
        let mut again = RocksDbBackend::open_restored(&restored, 128, ids).unwrap();
        let v = again.register("v", StateKind::Value).unwrap();
        assert_eq!(again.entries(v).unwrap(), vec![(7, b"k".to_vec(), StateContent::Value(b"one".to_vec()))]);
        again.set_value(v, 1, b"new", b"x").unwrap();
        let third = again.native_checkpoint(&dir.path().join("chk-3")).unwrap().unwrap();
        assert!(third.shared.contains(&(sst, id)), "a restored SST keeps its id: {third:?}");
        let fresh: Vec<_> = third.shared.iter().filter(|(_, i)| i.starts_with(&again.instance)).collect();
        assert_eq!(fresh.len(), 1, "a new SST gets this instance's prefix: {third:?}");
        assert_ne!(again.instance, db.instance);
    }

    #[test]
    fn timers_round_trip_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = RocksDbBackend::open(dir.path(), 8).unwrap();
        let t = |ts: i64| TimerEntry { timestamp: ts, key: b"k".to_vec(), domain: TimeDomain::EventTime };
        for ts in [5, -3, 1_700_000_000_000] {
            b.add_timer(2, &t(ts)).unwrap();
        }
        b.remove_timer(2, &t(5)).unwrap();
        let got: Vec<i64> = b.timers().unwrap().into_iter().map(|(_, t)| t.timestamp).collect();
        assert_eq!(got, vec![-3, 1_700_000_000_000]);
    }

    #[test]
    fn map_state_survives_reopen_and_clears_by_range() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut b = RocksDbBackend::open(dir.path(), 8).unwrap();
            let m = b.register("m", StateKind::Map).unwrap();
            b.map_put(m, 1, b"k", b"a", b"1").unwrap();
            b.map_put(m, 1, b"k", b"b", b"2").unwrap();
            b.map_put(m, 1, b"k2", b"z", b"9").unwrap();
            b.flush().unwrap();
        }
        let mut b = RocksDbBackend::open(dir.path(), 8).unwrap();
        let m = b.register("m", StateKind::Map).unwrap();
        assert_eq!(b.map_range(m, 1, b"k", Some(b"a"), 10).unwrap(), vec![(b"b".to_vec(), b"2".to_vec())]);
        let mut items = Items::default();
        assert_eq!(b.read_into(m, 1, b"k", &mut items).unwrap(), 4);
        let v = b.register("v", StateKind::Value).unwrap();
        b.set_value(v, 1, b"k", b"one").unwrap();
        b.set_value(v, 3, b"k", b"three").unwrap();
        let mut many = Items::default();
        let counts: Vec<u32> = [(3, b"k"), (2, b"k"), (1, b"k")]
            .iter()
            .map(|(kg, k)| b.read_into(v, *kg, *k, &mut many).unwrap())
            .collect();
        assert_eq!(counts, vec![1, 0, 1]);
        assert_eq!((many.get(0), many.get(1)), (&b"three"[..], &b"one"[..]));
        assert_eq!((items.get(0), items.get(1), items.get(2)), (&b"a"[..], &b"1"[..], &b"b"[..]));
        b.clear(m, 1, b"k").unwrap();
        assert_eq!(b.get(m, 1, b"k").unwrap(), None);
        assert_eq!(
            b.entries(m).unwrap(),
            vec![(1, b"k2".to_vec(), StateContent::Map(vec![(b"z".to_vec(), b"9".to_vec())]))]
        );
    }
}
