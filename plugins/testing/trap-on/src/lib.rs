//! Test plugin. Passes records through unchanged, except a record whose JSON
//! value has `"id"` equal to the config's `panic_on` (traps, like a bug in
//! user code) or `error_on` (returns an error for that record).

use serde::Deserialize;
use weir_sdk::{Context, InitContext, Operator, Record, Result, bail, export_operator};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    panic_on: Option<String>,
    error_on: Option<String>,
    fail_init: Option<String>,
}

#[derive(Deserialize)]
struct WithId<'a> {
    id: &'a str,
}

struct TrapOn(Config);

impl Operator for TrapOn {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config::<Option<Config>>()?.unwrap_or_default();
        if let Some(message) = &config.fail_init {
            bail!("{message}");
        }
        Ok(TrapOn(config))
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let WithId { id } = record.json()?;
        if self.0.panic_on.as_deref() == Some(id) {
            panic!("reading from {id} is cursed");
        }
        if self.0.error_on.as_deref() == Some(id) {
            bail!("cannot handle {id}");
        }
        ctx.emit(record);
        Ok(())
    }
}

export_operator!(TrapOn);
