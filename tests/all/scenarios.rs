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
    run_windows_with(name, backend, parallelism, |_| {})
}

/// [`run_windows`] with each operator edited by `edit`.
fn run_windows_with(
    name: &str,
    backend: StateBackendKind,
    parallelism: u32,
    edit: impl Fn(&mut weir_spec::OperatorSpec),
) -> (Vec<String>, Vec<String>, weir_runtime::JobReport) {
    let out = tempfile::tempdir().unwrap();
    let mut spec = load_with_outputs(&scenario(name).join("job.yaml"), out.path());
    for o in &mut spec.operators {
        o.parallelism = Some(parallelism);
        edit(o);
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

/// Window results equal `expected`: in order at parallelism 1, as a set
/// above (the instances' outputs interleave).
fn assert_windows(got: Vec<String>, expected: Vec<String>, what: &str, parallelism: u32) {
    match parallelism {
        1 => assert_eq!(got, expected, "{what}"),
        _ => assert_eq!(sorted(got), sorted(expected), "{what} at parallelism {parallelism}"),
    }
}

#[test]
fn tumbling_windows_follow_flinks_rules_exactly() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, late, _) = run_windows("window-tumbling", backend, parallelism);
            let what = format!("{backend:?}");
            assert_windows(out, lines_of("window-tumbling", "expected.jsonl"), &what, parallelism);
            assert_eq!(late, lines_of("window-tumbling", "expected-late.jsonl"), "{what} at parallelism {parallelism}");
        }
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
        assert_windows(out, lines_of("window-sliding", "expected.jsonl"), &format!("{backend:?}"), 4);
    }
}

#[test]
fn session_windows_merge_and_a_late_record_bridges_two_fired_sessions() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, late, _) = run_windows("window-session", backend, parallelism);
            assert_windows(out, lines_of("window-session", "expected.jsonl"), &format!("{backend:?}"), parallelism);
            assert_eq!(late, lines_of("window-session", "expected-late.jsonl"), "{backend:?}");
        }
    }
}

#[test]
fn count_windows_fire_every_n_records_and_never_when_incomplete() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, _, _) = run_windows("window-count", backend, parallelism);
            assert_windows(out, lines_of("window-count", "expected.jsonl"), &format!("{backend:?}"), parallelism);
        }
    }
}

#[test]
fn sliding_windows_refire_within_their_lateness_and_send_the_too_late_aside() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        let (out, late, _) = run_windows("window-sliding-late", backend, 1);
        assert_eq!(out, lines_of("window-sliding-late", "expected.jsonl"), "{backend:?}");
        assert_eq!(late, lines_of("window-sliding-late", "expected-late.jsonl"), "{backend:?}");
        let (out, _, _) = run_windows("window-sliding-late", backend, 4);
        assert_windows(out, lines_of("window-sliding-late", "expected.jsonl"), &format!("{backend:?}"), 4);
    }
}

#[test]
fn sliding_count_windows_and_a_global_window_with_a_count_trigger_fire_like_flink() {
    for name in ["window-count-sliding", "window-global"] {
        for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
            for parallelism in [1, 4] {
                let (out, _, _) = run_windows(name, backend, parallelism);
                assert_windows(out, lines_of(name, "expected.jsonl"), &format!("{name} {backend:?}"), parallelism);
            }
        }
    }
}

/// Loads an example, with punctuated watermarks and no pacing so its
/// results do not depend on timing, its output going to `out`.
fn deterministic_example(file: &str, out: &std::path::Path) -> weir_spec::JobSpec {
    let mut spec = weir_spec::JobSpec::load(&weir_tests::repo().join("examples/sensor-averages").join(file)).unwrap();
    for s in &mut spec.sources {
        s.watermark.punctuated = true;
        if let weir_spec::SourceConnector::Generator(g) = &mut s.connector {
            g.rate = None;
        }
    }
    for sink in &mut spec.sinks {
        sink.connector = weir_spec::SinkConnector::File(weir_spec::FileSink { path: out.join("out.jsonl") });
    }
    spec
}

