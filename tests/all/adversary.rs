//! The host trusts nothing a plugin returns: the `adversary` guest (written
//! with wit-bindgen, not the SDK, in `tests/guests`) returns what the WIT
//! types allow and the host must refuse or bound. Each attack runs as a job
//! beside a healthy one in the same process, on memory and RocksDB: the
//! attack fails with its specific error (or is bounded, for logging), the
//! healthy job's output is exact, no task panics, and the process's peak
//! memory stays bounded.

use std::path::Path;
use std::time::Duration;

use weir_runtime::{JobOptions, RuntimeError, run_job, start};
use weir_spec::{Format, JobSpec};
use weir_tests::{committed_parts, plugin, read_lines};

/// Three keyed records, 10 ms apart.
fn write_input(dir: &Path, key: &str) -> std::path::PathBuf {
    let path = dir.join("in.jsonl");
    let lines: String = (1..=3).map(|i| format!("{{\"id\":\"{key}\",\"timestamp\":{}}}\n", i * 10)).collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// A job of the adversary with `attack`, then `rest` (operators and sinks).
fn adversary_job(dir: &Path, backend: &str, attack: &str, key: &str, rest: &str) -> JobSpec {
    let input = write_input(dir, key);
    let text = format!(
        "name: adversary
state: {{ backend: {backend} }}
sources:
  - {{ id: in, type: file, path: {input}, key: /id, timestamp: /timestamp, watermark: {{ punctuated: true }} }}
operators:
  - {{ id: adv, input: in, plugin: {adversary}, config: {attack} }}
{rest}",
        input = input.display(),
        adversary = plugin("adversary").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

fn into_blackhole(dir: &Path, backend: &str, attack: &str, key: &str) -> JobSpec {
    adversary_job(dir, backend, attack, key, "sinks: [{ id: out, type: blackhole, input: adv }]\n")
}

/// The healthy neighbour: the sensor job, checkpointed, into part files.
fn healthy(dir: &Path) -> JobSpec {
    let text = format!(
        "name: healthy
checkpoint: {{ interval: 100ms, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 10, seed: 2, start: 1700000000000, events: 8000,
       rate: 8000, watermark: {{ punctuated: true }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ window_ms: 1000 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

fn engine() -> weir_wasm::PluginEngine {
    weir_wasm::PluginEngine::new().unwrap()
}

/// Runs `attack`'s job beside the healthy one; returns the attack's error
/// (each backend must give the same) after checking the healthy output.
fn refused(attack: impl Fn(&Path, &str) -> JobSpec) -> String {
    // What the healthy job writes alone (computed once).
    static EXPECTED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let expected = EXPECTED.get_or_init(|| {
        let reference = tempfile::tempdir().unwrap();
        run_job(&healthy(reference.path()), &JobOptions::default(), &engine()).unwrap();
        committed_parts(&reference.path().join("out"))
    });
    let mut errors = Vec::new();
    for backend in ["memory", "rocksdb"] {
        let (dir, side) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let engine = engine();
        let neighbour = start(&healthy(side.path()), &JobOptions::default(), &engine).unwrap();
        let err = run_job(&attack(dir.path(), backend), &JobOptions::default(), &engine).unwrap_err();
        assert!(!matches!(err, RuntimeError::Panic { .. }), "a host panic: {err}");
        neighbour.wait().unwrap();
        assert_eq!(&committed_parts(&side.path().join("out")), expected, "the healthy neighbour, {backend}");
        errors.push(err.to_string());
    }
    assert_eq!(errors[0], errors[1], "memory and RocksDB fail alike");
    let peak = peak_rss_mb();
    assert!(peak < 2048.0, "the test process peaked at {peak} MB");
    errors.pop().unwrap()
}

/// The process's peak resident memory so far (MB).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim();
    kb.parse::<f64>().unwrap() / 1024.0
}

fn contract(message: &str) -> String {
    format!("task adv-0/1 failed: plugin broke the weir:plugin contract: {message}")
}

#[test]
fn an_error_for_a_record_the_call_did_not_have_is_a_contract_error() {
    let err = refused(|dir, backend| into_blackhole(dir, backend, "error-index", "k"));
    // Punctuated watermarks: the source sends each record in a batch of its own.
    assert_eq!(err, contract("it returned an error for record #1001 of a call with 1"));
}

#[test]
fn two_states_of_one_name_are_refused_at_init() {
    let err = refused(|dir, backend| into_blackhole(dir, backend, "duplicate-state", "k"));
    assert_eq!(err, "task adv-0/1 failed: state `x` is declared twice");
}

#[test]
fn results_that_point_at_the_same_bytes_many_times_are_refused_before_they_are_copied() {
    let err = refused(|dir, backend| into_blackhole(dir, backend, "amplify", "k"));
    let bytes = 4096 * (16 + (1u64 << 20));
    assert_eq!(
        err,
        format!(
            "task adv-0/1 failed: plugin went past a limit in `process`: its results come to {} once copied, and \
             limits.max_output is 256 MiB",
            weir_wasm::human_bytes(bytes)
        )
    );
    let err = refused(|dir, backend| into_blackhole(dir, backend, "amplify-state", "k"));
    // Each update: itself, its one-byte key and its 1 MiB operand.
    let bytes = 4096 * (16 + (16 + 1) + (16 + (1u64 << 20)));
    assert!(err.contains(&format!("its results come to {} once copied", weir_wasm::human_bytes(bytes))), "{err}");
}

#[test]
fn what_crosses_the_boundary_in_one_go_is_bounded_by_twice_the_output_budget() {
    let limited = |attack: &'static str| {
        refused(move |dir, backend| {
            let mut spec = into_blackhole(dir, backend, attack, "k");
            spec.operators[0].limits.max_output = Some(1 << 20);
            spec
        })
    };
    let said = |call: &str| {
        format!(
            "task adv-0/1 failed: plugin went past a limit in `{call}`: it handed the host more than 2 MiB (twice \
             limits.max_output) in one crossing of the component boundary (a call's results, or one import's \
             arguments)"
        )
    };
    // Bytes no span refers to: copied by wasmtime all the same.
    assert_eq!(limited("big-result"), said("process"));
    // The arguments of one `state.set`.
    assert_eq!(limited("big-set"), said("process"));
}

#[test]
fn counter_names_and_counts_are_bounded() {
    let err = refused(|dir, backend| into_blackhole(dir, backend, "counter-name", "k"));
    assert_eq!(err, contract("it reported a counter with a name of 1048576 bytes (at most 128)"));
    let err = refused(|dir, backend| into_blackhole(dir, backend, "counters", "k"));
    assert_eq!(err, contract("it reported more than 1000 distinct counters"));
}

#[test]
fn a_timer_that_registers_itself_again_cannot_keep_the_host_firing() {
    let err = refused(|dir, backend| into_blackhole(dir, backend, "timer-storm", "k"));
    assert_eq!(
        err,
        "task adv-0/1 failed: plugin went past a limit in `on-timer`: it registered 100001 timers for times already \
         due while timers fired (at most 100000): each would fire again at once"
    );
}

#[test]
fn event_times_at_the_edges_of_time_give_windows_that_end_after_they_start() {
    for backend in ["memory", "rocksdb"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let rest = format!(
            "  - {{ id: counts, input: adv, key_by: key, window: {{ tumbling: 1s, late_output: late }}, aggregate: count }}
sinks:
  - {{ id: out, type: file, path: {}, input: counts }}
  - {{ id: late, type: file, path: {}, input: counts.late }}
",
            out.display(),
            dir.path().join("late.jsonl").display()
        );
        let spec = adversary_job(dir.path(), backend, "time-edge", "k", &rest);
        run_job(&spec, &JobOptions::default(), &engine()).unwrap();
        let (min, max) = (i64::MIN, i64::MAX);
        assert_eq!(
            read_lines(dir.path(), "out"),
            [
                // The first reading at the smallest time opens its window, the
                // watermark then closes it; the other two come late.
                format!(r#"{{"key":"k","window_start":{min},"window_end":{},"count":1}}"#, min + 808),
                // At the largest time: the window ends there (it cannot end later).
                format!(r#"{{"key":"k","window_start":{},"window_end":{max},"count":3}}"#, max - 807),
            ],
            "{backend}"
        );
        assert_eq!(read_lines(dir.path(), "late").len(), 2, "{backend}");
    }
}

#[test]
fn the_logging_import_is_cut_escaped_and_rate_limited_like_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("job.yaml");
    let input = write_input(dir.path(), "k");
    std::fs::write(
        &spec_path,
        format!(
            "name: chatty\nsources: [{{ id: in, type: file, path: {}, key: /id, timestamp: /timestamp }}]\n\
             operators: [{{ id: adv, input: in, plugin: {}, config: log-flood }}]\n\
             sinks: [{{ id: out, type: blackhole, input: adv }}]\n",
            input.display(),
            plugin("adversary").display()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(weir_tests::weir_bin())
        .args(["run", spec_path.to_str().unwrap(), "--progress", "0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let took = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let plugin_lines: Vec<&str> = log.lines().filter(|l| l.contains("weir::plugin")).collect();
    // 10,000 messages per call: 100 a second get through, the rest are counted.
    assert!(
        !plugin_lines.is_empty() && plugin_lines.len() <= 100 * (took.as_secs() as usize + 2),
        "{}",
        plugin_lines.len()
    );
    assert!(log.contains("plugin output lines dropped (rate limit)"), "{log}");
    for line in &plugin_lines {
        assert!(line.len() <= 4096 + 200, "a line of {} bytes", line.len());
        assert!(line.contains(r"line one\nINFO weir: forged line\u{1b}[31m"), "escaped: {line}");
    }
    assert!(!log.lines().any(|l| l.starts_with("INFO weir: forged")), "a forged line");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

/// A job whose keyed 1 s window computes `plugin` with `attack` (and `limits`).
fn window_job(dir: &Path, backend: &str, plugin_name: &str, attack: &str, limits: &str) -> JobSpec {
    let input = write_input(dir, "k");
    let text = format!(
        "name: adversary
state: {{ backend: {backend} }}
sources:
  - {{ id: in, type: file, path: {input}, key: /id, timestamp: /timestamp, watermark: {{ punctuated: true }} }}
operators:
  - {{ id: win, input: in, key_by: key, window: {{ tumbling: 1s }}, plugin: {plugin}, config: {attack}, limits: {{ {limits} }} }}
sinks: [{{ id: out, type: blackhole, input: win }}]
",
        input = input.display(),
        plugin = plugin(plugin_name).display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

#[test]
fn an_aggregator_is_held_to_the_same_contract_and_budget() {
    let agg = |attack: &'static str, limits: &'static str| {
        refused(move |dir, backend| window_job(dir, backend, "adversary-aggregator", attack, limits))
    };
    assert_eq!(
        agg("error-index", ""),
        "task win-0/1 failed: plugin broke the weir:plugin contract: `add` returned an error for record #8 of a batch \
         of 1"
    );
    assert_eq!(
        agg("amplify", ""),
        format!(
            "task win-0/1 failed: plugin went past a limit in `add`: its results come to {} once copied, and \
             limits.max_output is 256 MiB",
            weir_wasm::human_bytes(4096 * (16 + (1 << 20)))
        )
    );
    assert_eq!(
        agg("wrong-count", ""),
        "task win-0/1 failed: plugin broke the weir:plugin contract: `add` returned 0 accumulators for 1"
    );
    assert_eq!(
        agg("amplify-result", "max_output: 1MiB"),
        format!(
            "task win-0/1 failed: plugin went past a limit in `get-result`: its results come to {} once copied, and \
             limits.max_output is 1 MiB",
            weir_wasm::human_bytes(16 + (1 << 20))
        )
    );
}

#[test]
fn an_aggregator_refusing_a_record_it_was_not_given_cannot_make_the_host_assign_forever() {
    // Count windows assign the batch again without a refused record; the
    // three records come in one batch (periodic watermarks), and the plugin
    // refuses record 0 even once it is no longer given.
    let err = refused(|dir, backend| {
        let mut spec = window_job(dir, backend, "adversary-aggregator", "refuse-first", "");
        spec.sources[0].watermark.punctuated = false;
        let o = &mut spec.operators[0];
        o.window = Some(weir_spec::WindowSpec {
            count: Some(weir_spec::CountSpec { size: 2, slide: 2 }),
            ..weir_spec::WindowSpec::default()
        });
        o.on_error = weir_spec::OnError::Skip;
        spec
    });
    assert_eq!(
        err,
        "task win-0/1 failed: plugin broke the weir:plugin contract: `add` refused record #0, which it was not given"
    );
}

#[test]
fn a_window_processor_is_held_to_max_emitted_and_the_budget() {
    let process =
        |attack: &'static str| refused(move |dir, backend| window_job(dir, backend, "adversary-processor", attack, ""));
    assert_eq!(
        process("flood"),
        "task win-0/1 failed: plugin went past a limit in `process`: it emitted 2000000 values for 1 windows \
         (limits.max_emitted is 1000000)"
    );
    assert_eq!(
        process("amplify"),
        format!(
            "task win-0/1 failed: plugin went past a limit in `process`: its results come to {} once copied, and \
             limits.max_output is 256 MiB",
            weir_wasm::human_bytes(1024 * (16 + (1 << 20) + 1))
        )
    );
    assert_eq!(
        process("window-index"),
        "task win-0/1 failed: plugin broke the weir:plugin contract: `process` returned a value for window 4 of 1"
    );
}
