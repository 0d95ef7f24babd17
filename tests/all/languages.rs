//! Operators written with the Python SDK (`sdk/python`, built by
//! componentize-py: `plugins/python/`), the JavaScript SDK (`sdk/js`,
//! componentize-js: `plugins/js/`), the Go SDK (`sdk/go`: `plugins/go/`)
//! and the C SDK (`sdk/c`: `plugins/c/`) give the Rust plugins' results,
//! and fail the way the Rust ones do (the Go and C failures:
//! `languages_compiled.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec, StateBackendKind};
use weir_tests::{plugin, read_lines};

/// 20 sensors × 300 readings out of order by up to `disorder`, a watermark
/// bound of 300 ms after every reading (punctuated: with periodic
/// watermarks, which readings are late depends on how fast the job runs).
fn sensor_job(parallelism: u32, disorder: &str, celsius: &str, average: &str, binary: bool, out: &Path) -> JobSpec {
    let (output, input) = if binary { (", config: { output: binary }", ", input: binary") } else { ("", "") };
    let text = format!(
        "name: languages
parallelism: {parallelism}
batch_size: 100
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 20, seed: 5, start: 1700000000000, events: 6000,
       disorder: {disorder}, watermark: {{ max_out_of_orderness: 300ms, punctuated: true }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius}{output} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ window_ms: 2000{input} }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        celsius = plugin(celsius).display(),
        average = plugin(average).display(),
        out = out.join("out.jsonl").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

/// Per (sensor, window end): the count and the average.
type Averages = BTreeMap<(String, i64), (u64, f64)>;

/// At parallelism 1 the readings are out of order by up to 800 ms: some are
/// late, and which ones is decided by the one source's watermark alone. At
/// 4 the averaging node's watermark is the least of four inputs', so which
/// readings are late depends on how the inputs interleave (as in Flink):
/// there the readings stay within the bound, out of order but never late.
pub(crate) fn run(parallelism: u32, backend: StateBackendKind, celsius: &str, average: &str) -> (Averages, u64) {
    run_encoded(parallelism, backend, celsius, average, false)
}

/// `run`, with the readings between the operators in JSON or, when
/// `binary`, in the Rust plugins' binary layout (`output: binary` on
/// celsius, `input: binary` on the average).
fn run_encoded(
    parallelism: u32,
    backend: StateBackendKind,
    celsius: &str,
    average: &str,
    binary: bool,
) -> (Averages, u64) {
    let disorder = if parallelism == 1 { "800ms" } else { "300ms" };
    let dir = tempfile::tempdir().unwrap();
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let options = JobOptions { state_backend: Some(backend), ..JobOptions::default() };
    let report =
        run_job(&sensor_job(parallelism, disorder, celsius, average, binary, dir.path()), &options, &engine).unwrap();
    let late = report
        .nodes
        .iter()
        .filter(|n| n.node == "averages")
        .map(|n| n.counters.get("late_records_dropped").copied().unwrap_or(0))
        .sum();
    let mut averages = Averages::new();
    for line in read_lines(dir.path(), "out") {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let key = (v["id"].as_str().unwrap().to_string(), v["window_end"].as_i64().unwrap());
        let old = averages.insert(key, (v["count"].as_u64().unwrap(), v["avg_c"].as_f64().unwrap()));
        assert!(old.is_none(), "one average per sensor and window: {line}");
    }
    (averages, late)
}

pub(crate) fn assert_same(got: &(Averages, u64), expected: &(Averages, u64), what: &str) {
    assert_eq!(got.1, expected.1, "{what}: late readings dropped");
    assert_eq!(got.0.len(), expected.0.len(), "{what}: windows");
    for ((key, (count, avg)), (expected_key, (expected_count, expected_avg))) in got.0.iter().zip(&expected.0) {
        assert_eq!((key, count), (expected_key, expected_count), "{what}");
        assert!((avg - expected_avg).abs() <= 1e-9, "{what}: {key:?} {avg} vs {expected_avg}");
    }
}

#[test]
fn every_languages_plugins_give_the_rust_averages_with_late_data_on_both_backends_at_parallelism_1_and_4() {
    for (parallelism, backend) in [
        (1, StateBackendKind::Memory),
        (1, StateBackendKind::Rocksdb),
        (4, StateBackendKind::Memory),
        (4, StateBackendKind::Rocksdb),
    ] {
        let what = format!("parallelism {parallelism}, {backend:?}");
        let rust = run(parallelism, backend, "celsius", "sensor-average");
        let counted: u64 = rust.0.values().map(|(c, _)| c).sum();
        assert_eq!(counted + rust.1, 6000, "{what}: each reading is late or in one average");
        assert_eq!(rust.1 > 0, parallelism == 1, "{what}: late readings only at parallelism 1: {}", rust.1);
        assert_same(
            &run(parallelism, backend, "python/celsius", "python/sensor-average"),
            &rust,
            &format!("{what}, Python"),
        );
        assert_same(
            &run(parallelism, backend, "python/celsius", "sensor-average"),
            &rust,
            &format!("{what}, Python celsius → Rust"),
        );
        assert_same(
            &run(parallelism, backend, "celsius", "python/sensor-average"),
            &rust,
            &format!("{what}, Rust → Python average"),
        );
        for (celsius, average) in [
            ("js/celsius", "js/sensor-average"),
            ("js/celsius", "sensor-average"),
            ("celsius", "js/sensor-average"),
            ("python/celsius", "js/sensor-average"),
            ("go/celsius", "go/sensor-average"),
            ("go/celsius", "sensor-average"),
            ("celsius", "go/sensor-average"),
            ("python/celsius", "go/sensor-average"),
            ("c/celsius", "c/sensor-average"),
            ("c/celsius", "sensor-average"),
            ("celsius", "c/sensor-average"),
            ("go/celsius", "c/sensor-average"),
        ] {
            assert_same(&run(parallelism, backend, celsius, average), &rust, &format!("{what}, {celsius} → {average}"));
        }
    }
}

/// With the readings between the operators in the Rust plugins' binary
/// layout (postcard: what the SDKs' `BinWriter`s and the C SDK's
/// `weir_bin_*` write), every language's plugins give the same averages as
/// the Rust ones with JSON, among themselves and mixed with Rust's.
#[test]
fn every_languages_plugins_give_the_rust_averages_with_binary_readings_between_them() {
    for (parallelism, backend) in [(1, StateBackendKind::Memory), (4, StateBackendKind::Rocksdb)] {
        let what = format!("parallelism {parallelism}, {backend:?}, binary");
        let rust = run(parallelism, backend, "celsius", "sensor-average");
        assert!(!rust.0.is_empty());
        for (celsius, average) in [
            ("celsius", "sensor-average"),
            ("go/celsius", "go/sensor-average"),
            ("go/celsius", "sensor-average"),
            ("celsius", "go/sensor-average"),
            ("c/celsius", "c/sensor-average"),
            ("c/celsius", "sensor-average"),
            ("celsius", "c/sensor-average"),
            ("go/celsius", "c/sensor-average"),
            ("c/celsius", "go/sensor-average"),
            ("python/celsius", "sensor-average"),
            ("celsius", "python/sensor-average"),
            ("js/celsius", "sensor-average"),
            ("celsius", "js/sensor-average"),
            ("python/celsius", "js/sensor-average"),
        ] {
            let got = run_encoded(parallelism, backend, celsius, average, true);
            assert_same(&got, &rust, &format!("{what}, {celsius} → {average}"));
        }
    }
}

/// Under `on_error: dead-letter`, a sink writing `node`'s errors to
/// `dir/dead.jsonl` (a line of the job's `sinks`); nothing otherwise.
pub(crate) fn dead_letter_sink(dir: &Path, node: &str, on_error: &str) -> String {
    if on_error != "dead-letter" {
        return String::new();
    }
    format!("  - {{ id: dead, type: file, path: {}, input: {node}.errors }}\n", dir.join("dead.jsonl").display())
}

pub(crate) fn failing_job(dir: &Path, celsius: &str, input: &str, celsius_config: &str, on_error: &str) -> JobSpec {
    std::fs::write(dir.join("in.jsonl"), input).unwrap();
    let text = format!(
        "name: failing
sources: [{{ id: src, type: file, path: {input}, key: /id, timestamp: /timestamp }}]
operators:
  - {{ id: celsius, input: src, plugin: {celsius}, config: {celsius_config}, on_error: {on_error} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: celsius }}
{dead}",
        input = dir.join("in.jsonl").display(),
        celsius = plugin(celsius).display(),
        out = dir.join("out.jsonl").display(),
        dead = dead_letter_sink(dir, "celsius", on_error),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

pub(crate) const READINGS: &str = "{\"id\":\"a\",\"timestamp\":1,\"temperature\":212}\n{\"id\":\"b\",\"timestamp\":2}\n{\"id\":\"c\",\"timestamp\":3,\"temperature\":32}\n";

#[test]
fn a_python_exception_fails_the_record_with_its_type_text_and_line_under_on_error() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err =
        run_job(&failing_job(dir.path(), "python/celsius", READINGS, "null", "fail"), &JobOptions::default(), &engine)
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task celsius-0/1 failed: plugin failed on record #1 of its batch: KeyError: 'temperature' (at app.py:18 in process)"
    );

    let dir = tempfile::tempdir().unwrap();
    let report = run_job(
        &failing_job(dir.path(), "python/celsius", READINGS, "null", "dead-letter"),
        &JobOptions::default(),
        &engine,
    )
    .unwrap();
    let out = read_lines(dir.path(), "out");
    assert_eq!(
        out,
        [r#"{"id":"a","timestamp":1,"temperature":100.0}"#, r#"{"id":"c","timestamp":3,"temperature":0.0}"#]
    );
    let dead: Vec<serde_json::Value> =
        read_lines(dir.path(), "dead").iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        dead,
        [
            serde_json::json!({"node": "celsius", "error": "KeyError: 'temperature' (at app.py:18 in process)", "timestamp": 2,
            "key": "b", "value": {"id": "b", "timestamp": 2}})
        ]
    );
    let node = report.nodes.iter().find(|n| n.node == "celsius").unwrap();
    assert_eq!(node.counters.get("records_failed"), Some(&1));
}

/// An exception raised below the operator's own code (in the SDK or in
/// Python's library: here the list state's `list(values)` of a number)
/// names the operator's line that led to it, not the library's.
#[test]
fn a_python_exception_from_below_the_operator_names_the_operators_line() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let replace_with_a_number = "{\"id\":\"a\",\"timestamp\":1,\"op\":\"replace\",\"items\":5}\n";
    let err = run_job(
        &failing_job(dir.path(), "python/state-probe", replace_with_a_number, "null", "fail"),
        &JobOptions::default(),
        &engine,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task celsius-0/1 failed: plugin failed on record #0 of its batch: TypeError: 'int' object is not iterable (at \
         app.py:35 in process)"
    );
}

