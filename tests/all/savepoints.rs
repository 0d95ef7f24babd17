//! Savepoints: taken from a running job (and with a stop), self-contained
//! and backend-neutral — a savepoint from RocksDB moved to another
//! directory restores on memory at another parallelism with exactly a
//! savepoint-free run's output; rescaled 1 → 4 → 2 through savepoints; a
//! new plugin version takes over the state at the stop; the dry-run check's
//! report for every kind of change; damaged savepoints refused before
//! anything starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use weir_checkpoint::StateFiles;
use weir_runtime::{
    JobOptions, JobOutcome, JobStatus, Restore, check_restore, find_restore, load_plugins, run_job, start,
};
use weir_spec::{JobSpec, SavepointSpec};
use weir_tests::plugin;

use crate::jobs::{debris, engine, outputs, sensor_job, sorted};

/// Starts `spec`, takes a savepoint into `into` after `after` (stopping
/// the job there with `stop`), and returns it; without `stop`, the job
/// runs to its end.
fn savepoint(spec: &JobSpec, after: Duration, into: &Path, stop: bool) -> Restore {
    let job = start(spec, &JobOptions::default(), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(after);
    assert_eq!(job.status(), JobStatus::Running, "the savepoint came before the end");
    let done = job.savepoint(into, stop).unwrap().wait().unwrap();
    let dir = done.savepoint.clone().expect("a savepoint was written");
    assert_eq!(dir.parent(), Some(into));
    let report = job.wait().unwrap();
    match stop {
        true => assert_eq!(report.outcome, JobOutcome::Stopped { checkpoint: done.id }),
        false => assert_eq!(report.outcome, JobOutcome::Finished),
    }
    Restore::load(&dir).unwrap()
}

/// `spec`, started from the savepoint in `dir`.
fn from(mut spec: JobSpec, dir: &Path) -> JobSpec {
    spec.savepoint = Some(SavepointSpec { path: dir.to_path_buf(), allow_non_restored_state: false });
    spec
}

fn starting(spec: &JobSpec) -> JobOptions {
    JobOptions { restore: find_restore(spec, false, None).unwrap(), ..JobOptions::default() }
}

#[test]
fn a_savepoint_from_rocksdb_moved_elsewhere_restores_on_memory_at_another_parallelism_exactly() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 3, 40000), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted(outputs(reference.path()));

    let dir = tempfile::tempdir().unwrap();
    let spec = sensor_job(dir.path(), 2, "rocksdb", 3, 40000);
    let taken = savepoint(&spec, Duration::from_millis(200), &dir.path().join("savepoints"), true);
    let m = &taken.manifest;
    assert_eq!((m.kind.as_str(), m.job.as_str()), ("savepoint", "sensors"));
    assert!(taken.is_savepoint());
    // Backend-neutral: logical snapshots only, named relative to the savepoint.
    for (node, op) in &m.operators {
        for s in &op.subtasks {
            let StateFiles::Logical { file } = &s.state else { panic!("{node} has native state") };
            assert_eq!(file, &format!("{node}-{}.state", s.subtask));
            assert!(m.checksums.contains_key(file), "{file} has a checksum");
        }
    }
    let kinds: Vec<(&str, &str)> =
        m.operators["averages"].states.iter().map(|s| (s.name.as_str(), s.kind.as_str())).collect();
    assert_eq!(kinds, [("windows", "map")]);
    assert_eq!(m.plugin_versions["averages"], "sensor-average");
    assert_eq!(m.parent, None, "a job started afresh descends from no savepoint");
    assert_eq!(debris(dir.path()), Vec::<String>::new());

    // Moved: it restores from where it is now, on memory, at parallelism 3.
    let moved = tempfile::tempdir().unwrap();
    let target = moved.path().join("copy");
    std::fs::rename(&taken.dir, &target).unwrap();
    let mut spec = from(sensor_job(dir.path(), 3, "memory", 3, 40000), &target);
    spec.checkpoint.as_mut().unwrap().dir = dir.path().join("checkpoints-2");
    let report = run_job(&spec, &starting(&spec), &engine()).unwrap();
    assert_eq!(report.outcome, JobOutcome::Finished);
    assert_eq!(sorted(outputs(dir.path())), expected);
    // Its checkpoints name the savepoint as their parent (the lineage).
    let store = weir_checkpoint::CheckpointStore::open(&dir.path().join("checkpoints-2")).unwrap();
    let (_, latest) = store.latest().unwrap().unwrap();
    let parent = latest.parent.expect("a parent");
    assert_eq!((parent.kind.as_str(), parent.id, parent.name.as_str()), ("savepoint", m.id, "copy"));
    assert_eq!(latest.restored_from.unwrap().name, "copy");
}

