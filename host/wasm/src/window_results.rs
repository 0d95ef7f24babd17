//! The host's reading of what the window worlds return: checked against
//! the call's input (counts, indexes) and the output budget before anything
//! is copied. Pure functions, so that the boundary can be fuzzed without a
//! guest (`tests/all/boundary_fuzz.rs`).

use weir_state::Items;

use crate::convert::{items_bytes, items_from_wit};
use crate::wit_windows::{AddOutput, WindowOutput};
use crate::{Limits, PluginError, Result, WindowRef, wit};

/// A record an `add` could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// The record's index in the batch.
    pub index: u32,
    /// The plugin's message.
    pub message: String,
}

/// Accumulators or results a call returned, one per input (`expected`):
/// `call` is `merge` or `get-result`; `what` names the items and `per` the
/// inputs in errors (`returned 1 results for 2 windows`).
pub fn accumulators(
    limits: &Limits,
    call: &'static str,
    (what, per): (&str, &str),
    items: wit::Items,
    expected: usize,
) -> Result<Items> {
    limits.check_output(call, items_bytes(&items))?;
    let items = items_from_wit(items)?;
    match items.len() == expected {
        true => Ok(items),
        false => Err(PluginError::Contract(format!("`{call}` returned {} {what} for {expected}{per}", items.len()))),
    }
}

/// What an `add` returned for `expected` accumulators and a batch of
/// `records`: the updated accumulators and the records it refused.
pub fn add_output(
    limits: &Limits,
    output: AddOutput,
    expected: usize,
    records: usize,
) -> Result<(Items, Vec<RecordFailure>)> {
    let messages: u64 = output.errors.iter().map(|e| 16 + e.message.len() as u64).sum();
    limits.check_output("add", items_bytes(&output.accumulators).saturating_add(messages))?;
    let accumulators = items_from_wit(output.accumulators)?;
    if accumulators.len() != expected {
        return Err(PluginError::Contract(format!(
            "`add` returned {} accumulators for {expected}",
            accumulators.len()
        )));
    }
    if let Some(e) = output.errors.iter().find(|e| e.index as usize >= records) {
        return Err(PluginError::Contract(format!(
            "`add` returned an error for record #{} of a batch of {records}",
            e.index
        )));
    }
    let failures = output.errors.into_iter().map(|e| RecordFailure { index: e.index, message: e.message }).collect();
    Ok((accumulators, failures))
}

/// What a window processor's `process` returned for `windows`: each
/// value with the index of its window.
pub fn window_output(limits: &Limits, windows: &[WindowRef<'_>], output: WindowOutput) -> Result<Vec<(u32, Vec<u8>)>> {
    let count = windows.len() as u32;
    limits.check_emitted("process", output.windows.len() as u64, &format!("{count} windows"))?;
    // Each value is copied with its window's key.
    let keys: u64 = output.windows.iter().map(|&w| windows.get(w as usize).map_or(0, |w| w.key.len() as u64)).sum();
    limits.check_output("process", items_bytes(&output.values).saturating_add(keys))?;
    let values = items_from_wit(output.values)?;
    if values.len() != output.windows.len() {
        return Err(PluginError::Contract(format!(
            "`process` returned {} values and {} window indexes",
            values.len(),
            output.windows.len()
        )));
    }
    output
        .windows
        .iter()
        .enumerate()
        .map(|(i, &w)| match w < count {
            true => Ok((w, values.get(i).to_vec())),
            false => Err(PluginError::Contract(format!("`process` returned a value for window {w} of {count}"))),
        })
        .collect()
}