#[test]
fn a_python_exception_in_open_fails_the_task_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: bad-config
sources: [{{ id: readings, type: generator, generator: sensors, sensors: 2, seed: 1, start: 1700000000000, events: 10 }}]
operators:
  - {{ id: averages, input: readings, key_by: key, plugin: {average}, config: {{ window_ms: -5 }} }}
sinks: [{{ id: out, type: file, path: {out}, input: averages }}]
",
        average = plugin("python/sensor-average").display(),
        out = dir.path().join("out.jsonl").display(),
    );
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let err = run_job(&JobSpec::parse(&text, Format::Yaml).unwrap(), &JobOptions::default(), &engine).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task averages-0/1 failed: plugin failed in `init`: ValueError: window_ms must be positive, got -5 (at app.py:33 in open)"
    );
}

/// The Rust state-probe's script through a Python or JS one: value, list
/// and map state, prefetched or through host calls, on memory and RocksDB.
fn check_state(mut h: weir_runtime::harness::OperatorHarness) {
    use weir_state::StateContent;
    let (batches, expected) = crate::state_kinds::script();
    for batch in batches {
        h.process(batch).unwrap();
    }
    let seen: Vec<serde_json::Value> =
        h.take_output().iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    assert_eq!(seen, expected);
    // Every value is JSON.
    let contents = |h: &mut weir_runtime::harness::OperatorHarness, name| crate::state_kinds::contents(h, name);
    assert_eq!(
        contents(&mut h, "count"),
        [("a".into(), StateContent::Value(b"4".to_vec())), ("b".into(), StateContent::Value(b"1".to_vec()))]
    );
    assert_eq!(contents(&mut h, "items"), [("b".into(), StateContent::List(vec![b"\"w\"".to_vec()]))]);
    assert_eq!(
        contents(&mut h, "tags"),
        [
            (
                "a".into(),
                StateContent::Map(vec![(b"\"r\"".to_vec(), b"4".to_vec()), (b"\"x\"".to_vec(), b"3".to_vec())])
            ),
            ("b".into(), StateContent::Map(vec![(b"\"w\"".to_vec(), b"1".to_vec())])),
        ]
    );
}

