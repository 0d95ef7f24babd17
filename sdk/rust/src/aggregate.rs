//! Incremental window functions: the [`Aggregate`] trait and its glue to the
//! `weir:plugin/aggregator` world.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aggregate_bindings::weir::plugin::types::{InitContext, Items, OperatorError, RecordError};
use crate::aggregate_bindings::weir::plugin::windows::{AddInput, AddOutput, Window as WitWindow};
use crate::codec::{Bin, Codec};
use crate::record::view_parts;
use crate::window::{ItemsBuilder, item};
use crate::{Encoding, Record, Result, Window, WindowInit, aggregate_bindings};

/// An incremental window function, like Flink's `AggregateFunction`: the
/// host keeps one accumulator per window and key, adds the window's records
/// to it as they come, and asks for the result when the window fires.
///
/// Accumulators are stored by the host between calls (and checkpointed)
/// in the binary codec ([`Bin`]), so keep them small: a sum and a count, not
/// the records.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use weir_sdk::{Aggregate, Record, Result, Window, WindowInit, export_aggregate};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Sum {
///     total: f64,
///     count: u64,
/// }
///
/// struct Average;
///
/// impl Aggregate for Average {
///     type Acc = Sum;
///     type Output = serde_json::Value;
///
///     fn init(_ctx: &WindowInit) -> Result<Self> {
///         Ok(Average)
///     }
///
///     fn add(&self, acc: &mut Sum, record: Record<'_>) -> Result<()> {
///         #[derive(Deserialize)]
///         struct Reading {
///             temperature: f64,
///         }
///         acc.total += record.json::<Reading>()?.temperature;
///         acc.count += 1;
///         Ok(())
///     }
///
///     fn merge(&self, acc: &mut Sum, other: Sum) {
///         acc.total += other.total;
///         acc.count += other.count;
///     }
///
///     fn result(&self, acc: &Sum, window: &Window<'_>) -> Result<serde_json::Value> {
///         Ok(serde_json::json!({ "id": window.key_str(), "end": window.end, "avg": acc.total / acc.count as f64 }))
///     }
/// }
///
/// export_aggregate!(Average);
/// ```
pub trait Aggregate: Sized + 'static {
    /// A window's running state.
    type Acc: Serialize + DeserializeOwned + Default;
    /// What a fired window emits.
    type Output: Serialize;

    /// Reads the config; called once per parallel instance.
    fn init(ctx: &WindowInit) -> Result<Self>;

    /// The accumulator of a new window (by default `Acc::default()`).
    fn create(&self) -> Self::Acc {
        Self::Acc::default()
    }

    /// Adds a record to a window's accumulator. An error is reported for
    /// this record (the node's `on_error` policy applies); the accumulator
    /// should then be left as it was.
    fn add(&self, acc: &mut Self::Acc, record: Record<'_>) -> Result<()>;

    /// Merges the accumulator of another window into `acc` (session windows
    /// that come to touch).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);

    /// A fired window's result.
    fn result(&self, acc: &Self::Acc, window: &Window<'_>) -> Result<Self::Output>;

    /// How results are encoded (JSON by default).
    fn output_encoding(&self) -> Encoding {
        Encoding::Json
    }
}

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Implements the `aggregator` world for `A`; see [`export_aggregate!`](crate::export_aggregate).
pub struct AggregateRunner<A>(PhantomData<A>);

fn error(message: impl ToString) -> OperatorError {
    OperatorError { message: message.to_string() }
}

fn with<A: Aggregate, R>(f: impl FnOnce(&A) -> Result<R, OperatorError>) -> Result<R, OperatorError> {
    INSTANCE.with_borrow(|slot| {
        let not_initialized = || error("the host called the aggregate before `init`");
        let aggregate = slot.as_ref().ok_or_else(not_initialized)?.downcast_ref::<A>().ok_or_else(not_initialized)?;
        f(aggregate)
    })
}

/// Decodes every accumulator of `items`.
fn decode_all<A: Aggregate>(items: &Items) -> Result<Vec<A::Acc>, OperatorError> {
    (0..items.spans.len() / 2)
        .map(|i| {
            let bytes =
                item(&items.data, &items.spans, i).ok_or_else(|| error("the host sent an item outside its buffer"))?;
            Bin::decode(bytes).map_err(|e| error(format!("a stored accumulator does not decode: {e}")))
        })
        .collect()
}

fn encode_all<A: Aggregate>(accs: &[A::Acc]) -> Result<Items, OperatorError> {
    let mut out = ItemsBuilder::default();
    for acc in accs {
        out.push_with(|buf| Bin::encode_into(acc, buf)).map_err(error)?;
    }
    Ok(Items { data: out.data, spans: out.spans })
}

impl<A: Aggregate> aggregate_bindings::Guest for AggregateRunner<A> {
    fn init(context: InitContext) -> Result<(), OperatorError> {
        let InitContext { node_id, config, subtask_index, parallelism, attempt } = context;
        let ctx = WindowInit::new(node_id, config, subtask_index, parallelism, attempt);
        let aggregate = A::init(&ctx).map_err(error)?;
        INSTANCE.set(Some(Box::new(aggregate)));
        Ok(())
    }

    fn create_accumulator() -> Result<Vec<u8>, OperatorError> {
        with::<A, _>(|a| Bin::encode(&a.create()).map_err(error))
    }

    fn add(input: AddInput) -> Result<AddOutput, OperatorError> {
        let AddInput { accumulators, records, additions } = input;
        with::<A, _>(|a| {
            let mut accs = decode_all::<A>(&accumulators)?;
            let mut errors = Vec::new();
            for pair in additions.chunks_exact(2) {
                let (r, acc) = (pair[0], pair[1] as usize);
                let record = view_parts(&records.data, &records.spans, &records.timestamps, r as usize)
                    .ok_or_else(|| error("the host sent a record outside its batch"))?;
                let acc = accs.get_mut(acc).ok_or_else(|| error(format!("the host sent no accumulator {acc}")))?;
                if let Err(e) = a.add(acc, record) {
                    errors.push(RecordError { index: r, message: e.to_string() });
                }
            }
            Ok(AddOutput { accumulators: encode_all::<A>(&accs)?, errors })
        })
    }

    fn merge(accumulators: Items, group_sizes: Vec<u32>) -> Result<Items, OperatorError> {
        with::<A, _>(|a| {
            let mut accs = decode_all::<A>(&accumulators)?.into_iter();
            let mut merged = Vec::with_capacity(group_sizes.len());
            for size in group_sizes {
                let mut acc = a.create();
                for _ in 0..size {
                    a.merge(
                        &mut acc,
                        accs.next().ok_or_else(|| error("group sizes add up to more accumulators than sent"))?,
                    );
                }
                merged.push(acc);
            }
            encode_all::<A>(&merged)
        })
    }

    fn get_result(windows: Vec<WitWindow>, accumulators: Items) -> Result<Items, OperatorError> {
        with::<A, _>(|a| {
            let accs = decode_all::<A>(&accumulators)?;
            let encoding = a.output_encoding();
            let mut out = ItemsBuilder::default();
            for (w, acc) in windows.iter().zip(&accs) {
                let window = Window { key: &w.key, start: w.start, end: w.end };
                let result = a.result(acc, &window).map_err(error)?;
                out.push_with(|buf| encoding.encode_into(&result, buf)).map_err(error)?;
            }
            Ok(Items { data: out.data, spans: out.spans })
        })
    }
}
