//! Upgrading a running operator in place: under load, at parallelism 1 and
//! 4, every record before the upgrade's barrier is the old version's and
//! every one after it the new one's, with exactly the output of a run
//! without an upgrade; a version that would fail (its `init` fails, another
//! world, a state of another kind) is refused and the old one runs on.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::jobs::{engine, outputs, sensor_job, sorted};
use weir_runtime::{ErrorClass, JobOptions, JobOutcome, JobStatus, Upgrade, run_job, start};

fn upgrade_to(name: &str, config: Option<serde_json::Value>) -> Upgrade {
    let plugin = engine().load_file(&weir_tests::plugin(name)).unwrap();
    Upgrade { node: "averages".into(), plugin, label: format!("{name}@2.0.0"), config }
}

/// The window end and whether version 2 wrote it, per sensor, in output order.
fn versions_by_sensor(lines: &[String]) -> BTreeMap<String, Vec<(i64, bool)>> {
    let mut by = BTreeMap::<String, Vec<(i64, bool)>>::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        by.entry(id).or_default().push((v["window_end"].as_i64().unwrap(), v.get("version").is_some()));
    }
    by
}

fn hot_swap_under_load(parallelism: u32) {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 6, 40000), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted(outputs(reference.path()));

    let dir = tempfile::tempdir().unwrap();
    let job =
        start(&sensor_job(dir.path(), parallelism, "rocksdb", 6, 15000), &JobOptions::default(), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(job.running_plugins()["averages"], "sensor-average");
    let upgraded =
        job.upgrade(upgrade_to("sensor-average-v2", None)).unwrap().wait_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((upgraded.from.as_str(), upgraded.to.as_str()), ("sensor-average", "sensor-average-v2@2.0.0"));
    assert_eq!(job.running_plugins()["averages"], "sensor-average-v2@2.0.0");
    let report = job.wait().unwrap();
    assert_eq!(report.outcome, JobOutcome::Finished);
    let averages = report.nodes.iter().find(|n| n.node == "averages").unwrap();
    assert_eq!(averages.counters.get("plugin_swaps"), Some(&u64::from(parallelism)), "every subtask swapped once");

    let [out, windows] = outputs(dir.path());
    // Per sensor: version 1's windows, then version 2's — one split, at the barrier.
    let by_sensor = versions_by_sensor(&out);
    let (mut old, mut new) = (0, 0);
    for (sensor, ends) in &by_sensor {
        let split = ends.iter().position(|(_, v2)| *v2).unwrap_or(ends.len());
        assert!(ends[split..].iter().all(|(_, v2)| *v2), "{sensor}: version 1 after version 2: {ends:?}");
        assert!(ends.windows(2).all(|w| w[0].0 < w[1].0), "{sensor}: windows in order");
        old += split;
        new += ends.len() - split;
    }
    assert!(old > 0 && new > 0, "the upgrade came mid-way: {old} windows by version 1, {new} by version 2");
    // Over the same sums: exactly the output of a run without an upgrade.
    let as_v1: Vec<String> = out.iter().map(|l| l.replace(",\"version\":2}", "}")).collect();
    assert_eq!(sorted([as_v1, windows]), expected);
    // The upgrade's checkpoint and later ones name the new version.
    let store = weir_checkpoint::CheckpointStore::open(&dir.path().join("checkpoints")).unwrap();
    let (_, latest) = store.latest().unwrap().unwrap();
    assert!(latest.id >= upgraded.checkpoint);
    assert_eq!(latest.plugin_versions["averages"], "sensor-average-v2@2.0.0");
}

#[test]
fn a_hot_swap_under_load_at_parallelism_one_splits_the_output_at_one_barrier_exactly() {
    hot_swap_under_load(1);
}

#[test]
fn a_hot_swap_under_load_at_parallelism_four_splits_the_output_at_one_barrier_exactly() {
    hot_swap_under_load(4);
}

#[test]
fn a_version_that_would_fail_is_refused_and_the_old_one_runs_on_exactly() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&sensor_job(reference.path(), 1, "memory", 4, 40000), &JobOptions::default(), &engine()).unwrap();
    let expected = outputs(reference.path());

    let dir = tempfile::tempdir().unwrap();
    let job = start(&sensor_job(dir.path(), 2, "memory", 4, 40000), &JobOptions::default(), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    let refused = |upgrade: Upgrade| job.upgrade(upgrade).unwrap_err();

    let init = refused(upgrade_to("trap-on", Some(serde_json::json!({"fail_init": "v3 cannot start"}))));
    assert_eq!((init.class(), init.code()), (ErrorClass::Invalid, "upgrade_refused"));
    assert_eq!(
        init.to_string(),
        "cannot upgrade operator `averages` to trap-on@2.0.0: task averages-0/1 failed: plugin failed in `init`: \
         v3 cannot start; it runs on with sensor-average"
    );
    let world = refused(Upgrade { node: "averages".into(), ..upgrade_to("average", None) });
    assert_eq!(
        world.to_string(),
        "cannot upgrade operator `averages` to average@2.0.0: the node runs an operator plugin and average@2.0.0 \
         is an aggregator; it runs on with sensor-average"
    );
    let kind = refused(upgrade_to("declare", Some(serde_json::json!({"states": {"windows": "value"}}))));
    assert_eq!(
        kind.to_string(),
        "cannot upgrade operator `averages` to declare@2.0.0: it declares state `windows` a value state, and the \
         node holds it as a map state: a state cannot change kind; it runs on with sensor-average"
    );
    let missing = job.upgrade(Upgrade { node: "nowhere".into(), ..upgrade_to("sensor-average-v2", None) }).unwrap_err();
    assert_eq!(missing.to_string(), "operator `nowhere`: job `sensors` has no operator `nowhere`");

    assert_eq!(job.running_plugins()["averages"], "sensor-average");
    let report = job.wait().unwrap();
    assert_eq!(report.outcome, JobOutcome::Finished);
    assert_eq!(report.nodes.iter().find(|n| n.node == "averages").unwrap().counters.get("plugin_swaps"), None);
    assert_eq!(sorted(outputs(dir.path())), sorted(expected));
}