#[test]
fn the_books_window_form_of_the_example_gives_the_process_functions_output() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let (plugin_out, window_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(&deterministic_example("job.yaml", plugin_out.path()), &JobOptions::default(), &engine).unwrap();
    let window = deterministic_example("window.yaml", window_out.path());
    assert_eq!(window.operators[1].plugin.as_ref().unwrap().file_name().unwrap(), "average.wasm");
    run_job(&window, &JobOptions::default(), &engine).unwrap();
    let by_plugin = sorted(read_lines(plugin_out.path(), "out"));
    assert_eq!(by_plugin.len(), 120);
    // The Wasm aggregate in a host window gives the KeyedProcessFunction's
    // lines, byte for byte (the order of windows ending together may differ).
    assert_eq!(sorted(read_lines(window_out.path(), "out")), by_plugin);
}

#[test]
fn the_built_in_average_gives_the_aggregate_plugins_averages() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let (plugin_out, builtin_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(&deterministic_example("window.yaml", plugin_out.path()), &JobOptions::default(), &engine).unwrap();
    let mut builtin = deterministic_example("window.yaml", builtin_out.path());
    builtin.operators[1].plugin = None;
    builtin.operators[1].aggregate = Some(weir_spec::AggregateSpec::Avg("/temperature".into()));
    run_job(&builtin, &JobOptions::default(), &engine).unwrap();
    let averages = |dir: &std::path::Path, id: &str, avg: &str| -> Vec<(String, i64, String)> {
        let mut v: Vec<(String, i64, String)> = read_lines(dir, "out")
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| {
                let end = v["window_end"].as_i64().unwrap();
                (v[id].as_str().unwrap().to_string(), end, format!("{:.6}", v[avg].as_f64().unwrap()))
            })
            .collect();
        v.sort();
        v
    };
    let by_plugin = averages(plugin_out.path(), "id", "avg_c");
    assert_eq!(by_plugin.len(), 120);
    assert_eq!(averages(builtin_out.path(), "key", "avg"), by_plugin);
}

#[test]
fn a_wasm_aggregate_merges_sessions_and_dead_letters_what_it_cannot_add() {
    for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
        for parallelism in [1, 4] {
            let (out, errors, report) = run_windows("window-aggregate", backend, parallelism);
            assert_windows(out, lines_of("window-aggregate", "expected.jsonl"), &format!("{backend:?}"), parallelism);
            assert_eq!(errors, lines_of("window-aggregate", "expected-errors.jsonl"), "{backend:?}");
            let node = report.nodes.iter().filter(|n| n.node == "averages");
            assert_eq!(node.map(|n| n.counters.get("records_failed").copied().unwrap_or(0)).sum::<u64>(), 1);
        }
    }
}

/// The window scenarios with a window processor (`window-collect`, which
/// lists each fired window's records) in place of their built-in aggregate.
#[test]
fn a_window_processor_sees_exactly_each_windows_records() {
    for name in ["window-tumbling", "window-sliding", "window-session", "window-count"] {
        for backend in [StateBackendKind::Memory, StateBackendKind::Rocksdb] {
            for parallelism in [1, 4] {
                let (got, late, _) = run_windows_with(name, backend, parallelism, |o| {
                    o.aggregate = None;
                    o.plugin = Some(weir_tests::plugin("window-collect"));
                });
                let what = format!("{name} {backend:?}");
                assert_windows(got, lines_of(name, "expected-records.jsonl"), &what, parallelism);
                if scenario(name).join("expected-late.jsonl").exists() {
                    assert_eq!(late, lines_of(name, "expected-late.jsonl"), "{name}");
                }
            }
        }
    }
}

#[test]
fn the_click_sessions_example_finds_every_burst() {
    let out = tempfile::tempdir().unwrap();
    let dir = weir_tests::repo().join("examples/click-sessions");
    let mut spec = weir_spec::JobSpec::load(&dir.join("job.yaml")).unwrap();
    spec.sinks[0].connector =
        weir_spec::SinkConnector::File(weir_spec::FileSink { path: out.path().join("out.jsonl") });
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
