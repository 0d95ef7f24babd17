//! Sinks' two-phase commit under crashes at its exact steps: `weir run` is
//! made to abort (`FAILPOINTS`, a real crash of the process) after a sink
//! pre-committed at a barrier but before its checkpoint was stored, after
//! the checkpoint was stored but before any sink committed it, and after a
//! sink committed but before the job went on; the restarted job commits
//! exactly a crash-free run's output, line for line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use weir_tests::{committed_parts, plugin, weir_bin};

fn write_job(dir: &Path) -> PathBuf {
    let spec = format!(
        "name: committing
checkpoint: {{ interval: 100ms, dir: checkpoints }}
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 20
    seed: 3
    start: 1700000000000
    events: 20000
    rate: 10000
    disorder: 500ms
    watermark: {{ max_out_of_orderness: 200ms, punctuated: true }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ window_ms: 1000 }} }}
sinks:
  - {{ id: out, type: file, path: out, input: averages }}
",
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

/// Runs the job, with `failpoints` armed; returns whether it succeeded and its log.
fn run(job: &Path, failpoints: Option<&str>) -> (bool, String) {
    let mut command = Command::new(weir_bin());
    command.arg("run").arg(job).args(["--progress", "0"]).env("RUST_LOG", "info").env("NO_COLOR", "1");
    command.env_remove("FAILPOINTS");
    if let Some(f) = failpoints {
        command.env("FAILPOINTS", f);
    }
    let out = command.stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Part files of `out` not (yet) committed.
fn uncommitted(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Crashes the job at `failpoint` (on its third hit: the points are only
/// passed by tasks with sinks, and the job has one), restarts it, and
/// checks the output; `after_crash` looks at what the crash left.
fn crash_at(failpoint: &str, after_crash: impl Fn(&Path)) {
    let reference = tempfile::tempdir().unwrap();
    let (ok, log) = run(&write_job(reference.path()), None);
    assert!(ok, "{log}");
    let expected = committed_parts(&reference.path().join("out"));
    assert!(expected.len() > 50, "{}", expected.len());

    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path());
    let (ok, log) = run(&job, Some(&format!("{failpoint}=2*off->return")));
    assert!(!ok, "the job was to crash at {failpoint}: {log}");
    assert!(!log.contains("job finished"), "{log}");
    after_crash(dir.path());
    let (ok, log) = run(&job, None);
    assert!(ok, "{log}");
    assert!(log.contains("resuming from checkpoint"), "{log}");
    assert_eq!(committed_parts(&dir.path().join("out")), expected);
    assert_eq!(uncommitted(dir.path()), Vec::<String>::new());
}

/// The newest checkpoint's manifest.
fn latest_manifest(dir: &Path) -> serde_json::Value {
    let store = weir_checkpoint::CheckpointStore::open(&dir.join("checkpoints")).unwrap();
    let (path, _) = store.latest().unwrap().expect("a checkpoint completed before the crash");
    serde_json::from_slice(&std::fs::read(path.join("_manifest.json")).unwrap()).unwrap()
}

/// The part names the newest checkpoint's pending sink state lists.
fn pending_in_latest(dir: &Path) -> Vec<String> {
    let store = weir_checkpoint::CheckpointStore::open(&dir.join("checkpoints")).unwrap();
    let (path, manifest) = store.latest().unwrap().unwrap();
    let file = &manifest.sinks["out"].subtasks[0].file;
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(path.join(file)).unwrap()).unwrap();
    state["parts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

#[test]
fn a_crash_after_a_pre_commit_replays_what_its_checkpoint_never_stored() {
    crash_at("sink-pre-committed", |dir| {
        // The third barrier's part was pre-committed; its checkpoint was not
        // stored, so the restart discards and rewrites it.
        let pending = uncommitted(dir);
        assert!(pending.iter().any(|n| n.ends_with(".pending")), "{pending:?}");
        let stored: Vec<u64> =
            weir_checkpoint::CheckpointStore::open(&dir.join("checkpoints")).unwrap().completed().unwrap();
        assert_eq!(stored.len(), 2, "two checkpoints completed before the crash: {stored:?}");
    });
}

#[test]
fn a_crash_between_storing_a_checkpoint_and_committing_it_commits_on_restart() {
    crash_at("checkpoint-stored", |dir| {
        assert_eq!(latest_manifest(dir)["id"], 3, "the third checkpoint was stored");
        let listed = pending_in_latest(dir);
        assert!(!listed.is_empty());
        // Stored, not committed: the restart commits exactly these.
        let left = uncommitted(dir);
        assert!(listed.iter().all(|p| left.contains(p)), "{listed:?} pending in {left:?}");
    });
}

#[test]
fn a_crash_right_after_the_sinks_committed_does_not_commit_twice() {
    let reference = tempfile::tempdir().unwrap();
    let (ok, log) = run(&write_job(reference.path()), None);
    assert!(ok, "{log}");
    let expected = committed_parts(&reference.path().join("out"));
    crash_at("sink-committed", |dir| {
        // Three checkpoints' parts are visible, and the restart must not
        // write them again.
        let committed = committed_parts(&dir.join("out"));
        assert!(!committed.is_empty());
        assert_eq!(committed[..], expected[..committed.len()]);
    });
}
