//! `make bench`: the sensor-bench pipeline (generator → celsius → key-by →
//! sensor-average → discarding sink, parallelism 1) on Weir with memory and
//! RocksDB state, against a hand-written native-Rust program that computes
//! the same averages. Each configuration runs in its own child process so
//! its peak RSS is its own. Figures are throughput ratios from one run.
//!
//! Weir runs with the default `batch_size` and again with 1024, to show
//! what batching buys, with a checkpoint every second, to show what
//! checkpoints cost, and with the averaging done by a host-native window
//! instead of the plugin: the book's form (tumbling 5 s computing the
//! `average` aggregate plugin, and its sliding variant, 10 s by 1 s), and
//! the same with the built-in `avg`. `WEIR_BENCH_EVENTS` sets the number of
//! events (default 10,000,000).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_connectors::generator::SensorBench;
use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec, StateBackendKind};

#[derive(Serialize, Deserialize, Debug)]
struct Figures {
    events: u64,
    seconds: f64,
    peak_rss_mb: f64,
    first_output_ms: Option<f64>,
    averages: u64,
}

/// The averaging step: the `sensor-average` plugin, or a host-native
/// window computing the `average` aggregate plugin or the built-in average.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Averaging {
    Plugin,
    Tumbling,
    Sliding,
    BuiltinTumbling,
    BuiltinSliding,
    Session,
}

fn operators(averaging: Averaging) -> String {
    const TUMBLING: &str = "{ tumbling: 5s }";
    const SLIDING: &str = "{ sliding: { size: 10s, slide: 1s } }";
    // Each sensor reports every 100 ms: one session per sensor that every
    // reading extends (the per-record path: find, merge, add, store).
    const SESSION: &str = "{ session: { gap: 1s } }";
    let celsius = weir_tests::plugin("celsius");
    let average = weir_tests::plugin("average");
    // The book's form: records cross in the binary encoding, as in the
    // plugin pipeline.
    let wasm = |window: &str| {
        format!(
            "operators:
  - {{ id: celsius, input: readings, plugin: {}, config: {{ output: binary }} }}
  - {{ id: averages, input: celsius, key_by: key, window: {window}, plugin: {}, config: {{ input: binary }} }}
",
            celsius.display(),
            average.display()
        )
    };
    let builtin = |window: &str| {
        format!(
            "operators:
  - {{ id: celsius, input: readings, plugin: {} }}
  - {{ id: averages, input: celsius, key_by: key, window: {window}, aggregate: {{ avg: /temperature }} }}
",
            celsius.display()
        )
    };
    match averaging {
        Averaging::Plugin => weir_tests::sensor_pipeline_operators(),
        Averaging::Tumbling => wasm(TUMBLING),
        Averaging::Sliding => wasm(SLIDING),
        Averaging::BuiltinTumbling => builtin(TUMBLING),
        Averaging::BuiltinSliding => builtin(SLIDING),
        Averaging::Session => wasm(SESSION),
    }
}

/// Weir on `backend`, with the default batch size or `batch_size`, and
/// with checkpoints every second when `checkpoints`.
fn weir(events: u64, backend: StateBackendKind, batch_size: Option<usize>, checkpoints: bool) -> Figures {
    weir_with(events, backend, batch_size, checkpoints, Averaging::Plugin)
}

fn weir_with(
    events: u64,
    backend: StateBackendKind,
    batch_size: Option<usize>,
    checkpoints: bool,
    averaging: Averaging,
) -> Figures {
    let mut batch = batch_size.map(|b| format!("batch_size: {b}\n")).unwrap_or_default();
    let dir = tempfile::tempdir().expect("a temporary checkpoint dir");
    if checkpoints {
        batch.push_str(&format!("checkpoint: {{ interval: 1s, dir: {} }}\n", dir.path().display()));
    }
    let text = format!(
        "name: sensor-bench
{batch}sources:
  - id: readings
    type: generator
    generator: sensor-bench
    events: {events}
{operators}sinks:
  - id: out
    type: blackhole
    input: averages
",
        operators = operators(averaging),
    );
    let spec = JobSpec::parse(&text, Format::Yaml).expect("bench spec");
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(backend), ..JobOptions::default() };
    let report = run_job(&spec, &options, &engine).expect("bench job");
    let averages = report.nodes.iter().find(|n| n.node == "out").map(|n| n.records_in).unwrap_or(0);
    Figures {
        events,
        seconds: report.elapsed.as_secs_f64(),
        peak_rss_mb: weir_tests::peak_rss_mb(),
        first_output_ms: report.first_output.map(|d| d.as_secs_f64() * 1000.0),
        averages,
    }
}

#[derive(Serialize, Deserialize)]
struct Reading {
    id: String,
    timestamp: i64,
    temperature: f64,
}

#[derive(Serialize)]
struct Average<'a> {
    id: &'a str,
    window_end: i64,
    avg_c: f64,
    count: u64,
}

