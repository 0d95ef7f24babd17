//! Processing-time windows and early firings in a running job, on the real
//! clock: which records land in which window depends on timing, so these
//! tests check what holds however the machine is loaded — every record
//! counted exactly once, windows aligned to the wall clock, running results
//! that only grow and end with the total.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::read_lines;

/// 5 sensors, 600 readings each, 2000 a second (1.5 s of wall clock).
const EVENTS: u64 = 3000;
const PER_KEY: u64 = EVENTS / 5;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Runs a generator job through `window` counting records per key; returns
/// the results as JSON, in output order.
fn run_counting(window: &str) -> Vec<Value> {
    let out = tempfile::tempdir().unwrap();
    let spec = format!(
        "name: wall-clock
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 5, events: {EVENTS}, rate: 2000 }}
operators:
  - {{ id: counts, input: readings, key_by: key, window: {window}, aggregate: count }}
sinks:
  - {{ id: out, type: file, path: {}, input: counts }}
",
        out.path().join("out.jsonl").display()
    );
    let spec = JobSpec::parse(&spec, Format::Yaml).unwrap();
    run_job(&spec, &JobOptions::default(), &weir_wasm::PluginEngine::new().unwrap()).unwrap();
    read_lines(out.path(), "out").iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn per_key(results: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut keys: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in results {
        keys.entry(r["key"].as_str().unwrap().to_string()).or_default().push(r);
    }
    keys
}

#[test]
fn processing_time_windows_count_every_record_once_in_windows_of_the_wall_clock() {
    let before = now_ms();
    let results = run_counting("{ tumbling: 500ms, trigger: processing-time }");
    let after = now_ms();
    let keys = per_key(&results);
    assert_eq!(keys.len(), 5, "{results:?}");
    for (key, windows) in keys {
        let counts: Vec<u64> = windows.iter().map(|w| w["count"].as_u64().unwrap()).collect();
        assert_eq!(counts.iter().sum::<u64>(), PER_KEY, "{key}: every record once: {windows:?}");
        // 1.5 s of input cannot fit in one window of 500 ms.
        assert!(windows.len() >= 2, "{key}: {windows:?}");
        let mut starts: Vec<i64> = Vec::new();
        for w in windows {
            let (start, end) = (w["window_start"].as_i64().unwrap(), w["window_end"].as_i64().unwrap());
            assert_eq!((start % 500, end - start), (0, 500), "{w}");
            assert!(start > before - 500 && start <= after, "a window of the run's wall clock: {w}");
            starts.push(start);
        }
        // Each window fires once, in time order.
        assert!(starts.windows(2).all(|p| p[0] < p[1]), "{key}: {starts:?}");
    }
}

#[test]
fn early_firings_give_growing_running_counts_and_a_final_total() {
    let results = run_counting("{ global: true, trigger: { every: 200ms } }");
    let keys = per_key(&results);
    assert_eq!(keys.len(), 5, "{results:?}");
    for (key, firings) in keys {
        let counts: Vec<u64> = firings.iter().map(|f| f["records"].as_u64().unwrap()).collect();
        assert_eq!(counts.last(), Some(&PER_KEY), "{key}: the final firing has everything: {counts:?}");
        // Firings every 200 ms over 1.5 s of input: some came early.
        assert!(counts[0] < PER_KEY, "{key}: {counts:?}");
        assert!(counts.windows(2).all(|p| p[0] <= p[1]), "{key}: running counts only grow: {counts:?}");
    }
}
