//! What one operator instance may use: linear memory, table elements,
//! instances, time per call and (optionally) fuel per call.

use std::time::Duration;

/// Limits of one operator instance. A call that goes past one fails with
/// [`PluginError::Limit`](crate::PluginError::Limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory, in bytes.
    pub memory_bytes: u64,
    /// Longest a call (`init`, `process`, `on-timer`) may run.
    pub call_timeout: Duration,
    /// Fuel (roughly, Wasm instructions) per call; `None`: not metered.
    /// Needs an engine with fuel metering ([`EngineOptions::fuel`](crate::EngineOptions)).
    pub fuel: Option<u64>,
    /// Most elements of a table.
    pub table_elements: u64,
    /// Most records one call may emit (main and side outputs together).
    pub max_emitted: u64,
    /// Most bytes the host may copy out of one call's results: every
    /// record's key and value, state item, name and message counted as often
    /// as the results refer to it (spans may point at the same bytes many
    /// times).
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
            fuel: None,
            table_elements: 1_000_000,
            max_emitted: 1_000_000,
            max_output_bytes: 256 << 20,
        }
    }
}

/// What an operator may reach beyond its own memory: nothing, unless the
/// job spec grants it. Clocks are always stopped (at 0) and there is no
/// network and no environment; time comes from the host's time context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Host directories the plugin sees, at the given guest paths.
    pub dirs: Vec<DirGrant>,
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: std::path::PathBuf,
    /// Where the plugin sees it (e.g. `/data`).
    pub guest: String,
    /// Whether the plugin may only read.
    pub read_only: bool,
}

/// Bytes as `256 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

impl Limits {
    /// Most bytes one crossing of the component boundary may copy from the
    /// guest (a call's results, or one import's arguments): wasmtime's
    /// host-call copy limit, set to twice `max_output_bytes`.
    pub fn crossing_bytes(&self) -> u64 {
        self.max_output_bytes.saturating_mul(2)
    }

    /// Refuses results that would make the host copy more than
    /// `max_output_bytes` (`bytes`: what they come to).
    pub fn check_output(&self, call: &'static str, bytes: u64) -> crate::Result<()> {
        if bytes <= self.max_output_bytes {
            return Ok(());
        }
        Err(crate::PluginError::Limit {
            call,
            message: format!(
                "its results come to {} once copied, and limits.max_output is {}",
                human_bytes(bytes),
                human_bytes(self.max_output_bytes)
            ),
        })
    }

    /// Refuses more than `max_emitted` records (or values) from one call.
    pub fn check_emitted(&self, call: &'static str, emitted: u64, input: &str) -> crate::Result<()> {
        if emitted <= self.max_emitted {
            return Ok(());
        }
        Err(crate::PluginError::Limit {
            call,
            message: format!("it emitted {emitted} values for {input} (limits.max_emitted is {})", self.max_emitted),
        })
    }
}

/// The store's resource limiter: refuses growth beyond the limits and
/// remembers why, so the error can say it.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_bytes: u64,
    table_elements: u64,
    /// What was refused during the current call.
    pub(crate) refused: Option<String>,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Limiter { memory_bytes: limits.memory_bytes, table_elements: limits.table_elements, refused: None }
    }
}

/// Core instances, tables and memories of one component instance (a
/// component built from Rust has a handful of each).
const MAX_INSTANCES: usize = 100;
const MAX_TABLES: usize = 100;
const MAX_MEMORIES: usize = 10;

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 <= self.memory_bytes {
            return Ok(true);
        }
        let message = format!(
            "memory limit of {} reached: the plugin asked to grow its memory from {} to {}",
            human_bytes(self.memory_bytes),
            human_bytes(current as u64),
            human_bytes(desired as u64)
        );
        self.refused = Some(message.clone());
        Err(wasmtime::Error::msg(message))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 <= self.table_elements {
            return Ok(true);
        }
        let message = format!(
            "table limit of {} elements reached: the plugin asked to grow a table from {current} to {desired}",
            self.table_elements
        );
        self.refused = Some(message.clone());
        Err(wasmtime::Error::msg(message))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(4 << 30), "4 GiB");
        assert_eq!(human_bytes(1536), "2 KiB");
        assert_eq!(human_bytes((64 << 20) + (64 << 10)), "64.1 MiB");
        assert_eq!(human_bytes(12), "12 bytes");
    }
}
