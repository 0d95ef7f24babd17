//! `weir serve` as users run it: a real process on 127.0.0.1 (port 0),
//! driven by the `weir` CLI and a raw socket; killed with SIGKILL mid-job
//! and restarted on the same data dir.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use weir_tests::{committed_parts, plugin, tools, weir_bin};

/// A running `weir serve`.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) log: Arc<Mutex<String>>,
}

impl Served {
    /// Starts a server on `data` and waits until it listens.
    pub(crate) fn start(data: &Path) -> Served {
        Served::start_with(data, None)
    }

    /// The same, with fault points armed (`FAILPOINTS`: a real crash).
    pub(crate) fn start_with(data: &Path, failpoints: Option<&str>) -> Served {
        let mut command = Command::new(weir_bin());
        command.env_remove("FAILPOINTS");
        if let Some(f) = failpoints {
            command.env("FAILPOINTS", f);
        }
        let mut child = command
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no listening line: {}", log.lock().unwrap()));
        let token = std::fs::read_to_string(data.join("token")).unwrap().trim().to_string();
        Served { child, url: format!("http://{addr}"), token, log }
    }

    /// The `weir` CLI pointed at this server.
    pub(crate) fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(weir_bin())
            .args(args)
            .env("WEIR_SERVER", &self.url)
            .env("WEIR_TOKEN", &self.token)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.cli(args);
        assert!(ok, "weir {args:?} failed: {stderr}\nserver log:\n{}", self.log.lock().unwrap());
        stdout
    }

    pub(crate) fn job(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["job", "status", id, "--json"])).unwrap()
    }

    pub(crate) fn wait_for_state(&self, id: &str, state: &str) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let job = self.job(id);
            if job["state"] == state {
                return job;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "job {id} never became {state}: {job}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL.
    pub(crate) fn kill(self) {
        drop(self);
    }
}

