//! Triggers, global and count-sliding windows, driven record by record with
//! a hand-moved clock: exact outputs at exact times; and a window
//! processor's buffered records (the `window-collect` plugin, memory and
//! RocksDB): what it sees and that nothing stays behind.

use std::time::Duration;

use weir_spec::{AggregateSpec, CountSpec, OnError, TriggerSpec, WindowSpec};
use weir_state::MemoryBackend;
use weir_types::{MAX_WATERMARK, MIN_WATERMARK, RecordBatch, TaskInfo, Timestamp};

use super::{WindowFunction, WindowOperator, WindowSetup};
use crate::metrics::NodeMetrics;
use crate::node::Node;
use crate::operator::{Clock, Emitted};

fn operator(window: WindowSpec) -> WindowOperator {
    operator_with(window, OnError::Fail)
}

fn operator_with(window: WindowSpec, on_error: OnError) -> WindowOperator {
    let function = WindowFunction::Builtin(AggregateSpec::Sum("/v".into()));
    let mut op = build(window, function, on_error, Box::new(MemoryBackend::new(128)));
    op.clock = Clock::Manual(0);
    op
}

fn build(
    window: WindowSpec,
    function: WindowFunction,
    on_error: OnError,
    backend: Box<dyn weir_state::KeyedStateBackend>,
) -> WindowOperator {
    let task = TaskInfo { node: "w".into(), index: 0, parallelism: 1 };
    let instance = crate::operator::InstanceSetup {
        limits: weir_wasm::Limits::default(),
        grants: weir_wasm::Grants::default(),
        args: weir_wasm::InitArgs {
            node_id: "w".into(),
            config: "null".into(),
            subtask_index: 0,
            parallelism: 1,
            attempt: 0,
        },
    };
    let setup =
        WindowSetup { window: &window, function, instance, on_error, batch_size: 1024, watermark: MIN_WATERMARK };
    let metrics = NodeMetrics::detached("w");
    WindowOperator::new(task, weir_state::KeyedState::new(backend, 128, 0..128), setup, metrics).unwrap()
}

