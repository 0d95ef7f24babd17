//! `adversary-processor`: a window processor written against
//! `weir:plugin/window-processor` without the SDK, returning what the types
//! allow and the host must refuse. Config: the attack.
//!
//! | attack | what it does |
//! |---|---|
//! | `flood` | returns 2,000,000 values for its windows |
//! | `amplify` | returns values that each span all of one 1 MiB buffer |
//! | `window-index` | returns a value for a window it was not given |

#[allow(clippy::too_many_arguments, reason = "generated lifting and lowering glue")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "weir:plugin/window-processor",
        generate_all,
    });
}

use bindings::Guest;
use bindings::weir::plugin::types::{InitContext, Items, OperatorError};
use bindings::weir::plugin::windows::{WindowBatch, WindowOutput};

struct Adversary;

/// The attack, set by `init`.
static ATTACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn attack() -> &'static str {
    ATTACK.get().map_or("pass", String::as_str)
}

impl Guest for Adversary {
    fn init(context: InitContext) -> Result<(), OperatorError> {
        let _ = ATTACK.set(context.config.trim().trim_matches('"').to_string());
        Ok(())
    }

    fn process(input: WindowBatch) -> Result<WindowOutput, OperatorError> {
        let windows = input.windows.len() as u32;
        Ok(match attack() {
            "flood" => WindowOutput {
                values: Items { data: vec![1], spans: (0..2_000_000).flat_map(|_| [0, 1]).collect() },
                windows: vec![0; 2_000_000],
            },
            "amplify" => WindowOutput {
                values: Items { data: vec![2; 1 << 20], spans: (0..1024).flat_map(|_| [0, 1 << 20]).collect() },
                windows: vec![0; 1024],
            },
            "window-index" => {
                WindowOutput { values: Items { data: vec![1], spans: vec![0, 1] }, windows: vec![windows + 3] }
            }
            _ => WindowOutput {
                values: Items { data: vec![1], spans: (0..windows).flat_map(|_| [0, 1]).collect() },
                windows: (0..windows).collect(),
            },
        })
    }
}

bindings::export!(Adversary with_types_in bindings);