#[test]
fn every_languages_state_of_every_kind_prefetched_or_through_the_host_on_both_backends() {
    use weir_runtime::harness::OperatorHarness;
    for probe in ["python/state-probe", "js/state-probe", "go/state-probe", "c/state-probe"] {
        let probe = plugin(probe);
        for config in [serde_json::Value::Null, serde_json::json!({"large": true})] {
            check_state(OperatorHarness::new(&probe, config.clone()).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let backend = Box::new(weir_state_rocksdb::RocksDbBackend::open(dir.path(), 128).unwrap());
            check_state(OperatorHarness::with_backend(&probe, config, backend).unwrap());
        }
    }
}

#[test]
fn every_languages_event_and_processing_timers_fire_once_and_deleted_ones_never() {
    for probe in ["python/state-probe", "js/state-probe", "go/state-probe", "c/state-probe"] {
        timers_fire_once(probe);
    }
}

fn timers_fire_once(probe: &str) {
    let mut h = weir_runtime::harness::OperatorHarness::new(&plugin(probe), serde_json::Value::Null).unwrap();
    let cmd = |key: &str, op: &str, at: i64, domain: &str| {
        let value = serde_json::json!({"op": op, "at": at, "domain": domain}).to_string().into_bytes();
        weir_types::Record::new(Some(key.as_bytes().to_vec()), value, 0)
    };
    h.process(vec![
        cmd("a", "timer", 10, "event"),
        cmd("b", "timer", 20, "event"),
        cmd("a", "timer", 30, "event"),
        cmd("a", "timer", 1000, "processing"),
        cmd("b", "timer", 2000, "processing"),
    ])
    .unwrap();
    h.process(vec![cmd("a", "untimer", 30, "event"), cmd("b", "untimer", 2000, "processing")]).unwrap();
    assert_eq!(h.timers().unwrap().len(), 3, "three timers left");
    let fired = |h: &mut weir_runtime::harness::OperatorHarness| -> Vec<serde_json::Value> {
        h.take_output().iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
    };
    h.watermark(15).unwrap();
    assert_eq!(fired(&mut h), [serde_json::json!({"key": "a", "fired": 10, "event_time": true})]);
    h.watermark(100).unwrap();
    assert_eq!(fired(&mut h), [serde_json::json!({"key": "b", "fired": 20, "event_time": true})]);
    h.set_processing_time(5000).unwrap();
    assert_eq!(fired(&mut h), [serde_json::json!({"key": "a", "fired": 1000, "event_time": false})]);
    h.watermark(i64::MAX).unwrap();
    h.set_processing_time(10_000).unwrap();
    assert_eq!(fired(&mut h), Vec::<serde_json::Value>::new(), "deleted timers never fire");
    assert_eq!(h.timers().unwrap().len(), 0);
}

/// Readings (celsius, in Rust) into a host window per sensor, averaged by
/// the `average` aggregate plugin `average`: the lines it writes, sorted.
fn windowed(window: &str, average: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: windowed
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 8, seed: 9, start: 1700000000000, events: 3000,
       disorder: 800ms, watermark: {{ max_out_of_orderness: 300ms, punctuated: true }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, window: {window}, plugin: {average} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
  - {{ id: late, type: file, path: {late}, input: averages.late }}
",
        celsius = plugin("celsius").display(),
        average = plugin(average).display(),
        out = dir.path().join("out.jsonl").display(),
        late = dir.path().join("late.jsonl").display(),
    );
    let engine = weir_wasm::PluginEngine::new().unwrap();
    run_job(&JobSpec::parse(&text, Format::Yaml).unwrap(), &JobOptions::default(), &engine).unwrap();
    let mut lines: Vec<serde_json::Value> =
        read_lines(dir.path(), "out").iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let late = read_lines(dir.path(), "late").len();
    lines.sort_by_key(|v| {
        (v["id"].as_str().unwrap().to_string(), v["window_end"].as_i64().unwrap(), v["count"].as_u64().unwrap())
    });
    lines.push(serde_json::json!({ "late": late }));
    lines
}

#[test]
fn the_python_and_js_average_aggregates_give_the_rust_ones_results_in_tumbling_sliding_and_session_windows() {
    for window in [
        "{ tumbling: 2s, allowed_lateness: 200ms, late_output: late }",
        "{ sliding: { size: 2s, slide: 500ms }, late_output: late }",
        "{ session: { gap: 150ms }, late_output: late }",
    ] {
        let rust = windowed(window, "average");
        for average in ["python/average", "js/average"] {
            let python = windowed(window, average);
            assert!(rust.len() > 10, "{window}: {} windows", rust.len());
            if window.contains("tumbling") {
                assert!(rust.last().unwrap()["late"].as_u64() > Some(0), "some readings are late: {:?}", rust.last());
            }
            assert_eq!(python.len(), rust.len(), "{window}, {average}");
            for (p, r) in python.iter().zip(&rust) {
                let strip = |v: &serde_json::Value| {
                    let mut v = v.clone();
                    v.as_object_mut().unwrap().remove("avg_c");
                    v
                };
                assert_eq!(strip(p), strip(r), "{window}");
                if let (Some(a), Some(b)) = (p["avg_c"].as_f64(), r["avg_c"].as_f64()) {
                    assert!((a - b).abs() <= 1e-9, "{window}: {p} vs {r}");
                }
            }
        }
    }
}

#[test]
fn a_js_throw_fails_the_record_or_init_with_its_name_message_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\":\"a\",\"timestamp\":1,\"temperature\":21}\n{\"id\":\"b\",\"temperature\":20}\n",
    )
    .unwrap();
    let job = |config: &str| {
        let text = format!(
            "name: js-errors
sources: [{{ id: src, type: file, path: {input}, key: /id, timestamps: ingestion }}]
operators: [{{ id: averages, input: src, key_by: key, plugin: {average}, config: {config} }}]
sinks: [{{ id: out, type: blackhole, input: averages }}]
",
            input = dir.path().join("in.jsonl").display(),
            average = plugin("js/sensor-average").display(),
        );
        let engine = weir_wasm::PluginEngine::new().unwrap();
        run_job(&JobSpec::parse(&text, Format::Yaml).unwrap(), &JobOptions::default(), &engine).unwrap_err().to_string()
    };
    // A reading without a timestamp: the window end is NaN, and the timer for it throws.
    assert_eq!(
        job("null"),
        "task averages-0/1 failed: plugin failed on record #1 of its batch: RangeError: NaN can't be converted to BigInt because it isn't an integer (at app.js:37:11)"
    );
    assert_eq!(
        job("{ window_ms: -5 }"),
        "task averages-0/1 failed: plugin failed in `init`: RangeError: window_ms must be positive, got -5 (at app.js:15:37)"
    );
}

