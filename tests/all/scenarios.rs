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

fn lines_of(name: &str, file: &str) -> Vec<String> {
    std::fs::read_to_string(scenario(name).join(file)).unwrap().lines().map(str::to_string).collect()
}

/// Runs a scenario at the given parallelism; returns the main and late output.
fn run_windows(
    name: &str,
    backend: StateBackendKind,
    parallelism: u32,
) -> (Vec<String>, Vec<String>, weir_runtime::JobReport) {
    let out = tempfile::tempdir().unwrap();
    let mut spec = load_with_outputs(&scenario(name).join("job.yaml"), out.path());
    for o in &mut spec.operators {
        o.parallelism = Some(parallelism);
    }
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(backend), ..JobOptions::default() };
    let report = run_job(&spec, &options, &engine).unwrap();
    (read_lines(out.path(), "out"), read_lines(out.path(), "late"), report)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn tumbling_windows_follow_flinks_rules_exactly() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        let (out, late, _) = run_windows("window-tumbling", backend, 1);
        assert_eq!(out, lines_of("window-tumbling", "expected.jsonl"), "{backend:?}");
        assert_eq!(late, lines_of("window-tumbling", "expected-late.jsonl"), "{backend:?}");
        let (out, late, _) = run_windows("window-tumbling", backend, 4);
        assert_eq!(sorted(out), sorted(lines_of("window-tumbling", "expected.jsonl")), "{backend:?} at parallelism 4");
        assert_eq!(late, lines_of("window-tumbling", "expected-late.jsonl"), "{backend:?} at parallelism 4");
    }
}

#[test]
fn sliding_windows_take_a_record_late_for_its_oldest_window() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        let (out, late, report) = run_windows("window-sliding", backend, 1);
        assert_eq!(out, lines_of("window-sliding", "expected.jsonl"), "{backend:?}");
        assert!(late.is_empty());
        let counts = report.nodes.iter().find(|n| n.node == "counts").unwrap();
        assert_eq!(counts.counters.get("late_records_dropped"), Some(&1), "{backend:?}");
        let (out, _, _) = run_windows("window-sliding", backend, 4);
        assert_eq!(sorted(out), sorted(lines_of("window-sliding", "expected.jsonl")), "{backend:?} at parallelism 4");
    }
}

#[test]
fn session_windows_merge_and_a_late_record_bridges_two_fired_sessions() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, late, _) = run_windows("window-session", backend, parallelism);
            let expected = lines_of("window-session", "expected.jsonl");
            match parallelism {
                1 => assert_eq!(out, expected, "{backend:?}"),
                _ => assert_eq!(sorted(out), sorted(expected), "{backend:?} at parallelism {parallelism}"),
            }
            assert_eq!(late, lines_of("window-session", "expected-late.jsonl"), "{backend:?}");
        }
    }
}

#[test]
fn count_windows_fire_every_n_records_and_never_when_incomplete() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, _, _) = run_windows("window-count", backend, parallelism);
            assert_eq!(sorted(out), sorted(lines_of("window-count", "expected.jsonl")), "{backend:?} × {parallelism}");
        }
        let (out, _, _) = run_windows("window-count", backend, 1);
        assert_eq!(out, lines_of("window-count", "expected.jsonl"), "{backend:?}");
    }
}

/// Loads an example, with punctuated watermarks and no pacing so its
/// results do not depend on timing, its output going to `out`.
fn deterministic_example(file: &str, out: &std::path::Path) -> weir_spec::JobSpec {
    let mut spec = weir_spec::JobSpec::load(&weir_tests::repo().join("examples/sensor-averages").join(file)).unwrap();
    for s in &mut spec.sources {
        s.watermark.punctuated = true;
        s.rate = None;
    }
    for sink in &mut spec.sinks {
        sink.kind = weir_spec::SinkKind::File;
        sink.path = Some(out.join("out.jsonl"));
    }
    spec
}

#[test]
fn the_window_form_of_the_example_gives_the_plugins_averages() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let (plugin_out, window_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(&deterministic_example("job.yaml", plugin_out.path()), &JobOptions::default(), &engine).unwrap();
    run_job(&deterministic_example("window.yaml", window_out.path()), &JobOptions::default(), &engine).unwrap();
    let parse = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        read_lines(dir, "out").iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (by_plugin, by_window) = (parse(plugin_out.path()), parse(window_out.path()));
    assert_eq!(by_plugin.len(), 120);
    let mut from_plugin: Vec<(String, i64, String)> = by_plugin
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["window_end"].as_i64().unwrap(),
                format!("{:.6}", v["avg_c"].as_f64().unwrap()),
            )
        })
        .collect();
    let mut from_window: Vec<(String, i64, String)> = by_window
        .iter()
        .map(|v| {
            (
                v["key"].as_str().unwrap().to_string(),
                v["window_end"].as_i64().unwrap(),
                format!("{:.6}", v["avg"].as_f64().unwrap()),
            )
        })
        .collect();
    from_plugin.sort();
    from_window.sort();
    assert_eq!(from_window, from_plugin);
}

#[test]
fn the_click_sessions_example_finds_every_burst() {
    let out = tempfile::tempdir().unwrap();
    let dir = weir_tests::repo().join("examples/click-sessions");
    let mut spec = weir_spec::JobSpec::load(&dir.join("job.yaml")).unwrap();
    spec.sinks[0].kind = weir_spec::SinkKind::File;
    spec.sinks[0].path = Some(out.path().join("out.jsonl"));
    run_job(&spec, &JobOptions::default(), &weir_wasm::PluginEngine::new().unwrap()).unwrap();
    let lines = read_lines(out.path(), "out");
    // The clicks come in 3 bursts per user, over 35 s apart, clicks within a
    // burst at most 4 s apart: 12 sessions holding every click.
    let sessions: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(sessions.len(), 12);
    let clicks = std::fs::read_to_string(dir.join("clicks.jsonl")).unwrap().lines().count() as u64;
    assert_eq!(sessions.iter().map(|s| s["count"].as_u64().unwrap()).sum::<u64>(), clicks);
    assert_eq!(lines, std::fs::read_to_string(dir.join("expected.jsonl")).unwrap().lines().collect::<Vec<_>>());
}
