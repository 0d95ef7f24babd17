//! The sandbox: misbehaving plugins fail their own job with a clear error
//! naming the node and the cause, within bounded time, while another job in
//! the same process keeps producing correct results; load-time validation;
//! per-record failure policies.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_runtime::{JobOptions, RuntimeError, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::{plugin, read_lines};
use weir_wasm::PluginEngine;

fn job(dir: &Path, text: &str) -> JobSpec {
    let mut spec = JobSpec::parse(text, Format::Yaml).unwrap_or_else(|e| panic!("{e}\n{text}"));
    spec.resolve_paths(dir);
    spec
}

/// Three records; the hostile plugin attacks on the second.
fn hostile_job(dir: &Path, mode: &str, limits: &str) -> JobSpec {
    hostile_job_of("hostile", dir, mode, limits)
}

/// The same with the hostile plugin `name` (`python/hostile`…).
pub(crate) fn hostile_job_of(name: &str, dir: &Path, mode: &str, limits: &str) -> JobSpec {
    std::fs::write(dir.join("in.jsonl"), "\"a\"\n\"attack\"\n\"b\"\n").unwrap();
    job(
        dir,
        &format!(
            "name: hostile-{mode}
sources: [{{id: src, type: file, path: in.jsonl, timestamps: ingestion}}]
operators:
  - {{id: bad, input: src, plugin: {plugin}, config: {{mode: {mode}}}, limits: {limits}}}
sinks: [{{id: out, type: blackhole, input: bad}}]
",
            plugin = plugin(name).display()
        ),
    )
}

/// A well-behaved job: 1.5 s of paced sensor readings through `celsius`
/// into a file.
pub(crate) fn healthy_job(dir: &Path) -> JobSpec {
    job(
        dir,
        &format!(
            "name: healthy
sources:
  - {{id: src, type: generator, generator: sensors, sensors: 5, seed: 3, start: 1700000000000, events: 3000, rate: 2000}}
operators: [{{id: c, input: src, plugin: {}}}]
sinks: [{{id: out, type: file, path: out.jsonl, input: c}}]
",
            plugin("celsius").display()
        ),
    )
}

fn run(spec: &JobSpec, engine: &PluginEngine) -> Result<weir_runtime::JobReport, RuntimeError> {
    run_job(spec, &JobOptions::default(), engine)
}

