//! `celsius`: converts sensor readings from °F to °C.
//!
//! Input: JSON readings `{"id":"sensor_7","timestamp":1700000000000,"temperature":71.3}`
//! (°F). Output: the same reading in °C, with the record's key and timestamp
//! kept. Config (optional): `output: json | binary` — the encoding of the
//! readings it emits (binary is faster when the next operator reads it).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Encoding, InitContext, Operator, Record, Result, export_operator};

/// A sensor reading, as in *Stream Processing with Apache Flink*. The id
/// borrows from the input when it can.
#[derive(Serialize, Deserialize)]
struct SensorReading<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    timestamp: i64,
    temperature: f64,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    output: Encoding,
}

struct Celsius {
    output: Encoding,
}

impl Operator for Celsius {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Option<Config> = ctx.config()?;
        Ok(Celsius { output: config.unwrap_or_default().output })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let mut reading: SensorReading = record.json()?;
        reading.temperature = (reading.temperature - 32.0) * (5.0 / 9.0);
        ctx.emit_as(self.output, &reading)
    }
}

export_operator!(Celsius);
