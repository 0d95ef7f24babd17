//! Between Weir's packed batches and their WIT form (flat number lists,
//! which cross the boundary as plain copies). Everything coming back from a
//! guest is checked: a span outside its buffer is a contract error, never a
//! panic.

use weir_state::Items;
use weir_types::{RecordBatch, Row};

use crate::wit;
use crate::{PluginError, Result};

/// The key length that means "no key".
const NO_KEY: u32 = u32::MAX;

/// A batch in its WIT form (moves the data buffer).
pub fn batch_to_wit(batch: RecordBatch) -> wit::RecordBatch {
    let (data, rows) = batch.into_parts();
    let (spans, timestamps) = rows_to_wit(&rows);
    wit::RecordBatch { data, spans, timestamps }
}

/// A batch's rows as WIT spans and timestamps.
fn rows_to_wit(rows: &[Row]) -> (Vec<u32>, Vec<i64>) {
    let mut spans = Vec::with_capacity(rows.len() * 4);
    let mut timestamps = Vec::with_capacity(rows.len());
    for r in rows {
        let (ko, kl) = r.key.unwrap_or((0, NO_KEY));
        spans.extend_from_slice(&[ko, kl, r.value.0, r.value.1]);
        timestamps.push(r.timestamp);
    }
    (spans, timestamps)
}

/// Lends a batch's bytes to a call in WIT form, without copying them;
/// [`return_batch`] puts them back.
pub(crate) fn lend_batch(batch: &mut RecordBatch) -> wit::RecordBatch {
    let (spans, timestamps) = rows_to_wit(batch.rows());
    wit::RecordBatch { data: batch.take_data(), spans, timestamps }
}

/// A borrowed batch in WIT form (its bytes copied once).
pub(crate) fn batch_ref_to_wit(batch: &RecordBatch) -> wit::RecordBatch {
    let (spans, timestamps) = rows_to_wit(batch.rows());
    wit::RecordBatch { data: batch.data().to_vec(), spans, timestamps }
}

/// Takes back what [`lend_batch`] lent.
pub(crate) fn return_batch(batch: &mut RecordBatch, lent: wit::RecordBatch) {
    batch.restore_data(lent.data);
}

/// A batch a guest returned, checked.
pub fn batch_from_wit(batch: wit::RecordBatch) -> Result<RecordBatch> {
    let wit::RecordBatch { data, spans, timestamps } = batch;
    if spans.len() != timestamps.len() * 4 {
        return Err(PluginError::Contract(format!(
            "a returned batch has {} spans for {} records (4 per record expected)",
            spans.len(),
            timestamps.len()
        )));
    }
    let rows = spans
        .chunks_exact(4)
        .zip(timestamps)
        .map(|(s, timestamp)| Row { key: (s[1] != NO_KEY).then_some((s[0], s[1])), value: (s[2], s[3]), timestamp })
        .collect();
    RecordBatch::from_parts(data, rows)
        .ok_or_else(|| PluginError::Contract("a returned record points outside its batch".into()))
}

/// What the host counts for each record, item or name it copies, beside
/// its bytes (so that a flood of empty ones is not free).
const OVERHEAD: u64 = 16;

/// What a record batch comes to once the host copies each record: every
/// key and value span, however often they point at the same bytes.
fn batch_bytes(batch: &wit::RecordBatch) -> u64 {
    let span = |s: &[u32]| {
        let key = s.get(1).copied().filter(|&l| l != NO_KEY).unwrap_or(0);
        OVERHEAD + u64::from(key) + u64::from(s.get(3).copied().unwrap_or(0))
    };
    batch.spans.chunks(4).map(span).sum()
}

/// What items come to once copied item by item.
pub(crate) fn items_bytes(items: &wit::Items) -> u64 {
    items.spans.chunks(2).map(|s| OVERHEAD + u64::from(s.get(1).copied().unwrap_or(0))).sum()
}

