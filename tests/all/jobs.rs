//! Jobs through their handles: stopped at a barrier and resumed — at the
//! same parallelism, and rescaled 2 → 4 → 1 across state backends — with
//! exactly a stop-free run's output; two jobs of one name side by side in
//! one process, one of them failing; checkpoints that do not fit refused.

use std::path::Path;
use std::time::Duration;

use weir_runtime::{ErrorClass, JobOptions, JobOutcome, JobStatus, Metrics, Restore, RuntimeError, run_job, start};
use weir_spec::{Format, JobSpec};
use weir_tests::{committed_parts, plugin};

/// The sensor job: `celsius` → keyed `sensor-average` (keyed state and
/// timers) and a keyed 1 s tumbling window with a built-in max, both into
/// exactly-once file sinks. Readings are out of order by up to 300 ms and
/// the watermark allows 300 ms, so nothing is late and the output does not
/// depend on timing or parallelism. Paced, so that a stop lands mid-way.
pub(crate) fn sensor_job(dir: &Path, parallelism: u32, backend: &str, seed: u64, rate: u32) -> JobSpec {
    let text = format!(
        "name: sensors
parallelism: {parallelism}
state: {{ backend: {backend}, dir: {state} }}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 20
    seed: {seed}
    start: 1700000000000
    events: 24000
    rate: {rate}
    disorder: 300ms
    watermark: {{ max_out_of_orderness: 300ms, interval: 5ms }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average} }}
  - {{ id: maxima, input: celsius, key_by: key, window: {{ tumbling: 1s }}, aggregate: {{ max: /temperature }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
  - {{ id: windows, type: file, path: {windows}, input: maxima }}
",
        state = dir.join("state").display(),
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        windows = dir.join("windows").display(),
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

pub(crate) fn engine() -> weir_wasm::PluginEngine {
    weir_wasm::PluginEngine::new().unwrap()
}

/// Both sinks' committed lines.
pub(crate) fn outputs(dir: &Path) -> [Vec<String>; 2] {
    ["out", "windows"].map(|sink| committed_parts(&dir.join(sink)))
}

pub(crate) fn sorted([mut a, mut b]: [Vec<String>; 2]) -> [Vec<String>; 2] {
    a.sort();
    b.sort();
    [a, b]
}

/// Uncommitted part files left in a sink directory.
pub(crate) fn debris(dir: &Path) -> Vec<String> {
    ["out", "windows"]
        .iter()
        .flat_map(|s| std::fs::read_dir(dir.join(s)).into_iter().flatten())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Starts `spec` (from `restore`), stops it at a barrier after `after`, and
/// returns the checkpoint it stopped at.
fn run_and_stop(spec: &JobSpec, restore: Option<Restore>, after: Duration) -> Restore {
    let options = JobOptions { restore, ..JobOptions::default() };
    let job = start(spec, &options, &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(after);
    assert_eq!(job.status(), JobStatus::Running);
    let done = job.stop().unwrap().wait().unwrap();
    assert_eq!(done.kind, weir_types::BarrierKind::Stop);
    let report = job.wait().unwrap();
    assert_eq!(report.outcome, JobOutcome::Stopped { checkpoint: done.id });
    Restore::load(&done.dir).unwrap()
}

#[test]
fn a_job_stopped_at_a_barrier_resumes_with_exactly_the_output_of_one_that_was_not() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 5, 40000), &JobOptions::default(), &engine()).unwrap();
    let expected = outputs(reference.path());
    assert!(expected.iter().all(|o| o.len() > 100), "{:?}", expected.each_ref().map(Vec::len));

    let dir = tempfile::tempdir().unwrap();
    let spec = sensor_job(dir.path(), 1, "memory", 5, 40000);
    let stopped = run_and_stop(&spec, None, Duration::from_millis(250));
    assert_eq!(stopped.manifest.kind, "stop");
    assert!(!stopped.job_finished());
    // At the stop every sink committed what it had: a prefix of the output.
    assert_eq!(debris(dir.path()), Vec::<String>::new());
    let early = outputs(dir.path());
    assert!(early[0].len() < expected[0].len(), "the stop came before the end");
    assert_eq!(early[0][..], expected[0][..early[0].len()]);

    let report = run_job(&spec, &JobOptions { restore: Some(stopped), ..JobOptions::default() }, &engine()).unwrap();
    assert_eq!(report.outcome, JobOutcome::Finished);
    // Line for line, in order: nothing lost, nothing twice.
    assert_eq!(outputs(dir.path()), expected);
    assert_eq!(debris(dir.path()), Vec::<String>::new());
}

#[test]
fn a_barrier_s_mutation_swaps_a_running_operator_with_its_state_kept() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 4, 30000), &JobOptions::default(), &engine()).unwrap();
    let expected = outputs(reference.path());

    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let job = start(&sensor_job(dir.path(), 2, "rocksdb", 4, 30000), &JobOptions::default(), &engine).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(150));
    // A new instance of the keyed averaging (a new version would be a new
    // digest): every task swaps at the same barrier.
    let plugin = engine.load_file(&plugin("sensor-average")).unwrap();
    let digest = plugin.digest().to_string();
    job.register_plugin(plugin);
    let update = weir_types::NodeUpdate { plugin: Some(digest), config: None, label: None };
    let mutation = weir_types::Mutation { updates: [("averages".to_string(), update)].into() };
    let done = job.trigger(weir_types::BarrierKind::Checkpoint, Some(mutation)).unwrap().wait().unwrap();
    assert_eq!(done.kind, weir_types::BarrierKind::Checkpoint);
    let report = job.wait().unwrap();
    assert_eq!(report.outcome, JobOutcome::Finished);
    let averages = report.nodes.iter().find(|n| n.node == "averages").unwrap();
    assert_eq!(averages.counters.get("plugin_swaps"), Some(&2), "both subtasks swapped");
    assert_eq!(sorted(outputs(dir.path())), sorted(expected));

    // A digest the job does not know fails the tasks that would swap.
    let unknown = weir_types::NodeUpdate { plugin: Some("00".repeat(32)), config: None, label: None };
    let job = start(&sensor_job(dir.path(), 1, "memory", 4, 30000), &JobOptions::default(), &engine).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mutation = weir_types::Mutation { updates: [("averages".to_string(), unknown)].into() };
    let _ = job.trigger(weir_types::BarrierKind::Checkpoint, Some(mutation)).unwrap().wait();
    let err = job.wait().unwrap_err().to_string();
    assert!(err.contains(&format!("the plugin with digest {} that barrier", "00".repeat(32))), "{err}");
}

