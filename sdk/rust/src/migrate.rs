//! State migration: a new version of an operator that stores a state in
//! another format says which schema version of each state it writes and
//! rewrites values an older version wrote (`weir:plugin@0.2.0`). The host
//! calls it after `init`, in batches, when it hands the plugin state that
//! was written at another schema version — at an in-place upgrade or a
//! restore from a savepoint.

use crate::bindings::weir::plugin::types::{Batch, Effects, InitContext, OperatorError, OperatorInfo, TimerBatch};
use crate::{Operator, Result, bindings, migrate_bindings};

/// A hook of an [`Operator`] that takes over state an older version wrote;
/// export it with [`export_migrating_operator!`](crate::export_migrating_operator).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weir_sdk::{Bin, Codec as _, Json, Migrate, Result};
/// # use weir_sdk::{Context, InitContext, Operator, Record};
/// # struct Counter;
/// # impl Operator for Counter {
/// #     fn init(_: &mut InitContext) -> Result<Self> { Ok(Counter) }
/// #     fn process(&mut self, _: Record<'_>, _: &mut Context<'_>) -> Result<()> { Ok(()) }
/// # }
///
/// #[derive(Serialize, Deserialize)]
/// struct Sum { sum: f64, count: u64 }
///
/// impl Migrate for Counter {
///     // Version 1 stored `sums` as JSON (schema 0); this one stores it binary.
///     fn schemas() -> Vec<(&'static str, u32)> {
///         vec![("sums", 1)]
///     }
///     fn migrate(state: &str, from: u32, value: &[u8]) -> Result<Vec<u8>> {
///         match (state, from) {
///             ("sums", 0) => Ok(Bin::encode(&Json::decode::<Sum>(value)?)?),
///             _ => weir_sdk::bail!("no migration of `{state}` from schema {from}"),
///         }
///     }
/// }
/// ```
pub trait Migrate: Operator {
    /// The schema version of each state this version writes; a state not
    /// named is at 0 (as every state of a plugin without this hook).
    fn schemas() -> Vec<(&'static str, u32)>;

    /// One value of `state` written at schema version `from`, in this
    /// version's format (value states: a key's value; list states: one
    /// element; map states: one entry's value).
    fn migrate(state: &str, from: u32, value: &[u8]) -> Result<Vec<u8>>;
}

/// Implements the 0.2.0 `migrating-operator` world for `O`: the 0.1.0 calls as
/// [`Runner`](crate::Runner) does, and the migration hook.
pub struct MigratingRunner<O>(std::marker::PhantomData<O>);

impl<O: Migrate> migrate_bindings::Guest for MigratingRunner<O> {
    fn init(context: InitContext) -> std::result::Result<OperatorInfo, OperatorError> {
        <crate::Runner<O> as bindings::Guest>::init(context)
    }

    fn process(batch: Batch) -> std::result::Result<Effects, OperatorError> {
        <crate::Runner<O> as bindings::Guest>::process(batch)
    }

    fn on_timer(timers: TimerBatch) -> std::result::Result<Effects, OperatorError> {
        <crate::Runner<O> as bindings::Guest>::on_timer(timers)
    }

    fn state_schemas() -> Vec<(String, u32)> {
        O::schemas().into_iter().map(|(name, v)| (name.to_string(), v)).collect()
    }

    fn migrate(state: String, from: u32, values: Vec<Vec<u8>>) -> std::result::Result<Vec<Vec<u8>>, String> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| O::migrate(&state, from, v).map_err(|e| format!("value {i} of state `{state}`: {e}")))
            .collect()
    }
}
