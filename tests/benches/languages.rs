//! `make bench` (seventh part): the sensor-bench pipeline (generator →
//! celsius → key-by → sensor-average → discarding sink, parallelism 1,
//! memory state, one CPU) with each language's plugins, against the Rust
//! ones with the same JSON between the operators: events/s, the ratio to
//! Rust and peak RSS, each in its own child process; and each component's
//! load time, cold (compiled, into an empty cache) and warm (from the
//! cache). The pipelines run with every component compiled already. `WEIR_BENCH_EVENTS` sets the events (default 200,000).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::process::Command;
use std::time::Instant;

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec, StateBackendKind};

/// (row, celsius plugin, sensor-average plugin); the last rows put a
/// pass-through in celsius's place: what each SDK costs per record, without
/// JSON (Rust's `noop` passes records through with `emit: true`).
const ROWS: [(&str, &str, &str); 16] = [
    ("Rust", "celsius", "sensor-average"),
    ("Python", "python/celsius", "python/sensor-average"),
    ("Python celsius → Rust average", "python/celsius", "sensor-average"),
    ("Rust celsius → Python average", "celsius", "python/sensor-average"),
    ("JavaScript", "js/celsius", "js/sensor-average"),
    ("JS celsius → Rust average", "js/celsius", "sensor-average"),
    ("Rust celsius → JS average", "celsius", "js/sensor-average"),
    ("Go", "go/celsius", "go/sensor-average"),
    ("Go celsius → Rust average", "go/celsius", "sensor-average"),
    ("Rust celsius → Go average", "celsius", "go/sensor-average"),
    ("C", "c/celsius", "c/sensor-average"),
    ("C celsius → Rust average", "c/celsius", "sensor-average"),
    ("Rust celsius → C average", "celsius", "c/sensor-average"),
    ("Rust pass-through → Rust average", "noop", "sensor-average"),
    ("Go pass-through → Rust average", "go/pass-through", "sensor-average"),
    ("C pass-through → Rust average", "c/pass-through", "sensor-average"),
];

/// One row, in this (child) process: prints `seconds peak_rss_mb`.
fn row(events: u64, celsius: &str, average: &str) {
    let text = format!(
        "name: sensor-bench
sources: [{{ id: readings, type: generator, generator: sensor-bench, events: {events} }}]
operators:
  - {{ id: celsius, input: readings, plugin: {celsius}{config} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average} }}
sinks: [{{ id: out, type: blackhole, input: averages }}]
",
        config = if celsius == "noop" { ", config: { emit: true }" } else { "" },
        celsius = weir_tests::plugin(celsius).display(),
        average = weir_tests::plugin(average).display(),
    );
    let spec = JobSpec::parse(&text, Format::Yaml).expect("bench spec");
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(StateBackendKind::Memory), ..JobOptions::default() };
    let report = run_job(&spec, &options, &engine).expect("bench job");
    println!("{} {}", report.elapsed.as_secs_f64(), weir_tests::peak_rss_mb());
}

fn child(events: u64, index: usize) -> (f64, f64) {
    let out = Command::new("taskset")
        .args(["-c", "0"])
        .arg(std::env::current_exe().unwrap())
        .args(["--child", &index.to_string()])
        .env("WEIR_BENCH_EVENTS", events.to_string())
        .output()
        .expect("taskset (util-linux) runs the benchmark on one CPU");
    assert!(out.status.success(), "{}: {}", ROWS[index].0, String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text.lines().last().unwrap_or_default().split(' ').map(|f| f.parse::<f64>().unwrap());
    (figures.next().unwrap(), figures.next().unwrap())
}

/// Seconds to load `plugin` into an engine with the compile cache `cache`.
fn load(plugin: &str, cache: &std::path::Path) -> f64 {
    let engine = weir_wasm::PluginEngine::with_cache(Some(cache.to_path_buf())).unwrap();
    let started = Instant::now();
    engine.load_file(&weir_tests::plugin(plugin)).expect("the plugin loads");
    started.elapsed().as_secs_f64()
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (_, celsius, average) = ROWS[args[i + 1].parse::<usize>().unwrap()];
        row(events, celsius, average);
        return;
    }
    // Compile every plugin into the cache first, so that no row counts a
    // compilation (the rows' engines load from the cache, as `weir compile`
    // arranges for a job).
    let engine = weir_wasm::PluginEngine::new().unwrap();
    for (_, celsius, average) in ROWS {
        for plugin in [celsius, average] {
            engine.load_file(&weir_tests::plugin(plugin)).expect("the plugin loads");
        }
    }
    println!("sensor-bench pipeline by language, {events} events, JSON between operators, memory state, one CPU");
    println!("{:<32} {:>12} {:>9} {:>14}", "plugins", "events/s", "vs Rust", "peak RSS (MB)");
    let mut rust = 0.0;
    for (index, (name, _, _)) in ROWS.iter().enumerate() {
        let (seconds, rss) = child(events, index);
        let rate = events as f64 / seconds;
        if index == 0 {
            rust = rate;
        }
        println!("{name:<32} {rate:>12.0} {:>8.3}× {rss:>14.1}", rate / rust);
    }
    println!("component load time: cold (compiled into an empty cache) / warm (from the cache)");
    for plugin in [
        "celsius",
        "sensor-average",
        "python/celsius",
        "python/sensor-average",
        "js/celsius",
        "js/sensor-average",
        "go/celsius",
        "go/sensor-average",
        "c/celsius",
        "c/sensor-average",
    ] {
        let cache = tempfile::tempdir().unwrap();
        let size = std::fs::metadata(weir_tests::plugin(plugin)).unwrap().len() as f64 / (1 << 20) as f64;
        let (cold, warm) = (load(plugin, cache.path()), load(plugin, cache.path()));
        println!("  {plugin:<24} {size:>6.1} MiB  cold {:>7.0} ms  warm {:>5.0} ms", cold * 1000.0, warm * 1000.0);
    }
}
