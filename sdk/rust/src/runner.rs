//! Glue between the generated `Guest` trait and an [`Operator`].

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::weir::plugin::types::{
    Batch, Effects, InitContext as WitInit, OperatorError, OperatorInfo, RecordError, TimerBatch,
};
use crate::context::{Context, EffectsBuilder, InitContext, Timer};
use crate::record::view;
use crate::table::StateTable;
use crate::{Operator, bindings};

struct Instance {
    operator: Box<dyn Any>,
    table: StateTable,
}

thread_local! {
    static INSTANCE: RefCell<Option<Instance>> = const { RefCell::new(None) };
}

/// Implements the `operator` world for `O`; see [`export_operator!`](crate::export_operator).
pub struct Runner<O>(PhantomData<O>);

fn not_initialized() -> OperatorError {
    OperatorError { message: "the host called the operator before `init`".to_string() }
}

fn with_instance<O: Operator, R>(f: impl FnOnce(&mut O, &mut StateTable) -> R) -> Result<R, OperatorError> {
    INSTANCE.with_borrow_mut(|slot| {
        let instance = slot.as_mut().ok_or_else(not_initialized)?;
        let op = instance.operator.downcast_mut::<O>().ok_or_else(not_initialized)?;
        Ok(f(op, &mut instance.table))
    })
}

impl<O: Operator> bindings::Guest for Runner<O> {
    fn init(context: WitInit) -> Result<OperatorInfo, OperatorError> {
        let mut ctx = InitContext { wit: context, states: Vec::new() };
        let operator = O::init(&mut ctx).map_err(|e| OperatorError { message: e.to_string() })?;
        let kinds = ctx.states.iter().map(|s| s.kind).collect();
        INSTANCE.set(Some(Instance { operator: Box::new(operator), table: StateTable::new(kinds) }));
        Ok(OperatorInfo { states: ctx.states })
    }

    fn process(batch: Batch) -> Result<Effects, OperatorError> {
        let Batch { records, state, time } = batch;
        let bad_span = || OperatorError { message: "the host sent a record outside its batch".to_string() };
        with_instance::<O, _>(|op, table| {
            table.reset();
            table.load(state, records.timestamps.len(), |i| view(&records, i).and_then(|r| r.key));
            let mut effects = EffectsBuilder::default();
            for index in 0..records.timestamps.len() {
                let record = view(&records, index).ok_or_else(bad_span)?;
                let key_index = table.slot_of(index);
                let mut ctx = Context {
                    table: &mut *table,
                    effects: &mut effects,
                    key: record.key,
                    key_index,
                    timestamp: record.timestamp,
                    time,
                };
                if let Err(e) = op.process(record, &mut ctx) {
                    effects.errors.push(RecordError { index: index as u32, message: e.to_string() });
                }
            }
            table.flush(&mut effects.updates);
            Ok(effects.finish())
        })?
    }

    fn on_timer(timers: TimerBatch) -> Result<Effects, OperatorError> {
        with_instance::<O, _>(|op, table| {
            let TimerBatch { timers, state, time } = timers;
            table.reset();
            table.load(state, timers.len(), |i| timers.get(i).map(|t| t.key.as_slice()));
            let mut effects = EffectsBuilder::default();
            for (index, timer) in timers.iter().enumerate() {
                let key_index = table.slot_of(index);
                let mut ctx = Context {
                    table: &mut *table,
                    effects: &mut effects,
                    key: Some(&timer.key),
                    key_index,
                    timestamp: timer.timestamp,
                    time,
                };
                let timer = Timer { key: timer.key.clone(), timestamp: timer.timestamp, domain: timer.domain };
                if let Err(e) = op.on_timer(timer, &mut ctx) {
                    effects.errors.push(RecordError { index: index as u32, message: e.to_string() });
                }
            }
            table.flush(&mut effects.updates);
            effects.finish()
        })
    }
}