/// Records `(key, timestamp, v)` as one batch.
fn batch(records: &[(&str, Timestamp, i64)]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for (k, t, v) in records {
        b.push(Some(k.as_bytes()), format!(r#"{{"v":{v}}}"#).as_bytes(), *t);
    }
    b
}

/// The main output as `value@timestamp` lines.
fn lines(emitted: Emitted) -> Vec<String> {
    emitted.main.iter().map(|r| format!("{}@{}", String::from_utf8_lossy(r.value), r.timestamp)).collect()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn count_sliding_windows_fire_every_slide_records_with_the_last_size() {
    let mut op = operator(WindowSpec { count: Some(CountSpec { size: 3, slide: 2 }), ..WindowSpec::default() });
    let out = op.process(batch(&[("a", 10, 1), ("a", 5, 2), ("b", 1, 7), ("a", 30, 3)])).unwrap();
    // Like Flink's countWindow(3, 2): the first firing has 2 records.
    assert_eq!(lines(out), vec![r#"{"key":"a","records":2,"sum":3.0}@10"#]);
    // Across calls: the count and the open windows are in state.
    let out = op.process(batch(&[("a", 50, 4), ("b", 2, 8)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":3,"sum":9.0}@50"#, r#"{"key":"b","records":2,"sum":15.0}@2"#]);
    let out = op.process(batch(&[("a", 60, 5), ("a", 70, 6)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":3,"sum":15.0}@70"#]);
    // Incomplete windows never fire, not even at the end of input.
    assert!(lines(op.advance_watermark(MAX_WATERMARK).unwrap()).is_empty());
}

#[test]
fn a_refused_record_takes_no_place_in_a_count_window() {
    let mut op = operator_with(
        WindowSpec { count: Some(CountSpec { size: 2, slide: 2 }), ..WindowSpec::default() },
        OnError::DeadLetter,
    );
    let mut records = batch(&[("a", 1, 1)]);
    records.push(Some(b"a"), br#"{"v":"two"}"#, 2);
    records.push(Some(b"b"), br#"{}"#, 3);
    for (t, v) in [(4, 4), (5, 8), (6, 16)] {
        records.push(Some(b"a"), format!(r#"{{"v":{v}}}"#).as_bytes(), t);
    }
    let out = op.process(records).unwrap();
    let dead: Vec<String> = out
        .side
        .iter()
        .flat_map(|(name, b)| b.iter().map(move |r| format!("{name}: {}", String::from_utf8_lossy(r.value))))
        .collect();
    assert_eq!(
        dead,
        vec![
            r#"errors: {"error":"a record has no number at /v (invalid JSON: invalid type: string \"two\", expected f64 at line 1 column 10): {\"v\":\"two\"}","key":"a","node":"w","timestamp":2,"value":{"v":"two"}}"#,
            r#"errors: {"error":"a record has no number at /v (not a number): {}","key":"b","node":"w","timestamp":3,"value":{}}"#,
        ]
    );
    // Windows of two accepted records each: {1, 4} and {8, 16}.
    assert_eq!(lines(out), vec![r#"{"key":"a","records":2,"sum":5.0}@4"#, r#"{"key":"a","records":2,"sum":24.0}@6"#]);
    // The refused records were not counted: one more for `a` is a new window.
    assert!(lines(op.process(batch(&[("a", 7, 1), ("b", 8, 1)])).unwrap()).is_empty());
    let out = op.process(batch(&[("a", 9, 2), ("b", 10, 2)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":2,"sum":3.0}@9"#, r#"{"key":"b","records":2,"sum":3.0}@10"#]);
}

#[test]
fn a_global_window_with_a_count_trigger_fires_its_whole_content_every_n_records() {
    let mut op = operator(WindowSpec { global: true, trigger: TriggerSpec::Count(2), ..WindowSpec::default() });
    let out = op.process(batch(&[("a", 1, 1), ("a", 2, 2), ("a", 3, 3)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":2,"sum":3.0}@9223372036854775806"#]);
    let out = op.process(batch(&[("a", 4, 4)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":4,"sum":10.0}@9223372036854775806"#]);
    // A count trigger does not fire at the end of input (Flink's CountTrigger).
    assert!(lines(op.advance_watermark(MAX_WATERMARK).unwrap()).is_empty());
}

#[test]
fn a_count_trigger_fires_time_windows_by_count_only_and_they_go_after_their_lateness() {
    let mut op = operator(WindowSpec {
        tumbling: Some(secs(5)),
        allowed_lateness: secs(1),
        trigger: TriggerSpec::Count(2),
        ..WindowSpec::default()
    });
    let out = op.process(batch(&[("a", 1000, 1), ("a", 2000, 2), ("a", 6000, 5)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":5000,"sum":3.0}@4999"#]);
    // The watermark passing the end fires nothing.
    assert!(lines(op.advance_watermark(5500).unwrap()).is_empty());
    // A late record within the lateness counts on.
    let out = op.process(batch(&[("a", 3000, 4), ("a", 4000, 8), ("a", 4500, 16)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":5000,"sum":15.0}@4999"#]);
    let out = op.process(batch(&[("a", 4600, 32)])).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":5000,"sum":63.0}@4999"#]);
    // Past the lateness the window is gone: a record for it is late.
    op.advance_watermark(6000).unwrap();
    let out = op.process(batch(&[("a", 100, 1)])).unwrap();
    assert!(lines(out).is_empty());
    assert_eq!(
        op.metrics().counters().into_iter().collect::<std::collections::BTreeMap<_, _>>().get("late_records_dropped"),
        Some(&1)
    );
    // [5000, 10000) has one record: never fired.
    assert!(lines(op.advance_watermark(MAX_WATERMARK).unwrap()).is_empty());
}

#[test]
fn a_processing_time_window_fires_once_even_with_records_in_its_last_millisecond() {
    let mut op = operator(WindowSpec {
        tumbling: Some(secs(10)),
        trigger: TriggerSpec::ProcessingTime,
        ..WindowSpec::default()
    });
    op.clock = Clock::Manual(9_999);
    op.process(batch(&[("a", 0, 1)])).unwrap();
    assert!(lines(op.fire_processing_timers().unwrap()).is_empty(), "its last millisecond is not over");
    op.process(batch(&[("a", 0, 2)])).unwrap();
    op.clock = Clock::Manual(10_000);
    let out = op.fire_processing_timers().unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":10000,"sum":3.0}@9999"#]);
    assert!(lines(op.advance_watermark(MAX_WATERMARK).unwrap()).is_empty(), "nothing fires twice");
}

#[test]
fn processing_time_windows_follow_the_clock_not_the_records() {
    let mut op = operator(WindowSpec {
        tumbling: Some(secs(10)),
        trigger: TriggerSpec::ProcessingTime,
        ..WindowSpec::default()
    });
    op.clock = Clock::Manual(3_000);
    // Event times play no part, and nothing is late.
    op.process(batch(&[("a", 99_000, 1), ("b", -5, 2)])).unwrap();
    op.advance_watermark(200_000).unwrap();
    op.clock = Clock::Manual(9_000);
    op.process(batch(&[("a", 0, 4)])).unwrap();
    assert_eq!(op.next_processing_timer(), Some(10_000));
    assert!(lines(op.fire_processing_timers().unwrap()).is_empty());
    op.clock = Clock::Manual(10_000);
    let out = op.fire_processing_timers().unwrap();
    assert_eq!(
        lines(out),
        vec![
            r#"{"key":"a","window_start":0,"window_end":10000,"sum":5.0}@9999"#,
            r#"{"key":"b","window_start":0,"window_end":10000,"sum":2.0}@9999"#,
        ]
    );
    op.process(batch(&[("a", 0, 8)])).unwrap();
    // At the end of input the open processing-time windows fire.
    let out = op.advance_watermark(MAX_WATERMARK).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":10000,"window_end":20000,"sum":8.0}@19999"#]);
}

#[test]
fn early_firings_come_every_period_until_the_watermark_closes_the_window() {
    let mut op = operator(WindowSpec {
        tumbling: Some(secs(10)),
        trigger: TriggerSpec::Every(secs(2)),
        ..WindowSpec::default()
    });
    op.clock = Clock::Manual(500);
    op.process(batch(&[("a", 1000, 1)])).unwrap();
    // Early firings are aligned to the period: at 2000, 4000, ...
    assert_eq!(op.next_processing_timer(), Some(2000));
    op.clock = Clock::Manual(2000);
    let out = op.fire_processing_timers().unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":10000,"sum":1.0}@9999"#]);
    op.process(batch(&[("a", 2000, 2)])).unwrap();
    op.clock = Clock::Manual(4100);
    let out = op.fire_processing_timers().unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":10000,"sum":3.0}@9999"#]);
    // The watermark closes the window: its final firing, then no more
    // early ones.
    let out = op.advance_watermark(9999).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","window_start":0,"window_end":10000,"sum":3.0}@9999"#]);
    op.clock = Clock::Manual(6000);
    assert!(lines(op.fire_processing_timers().unwrap()).is_empty());
    assert_eq!(op.next_processing_timer(), None);
}

#[test]
fn a_global_window_with_early_firings_gives_running_results_and_a_final_one() {
    let mut op = operator(WindowSpec { global: true, trigger: TriggerSpec::Every(secs(1)), ..WindowSpec::default() });
    op.process(batch(&[("a", 1, 1), ("a", 2, 2)])).unwrap();
    op.clock = Clock::Manual(1000);
    let out = op.fire_processing_timers().unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":2,"sum":3.0}@9223372036854775806"#]);
    op.process(batch(&[("a", 3, 4)])).unwrap();
    let out = op.advance_watermark(MAX_WATERMARK).unwrap();
    assert_eq!(lines(out), vec![r#"{"key":"a","records":3,"sum":7.0}@9223372036854775806"#]);
}

/// A window operator over the `window-collect` test plugin (built by `make
/// plugins`), on `backend`.
fn collecting(window: WindowSpec, backend: Box<dyn weir_state::KeyedStateBackend>) -> WindowOperator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins/window-collect.wasm");
    let plugin = weir_wasm::PluginEngine::new().unwrap().load_file(&path).expect("run `make plugins` first");
    let mut instance =
        plugin.instantiate_window_processor("w", &weir_wasm::Limits::default(), &Default::default()).unwrap();
    let args = weir_wasm::InitArgs {
        node_id: "w".into(),
        config: "null".into(),
        subtask_index: 0,
        parallelism: 1,
        attempt: 0,
    };
    instance.init(&args).unwrap();
    build(window, WindowFunction::Process(Box::new(instance)), OnError::Fail, backend)
}

/// How many entries the operator's window state, buffered records and
/// timers hold.
fn stored(op: &mut WindowOperator) -> (usize, usize, usize) {
    let records = op.records.unwrap();
    let windows = op.windows;
    let backend = op.state.backend();
    let entries = |backend: &mut dyn weir_state::KeyedStateBackend, state| {
        backend
            .entries(state)
            .unwrap()
            .iter()
            .map(|(_, _, content)| match content {
                weir_state::StateContent::Map(m) => m.len(),
                other => panic!("{other:?}"),
            })
            .sum::<usize>()
    };
    (entries(backend, windows), entries(backend, records), backend.timers().unwrap().len())
}

fn backends() -> Vec<(&'static str, Box<dyn weir_state::KeyedStateBackend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = weir_state_rocksdb::RocksDbBackend::open(dir.path(), 128).unwrap();
    vec![("memory", Box::new(MemoryBackend::new(128)), None), ("rocksdb", Box::new(rocks), Some(dir))]
}

#[test]
fn a_window_processors_buffered_records_go_with_their_window() {
    for (name, backend, _dir) in backends() {
        let mut op = collecting(
            WindowSpec { tumbling: Some(secs(5)), allowed_lateness: secs(2), ..WindowSpec::default() },
            backend,
        );
        op.process(batch(&[("a", 1000, 1), ("a", 6000, 2), ("b", 2000, 3)])).unwrap();
        // Each window has a timer to fire and one to go after its lateness.
        assert_eq!(stored(&mut op), (3, 3, 6), "{name}");
        let out = op.advance_watermark(5000).unwrap();
        assert_eq!(
            lines(out),
            vec![
                r#"{"key":"a","records":[{"t":1000,"v":{"v":1}}],"window_end":5000,"window_start":0}@4999"#,
                r#"{"key":"b","records":[{"t":2000,"v":{"v":3}}],"window_end":5000,"window_start":0}@4999"#,
            ],
            "{name}"
        );
        // A late record within the lateness re-fires with everything.
        let out = op.process(batch(&[("a", 4000, 4)])).unwrap();
        assert_eq!(
            lines(out),
            vec![
                r#"{"key":"a","records":[{"t":1000,"v":{"v":1}},{"t":4000,"v":{"v":4}}],"window_end":5000,"window_start":0}@4999"#
            ],
            "{name}"
        );
        // Past the lateness, the fired windows and their records are gone.
        op.advance_watermark(6999).unwrap();
        assert_eq!(stored(&mut op), (1, 1, 2), "{name}");
        op.advance_watermark(MAX_WATERMARK).unwrap();
        assert_eq!(stored(&mut op), (0, 0, 0), "{name}");
    }
}

#[test]
fn merged_sessions_keep_their_records_in_order_and_leave_nothing_behind() {
    for (name, backend, _dir) in backends() {
        let mut op = collecting(
            WindowSpec { session: Some(weir_spec::SessionSpec { gap: secs(1) }), ..WindowSpec::default() },
            backend,
        );
        op.process(batch(&[("a", 1000, 1), ("a", 1500, 2), ("a", 3000, 3), ("a", 2600, 4)])).unwrap();
        let (windows, records, _) = stored(&mut op);
        assert_eq!((windows, records), (2, 4), "{name}: two sessions, four records");
        // The bridge: [1000, 2500) and [2600, 4000) become [1000, 4000); the
        // records stay in arrival order within each session merged.
        op.process(batch(&[("a", 2400, 5)])).unwrap();
        let out = op.advance_watermark(MAX_WATERMARK).unwrap();
        let records = r#"[{"t":1000,"v":{"v":1}},{"t":1500,"v":{"v":2}},{"t":3000,"v":{"v":3}},{"t":2600,"v":{"v":4}},{"t":2400,"v":{"v":5}}]"#;
        assert_eq!(
            lines(out),
            vec![format!(r#"{{"key":"a","records":{records},"window_end":4000,"window_start":1000}}@3999"#)],
            "{name}"
        );
        assert_eq!(stored(&mut op), (0, 0, 0), "{name}");
    }
}

#[test]
fn sessions_in_one_batch_fire_merge_and_refuse_record_by_record() {
    let session = Some(weir_spec::SessionSpec { gap: secs(1) });
    let window = WindowSpec { session, allowed_lateness: secs(5), ..WindowSpec::default() };
    let mut op = operator_with(window, OnError::DeadLetter);
    op.process(batch(&[("a", 1000, 1), ("a", 2600, 2)])).unwrap();
    let out = op.advance_watermark(4000).unwrap();
    assert_eq!(
        lines(out),
        vec![
            r#"{"key":"a","window_start":1000,"window_end":2000,"sum":1.0}@1999"#,
            r#"{"key":"a","window_start":2600,"window_end":3600,"sum":2.0}@3599"#,
        ]
    );
    // One batch: 1500 extends the first (fired) session, which fires at
    // once; 1800 would bridge both but is refused, so nothing merges for
    // it; 1900 bridges them, and the merged session fires at once.
    let mut records = batch(&[("a", 1500, 4)]);
    records.push(Some(b"a"), br#"{"v":"x"}"#, 1800);
    records.push(Some(b"a"), br#"{"v":8}"#, 1900);
    let out = op.process(records).unwrap();
    assert_eq!(out.side.iter().map(|(_, b)| b.len()).sum::<usize>(), 1);
    assert_eq!(
        lines(out),
        vec![
            r#"{"key":"a","window_start":1000,"window_end":2500,"sum":5.0}@2499"#,
            r#"{"key":"a","window_start":1000,"window_end":3600,"sum":15.0}@3599"#,
        ]
    );
    assert!(lines(op.advance_watermark(MAX_WATERMARK).unwrap()).is_empty());
}