#[test]
fn a_python_or_js_plugin_that_loops_or_hoards_memory_fails_its_job_alone() {
    use crate::sandbox::{healthy_job, hostile_job_of};
    let engine = weir_wasm::PluginEngine::new().unwrap();
    // The sandbox suite's limits (the Python and JS runtimes start well within them).
    let limits = "{memory: 64MiB, call_timeout: 1s}";
    let cases = [
        (
            "loop",
            "task bad-0/1 failed: plugin went past a limit in `process`: call deadline of 1s passed: the call was interrupted",
        ),
        (
            "grow",
            "task bad-0/1 failed: plugin went past a limit in `process`: memory limit of 64 MiB reached: the plugin asked to grow its memory from ",
        ),
    ];
    let alone = tempfile::tempdir().unwrap();
    run_job(&healthy_job(alone.path()), &JobOptions::default(), &engine).unwrap();
    let beside_dir = tempfile::tempdir().unwrap();
    let healthy = healthy_job(beside_dir.path());
    std::thread::scope(|scope| {
        let beside = scope.spawn(|| run_job(&healthy, &JobOptions::default(), &engine));
        for hostile in ["python/hostile", "js/hostile"] {
            for (mode, expected) in cases {
                let dir = tempfile::tempdir().unwrap();
                let started = std::time::Instant::now();
                let err = run_job(&hostile_job_of(hostile, dir.path(), mode, limits), &JobOptions::default(), &engine)
                    .unwrap_err()
                    .to_string();
                assert!(err.starts_with(expected), "{hostile} {mode}: {err}");
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "{hostile} {mode} took {:?}",
                    started.elapsed()
                );
            }
        }
        beside.join().unwrap().expect("the healthy job beside them");
    });
    assert_eq!(read_lines(beside_dir.path(), "out"), read_lines(alone.path(), "out"));
}