/// What a call's effects come to once the host has copied everything they
/// refer to: outputs, side outputs, every state update's key and operands
/// (an item as often as updates refer to it), timer keys, counter names,
/// error messages. Linear in the size of the effects, however they overlap.
pub fn effects_bytes(effects: &wit::Effects) -> u64 {
    let spans = &effects.state_updates.items.spans;
    // prefix[i]: what items 0..i come to.
    let mut prefix = Vec::with_capacity(spans.len() / 2 + 1);
    prefix.push(0u64);
    for s in spans.chunks(2) {
        let last = *prefix.last().expect("not empty");
        prefix.push(last + OVERHEAD + u64::from(s.get(1).copied().unwrap_or(0)));
    }
    let items = prefix.len() - 1;
    let range = |first: u32, count: u32| -> u64 {
        // Items past the end are refused later; count them as the largest.
        let (first, end) = (first as usize, (first as usize).saturating_add(count as usize));
        let missing = end.saturating_sub(items.max(first)) as u64;
        prefix[end.min(items)] - prefix[first.min(items)] + missing * OVERHEAD
    };
    let updates: u64 = effects
        .state_updates
        .updates
        .iter()
        .map(|u| OVERHEAD + range(u.key, 1) + range(u.first_item, u.item_count))
        .sum();
    let names = |n: usize| OVERHEAD + n as u64;
    batch_bytes(&effects.outputs)
        + effects.side_outputs.iter().map(|s| names(s.name.len()) + batch_bytes(&s.records)).sum::<u64>()
        + updates
        + effects.timer_updates.iter().map(|t| names(t.key.len())).sum::<u64>()
        + effects.counters.iter().map(|(name, _)| names(name.len())).sum::<u64>()
        + effects.errors.iter().map(|e| names(e.message.len())).sum::<u64>()
}

/// Packed items in their WIT form.
pub(crate) fn items_to_wit(items: Items) -> wit::Items {
    wit::Items { data: items.data, spans: items.spans.into_iter().flat_map(|(o, l)| [o, l]).collect() }
}

/// Items a guest returned, checked to lie inside their buffer.
pub(crate) fn items_from_wit(items: wit::Items) -> Result<Items> {
    let wit::Items { data, spans } = items;
    if !spans.len().is_multiple_of(2) {
        return Err(PluginError::Contract(format!("{} spans are not (offset, length) pairs", spans.len())));
    }
    let spans: Vec<(u32, u32)> = spans.chunks_exact(2).map(|s| (s[0], s[1])).collect();
    if spans.iter().any(|&(o, l)| (o as usize).saturating_add(l as usize) > data.len()) {
        return Err(PluginError::Contract("a returned item lies outside its buffer".into()));
    }
    Ok(Items { data, spans })
}

/// Checked access to the items a guest returned.
pub(crate) struct ItemsView<'a>(pub(crate) &'a wit::Items);

impl<'a> ItemsView<'a> {
    /// How many items there are.
    pub(crate) fn len(&self) -> u32 {
        (self.0.spans.len() / 2) as u32
    }

    pub(crate) fn get(&self, i: u32) -> Result<&'a [u8]> {
        let at = (i as usize).checked_mul(2).filter(|&at| at + 1 < self.0.spans.len());
        let at = at.ok_or_else(|| PluginError::Contract(format!("item {i} does not exist")))?;
        let (start, len) = (self.0.spans[at] as usize, self.0.spans[at + 1] as usize);
        self.0
            .data
            .get(start..start.saturating_add(len))
            .ok_or_else(|| PluginError::Contract(format!("item {i} lies outside its buffer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_bad_spans_are_refused() {
        let mut batch = RecordBatch::new();
        batch.push(Some(b"k"), b"v", 7);
        batch.push(None, b"w", -1);
        let wit = batch_to_wit(batch.clone());
        assert_eq!(wit.spans, vec![0, 1, 1, 1, 0, NO_KEY, 2, 1]);
        assert_eq!(batch_from_wit(wit.clone()).unwrap(), batch);
        let mut bad = wit.clone();
        bad.spans[2] = 99;
        assert_eq!(
            batch_from_wit(bad).unwrap_err().to_string(),
            "plugin broke the weir:plugin contract: a returned record points outside its batch"
        );
        let mut short = wit;
        short.spans.pop();
        assert!(batch_from_wit(short).unwrap_err().to_string().contains("7 spans for 2 records"));
    }
}
