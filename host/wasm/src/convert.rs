//! Between Weir's packed batches and their WIT form. Everything coming back
//! from a guest is checked: a span outside its buffer is a contract error,
//! never a panic.

use weir_state::Items;
use weir_types::{RecordBatch, Row};

use crate::wit;
use crate::{PluginError, Result};

fn span((offset, len): (u32, u32)) -> wit::Span {
    wit::Span { offset, len }
}

fn pair(s: wit::Span) -> (u32, u32) {
    (s.offset, s.len)
}

/// A batch in its WIT form (moves the buffers).
pub fn batch_to_wit(batch: RecordBatch) -> wit::RecordBatch {
    let (data, rows) = batch.into_parts();
    let rows = rows
        .into_iter()
        .map(|r| wit::Row { key: r.key.map(span), value: span(r.value), timestamp: r.timestamp })
        .collect();
    wit::RecordBatch { data, rows }
}

/// A batch a guest returned, checked.
pub fn batch_from_wit(batch: wit::RecordBatch) -> Result<RecordBatch> {
    let rows = batch
        .rows
        .into_iter()
        .map(|r| Row { key: r.key.map(pair), value: pair(r.value), timestamp: r.timestamp })
        .collect();
    RecordBatch::from_parts(batch.data, rows)
        .ok_or_else(|| PluginError::Contract("a returned record points outside its batch".into()))
}

/// Packed items in their WIT form.
pub(crate) fn items_to_wit(items: Items) -> wit::Items {
    wit::Items { data: items.data, spans: items.spans.into_iter().map(span).collect() }
}

/// Checked access to the items a guest returned.
pub(crate) struct ItemsView<'a>(pub(crate) &'a wit::Items);

impl<'a> ItemsView<'a> {
    pub(crate) fn get(&self, i: u32) -> Result<&'a [u8]> {
        let s =
            self.0.spans.get(i as usize).ok_or_else(|| PluginError::Contract(format!("item {i} does not exist")))?;
        let (start, end) = (s.offset as usize, s.offset as usize + s.len as usize);
        self.0.data.get(start..end).ok_or_else(|| PluginError::Contract(format!("item {i} lies outside its buffer")))
    }
}