/// Stops at parallelism 2, resumes at 4, stops, finishes at 1 — each step on
/// the given backend.
fn rescale(backends: [&str; 3]) {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 9, 60000), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted(outputs(reference.path()));

    let dir = tempfile::tempdir().unwrap();
    let first = run_and_stop(&sensor_job(dir.path(), 2, backends[0], 9, 60000), None, Duration::from_millis(120));
    assert_eq!(first.manifest.operators["averages"].parallelism, 2);
    // At parallelism 4 `celsius` runs at 3: it is no longer chained to the
    // source (another task shape; its state is found by node id all the same).
    let mut four = sensor_job(dir.path(), 4, backends[1], 9, 60000);
    four.operators[0].parallelism = Some(3);
    let second = run_and_stop(&four, Some(first), Duration::from_millis(120));
    assert_eq!(second.manifest.operators["celsius"].subtasks.len(), 3);
    let averages = &second.manifest.operators["averages"];
    assert_eq!(
        averages.subtasks.iter().map(|s| s.key_groups).collect::<Vec<_>>(),
        [(0, 32), (32, 64), (64, 96), (96, 128)]
    );
    // The generator's splits keep their identity (two of them, from the first start).
    let splits: Vec<&str> = second.manifest.sources["readings"].splits.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(splits, ["part-0-of-2", "part-1-of-2"]);
    let options = JobOptions { restore: Some(second), ..JobOptions::default() };
    run_job(&sensor_job(dir.path(), 1, backends[2], 9, 60000), &options, &engine()).unwrap();
    let got = sorted(outputs(dir.path()));
    assert_eq!(got.each_ref().map(Vec::len), expected.each_ref().map(Vec::len));
    assert_eq!(got, expected);
}

