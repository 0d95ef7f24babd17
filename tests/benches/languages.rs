//! `make bench` (seventh part): the sensor-bench pipeline (generator →
//! celsius → key-by → sensor-average → discarding sink, parallelism 1,
//! memory state, one CPU) with each language's plugins, against the Rust
//! ones with the same encoding between the operators (JSON, and the Rust
//! plugins' binary layout for the languages whose plugins speak it):
//! events/s, the ratio to Rust and peak RSS, each in its own child process;
//! and each component's load time, cold (compiled, into an empty cache) and
//! warm (from the cache). The pipelines run with every component compiled
//! already. `WEIR_BENCH_EVENTS` sets the events of the Python and
//! JavaScript rows (default 200,000; the others run ten times as many).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::process::Command;
use std::time::Instant;

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec, StateBackendKind};

/// How the readings cross between celsius and the average.
#[derive(Clone, Copy, PartialEq)]
enum Between {
    Json,
    /// The Rust plugins' binary layout (`output: binary`, `input: binary`).
    Binary,
}

/// (row, celsius plugin, sensor-average plugin, encoding between them); the
/// pass-through rows put a plugin that emits each record as it came in
/// celsius's place: what each SDK costs per record, without JSON (Rust's
/// `noop` passes records through with `emit: true`); "× 2" in both places:
/// the fastest a pipeline of two operators in that language can be. Each block's first row
/// is the Rust pipeline the block's ratios are to.
const ROWS: [(&str, &str, &str, Between); 29] = [
    ("Rust", "celsius", "sensor-average", Between::Json),
    ("Python", "python/celsius", "python/sensor-average", Between::Json),
    ("Python celsius → Rust average", "python/celsius", "sensor-average", Between::Json),
    ("Rust celsius → Python average", "celsius", "python/sensor-average", Between::Json),
    ("JavaScript", "js/celsius", "js/sensor-average", Between::Json),
    ("JS celsius → Rust average", "js/celsius", "sensor-average", Between::Json),
    ("Rust celsius → JS average", "celsius", "js/sensor-average", Between::Json),
    ("Go", "go/celsius", "go/sensor-average", Between::Json),
    ("Go celsius → Rust average", "go/celsius", "sensor-average", Between::Json),
    ("Rust celsius → Go average", "celsius", "go/sensor-average", Between::Json),
    ("C", "c/celsius", "c/sensor-average", Between::Json),
    ("C celsius → Rust average", "c/celsius", "sensor-average", Between::Json),
    ("Rust celsius → C average", "celsius", "c/sensor-average", Between::Json),
    ("Rust pass-through → Rust average", "noop", "sensor-average", Between::Json),
    ("Go pass-through → Rust average", "go/pass-through", "sensor-average", Between::Json),
    ("C pass-through → Rust average", "c/pass-through", "sensor-average", Between::Json),
    ("Python pass-through → Rust average", "python/pass-through", "sensor-average", Between::Json),
    ("JS pass-through → Rust average", "js/pass-through", "sensor-average", Between::Json),
    ("Python pass-through × 2", "python/pass-through", "python/pass-through", Between::Json),
    ("JS pass-through × 2", "js/pass-through", "js/pass-through", Between::Json),
    ("Rust", "celsius", "sensor-average", Between::Binary),
    ("Go", "go/celsius", "go/sensor-average", Between::Binary),
    ("Go celsius → Rust average", "go/celsius", "sensor-average", Between::Binary),
    ("Rust celsius → Go average", "celsius", "go/sensor-average", Between::Binary),
    ("C", "c/celsius", "c/sensor-average", Between::Binary),
    ("C celsius → Rust average", "c/celsius", "sensor-average", Between::Binary),
    ("Rust celsius → C average", "celsius", "c/sensor-average", Between::Binary),
    ("Python", "python/celsius", "python/sensor-average", Between::Binary),
    ("JavaScript", "js/celsius", "js/sensor-average", Between::Binary),
];

/// The interpreted languages' rows read `events`; the compiled ones' ten
/// times as many, so that no row lasts under a second or so.
fn events_for(events: u64, celsius: &str, average: &str) -> u64 {
    let interpreted = [celsius, average].iter().any(|p| p.starts_with("python/") || p.starts_with("js/"));
    if interpreted { events } else { events * 10 }
}

/// One row, in this (child) process: prints `seconds peak_rss_mb`.
fn row(events: u64, celsius: &str, average: &str, between: Between) {
    let (output, input) = match (celsius, between) {
        ("noop", _) => (", config: { emit: true }", ""),
        (_, Between::Binary) => (", config: { output: binary }", ", config: { input: binary }"),
        (_, Between::Json) => ("", ""),
    };
    let text = format!(
        "name: sensor-bench
sources: [{{ id: readings, type: generator, generator: sensor-bench, events: {events} }}]
operators:
  - {{ id: celsius, input: readings, plugin: {celsius}{output} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}{input} }}
sinks: [{{ id: out, type: blackhole, input: averages }}]
",
        events = events_for(events, celsius, average),
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
        let (_, celsius, average, between) = ROWS[args[i + 1].parse::<usize>().unwrap()];
        row(events, celsius, average, between);
        return;
    }
    // Compile every plugin into the cache first, so that no row counts a
    // compilation (the rows' engines load from the cache, as `weir compile`
    // arranges for a job).
    let engine = weir_wasm::PluginEngine::new().unwrap();
    for (_, celsius, average, _) in ROWS {
        for plugin in [celsius, average] {
            engine.load_file(&weir_tests::plugin(plugin)).expect("the plugin loads");
        }
    }
    println!(
        "sensor-bench pipeline by language, {events} events ({} for Rust, Go and C), memory state, one CPU",
        events * 10
    );
    println!("{:<36} {:>12} {:>9} {:>14}", "plugins", "events/s", "vs Rust", "peak RSS (MB)");
    let mut rust = 0.0;
    for (index, (name, celsius, average, between)) in ROWS.iter().enumerate() {
        if index == 0 || ROWS[index - 1].3 != *between {
            println!(
                "{}",
                if *between == Between::Json { "JSON between the operators:" } else { "binary between the operators:" }
            );
        }
        let (seconds, rss) = child(events, index);
        let rate = events_for(events, celsius, average) as f64 / seconds;
        if (*celsius, *average) == ("celsius", "sensor-average") {
            rust = rate;
        }
        println!("  {name:<34} {rate:>12.0} {:>8.3}× {rss:>14.1}", rate / rust);
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
