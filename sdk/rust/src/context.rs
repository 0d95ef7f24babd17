//! What an operator sees during `init` and during each call.

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::weir::plugin::logging::{self, Level};
use crate::bindings::weir::plugin::types::{
    Effects, InitContext as WitInit, RecordError, SideOutput, StateDescriptor, StateKind, TimeContext, TimeDomain,
    TimerOp, TimerUpdate,
};
use crate::codec::{Codec, Encoding, Json};
use crate::record::BatchBuilder;
use crate::state::{Handle, ListState, MapState, ValueState};
use crate::table::{StateTable, UpdatesBuilder};
use crate::{Error, Record, Result};

/// Everything a call produces, packed as it is produced.
#[derive(Default)]
pub(crate) struct EffectsBuilder {
    outputs: BatchBuilder,
    side: Vec<(String, BatchBuilder)>,
    timer_updates: Vec<TimerUpdate>,
    counters: Vec<(String, u64)>,
    pub(crate) errors: Vec<RecordError>,
    pub(crate) updates: UpdatesBuilder,
}

impl EffectsBuilder {
    pub(crate) fn finish(self) -> Effects {
        Effects {
            outputs: self.outputs.finish(),
            side_outputs: self.side.into_iter().map(|(name, b)| SideOutput { name, records: b.finish() }).collect(),
            state_updates: self.updates.finish(),
            timer_updates: self.timer_updates,
            counters: self.counters,
            errors: self.errors,
        }
    }
}

/// Given to [`Operator::init`](crate::Operator::init): the operator's config
/// and where it declares its keyed state.
pub struct InitContext {
    pub(crate) wit: WitInit,
    pub(crate) states: Vec<StateDescriptor>,
}

impl InitContext {
    /// The job node id this instance runs for.
    pub fn node_id(&self) -> &str {
        &self.wit.node_id
    }

    /// This instance's index among the node's parallel instances.
    pub fn subtask_index(&self) -> u32 {
        self.wit.subtask_index
    }

    /// The node's parallelism.
    pub fn parallelism(&self) -> u32 {
        self.wit.parallelism
    }

    /// How many times the job restarted after a failure before this start
    /// (0 at first), like Flink's attempt number.
    pub fn attempt(&self) -> u32 {
        self.wit.attempt
    }

    /// The operator's `config` from the job spec, deserialized. A missing
    /// config deserializes from `null` (so `Option` and `#[serde(default)]`
    /// structs accept it).
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.wit.config).map_err(|e| Error::new(format!("invalid config: {e}")))
    }

    fn declare(&mut self, name: &str, kind: StateKind, prefetch: bool) -> Result<Handle> {
        if self.states.iter().any(|s| s.name == name) {
            return Err(Error::new(format!("state `{name}` is declared twice")));
        }
        let id = self.states.len() as u32;
        self.states.push(StateDescriptor { name: name.to_string(), kind, prefetch });
        Ok(Handle { id, prefetch })
    }

    /// Declares a [`ValueState`], prefetched with every batch.
    pub fn value_state<T, C: Codec>(&mut self, name: &str) -> Result<ValueState<T, C>> {
        Ok(ValueState { handle: self.declare(name, StateKind::Value, true)?, _types: PhantomData })
    }

    /// Declares a [`ListState`], prefetched with every batch.
    pub fn list_state<T, C: Codec>(&mut self, name: &str) -> Result<ListState<T, C>> {
        Ok(ListState { handle: self.declare(name, StateKind::List, true)?, _types: PhantomData })
    }

    /// Declares a [`ListState`] read and written through host calls: for
    /// lists too large to send with every batch.
    pub fn large_list_state<T, C: Codec>(&mut self, name: &str) -> Result<ListState<T, C>> {
        Ok(ListState { handle: self.declare(name, StateKind::List, false)?, _types: PhantomData })
    }

    /// Declares a [`MapState`], prefetched (the whole map of the key) with
    /// every batch.
    pub fn map_state<K, V, C: Codec>(&mut self, name: &str) -> Result<MapState<K, V, C>> {
        Ok(MapState { handle: self.declare(name, StateKind::Map, true)?, _types: PhantomData })
    }

    /// Declares a [`MapState`] read and written through host calls, one entry
    /// at a time: for maps too large to send with every batch.
    pub fn large_map_state<K, V, C: Codec>(&mut self, name: &str) -> Result<MapState<K, V, C>> {
        Ok(MapState { handle: self.declare(name, StateKind::Map, false)?, _types: PhantomData })
    }
}

/// A timer that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The key it was registered for.
    pub key: Vec<u8>,
    /// Its time in milliseconds.
    pub timestamp: i64,
    /// Its clock.
    pub domain: TimeDomain,
}

