//! Barrier, snapshot, restore and rescale under the operator harness: a
//! Wasm operator (keyed state and timers) and host windows (a built-in and a
//! Wasm aggregate), snapshotted part-way, restored at the same, a higher and
//! a lower parallelism, give exactly the output of an uninterrupted run; a
//! plugin swapped at a barrier keeps the state, converting its encoding.

use serde_json::{Value, json};
use weir_runtime::harness::{HarnessSetup, OperatorHarness, SubtaskSnapshot, subtask_of};
use weir_spec::{Format, JobSpec};
use weir_tests::plugin;
use weir_types::Record;

fn reading(id: &str, ts: i64, temp: f64) -> Record {
    Record::new(
        Some(id.as_bytes().to_vec()),
        json!({"id": id, "timestamp": ts, "temperature": temp}).to_string().into_bytes(),
        ts,
    )
}

/// 9 sensors, a reading every 100 ms each, for 12 s; temperatures vary.
fn readings() -> Vec<Record> {
    (0..120 * 9).map(|i| reading(&format!("s{}", i % 9), (i / 9) * 100, ((i * 37) % 23) as f64)).collect()
}

fn setup(operator: &str) -> HarnessSetup {
    let text = format!(
        "name: snapshots\nsources: [{{id: input, type: generator, generator: sensor-bench, events: 1}}]\n\
         operators:\n{operator}sinks: [{{id: out, type: blackhole, input: op}}]\n"
    );
    let spec = JobSpec::parse(&text, Format::Yaml).unwrap();
    HarnessSetup::from_spec(&spec, "op", &weir_wasm::PluginEngine::new().unwrap()).unwrap()
}

/// Runs `records` (in batches of 50, the watermark after each) through
/// `parallelism` subtasks, routing by key group; returns every output line.
fn run(subtasks: &mut [OperatorHarness], records: &[Record], max_parallelism: u32) -> Vec<String> {
    let mut out = Vec::new();
    for batch in records.chunks(50) {
        let mut parts = vec![Vec::new(); subtasks.len()];
        for r in batch {
            parts[subtask_of(r.key.as_deref().unwrap(), subtasks.len() as u32, max_parallelism)].push(r.clone());
        }
        let watermark = batch.iter().map(|r| r.timestamp).max().unwrap() - 1;
        for (h, part) in subtasks.iter_mut().zip(parts) {
            h.process(part).unwrap();
            h.watermark(watermark).unwrap();
        }
    }
    for h in subtasks.iter_mut() {
        out.extend(h.take_output().iter().map(|r| String::from_utf8(r.value.clone()).unwrap()));
    }
    out
}

fn finish(subtasks: &mut [OperatorHarness]) -> Vec<String> {
    let mut out = Vec::new();
    for h in subtasks.iter_mut() {
        h.watermark(i64::MAX).unwrap();
        out.extend(h.take_output().iter().map(|r| String::from_utf8(r.value.clone()).unwrap()));
    }
    out
}

/// The output of an uninterrupted run at parallelism 1, and of runs that
/// take a barrier after `cut` records and continue at each parallelism.
fn rescales_exactly(operator: &str) {
    let setup = setup(operator);
    let maxp = setup.max_parallelism;
    let all = readings();
    let mut reference = vec![OperatorHarness::from_setup(&setup, 0, 1).unwrap()];
    let mut expected = run(&mut reference, &all, maxp);
    expected.extend(finish(&mut reference));
    expected.sort();
    assert!(expected.len() >= 9 * 2, "every sensor has windows: {expected:?}");

    let cut = 500;
    for before in [1, 2, 3] {
        let mut first: Vec<OperatorHarness> =
            (0..before).map(|i| OperatorHarness::from_setup(&setup, i, before).unwrap()).collect();
        let early = run(&mut first, &all[..cut], maxp);
        let snapshots: Vec<SubtaskSnapshot> =
            first.iter_mut().enumerate().map(|(i, h)| h.barrier(i as u64 + 1).unwrap()).collect();
        for s in &snapshots {
            assert_eq!(s.key_groups, weir_types::key_groups_of_task(s.subtask, before, maxp));
        }
        for after in [1, 2, 4] {
            let mut second = OperatorHarness::rescale(&setup, &snapshots, after).unwrap();
            let mut got = early.clone();
            got.extend(run(&mut second, &all[cut..], maxp));
            got.extend(finish(&mut second));
            got.sort();
            assert_eq!(got, expected, "{before} → {after}");
        }
    }
}

#[test]
fn a_wasm_operator_s_state_and_timers_rescale_exactly() {
    rescales_exactly(&format!(
        "  - {{id: op, input: input, key_by: key, plugin: {}}}\n",
        plugin("sensor-average").display()
    ));
}

#[test]
fn a_built_in_window_rescales_exactly() {
    rescales_exactly(
        "  - {id: op, input: input, key_by: key, window: {tumbling: 2s, allowed_lateness: 500ms}, aggregate: {avg: /temperature}}\n",
    );
}

#[test]
fn a_wasm_aggregate_window_rescales_exactly() {
    rescales_exactly(&format!(
        "  - {{id: op, input: input, key_by: key, window: {{sliding: {{size: 2s, slide: 1s}}}}, plugin: {}}}\n",
        plugin("average").display()
    ));
}

