//! Keyed state for Weir operators: the [`KeyedStateBackend`] trait and the
//! in-memory backend.
//!
//! This crate must never depend on RocksDB: the RocksDB backend lives in
//! `weir-state-rocksdb`. State is addressed by (state, key group, key), so a
//! key group's state can be snapshotted and restored on its own.
//!
//! ```
//! use weir_state::{KeyedStateBackend, MemoryBackend, StateContent, StateKind};
//!
//! let mut backend = MemoryBackend::new(128);
//! let count = backend.register("count", StateKind::Value).unwrap();
//! backend.set_value(count, 7, b"sensor_1", b"41").unwrap();
//! assert_eq!(backend.get(count, 7, b"sensor_1").unwrap(), Some(StateContent::Value(b"41".to_vec())));
//! ```

mod keyed;
mod memory;
pub mod packed;
pub mod snapshot;

pub use keyed::{KeyedState, StateDescriptor, StateEncoding, Unlent};
pub use memory::MemoryBackend;
use weir_types::{TimeDomain, Timestamp};

/// How a state stores its content for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// One value.
    Value,
    /// An ordered list of values.
    List,
    /// A map from user keys to values (ordered by user key bytes).
    Map,
}

/// The whole content of a state for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateContent {
    /// A value state's value.
    Value(Vec<u8>),
    /// A list state's items.
    List(Vec<Vec<u8>>),
    /// A map state's entries, ordered by key.
    Map(Vec<(Vec<u8>, Vec<u8>)>),
}

/// A registered state of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateId(pub u32);

/// A key group: `hash(key) % max_parallelism`.
pub type KeyGroup = u16;

/// A backend's checkpoint in its own format: files in a directory. Shared
/// files never change once written, so a checkpoint store keeps one copy of
/// each under its id, however many checkpoints refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeCheckpoint {
    /// The directory holding the files.
    pub dir: std::path::PathBuf,
    /// Immutable files: (file name in `dir`, id unique across the job's
    /// history).
    pub shared: Vec<(String, String)>,
    /// The other files (small metadata), by name in `dir`.
    pub private: Vec<String>,
}

/// A timer as kept in state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerEntry {
    /// When it fires.
    pub timestamp: Timestamp,
    /// The key it belongs to.
    pub key: Vec<u8>,
    /// Its clock.
    pub domain: TimeDomain,
}

/// Errors of a state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state was registered with another kind.
    #[error("state `{name}` is a {existing:?} state, not a {requested:?} state")]
    KindMismatch {
        /// The state's name.
        name: String,
        /// Its registered kind.
        existing: StateKind,
        /// The kind asked for.
        requested: StateKind,
    },
    /// A state restored from a checkpoint is declared with another kind.
    #[error("state `{name}` holds a {} state and is now declared as a {} state", stored.name(), declared.name())]
    KindChanged {
        /// The state's name.
        name: String,
        /// The kind the checkpoint holds.
        stored: StateKind,
        /// The kind declared now.
        declared: StateKind,
    },
    /// State was used outside a call that lends it.
    #[error("keyed state is only available during a call")]
    NotLent,
    /// One operator declared two states of one name.
    #[error("state `{0}` is declared twice")]
    Duplicate(String),
    /// An operation for one kind on a state of another.
    #[error("operation does not apply to state #{0}: it is a {1:?} state")]
    WrongKind(u32, StateKind),
    /// An unknown state id.
    #[error("unknown state #{0}")]
    UnknownState(u32),
    /// The storage engine failed.
    #[error("state storage failed: {0}")]
    Storage(String),
    /// Reading or writing state files failed.
    #[error("state files {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Stored bytes could not be decoded.
    #[error("corrupt state: {0}")]
    Corrupt(String),
}

/// `Result` with [`StateError`].
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Byte strings packed in one buffer: how state content crosses into a
/// plugin without an allocation per item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    /// Every item's bytes, back to back.
    pub data: Vec<u8>,
    /// (offset, length) of each item in `data`.
    pub spans: Vec<(u32, u32)>,
}