impl Timer {
    /// The key as UTF-8, if it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// Given to every [`Operator::process`](crate::Operator::process) and
/// [`Operator::on_timer`](crate::Operator::on_timer) call: the current key
/// and time, output, timers and counters.
pub struct Context<'a> {
    pub(crate) table: &'a mut StateTable,
    pub(crate) effects: &'a mut EffectsBuilder,
    pub(crate) key: Option<&'a [u8]>,
    /// The key's entry in the state table, looked up on first use.
    pub(crate) key_index: Option<usize>,
    pub(crate) timestamp: i64,
    pub(crate) time: TimeContext,
}

impl<'a> Context<'a> {
    pub(crate) fn key_index(&mut self) -> Result<usize> {
        if let Some(i) = self.key_index {
            return Ok(i);
        }
        let i = self.table.key_index(self.require_key()?);
        self.key_index = Some(i);
        Ok(i)
    }

    pub(crate) fn require_key(&self) -> Result<&'a [u8]> {
        self.key.ok_or_else(|| Error::new("keyed state and timers need a keyed input (set `key_by` in the job spec)"))
    }

    /// The key of the record or timer being handled.
    pub fn key(&self) -> Option<&[u8]> {
        self.key
    }

    /// The key as UTF-8, if there is one and it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The timestamp of the record or timer being handled.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The operator's event-time watermark when the call started. A record
    /// at or below it is late.
    pub fn watermark(&self) -> i64 {
        self.time.watermark
    }

    /// The host's processing time (ms) when the call started.
    pub fn processing_time(&self) -> i64 {
        self.time.processing_time
    }

    /// Emits a record to the main output (copies it).
    pub fn emit(&mut self, record: Record<'_>) {
        self.effects.outputs.push(record.key, record.value, record.timestamp);
    }

    /// Emits `value` with the current key and timestamp.
    pub fn emit_value(&mut self, value: &[u8]) {
        self.effects.outputs.push(self.key, value, self.timestamp);
    }

    /// Encodes `value` straight into the output with codec `C`, with the
    /// current key and timestamp.
    pub fn emit_encoded<C: Codec, T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.effects.outputs.push_with(self.key, self.timestamp, |out| C::encode_into(value, out))
    }

    /// Encodes `value` straight into the output with a run-time choice of
    /// encoding, with the current key and timestamp.
    pub fn emit_as<T: Serialize + ?Sized>(&mut self, encoding: Encoding, value: &T) -> Result<()> {
        self.effects.outputs.push_with(self.key, self.timestamp, |out| encoding.encode_into(value, out))
    }

    /// Emits `value` as JSON with the current key and timestamp.
    pub fn emit_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.emit_encoded::<Json, T>(value)
    }

    /// Emits a record to the side output `name` (consumed in the job spec as
    /// `node-id.name`).
    pub fn side_output(&mut self, name: &str, record: Record<'_>) {
        let side = match self.effects.side.iter().position(|(n, _)| n == name) {
            Some(i) => &mut self.effects.side[i].1,
            None => {
                self.effects.side.push((name.to_string(), BatchBuilder::default()));
                &mut self.effects.side.last_mut().expect("just pushed").1
            }
        };
        side.push(record.key, record.value, record.timestamp);
    }

    fn timer(&mut self, timestamp: i64, domain: TimeDomain, op: TimerOp) -> Result<()> {
        let key = self.require_key()?.to_vec();
        self.effects.timer_updates.push(TimerUpdate { key, timestamp, domain, op });
        Ok(())
    }

    /// Registers an event-time timer for the current key: `on_timer` runs
    /// once the watermark reaches `timestamp`. Registering the same time
    /// twice gives one timer.
    pub fn register_event_timer(&mut self, timestamp: i64) -> Result<()> {
        self.timer(timestamp, TimeDomain::EventTime, TimerOp::Register)
    }

    /// Deletes the current key's event-time timer at `timestamp`, if any.
    pub fn delete_event_timer(&mut self, timestamp: i64) -> Result<()> {
        self.timer(timestamp, TimeDomain::EventTime, TimerOp::Delete)
    }

    /// Registers a processing-time timer for the current key.
    pub fn register_processing_timer(&mut self, timestamp: i64) -> Result<()> {
        self.timer(timestamp, TimeDomain::ProcessingTime, TimerOp::Register)
    }

    /// Deletes the current key's processing-time timer at `timestamp`.
    pub fn delete_processing_timer(&mut self, timestamp: i64) -> Result<()> {
        self.timer(timestamp, TimeDomain::ProcessingTime, TimerOp::Delete)
    }

    /// Adds `delta` to the counter `name` (exported by the host as the
    /// metric `weir_operator_counter{node, name}`).
    pub fn count(&mut self, name: &str, delta: u64) {
        match self.effects.counters.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v += delta,
            None => self.effects.counters.push((name.to_string(), delta)),
        }
    }

    /// Logs through the host's `tracing`, tagged with the node.
    pub fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        };
        logging::log(level, message);
    }
}

/// Severity of a [`Context::log`] message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected.
    Warn,
    /// Something failed.
    Error,
}
