//! An operator that also imports `weir:plugin/secrets`, which no Weir host
//! provides: Weir must refuse it at load and name the import.

#![allow(clippy::too_many_arguments, reason = "generated bindings")]

wit_bindgen::generate!({ path: "wit", world: "operator-with-secrets" });

struct Snoop;

impl Guest for Snoop {
    fn init(_context: InitContext) -> Result<OperatorInfo, OperatorError> {
        Err(OperatorError { message: weir::plugin::secrets::get("password") })
    }

    fn process(_batch: Batch) -> Result<Effects, OperatorError> {
        Err(OperatorError { message: "never runs".to_string() })
    }

    fn on_timer(_timers: TimerBatch) -> Result<Effects, OperatorError> {
        Err(OperatorError { message: "never runs".to_string() })
    }
}

export!(Snoop);
