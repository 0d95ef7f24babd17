//! `make bench` (fourth part): the control plane. How long an upload takes
//! (streamed, checked and compiled, on a fresh data dir: a cold compile
//! cache) for the example plugins; how long from submitting the
//! sensor-bench job to its first output; and the job's throughput
//! submitted to `weir serve` against `weir run` of the same spec (target:
//! within 5%), both timed from the request to the job's end, alternated,
//! best of two; and the same job with the web console open on its page
//! (headless Chromium polling it every second, as a person watching it
//! would) against without (target: within 2%), alternated, medians of five;
//! for that part the server runs on CPU 0 and the browser on CPU 1, as a
//! browser runs on another machine: what is measured is what serving the
//! console costs the job. `WEIR_BENCH_EVENTS` sets the events (default
//! 10,000,000).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn job(celsius: &str, average: &str, events: u64) -> String {
    format!(
        "name: sensor-bench
sources:
  - {{ id: readings, type: generator, generator: sensor-bench, events: {events} }}
operators:
  - {{ id: celsius, input: readings, plugin: {celsius}, config: {{ output: binary }} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ input: binary }} }}
sinks:
  - {{ id: out, type: blackhole, input: averages }}
"
    )
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let weir = weir_tests::weir_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(&weir)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server's log").unwrap();
        if let Some((_, rest)) = line.split_once("listening on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let url = format!("http://{addr}");
    let token = std::fs::read_to_string(data.join("token")).unwrap().trim().to_string();
    let bearer = format!("Bearer {token}");

    println!("upload (stream, check, compile; cold compile cache):");
    for (name, file) in [("celsius", "celsius"), ("sensor-average", "sensor-average"), ("average", "average")] {
        let bytes = std::fs::read(weir_tests::plugin(file)).unwrap();
        let started = Instant::now();
        let response = ureq::put(&format!("{url}/api/v1/plugins/{name}/versions/1.0.0"))
            .header("Authorization", &bearer)
            .header("Content-Type", "application/wasm")
            .send(&bytes[..])
            .unwrap();
        assert_eq!(response.status(), 201);
        println!("  {name:<16} {:>7} KiB  {:>7.0} ms", bytes.len() / 1024, started.elapsed().as_secs_f64() * 1000.0);
    }

    let job_status = |id: &str| -> serde_json::Value {
        ureq::get(&format!("{url}/api/v1/jobs/{id}")).call().unwrap().body_mut().read_json().unwrap()
    };
    let submit = |events: u64| -> (String, Instant) {
        let spec = job("celsius@1.0.0", "sensor-average@1.0.0", events);
        let started = Instant::now();
        let mut response = ureq::post(&format!("{url}/api/v1/jobs"))
            .header("Authorization", &bearer)
            .header("Content-Type", "application/yaml")
            .send(spec.as_str())
            .unwrap();
        let job: serde_json::Value = response.body_mut().read_json().unwrap();
        (job["id"].as_str().unwrap().to_string(), started)
    };
    // Polled gently: on a small machine the polling competes with the job.
    let wait_finished = |id: &str| loop {
        if job_status(id)["state"] == "finished" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    // Submit → first output (a record reached the sink).
    let (id, started) = submit(events);
    let first = loop {
        let job = job_status(&id);
        if job["nodes"].as_array().unwrap().iter().any(|n| n["id"] == "out" && n["records_in"].as_u64() > Some(0)) {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    wait_finished(&id);
    println!("submit → first output: {:.0} ms (polled every 1 ms)", first.as_secs_f64() * 1000.0);

    // Throughput: server against weir run, alternated, best of two.
    let spec_file = dir.path().join("bench.yaml");
    let celsius = weir_tests::plugin("celsius").display().to_string();
    let average = weir_tests::plugin("sensor-average").display().to_string();
    std::fs::write(&spec_file, job(&celsius, &average, events)).unwrap();
    let run = |spec: &Path| {
        let started = Instant::now();
        let out =
            Command::new(&weir).args(["run", "--progress", "0"]).arg(spec).env("RUST_LOG", "warn").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        started.elapsed()
    };
    let (mut best_run, mut best_server) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        best_run = best_run.min(run(&spec_file));
        // The server's own times: submitted to ended (ms).
        let (id, _) = submit(events);
        wait_finished(&id);
        let job = job_status(&id);
        let at = |field: &str| humantime::parse_rfc3339(job[field].as_str().unwrap()).unwrap();
        best_server = best_server.min(at("ended_at").duration_since(at("submitted_at")).unwrap());
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64() / 1e6;
    println!("sensor-bench, {events} events, request to end (best of 2):");
    println!("  weir run        {:>6.2} s  {:>5.2} M events/s", best_run.as_secs_f64(), rate(best_run));
    println!("  weir serve      {:>6.2} s  {:>5.2} M events/s", best_server.as_secs_f64(), rate(best_server));
    println!("  server / run    {:>6.2}× throughput (target ≥ 0.95)", rate(best_server) / rate(best_run));

    // The console open on the job's page, against no browser at all: the
    // server (every thread, and the ones it starts) on CPU 0, the browser on 1.
    let pinned = Command::new("taskset")
        .args(["--all-tasks", "--pid", "--cpu-list", "0"])
        .arg(server.id().to_string())
        .stdout(Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(pinned.success(), "taskset could not pin the server");
    let mut browser = Command::new("taskset")
        .args(["--cpu-list", "1"])
        .arg(weir_tests::tools().join("venv/bin/python"))
        .arg(weir_tests::repo().join("tests/console/console.py"))
        .arg("watch")
        .env("WEIR_URL", &url)
        .env("WEIR_TOKEN", &token)
        .env("WEIR_ARTIFACTS", dir.path().join("shots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the tools' Python (scripts/setup.sh installs it)");
    let mut to_browser = browser.stdin.take().unwrap();
    let mut from_browser = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut expect_line = |word: &str| {
        let line = from_browser.next().unwrap_or_else(|| panic!("the browser ended before saying {word}")).unwrap();
        assert_eq!(line, word, "the browser said {line}");
    };
    expect_line("ready");
    let timed = |id: &str| {
        let job = job_status(id);
        let at = |field: &str| humantime::parse_rfc3339(job[field].as_str().unwrap()).unwrap();
        at("ended_at").duration_since(at("submitted_at")).unwrap()
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (id, _) = submit(events);
        wait_finished(&id);
        without.push(timed(&id));
        let (id, _) = submit(events);
        std::io::Write::write_all(&mut to_browser, format!("{id}\n").as_bytes()).unwrap();
        wait_finished(&id);
        expect_line("finished");
        with.push(timed(&id));
    }
    drop(to_browser);
    let _ = browser.wait();
    let median = |mut runs: Vec<Duration>| {
        runs.sort();
        runs[runs.len() / 2]
    };
    let secs = |runs: &[Duration]| runs.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(" ");
    println!("  runs without: {} s; with: {} s", secs(&without), secs(&with));
    let (without, with) = (median(without), median(with));
    println!("sensor-bench, {events} events, the console open on the job's page or not (medians of 5, alternated):");
    println!("  no browser      {:>6.2} s  {:>5.2} M events/s", without.as_secs_f64(), rate(without));
    println!("  console open    {:>6.2} s  {:>5.2} M events/s", with.as_secs_f64(), rate(with));
    println!("  open / none     {:>6.3}× throughput (target ≥ 0.98)", rate(with) / rate(without));
    let _ = server.kill();
    let _ = server.wait();
}
