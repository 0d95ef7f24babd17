//! Instances of the window worlds: `aggregator` (accumulators the host
//! stores) and `window-processor` (all of a window's records at once). The
//! host's window operator owns assignment, state and firing; these only
//! compute.

use weir_state::Items;
use weir_types::{RecordBatch, Timestamp};

use crate::aggregator_bindings::{Aggregator, AggregatorPre};
use crate::convert::{batch_ref_to_wit, batch_to_wit, items_to_wit};
use crate::host::HostState;
use crate::sandbox::Sandbox;
use crate::window_processor_bindings::{WindowProcessor, WindowProcessorPre};
use crate::window_results::{self, RecordFailure};
use crate::wit_windows::{AddInput, Window, WindowBatch};
use crate::{Grants, InitArgs, Limits, Result};

/// A window of one key, as the window worlds see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// First instant (inclusive).
    pub start: Timestamp,
    /// Last instant (exclusive).
    pub end: Timestamp,
}

impl WindowRef<'_> {
    fn to_wit(&self) -> Window {
        Window { key: self.key.to_vec(), start: self.start, end: self.end }
    }
}

/// A store for a window function: it never holds keyed state (the window
/// operator keeps windows in the task's state and passes accumulators).
fn sandbox(
    pre: &wasmtime::component::InstancePre<HostState>,
    task: &str,
    limits: &Limits,
    grants: &Grants,
) -> Result<Sandbox> {
    Sandbox::new(pre, task, limits, grants)
}

/// A live `aggregator` instance of one task.
pub struct AggregatorInstance {
    sandbox: Sandbox,
    bindings: Aggregator,
    empty: Vec<u8>,
}

impl AggregatorInstance {
    pub(crate) fn new(pre: &AggregatorPre<HostState>, task: &str, limits: &Limits, grants: &Grants) -> Result<Self> {
        let mut sandbox = sandbox(pre.instance_pre(), task, limits, grants)?;
        let bindings = sandbox.instantiate(|store| pre.instantiate(store))?;
        Ok(AggregatorInstance { sandbox, bindings, empty: Vec::new() })
    }

    /// Calls `init`, then `create-accumulator` once.
    pub fn init(&mut self, args: &InitArgs) -> Result<()> {
        self.sandbox.arm()?;
        let result = self.bindings.call_init(&mut self.sandbox.store, &args.to_wit());
        self.sandbox.check("init", result)?;
        self.sandbox.arm()?;
        let result = self.bindings.call_create_accumulator(&mut self.sandbox.store);
        self.empty = self.sandbox.check("create-accumulator", result)?;
        Ok(())
    }

    /// The accumulator of a new window.
    pub fn empty_accumulator(&self) -> &[u8] {
        &self.empty
    }

    /// Adds records to accumulators: `additions` holds (record, accumulator)
    /// index pairs, flat. Returns the updated accumulators and the records
    /// the plugin refused.
    pub fn add(
        &mut self,
        accumulators: Items,
        records: &RecordBatch,
        additions: Vec<u32>,
    ) -> Result<(Items, Vec<RecordFailure>)> {
        let expected = accumulators.len();
        let input =
            AddInput { accumulators: items_to_wit(accumulators), records: batch_ref_to_wit(records), additions };
        self.sandbox.arm()?;
        let result = self.bindings.call_add(&mut self.sandbox.store, &input);
        let output = self.sandbox.check("add", result)?;
        window_results::add_output(&self.sandbox.limits, output, expected, records.len())
    }

    /// Merges consecutive groups of accumulators (sizes in `group_sizes`)
    /// into one each.
    pub fn merge(&mut self, accumulators: Items, group_sizes: Vec<u32>) -> Result<Items> {
        let groups = group_sizes.len();
        self.sandbox.arm()?;
        let result = self.bindings.call_merge(&mut self.sandbox.store, &items_to_wit(accumulators), &group_sizes);
        let merged = self.sandbox.check("merge", result)?;
        window_results::accumulators(&self.sandbox.limits, "merge", ("accumulators", ""), merged, groups)
    }

    /// The result value of each window from its accumulator.
    pub fn get_result(&mut self, windows: &[WindowRef<'_>], accumulators: Items) -> Result<Items> {
        let windows: Vec<Window> = windows.iter().map(WindowRef::to_wit).collect();
        self.sandbox.arm()?;
        let result = self.bindings.call_get_result(&mut self.sandbox.store, &windows, &items_to_wit(accumulators));
        let results = self.sandbox.check("get-result", result)?;
        window_results::accumulators(
            &self.sandbox.limits,
            "get-result",
            ("results", " windows"),
            results,
            windows.len(),
        )
    }
}

/// A live `window-processor` instance of one task.
pub struct WindowProcessorInstance {
    sandbox: Sandbox,
    bindings: WindowProcessor,
}

impl WindowProcessorInstance {
    pub(crate) fn new(
        pre: &WindowProcessorPre<HostState>,
        task: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Self> {
        let mut sandbox = sandbox(pre.instance_pre(), task, limits, grants)?;
        let bindings = sandbox.instantiate(|store| pre.instantiate(store))?;
        Ok(WindowProcessorInstance { sandbox, bindings })
    }

    /// Calls `init`.
    pub fn init(&mut self, args: &InitArgs) -> Result<()> {
        self.sandbox.arm()?;
        let result = self.bindings.call_init(&mut self.sandbox.store, &args.to_wit());
        self.sandbox.check("init", result)
    }

    /// Computes the outputs of fired windows; `ranges` holds each window's
    /// (first record, record count) in `records`, flat. Returns each
    /// output's window index and value.
    pub fn process(
        &mut self,
        windows: &[WindowRef<'_>],
        records: RecordBatch,
        ranges: Vec<u32>,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let input = WindowBatch {
            windows: windows.iter().map(WindowRef::to_wit).collect(),
            records: batch_to_wit(records),
            ranges,
        };
        self.sandbox.arm()?;
        let result = self.bindings.call_process(&mut self.sandbox.store, &input);
        let output = self.sandbox.check("process", result)?;
        window_results::window_output(&self.sandbox.limits, windows, output)
    }
}
