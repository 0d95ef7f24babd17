//! The web console in a real browser: headless Chromium from Debian, driven
//! by Playwright for Python (`tests/console/console.py`), against a real
//! `weir serve` on 127.0.0.1. Screenshots land in
//! `$CARGO_TARGET_TMPDIR/console/`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{plugin, tools};

use crate::server_e2e::Served;

/// Where a test's screenshots go.
fn artifacts(test: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console").join(test)
}

/// The Python with Playwright, and the browser: both from `scripts/setup.sh`.
fn browser_tools() -> (PathBuf, PathBuf) {
    let python = tools().join("venv/bin/python");
    let chromium = PathBuf::from(std::env::var_os("WEIR_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(python.exists(), "{} is missing: run scripts/setup.sh (make test does)", python.display());
    assert!(
        chromium.exists(),
        "{} is missing: run scripts/setup.sh (it installs Debian's chromium)",
        chromium.display()
    );
    (python, chromium)
}

/// The console script in `mode`, against `served`, with `env`.
fn console(mode: &str, served: &Served, env: &[(&str, String)]) -> Command {
    let (python, chromium) = browser_tools();
    let _ = std::fs::remove_dir_all(artifacts(mode));
    let mut command = Command::new(python);
    command
        .arg(weir_tests::repo().join("tests/console/console.py"))
        .arg(mode)
        .env("WEIR_URL", &served.url)
        .env("WEIR_TOKEN", &served.token)
        .env("WEIR_CHROMIUM", chromium)
        .env("WEIR_ARTIFACTS", artifacts(mode));
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// Uploads the given `(name, version, plugin)`s.
fn upload(served: &Served, plugins: &[(&str, &str, &str)]) {
    for (name, version, file) in plugins {
        served.ok(&["plugin", "upload", plugin(file).to_str().unwrap(), "--name", name, "--version", version]);
    }
}

/// The sensor-averages example as a server runs it, slowed to 1000 events
/// a second so it runs for hours, checkpointing every second.
fn long_sensor_job(dir: &Path) -> PathBuf {
    let example = std::fs::read_to_string(weir_tests::repo().join("examples/sensor-averages/server.yaml")).unwrap();
    let text = example
        .replace("events: 6000 ", "events: 100000000 ")
        .replace("/tmp/weir-averages", dir.join("out").to_str().unwrap())
        .replace(
            "parallelism: 1\n",
            &format!("parallelism: 1\ncheckpoint: {{ interval: 1s, dir: {} }}\n", dir.join("checkpoints").display()),
        );
    assert!(text.contains("events: 100000000") && text.contains("interval: 1s"), "the example changed: {text}");
    let path = dir.join("job.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn submit(served: &Served, spec: &Path) -> String {
    served.ok(&["job", "submit", spec.to_str().unwrap()]).trim().to_string()
}

/// Waits until job `id` has completed a checkpoint.
fn wait_for_checkpoint(served: &Served, id: &str) {
    let started = Instant::now();
    while served.job(id)["checkpoints"]["completed"].as_u64().unwrap_or(0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "job {id} took no checkpoint: {}", served.job(id));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_console_shows_and_steers_a_running_job_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"));
    upload(&served, &[("celsius", "1.0.0", "celsius"), ("sensor-average", "1.0.0", "sensor-average")]);
    let id = submit(&served, &long_sensor_job(dir.path()));
    wait_for_checkpoint(&served, &id);
    let v2 = plugin("sensor-average-v2");
    let out = console("journey", &served, &[("WEIR_JOB", id.clone()), ("WEIR_PLUGIN", v2.display().to_string())])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("journey: ok"),
        "the console journey failed (screenshots in {}):\n{stdout}\n{stderr}\nserver log:\n{}",
        artifacts("journey").display(),
        served.log.lock().unwrap()
    );
    // What the browser did happened on the server.
    let job = served.job(&id);
    assert_eq!(job["state"], "cancelled", "{job}");
    let upgrades: Vec<(&str, &str, &str)> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["outcome"] == "upgraded")
        .map(|h| (h["node"].as_str().unwrap(), h["from"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    assert_eq!(upgrades, [("averages", "sensor-average@1.0.0", "sensor-average@2.0.0")], "{job}");
    let savepoints: serde_json::Value = serde_json::from_str(&served.ok(&["savepoint", "list", "--json"])).unwrap();
    // One taken of the job, one that stopped fork b: a child of the first.
    let taken: Vec<(&str, &str)> = savepoints
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["job"].as_str().unwrap(), s["parent"].as_str().unwrap_or("-")))
        .collect();
    let first = savepoints[0]["name"].as_str().unwrap();
    assert_eq!(taken, [("sensor-averages", "-"), ("sensor-averages-b", first)], "{savepoints}");
    assert_eq!(savepoints[0]["job_id"], id.as_str());
    for shot in ["jobs", "job", "savepoints", "plugins", "upgraded", "cancelled", "forked", "jobs-phone"] {
        let path = artifacts("journey").join(format!("{shot}.png"));
        assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000), "no screenshot {}", path.display());
    }
}

#[test]
fn the_console_says_what_is_wrong_when_a_job_failed_the_token_is_wrong_or_the_server_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&dir.path().join("data"));
    upload(
        &served,
        &[
            ("celsius", "1.0.0", "celsius"),
            ("sensor-average", "1.0.0", "sensor-average"),
            ("trap-on", "1.0.0", "trap-on"),
        ],
    );
    let running = submit(&served, &long_sensor_job(dir.path()));
    let failing = dir.path().join("failing.yaml");
    std::fs::write(&failing, crate::server_api::FAILING_JOB).unwrap();
    let failed = submit(&served, &failing);
    served.wait_for_state(&failed, "failed");
    let mut child = console("errors", &served, &[("WEIR_JOB", running), ("WEIR_FAILED_JOB", failed)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script says when the page is up; then the server goes (SIGKILL).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("ready to stop the server") {
            break;
        }
        line.clear();
    }
    let log = served.log.lock().unwrap().clone();
    served.kill();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"go\n");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success() && rest.contains("errors: ok"),
        "the console's error pages failed (screenshots in {}):\n{seen}{rest}\n{stderr}\nserver log:\n{log}",
        artifacts("errors").display()
    );
}
