//! Job-level scenarios from files: spec + input + expected output, exactly.

use weir_runtime::{JobOptions, run_job};
use weir_spec::StateBackendKind;
use weir_tests::{load_with_outputs, read_lines, scenario};

fn run_scenario(name: &str, backend: StateBackendKind) -> (Vec<String>, weir_runtime::JobReport) {
    let dir = scenario(name);
    let out = tempfile::tempdir().unwrap();
    let spec = load_with_outputs(&dir.join("job.yaml"), out.path());
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(backend), ..JobOptions::default() };
    let report = run_job(&spec, &options, &engine).unwrap();
    (read_lines(out.path(), "out"), report)
}

fn expected(name: &str) -> Vec<String> {
    std::fs::read_to_string(scenario(name).join("expected.jsonl")).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn out_of_order_readings_give_exact_averages() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        let (lines, report) = run_scenario("out-of-order", backend);
        assert_eq!(lines, expected("out-of-order"), "backend {backend:?}");
        let averages = report.nodes.iter().find(|n| n.node == "averages").unwrap();
        assert_eq!(averages.records_in, 13);
        assert_eq!(averages.records_out, 8);
        assert_eq!(averages.counters.get("late_records_dropped"), Some(&1), "backend {backend:?}");
    }
}
