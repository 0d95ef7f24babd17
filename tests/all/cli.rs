//! The `weir` binary as a user runs it.

use std::process::Command;

use weir_tests::repo;

fn weir() -> Command {
    let mut cmd = Command::new(weir_tests::weir_bin());
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
fn a_registry_plugin_outside_a_server_says_where_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(
        &spec,
        "name: j\nsources: [{id: r, type: generator, generator: sensor-bench, events: 10}]\noperators: [{id: avg, input: r, plugin: sensor-average@^1}]\nsinks: [{id: o, type: stdout, input: avg}]\n",
    )
    .unwrap();
    let out = weir().arg("run").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: operator `avg` names plugin `sensor-average@^1` of a registry: submit the job to a server (`weir job \
         submit`), or give the path of its .wasm file"
    );
    // A version that is no version names the field.
    std::fs::write(&spec, std::fs::read_to_string(&spec).unwrap().replace("@^1", "@one")).unwrap();
    let out = weir().arg("run").arg(&spec).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: invalid job spec: operators `avg`: field `plugin`: `sensor-average@one`: `one` is neither a version nor \
         a version requirement: unexpected character 'o' while parsing major version number"
    );
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

#[test]
fn metrics_are_served_while_a_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    let celsius = weir_tests::plugin("celsius");
    std::fs::write(
        &spec,
        format!(
            "name: metered\nsources: [{{id: readings, type: generator, generator: sensors, rate: 500, events: 100000}}]\n\
             operators: [{{id: celsius, input: readings, plugin: {}}}]\nsinks: [{{id: out, type: blackhole, input: celsius}}]\n",
            celsius.display()
        ),
    )
    .unwrap();
    let mut child = weir()
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(&spec)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = weir_tests::metrics_addr(&mut child);
    let scrape = || weir_tests::scrape(&addr);
    let count = |text: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(r#"weir_records_in_total{job="metered",job_id=""#)
                    && l.contains(r#"",node="celsius",subtask="0"} "#)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The server is up before the job has registered its metrics.
    let mut first = scrape();
    for _ in 0..100 {
        if first.contains("# TYPE weir_records_in counter") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        first = scrape();
    }
    assert!(first.starts_with("HTTP/1.0 200 OK") || first.starts_with("HTTP/1.1 200 OK"), "{first}");
    assert!(first.contains("# TYPE weir_records_in counter"), "{first}");
    // The counter moves while the job runs (500 events/s).
    let mut moved = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if count(&scrape()) > count(&first) {
            moved = true;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(moved, "weir_records_in_total did not increase");
}

#[test]
fn compile_fills_the_cache_and_refuses_what_is_not_a_component() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = weir_tests::plugin("celsius");
    let out = weir().arg("compile").arg(&plugin).env("WEIR_CACHE_DIR", cache.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let digest = weir_wasm::cache::digest(&std::fs::read(&plugin).unwrap());
    let cached: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].starts_with(&digest) && cached[0].ends_with(".cwasm"), "{cached:?}");

    let junk = cache.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let out = weir().arg("compile").arg(&junk).env("WEIR_CACHE_DIR", cache.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("error: {} is not a valid Wasm component", junk.display())), "{stderr}");
}

/// A paced sensor job into part files, checkpointed only when asked.
fn paced_job(dir: &std::path::Path, with_extra: bool) -> std::path::PathBuf {
    let extra = match with_extra {
        true => format!("\n  - {{ id: extra, input: celsius, plugin: {} }}", weir_tests::plugin("declare").display()),
        false => String::new(),
    };
    let text = format!(
        "name: paced
checkpoint: {{ interval: 1h, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 5, seed: 2, start: 1700000000000, events: 20000,
       rate: 5000, disorder: 100ms, watermark: {{ max_out_of_orderness: 100ms, interval: 20ms }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}{extra}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ window_ms: 500 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        checkpoints = dir.join("checkpoints").display(),
        out = dir.join("out").display(),
        celsius = weir_tests::plugin("celsius").display(),
        average = weir_tests::plugin("sensor-average").display(),
    );
    let path = dir.join(if with_extra { "extra.yaml" } else { "job.yaml" });
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sigterm_stops_weir_run_with_a_savepoint_that_a_later_run_resumes_exactly() {
    let reference = tempfile::tempdir().unwrap();
    let out = weir().args(["run", "--progress", "0"]).arg(paced_job(reference.path(), false)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = weir_tests::committed_parts(&reference.path().join("out"));

    let dir = tempfile::tempdir().unwrap();
    let spec = paced_job(dir.path(), false);
    let savepoints = dir.path().join("savepoints");
    let child = weir()
        .args(["run", "--progress", "0", "--savepoint-dir"])
        .arg(&savepoints)
        .arg(&spec)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("interrupted: stopping the job with a savepoint"), "{log}");
    assert!(log.contains("job stopped at a barrier"), "{log}");
    let taken: Vec<std::path::PathBuf> = std::fs::read_dir(&savepoints).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let before = weir_tests::committed_parts(&dir.path().join("out")).len();
    assert!(before > 0 && before < expected.len(), "stopped mid-way: {before} of {}", expected.len());

    // The dry run: this spec fits; one without a node the savepoint has does not.
    let check = weir().args(["savepoint", "check"]).arg(&taken[0]).arg(&spec).output().unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{report}");
    assert!(report.starts_with(&format!("the job can start from {}\n", taken[0].display())), "{report}");
    let with_extra = paced_job(dir.path(), true);
    let check = weir().args(["savepoint", "check"]).arg(&taken[0]).arg(&with_extra).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "a new node starts empty");
    assert!(String::from_utf8_lossy(&check.stdout).contains("  operator `extra`: new: starts empty\n"));
    let plain = tempfile::tempdir().unwrap();
    let other = paced_job(plain.path(), false);
    let text = std::fs::read_to_string(&other).unwrap().replace("input: celsius, key_by", "input: readings, key_by");
    let without = plain.path().join("without.yaml");
    std::fs::write(
        &without,
        text.replace(
            &format!("  - {{ id: celsius, input: readings, plugin: {} }}\n", weir_tests::plugin("celsius").display()),
            "",
        ),
    )
    .unwrap();
    let check = weir().args(["savepoint", "check"]).arg(&taken[0]).arg(&without).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("  operator `celsius`: refused: "));
    assert!(String::from_utf8_lossy(&check.stderr).contains("error: the job cannot start from"));

    let out = weir().args(["run", "--progress", "0", "--from-savepoint"]).arg(&taken[0]).arg(&spec).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(weir_tests::committed_parts(&dir.path().join("out")), expected);
}