/// A test that fails leaves no server behind.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sensor job naming plugins by version, checkpointing every 200 ms,
/// into `out`.
fn sensor_job(dir: &Path, out: &Path, celsius: &str, averages: &str, events: u64, rate: u64) -> PathBuf {
    let text = format!(
        "name: sensors
checkpoint: {{ interval: 200ms, dir: {checkpoints} }}
sources:
  - {{ id: readings, type: generator, generator: sensors, sensors: 10, seed: 5, start: 1700000000000, events: {events},
       rate: {rate}, disorder: 300ms, watermark: {{ max_out_of_orderness: 300ms, interval: 100ms }} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {averages}, config: {{ window_ms: 1000 }} }}
sinks:
  - {{ id: out, type: file, path: {out}, input: averages }}
",
        checkpoints = dir.join("checkpoints").display(),
        out = out.display()
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the job writes run embedded, without a server or a crash.
fn reference(events: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let celsius = plugin("celsius").display().to_string();
    let average = plugin("sensor-average").display().to_string();
    let job = sensor_job(dir.path(), &dir.path().join("out"), &celsius, &average, events, 1_000_000);
    let out =
        Command::new(weir_bin()).args(["run", "--progress", "0"]).arg(&job).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = committed_parts(&dir.path().join("out"));
    assert!(lines.len() > 20, "{}", lines.len());
    lines
}

fn upload_examples(server: &Served) {
    let celsius = plugin("celsius").display().to_string();
    let average = plugin("sensor-average").display().to_string();
    let said = server.ok(&["plugin", "upload", &celsius, "--name", "celsius", "--version", "1.0.0"]);
    assert!(said.starts_with("celsius@1.0.0 uploaded: operator world, "), "{said}");
    server.ok(&["plugin", "upload", &average, "--name", "sensor-average", "--version", "1.0.0"]);
}

#[test]
fn a_server_takes_plugins_and_jobs_from_the_cli_and_runs_them_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&dir.path().join("data"));
    upload_examples(&server);
    assert_eq!(
        server.ok(&["plugin", "list"]),
        "NAME            VERSIONS  WORLD\ncelsius         1.0.0     operator\nsensor-average  1.0.0     operator\n"
    );
    let (ok, _, stderr) = server.cli(&[
        "plugin",
        "upload",
        &plugin("noop").display().to_string(),
        "--name",
        "celsius",
        "--version",
        "1.0.0",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("versions are immutable, upload under a new version (409 plugin_version_exists)"),
        "{stderr}"
    );
    let out = dir.path().join("out");
    let job = sensor_job(dir.path(), &out, "celsius@1.0.0", "sensor-average@^1", 2000, 1_000_000);
    let id = server.ok(&["job", "submit", &job.display().to_string()]).trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let done = server.wait_for_state(&id, "finished");
    assert_eq!(done["plugins"]["averages"]["version"], "1.0.0");
    assert_eq!(committed_parts(&out), reference(2000));
    let list = server.ok(&["job", "list"]);
    assert!(list.lines().nth(1).unwrap().starts_with(&format!("{id}  sensors  finished  finished  ")), "{list}");
    let status = server.ok(&["job", "status", &id]);
    assert!(status.starts_with(&format!("job sensors ({id}): finished / finished\n")), "{status}");
    assert!(status.contains("plugin of averages: sensor-average@1.0.0 (asked ^1, sha256 "), "{status}");

    // Its checkpoint dir holds its checkpoints: another job may not use it.
    let (ok, _, stderr) = server.cli(&["job", "submit", &job.display().to_string()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "checkpoint dir {} already holds checkpoints of job `sensors`: give this job a checkpoint.dir of its own, \
             or none (the server then keeps its checkpoints in its data dir) (409 checkpoint_dir_in_use)",
            dir.path().join("checkpoints").display()
        )),
        "{stderr}"
    );

    assert_eq!(server.ok(&["job", "list"]).lines().count(), 2, "a refused job is no job");

    // A long job: its series are in /metrics while it runs; then cancelled.
    let long_dir = dir.path().join("long");
    std::fs::create_dir(&long_dir).unwrap();
    let long =
        sensor_job(&long_dir, &dir.path().join("out-long"), "celsius@1.0.0", "sensor-average@1.0.0", 10_000_000, 2000);
    let long_id = server.ok(&["job", "submit", &long.display().to_string()]).trim().to_string();
    server.wait_for_state(&long_id, "running");
    let started = Instant::now();
    let metrics = loop {
        let metrics =
            ureq::get(&format!("{}/metrics", server.url)).call().unwrap().body_mut().read_to_string().unwrap();
        if metrics.contains(&format!("job_id=\"{long_id}\"")) && metrics.contains("node=\"averages\"") {
            break metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metrics.contains("job=\"sensors\""), "{metrics}");
    assert_eq!(server.ok(&["job", "cancel", &long_id]), format!("job {long_id} cancelled\n"));
    server.wait_for_state(&long_id, "cancelled");

    // An upload cut off mid-body: nothing stays, the server goes on.
    let addr = server.url.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "PUT /api/v1/plugins/cut/versions/1.0.0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/wasm\r\nContent-Length: 100000\r\n\r\n",
        server.token
    )
    .unwrap();
    socket.write_all(&[0u8; 1000]).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    drop(socket);
    let started = Instant::now();
    while std::fs::read_dir(dir.path().join("data/tmp")).unwrap().count() > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the cut upload stayed in tmp/");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, _, stderr) = server.cli(&["plugin", "versions", "cut"]);
    assert!(!ok);
    assert!(stderr.contains("there is no plugin `cut`: upload it first (404 plugin_not_found)"), "{stderr}");
    assert_eq!(server.ok(&["plugin", "list"]).lines().count(), 3);
    server.kill();
}

