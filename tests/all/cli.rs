//! The `weir` binary as a user runs it.

use std::path::PathBuf;
use std::process::Command;

use weir_tests::repo;

fn weir() -> Command {
    // target/<profile>/deps/all-<hash> → target/<profile>/weir
    let exe = std::env::current_exe().unwrap();
    let bin: PathBuf = exe.parent().unwrap().parent().unwrap().join("weir");
    assert!(bin.exists(), "{} is missing: build the workspace first", bin.display());
    let mut cmd = Command::new(bin);
    cmd.env("RUST_LOG", "warn");
    cmd
}

#[test]
fn a_malformed_spec_fails_with_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "name: bad\nsources:\n  - id: readings\n    type: generator\n    generatr: sensors\nsinks: []\n",
    )
    .unwrap();
    let out = weir().arg("run").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: invalid job spec: sources[0]: unknown field `generatr`"), "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");
}

#[test]
fn a_missing_plugin_fails_naming_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(
        &spec,
        "name: j\nsources: [{id: r, type: generator, generator: sensor-bench, events: 10}]\noperators: [{id: avg, input: r, plugin: nope.wasm}]\nsinks: [{id: o, type: stdout, input: avg}]\n",
    )
    .unwrap();
    let out = weir().arg("run").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: operator `avg`: cannot read plugin {}: No such file or directory",
        dir.path().join("nope.wasm").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn the_example_prints_every_sensor_average() {
    let out = weir().arg("run").arg(repo().join("examples/sensor-averages/job.yaml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 10 sensors × 60 s of readings in 5 s windows.
    assert_eq!(lines.len(), 120);
    let total: u64 = lines.iter().map(|l| l["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 6000, "no reading is late in the example: disorder equals the bound");
    let first = &lines[0];
    assert_eq!(first["window_end"], 1_700_000_005_000i64);
    assert_eq!(first["id"], "sensor_0");
    let avg = first["avg_c"].as_f64().unwrap();
    assert!((-30.0..60.0).contains(&avg), "{avg} °C is not a plausible temperature");
}