#[test]
fn a_checkpoint_restores_at_another_parallelism_on_memory_and_across_backends() {
    rescale(["memory", "rocksdb", "memory"]);
}

#[test]
fn a_checkpoint_restores_at_another_parallelism_on_rocksdb() {
    rescale(["rocksdb", "rocksdb", "rocksdb"]);
}

#[test]
fn a_checkpoint_of_another_max_parallelism_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sensor_job(dir.path(), 1, "memory", 1, 40000);
    let stopped = run_and_stop(&spec, None, Duration::from_millis(100));
    let mut other = spec.clone();
    other.max_parallelism = 64;
    let err =
        start(&other, &JobOptions { restore: Some(stopped.clone()), ..JobOptions::default() }, &engine()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert_eq!(err.code(), "restore_incompatible");
    assert_eq!(
        err.to_string(),
        format!(
            "checkpoint {}: its state is in 128 key groups and the job has max_parallelism 64: key groups cannot be \
             split or merged, so restore with `max_parallelism: 128`",
            stopped.dir.display()
        )
    );
}

/// A job named `twin`: sensor readings (from `seed`) through a gate that
/// traps on `trap`'s readings, counted per sensor and second, with RocksDB
/// state in the shared directory `state`. Paced to run about a second.
fn twin(dir: &Path, state: &Path, seed: u64, trap: Option<&str>) -> JobSpec {
    let config = trap.map_or("{}".to_string(), |key| format!("{{ panic_on: {key} }}"));
    let text = format!(
        "name: twin
state: {{ backend: rocksdb, dir: {state} }}
checkpoint: {{ interval: 50ms, dir: {checkpoints} }}
restart: {{ strategy: none }}
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 7
    seed: {seed}
    start: 1700000000000
    events: 14000
    rate: 14000
    watermark: {{ punctuated: true }}
operators:
  - {{ id: gate, input: readings, plugin: {trap}, config: {config} }}
  - {{ id: counts, input: gate, key_by: key, window: {{ tumbling: 1s }}, aggregate: {{ sum: /temperature }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: counts }}
",
        state = state.display(),
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        trap = plugin("trap-on").display(),
    );
    JobSpec::parse(&text, Format::Yaml).unwrap()
}

#[test]
fn two_jobs_of_one_name_run_side_by_side_and_one_failing_leaves_the_other_alone() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let (a, b, bad) = (root.path().join("a"), root.path().join("b"), root.path().join("bad"));
    let specs = [twin(&a, &state, 1, None), twin(&b, &state, 2, None), twin(&bad, &state, 3, Some("sensor_4"))];
    // What each good job writes alone.
    let mut expected = Vec::new();
    for spec in &specs[..2] {
        let alone = tempfile::tempdir().unwrap();
        let mut solo = spec.clone();
        let out = alone.path().join("out");
        if let weir_spec::SinkConnector::File(f) = &mut solo.sinks[0].connector {
            f.path = out.clone();
        }
        solo.checkpoint.as_mut().unwrap().dir = alone.path().join("checkpoints");
        run_job(&solo, &JobOptions::default(), &engine()).unwrap();
        expected.push(committed_parts(&out));
    }
    assert_ne!(expected[0], expected[1]);

    // All three at once, in one process, sharing metrics and a state directory.
    let metrics = Metrics::new();
    let options = JobOptions { metrics: Some(metrics.clone()), ..JobOptions::default() };
    let engine = engine();
    let jobs: Vec<_> = specs.iter().map(|s| start(s, &options, &engine).unwrap()).collect();
    let ids: Vec<String> = jobs.iter().map(|j| j.id().to_string()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    assert!(jobs.iter().all(|j| j.name() == "twin"));
    let text = metrics.encode();
    assert_eq!(text.matches("# TYPE weir_records_in counter").count(), 1, "one family for every job");
    for id in &ids[..2] {
        assert!(text.contains(&format!("job_id=\"{id}\"")), "{id} has metrics: {text}");
    }
    let mut results = jobs.into_iter().map(|j| j.wait()).collect::<Vec<_>>();
    let failed = results.pop().unwrap().unwrap_err();
    assert!(matches!(failed, RuntimeError::Plugin { .. }), "{failed}");
    assert!(failed.to_string().contains("reading from sensor_4 is cursed"), "{failed}");
    for (result, (dir, expected)) in results.into_iter().zip([(&a, &expected[0]), (&b, &expected[1])]) {
        let report = result.unwrap();
        assert_eq!(report.outcome, JobOutcome::Finished);
        assert_eq!(&committed_parts(&dir.join("out")), expected, "{}", dir.display());
    }
    // Each job's working state went with it; its metrics too.
    assert_eq!(std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0), 0);
    assert!(!metrics.encode().contains("job_id="), "{}", metrics.encode());
}

