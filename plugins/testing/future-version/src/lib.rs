//! An operator for `weir:plugin@0.2.0`, a version this host does not
//! support: Weir must refuse it at load and say which import is missing.

#![allow(clippy::too_many_arguments, reason = "generated bindings")]

wit_bindgen::generate!({ path: "wit", world: "operator" });

struct Future;

fn unsupported() -> OperatorError {
    OperatorError { message: "never runs".to_string() }
}

impl Guest for Future {
    fn init(_context: InitContext) -> Result<OperatorInfo, OperatorError> {
        Err(unsupported())
    }

    fn process(_batch: Batch) -> Result<Effects, OperatorError> {
        Err(unsupported())
    }

    fn on_timer(_timers: TimerBatch) -> Result<Effects, OperatorError> {
        Err(unsupported())
    }
}

export!(Future);