/// Readings keyed by sensor into `running-sum` (`plugin`), into a file sink.
fn running_sum_job(dir: &std::path::Path, parallelism: u32, backend: &str, plugin: &str) -> weir_spec::JobSpec {
    let text = format!(
        "name: sums
parallelism: {parallelism}
state: {{ backend: {backend}, dir: {state} }}
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 12, seed: 3, start: 1700000000000, events: 12000,
       rate: 6000 }}
operators:
  - {{ id: sums, input: readings, key_by: key, plugin: {plugin} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: sums }}
",
        state = dir.join("state").display(),
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        plugin = weir_tests::plugin(plugin).display(),
    );
    weir_spec::JobSpec::parse(&text, weir_spec::Format::Yaml).unwrap()
}

fn sorted_lines(dir: &std::path::Path) -> Vec<String> {
    let mut lines = weir_tests::committed_parts(&dir.join("out"));
    lines.sort();
    lines
}

fn sums_upgrade(name: &str) -> Upgrade {
    let plugin = engine().load_file(&weir_tests::plugin(name)).unwrap();
    Upgrade { node: "sums".into(), plugin, label: name.into(), config: None }
}

#[test]
fn a_new_version_migrates_the_state_an_old_one_wrote_at_a_hot_swap_and_a_rollback_past_it_is_refused() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&running_sum_job(reference.path(), 1, "memory", "running-sum"), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted_lines(reference.path());
    assert_eq!(expected.len(), 12000);

    for backend in ["memory", "rocksdb"] {
        let dir = tempfile::tempdir().unwrap();
        let job =
            start(&running_sum_job(dir.path(), 2, backend, "running-sum"), &JobOptions::default(), &engine()).unwrap();
        while job.status() == JobStatus::Starting {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(300));
        // Version 2 keeps the sums binary: handed version 1's JSON without
        // migrating it, its first record would fail.
        let upgraded =
            job.upgrade(sums_upgrade("running-sum-v2")).unwrap().wait_timeout(Duration::from_secs(30)).unwrap();
        let store = weir_checkpoint::CheckpointStore::open(&dir.path().join("checkpoints")).unwrap();
        let at = weir_checkpoint::CheckpointStore::load(&store.path(upgraded.checkpoint)).unwrap();
        assert_eq!(at.operators["sums"].states[0].schema, 0, "the barrier's state is version 1's");
        std::thread::sleep(Duration::from_millis(200));
        // Back to version 1, which cannot read binary sums: refused, and
        // version 2 runs on.
        let err = job.upgrade(sums_upgrade("running-sum")).unwrap_err();
        assert_eq!(err.code(), "upgrade_refused");
        assert_eq!(
            err.to_string(),
            "cannot upgrade operator `sums` to running-sum: the node writes state `acc` at schema 1 and it writes \
             schema 0 without a migration: restore a savepoint taken before the state was migrated; it runs on with \
             running-sum-v2"
        );
        let report = job.wait().unwrap();
        assert_eq!(report.outcome, JobOutcome::Finished, "{backend}");
        assert_eq!(
            sorted_lines(dir.path()),
            expected,
            "{backend}: exact across the migration and the refused rollback"
        );
        let (_, latest) = store.latest().unwrap().unwrap();
        assert_eq!(latest.operators["sums"].states[0].schema, 1, "{backend}");
        assert_eq!(latest.plugin_versions["sums"], "running-sum-v2");
    }
}

#[test]
fn a_savepoint_of_version_one_restores_into_version_two_through_its_migration_and_the_dry_run_says_so() {
    let reference = tempfile::tempdir().unwrap();
    run_job(&running_sum_job(reference.path(), 1, "memory", "running-sum"), &JobOptions::default(), &engine()).unwrap();
    let expected = sorted_lines(reference.path());

    let dir = tempfile::tempdir().unwrap();
    let job =
        start(&running_sum_job(dir.path(), 1, "rocksdb", "running-sum"), &JobOptions::default(), &engine()).unwrap();
    while job.status() == JobStatus::Starting {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    let done = job.savepoint(&dir.path().join("savepoints"), true).unwrap().wait().unwrap();
    job.wait().unwrap();
    let savepoint = weir_runtime::Restore::load(done.savepoint.as_ref().unwrap()).unwrap();

    let mut v2 = running_sum_job(dir.path(), 2, "memory", "running-sum-v2");
    v2.checkpoint.as_mut().unwrap().dir = dir.path().join("after");
    let plugins = weir_runtime::load_plugins(&v2, &engine()).unwrap();
    let check = weir_runtime::check_restore(&savepoint, &v2, &plugins, &Default::default()).unwrap();
    assert!(check.accepted());
    assert!(
        check.to_text().contains("    plugin running-sum → running-sum-v2\n    state `acc`: migrated (value) from schema 0 to 1 by the plugin\n"),
        "{}",
        check.to_text()
    );
    run_job(&v2, &JobOptions { restore: Some(savepoint), ..JobOptions::default() }, &engine()).unwrap();
    assert_eq!(sorted_lines(dir.path()), expected);
}
