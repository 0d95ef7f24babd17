//! What every plugin instance has, whatever its world: a store with its
//! limits, calls armed with a deadline and fuel, and failures turned into
//! [`PluginError`]s that say what went wrong.

use wasmtime::Store;
use wasmtime::component::InstancePre;
use weir_state::KeyedState;

use crate::host::HostState;
use crate::{Grants, Limits, PluginError, Result, describe, wit};

/// A plugin instance's store and limits.
pub(crate) struct Sandbox {
    pub(crate) store: Store<HostState>,
    pub(crate) limits: Limits,
}

impl Sandbox {
    /// A store for one task, limited and with a deadline per call.
    pub(crate) fn new(pre: &InstancePre<HostState>, task: &str, limits: &Limits, grants: &Grants) -> Result<Self> {
        let mut store = Store::new(pre.engine(), HostState::new(task, limits, grants)?);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        // wasmtime's own bound on what one crossing copies from the guest (a
        // call's results, or one import's arguments). Twice the output
        // budget: results within it get the budget's own, more precise
        // refusal, and bytes no span refers to are bounded all the same.
        store.set_hostcall_fuel(usize::try_from(limits.crossing_bytes()).unwrap_or(usize::MAX));
        Ok(Sandbox { store, limits: limits.clone() })
    }

    /// Instantiates the component in this store.
    pub(crate) fn instantiate<T>(
        &mut self,
        instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T> {
        self.arm()?;
        let result = instantiate(&mut self.store);
        self.check("instantiate", result.map(Ok::<_, wit::OperatorError>))
    }

    /// Runs `call` with `state` lent to the store (the `state` import reads
    /// and writes it), and takes it back whatever the call did.
    pub(crate) fn lending<T>(&mut self, state: &mut KeyedState, call: impl FnOnce(&mut Self) -> T) -> T {
        state.swap_backend(&mut self.store.data_mut().backend);
        let result = call(self);
        state.swap_backend(&mut self.store.data_mut().backend);
        result
    }

    /// Sets the deadline (and fuel) for the next call.
    pub(crate) fn arm(&mut self) -> Result<()> {
        let ticks = self.limits.call_timeout.as_millis().div_ceil(crate::EPOCH_TICK.as_millis()).max(1) as u64;
        self.store.set_epoch_deadline(ticks + 1);
        self.store.data_mut().limiter.refused = None;
        self.store.data().stderr.start_call();
        match self.limits.fuel {
            Some(fuel) => self.store.set_fuel(fuel).map_err(|_| {
                PluginError::Engine("a fuel limit needs an engine with fuel metering (EngineOptions::fuel)".into())
            }),
            // Unmetered: an engine with metering still needs fuel to run.
            None => {
                let _ = self.store.set_fuel(u64::MAX);
                Ok(())
            }
        }
    }

    pub(crate) fn check<T>(
        &self,
        call: &'static str,
        result: wasmtime::Result<Result<T, wit::OperatorError>>,
    ) -> Result<T> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(PluginError::Operator { call, message: e.message }),
            Err(e) => {
                if let Some(refused) = self.store.data().limiter.refused.clone() {
                    return Err(PluginError::Limit { call, message: refused });
                }
                match e.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::Interrupt) => {
                        let limit = humantime::format_duration(self.limits.call_timeout);
                        return Err(PluginError::Limit {
                            call,
                            message: format!("call deadline of {limit} passed: the call was interrupted"),
                        });
                    }
                    Some(wasmtime::Trap::OutOfFuel) => {
                        let fuel = self.limits.fuel.unwrap_or_default();
                        return Err(PluginError::Limit {
                            call,
                            message: format!("fuel limit of {fuel} per call used up"),
                        });
                    }
                    _ => {}
                }
                let mut message = describe(&e);
                if message.contains(HOSTCALL_FUEL_EXHAUSTED) {
                    return Err(PluginError::Limit {
                        call,
                        message: format!(
                            "it handed the host more than {} (twice limits.max_output) in one crossing of the \
                             component boundary (a call's results, or one import's arguments)",
                            crate::human_bytes(self.limits.crossing_bytes())
                        ),
                    });
                }
                if let Some(wasmtime::Trap::MemoryOutOfBounds) = e.downcast_ref::<wasmtime::Trap>() {
                    // Rust and C keep their stack in linear memory: an overflow
                    // runs off its start.
                    message.push_str(" (a bug in the plugin, or its stack overflowed)");
                }
                let said = guest_stderr(&self.store.data().stderr.tail());
                if !said.is_empty() {
                    message.push_str(&format!(" (guest stderr: {said})"));
                }
                Err(PluginError::Trap { call, message })
            }
        }
    }
}

/// How wasmtime says its host-call copy limit (`Store::set_hostcall_fuel`)
/// was reached; its error type is private, so the text is all there is.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

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
