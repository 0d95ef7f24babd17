//! `state-probe`: a test plugin that drives every kind of keyed state.
//!
//! Each input record is a JSON command for its key; after applying it the
//! plugin emits the key's whole state as JSON
//! `{"key":..,"count":..,"items":[..],"tags":{..}}`:
//! - `{"op":"add","item":"x"}`: count += 1, append `x` to `items`, set
//!   `tags[x] = count`
//! - `{"op":"replace","items":["a","b"]}`: replace `items`
//! - `{"op":"untag","item":"x"}`: remove `tags[x]`
//! - `{"op":"clear"}`: clear all three states
//!
//! Config: `{"large": true}` reads and writes the list and the map through
//! host calls (`large_*` handles) instead of prefetching them; the value is
//! prefetched either way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_sdk::{
    Context, InitContext, Json, ListState, MapState, Operator, Record, Result, ValueState, export_operator,
};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Command {
    Add { item: String },
    Replace { items: Vec<String> },
    Untag { item: String },
    Clear,
}

#[derive(Serialize)]
struct Seen<'a> {
    key: &'a str,
    count: Option<u64>,
    items: Vec<String>,
    tags: BTreeMap<String, u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    large: bool,
}

struct StateProbe {
    count: ValueState<u64>,
    items: ListState<String>,
    // JSON-encoded so the state is readable in tests.
    tags: MapState<String, u64, Json>,
}

impl Operator for StateProbe {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Config = ctx.config::<Option<Config>>()?.unwrap_or_default();
        Ok(StateProbe {
            count: ctx.value_state("count")?,
            items: if config.large { ctx.large_list_state("items")? } else { ctx.list_state("items")? },
            tags: if config.large { ctx.large_map_state("tags")? } else { ctx.map_state("tags")? },
        })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        match record.json::<Command>()? {
            Command::Add { item } => {
                let count = self.count.get(ctx)?.unwrap_or(0) + 1;
                self.count.set(ctx, &count)?;
                self.items.add(ctx, &item)?;
                self.tags.put(ctx, &item, &count)?;
            }
            Command::Replace { items } => self.items.update(ctx, &items)?,
            Command::Untag { item } => self.tags.remove(ctx, &item)?,
            Command::Clear => {
                self.count.clear(ctx)?;
                self.items.clear(ctx)?;
                self.tags.clear(ctx)?;
            }
        }
        let key = ctx.key_str().unwrap_or_default().to_string();
        let seen = Seen {
            key: &key,
            count: self.count.get(ctx)?,
            items: self.items.get(ctx)?,
            tags: self.tags.entries(ctx)?.into_iter().collect(),
        };
        ctx.emit_json(&seen)
    }
}

export_operator!(StateProbe);
