//! A real `weir serve` crashing (abort, as kill -9 leaves it) during an
//! in-place upgrade and right after it, driven by the `weir` CLI: restarted
//! on its data dir, the job resumes on the version its newest completed
//! checkpoint names — the old one when the upgrade's checkpoint never
//! completed, the new one when it did — and its committed output is exactly
//! a crash-free run's. Also: a savepoint and a stop with a savepoint from
//! the CLI, and the savepoint tree it lists.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use weir_tests::{as_version_one, committed_parts, plugin, weir_bin};

use crate::server_e2e::Served;

/// The sensor job, checkpointed only when asked (so the upgrade's
/// checkpoint is the first), paced over about four seconds.
fn job(dir: &Path, celsius: &str, averages: &str, rate: u32) -> PathBuf {
    let text = format!(
        "name: upgraded
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 8, seed: 4, start: 1700000000000, events: 8000,
       rate: {rate}, disorder: 200ms, watermark: {{ max_out_of_orderness: 200ms, interval: 20ms }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {averages}, config: {{ window_ms: 500 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn upload(server: &Served) {
    for (name, version, file) in [
        ("celsius", "1.0.0", "celsius"),
        ("sensor-average", "1.0.0", "sensor-average"),
        ("sensor-average", "2.0.0", "sensor-average-v2"),
    ] {
        server.ok(&["plugin", "upload", &plugin(file).display().to_string(), "--name", name, "--version", version]);
    }
}

/// Submits the job, upgrades `averages` to 2.0.0 while fault point
/// `failpoint` crashes the server, restarts it and returns the committed
/// output and the job once finished.
fn crash_during_upgrade(failpoint: &str) -> (Vec<String>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Served::start_with(&data, Some(failpoint));
    upload(&server);
    let spec = job(dir.path(), "celsius@1.0.0", "sensor-average@1.0.0", 2000);
    let id = server.ok(&["job", "submit", &spec.display().to_string()]).trim().to_string();
    std::thread::sleep(Duration::from_millis(800));
    let (ok, _, stderr) = server.cli(&["job", "upgrade", &id, "averages", "sensor-average@2.0.0"]);
    assert!(!ok, "the server died during the upgrade: {stderr}");
    let started = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "the fault point never fired");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
    let server = Served::start(&data);
    let done = server.wait_for_state(&id, "finished");
    assert_eq!(done["resumed"], 1);
    (committed_parts(&dir.path().join("out")), done)
}

fn reference() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = job(
        dir.path(),
        &plugin("celsius").display().to_string(),
        &plugin("sensor-average").display().to_string(),
        1_000_000,
    );
    let out =
        Command::new(weir_bin()).args(["run", "--progress", "0"]).arg(&spec).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut lines = committed_parts(&dir.path().join("out"));
    lines.sort();
    lines
}

#[test]
fn a_server_crashing_during_an_upgrade_resumes_on_the_old_version_exactly() {
    let expected = reference();
    // Every task aborts at the upgrade's barrier once its sink pre-committed:
    // the checkpoint never completes.
    let (out, job) = crash_during_upgrade("sink-pre-committed=return");
    assert!(out.iter().all(|l| !l.contains("\"version\"")), "version 2 wrote nothing");
    let mut got = out;
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(job["plugins"]["averages"]["version"], "1.0.0");
}

#[test]
fn a_server_crashing_right_after_an_upgrade_resumes_on_the_new_version_exactly() {
    let expected = reference();
    // The process aborts as soon as the upgrade's checkpoint is stored,
    // before anyone hears of it.
    let (out, job) = crash_during_upgrade("checkpoint-stored=return");
    let v2 = out.iter().filter(|l| l.contains("\"version\":2")).count();
    assert!(v2 > 0 && v2 < out.len(), "both versions wrote some: {v2} of {}", out.len());
    assert_eq!(as_version_one(&out), expected);
    assert_eq!(job["plugins"]["averages"]["version"], "2.0.0");
    let recovered = job["history"].as_array().unwrap().iter().find(|h| h["outcome"] == "recovered").unwrap();
    assert_eq!(recovered["from"], "sensor-average@1.0.0");
    assert_eq!(recovered["to"], "sensor-average@2.0.0");
}

#[test]
fn the_cli_takes_savepoints_stops_a_job_at_one_and_lists_their_tree() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Served::start(&data);
    upload(&server);
    let spec = job(dir.path(), "celsius@1.0.0", "sensor-average@1.0.0", 2000);
    let id = server.ok(&["job", "submit", &spec.display().to_string()]).trim().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let first = server.ok(&["savepoint", &id]);
    assert!(first.starts_with("savepoint savepoint-") && first.contains(" of job upgraded at checkpoint "), "{first}");
    let first_name = first.split_whitespace().nth(1).unwrap().to_string();
    let stopped = server.ok(&["savepoint", &id, "--stop"]);
    assert!(stopped.trim_end().ends_with("; the job stopped there"), "{stopped}");
    let second_name = stopped.split_whitespace().nth(1).unwrap().to_string();
    let done = server.wait_for_state(&id, "stopped");
    assert_eq!(done["state"], "stopped");

    // A job from the second savepoint, on version 2: its savepoint is a child.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let text = std::fs::read_to_string(job(&other, "celsius@1.0.0", "sensor-average@2.0.0", 2000)).unwrap();
    let from = other.join("from.yaml");
    std::fs::write(&from, format!("{text}savepoint: {second_name}\n")).unwrap();
    let second = server.ok(&["job", "submit", &from.display().to_string()]).trim().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let third = server.ok(&["savepoint", &second]);
    let third_name = third.split_whitespace().nth(1).unwrap().to_string();
    let tree = server.ok(&["savepoint", "list"]);
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines.len(), 3, "{tree}");
    assert!(lines[0].starts_with(&format!("{first_name}  job upgraded ")), "{tree}");
    assert!(lines[1].starts_with(&format!("{second_name}  job upgraded ")), "{tree}");
    assert!(lines[2].starts_with(&format!("  {third_name}  job upgraded ")), "a child of the second: {tree}");
    assert!(lines[2].ends_with("averages=sensor-average@2.0.0 celsius=celsius@1.0.0"), "{tree}");
    let (ok, _, stderr) = server.cli(&["savepoint", "no-such-job"]);
    assert!(!ok);
    assert!(stderr.contains("there is no job no-such-job"), "{stderr}");
}

#[test]
fn a_fork_runs_two_versions_from_one_savepoint_and_diff_tells_their_outputs_apart() {
    let expected = reference();
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&dir.path().join("data"));
    upload(&server);
    let spec = job(dir.path(), "celsius@1.0.0", "sensor-average@1.0.0", 2000);
    let id = server.ok(&["job", "submit", &spec.display().to_string()]).trim().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let said = server.ok(&["savepoint", &id, "--stop"]);
    let name = said.split_whitespace().nth(1).unwrap().to_string();
    server.wait_for_state(&id, "stopped");
    let (ok, _, stderr) = server.cli(&["savepoint", "fork", &name, "--node", "averages", "a=sensor-average@1.0.0"]);
    assert!(!ok && stderr.contains("2 values required by"), "{stderr}");
    let forked = server.ok(&[
        "savepoint",
        "fork",
        &name,
        "--node",
        "averages",
        "a=sensor-average@1.0.0",
        "b=sensor-average@2.0.0",
    ]);
    let lines: Vec<Vec<&str>> = forked.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 2, "{forked}");
    assert_eq!((lines[0][0], lines[0][2], lines[0][3]), ("a", "upgraded-a", "averages=sensor-average@1.0.0"));
    assert_eq!((lines[1][0], lines[1][2], lines[1][3]), ("b", "upgraded-b", "averages=sensor-average@2.0.0"));
    for l in &lines {
        server.wait_for_state(l[1], "finished");
    }
    let (a, b) = (dir.path().join("out-a"), dir.path().join("out-b"));
    // Each fork wrote the windows after the savepoint; with what the job
    // committed before it, each is the whole output.
    let before = committed_parts(&dir.path().join("out"));
    let mut whole_a = before.clone();
    whole_a.extend(committed_parts(&a));
    let mut whole_b = before;
    whole_b.extend(committed_parts(&b));
    assert_eq!(as_version_one(&whole_a), expected);
    assert_eq!(as_version_one(&whole_b), expected);

    let diff = |extra: &[&str]| {
        let out = Command::new(weir_bin())
            .arg("diff")
            .arg(&a)
            .arg(&b)
            .args(["--key", "/id", "--time", "/window_end", "--show", "1"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let n = committed_parts(&a).len();
    let (code, report) = diff(&[]);
    assert_eq!(code, Some(1), "{report}");
    let first = report.lines().next().unwrap();
    assert_eq!(first, format!("a: {n} records, b: {n} records; 0 only in a, 0 only in b, {n} differ, 0 the same"));
    assert!(report.contains("\n  b: {") && report.contains("\"version\":2"), "{report}");
    let (code, report) = diff(&["--ignore", "/version"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report, format!("a: {n} records, b: {n} records; 0 only in a, 0 only in b, 0 differ, {n} the same\n"));
}
