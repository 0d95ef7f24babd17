//! Benchmark plugin for the cost of the Wasm boundary: ignores its records,
//! or with config `{"emit": true}` passes each through unchanged.

use serde::Deserialize;
use weir_sdk::{Context, InitContext, Operator, Record, Result, export_operator};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    emit: bool,
}

struct Noop {
    emit: bool,
}

impl Operator for Noop {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config::<Option<Config>>()?.unwrap_or_default();
        Ok(Noop { emit: config.emit })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        if self.emit {
            ctx.emit(record);
        }
        Ok(())
    }
}

export_operator!(Noop);
