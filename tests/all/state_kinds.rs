//! Every kind of keyed state through the SDK and the host: value, list and
//! map, prefetched with the batch or read through host calls, over memory and
//! RocksDB, with the same key several times in a batch and state carried
//! from batch to batch.

use serde_json::{Value, json};
use weir_runtime::harness::OperatorHarness;
use weir_state::StateContent;
use weir_state_rocksdb::RocksDbBackend;
use weir_tests::plugin;
use weir_types::Record;

fn command(key: &str, cmd: Value) -> Record {
    Record::new(Some(key.as_bytes().to_vec()), cmd.to_string().into_bytes(), 0)
}

/// Commands in batches, and what the plugin must see after each.
pub(crate) fn script() -> (Vec<Vec<Record>>, Vec<Value>) {
    let batches = vec![
        vec![
            command("a", json!({"op": "add", "item": "x"})),
            command("b", json!({"op": "add", "item": "y"})),
            command("a", json!({"op": "add", "item": "z"})),
        ],
        vec![
            command("a", json!({"op": "add", "item": "x"})),
            command("a", json!({"op": "replace", "items": ["q"]})),
            command("b", json!({"op": "untag", "item": "y"})),
        ],
        vec![
            command("a", json!({"op": "add", "item": "r"})),
            command("a", json!({"op": "untag", "item": "z"})),
            command("b", json!({"op": "clear"})),
        ],
        vec![command("b", json!({"op": "add", "item": "w"})), command("a", json!({"op": "replace", "items": []}))],
    ];
    let seen = |key: &str, count: Value, items: Value, tags: Value| json!({"key": key, "count": count, "items": items, "tags": tags});
    let expected = vec![
        seen("a", json!(1), json!(["x"]), json!({"x": 1})),
        seen("b", json!(1), json!(["y"]), json!({"y": 1})),
        seen("a", json!(2), json!(["x", "z"]), json!({"x": 1, "z": 2})),
        seen("a", json!(3), json!(["x", "z", "x"]), json!({"x": 3, "z": 2})),
        seen("a", json!(3), json!(["q"]), json!({"x": 3, "z": 2})),
        seen("b", json!(1), json!(["y"]), json!({})),
        seen("a", json!(4), json!(["q", "r"]), json!({"r": 4, "x": 3, "z": 2})),
        seen("a", json!(4), json!(["q", "r"]), json!({"r": 4, "x": 3})),
        seen("b", Value::Null, json!([]), json!({})),
        seen("b", json!(1), json!(["w"]), json!({"w": 1})),
        seen("a", json!(4), json!([]), json!({"r": 4, "x": 3})),
    ];
    (batches, expected)
}

/// A state's (key, content) pairs, without key groups.
pub(crate) fn contents(h: &mut OperatorHarness, name: &str) -> Vec<(String, StateContent)> {
    let mut all: Vec<_> =
        h.state(name).unwrap().into_iter().map(|(_, k, c)| (String::from_utf8(k).unwrap(), c)).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn check(mut h: OperatorHarness) {
    let (batches, expected) = script();
    for batch in batches {
        h.process(batch).unwrap();
    }
    let seen: Vec<Value> = h.take_output().iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    assert_eq!(seen, expected);
    // Counts are postcard varints, list items postcard strings, tags JSON.
    assert_eq!(
        contents(&mut h, "count"),
        vec![("a".into(), StateContent::Value(vec![4])), ("b".into(), StateContent::Value(vec![1]))]
    );
    assert_eq!(contents(&mut h, "items"), vec![("b".into(), StateContent::List(vec![vec![1, b'w']]))]);
    assert_eq!(
        contents(&mut h, "tags"),
        vec![
            (
                "a".into(),
                StateContent::Map(vec![(b"\"r\"".to_vec(), b"4".to_vec()), (b"\"x\"".to_vec(), b"3".to_vec())])
            ),
            ("b".into(), StateContent::Map(vec![(b"\"w\"".to_vec(), b"1".to_vec())])),
        ]
    );
}

#[test]
fn prefetched_state_on_memory() {
    check(OperatorHarness::new(&plugin("state-probe"), Value::Null).unwrap());
}

#[test]
fn prefetched_state_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Box::new(RocksDbBackend::open(dir.path(), 128).unwrap());
    check(OperatorHarness::with_backend(&plugin("state-probe"), Value::Null, backend).unwrap());
}

#[test]
fn large_state_on_memory() {
    check(OperatorHarness::new(&plugin("state-probe"), json!({"large": true})).unwrap());
}

#[test]
fn large_state_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Box::new(RocksDbBackend::open(dir.path(), 128).unwrap());
    check(OperatorHarness::with_backend(&plugin("state-probe"), json!({"large": true}), backend).unwrap());
}