/// The same job written by hand: JSON in, °C, 5 s tumbling averages per
/// sensor fired by the watermark, JSON out (discarded).
fn native(events: u64) -> Figures {
    let started = Instant::now();
    let mut first_output = None;
    let mut windows: BTreeMap<(i64, String), (f64, u64)> = BTreeMap::new();
    let mut max_ts = i64::MIN;
    let mut fired = 0u64;
    let mut sink = 0usize;
    let mut fire =
        |windows: &mut BTreeMap<(i64, String), (f64, u64)>, watermark: i64, sink: &mut usize, fired: &mut u64| {
            while let Some(entry) = windows.first_entry() {
                if entry.key().0 - 1 > watermark {
                    break;
                }
                let ((end, id), (sum, count)) = entry.remove_entry();
                let avg = sum / count as f64;
                let out =
                    serde_json::to_vec(&Average { id: &id, window_end: end, avg_c: (avg * 1e6).round() / 1e6, count })
                        .unwrap();
                *sink += out.len();
                *fired += 1;
                first_output.get_or_insert_with(|| started.elapsed());
            }
        };
    for i in 0..events {
        let (sensor, ts, temp) = SensorBench::event(i);
        let json = format!(r#"{{"id":"sensor_{sensor}","timestamp":{ts},"temperature":{temp}}}"#);
        let r: Reading = serde_json::from_str(&json).unwrap();
        let celsius = (r.temperature - 32.0) * (5.0 / 9.0);
        let end = r.timestamp - r.timestamp.rem_euclid(5000) + 5000;
        let w = windows.entry((end, r.id)).or_insert((0.0, 0));
        w.0 += celsius;
        w.1 += 1;
        if r.timestamp > max_ts {
            max_ts = r.timestamp;
            fire(&mut windows, max_ts - 1, &mut sink, &mut fired);
        }
    }
    fire(&mut windows, i64::MAX, &mut sink, &mut fired);
    std::hint::black_box(sink);
    Figures {
        events,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: weir_tests::peak_rss_mb(),
        first_output_ms: first_output.map(|d: Duration| d.as_secs_f64() * 1000.0),
        averages: fired,
    }
}

fn child(config: &str, events: u64) -> Figures {
    // Pinned to one CPU: the figures are per core.
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg("0").arg(exe);
    let out = cmd
        .arg("--child")
        .arg(config)
        .env("WEIR_BENCH_EVENTS", events.to_string())
        .output()
        .expect("taskset (util-linux) runs the benchmark on one CPU");
    assert!(out.status.success(), "{config} failed: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{config}: {e}: {line}"))
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let figures = match args[i + 1].as_str() {
            "native" => native(events),
            "memory" => weir(events, StateBackendKind::Memory, None, false),
            "rocksdb" => weir(events, StateBackendKind::Rocksdb, None, false),
            "memory-1024" => weir(events, StateBackendKind::Memory, Some(1024), false),
            "rocksdb-1024" => weir(events, StateBackendKind::Rocksdb, Some(1024), false),
            "memory-checkpoints" => weir(events, StateBackendKind::Memory, None, true),
            "rocksdb-checkpoints" => weir(events, StateBackendKind::Rocksdb, None, true),
            "memory-tumbling" => weir_with(events, StateBackendKind::Memory, None, false, Averaging::Tumbling),
            "rocksdb-tumbling" => weir_with(events, StateBackendKind::Rocksdb, None, false, Averaging::Tumbling),
            "memory-sliding" => weir_with(events, StateBackendKind::Memory, None, false, Averaging::Sliding),
            "rocksdb-sliding" => weir_with(events, StateBackendKind::Rocksdb, None, false, Averaging::Sliding),
            "memory-builtin" => weir_with(events, StateBackendKind::Memory, None, false, Averaging::BuiltinTumbling),
            "rocksdb-builtin" => weir_with(events, StateBackendKind::Rocksdb, None, false, Averaging::BuiltinTumbling),
            "memory-builtin-sliding" => {
                weir_with(events, StateBackendKind::Memory, None, false, Averaging::BuiltinSliding)
            }
            "memory-session" => weir_with(events, StateBackendKind::Memory, None, false, Averaging::Session),
            "rocksdb-session" => weir_with(events, StateBackendKind::Rocksdb, None, false, Averaging::Session),
            other => panic!("unknown config {other}"),
        };
        println!("{}", serde_json::to_string(&figures).unwrap());
        return;
    }
    println!("sensor-bench pipeline, {events} events, parallelism 1, pinned to one CPU");
    let native = child("native", events);
    let base = native.events as f64 / native.seconds;
    println!(
        "{:<38} {:>10} {:>10} {:>14} {:>18} {:>9}",
        "configuration", "events/s", "vs native", "peak RSS (MB)", "first output (ms)", "averages"
    );
    for (name, f) in [
        ("native Rust", &native),
        ("weir memory", &child("memory", events)),
        ("weir rocksdb", &child("rocksdb", events)),
        ("weir memory, batch 1024", &child("memory-1024", events)),
        ("weir rocksdb, batch 1024", &child("rocksdb-1024", events)),
        ("weir memory, checkpoint/1s", &child("memory-checkpoints", events)),
        ("weir rocksdb, checkpoint/1s", &child("rocksdb-checkpoints", events)),
        ("weir memory, window 5s + wasm avg", &child("memory-tumbling", events)),
        ("weir rocksdb, window 5s + wasm avg", &child("rocksdb-tumbling", events)),
        ("weir memory, sliding 10s/1s + wasm", &child("memory-sliding", events)),
        ("weir rocksdb, sliding 10s/1s + wasm", &child("rocksdb-sliding", events)),
        ("weir memory, window 5s built-in avg", &child("memory-builtin", events)),
        ("weir rocksdb, window 5s built-in avg", &child("rocksdb-builtin", events)),
        ("weir memory, sliding 10s/1s built-in", &child("memory-builtin-sliding", events)),
        ("weir memory, session 1s + wasm avg", &child("memory-session", events)),
        ("weir rocksdb, session 1s + wasm avg", &child("rocksdb-session", events)),
    ] {
        let rate = f.events as f64 / f.seconds;
        println!(
            "{:<38} {:>10.0} {:>9.2}x {:>14.1} {:>18} {:>9}",
            name,
            rate,
            rate / base,
            f.peak_rss_mb,
            f.first_output_ms.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into()),
            f.averages
        );
    }
}
