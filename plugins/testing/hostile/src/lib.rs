//! Test plugin for the sandbox: misbehaves on purpose when it sees a record
//! whose value is the JSON string `"attack"`; passes other records through.
//! Config `{"mode": ...}`:
//! - `loop`: spins forever
//! - `grow`: allocates memory without bound
//! - `recurse`: recurses without bound (stack overflow)
//! - `panic`: panics
//! - `flood`: emits records without bound
//! - `spray`: emits 100,000 records and returns
//! - `huge`: emits one 512 MiB record
//! - `chatty`: prints 1 MiB to stdout and stderr, then passes the record on
//! - `read`: emits what reading the file at `path` gave (content or error)
//! - `write`: emits what writing `path` gave
//! - `clock`: emits the wall clock it sees, in seconds since the epoch

use serde::Deserialize;
use weir_sdk::{Context, InitContext, Operator, Record, Result, export_operator};

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Loop,
    Grow,
    Recurse,
    Panic,
    Flood,
    Spray,
    Huge,
    Chatty,
    Read,
    Write,
    Clock,
}

#[derive(Deserialize)]
struct Config {
    mode: Mode,
    #[serde(default)]
    path: String,
}

struct Hostile(Mode, String);

#[inline(never)]
#[allow(unconditional_recursion, reason = "it overflows its stack on purpose")]
fn recurse(depth: u64, sink: &mut [u8; 256]) -> u64 {
    sink[(depth % 256) as usize] = depth as u8;
    let mut local = *sink;
    local[0] ^= 1;
    recurse(depth + 1, &mut local) + u64::from(local[1])
}

impl Operator for Hostile {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        Ok(Hostile(config.mode, config.path))
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        if record.value != b"\"attack\"" {
            ctx.emit(record);
            return Ok(());
        }
        match self.0 {
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Grow => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Recurse => {
                let mut sink = [0u8; 256];
                let n = recurse(0, &mut sink);
                ctx.emit_value(&n.to_le_bytes());
            }
            Mode::Panic => panic!("the hostile plugin panics on purpose"),
            Mode::Flood => loop {
                ctx.emit_value(b"\"flood\"");
            },
            Mode::Spray => {
                for _ in 0..100_000 {
                    ctx.emit_value(b"\"spray\"");
                }
            }
            Mode::Huge => {
                let huge = vec![b'x'; 512 << 20];
                ctx.emit_value(&huge);
            }
            Mode::Read => {
                let outcome = std::fs::read_to_string(&self.1).map_err(|e| e.to_string());
                ctx.emit_json(&serde_json::json!({ "read": outcome }))?;
            }
            Mode::Write => {
                let outcome = std::fs::write(&self.1, b"written by a plugin").map_err(|e| e.to_string());
                ctx.emit_json(&serde_json::json!({ "write": outcome }))?;
            }
            Mode::Clock => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                ctx.emit_json(&serde_json::json!({ "clock": now.as_secs() }))?;
            }
            Mode::Chatty => {
                let line = "chatty plugin line: 0123456789abcdef0123456789abcdef0123456789abcdef\n";
                for _ in 0..(1 << 20) / line.len() {
                    print!("{line}");
                    eprint!("{line}");
                }
                ctx.emit(record);
            }
        }
        Ok(())
    }
}

export_operator!(Hostile);