impl Items {
    /// Appends an item.
    pub fn push(&mut self, item: &[u8]) {
        self.spans.push((self.data.len() as u32, item.len() as u32));
        self.data.extend_from_slice(item);
    }

    /// Item `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let (o, l) = self.spans[i];
        &self.data[o as usize..o as usize + l as usize]
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Keyed state of one operator task. Keys are scoped by key group.
///
/// Writes may be buffered; every read sees every earlier write.
pub trait KeyedStateBackend: Send {
    /// Registers (or finds, by name) a state. Names survive restarts.
    fn register(&mut self, name: &str, kind: StateKind) -> Result<StateId>;

    /// The registered states' names and kinds, in id order.
    fn states(&self) -> Vec<(String, StateKind)>;

    /// The whole content of a state for a key, `None` when empty.
    fn get(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<Option<StateContent>>;

    /// Calls `f` with a value state's bytes for a key (borrowed from the
    /// backend where it can) and returns what `f` returns; 0 when there is
    /// no value.
    fn visit_value(
        &mut self,
        state: StateId,
        kg: KeyGroup,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<u32>,
    ) -> Result<u32>;

    /// Appends a state's content for a key to `out` as items (a value: one;
    /// a list: one per element; a map: key and value per entry, in key
    /// order) and returns how many it appended.
    fn read_into(&mut self, state: StateId, kg: KeyGroup, key: &[u8], out: &mut Items) -> Result<u32> {
        Ok(match self.get(state, kg, key)? {
            None => 0,
            Some(StateContent::Value(v)) => {
                out.push(&v);
                1
            }
            Some(StateContent::List(items)) => {
                items.iter().for_each(|i| out.push(i));
                items.len() as u32
            }
            Some(StateContent::Map(entries)) => {
                for (k, v) in &entries {
                    out.push(k);
                    out.push(v);
                }
                2 * entries.len() as u32
            }
        })
    }

    /// Replaces a value state's value.
    fn set_value(&mut self, state: StateId, kg: KeyGroup, key: &[u8], value: &[u8]) -> Result<()>;

    /// Appends an element to a list state.
    fn append(&mut self, state: StateId, kg: KeyGroup, key: &[u8], item: &[u8]) -> Result<()>;

    /// One map entry.
    fn map_get(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Inserts or replaces a map entry.
    fn map_put(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes a map entry.
    fn map_remove(&mut self, state: StateId, kg: KeyGroup, key: &[u8], map_key: &[u8]) -> Result<()>;

    /// Up to `limit` map entries after `start_after`, in key order.
    fn map_range(
        &mut self,
        state: StateId,
        kg: KeyGroup,
        key: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Removes a state's content for a key.
    fn clear(&mut self, state: StateId, kg: KeyGroup, key: &[u8]) -> Result<()>;

    /// Stores a timer.
    fn add_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()>;

    /// Removes a timer.
    fn remove_timer(&mut self, kg: KeyGroup, timer: &TimerEntry) -> Result<()>;

    /// Every stored timer, to rebuild the timer queues on start.
    fn timers(&mut self) -> Result<Vec<(KeyGroup, TimerEntry)>>;

    /// Every (key group, key, content) of a state, ordered by key group then
    /// key: for tests, debugging and snapshots.
    fn entries(&mut self, state: StateId) -> Result<Vec<(KeyGroup, Vec<u8>, StateContent)>>;

    /// A checkpoint in the backend's own format, when it has one: RocksDB
    /// writes a checkpoint of its files into `dir` (which must not exist).
    /// `None`: take a logical [`snapshot`] instead.
    fn native_checkpoint(&mut self, dir: &std::path::Path) -> Result<Option<NativeCheckpoint>> {
        let _ = dir;
        Ok(None)
    }

    /// Makes buffered writes durable in the engine.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
