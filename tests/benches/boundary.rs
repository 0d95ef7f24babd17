//! `make bench` (second part): what the Wasm boundary costs. Component load
//! time cold (compiling) and warm (from the compile cache), instantiation
//! (+ `init`), and the per-record cost of calling a no-op operator with
//! batches of 1, 64 and 1024 records — ignoring them, and passing them
//! through. Targets: warm load + instantiate ≤ 1 ms; no-op ≤ 20 ns per record
//! at batch 1024.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};

use weir_state::{KeyedState, MemoryBackend};
use weir_types::RecordBatch;
use weir_wasm::{InitArgs, OperatorInstance, Plugin, PluginEngine, wit};

/// An initialized instance and the state it runs over.
fn init(plugin: &Plugin, config: &str) -> (OperatorInstance, KeyedState) {
    let mut state = KeyedState::new(Box::new(MemoryBackend::new(128)), 128, 0..128);
    let mut op = plugin.instantiate("bench-0/1").unwrap();
    let args =
        InitArgs { node_id: "bench".into(), config: config.into(), subtask_index: 0, parallelism: 1, attempt: 0 };
    op.init(&args, &mut state).unwrap();
    (op, state)
}

fn batch(n: usize) -> RecordBatch {
    let mut b = RecordBatch::with_capacity(n, 48 * n);
    for i in 0..n {
        let key = format!("sensor_{}", i % 1000);
        b.push(Some(key.as_bytes()), br#"{"id":"sensor_1","t":1,"v":2.5}"#, i as i64);
    }
    b
}

/// Nanoseconds per record for `records` records in batches of `size`.
fn per_record((op, state): &mut (OperatorInstance, KeyedState), size: usize, records: usize) -> f64 {
    let mut b = batch(size);
    let time = wit::TimeContext { watermark: i64::MIN, processing_time: 0 };
    let calls = (records / size).max(1);
    // Warm up.
    for _ in 0..10 {
        op.process(state, &mut b, time).unwrap();
    }
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(op.process(state, &mut b, time).unwrap());
    }
    started.elapsed().as_nanos() as f64 / (calls * size) as f64
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let path = weir_tests::plugin("noop");
    let cache = tempfile::tempdir().unwrap();

    let engine = PluginEngine::with_cache(Some(cache.path().to_path_buf())).unwrap();
    let started = Instant::now();
    engine.load_file(&path).unwrap();
    let cold = started.elapsed();
    // A new engine on the same cache: loads the compiled artifact.
    let engine = PluginEngine::with_cache(Some(cache.path().to_path_buf())).unwrap();
    let started = Instant::now();
    let plugin = engine.load_file(&path).unwrap();
    let warm = started.elapsed();
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(init(&plugin, "null"));
    }
    let instantiate = started.elapsed() / n;

    println!("Wasm boundary (noop plugin, one thread)");
    println!("{:<44} {:>12}", "component load, cold (compile)", ms(cold));
    println!("{:<44} {:>12}", "component load, warm (compile cache)", ms(warm));
    println!("{:<44} {:>12}", "instantiate + init", ms(instantiate));
    println!("{:<44} {:>12}", "warm load + instantiate (target <= 1 ms)", ms(warm + instantiate));

    let mut ignore = init(&plugin, "null");
    let mut pass = init(&plugin, r#"{"emit":true}"#);
    println!("{:<12} {:>18} {:>22}", "batch size", "no-op ns/record", "pass-through ns/record");
    for size in [1, 64, 1024] {
        let records = if size == 1 { 200_000 } else { 2_000_000 };
        let a = per_record(&mut ignore, size, records);
        let b = per_record(&mut pass, size, records);
        println!("{size:<12} {a:>18.1} {b:>22.1}");
    }
    println!("(target: no-op <= 20 ns per record at batch 1024)");
}
