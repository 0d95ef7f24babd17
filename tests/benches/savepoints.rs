//! `make bench` (fifth part): savepoints and in-place upgrades.
//!
//! - Savepoint time (trigger to written) and size of the sensor-bench state
//!   after `WEIR_BENCH_EVENTS` events (default 2,000,000), on memory and
//!   RocksDB, beside a plain checkpoint of the same job; and the time to
//!   start from the savepoint, on the same backend and on the other one.
//! - The output gap of an in-place upgrade: a paced stream (20,000 records/s)
//!   through `celsius` into a sink, `celsius` upgraded mid-way; the longest
//!   pause in the sink's input around the upgrade against the longest one
//!   elsewhere in the run, at parallelism 1 and 4. Target: ≤ 100 ms (Flink's
//!   stop-with-savepoint and restart takes seconds).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};

use weir_runtime::{JobHandle, JobOptions, JobStatus, Restore, Upgrade, start};
use weir_spec::{Format, JobSpec, SavepointSpec};

fn bench_spec(dir: &std::path::Path, backend: &str) -> JobSpec {
    let text = format!(
        "name: savepoint-bench
state: {{ backend: {backend}, dir: {state} }}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensor-bench, events: {events} }}
{operators}sinks:
  - {{ id: out, type: blackhole, input: averages }}
",
        state = dir.join("state").display(),
        checkpoints = dir.join(format!("checkpoints-{backend}")).display(),
        events = u64::MAX,
        operators = weir_tests::sensor_pipeline_operators(),
    );
    JobSpec::parse(&text, Format::Yaml).expect("bench spec")
}

fn running(spec: &JobSpec, options: JobOptions, engine: &weir_wasm::PluginEngine) -> (JobHandle, Duration) {
    let started = Instant::now();
    let job = start(spec, &options, engine).expect("bench job");
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_micros(100));
    }
    (job, started.elapsed())
}

fn records_out(job: &JobHandle, node: &str) -> u64 {
    job.snapshot().nodes.iter().find(|n| n.node == node).map_or(0, |n| n.records_out)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn savepoints(engine: &weir_wasm::PluginEngine, events: u64) {
    println!("savepoints of the sensor-bench state (after about {events} events; 1000 sensors)");
    println!(
        "{:<9} {:>14} {:>16} {:>15} {:>16} {:>20}",
        "backend", "checkpoint (ms)", "savepoint (ms)", "savepoint bytes", "restore same (ms)", "restore other (ms)"
    );
    for (backend, other) in [("memory", "rocksdb"), ("rocksdb", "memory")] {
        let dir = tempfile::tempdir().unwrap();
        let spec = bench_spec(dir.path(), backend);
        let (job, _) = running(&spec, JobOptions::default(), engine);
        while records_out(&job, "readings") < events {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        job.trigger_checkpoint().unwrap().wait().unwrap();
        let checkpoint = t.elapsed();
        let t = Instant::now();
        let done = job.savepoint(&dir.path().join("savepoints"), true).unwrap().wait().unwrap();
        let savepoint = t.elapsed();
        job.wait().unwrap();
        let taken = Restore::load(done.savepoint.as_ref().unwrap()).unwrap();
        let mut restored = Vec::new();
        for to in [backend, other] {
            let mut spec = bench_spec(dir.path(), to);
            spec.checkpoint.as_mut().unwrap().dir = dir.path().join(format!("after-{to}"));
            spec.savepoint = Some(SavepointSpec { path: taken.dir.clone(), allow_non_restored_state: false });
            let restore = weir_runtime::find_restore(&spec, false, None).unwrap();
            let t = Instant::now();
            let (job, _) = running(&spec, JobOptions { restore, ..JobOptions::default() }, engine);
            restored.push(t.elapsed());
            job.stop().unwrap().wait().unwrap();
            job.wait().unwrap();
        }
        println!(
            "{:<9} {:>14} {:>16} {:>15} {:>16} {:>20}",
            backend,
            ms(checkpoint),
            ms(savepoint),
            taken.manifest.bytes,
            ms(restored[0]),
            ms(restored[1])
        );
    }
}

fn paced(dir: &std::path::Path, parallelism: u32) -> JobSpec {
    let text = format!(
        "name: upgrade-gap
parallelism: {parallelism}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 100, seed: 1, start: 1700000000000,
       events: 100000, rate: 20000, watermark: {{ max_out_of_orderness: 0ms, interval: 10ms }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
sinks:
  - {{ id: out, type: blackhole, input: celsius }}
",
        checkpoints = dir.join("checkpoints").display(),
        celsius = weir_tests::plugin("celsius").display(),
    );
    JobSpec::parse(&text, Format::Yaml).expect("paced spec")
}

/// Runs the paced job, upgrading `celsius` (to a new instance of itself:
/// the same work as a new version) after a second; returns the longest
/// pause in the sink's input within 250 ms of the upgrade and elsewhere.
fn upgrade_gap(engine: &weir_wasm::PluginEngine, parallelism: u32) -> (Duration, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = running(&paced(dir.path(), parallelism), JobOptions::default(), engine);
    let plugin = engine.load_file(&weir_tests::plugin("celsius")).unwrap();
    // A sampler beside the upgrade: when the sink's input count changed.
    let control = job.control();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let sampler = std::thread::spawn(move || {
        let (mut changes, mut last) = (Vec::new(), 0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = control.snapshot().nodes.iter().find(|n| n.node == "out").map_or(0, |n| n.records_in);
            if now != last {
                changes.push(Instant::now());
                last = now;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        changes
    });
    std::thread::sleep(Duration::from_secs(1));
    let upgrade = Upgrade { node: "celsius".into(), plugin, label: "celsius@again".into(), config: None };
    let t = Instant::now();
    job.upgrade(upgrade).unwrap().wait_timeout(Duration::from_secs(30)).unwrap();
    let took = t.elapsed();
    let window = (t - Duration::from_millis(250), Instant::now() + Duration::from_millis(250));
    while !job.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes = sampler.join().unwrap();
    job.wait().unwrap();
    let (from, to) = window;
    let (mut near, mut elsewhere) = (Duration::ZERO, Duration::ZERO);
    // Up to the last record: the end of the stream is no pause.
    for pair in changes.windows(2) {
        let gap = pair[1] - pair[0];
        match pair[1] >= from && pair[0] <= to {
            true => near = near.max(gap),
            false => elsewhere = elsewhere.max(gap),
        }
    }
    (near, elsewhere, took)
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let engine = weir_wasm::PluginEngine::new().unwrap();
    savepoints(&engine, events);
    println!();
    println!("output gap of an in-place upgrade (20,000 records/s into a sink; longest pause in its input)");
    println!(
        "{:<12} {:>22} {:>22} {:>18}",
        "parallelism", "around upgrade (ms)", "elsewhere (ms)", "upgrade call (ms)"
    );
    for parallelism in [1, 4] {
        let (near, elsewhere, took) = upgrade_gap(&engine, parallelism);
        println!("{:<12} {:>22} {:>22} {:>18}", parallelism, ms(near), ms(elsewhere), ms(took));
    }
}
