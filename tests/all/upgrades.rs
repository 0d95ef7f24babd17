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
        start(&sensor_job(dir.path(), parallelism, "rocksdb", 6, 40000), &JobOptions::default(), &engine()).unwrap();
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