#[test]
fn a_second_job_cannot_take_a_checkpoint_dir_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sensor_job(dir.path(), 1, "memory", 1, 40000);
    let first = start(&spec, &JobOptions::default(), &engine()).unwrap();
    let err = start(&spec, &JobOptions::default(), &engine()).unwrap_err();
    assert_eq!((err.code(), err.class()), ("checkpoint_dir_in_use", ErrorClass::Invalid));
    assert_eq!(
        err.to_string(),
        format!(
            "checkpoint dir {} is in use by another running job: give each job a checkpoint dir of its own",
            dir.path().join("checkpoints").display()
        )
    );
    first.cancel();
    assert!(matches!(first.wait(), Err(RuntimeError::Cancelled)));
    // Once the first has ended, the directory is free.
    let again = start(&spec, &JobOptions::default(), &engine()).unwrap();
    again.cancel();
    assert!(matches!(again.wait(), Err(RuntimeError::Cancelled)));
}

#[test]
fn a_plugin_failing_its_init_is_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = twin(dir.path(), &dir.path().join("state"), 1, None);
    spec.restart = None; // the default with checkpoints: five restarts
    spec.operators[0].config = Some(serde_json::json!({"fail_init": "no such table"}));
    let job = start(&spec, &JobOptions::default(), &engine()).unwrap();
    while !job.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let snapshot = job.snapshot();
    assert_eq!(snapshot.restarts, 0);
    assert_eq!(
        snapshot.status,
        JobStatus::Failed {
            code: "plugin_init_failed",
            message: "task gate-0/1 failed: plugin failed in `init`: no such table".into()
        }
    );
    assert!(job.wait().is_err());
}

#[test]
fn a_job_without_checkpoints_cannot_be_stopped_at_a_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sensor_job(dir.path(), 1, "memory", 1, 40000);
    spec.checkpoint = None;
    spec.restart = None;
    if let weir_spec::SinkConnector::File(f) = &mut spec.sinks[0].connector {
        f.path = dir.path().join("out.jsonl");
    }
    if let weir_spec::SinkConnector::File(f) = &mut spec.sinks[1].connector {
        f.path = dir.path().join("windows.jsonl");
    }
    let job = start(&spec, &JobOptions::default(), &engine()).unwrap();
    let err = job.stop().unwrap_err();
    assert_eq!(err.to_string(), "job `sensors` has no `checkpoint` in its spec: nothing to write a checkpoint to");
    job.cancel();
    let ended = job.wait();
    assert!(matches!(ended, Err(RuntimeError::Cancelled)), "{ended:?}");
}
