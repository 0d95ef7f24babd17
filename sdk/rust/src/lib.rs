//! # weir-sdk: write Weir stream operators in Rust
//!
//! A Weir operator is a WebAssembly component that the Weir host calls with
//! batches of records. The host owns time, keyed state, timers and output;
//! the operator only computes. This crate hides the `weir:plugin` WIT world
//! behind an [`Operator`] trait with Flink-style typed state handles.
//!
//! Build a plugin as a `cdylib` for `wasm32-wasip2`:
//! `cargo build --release --target wasm32-wasip2`.
//!
//! ## Example: a keyed counter
//!
//! ```no_run
//! use weir_sdk::{export_operator, Context, InitContext, Operator, Record, Result, ValueState};
//!
//! struct Counter {
//!     count: ValueState<u64>,
//! }
//!
//! impl Operator for Counter {
//!     fn init(ctx: &mut InitContext) -> Result<Self> {
//!         Ok(Counter { count: ctx.value_state("count")? })
//!     }
//!
//!     fn process(&mut self, _record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
//!         let n = self.count.get(ctx)?.unwrap_or(0) + 1;
//!         self.count.set(ctx, &n)?;
//!         ctx.emit_json(&serde_json::json!({ "key": ctx.key_str(), "count": n }))
//!     }
//! }
//!
//! export_operator!(Counter);
//! ```
//!
//! ## Worlds and features
//!
//! Each `weir:plugin` world is a feature; a plugin crate enables exactly one
//! (the bindings of two worlds cannot share a component):
//!
//! | feature | world | implement | export with |
//! |---|---|---|---|
//! | `operator` (default) | `operator` | [`Operator`] | [`export_operator!`] |
//! | `aggregate` | `aggregator` | `Aggregate` | `export_aggregate!` |
//! | `process-window` | `window-processor` | `ProcessWindow` | `export_process_window!` |
//!
//! Aggregates and window processors are what host-native windows compute:
//! the host assigns records to windows and fires them; these only compute.
//! For an aggregate plugin:
//! `weir-sdk = { version = "0.1", default-features = false, features = ["aggregate"] }`.
//!
//! ## How a call works
//!
//! For each batch the host sends the records and the current content of
//! every *prefetched* state for the batch's keys. [`Operator::process`] runs
//! once per record; state reads and writes hit an in-guest cache; when the
//! batch is done, the changes, outputs and timers go back to the host in one
//! result. Large lists and maps can be declared with
//! [`InitContext::large_map_state`] / [`InitContext::large_list_state`]:
//! they are read and written through host calls instead.
//!
//! Records arrive as [`Record`] views into the batch's buffer (no copy) and
//! outputs are encoded straight into the output buffer. Payload encoding is
//! the plugin's choice: [`Json`] or the faster binary [`Bin`], equally easy
//! ([`Record::json`], [`Record::bin`], [`Context::emit_json`],
//! [`Context::emit_encoded`], or [`Encoding`] chosen by config).

#[cfg(feature = "aggregate")]
mod aggregate;
mod codec;
#[cfg(feature = "operator")]
mod context;
mod error;
#[cfg(feature = "migrate")]
mod migrate;
#[cfg(feature = "process-window")]
mod process_window;
mod record;
#[cfg(feature = "operator")]
mod runner;
#[cfg(feature = "operator")]
mod state;
#[cfg(feature = "operator")]
mod table;
#[cfg(any(feature = "aggregate", feature = "process-window"))]
mod window;

#[cfg(feature = "operator")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated lifting/lowering glue")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/operator",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "weir_sdk::bindings",
        generate_all,
    });
}

#[cfg(feature = "migrate")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated lifting/lowering glue")]
pub mod migrate_bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "weir:plugin/migrating-operator@0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_migrating_world",
        default_bindings_module: "weir_sdk::migrate_bindings",
        with: {
            "weir:plugin/types@0.1.0": crate::bindings::weir::plugin::types,
            "weir:plugin/state@0.1.0": crate::bindings::weir::plugin::state,
            "weir:plugin/logging@0.1.0": crate::bindings::weir::plugin::logging,
        },
    });
}

#[cfg(feature = "aggregate")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated lifting/lowering glue")]
pub mod aggregate_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/aggregator",
        pub_export_macro: true,
        export_macro_name: "__export_aggregator",
        default_bindings_module: "weir_sdk::aggregate_bindings",
        generate_all,
    });
}

