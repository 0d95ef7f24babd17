//! What a window computes: a built-in aggregate, a Wasm `aggregator`
//! (accumulators the host stores) or a Wasm `window-processor` (all the
//! window's records, buffered by the host).

use weir_spec::AggregateSpec;
use weir_state::Items;
use weir_types::{RecordBatch, TaskInfo, Timestamp};
use weir_wasm::{AggregatorInstance, RecordFailure, WindowProcessorInstance, WindowRef};

use super::builtin::{Acc, value_of};
use crate::error::{Result, RuntimeError};

/// The bounds count windows are given (they have none).
pub(crate) const UNBOUNDED: (Timestamp, Timestamp) = (Timestamp::MIN, Timestamp::MAX);

/// A window being added to during one call.
pub(crate) struct Group<'k> {
    pub(crate) key: &'k [u8],
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    /// Whether state holds the window already.
    pub(crate) stored: bool,
    /// How many records the window had before this call.
    pub(crate) count_before: u64,
    pub(crate) acc: Vec<u8>,
    /// The call's records added to it (indexes into the call's batch).
    pub(crate) records: Vec<u32>,
}

/// A window that fires.
pub(crate) struct Fired {
    pub(crate) key: Vec<u8>,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    /// The results' event time.
    pub(crate) timestamp: Timestamp,
    pub(crate) count: u64,
    pub(crate) acc: Vec<u8>,
}

/// The records of fired windows, for a window processor: all in one batch,
/// and each window's (first, count) in it.
#[derive(Default)]
pub(crate) struct Buffered {
    pub(crate) records: RecordBatch,
    pub(crate) ranges: Vec<u32>,
}

/// A window's computation.
pub(crate) enum WindowFunction {
    Builtin(AggregateSpec),
    Aggregator(Box<AggregatorInstance>),
    Process(Box<WindowProcessorInstance>),
}

impl WindowFunction {
    /// The accumulator of a new window.
    pub(crate) fn empty(&self) -> Vec<u8> {
        match self {
            WindowFunction::Builtin(_) => Acc::EMPTY.encode(),
            WindowFunction::Aggregator(a) => a.empty_accumulator().to_vec(),
            WindowFunction::Process(_) => Vec::new(),
        }
    }

    /// Whether the host keeps every record of a window (for a processor).
    pub(crate) fn buffers_records(&self) -> bool {
        matches!(self, WindowFunction::Process(_))
    }

