//! `average`: the average temperature of a sensor's readings per window, as
//! an [`Aggregate`] for the host's windows. It is the book's form of the
//! sensor-averages job: the host assigns readings to windows, keeps the
//! accumulators and fires windows; this plugin only adds and divides.
//!
//! Input: readings in °C keyed by sensor id (JSON, or binary with
//! `input: binary`), as `celsius` emits them. Output per fired window, the
//! same as the `sensor-average` operator's:
//! `{"id":"sensor_7","window_end":1700000005000,"avg_c":12.345678,"count":50}`
//! (`avg_c` rounded to 6 decimals).
//!
//! Config: `input: json | binary`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weir_sdk::{Aggregate, Encoding, Record, Result, Window, WindowInit, export_aggregate};

/// A reading as `celsius` emits it (its fields in order: the binary form
/// has no names).
#[derive(Deserialize)]
struct SensorReading<'a> {
    #[serde(borrow, rename = "id")]
    _id: Cow<'a, str>,
    #[serde(rename = "timestamp")]
    _timestamp: i64,
    temperature: f64,
}

#[derive(Serialize, Deserialize, Default)]
struct Sum {
    sum: f64,
    count: u64,
}

#[derive(Serialize)]
struct Average {
    id: String,
    window_end: i64,
    avg_c: f64,
    count: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    input: Encoding,
}

struct Avg {
    input: Encoding,
}

impl Aggregate for Avg {
    type Acc = Sum;
    type Output = Average;

    fn init(ctx: &WindowInit) -> Result<Self> {
        let config: Option<Config> = ctx.config()?;
        Ok(Avg { input: config.unwrap_or_default().input })
    }

    fn add(&self, acc: &mut Sum, record: Record<'_>) -> Result<()> {
        let reading: SensorReading = self.input.decode(record.value)?;
        acc.sum += reading.temperature;
        acc.count += 1;
        Ok(())
    }

    fn merge(&self, acc: &mut Sum, other: Sum) {
        acc.sum += other.sum;
        acc.count += other.count;
    }

    fn result(&self, acc: &Sum, window: &Window<'_>) -> Result<Average> {
        let avg = acc.sum / acc.count as f64;
        Ok(Average {
            id: window.key_str().into_owned(),
            window_end: window.end,
            avg_c: (avg * 1e6).round() / 1e6,
            count: acc.count,
        })
    }
}

export_aggregate!(Avg);
