//! `adversary-aggregator`: a window aggregate written against
//! `weir:plugin/aggregator` without the SDK, returning what the types allow
//! and the host must refuse. Config: the attack.
//!
//! | attack | what it does |
//! |---|---|
//! | `error-index` | `add` refuses a record the batch does not have |
//! | `refuse-first` | `add` refuses record 0 every time, given or not |
//! | `amplify` | `add` returns accumulators that each span all of one 1 MiB buffer |
//! | `wrong-count` | `add` returns one accumulator fewer than it was given |
//! | `amplify-result` | `get-result` returns results that each span all of one 1 MiB buffer |

#[allow(clippy::too_many_arguments, reason = "generated lifting and lowering glue")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "weir:plugin/aggregator",
        generate_all,
    });
}

use bindings::Guest;
use bindings::weir::plugin::types::{InitContext, Items, OperatorError, RecordError};
use bindings::weir::plugin::windows::{AddInput, AddOutput, Window};

struct Adversary;

/// The attack, set by `init`.
static ATTACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn attack() -> &'static str {
    ATTACK.get().map_or("pass", String::as_str)
}

/// `n` items that each span all of one 1 MiB buffer.
fn amplified(n: usize) -> Items {
    Items { data: vec![3; 1 << 20], spans: (0..n).flat_map(|_| [0, 1 << 20]).collect() }
}

impl Guest for Adversary {
    fn init(context: InitContext) -> Result<(), OperatorError> {
        let _ = ATTACK.set(context.config.trim().trim_matches('"').to_string());
        Ok(())
    }

    fn create_accumulator() -> Result<Vec<u8>, OperatorError> {
        Ok(vec![0])
    }

    fn add(input: AddInput) -> Result<AddOutput, OperatorError> {
        let records = input.records.timestamps.len() as u32;
        let n = input.accumulators.spans.len() / 2;
        let mut out = AddOutput { accumulators: input.accumulators, errors: Vec::new() };
        match attack() {
            "error-index" => out.errors.push(RecordError { index: records + 7, message: "no such record".into() }),
            "refuse-first" => out.errors.push(RecordError { index: 0, message: "not this one".into() }),
            "amplify" => out.accumulators = amplified(n.max(1) * 4096),
            "wrong-count" => {
                out.accumulators.spans.truncate(out.accumulators.spans.len().saturating_sub(2));
            }
            _ => {}
        }
        Ok(out)
    }

    fn merge(accumulators: Items, group_sizes: Vec<u32>) -> Result<Items, OperatorError> {
        let _ = accumulators;
        Ok(Items { data: vec![0], spans: group_sizes.iter().flat_map(|_| [0, 1]).collect() })
    }

    fn get_result(windows: Vec<Window>, accumulators: Items) -> Result<Items, OperatorError> {
        let _ = accumulators;
        if attack() == "amplify-result" {
            // As many results as windows (the count is right), each 1 MiB of
            // the same bytes; and a thousand windows' worth of them.
            return Ok(Items { data: vec![5; 1 << 20], spans: windows.iter().flat_map(|_| [0, 1 << 20]).collect() });
        }
        Ok(Items { data: b"0".to_vec(), spans: windows.iter().flat_map(|_| [0, 1]).collect() })
    }
}

bindings::export!(Adversary with_types_in bindings);
