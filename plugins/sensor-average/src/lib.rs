//! `sensor-average`: the average temperature per sensor over tumbling
//! event-time windows (5 s by default), like a Flink `KeyedProcessFunction`.
//!
//! Input: readings in °C keyed by sensor id (JSON, or binary with
//! `input: binary`). Each reading is added to the running sum of its window
//! in keyed map state (window end → sum and count), and the first reading of
//! a window registers an event-time timer at `window_end - 1`. When the
//! watermark passes it, the window's average is emitted as
//! `{"id":"sensor_7","window_end":1700000005000,"avg_c":12.345678,"count":50}`
//! (`avg_c` rounded to 6 decimals) and its state is removed.
//!
//! A reading whose window has already fired (`window_end - 1 <= watermark`)
//! is late: it is dropped and counted in the `late_records_dropped` counter.
//!
//! Config: `window_ms` (default 5000), `input: json | binary`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Encoding, InitContext, MapState, Operator, Record, Result, Timer, bail, export_operator};

/// A reading as `celsius` emits it. The id is not used (the record key is
/// the sensor), but it is part of the binary layout; it borrows from the
/// input when it can.
#[derive(Deserialize)]
struct SensorReading<'a> {
    #[serde(borrow, rename = "id")]
    _id: Cow<'a, str>,
    timestamp: i64,
    temperature: f64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    count: u64,
}

#[derive(Serialize)]
struct Average<'a> {
    id: &'a str,
    window_end: i64,
    avg_c: f64,
    count: u64,
    /// Version 2 (built with the `v2` feature) says so in every result.
    #[cfg(feature = "v2")]
    version: u32,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    window_ms: i64,
    input: Encoding,
}

impl Default for Config {
    fn default() -> Self {
        Config { window_ms: 5000, input: Encoding::Json }
    }
}

struct SensorAverage {
    config: Config,
    /// Window end → running sum, for the current sensor.
    windows: MapState<i64, Sum>,
}

impl Operator for SensorAverage {
    fn init(ctx: &mut InitContext) -> Result<Self> {
        let config: Option<Config> = ctx.config()?;
        let config = config.unwrap_or_default();
        if config.window_ms <= 0 {
            bail!("window_ms must be positive, got {}", config.window_ms);
        }
        Ok(SensorAverage { config, windows: ctx.map_state("windows")? })
    }

    fn process(&mut self, record: Record<'_>, ctx: &mut Context<'_>) -> Result<()> {
        let reading: SensorReading = self.config.input.decode(record.value)?;
        let size = self.config.window_ms;
        let window_end = reading.timestamp - reading.timestamp.rem_euclid(size) + size;
        if window_end - 1 <= ctx.watermark() {
            ctx.count("late_records_dropped", 1);
            return Ok(());
        }
        let mut sum = match self.windows.get(ctx, &window_end)? {
            Some(sum) => sum,
            None => {
                ctx.register_event_timer(window_end - 1)?;
                Sum::default()
            }
        };
        sum.sum += reading.temperature;
        sum.count += 1;
        self.windows.put(ctx, &window_end, &sum)
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let window_end = timer.timestamp + 1;
        let Some(sum) = self.windows.get(ctx, &window_end)? else {
            return Ok(());
        };
        self.windows.remove(ctx, &window_end)?;
        let id = timer.key_str().unwrap_or_default();
        let avg = sum.sum / sum.count as f64;
        ctx.emit_json(&Average {
            id,
            window_end,
            avg_c: (avg * 1e6).round() / 1e6,
            count: sum.count,
            #[cfg(feature = "v2")]
            version: 2,
        })
    }
}

export_operator!(SensorAverage);
