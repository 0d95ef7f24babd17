//! Window functions over all of a window's records: the [`ProcessWindow`]
//! trait and its glue to the `weir:plugin/window-processor` world.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde::Serialize;

use crate::codec::{Encoding, Json};
use crate::process_window_bindings::weir::plugin::types::{InitContext, Items, OperatorError};
use crate::process_window_bindings::weir::plugin::windows::{WindowBatch, WindowOutput as WitOutput};
use crate::record::view_parts;
use crate::window::ItemsBuilder;
use crate::{Codec, Record, Result, Window, WindowInit, process_window_bindings};

/// A window function that sees every record of a fired window at once, like
/// Flink's `ProcessWindowFunction`: for medians, top-N, or anything an
/// accumulator cannot hold. The host buffers the records in keyed state
/// until the window fires, so prefer an [`Aggregate`](crate::Aggregate)
/// when one fits.
///
/// ```no_run
/// use weir_sdk::{ProcessWindow, Record, Result, Window, WindowInit, WindowOutput, export_process_window};
///
/// /// The number of distinct values per window.
/// struct Distinct;
///
/// impl ProcessWindow for Distinct {
///     fn init(_ctx: &WindowInit) -> Result<Self> {
///         Ok(Distinct)
///     }
///
///     fn process(&mut self, window: &Window<'_>, records: &[Record<'_>], out: &mut WindowOutput) -> Result<()> {
///         let mut values: Vec<&[u8]> = records.iter().map(|r| r.value).collect();
///         values.sort();
///         values.dedup();
///         out.emit_json(&serde_json::json!({ "key": window.key_str(), "distinct": values.len() }))
///     }
/// }
///
/// export_process_window!(Distinct);
/// ```
pub trait ProcessWindow: Sized + 'static {
    /// Reads the config; called once per parallel instance.
    fn init(ctx: &WindowInit) -> Result<Self>;

    /// Computes a fired window's output from its records (in arrival order).
    /// An error fails the task.
    fn process(&mut self, window: &Window<'_>, records: &[Record<'_>], out: &mut WindowOutput) -> Result<()>;
}

/// Where a [`ProcessWindow`] emits a window's output values. Each gets the
/// window's key and the timestamp `end - 1`.
#[derive(Default)]
pub struct WindowOutput {
    items: ItemsBuilder,
    windows: Vec<u32>,
    current: u32,
}

impl WindowOutput {
    /// Emits a value as is.
    pub fn emit(&mut self, value: &[u8]) {
        let _ = self.emit_with(|buf| {
            buf.extend_from_slice(value);
            Ok(())
        });
    }

    /// Emits a value as JSON.
    pub fn emit_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.emit_with(|buf| Json::encode_into(value, buf))
    }

    /// Emits a value in the given encoding.
    pub fn emit_encoded<T: Serialize + ?Sized>(&mut self, encoding: Encoding, value: &T) -> Result<()> {
        self.emit_with(|buf| encoding.encode_into(value, buf))
    }

    fn emit_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        self.items.push_with(write)?;
        self.windows.push(self.current);
        Ok(())
    }
}

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Implements the `window-processor` world for `P`; see
/// [`export_process_window!`](crate::export_process_window).
pub struct ProcessWindowRunner<P>(PhantomData<P>);

fn error(message: impl ToString) -> OperatorError {
    OperatorError { message: message.to_string() }
}

impl<P: ProcessWindow> process_window_bindings::Guest for ProcessWindowRunner<P> {
    fn init(context: InitContext) -> Result<(), OperatorError> {
        let InitContext { node_id, config, subtask_index, parallelism, attempt } = context;
        let ctx = WindowInit::new(node_id, config, subtask_index, parallelism, attempt);
        let function = P::init(&ctx).map_err(error)?;
        INSTANCE.set(Some(Box::new(function)));
        Ok(())
    }

    fn process(input: WindowBatch) -> Result<WitOutput, OperatorError> {
        let WindowBatch { windows, records, ranges } = input;
        INSTANCE.with_borrow_mut(|slot| {
            let not_initialized = || error("the host called the window function before `init`");
            let function =
                slot.as_mut().ok_or_else(not_initialized)?.downcast_mut::<P>().ok_or_else(not_initialized)?;
            let mut out = WindowOutput::default();
            let mut views = Vec::new();
            for (i, w) in windows.iter().enumerate() {
                let (first, count) = match ranges.get(i * 2..i * 2 + 2) {
                    Some(r) => (r[0] as usize, r[1] as usize),
                    None => return Err(error(format!("the host sent no record range for window {i}"))),
                };
                views.clear();
                for r in first..first + count {
                    let record = view_parts(&records.data, &records.spans, &records.timestamps, r)
                        .ok_or_else(|| error("the host sent a record outside its batch"))?;
                    views.push(record);
                }
                out.current = i as u32;
                let window = Window { key: &w.key, start: w.start, end: w.end };
                function.process(&window, &views, &mut out).map_err(error)?;
            }
            Ok(WitOutput { values: Items { data: out.items.data, spans: out.items.spans }, windows: out.windows })
        })
    }
}
