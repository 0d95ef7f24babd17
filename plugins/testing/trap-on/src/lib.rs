//! Test plugin. Passes records through unchanged, except a record whose JSON
//! value has `"id"` equal to the config's `panic_on` (traps, like a bug in
//! user code) or `error_on` (returns an error for that record). `panic_at`
//! traps on the record with that timestamp instead; `on_attempt` limits the
//! traps to one attempt of the job (e.g. 0: only before the first restart).

use serde::Deserialize;
use weir_sdk::{Context, InitContext, Operator, Record, Result, bail, export_operator};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    panic_on: Option<String>,
    error_on: Option<String>,
    fail_init: Option<String>,
    panic_at: Option<i64>,
    on_attempt: Option<u32>,
}

#[derive(Deserialize)]
struct WithId<'a> {
    id: &'a str,
}

struct TrapOn {
    config: Config,
    armed: bool,
}

impl Operator for TrapOn {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config::<Option<Config>>()?.unwrap_or_default();
        if let Some(message) = &config.fail_init {
            bail!("{message}");
        }
        let armed = config.on_attempt.is_none_or(|a| a == ctx.attempt());
        Ok(TrapOn { config, armed })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let WithId { id } = record.json()?;
        let c = &self.config;
        if self.armed && (c.panic_on.as_deref() == Some(id) || c.panic_at == Some(record.timestamp)) {
            panic!("reading from {id} is cursed");
        }
        if self.armed && c.error_on.as_deref() == Some(id) {
            bail!("cannot handle {id}");
        }
        ctx.emit(record);
        Ok(())
    }
}

export_operator!(TrapOn);
