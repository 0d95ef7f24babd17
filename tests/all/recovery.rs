//! Exactly-once under real crashes: `weir run` is killed with SIGKILL at
//! random moments (and while a checkpoint is being written), restarted each
//! time, and the committed output must equal a crash-free run's, line for
//! line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{committed_parts, plugin, weir_bin};

/// A keyed, stateful job with late data, punctuated watermarks (so results
/// do not depend on timing) and checkpoints every 100 ms.
fn write_job(dir: &Path, backend: &str) -> PathBuf {
    let spec = format!(
        "name: crashy
state: {{ backend: {backend} }}
checkpoint: {{ interval: 100ms, dir: checkpoints, retain: 2 }}
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 50
    seed: 11
    start: 1700000000000
    events: 40000
    rate: 10000
    disorder: 800ms
    watermark: {{ max_out_of_orderness: 300ms, punctuated: true }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average} }}
  - id: maxima
    input: celsius
    key_by: key
    window: {{ tumbling: 1s, allowed_lateness: 100ms, late_output: late }}
    aggregate: {{ max: /temperature }}
  - {{ id: means, input: celsius, key_by: key, window: {{ tumbling: 1s }}, plugin: {aggregate} }}
  - id: collected
    input: celsius
    key_by: key
    window: {{ sliding: {{ size: 1s, slide: 500ms }}, allowed_lateness: 100ms }}
    plugin: {collect}
sinks:
  - {{ id: out, type: file, path: out, input: averages }}
  - {{ id: windows, type: file, path: windows, input: maxima }}
  - {{ id: late, type: file, path: late, input: maxima.late }}
  - {{ id: means_out, type: file, path: means, input: means }}
  - {{ id: collected_out, type: file, path: collected, input: collected }}
",
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
        aggregate = plugin("average").display(),
        collect = plugin("window-collect").display(),
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

/// The committed output of every sink of the crash job: a process
/// function's, a built-in window's and its late output, a Wasm aggregate's
/// and a window processor's.
fn outputs(dir: &Path) -> [Vec<String>; 5] {
    ["out", "windows", "late", "means", "collected"].map(|sink| committed_parts(&dir.join(sink)))
}

fn start(job: &Path) -> Child {
    start_with(job, &[])
}

fn start_with(job: &Path, args: &[&str]) -> Child {
    Command::new(weir_bin())
        .arg("run")
        .arg(job)
        .args(args)
        .arg("--progress")
        .arg("0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn crash_and_recover(backend: &str) {
    let reference = tempfile::tempdir().unwrap();
    let job = write_job(reference.path(), backend);
    let out = start(&job).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = outputs(reference.path());
    assert!(expected.iter().all(|o| o.len() > 5), "every sink gets output: {:?}", expected.each_ref().map(Vec::len));

    let seed = weir_tests::crash::seed();
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path(), backend);
    let kills = weir_tests::crash::kill_repeatedly(|| start(&job), &dir.path().join("checkpoints"), 6, seed);
    let resumed = kills.logs.iter().filter(|log| log.contains("resuming from checkpoint")).count();
    let during_checkpoint = kills.during_checkpoint;
    let out = start(&job).wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("resuming from checkpoint"), "{log}");
    assert_eq!(resumed, 5, "every restart resumed from a checkpoint (seed {seed})");
    assert!(during_checkpoint >= 1, "no kill landed while a checkpoint was written (seed {seed})");
    let got = outputs(dir.path());
    assert_eq!(got.each_ref().map(Vec::len), expected.each_ref().map(Vec::len), "seed {seed}");
    assert_eq!(got, expected, "seed {seed}");
    let debris: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(debris.is_empty(), "uncommitted parts left: {debris:?}");
    if backend == "rocksdb" {
        check_shared_files(&dir.path().join("checkpoints"));
    }
}

/// RocksDB checkpoints are incremental: SST files live once in `shared/`,
/// retained checkpoints refer to them, and none is left unreferenced.
fn check_shared_files(checkpoints: &Path) {
    let mut referenced = std::collections::BTreeSet::new();
    let mut manifests = 0;
    for entry in std::fs::read_dir(checkpoints).unwrap() {
        let path = entry.unwrap().path().join("_manifest.json");
        if !path.exists() {
            continue;
        }
        manifests += 1;
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for (node, op) in m["operators"].as_object().unwrap() {
            for subtask in op["subtasks"].as_array().unwrap() {
                if node != "celsius" {
                    assert_eq!(subtask["state"]["format"], "rocksdb", "{node}: {subtask}");
                    let shared = subtask["state"]["shared"].as_object().unwrap();
                    referenced.extend(shared.values().map(|v| v.as_str().unwrap().to_string()));
                }
            }
        }
    }
    assert_eq!(manifests, 2, "retain: 2");
    let stored: std::collections::BTreeSet<String> = std::fs::read_dir(checkpoints.join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!stored.is_empty());
    assert_eq!(stored, referenced, "shared files = the files retained checkpoints refer to");
}

