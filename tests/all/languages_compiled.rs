//! How operators written with the Go SDK (`sdk/go`) and the C SDK (`sdk/c`)
//! fail: a returned Go error, a Go panic and a C `weir_fail` fail the
//! record with the guest's own text (and follow `on_error`); a C trap fails
//! the task, naming the node; a failing `Open` fails the task with its
//! message. Their results are compared with Rust's in `languages.rs`.

use std::path::Path;

use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::{plugin, read_lines};

use crate::languages::{READINGS, dead_letter_sink, failing_job};

fn json_lines(dir: &Path, name: &str) -> Vec<serde_json::Value> {
    read_lines(dir, name).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_go_error_or_a_c_failure_fails_the_record_with_the_guests_text_under_on_error() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    for (celsius, message) in [
        ("go/celsius", "the reading has no temperature"),
        ("c/celsius", r#"not a reading (id, timestamp, temperature): {"id":"b","timestamp":2}"#),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let err = run_job(&failing_job(dir.path(), celsius, READINGS, "null", "fail"), &JobOptions::default(), &engine)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("task celsius-0/1 failed: plugin failed on record #1 of its batch: {message}")
        );

        let dir = tempfile::tempdir().unwrap();
        let job = failing_job(dir.path(), celsius, READINGS, "null", "dead-letter");
        let report = run_job(&job, &JobOptions::default(), &engine).unwrap();
        let out: Vec<(String, f64)> = json_lines(dir.path(), "out")
            .iter()
            .map(|v| (v["id"].as_str().unwrap().to_string(), v["temperature"].as_f64().unwrap()))
            .collect();
        assert_eq!(out, [("a".to_string(), 100.0), ("c".to_string(), 0.0)], "{celsius}");
        assert_eq!(
            json_lines(dir.path(), "dead"),
            [serde_json::json!({"node": "celsius", "error": message, "timestamp": 2, "key": "b",
                "value": {"id": "b", "timestamp": 2}})],
            "{celsius}"
        );
        let node = report.nodes.iter().find(|n| n.node == "celsius").unwrap();
        assert_eq!(node.counters.get("records_failed"), Some(&1), "{celsius}");
    }
}