#[test]
fn killed_at_random_a_server_resumes_its_job_and_commits_exactly_a_crash_free_output() {
    let events = 6000;
    let expected = reference(events);
    let seed: u64 = std::env::var("WEIR_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let server = Served::start(&data);
    upload_examples(&server);
    let job = sensor_job(dir.path(), &out, "celsius@1.0.0", "sensor-average@1.0.0", events, 1500);
    let id = server.ok(&["job", "submit", &job.display().to_string()]).trim().to_string();
    let plugins = server.ok(&["plugin", "list"]);
    let mut server = server;
    let checkpoints = dir.path().join("checkpoints");
    let completed = || weir_checkpoint::CheckpointStore::open(&checkpoints).unwrap().completed().unwrap().len();
    for kill in 0..3 {
        // After this run completed a checkpoint of its own, at a random time.
        let before = completed();
        let started = Instant::now();
        while completed() <= before {
            assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint before kill #{kill} (seed {seed})");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        assert_eq!(
            server.job(&id)["state"],
            "running",
            "the job ended before kill #{kill}: make it longer (seed {seed})"
        );
        server.kill();
        server = Served::start(&data);
        // The same plugins and jobs after the restart; the job resumed.
        assert_eq!(server.ok(&["plugin", "list"]), plugins, "seed {seed}");
        let jobs: serde_json::Value = serde_json::from_str(&server.ok(&["job", "list", "--json"])).unwrap();
        assert_eq!(jobs.as_array().unwrap().len(), 1);
        assert_eq!(jobs[0]["id"], id.as_str());
        assert!(server.log.lock().unwrap().contains("resuming from checkpoint"), "{}", server.log.lock().unwrap());
    }
    let done = server.wait_for_state(&id, "finished");
    assert_eq!(done["resumed"], 3);
    let got = committed_parts(&out);
    assert_eq!(got.len(), expected.len(), "seed {seed}");
    assert_eq!(got, expected, "seed {seed}");
    server.kill();
}

#[test]
fn schemathesis_finds_no_server_error_in_the_served_openapi_document() {
    let schemathesis = tools().join("venv/bin/schemathesis");
    assert!(schemathesis.exists(), "{} is missing: run scripts/setup.sh (make test does)", schemathesis.display());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Served::start(&data);
    // Something to find: a plugin and a finished job.
    upload_examples(&server);
    let job = sensor_job(dir.path(), &dir.path().join("out"), "celsius@1.0.0", "sensor-average@1.0.0", 100, 1_000_000);
    let id = server.ok(&["job", "submit", &job.display().to_string()]).trim().to_string();
    server.wait_for_state(&id, "finished");
    let out = Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["--checks", "not_a_server_error", "--max-examples", "30", "--seed", "1", "--no-color"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", server.token))
        // Its cache goes to its working directory: not the repository.
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", weir_tests::repo().join("tests/schemathesis"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    let tested = report.lines().find(|l| l.trim_start().starts_with("Tested:")).unwrap_or_default();
    assert!(tested.contains("20"), "every operation is tested: {report}");
    // It may have deleted what it found (it had the token); what is left
    // is whole: a blob for every version listed and none else, no upload
    // half-way.
    let plugins: serde_json::Value = serde_json::from_str(&server.ok(&["plugin", "list", "--json"])).unwrap();
    let mut listed = std::collections::BTreeSet::new();
    for p in plugins.as_array().unwrap() {
        let versions: serde_json::Value =
            serde_json::from_str(&server.ok(&["plugin", "versions", p["name"].as_str().unwrap(), "--json"])).unwrap();
        listed.extend(versions.as_array().unwrap().iter().map(|v| format!("{}.wasm", v["sha256"].as_str().unwrap())));
    }
    let blobs: std::collections::BTreeSet<String> = std::fs::read_dir(data.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs, listed);
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "{log}");
    server.kill();
}

#[test]
fn the_example_server_job_gives_the_averages_weir_run_prints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&dir.path().join("data"));
    upload_examples(&server);
    let out = dir.path().join("averages");
    let example = std::fs::read_to_string(weir_tests::repo().join("examples/sensor-averages/server.yaml")).unwrap();
    assert!(example.contains("path: /tmp/weir-averages"));
    let spec = dir.path().join("server.yaml");
    std::fs::write(&spec, example.replace("/tmp/weir-averages", &out.display().to_string())).unwrap();
    let id = server.ok(&["job", "submit", &spec.display().to_string()]).trim().to_string();
    let run = Command::new(weir_bin())
        .arg("run")
        .arg(weir_tests::repo().join("examples/sensor-averages/job.yaml"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let printed: Vec<String> = String::from_utf8_lossy(&run.stdout).lines().map(str::to_string).collect();
    assert_eq!(printed.len(), 120);
    server.wait_for_state(&id, "finished");
    assert_eq!(committed_parts(&out), printed);
    server.kill();
}
