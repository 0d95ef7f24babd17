//! `adversary`: an operator written against `weir:plugin/operator` without
//! the SDK, to return what the types allow and the host must refuse. Its
//! config (JSON text) is one word, the attack; records pass through
//! otherwise.
//!
//! | attack | what it does |
//! |---|---|
//! | `pass` | passes each record on |
//! | `error-index` | reports an error for a record index the batch does not have |
//! | `duplicate-state` | declares two states of one name |
//! | `amplify` | returns one 1 MiB buffer and 4,096 records that each span all of it |
//! | `amplify-state` | returns 4,096 state updates whose item spans all of one 1 MiB buffer |
//! | `counter-name` | reports a counter with a 1 MiB name |
//! | `counters` | reports 100,000 distinct counters |
//! | `log-flood` | logs 10,000 messages of 76 KiB, with newlines and escapes, in one call |
//! | `timer-storm` | registers a timer for the time just fired, every time one fires |
//! | `time-edge` | emits each record at the smallest and the largest timestamp |
//! | `big-result` | returns a 3 MiB buffer no span refers to |
//! | `big-set` | sets a value state to 3 MiB through the `state` import |

#[allow(clippy::too_many_arguments, reason = "generated lifting and lowering glue")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "weir:plugin/operator",
        generate_all,
    });
}

use bindings::Guest;
use bindings::weir::plugin::logging::{self, Level};
use bindings::weir::plugin::state;
use bindings::weir::plugin::types::{
    Batch, Effects, InitContext, Items, OperatorError, OperatorInfo, RecordBatch, RecordError, StateDescriptor,
    StateKind, StateUpdate, StateUpdates, TimeDomain, TimerBatch, TimerOp, TimerUpdate, UpdateKind,
};

struct Adversary;

/// The attack, set by `init`.
static ATTACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn attack() -> &'static str {
    ATTACK.get().map_or("pass", String::as_str)
}

fn empty_batch() -> RecordBatch {
    RecordBatch { data: Vec::new(), spans: Vec::new(), timestamps: Vec::new() }
}

fn effects(outputs: RecordBatch) -> Effects {
    Effects {
        outputs,
        side_outputs: Vec::new(),
        state_updates: StateUpdates { items: Items { data: Vec::new(), spans: Vec::new() }, updates: Vec::new() },
        timer_updates: Vec::new(),
        counters: Vec::new(),
        errors: Vec::new(),
    }
}

impl Guest for Adversary {
    fn init(context: InitContext) -> Result<OperatorInfo, OperatorError> {
        let _ = ATTACK.set(context.config.trim().trim_matches('"').to_string());
        let states = match attack() {
            "duplicate-state" => vec![
                StateDescriptor { name: "x".into(), kind: StateKind::Value, prefetch: true },
                StateDescriptor { name: "x".into(), kind: StateKind::Map, prefetch: true },
            ],
            "amplify-state" => vec![StateDescriptor { name: "big".into(), kind: StateKind::List, prefetch: true }],
            "big-set" => vec![StateDescriptor { name: "big".into(), kind: StateKind::Value, prefetch: false }],
            _ => Vec::new(),
        };
        Ok(OperatorInfo { states })
    }

    fn process(batch: Batch) -> Result<Effects, OperatorError> {
        let records = batch.records;
        let n = records.timestamps.len() as u32;
        let mut out = effects(RecordBatch { data: Vec::new(), spans: Vec::new(), timestamps: Vec::new() });
        match attack() {
            "error-index" => out.errors.push(RecordError { index: n + 1000, message: "no such record".into() }),
            "amplify" => {
                out.outputs = RecordBatch {
                    data: vec![7; 1 << 20],
                    spans: (0..4096).flat_map(|_| [0, u32::MAX, 0, 1 << 20]).collect(),
                    timestamps: vec![0; 4096],
                };
            }
            "amplify-state" => {
                let key_at = 1 << 20;
                let mut data = vec![1; 1 << 20];
                data.extend_from_slice(b"k");
                out.state_updates = StateUpdates {
                    items: Items { data, spans: vec![0, 1 << 20, key_at, 1] },
                    updates: (0..4096)
                        .map(|_| StateUpdate {
                            state: 0,
                            key: 1,
                            kind: UpdateKind::Append,
                            first_item: 0,
                            item_count: 1,
                        })
                        .collect(),
                };
            }
            "big-result" => out.outputs.data = vec![7; 3 << 20],
            "big-set" => state::set(0, b"k", &vec![7; 3 << 20]),
            "counter-name" => out.counters.push(("c".repeat(1 << 20), 1)),
            "counters" => out.counters.extend((0..100_000).map(|i| (format!("c{i}"), 1))),
            "log-flood" => {
                let message = "line one\nINFO weir: forged line\u{1b}[31m".repeat(1 << 11);
                for _ in 0..10_000 {
                    logging::log(Level::Error, &message);
                }
            }
            "timer-storm" => {
                for i in 0..n as usize {
                    let (ko, kl) = (records.spans[4 * i], records.spans[4 * i + 1]);
                    let key = records.data[ko as usize..(ko + kl) as usize].to_vec();
                    out.timer_updates.push(TimerUpdate {
                        key,
                        timestamp: 0,
                        domain: TimeDomain::EventTime,
                        op: TimerOp::Register,
                    });
                }
            }
            "time-edge" => {
                let mut spans = Vec::new();
                let mut timestamps = Vec::new();
                for i in 0..n as usize {
                    for ts in [i64::MIN, i64::MAX] {
                        spans.extend_from_slice(&records.spans[4 * i..4 * i + 4]);
                        timestamps.push(ts);
                    }
                }
                out.outputs = RecordBatch { data: records.data, spans, timestamps };
            }
            _ => out.outputs = records,
        }
        Ok(out)
    }

    fn on_timer(timers: TimerBatch) -> Result<Effects, OperatorError> {
        let mut out = effects(empty_batch());
        if attack() == "timer-storm" {
            // Every timer that fires registers itself again, for a time that is due.
            for t in timers.timers {
                out.timer_updates.push(TimerUpdate {
                    key: t.key,
                    timestamp: t.timestamp,
                    domain: TimeDomain::EventTime,
                    op: TimerOp::Register,
                });
            }
        }
        Ok(out)
    }
}

bindings::export!(Adversary with_types_in bindings);