#[cfg(feature = "process-window")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments, reason = "generated lifting/lowering glue")]
pub mod process_window_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/window-processor",
        pub_export_macro: true,
        export_macro_name: "__export_window_processor",
        default_bindings_module: "weir_sdk::process_window_bindings",
        generate_all,
    });
}

#[cfg(feature = "aggregate")]
pub use aggregate::Aggregate;
#[cfg(feature = "aggregate")]
#[doc(hidden)]
pub use aggregate::AggregateRunner;
#[cfg(feature = "operator")]
pub use bindings::weir::plugin::types::TimeDomain;
pub use codec::{Bin, Codec, Encoding, Json};
#[cfg(feature = "operator")]
pub use context::{Context, InitContext, LogLevel, Timer};
pub use error::{Error, Result};
#[cfg(feature = "migrate")]
pub use migrate::{Migrate, MigratingRunner};
#[cfg(feature = "process-window")]
#[doc(hidden)]
pub use process_window::ProcessWindowRunner;
#[cfg(feature = "process-window")]
pub use process_window::{ProcessWindow, WindowOutput};
pub use record::Record;
#[cfg(feature = "operator")]
pub use state::{ListState, MapState, ValueState};
#[cfg(any(feature = "aggregate", feature = "process-window"))]
pub use window::{Window, WindowInit};

#[cfg(feature = "operator")]
#[doc(hidden)]
pub use runner::Runner;

#[cfg(feature = "operator")]
/// The lifecycle of an operator instance. One instance runs per parallel
/// task; the host calls [`init`](Operator::init) once, then
/// [`process`](Operator::process) for every record and
/// [`on_timer`](Operator::on_timer) for every timer that fires.
pub trait Operator: Sized + 'static {
    /// Reads the config and declares keyed state.
    fn init(ctx: &mut InitContext) -> Result<Self>;

    /// Handles one record. Errors are reported for this record; the rest of
    /// the batch is still processed.
    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()>;

    /// Handles a timer of the current key that fired.
    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let _ = (timer, ctx);
        Ok(())
    }
}

/// Exports an [`Operator`] type as the plugin's `weir:plugin/operator`
/// implementation. Use once per plugin crate.
#[cfg(feature = "operator")]
#[macro_export]
macro_rules! export_operator {
    ($operator:ty) => {
        type __WeirRunner = $crate::Runner<$operator>;
        $crate::bindings::__export_world!(__WeirRunner with_types_in $crate::bindings);
    };
}

/// Exports an [`Operator`] with a [`Migrate`] hook as the plugin's
/// `weir:plugin/migrating-operator@0.2.0` implementation (needs the SDK's `migrate`
/// feature). Use once per plugin crate, instead of [`export_operator!`].
#[cfg(feature = "migrate")]
#[macro_export]
macro_rules! export_migrating_operator {
    ($operator:ty) => {
        type __WeirMigratingRunner = $crate::MigratingRunner<$operator>;
        $crate::migrate_bindings::__export_migrating_world!(__WeirMigratingRunner with_types_in $crate::migrate_bindings);
    };
}

/// Exports an [`Aggregate`] type as the plugin's `weir:plugin/aggregator`
/// implementation. Use once per plugin crate, with the SDK's `aggregate`
/// feature (and without its default `operator` feature).
#[cfg(feature = "aggregate")]
#[macro_export]
macro_rules! export_aggregate {
    ($aggregate:ty) => {
        type __WeirAggregateRunner = $crate::AggregateRunner<$aggregate>;
        $crate::aggregate_bindings::__export_aggregator!(__WeirAggregateRunner with_types_in $crate::aggregate_bindings);
    };
}

/// Exports a [`ProcessWindow`] type as the plugin's
/// `weir:plugin/window-processor` implementation. Use once per plugin
/// crate, with the SDK's `process-window` feature (and without its default
/// `operator` feature).
#[cfg(feature = "process-window")]
#[macro_export]
macro_rules! export_process_window {
    ($function:ty) => {
        type __WeirWindowRunner = $crate::ProcessWindowRunner<$function>;
        $crate::process_window_bindings::__export_window_processor!(__WeirWindowRunner with_types_in $crate::process_window_bindings);
    };
}
