//! The same job gives the same results on both state backends and at any
//! parallelism.

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec, StateBackendKind};
use weir_tests::read_lines;

/// 20 sensors × 200 readings, out of order by up to 300 ms, bound 300 ms:
/// nothing is late, so every run must agree exactly.
fn spec(parallelism: u32, out: &std::path::Path) -> JobSpec {
    let text = format!(
        "name: parity
parallelism: {parallelism}
batch_size: 100
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 20
    seed: 11
    start: 1700000000000
    events: 4000
    disorder: 300ms
    watermark: {{ max_out_of_orderness: 300ms, interval: 1ms }}
{operators}sinks:
  - id: out
    type: file
    path: {out}
    input: averages
",
        operators = weir_tests::sensor_pipeline_operators(),
        out = out.join("out.jsonl").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

fn run(parallelism: u32, backend: StateBackendKind) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(backend), ..JobOptions::default() };
    run_job(&spec(parallelism, dir.path()), &options, &engine).unwrap();
    let mut lines = read_lines(dir.path(), "out");
    lines.sort();
    lines
}

#[test]
fn backends_and_parallelism_agree() {
    let reference = run(1, StateBackendKind::Memory);
    // 20 sensors × 4 windows of 5 s (200 readings at 100 ms each).
    assert_eq!(reference.len(), 80);
    let counted: u64 = reference
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 4000, "every reading is in exactly one average");
    assert_eq!(run(1, StateBackendKind::Rocksdb), reference, "rocksdb, parallelism 1");
    assert_eq!(run(4, StateBackendKind::Memory), reference, "memory, parallelism 4");
    assert_eq!(run(4, StateBackendKind::Rocksdb), reference, "rocksdb, parallelism 4");
}