/// 1 → 4 → 2 through savepoints (the second taken while the job runs on),
/// each step on `backend`.
fn rescale_through_savepoints(backend: &str) {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 11, 60000), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted(outputs(reference.path()));

    let dir = tempfile::tempdir().unwrap();
    let savepoints = dir.path().join("savepoints");
    let one = savepoint(&sensor_job(dir.path(), 1, backend, 11, 60000), Duration::from_millis(100), &savepoints, true);
    let mut four = from(sensor_job(dir.path(), 4, backend, 11, 60000), &one.dir);
    four.checkpoint.as_mut().unwrap().dir = dir.path().join("checkpoints-4");
    // Stopped at four: the job that goes on at two descends from both.
    let job = start(&four, &starting(&four), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    let done = job.savepoint(&savepoints, true).unwrap().wait().unwrap();
    job.wait().unwrap();
    let second = Restore::load(done.savepoint.as_ref().unwrap()).unwrap();
    assert_eq!(second.manifest.operators["averages"].parallelism, 4);
    assert_eq!(second.parent().unwrap().id, second.manifest.id);
    assert!(second.manifest.parent.as_ref().unwrap().names(&one.manifest), "its parent is the first savepoint");
    let listed: Vec<PathBuf> =
        weir_checkpoint::list_savepoints(&savepoints).unwrap().into_iter().map(|(p, _)| p).collect();
    assert_eq!(listed, [one.dir.clone(), second.dir.clone()]);

    let mut two = from(sensor_job(dir.path(), 2, backend, 11, 60000), &second.dir);
    two.checkpoint.as_mut().unwrap().dir = dir.path().join("checkpoints-2");
    run_job(&two, &starting(&two), &engine()).unwrap();
    assert_eq!(sorted(outputs(dir.path())), expected);
}

#[test]
fn rescaling_one_to_four_to_two_through_savepoints_on_memory_is_exact() {
    rescale_through_savepoints("memory");
}

#[test]
fn rescaling_one_to_four_to_two_through_savepoints_on_rocksdb_is_exact() {
    rescale_through_savepoints("rocksdb");
}

/// `sensor-average`'s result line as version 2 writes it.
fn as_v2(line: &str) -> String {
    format!("{},\"version\":2}}", line.strip_suffix('}').unwrap())
}

#[test]
fn a_new_plugin_version_takes_over_the_state_at_a_stop_with_savepoint() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 8, 40000), &JobOptions::default(), &engine()).unwrap();
    let [expected, windows] = outputs(reference.path());

    let dir = tempfile::tempdir().unwrap();
    let spec = sensor_job(dir.path(), 1, "rocksdb", 8, 40000);
    let taken = savepoint(&spec, Duration::from_millis(200), &dir.path().join("savepoints"), true);
    let before = outputs(dir.path())[0].len();
    assert!(before > 0 && before < expected.len(), "stopped mid-way: {before} of {}", expected.len());

    let mut v2 = from(sensor_job(dir.path(), 1, "memory", 8, 40000), &taken.dir);
    v2.operators[1].plugin = Some(plugin("sensor-average-v2"));
    v2.checkpoint.as_mut().unwrap().dir = dir.path().join("checkpoints-v2");
    run_job(&v2, &starting(&v2), &engine()).unwrap();
    let [got, got_windows] = outputs(dir.path());
    // Windows that fired before the savepoint are version 1's, every later
    // one version 2's — over the same sums: nothing lost, nothing twice.
    let want: Vec<String> =
        expected.iter().enumerate().map(|(i, l)| if i < before { l.clone() } else { as_v2(l) }).collect();
    assert_eq!(got, want);
    assert_eq!(got_windows, windows);
}