/// A job of state-probe commands (keyed by `/key`) through `probe`.
fn probe_job(dir: &Path, probe: &str, commands: &str, on_error: &str) -> JobSpec {
    std::fs::write(dir.join("in.jsonl"), commands).unwrap();
    let text = format!(
        "name: probe
sources: [{{ id: src, type: file, path: {input}, key: /key, timestamps: ingestion }}]
operators: [{{ id: probe, input: src, key_by: key, plugin: {probe}, on_error: {on_error} }}]
sinks:
  - {{ id: out, type: file, path: {out}, input: probe }}
{dead}",
        input = dir.join("in.jsonl").display(),
        probe = plugin(probe).display(),
        out = dir.join("out.jsonl").display(),
        dead = dead_letter_sink(dir, "probe", on_error),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

const PANICKING: &str = concat!(
    r#"{"key":"a","op":"add","item":"x"}"#,
    "\n",
    r#"{"key":"b","op":"panic","item":"boom"}"#,
    "\n",
    r#"{"key":"a","op":"add","item":"y"}"#,
    "\n"
);

#[test]
fn a_go_panic_fails_the_record_with_its_value_and_line_and_the_rest_of_the_batch_goes_on() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let message = "panic: boom (at main.go:104 in main.(*probe).Process)";
    let dir = tempfile::tempdir().unwrap();
    let err = run_job(&probe_job(dir.path(), "go/state-probe", PANICKING, "fail"), &JobOptions::default(), &engine)
        .unwrap_err();
    assert_eq!(err.to_string(), format!("task probe-0/1 failed: plugin failed on record #1 of its batch: {message}"));

    let dir = tempfile::tempdir().unwrap();
    run_job(&probe_job(dir.path(), "go/state-probe", PANICKING, "dead-letter"), &JobOptions::default(), &engine)
        .unwrap();
    assert_eq!(
        json_lines(dir.path(), "out"),
        [
            serde_json::json!({"key": "a", "count": 1, "items": ["x"], "tags": {"x": 1}}),
            serde_json::json!({"key": "a", "count": 2, "items": ["x", "y"], "tags": {"x": 1, "y": 2}}),
        ]
    );
    let dead = json_lines(dir.path(), "dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0]["error"].as_str(), dead[0]["key"].as_str()), (Some(message), Some("b")));
}

#[test]
fn a_c_trap_fails_the_task_naming_the_node_and_an_unknown_command_fails_only_its_record() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let commands = concat!(r#"{"key":"a","op":"add","item":"x"}"#, "\n", r#"{"key":"b","op":"jump"}"#, "\n");
    let dir = tempfile::tempdir().unwrap();
    run_job(&probe_job(dir.path(), "c/state-probe", commands, "dead-letter"), &JobOptions::default(), &engine).unwrap();
    assert_eq!(
        json_lines(dir.path(), "out"),
        [serde_json::json!({"key": "a", "count": 1, "items": ["x"], "tags": {"x": 1}})]
    );
    let dead = json_lines(dir.path(), "dead");
    assert_eq!((dead.len(), dead[0]["error"].as_str()), (1, Some(r#"unknown op "jump""#)));

    let dir = tempfile::tempdir().unwrap();
    let trapping = format!("{commands}{}\n", r#"{"key":"c","op":"trap"}"#);
    let err =
        run_job(&probe_job(dir.path(), "c/state-probe", &trapping, "dead-letter"), &JobOptions::default(), &engine)
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with(
            "task probe-0/1 failed: plugin trapped in `process`: wasm trap: wasm `unreachable` instruction executed"
        ),
        "{err}"
    );
}

#[test]
fn a_go_or_c_open_that_fails_fails_the_task_with_its_message() {
    let engine = weir_wasm::PluginEngine::new().unwrap();
    for (average, config, message) in [
        ("go/sensor-average", "{ window_ms: -5 }", "plugin failed in `init`: window_ms must be positive, got -5"),
        ("c/sensor-average", "{ window_ms: -5 }", "plugin failed in `init`: window_ms must be positive, got -5"),
        (
            "go/sensor-average",
            "{ input: yaml }",
            r#"plugin failed in `init`: config: an encoding is json or binary, got "yaml""#,
        ),
        ("c/sensor-average", "{ input: yaml }", r#"plugin failed in `init`: input must be json or binary, got "yaml""#),
        // JSON readings where binary ones were promised.
        (
            "go/sensor-average",
            "{ input: binary }",
            "plugin failed on record #0 of its batch: invalid binary value: it ends inside a field",
        ),
        (
            "c/sensor-average",
            "{ input: binary }",
            "plugin failed on record #0 of its batch: not a binary reading (id, timestamp, temperature): 64 bytes",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name: bad-config
sources: [{{ id: readings, type: generator, generator: sensors, sensors: 2, seed: 1, start: 1700000000000, events: 10 }}]
operators:
  - {{ id: averages, input: readings, key_by: key, plugin: {average}, config: {config} }}
sinks: [{{ id: out, type: file, path: {out}, input: averages }}]
",
            average = plugin(average).display(),
            out = dir.path().join("out.jsonl").display(),
        );
        let err = run_job(&JobSpec::parse(&text, Format::Yaml).unwrap(), &JobOptions::default(), &engine).unwrap_err();
        assert_eq!(err.to_string(), format!("task averages-0/1 failed: {message}"), "{average} {config}");
    }
}

/// The sensor-bench pipeline (200,000 readings in large batches) through
/// Go, against Rust: the Go garbage collector runs many times, and it must
/// never run while the host writes a call's arguments into the plugin
/// (where a Go collection used to trap with "cannot leave component
/// instance").
#[test]
fn go_plugins_give_the_rust_averages_over_200k_readings_while_their_collector_runs() {
    let run = |celsius: &str, average: &str| {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name: sensor-bench
sources: [{{ id: readings, type: generator, generator: sensor-bench, events: 200000 }}]
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average} }}
sinks: [{{ id: out, type: file, path: {out}, input: averages }}]
",
            celsius = plugin(celsius).display(),
            average = plugin(average).display(),
            out = dir.path().join("out.jsonl").display(),
        );
        let engine = weir_wasm::PluginEngine::new().unwrap();
        run_job(&JobSpec::parse(&text, Format::Yaml).unwrap(), &JobOptions::default(), &engine).unwrap();
        let mut averages: Vec<(String, i64, u64, f64)> = json_lines(dir.path(), "out")
            .iter()
            .map(|v| {
                let id = v["id"].as_str().unwrap().to_string();
                (id, v["window_end"].as_i64().unwrap(), v["count"].as_u64().unwrap(), v["avg_c"].as_f64().unwrap())
            })
            .collect();
        averages.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        averages
    };
    let rust = run("celsius", "sensor-average");
    let go = run("go/celsius", "go/sensor-average");
    assert!(rust.len() > 100, "{} averages", rust.len());
    assert_eq!(go.len(), rust.len());
    for (g, r) in go.iter().zip(&rust) {
        assert_eq!((&g.0, g.1, g.2), (&r.0, r.1, r.2));
        assert!((g.3 - r.3).abs() <= 1e-9, "{g:?} vs {r:?}");
    }
}

/// Runs a compiler command, failing with its output.
fn compile(command: &mut std::process::Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e} (scripts/setup.sh installs the compilers)"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The C SDK's conversions, compiled natively (`sdk/c/test/conversions.c`)
/// and checked against glibc: decimals read as `strtod` reads them,
/// numbers written shortest that read back the same, JSON members and
/// escapes, and the binary fields in postcard's layout.
#[test]
fn the_c_sdks_conversions_agree_with_glibc_and_postcard() {
    use std::process::Command;
    let sdk = weir_tests::repo().join("sdk/c");
    let dir = tempfile::tempdir().unwrap();
    let numbers = dir.path().join("weir_numbers.o");
    compile(
        Command::new("c++")
            .args(["-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&sdk)
            .arg("-c")
            .arg(sdk.join("weir_numbers.cc"))
            .arg("-o")
            .arg(&numbers),
    );
    let exe = dir.path().join("conversions");
    compile(
        Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&sdk)
            .arg(sdk.join("test/conversions.c"))
            .args(["weir_json.c", "weir_json_write.c", "weir_bin.c"].map(|f| sdk.join(f)))
            .arg(&numbers)
            .args(["-lstdc++", "-lm", "-o"])
            .arg(&exe),
    );
    let out = Command::new(&exe).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "500000 numbers read as strtod reads them, 500000 written shortest and read back; JSON and binary fields as \
         expected\n"
    );
    assert!(out.status.success());
}
