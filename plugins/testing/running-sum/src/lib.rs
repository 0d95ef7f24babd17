//! `running-sum`, a test plugin for state migration: per key, the running
//! sum of the readings' `temperature` and their count, emitted after every
//! record as `{"id":"sensor_3","count":4,"sum":81.5}`.
//!
//! Version 1 keeps the sum in value state `acc` as JSON (schema 0). Version
//! 2 (the `v2` feature, `plugins/testing/running-sum-v2`) keeps it binary
//! (schema 1) and migrates version 1's JSON: a version 2 handed version 1's
//! state without the migration would fail on its first record.

use serde::{Deserialize, Serialize};
#[cfg(feature = "v2")]
use weir_sdk::{Bin, Codec as _, Migrate};
use weir_sdk::{Context, InitContext, Json, Operator, Record, Result, ValueState};

#[derive(Deserialize)]
struct Reading {
    temperature: f64,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
struct Acc {
    sum: f64,
    count: u64,
}

#[derive(Serialize)]
struct Out<'a> {
    id: &'a str,
    count: u64,
    sum: f64,
}

#[cfg(not(feature = "v2"))]
type Format = Json;
#[cfg(feature = "v2")]
type Format = Bin;

struct RunningSum {
    acc: ValueState<Acc, Format>,
}

impl Operator for RunningSum {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        Ok(RunningSum { acc: ctx.value_state("acc")? })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let reading: Reading = record.json()?;
        let mut acc = self.acc.get(ctx)?.unwrap_or_default();
        acc.sum = ((acc.sum + reading.temperature) * 1e6).round() / 1e6;
        acc.count += 1;
        self.acc.set(ctx, &acc)?;
        let id = record.key_str().unwrap_or_default();
        ctx.emit_json(&Out { id, count: acc.count, sum: acc.sum })
    }
}

#[cfg(feature = "v2")]
impl Migrate for RunningSum {
    fn schemas() -> Vec<(&'static str, u32)> {
        vec![("acc", 1)]
    }

    fn migrate(state: &str, from: u32, value: &[u8]) -> Result<Vec<u8>> {
        match (state, from) {
            ("acc", 0) => Bin::encode(&Json::decode::<Acc>(value)?),
            _ => weir_sdk::bail!("no migration of state `{state}` from schema {from}"),
        }
    }
}

#[cfg(not(feature = "v2"))]
weir_sdk::export_operator!(RunningSum);
#[cfg(feature = "v2")]
weir_sdk::export_migrating_operator!(RunningSum);