/// A checkpointed job: `readings` → `averages` (`plugin`, with its config)
/// → `out`, and optionally `extra` (a pass-through) between them.
fn small_job(dir: &Path, parallelism: u32, averages: &str, extra: bool) -> JobSpec {
    let extra_node = match extra {
        true => format!("\n  - {{ id: extra, input: averages, plugin: {} }}", plugin("declare").display()),
        false => String::new(),
    };
    let text = format!(
        "name: small
parallelism: {parallelism}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 4, seed: 2, start: 1700000000000, events: 2000, rate: 4000 }}
operators:
  - {{ id: averages, input: readings, key_by: key, plugin: {averages} }}{extra_node}
sinks:
  - {{ id: out, type: file, path: {out}, input: {last} }}
",
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        last = if extra { "extra" } else { "averages" },
    );
    JobSpec::parse(&text, weir_spec::Format::Yaml).unwrap()
}

/// The dry run's report of starting `spec` from `savepoint`.
fn check(savepoint: &Restore, spec: &JobSpec) -> (bool, String) {
    let plugins = load_plugins(spec, &engine()).unwrap();
    let report = check_restore(savepoint, spec, &plugins, &Default::default()).unwrap();
    let text = report.to_text().replace(&savepoint.dir.display().to_string(), "SP");
    (report.accepted(), text)
}

#[test]
fn the_dry_run_reports_what_a_restore_would_do_to_every_node_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let average = plugin("sensor-average").display().to_string();
    let taken = savepoint(&small_job(dir.path(), 1, &average, true), Duration::from_millis(100), dir.path(), true);

    let unchanged = small_job(dir.path(), 1, &average, true);
    let (accepted, text) = check(&taken, &unchanged);
    assert!(accepted);
    assert_eq!(
        text,
        "the job can start from SP
  source `readings`: restored
  operator `averages`: restored
    plugin sensor-average → sensor-average (unchanged)
    state `windows`: mapped (map)
  operator `extra`: restored
    plugin declare → declare (unchanged)
  sink `out`: restored
"
    );

    // Another parallelism and another version: accepted.
    let mut rescaled = small_job(dir.path(), 2, &plugin("sensor-average-v2").display().to_string(), true);
    rescaled.operators[1].config = Some(serde_json::json!({"states": {"seen": "list"}}));
    let (accepted, text) = check(&taken, &rescaled);
    assert!(accepted);
    assert_eq!(
        text,
        "the job can start from SP
  source `readings`: restored
    parallelism 1 → 2
  operator `averages`: restored
    parallelism 1 → 2
    plugin sensor-average → sensor-average-v2
    state `windows`: mapped (map)
  operator `extra`: restored
    parallelism 1 → 2
    plugin declare → declare (unchanged)
    state `seen`: new (list): starts empty
  sink `out`: restored
    parallelism 1 → 2
"
    );

    // A removed node: refused, unless its state may be dropped.
    let removed = small_job(dir.path(), 1, &average, false);
    let (accepted, text) = check(&taken, &removed);
    assert!(!accepted);
    let refusal = "the savepoint holds its state for operator `extra`, which the job does not have: add the node \
                   back, or set `allow_non_restored_state: true` to drop it";
    assert_eq!(
        text,
        format!(
            "the job cannot start from SP
  source `readings`: restored
  operator `averages`: restored
    plugin sensor-average → sensor-average (unchanged)
    state `windows`: mapped (map)
  sink `out`: restored
  operator `extra`: refused: {refusal}
    plugin declare → -
"
        )
    );
    let err = start(&removed, &JobOptions { restore: Some(taken.clone()), ..JobOptions::default() }, &engine())
        .unwrap_err()
        .to_string();
    assert_eq!(err, format!("checkpoint {}: {refusal}", taken.dir.display()));
    let mut allowed = removed.clone();
    allowed.savepoint = Some(SavepointSpec { path: taken.dir.clone(), allow_non_restored_state: true });
    let (accepted, text) = check(&taken, &allowed);
    assert!(accepted);
    assert!(
        text.ends_with(
            "  operator `extra`: dropped: the job no longer has it (allow_non_restored_state)\n    plugin declare → -\n"
        ),
        "{text}"
    );

    // A state of another kind, and a new node.
    let declare = plugin("declare").display().to_string();
    let text = format!(
        "name: small
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 4, seed: 2, start: 1700000000000, events: 2000 }}
operators:
  - {{ id: averages, input: readings, key_by: key, plugin: {declare}, config: {{ states: {{ windows: value }} }} }}
  - {{ id: late, input: averages, plugin: {declare} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: late }}