fn lines_as_json(dir: &Path, prefix: &str) -> Vec<Value> {
    read_lines(dir, prefix).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn each_misbehaviour_fails_only_its_job_with_a_clear_error() {
    let engine = PluginEngine::new().unwrap();
    let limits = "{memory: 64MiB, call_timeout: 1s, max_emitted: 10000}";
    let memory = "task bad-0/1 failed: plugin went past a limit in `process`: memory limit of 64 MiB reached: the plugin asked to grow its memory from ";
    let cases: [(&str, &str); 7] = [
        (
            "loop",
            "task bad-0/1 failed: plugin went past a limit in `process`: call deadline of 1s passed: the call was interrupted",
        ),
        ("grow", memory),
        ("flood", memory),
        ("huge", memory),
        (
            "recurse",
            "task bad-0/1 failed: plugin trapped in `process`: wasm trap: out of bounds memory access (a bug in the plugin, or its stack overflowed)",
        ),
        (
            "panic",
            "task bad-0/1 failed: plugin trapped in `process`: wasm trap: wasm `unreachable` instruction executed (guest stderr: thread '<unnamed>' (1) panicked at testing/hostile/src/lib.rs:",
        ),
        (
            "spray",
            "task bad-0/1 failed: plugin emitted 100002 records in one call for 3 records (limits.max_emitted is 10000)",
        ),
    ];
    // What the healthy job writes when it runs alone.
    let alone = tempfile::tempdir().unwrap();
    run(&healthy_job(alone.path()), &engine).unwrap();
    let expected = read_lines(alone.path(), "out");
    assert_eq!(expected.len(), 3000);
    // The same job beside all of them, in the same process and engine.
    let beside_dir = tempfile::tempdir().unwrap();
    let healthy = healthy_job(beside_dir.path());
    let (first_failed, healthy_ended) = std::thread::scope(|scope| {
        let beside = scope.spawn(|| run(&healthy, &engine).map(|_| Instant::now()));
        let mut first_failed = None;
        for (mode, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let started = Instant::now();
            let err = run(&hostile_job(dir.path(), mode, limits), &engine).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{mode}: {err}");
            if mode == "panic" {
                assert!(err.ends_with(": the hostile plugin panics on purpose)"), "{err}");
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{mode} took {:?}", started.elapsed());
            first_failed.get_or_insert_with(Instant::now);
        }
        (first_failed.unwrap(), beside.join().unwrap().expect("the healthy job"))
    });
    assert!(first_failed < healthy_ended, "the healthy job was still running when the first hostile one failed");
    assert_eq!(read_lines(beside_dir.path(), "out"), expected);
    // The process is healthy afterwards: the job runs again, exactly.
    let again = tempfile::tempdir().unwrap();
    run(&healthy_job(again.path()), &engine).unwrap();
    assert_eq!(read_lines(again.path(), "out"), expected);
}

#[test]
fn a_plugin_that_prints_a_lot_does_not_trap() {
    let engine = PluginEngine::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = run(&hostile_job(dir.path(), "chatty", "{}"), &engine).unwrap();
    let bad = report.nodes.iter().find(|n| n.node == "bad").unwrap();
    assert_eq!((bad.records_in, bad.records_out), (3, 3));
}

#[test]
fn components_are_checked_at_load() {
    let engine = PluginEngine::with_cache(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let random = dir.path().join("random.wasm");
    std::fs::write(&random, (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>())
        .unwrap();
    let cases = [
        (
            core.clone(),
            format!(
                "{} is not a valid Wasm component: failed to parse WebAssembly module: attempted to parse a wasm module with a component parser",
                core.display()
            ),
        ),
        (
            random.clone(),
            format!(
                "{} is not a valid Wasm component: failed to parse WebAssembly module: magic header not detected",
                random.display()
            ),
        ),
        (
            plugin("wrong-world"),
            format!(
                "{} does not implement the weir:plugin/operator@0.1.0 world: no export `init` found",
                plugin("wrong-world").display()
            ),
        ),
        (
            plugin("future-version"),
            format!(
                "{} does not implement the weir:plugin/operator@0.1.0 world: it imports `weir:plugin/types@0.2.0`: it was built for weir:plugin@0.2.0, and this host supports weir:plugin@0.1.0",
                plugin("future-version").display()
            ),
        ),
        (
            plugin("extra-import"),
            format!(
                "{} does not implement the weir:plugin/operator@0.1.0 world: it imports `weir:plugin/secrets@0.1.0`, which this host does not provide",
                plugin("extra-import").display()
            ),
        ),
    ];
    for (path, expected) in cases {
        let err = match engine.load_file(&path) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with(&expected), "{err}\nexpected: {expected}");
    }
    // In a job, the error names the node.
    let spec = job(
        dir.path(),
        &format!(
            "name: j\nsources: [{{id: r, type: generator, generator: sensor-bench, events: 1}}]\noperators: [{{id: strange, input: r, plugin: {}}}]\nsinks: [{{id: o, type: blackhole, input: strange}}]\n",
            plugin("wrong-world").display()
        ),
    );
    let err = run(&spec, &engine).unwrap_err().to_string();
    assert!(err.starts_with("operator `strange`: "), "{err}");
}

/// Readings through `trap-on`, which returns an error for `bad`.
fn failing_job(dir: &Path, policy: &str, extra_sink: &str) -> JobSpec {
    let lines = ["x", "bad", "y"].map(|id| format!("{{\"id\":\"{id}\",\"t\":7}}\n")).concat();
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
    job(
        dir,
        &format!(
            "name: failing
sources: [{{id: src, type: file, path: in.jsonl, key: /id, timestamp: /t}}]
operators: [{{id: flaky, input: src, plugin: {}, config: {{error_on: bad}}, on_error: {policy}}}]
sinks:
  - {{id: out, type: file, path: out.jsonl, input: flaky}}
{extra_sink}",
            plugin("trap-on").display()
        ),
    )
}

#[test]
fn failed_records_fail_the_task_skip_or_go_to_the_dead_letters() {
    let engine = PluginEngine::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run(&failing_job(dir.path(), "fail", ""), &engine).unwrap_err().to_string();
    assert_eq!(err, "task flaky-0/1 failed: plugin failed on record #1 of its batch: cannot handle bad");

    let dir = tempfile::tempdir().unwrap();
    let report = run(&failing_job(dir.path(), "skip", ""), &engine).unwrap();
    assert_eq!(read_lines(dir.path(), "out"), vec![r#"{"id":"x","t":7}"#, r#"{"id":"y","t":7}"#]);
    let flaky = report.nodes.iter().find(|n| n.node == "flaky").unwrap();
    assert_eq!(flaky.counters.get("records_failed"), Some(&1));

    let dir = tempfile::tempdir().unwrap();
    let dead = "  - {id: dead, type: file, path: dead.jsonl, input: flaky.errors}\n";
    run(&failing_job(dir.path(), "dead-letter", dead), &engine).unwrap();
    assert_eq!(read_lines(dir.path(), "out"), vec![r#"{"id":"x","t":7}"#, r#"{"id":"y","t":7}"#]);
    assert_eq!(
        lines_as_json(dir.path(), "dead"),
        vec![
            json!({"node": "flaky", "error": "cannot handle bad", "timestamp": 7, "key": "bad", "value": {"id": "bad", "t": 7}})
        ]
    );

    let text = format!(
        "name: j\nsources: [{{id: src, type: generator, generator: sensor-bench, events: 1}}]\noperators: [{{id: flaky, input: src, plugin: {}}}]\nsinks: [{{id: dead, type: stdout, input: flaky.errors}}]\n",
        plugin("trap-on").display()
    );
    let err = JobSpec::parse(&text, Format::Yaml).unwrap_err().to_string();
    assert!(err.contains("`flaky.errors` carries dead letters only when `flaky` has `on_error: dead-letter`"), "{err}");
}

/// What the hostile plugin reports for one attack under `config` and `grants`.
fn probe(dir: &Path, config: &str, grants: &str) -> Value {
    std::fs::write(dir.join("in.jsonl"), "\"attack\"\n").unwrap();
    let spec = job(
        dir,
        &format!(
            "name: caps
sources: [{{id: src, type: file, path: in.jsonl, timestamps: ingestion}}]
operators: [{{id: probe, input: src, plugin: {}, config: {config}, grants: {grants}}}]
sinks: [{{id: out, type: file, path: out.jsonl, input: probe}}]
",
            plugin("hostile").display()
        ),
    );
    run(&spec, &PluginEngine::new().unwrap()).unwrap();
    let out = lines_as_json(dir, "out");
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap()
}

#[test]
fn a_plugin_reaches_no_file_and_no_clock_unless_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/note.txt"), "for the plugin").unwrap();
    let no_such = json!({"Err": "No such file or directory (os error 44)"});
    let none = "{}";
    let data = "{dirs: [{host: data, guest: /data}]}";
    let rw = "{dirs: [{host: data, guest: /data, read_only: false}]}";
    let read =
        |path: &str, grants: &str| probe(dir.path(), &format!("{{mode: read, path: {path}}}"), grants)["read"].clone();
    let write = |path: &str, grants: &str| {
        probe(dir.path(), &format!("{{mode: write, path: {path}}}"), grants)["write"].clone()
    };
    assert_eq!(read("/data/note.txt", none), no_such);
    assert_eq!(read("/data/note.txt", data), json!({"Ok": "for the plugin"}));
    assert_eq!(read("/etc/passwd", data), no_such);
    assert_eq!(read("/data/../../../../etc/passwd", data)["Err"].as_str().map(|e| e.contains("os error")), Some(true));
    assert_eq!(write("/data/new.txt", data), json!({"Err": "Operation not permitted (os error 63)"}));
    assert!(!dir.path().join("data/new.txt").exists());
    assert_eq!(write("/data/new.txt", rw), json!({"Ok": null}));
    assert_eq!(std::fs::read_to_string(dir.path().join("data/new.txt")).unwrap(), "written by a plugin");
    assert_eq!(probe(dir.path(), "{mode: clock}", none), json!({"clock": 0}));
}

#[test]
fn fuel_limits_the_work_of_a_call() {
    let engine = PluginEngine::with_options(weir_wasm::EngineOptions { cache: None, fuel: true }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run(&hostile_job(dir.path(), "loop", "{fuel: 5000000}"), &engine).unwrap_err().to_string();
    assert_eq!(
        err,
        "task bad-0/1 failed: plugin went past a limit in `process`: fuel limit of 5000000 per call used up"
    );
    // Without metering in the engine, a fuel limit is refused up front.
    let err = run(&hostile_job(dir.path(), "loop", "{fuel: 5000000}"), &PluginEngine::new().unwrap()).unwrap_err();
    assert!(err.to_string().contains("a fuel limit needs an engine with fuel metering"), "{err}");
}
