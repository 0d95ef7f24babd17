//! `make bench` (third part): how long a job takes to restore the
//! sensor-bench state — stopped at a barrier after `WEIR_BENCH_EVENTS`
//! events (default 2,000,000) — at the same parallelism (1) and at another
//! (4, key groups redistributed), on memory and RocksDB, against a fresh
//! start of the same job. The time is from `start` until every task runs
//! (plugins instantiated, state opened and restored).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};

use weir_runtime::{JobHandle, JobOptions, JobStatus, Restore, start};
use weir_spec::{Format, JobSpec};

fn spec(dir: &std::path::Path, backend: &str, parallelism: u32, events: u64) -> JobSpec {
    let text = format!(
        "name: restore-bench
parallelism: {parallelism}
state: {{ backend: {backend}, dir: {state} }}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - id: readings
    type: generator
    generator: sensor-bench
    events: {events}
{operators}sinks:
  - id: out
    type: blackhole
    input: averages
",
        state = dir.join("state").display(),
        checkpoints = dir.join("checkpoints").display(),
        operators = weir_tests::sensor_pipeline_operators(),
    );
    JobSpec::parse(&text, Format::Yaml).expect("bench spec")
}

/// Starts a job and returns it once every task runs, with how long that took.
fn running(spec: &JobSpec, restore: Option<Restore>, engine: &weir_wasm::PluginEngine) -> (JobHandle, Duration) {
    let started = Instant::now();
    let job = start(spec, &JobOptions { restore, ..JobOptions::default() }, engine).expect("bench job");
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_micros(100));
    }
    (job, started.elapsed())
}

fn stop(job: JobHandle) -> Restore {
    let done = job.stop().expect("a stop").wait().expect("the stop checkpoint");
    job.wait().expect("the stopped job");
    Restore::load(&done.dir).expect("the checkpoint")
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let engine = weir_wasm::PluginEngine::new().unwrap();
    println!("restore of the sensor-bench state (stopped after about {events} events; 1000 sensors)");
    println!(
        "{:<10} {:>14} {:>16} {:>20} {:>20}",
        "backend", "state bytes", "fresh start (ms)", "restore at p=1 (ms)", "restore at p=4 (ms)"
    );
    for backend in ["memory", "rocksdb"] {
        let dir = tempfile::tempdir().unwrap();
        // Unbounded: the job runs until stopped.
        let unbounded = spec(dir.path(), backend, 1, u64::MAX);
        let (job, fresh) = running(&unbounded, None, &engine);
        while job.snapshot().nodes.iter().find(|n| n.node == "readings").map_or(0, |n| n.records_out) < events {
            std::thread::sleep(Duration::from_millis(5));
        }
        let checkpoint = stop(job);
        let bytes = checkpoint.manifest.bytes;
        let (job, same) = running(&unbounded, Some(checkpoint.clone()), &engine);
        stop(job);
        let (job, other) = running(&spec(dir.path(), backend, 4, u64::MAX), Some(checkpoint), &engine);
        stop(job);
        println!("{:<10} {:>14} {:>16} {:>20} {:>20}", backend, bytes, ms(fresh), ms(same), ms(other));
    }
}