/// The complete checkpoints in `dir/checkpoints`.
fn checkpoints(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("chk-") && !n.ends_with(".inprogress"))
                .filter(|n| dir.join("checkpoints").join(n).join("_manifest.json").exists())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Kills the job once it has completed a checkpoint of its own.
fn kill_after_a_checkpoint(job: &Path, dir: &Path, args: &[&str]) {
    let before = checkpoints(dir);
    let mut child = start_with(job, args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoints(dir).last() == before.last() {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no checkpoint completed");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_checkpoint_restores_into_the_other_state_backend() {
    let reference = tempfile::tempdir().unwrap();
    let out = start(&write_job(reference.path(), "memory")).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = outputs(reference.path());

    let dir = tempfile::tempdir().unwrap();
    let job = write_job(dir.path(), "memory");
    // Memory checkpoints (logical) into RocksDB, RocksDB checkpoints (native) into memory.
    kill_after_a_checkpoint(&job, dir.path(), &[]);
    kill_after_a_checkpoint(&job, dir.path(), &["--state-backend", "rocksdb"]);
    let latest = checkpoints(dir.path()).pop().unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("checkpoints").join(latest).join("_manifest.json")).unwrap();
    assert!(manifest.contains("\"format\": \"rocksdb\""), "{manifest}");
    let out = start(&job).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(outputs(dir.path()), expected);
}

#[test]
fn killed_at_random_the_memory_job_commits_exactly_a_crash_free_output() {
    crash_and_recover("memory");
}

#[test]
fn killed_at_random_the_rocksdb_job_commits_exactly_a_crash_free_output() {
    crash_and_recover("rocksdb");
}

/// The sensor job with a pass-through plugin before `celsius` that traps on
/// the reading at `trap_at` on the first attempt only.
fn write_trapping_job(dir: &Path, trap_at: Option<i64>) -> PathBuf {
    let config = match trap_at {
        Some(ts) => format!("{{ panic_at: {ts}, on_attempt: 0 }}"),
        None => "{}".to_string(),
    };
    let spec = format!(
        "name: trapping
checkpoint: {{ interval: 100ms, dir: checkpoints }}
restart: {{ strategy: fixed-delay, attempts: 2, delay: 100ms }}
sources:
  - id: readings
    type: generator
    generator: sensors
    sensors: 10
    seed: 5
    start: 1700000000000
    events: 20000
    rate: 10000
    watermark: {{ max_out_of_orderness: 0ms, punctuated: true }}
operators:
  - {{ id: flaky, input: readings, plugin: {trap}, config: {config} }}
  - {{ id: celsius, input: flaky, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average} }}
sinks:
  - {{ id: out, type: file, path: out, input: averages }}
",
        trap = plugin("trap-on").display(),
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn a_plugin_that_traps_once_restarts_the_job_from_its_checkpoint_with_exact_output() {
    let reference = tempfile::tempdir().unwrap();
    let out = start(&write_trapping_job(reference.path(), None)).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = committed_parts(&reference.path().join("out"));

    let dir = tempfile::tempdir().unwrap();
    // Tick 1000 of 2000: about a second in, after several checkpoints.
    let out = start(&write_trapping_job(dir.path(), Some(1_700_000_100_000))).wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let restart = log.lines().find(|l| l.contains("restarting the job from its latest checkpoint")).expect(&log);
    assert!(restart.contains("attempt=1"), "{restart}");
    assert!(restart.contains("reading from sensor_0 is cursed"), "{restart}");
    assert!(restart.contains("checkpoint="), "restarted from a checkpoint, not from scratch: {restart}");
    assert_eq!(log.matches("restarting the job").count(), 1, "{log}");
    assert_eq!(committed_parts(&dir.path().join("out")), expected);

    // The checkpoints it left: the newest three (`retain`'s default), the
    // last the final one of the finished job (its two tasks finished).
    let list =
        Command::new(weir_bin()).args(["checkpoints", "list"]).arg(dir.path().join("checkpoints")).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("    id  completed (UTC)"), "{text}");
    assert!(lines[3].ends_with("  2 (2 finished)"), "{text}");
    assert!(!lines[1].contains("(2 finished)") && !lines[2].contains("(2 finished)"), "{text}");
    // Running the finished job again does nothing, and says so.
    let job = dir.path().join("job.yaml");
    let again = start(&job).wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("the job already ran to its end"));

    // An older checkpoint, by hand: the replay rewrites the same parts.
    let oldest = lines[1].split_whitespace().next().unwrap().parse::<u64>().unwrap();
    let chk = dir.path().join("checkpoints").join(format!("chk-{oldest:08}"));
    let out = start_with(&job, &["--from-checkpoint", chk.to_str().unwrap()]).wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && log.contains(&format!("resuming from checkpoint job=trapping checkpoint={oldest}")),
        "{log}"
    );
    assert_eq!(committed_parts(&dir.path().join("out")), expected);

    // --fresh runs it again from the start; its parts follow the old ones.
    let out = start_with(&job, &["--fresh"]).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(committed_parts(&dir.path().join("out")), [expected.clone(), expected].concat());
}
