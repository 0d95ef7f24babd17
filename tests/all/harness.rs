//! The plugins under the operator harness: records, watermarks and state.

use serde_json::{Value, json};
use weir_runtime::harness::OperatorHarness;
use weir_state::StateContent;
use weir_state_rocksdb::RocksDbBackend;
use weir_tests::plugin;
use weir_types::{Record, TimeDomain};

fn reading(id: &str, ts: i64, temp: f64) -> Record {
    Record::new(
        Some(id.as_bytes().to_vec()),
        json!({"id": id, "timestamp": ts, "temperature": temp}).to_string().into_bytes(),
        ts,
    )
}

fn values(records: &[Record]) -> Vec<Value> {
    records.iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
}

#[test]
fn celsius_converts_and_keeps_the_envelope() {
    let mut h = OperatorHarness::new(&plugin("celsius"), Value::Null).unwrap();
    h.process(vec![reading("sensor_1", 1000, 212.0), reading("sensor_2", 900, -40.0)]).unwrap();
    let out = h.take_output();
    assert_eq!(
        values(&out),
        vec![
            json!({"id": "sensor_1", "timestamp": 1000, "temperature": 100.0}),
            json!({"id": "sensor_2", "timestamp": 900, "temperature": -40.0}),
        ]
    );
    assert_eq!(out[1].key.as_deref(), Some(&b"sensor_2"[..]));
    assert_eq!(out[1].timestamp, 900);
}

#[test]
fn celsius_reports_bad_input_with_its_position() {
    let mut h = OperatorHarness::new(&plugin("celsius"), Value::Null).unwrap();
    let bad = Record::new(None, b"{\"id\":\"x\"}".to_vec(), 0);
    let err = h.process(vec![reading("a", 1, 32.0), bad]).unwrap_err().to_string();
    assert_eq!(
        err,
        "task harness-0/1 failed: plugin failed on record #1 of its batch: invalid JSON: missing field `timestamp` at line 1 column 10"
    );
}

#[test]
fn celsius_rejects_unknown_config() {
    let err = match OperatorHarness::new(&plugin("celsius"), json!({"ouput": "binary"})) {
        Ok(_) => panic!("config with a typo was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("task harness-0/1 failed: plugin failed in `init`: invalid config: unknown field `ouput`"),
        "{err}"
    );
}

#[test]
fn sensor_average_keeps_windows_in_state_until_the_watermark() {
    let mut h = OperatorHarness::new(&plugin("sensor-average"), Value::Null).unwrap();
    h.process(vec![reading("s1", 1000, 10.0), reading("s1", 4999, 20.0), reading("s2", 5000, 7.0)]).unwrap();
    assert!(h.take_output().is_empty());

    // One window per key in map state, one event-time timer per window.
    let state = h.state("windows").unwrap();
    let summary: Vec<(String, usize)> = state
        .iter()
        .map(|(_, key, content)| match content {
            StateContent::Map(entries) => (String::from_utf8(key.clone()).unwrap(), entries.len()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let mut summary = summary;
    summary.sort();
    assert_eq!(summary, vec![("s1".to_string(), 1), ("s2".to_string(), 1)]);
    let mut timers: Vec<(i64, Vec<u8>)> = h.timers().unwrap().into_iter().map(|t| (t.timestamp, t.key)).collect();
    timers.sort();
    assert_eq!(timers, vec![(4999, b"s1".to_vec()), (9999, b"s2".to_vec())]);
    assert!(h.timers().unwrap().iter().all(|t| t.domain == TimeDomain::EventTime));

    h.watermark(4998).unwrap();
    assert!(h.take_output().is_empty());
    h.watermark(4999).unwrap();
    assert_eq!(values(&h.take_output()), vec![json!({"id": "s1", "window_end": 5000, "avg_c": 15.0, "count": 2})]);
    assert_eq!(h.state("windows").unwrap().len(), 1, "the fired window's state is removed");

    // Late for a fired window: dropped and counted. Same key, open window: kept.
    h.process(vec![reading("s1", 4000, 99.0), reading("s1", 5001, 1.0)]).unwrap();
    assert_eq!(h.counters().get("late_records_dropped"), Some(&1));
    h.watermark(i64::MAX).unwrap();
    let mut out = values(&h.take_output());
    out.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
    assert_eq!(
        out,
        vec![
            json!({"id": "s1", "window_end": 10000, "avg_c": 1.0, "count": 1}),
            json!({"id": "s2", "window_end": 10000, "avg_c": 7.0, "count": 1}),
        ]
    );
    assert!(h.state("windows").unwrap().is_empty());
    assert!(h.timers().unwrap().is_empty());
}

#[test]
fn sensor_average_state_is_the_same_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Box::new(RocksDbBackend::open(dir.path(), 128).unwrap());
    let mut rocks = OperatorHarness::with_backend(&plugin("sensor-average"), Value::Null, backend).unwrap();
    let mut memory = OperatorHarness::new(&plugin("sensor-average"), Value::Null).unwrap();
    let input: Vec<Record> = (0..200).map(|i| reading(&format!("s{}", i % 7), i * 97, (i % 13) as f64)).collect();
    for h in [&mut rocks, &mut memory] {
        for chunk in input.chunks(33) {
            h.process(chunk.to_vec()).unwrap();
        }
        h.watermark(9_999).unwrap();
    }
    assert_eq!(rocks.state("windows").unwrap(), memory.state("windows").unwrap());
    assert_eq!(rocks.timers().unwrap(), memory.timers().unwrap());
    assert_eq!(values(&rocks.take_output()), values(&memory.take_output()));
}

#[test]
fn sensor_average_reads_binary_input_from_celsius() {
    let mut celsius = OperatorHarness::new(&plugin("celsius"), json!({"output": "binary"})).unwrap();
    celsius.process(vec![reading("s1", 100, 50.0), reading("s1", 200, 68.0)]).unwrap();
    let binary = celsius.take_output();
    assert!(serde_json::from_slice::<Value>(&binary[0].value).is_err(), "output is not JSON");
    let mut avg =
        OperatorHarness::new(&plugin("sensor-average"), json!({"input": "binary", "window_ms": 1000})).unwrap();
    avg.process(binary).unwrap();
    avg.watermark(999).unwrap();
    assert_eq!(values(&avg.take_output()), vec![json!({"id": "s1", "window_end": 1000, "avg_c": 15.0, "count": 2})]);
}