",
        checkpoints = dir.path().join("checkpoints").display(),
        out = dir.path().join("out").display(),
    );
    let mut changed = JobSpec::parse(&text, weir_spec::Format::Yaml).unwrap();
    changed.savepoint = Some(SavepointSpec { path: taken.dir.clone(), allow_non_restored_state: true });
    let (accepted, text) = check(&taken, &changed);
    assert!(!accepted);
    assert_eq!(
        text,
        "the job cannot start from SP
  source `readings`: restored
  operator `averages`: restored
    plugin sensor-average → declare
    state `windows`: refused: operator `averages` state `windows` is a map state in the savepoint and declare \
         declares it a value state: a state cannot change kind — give the new one another name, or keep its kind
  operator `late`: new: starts empty
    plugin - → declare
  sink `out`: restored
  operator `extra`: dropped: the job no longer has it (allow_non_restored_state)
    plugin declare → -
"
    );

    // Another number of key groups.
    let mut regrouped = small_job(dir.path(), 1, &average, true);
    regrouped.max_parallelism = 256;
    let (accepted, text) = check(&taken, &regrouped);
    assert!(!accepted);
    assert!(
        text.starts_with(
            "the job cannot start from SP
  refused: its state is in 128 key groups and the job has max_parallelism 256: key groups cannot be split or \
             merged, so restore with `max_parallelism: 128`
"
        ),
        "{text}"
    );
}

#[test]
fn a_damaged_or_truncated_savepoint_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let average = plugin("sensor-average").display().to_string();
    let taken = savepoint(&small_job(dir.path(), 1, &average, false), Duration::from_millis(100), dir.path(), true);
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&taken.dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    assert_eq!(Restore::load(&copy).unwrap().manifest, taken.manifest, "a copy restores");

    let state = copy.join("averages-0.state");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    let spec = from(small_job(dir.path(), 1, &average, false), &copy);
    let err = find_restore(&spec, false, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "savepoint {} is damaged: `averages-0.state` ({} bytes) is not the file that was written; nothing was \
             restored — restore another savepoint, or a copy of this one",
            copy.display(),
            bytes.len() / 2
        )
    );
    std::fs::write(copy.join("_manifest.json"), b"{\"format\": 2, \"id\": ").unwrap();
    let err = find_restore(&spec, false, None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("checkpoint manifest {}: EOF while parsing", copy.join("_manifest.json").display())),
        "{err}"
    );
    assert!(!dir.path().join("checkpoints").join("chk-00000002").exists(), "nothing ran");
}

#[test]
fn a_job_started_from_a_savepoint_resumes_from_its_own_newer_checkpoint_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let average = plugin("sensor-average").display().to_string();
    let taken = savepoint(&small_job(dir.path(), 1, &average, false), Duration::from_millis(100), dir.path(), true);
    let mut spec = from(small_job(dir.path(), 1, &average, false), &taken.dir);
    spec.checkpoint.as_mut().unwrap().dir = dir.path().join("after");
    // Before it ran: the savepoint.
    assert_eq!(find_restore(&spec, false, None).unwrap().unwrap().dir, taken.dir);
    let job = start(&spec, &starting(&spec), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    let done = job.trigger_checkpoint().unwrap().wait().unwrap();
    job.cancel();
    let _ = job.wait();
    // After it checkpointed: its own newest checkpoint, which descends from it.
    let next = find_restore(&spec, false, None).unwrap().unwrap();
    assert_eq!(next.dir, done.dir);
    assert!(next.manifest.parent.unwrap().names(&taken.manifest));
}