    /// Adds each group's records to its accumulator. Returns the records
    /// that could not be added (with why).
    pub(crate) fn add(
        &mut self,
        task: &TaskInfo,
        records: &RecordBatch,
        groups: &mut [Group<'_>],
    ) -> Result<Vec<RecordFailure>> {
        let mut failures = Vec::new();
        match self {
            WindowFunction::Builtin(aggregate) => {
                // A record's number is read once, however many windows
                // (sliding) it joins.
                let mut values: Vec<Option<Result<f64, String>>> = vec![None; records.len()];
                for g in groups.iter_mut() {
                    let mut acc = decode(task, &g.acc)?;
                    for &i in &g.records {
                        let value = values[i as usize]
                            .get_or_insert_with(|| value_of(aggregate, records.get(i as usize).value));
                        match value {
                            Ok(v) => acc.add(*v),
                            Err(message) => failures.push(RecordFailure { index: i, message: message.clone() }),
                        }
                    }
                    g.acc = acc.encode();
                }
                // A sliding window's record fails once per window.
                failures.sort_by_key(|f| f.index);
                failures.dedup_by_key(|f| f.index);
            }
            WindowFunction::Aggregator(instance) => {
                let mut accumulators = Items::default();
                let mut additions: Vec<(u32, u32)> = Vec::new();
                for (gi, g) in groups.iter().enumerate() {
                    accumulators.push(&g.acc);
                    additions.extend(g.records.iter().map(|&r| (r, gi as u32)));
                }
                if additions.is_empty() {
                    return Ok(failures);
                }
                // In record order, as the WIT promises (stable: a sliding
                // window record's windows stay oldest first).
                additions.sort_by_key(|&(r, _)| r);
                let mut added = vec![false; records.len()];
                additions.iter().for_each(|&(r, _)| added[r as usize] = true);
                let flat = additions.into_iter().flat_map(|(r, g)| [r, g]).collect();
                let (updated, failed) =
                    instance.add(accumulators, records, flat).map_err(|e| RuntimeError::plugin(task, e))?;
                // Only a record it was given can be refused (a refused record
                // is left out and the batch assigned again: refusing others
                // would make the host assign forever).
                if let Some(f) = failed.iter().find(|f| !added.get(f.index as usize).copied().unwrap_or(false)) {
                    let message = format!("`add` refused record #{}, which it was not given", f.index);
                    return Err(RuntimeError::plugin(task, weir_wasm::PluginError::Contract(message)));
                }
                for (i, g) in groups.iter_mut().enumerate() {
                    g.acc = updated.get(i).to_vec();
                }
                failures = failed;
                failures.dedup_by_key(|f| f.index);
            }
            WindowFunction::Process(_) => {}
        }
        Ok(failures)
    }

    /// Merges accumulators into one (sessions that came to touch).
    pub(crate) fn merge(&mut self, task: &TaskInfo, accs: Vec<Vec<u8>>) -> Result<Vec<u8>> {
        match self {
            WindowFunction::Builtin(_) => {
                let mut merged = Acc::EMPTY;
                for acc in &accs {
                    merged.merge(&decode(task, acc)?);
                }
                Ok(merged.encode())
            }
            WindowFunction::Aggregator(instance) => {
                let mut items = Items::default();
                for acc in &accs {
                    items.push(acc);
                }
                let merged =
                    instance.merge(items, vec![accs.len() as u32]).map_err(|e| RuntimeError::plugin(task, e))?;
                Ok(merged.get(0).to_vec())
            }
            WindowFunction::Process(_) => Ok(Vec::new()),
        }
    }

    /// The output values of fired windows: (window index, value), in window
    /// order.
    pub(crate) fn results(
        &mut self,
        task: &TaskInfo,
        fired: &[Fired],
        buffered: Buffered,
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        if fired.is_empty() {
            return Ok(Vec::new());
        }
        let refs = || -> Vec<WindowRef<'_>> {
            fired.iter().map(|f| WindowRef { key: &f.key, start: f.start, end: f.end }).collect()
        };
        match self {
            WindowFunction::Builtin(aggregate) => fired
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let (name, value) = decode(task, &f.acc)?.result(aggregate);
                    let key = serde_json::Value::String(String::from_utf8_lossy(&f.key).into_owned());
                    // Fields in a fixed, readable order: key, window, result.
                    let text = match (f.start, f.end) == UNBOUNDED {
                        true => format!(r#"{{"key":{key},"records":{},"{name}":{value}}}"#, f.count),
                        false => format!(
                            r#"{{"key":{key},"window_start":{},"window_end":{},"{name}":{value}}}"#,
                            f.start, f.end
                        ),
                    };
                    Ok((i, text.into_bytes()))
                })
                .collect(),
            WindowFunction::Aggregator(instance) => {
                let mut accs = Items::default();
                for f in fired {
                    accs.push(&f.acc);
                }
                let values = instance.get_result(&refs(), accs).map_err(|e| RuntimeError::plugin(task, e))?;
                Ok((0..values.len()).map(|i| (i, values.get(i).to_vec())).collect())
            }
            WindowFunction::Process(instance) => {
                let outputs = instance
                    .process(&refs(), buffered.records, buffered.ranges)
                    .map_err(|e| RuntimeError::plugin(task, e))?;
                Ok(outputs.into_iter().map(|(w, v)| (w as usize, v)).collect())
            }
        }
    }
}

fn decode(task: &TaskInfo, bytes: &[u8]) -> Result<Acc> {
    Acc::decode(bytes).ok_or_else(|| {
        RuntimeError::state(
            task,
            weir_state::StateError::Corrupt("window state: an accumulator is not 32 bytes".into()),
        )
    })
}
