//! Test plugin for restore and upgrade checks: declares the keyed states
//! its config names, of the kinds it names, and passes every record through
//! unchanged. Config: `{"states": {"windows": "value", "seen": "list"}}`
//! (kinds: `value`, `list`, `map`).

use std::collections::BTreeMap;

use serde::Deserialize;
use weir_sdk::{Context, InitContext, Json, Operator, Record, Result, bail, export_operator};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    states: BTreeMap<String, String>,
}

struct Declare;

impl Operator for Declare {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config::<Option<Config>>()?.unwrap_or_default();
        for (name, kind) in &config.states {
            match kind.as_str() {
                // Declared is enough: the handles are not used.
                "value" => {
                    ctx.value_state::<String, Json>(name)?;
                }
                "list" => {
                    ctx.list_state::<String, Json>(name)?;
                }
                "map" => {
                    ctx.map_state::<String, String, Json>(name)?;
                }
                other => bail!("state `{name}`: `{other}` is not a kind (value, list, map)"),
            }
        }
        Ok(Declare)
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        ctx.emit(record);
        Ok(())
    }
}

export_operator!(Declare);
