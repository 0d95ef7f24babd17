//! The store data of an operator instance and the host side of the
//! `weir:plugin` imports.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use weir_state::{KeyedStateBackend, StateContent, StateId, StateKind, Unlent};

use crate::bindings::weir::plugin::{logging, state, types};
use crate::guest_log::{GuestLog, Stream};

/// Everything one plugin instance's store holds: its WASI context (which
/// grants nothing), the keyed state lent to it for the call in progress and
/// the mapping of its declared states.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) stderr: GuestLog,
    /// The `logging` import's messages (limited like stdout and stderr).
    log: GuestLog,
    /// The task's keyed state while a call borrows it ([`Unlent`] otherwise:
    /// the runtime owns the state, not the instance).
    pub(crate) backend: Box<dyn KeyedStateBackend>,
    /// Declared state handles, in handle order.
    pub(crate) states: Vec<DeclaredState>,
    pub(crate) max_parallelism: u32,
    pub(crate) limiter: crate::limits::Limiter,
}

impl HostState {
    pub(crate) fn new(task: &str, limits: &crate::Limits, grants: &crate::Grants) -> crate::Result<Self> {
        let task: Arc<str> = task.into();
        let stderr = GuestLog::new(task.clone(), Stream::Stderr);
        let stdout = GuestLog::new(task.clone(), Stream::Stdout);
        let log = GuestLog::new(task.clone(), Stream::Log);
        let mut builder = wasmtime_wasi::WasiCtx::builder();
        builder.stdout(stdout).stderr(stderr.clone()).wall_clock(StoppedClock).monotonic_clock(StoppedClock);
        for d in &grants.dirs {
            let perms = if d.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            builder.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
                crate::PluginError::Engine(format!("cannot grant {} as {}: {e}", d.host.display(), d.guest))
            })?;
        }
        let wasi = builder.build();
        Ok(HostState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            log,
            backend: Box::new(Unlent),
            states: Vec::new(),
            max_parallelism: weir_types::DEFAULT_MAX_PARALLELISM,
            limiter: crate::limits::Limiter::new(limits),
        })
    }

    /// A handle the `state` import may use: declared, and not prefetched
    /// (prefetched state arrives with each batch).
    fn state(&self, handle: u32) -> wasmtime::Result<StateId> {
        match self.states.get(handle as usize) {
            Some(s) if !s.prefetch => Ok(s.id),
            Some(_) => Err(wasmtime::Error::msg(format!(
                "state handle {handle} is prefetched: it arrives with each batch and changes go back in the effects"
            ))),
            None => Err(wasmtime::Error::msg(format!("unknown state handle {handle}"))),
        }
    }

    fn kg(&self, key: &[u8]) -> u16 {
        weir_types::key_group(key, self.max_parallelism)
    }
}

/// The clocks a plugin sees: stopped, the wall clock at 0 and the monotonic
/// one at 1 s (stock Go's runtime refuses to start on a monotonic clock that
/// reads 0). Time comes from the host (the watermark and processing time of
/// each call), so results do not depend on when a plugin reads a clock.
struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        1_000_000_000
    }
}

/// A state the operator declared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeclaredState {
    /// The backend state.
    pub(crate) id: StateId,
    /// The declared kind.
    pub(crate) kind: StateKind,
    /// Sent with every batch.
    pub(crate) prefetch: bool,
    /// A prefetched map, stored packed in one value per key.
    pub(crate) packed: bool,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn trap(e: weir_state::StateError) -> wasmtime::Error {
    wasmtime::Error::msg(e.to_string())
}

fn to_wit(content: StateContent) -> types::StateValue {
    match content {
        StateContent::Value(v) => types::StateValue::Value(v),
        StateContent::List(items) => types::StateValue::List(items),
        StateContent::Map(entries) => types::StateValue::Map(entries),
    }
}

impl types::Host for HostState {}

impl state::Host for HostState {
    fn get(&mut self, handle: u32, key: Vec<u8>) -> wasmtime::Result<Option<types::StateValue>> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        Ok(self.backend.get(id, kg, &key).map_err(trap)?.map(to_wit))
    }

    fn map_get(&mut self, handle: u32, key: Vec<u8>, map_key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.map_get(id, kg, &key, &map_key).map_err(trap)
    }

    fn map_range(
        &mut self,
        handle: u32,
        key: Vec<u8>,
        start_after: Option<Vec<u8>>,
        limit: u32,
    ) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.map_range(id, kg, &key, start_after.as_deref(), limit as usize).map_err(trap)
    }

    fn set(&mut self, handle: u32, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.set_value(id, kg, &key, &value).map_err(trap)
    }

    fn append(&mut self, handle: u32, key: Vec<u8>, values: Vec<Vec<u8>>) -> wasmtime::Result<()> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        values.iter().try_for_each(|v| self.backend.append(id, kg, &key, v)).map_err(trap)
    }

    fn map_put(&mut self, handle: u32, key: Vec<u8>, map_key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.map_put(id, kg, &key, &map_key, &value).map_err(trap)
    }

    fn map_remove(&mut self, handle: u32, key: Vec<u8>, map_key: Vec<u8>) -> wasmtime::Result<()> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.map_remove(id, kg, &key, &map_key).map_err(trap)
    }

    fn clear(&mut self, handle: u32, key: Vec<u8>) -> wasmtime::Result<()> {
        let (id, kg) = (self.state(handle)?, self.kg(&key));
        self.backend.clear(id, kg, &key).map_err(trap)
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        self.log.message(level, &message);
        Ok(())
    }
}