#[test]
fn a_snapshot_records_the_states_and_a_restore_takes_only_its_key_groups() {
    let setup =
        setup(&format!("  - {{id: op, input: input, key_by: key, plugin: {}}}\n", plugin("sensor-average").display()));
    let mut h = OperatorHarness::from_setup(&setup, 0, 1).unwrap();
    h.process(vec![reading("sensor_7", 1000, 10.0), reading("sensor_8", 1000, 20.0)]).unwrap();
    let snapshot = h.barrier(7).unwrap();
    assert_eq!(snapshot.key_groups, 0..128);
    let states: Vec<(String, &str, &str)> =
        snapshot.states.iter().map(|s| (s.name.clone(), s.kind.name(), s.encoding.name())).collect();
    assert_eq!(states, vec![("windows".to_string(), "map", "packed-map")]);
    // Key groups 41 and 66 of 128: subtasks 0 and 1 of 2.
    let (s1, s8) = (subtask_of(b"sensor_7", 2, 128), subtask_of(b"sensor_8", 2, 128));
    assert_ne!(s1, s8, "the two keys land in different subtasks at parallelism 2");
    let mut halves = OperatorHarness::rescale(&setup, &[snapshot], 2).unwrap();
    let keys = |h: &mut OperatorHarness| -> Vec<Vec<u8>> {
        h.state("windows").unwrap().into_iter().map(|(_, k, _)| k).collect()
    };
    assert_eq!(keys(&mut halves[s1]), vec![b"sensor_7".to_vec()]);
    assert_eq!(keys(&mut halves[s8]), vec![b"sensor_8".to_vec()]);
    let timers: Vec<Vec<u8>> = halves[s1].timers().unwrap().into_iter().map(|t| t.key).collect();
    assert_eq!(timers, vec![b"sensor_7".to_vec()], "timers go with their key group");
}

fn command(key: &str, cmd: Value) -> Record {
    Record::new(Some(key.as_bytes().to_vec()), cmd.to_string().into_bytes(), 0)
}

fn outputs(h: &mut OperatorHarness) -> Vec<Value> {
    h.take_output().iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
}

#[test]
fn a_plugin_swapped_at_a_barrier_keeps_the_state_and_converts_its_encoding() {
    let probe = plugin("state-probe");
    let setup = setup(&format!("  - {{id: op, input: input, key_by: key, plugin: {}}}\n", probe.display()));
    let mut h = OperatorHarness::from_setup(&setup, 0, 1).unwrap();
    h.process(vec![command("a", json!({"op": "add", "item": "x"})), command("a", json!({"op": "add", "item": "y"}))])
        .unwrap();
    h.take_output();
    let before = h.barrier(1).unwrap();
    let tags = before.states.iter().find(|s| s.name == "tags").unwrap();
    assert_eq!(tags.encoding.name(), "packed-map", "a prefetched map is stored packed");

    // The same plugin, now reading the map row by row: the state is moved, not lost.
    let plugin = setup.plugin.clone().unwrap();
    h.replace_plugin(&plugin, Some(json!({"large": true}))).unwrap();
    h.process(vec![command("a", json!({"op": "add", "item": "z"}))]).unwrap();
    assert_eq!(
        outputs(&mut h),
        vec![json!({"key": "a", "count": 3, "items": ["x", "y", "z"], "tags": {"x": 1, "y": 2, "z": 3}})]
    );
    let after = h.barrier(2).unwrap();
    assert_eq!(after.states.iter().find(|s| s.name == "tags").unwrap().encoding.name(), "rows");

    // A restore of the packed snapshot into the row-reading version converts too.
    let mut large = setup.clone();
    large.operator.config = Some(json!({"large": true}));
    let mut restored = OperatorHarness::restore(&large, &[before], 0, 1).unwrap();
    restored.process(vec![command("a", json!({"op": "untag", "item": "x"}))]).unwrap();
    assert_eq!(outputs(&mut restored), vec![json!({"key": "a", "count": 2, "items": ["x", "y"], "tags": {"y": 2}})]);
}

#[test]
fn a_window_s_function_swapped_at_a_barrier_keeps_its_windows() {
    let setup = setup(&format!(
        "  - {{id: op, input: input, key_by: key, window: {{tumbling: 2s}}, plugin: {}}}\n",
        plugin("average").display()
    ));
    let all = readings();
    let mut reference = vec![OperatorHarness::from_setup(&setup, 0, 1).unwrap()];
    let mut expected = run(&mut reference, &all, 128);
    expected.extend(finish(&mut reference));

    let mut h = vec![OperatorHarness::from_setup(&setup, 0, 1).unwrap()];
    let mut got = run(&mut h, &all[..500], 128);
    h[0].barrier(1).unwrap();
    // A new instance of the aggregate (another version would do the same):
    // the open windows' accumulators are the host's and carry on.
    h[0].replace_plugin(setup.plugin.as_ref().unwrap(), None).unwrap();
    got.extend(run(&mut h, &all[500..], 128));
    got.extend(finish(&mut h));
    assert_eq!(got, expected);
    assert_eq!(h[0].counters().get("plugin_swaps"), Some(&1));

    // Not by a function of another world.
    let celsius = weir_wasm::PluginEngine::new().unwrap().load_file(&plugin("celsius")).unwrap();
    let err = h[0].replace_plugin(&celsius, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "operator `op`: a window's function can only be replaced by one of the same world, and {} implements \
             weir:plugin/operator@0.1.0",
            plugin("celsius").display()
        )
    );
}
