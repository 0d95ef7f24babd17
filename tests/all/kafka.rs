//! Kafka sources and sinks end to end: `weir run` (a real process) against
//! a real Kafka-protocol broker the test starts (noida-db on 127.0.0.1),
//! compared with the same job reading the same records from a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use weir_tests::kafka::Broker;
use weir_tests::{plugin, weir_bin};

/// Sensor readings in event-time order: `sensors` sensors, each every
/// 100 ms of event time, as JSON lines (the sensor generator's shape).
fn readings(sensors: usize, per_sensor: usize) -> Vec<(usize, String)> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let mut out = Vec::with_capacity(sensors * per_sensor);
    for i in 0..per_sensor {
        for s in 0..sensors {
            let t = 1_700_000_000_000i64 + 100 * i as i64;
            let f: f64 = 50.0 + rng.random_range(0.0..40.0);
            out.push((s, format!("{{\"id\":\"sensor_{s}\",\"timestamp\":{t},\"temperature\":{f:.3}}}")));
        }
    }
    out
}

/// Writes readings into `topic`, sensor `s` into partition `s % partitions`.
fn fill(broker: &Broker, topic: &str, partitions: i32, readings: &[(usize, String)]) {
    broker.create_topic(topic, partitions);
    let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
        readings.iter().map(|(s, line)| ((*s as i32) % partitions, None, line.as_str(), None)).collect();
    broker.produce(topic, &records);
}

/// A sensor-averages job (°F → °C, 5 s average per sensor) between
/// `source` and `sink` (YAML of one node each), with `top` lines added.
fn job(dir: &Path, name: &str, top: &str, source: &str, sink: &str) -> PathBuf {
    let spec = format!(
        "name: {name}
{top}
sources:
  - {source}
operators:
  - {{ id: celsius, input: in, plugin: {celsius} }}
  - {{ id: averages, input: celsius, key_by: key, plugin: {average}, config: {{ window_ms: 5000 }} }}
sinks:
  - {sink}
",
        celsius = plugin("celsius").display(),
        average = plugin("sensor-average").display(),
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, spec).unwrap();
    path
}

fn weir(job: &Path) -> Command {
    let mut command = Command::new(weir_bin());
    command.arg("run").arg(job).args(["--progress", "0"]).env("RUST_LOG", "info").env("NO_COLOR", "1");
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// Runs a job to its end; its log.
fn run_ok(job: &Path) -> String {
    let out = weir(job).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The averages the same readings give read from a file.
fn file_averages(dir: &Path, readings: &[(usize, String)]) -> Vec<String> {
    let input = dir.join("readings.jsonl");
    let text: String = readings.iter().map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let spec = job(
        dir,
        "from-file",
        "",
        &format!("{{ id: in, type: file, path: {}, key: /id, timestamp: /timestamp }}", input.display()),
        "{ id: out, type: file, path: file-out.jsonl, input: averages }",
    );
    run_ok(&spec);
    let lines = sorted_lines(&dir.join("file-out.jsonl"));
    assert!(!lines.is_empty());
    lines
}

#[test]
fn a_bounded_kafka_source_reads_what_the_topic_held_at_start_with_a_watermark_per_partition() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let data = readings(10, 250);
    fill(&broker, "readings", 3, &data);
    let expected = file_averages(dir.path(), &data);
    let spec = job(
        dir.path(),
        "bounded",
        "parallelism: 2",
        &format!(
            "{{ id: in, type: kafka, bootstrap: '{}', topics: [readings], key: /id, timestamp: /timestamp, stop_at: latest }}",
            broker.bootstrap
        ),
        "{ id: out, type: file, path: out.jsonl, input: averages, parallelism: 1 }",
    );
    // Records written after the start are not read.
    let log = run_ok(&spec);
    assert_eq!(sorted_lines(&dir.path().join("out.jsonl")), expected, "{log}");
}

#[test]
fn start_positions_and_committed_offsets() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("events", 2);
    // Recent record times: the broker's retention deletes records older than a week.
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let records: Vec<(i32, Option<&str>, &str, Option<i64>)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ((i % 2) as i32, Some("k"), v.as_str(), Some(t0 + 1000 * i as i64)))
        .collect();
    broker.produce("events", &records);
    let raw_job = |name: &str, start_from: &str| {
        let spec = format!(
            "name: {name}
checkpoint: {{ interval: 100ms, dir: {name}-checkpoints }}
sources:
  - {{ id: in, type: kafka, bootstrap: '{}', topics: events, group_id: readers, format: raw, start_from: {start_from}, stop_at: latest }}
sinks:
  - {{ id: out, type: file, path: {name}-out, input: in }}
",
            broker.bootstrap
        );
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, spec).unwrap();
        run_ok(&path);
        let mut got = weir_tests::committed_parts(&dir.path().join(format!("{name}-out")));
        got.sort();
        got
    };
    assert_eq!(raw_job("earliest", "earliest"), values);
    assert_eq!(raw_job("from-time", &format!("{{ timestamp: {} }}", t0 + 6500)), ["v7", "v8", "v9"]);
    assert_eq!(raw_job("latest", "latest"), Vec::<String>::new());
    // The group's offsets were committed when the job ended (for lag
    // monitoring), so `committed` reads only what came after.
    assert_eq!(
        (broker.group_offset("readers", "events", 0), broker.group_offset("readers", "events", 1)),
        (Some(5), Some(5))
    );
    let more: Vec<(i32, Option<&str>, &str, Option<i64>)> = vec![(0, None, "w0", None), (1, None, "w1", None)];
    broker.produce("events", &more);
    assert_eq!(raw_job("committed", "committed"), ["w0", "w1"]);
}

#[test]
fn an_unreachable_cluster_a_missing_topic_a_tls_mismatch_and_refused_sasl_fail_the_job_naming_them_in_bounded_time() {
    let broker = Broker::start();
    broker.create_topic("readings", 1);
    let dir = tempfile::tempdir().unwrap();
    let b = broker.bootstrap.as_str();
    // (name, bootstrap, topic, properties); all run at once.
    let cases = [
        ("unreachable", "127.0.0.1:1", "readings", "{}"),
        ("missing", b, "nope", "{}"),
        ("tls", b, "readings", "{ security.protocol: ssl }"),
        (
            "sasl",
            b,
            "readings",
            "{ security.protocol: sasl_plaintext, sasl.mechanism: SCRAM-SHA-256, sasl.username: u, sasl.password: p }",
        ),
    ];
    let results: Vec<(String, Duration)> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(name, bootstrap, topic, properties)| {
                let spec = job(
                    dir.path(),
                    name,
                    "",
                    &format!(
                        "{{ id: in, type: kafka, bootstrap: '{bootstrap}', topics: [{topic}], key: /id, timestamp: /timestamp, properties: {properties} }}"
                    ),
                    "{ id: out, type: stdout, input: averages }",
                );
                scope.spawn(move || {
                    let started = Instant::now();
                    let out = weir(&spec).output().unwrap();
                    assert!(!out.status.success());
                    let log = String::from_utf8_lossy(&out.stderr).into_owned();
                    (log.lines().last().unwrap_or_default().to_string(), started.elapsed())
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let reach = |at: &str| format!("error: task in-0/1 failed: cannot reach the Kafka cluster at {at} within 10s (");
    let (error, took) = &results[0];
    assert!(error.starts_with(&reach("127.0.0.1:1")), "{error}");
    assert!(error.contains("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"), "{error}");
    assert!(error.ends_with("): check `bootstrap` and that the brokers are up"), "{error}");
    assert!(*took < Duration::from_secs(20), "{took:?}");
    let (error, took) = &results[1];
    assert_eq!(
        *error,
        format!(
            "error: task in-0/1 failed: topic `nope` does not exist on {b}: create it first (Weir does not create topics)"
        )
    );
    assert!(*took < Duration::from_secs(10), "{took:?}");
    let (error, took) = &results[2];
    assert!(error.starts_with(&format!("{}ssl://{b}/bootstrap: SSL handshake failed:", reach(b))), "{error}");
    assert!(
        error.ends_with(
            "): check the TLS settings in `properties` (security.protocol, ssl.*) against the brokers' listener"
        ),
        "{error}"
    );
    assert!(*took < Duration::from_secs(20), "{took:?}");
    let (error, took) = &results[3];
    assert!(
        error.starts_with(&format!("{}sasl_plaintext://{b}/bootstrap: SASL authentication error:", reach(b))),
        "{error}"
    );
    assert!(error.ends_with("): check the credentials in `properties` (sasl.*, security.protocol)"), "{error}");
    assert!(*took < Duration::from_secs(20), "{took:?}");
}

/// Records compressed by the producer (each codec librdkafka offers) are
/// read, and the sink compresses with the codec its properties name.
#[test]
fn compressed_topics_are_read_and_written_with_every_codec() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    let values: Vec<String> = (0..300).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50))).collect();
    let mut sources = String::new();
    let mut sinks = String::new();
    for codec in codecs {
        broker.create_topic(&format!("in-{codec}"), 2);
        broker.create_topic(&format!("out-{codec}"), 2);
        let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
            values.iter().enumerate().map(|(i, v)| ((i % 2) as i32, Some("k"), v.as_str(), None)).collect();
        broker.produce_with(&format!("in-{codec}"), &records, &[("compression.type", codec)]);
        sources += &format!(
            "  - {{ id: in-{codec}, type: kafka, bootstrap: '{}', topics: [in-{codec}], format: raw, stop_at: latest }}\n",
            broker.bootstrap
        );
        sinks += &format!(
            "  - {{ id: out-{codec}, type: kafka, bootstrap: '{}', topic: out-{codec}, delivery: at-least-once, input: in-{codec}, properties: {{ compression.type: {codec} }} }}\n",
            broker.bootstrap
        );
    }
    let spec = dir.path().join("copy.yaml");
    std::fs::write(&spec, format!("name: copy\nsources:\n{sources}sinks:\n{sinks}")).unwrap();
    run_ok(&spec);
    let mut expected = values.clone();
    expected.sort();
    for codec in codecs {
        assert_eq!(broker.committed_values(&format!("out-{codec}")), expected, "{codec}");
    }
}

/// The restart delay leaves the test time to bring the broker up and fill
/// the topic before the next attempt (a bounded source reading a topic
/// half filled would end early).
#[test]
fn a_job_started_while_its_brokers_are_down_restarts_under_its_strategy_and_finishes_once_they_are_up() {
    let port = weir_tests::kafka::free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = readings(10, 100);
    let expected = file_averages(dir.path(), &data);
    let spec = job(
        dir.path(),
        "down",
        &format!(
            "checkpoint: {{ interval: 1s, dir: {} }}\nrestart: {{ strategy: fixed-delay, attempts: 3, delay: 8s }}",
            dir.path().join("ck").display()
        ),
        &format!(
            "{{ id: in, type: kafka, bootstrap: '127.0.0.1:{port}', topics: [readings], key: /id, timestamp: /timestamp, stop_at: latest }}"
        ),
        "{ id: out, type: file, path: out, input: averages }",
    );
    let mut child = spawn(&spec);
    let log = || std::fs::read_to_string(spec.with_extension("log")).unwrap_or_default();
    let started = Instant::now();
    while !log().contains("a task failed; restarting the job from its latest checkpoint") {
        assert!(started.elapsed() < Duration::from_secs(30), "no restart within 30 s:\n{}", log());
        assert!(child.try_wait().unwrap().is_none(), "the job ended instead of restarting:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = started.elapsed();
    let first = log();
    let cause = format!("task in-0/1 failed: cannot reach the Kafka cluster at 127.0.0.1:{port} within 10s (");
    assert!(first.contains(&cause), "{first}");
    assert!(first.contains("attempt=1") && first.contains("delay=8s"), "{first}");
    assert!(failed < Duration::from_secs(20), "{failed:?}");
    let broker = Broker::start_at(port);
    fill(&broker, "readings", 2, &data);
    assert!(!log().contains("attempt=2"), "the broker came up after the restart delay: the test needs a longer one");
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", log());
    assert!(!log().contains("attempt=2"), "{}", log());
    let mut got = weir_tests::committed_parts(&dir.path().join("out"));
    got.sort();
    assert_eq!(got, expected);
}

/// Starts the job, its log going to `<job>.log` beside the spec (a pipe
/// nobody reads would block a long-running job once full).
fn spawn(job: &Path) -> Child {
    let log = std::fs::File::create(job.with_extension("log")).unwrap();
    weir(job).stderr(log).spawn().unwrap()
}

/// A broker with topic `readings` holding `data` and empty `averages` and
/// `reference`, `partitions` each; a directory for the jobs.
fn copy_setup(partitions: i32, data: &[(usize, String)]) -> (Broker, tempfile::TempDir) {
    let broker = Broker::start();
    fill(&broker, "readings", partitions, data);
    broker.create_topic("averages", partitions);
    broker.create_topic("reference", partitions);
    (broker, tempfile::tempdir().unwrap())
}

/// A bounded source of `readings` at 5000 records/s, with `extra` fields.
fn readings_source(broker: &Broker, extra: &str) -> String {
    format!(
        "{{ id: in, type: kafka, bootstrap: '{}', topics: [readings], key: /id, timestamp: /timestamp, stop_at: latest, rate: 5000{extra} }}",
        broker.bootstrap
    )
}

/// A sink of the averages into `topic`.
fn averages_sink(broker: &Broker, topic: &str, delivery: &str) -> String {
    format!(
        "{{ id: out, type: kafka, bootstrap: '{}', topic: {topic}, delivery: {delivery}, input: averages }}",
        broker.bootstrap
    )
}

/// Kafka → sensor averages → Kafka, checkpointing every `interval`,
/// SIGKILLed six times (every other kill while a checkpoint is written),
/// then run to its end.
fn crash_kafka_to_kafka(delivery: &str, interval: &str) -> (Vec<String>, Vec<String>) {
    let (broker, dir) = copy_setup(3, &readings(20, 3000));
    let source = readings_source(&broker, ", watermark: { max_out_of_orderness: 200ms }");
    let sink = |topic: &str| averages_sink(&broker, topic, delivery);
    let reference = job(
        dir.path(),
        "reference",
        "parallelism: 2\ncheckpoint: { interval: 100ms, dir: reference-checkpoints }",
        &source,
        &sink("reference"),
    );
    run_ok(&reference);
    let expected = broker.committed_values("reference");
    assert!(expected.len() >= 20 * 5, "{} averages", expected.len());

    let checkpoints = dir.path().join("checkpoints");
    let spec = job(
        dir.path(),
        "crashing",
        &format!("parallelism: 2\ncheckpoint: {{ interval: {interval}, dir: checkpoints }}"),
        &source,
        &sink("averages"),
    );
    let seed = weir_tests::crash::seed();
    let during_checkpoint =
        weir_tests::crash::kill_repeatedly(|| spawn(&spec), &checkpoints, 6, seed).during_checkpoint;
    let log = run_ok(&spec);
    assert!(log.contains("resuming from checkpoint"), "{log}");
    assert!(during_checkpoint >= 1, "no kill landed while a checkpoint was written (seed {seed})");
    (expected, broker.committed_values("averages"))
}

#[test]
fn killed_at_random_an_exactly_once_kafka_job_commits_each_record_once() {
    let (expected, got) = crash_kafka_to_kafka("exactly-once", "100ms");
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

#[test]
fn killed_at_random_an_at_least_once_kafka_job_loses_nothing() {
    // Half a second between checkpoints: a kill while one is written comes
    // after half a second of output the restart writes again.
    let (expected, got) = crash_kafka_to_kafka("at-least-once", "500ms");
    let mut distinct = got.clone();
    distinct.dedup();
    assert_eq!(distinct, expected, "every record, none other");
    // What followed a checkpoint before a kill is written again.
    assert!(got.len() > expected.len(), "six kills repeated nothing: {} records", got.len());
}

/// A crash right after a checkpoint is stored and before its
/// transactions commit (the window where librdkafka cannot resume them):
/// the new session aborts them, finds their records in the output topic
/// at the offsets the checkpoint names, and commits them again, once.
#[test]
fn a_crash_between_a_checkpoint_and_its_commit_is_recovered_from_the_records_in_the_topic() {
    let (broker, dir) = copy_setup(2, &readings(10, 1500));
    let source = readings_source(&broker, "");
    let sink = |topic: &str| averages_sink(&broker, topic, "exactly-once");
    let top = |dir: &str| format!("parallelism: 2\ncheckpoint: {{ interval: 200ms, dir: {dir} }}");
    run_ok(&job(dir.path(), "reference", &top("reference-checkpoints"), &source, &sink("reference")));
    let expected = broker.committed_values("reference");
    assert!(expected.len() >= 10 * 25, "{} averages", expected.len());

    let spec = job(dir.path(), "crashing", &top("checkpoints"), &source, &sink("averages"));
    let crashed = weir(&spec).env("FAILPOINTS", "checkpoint-stored=5*off->return").output().unwrap();
    let log = String::from_utf8_lossy(&crashed.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(crashed.status.signal(), Some(6), "aborted at the fault point: {log}");
    // The sixth checkpoint's batches were flushed and never committed.
    let committed = broker.committed_values("averages").len();
    let flushed = broker.read("averages", "read_uncommitted").len();
    assert!(flushed > committed && committed < expected.len(), "{flushed} flushed, {committed} committed");

    let log = run_ok(&spec);
    assert!(log.contains("records of an uncommitted transaction read back from the topic"), "{log}");
    assert_eq!(broker.committed_values("averages"), expected);
}

/// The averages of `data` (from a file) for windows ending at or before
/// `until`, of the sensors in `sensors`.
fn expected_windows(all: &[String], sensors: &[&str], until: i64) -> Vec<String> {
    let mut lines: Vec<String> = all
        .iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["window_end"].as_i64().unwrap() <= until && sensors.contains(&v["id"].as_str().unwrap())
        })
        .cloned()
        .collect();
    lines.sort();
    lines
}

/// Waits until the committed output in `out` is `expected` (and stays so
/// for a moment), or fails showing both.
fn await_output(out: &Path, expected: &[String], child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut since: Option<Instant> = None;
    loop {
        let mut got = weir_tests::committed_parts(out);
        got.sort();
        if got == expected {
            let at = *since.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_millis(700) {
                return;
            }
        } else {
            since = None;
        }
        assert!(child.try_wait().unwrap().is_none(), "the job ended");
        assert!(Instant::now() < deadline, "got {got:#?}\nexpected {expected:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An unbounded Kafka → averages → part files job over topic `readings`.
fn live_job(dir: &Path, broker: &Broker, watermark: &str) -> PathBuf {
    job(
        dir,
        "live",
        "checkpoint: { interval: 100ms, dir: checkpoints }",
        &format!(
            "{{ id: in, type: kafka, bootstrap: '{}', topics: [readings], key: /id, timestamp: /timestamp, watermark: {watermark} }}",
            broker.bootstrap
        ),
        "{ id: out, type: file, path: out, input: averages }",
    )
}

#[test]
fn windows_wait_for_a_partition_behind_in_event_time_and_pass_a_silent_one_after_idle_timeout() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // sensor_s in partition s; 20 s of event time each.
    let data = readings(3, 201);
    let all = file_averages(dir.path(), &data);
    let t0 = 1_700_000_000_000i64;
    let time = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap()["timestamp"].as_i64().unwrap();
    broker.create_topic("readings", 3);
    let write = |keep: &dyn Fn(usize, i64) -> bool| {
        let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
            data.iter().filter(|(s, l)| keep(*s, time(l))).map(|(s, l)| (*s as i32, None, l.as_str(), None)).collect();
        broker.produce("readings", &records);
    };
    // Partition 2 is 10 s behind the others.
    write(&|s, t| s < 2 || t <= t0 + 10_000);
    let spec = live_job(dir.path(), &broker, "{ max_out_of_orderness: 0ms, interval: 50ms }");
    let mut child = spawn(&spec);
    let out = dir.path().join("out");
    let sensors = ["sensor_0", "sensor_1", "sensor_2"];
    await_output(&out, &expected_windows(&all, &sensors, t0 + 10_000), &mut child);
    // It catches up: the windows up to the others' watermark fire.
    write(&|s, t| s == 2 && t > t0 + 10_000);
    await_output(&out, &expected_windows(&all, &sensors, t0 + 20_000), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();

    // A partition with no records at all holds nothing back once it has
    // been silent for `idle_timeout`.
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("readings", 3);
    let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
        data.iter().filter(|(s, _)| *s < 2).map(|(s, l)| (*s as i32, None, l.as_str(), None)).collect();
    broker.produce("readings", &records);
    let spec = live_job(dir.path(), &broker, "{ max_out_of_orderness: 0ms, interval: 50ms, idle_timeout: 500ms }");
    let mut child = spawn(&spec);
    await_output(&dir.path().join("out"), &expected_windows(&all, &sensors[..2], t0 + 20_000), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_kafka_sensors_example_gives_the_averages_of_the_plain_sensor_example() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let example = weir_tests::repo().join("examples/kafka-sensors");
    let adapt = |name: &str| {
        let text = std::fs::read_to_string(example.join(name))
            .unwrap()
            .replace("127.0.0.1:9092", &broker.bootstrap)
            .replace("/tmp/weir-kafka-sensors", &dir.path().display().to_string())
            .replace("../../target/plugins", &weir_tests::repo().join("target/plugins").display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    broker.create_topic("sensor-readings", 3);
    broker.create_topic("sensor-averages", 3);
    run_ok(&adapt("produce.yaml"));
    run_ok(&adapt("averages.yaml"));
    let got = broker.committed_values("sensor-averages");
    // The same readings straight from the generator (its disorder is within
    // the watermark bound: nothing is late either way).
    let plain = Command::new(weir_bin())
        .arg("run")
        .arg(weir_tests::repo().join("examples/sensor-averages/job.yaml"))
        .args(["--progress", "0"])
        .output()
        .unwrap();
    assert!(plain.status.success());
    let mut expected: Vec<String> = String::from_utf8(plain.stdout).unwrap().lines().map(str::to_string).collect();
    expected.sort();
    assert_eq!(expected.len(), 120);
    assert_eq!(got, expected);
}

#[test]
fn a_kafka_to_kafka_job_killed_at_parallelism_2_finishes_at_parallelism_3_with_each_record_once() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let data = readings(20, 2000);
    fill(&broker, "readings", 5, &data);
    broker.create_topic("averages", 3);
    broker.create_topic("reference", 3);
    let source = format!(
        "{{ id: in, type: kafka, bootstrap: '{}', topics: [readings], key: /id, timestamp: /timestamp, stop_at: latest, rate: 10000, watermark: {{ max_out_of_orderness: 200ms }} }}",
        broker.bootstrap
    );
    // (A producer property on the sink: the marker consumer takes the
    // sink's properties too, for credentials, and must ignore such ones.)
    let sink = |topic: &str| {
        format!(
            "{{ id: out, type: kafka, bootstrap: '{}', topic: {topic}, input: averages, properties: {{ transaction.timeout.ms: 120000 }} }}",
            broker.bootstrap
        )
    };
    let top = |p: u32, dir: &str| format!("parallelism: {p}\ncheckpoint: {{ interval: 100ms, dir: {dir} }}");
    run_ok(&job(dir.path(), "reference", &top(1, "reference-checkpoints"), &source, &sink("reference")));
    let expected = broker.committed_values("reference");

    let checkpoints = dir.path().join("checkpoints");
    let mut child = spawn(&job(dir.path(), "rescaled", &top(2, "checkpoints"), &source, &sink("averages")));
    let deadline = Instant::now() + Duration::from_secs(30);
    while weir_tests::crash::latest_checkpoint(&checkpoints).is_none_or(|id| id < 5) {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no checkpoint completed");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = broker.committed_values("averages");
    assert!(!partial.is_empty() && partial.len() < expected.len(), "{} of {}", partial.len(), expected.len());
    let log = run_ok(&job(dir.path(), "rescaled", &top(3, "checkpoints"), &source, &sink("averages")));
    assert!(log.contains("resuming from checkpoint"), "{log}");
    assert_eq!(broker.committed_values("averages"), expected);
}

#[test]
fn a_pattern_source_picks_up_topics_and_partitions_created_while_it_runs() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("sensors-a", 2);
    broker.create_topic("other", 1);
    broker.produce("sensors-a", &[(0, None, "a0", None), (1, None, "a1", None)]);
    broker.produce("other", &[(0, None, "not matched", None)]);
    let spec = format!(
        "name: pattern
checkpoint: {{ interval: 100ms, dir: checkpoints }}
parallelism: 2
sources:
  - {{ id: in, type: kafka, bootstrap: '{}', topics: {{ pattern: 'sensors-.*' }}, format: raw, discovery_interval: 300ms }}
sinks:
  - {{ id: out, type: file, path: out, input: in }}
",
        broker.bootstrap
    );
    let path = dir.path().join("pattern.yaml");
    std::fs::write(&path, spec).unwrap();
    let mut child = spawn(&path);
    let out = dir.path().join("out");
    await_output(&out, &["a0".to_string(), "a1".to_string()], &mut child);
    broker.create_topic("sensors-b", 3);
    broker.produce("sensors-b", &[(0, None, "b0", None), (1, None, "b1", None), (2, None, "b2", None)]);
    // A partition added to a topic being read is read from its start.
    broker.add_partitions("sensors-a", 3);
    broker.produce("sensors-a", &[(0, None, "a2", None), (2, None, "a3", None)]);
    let expected: Vec<String> = ["a0", "a1", "a2", "a3", "b0", "b1", "b2"].map(String::from).to_vec();
    await_output(&out, &expected, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_kafka_source_reports_its_lag_as_a_prometheus_gauge() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("backlog", 2);
    let values: Vec<String> = (0..4000).map(|i| format!("v{i}")).collect();
    let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
        values.iter().enumerate().map(|(i, v)| ((i % 2) as i32, None, v.as_str(), None)).collect();
    broker.produce("backlog", &records);
    let spec = dir.path().join("lag.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: lagging\nsources: [{{ id: in, type: kafka, bootstrap: '{}', topics: backlog, format: raw, rate: 500 }}]\n\
             sinks: [{{ id: out, type: blackhole, input: in }}]\n",
            broker.bootstrap
        ),
    )
    .unwrap();
    let mut child = weir(&spec).args(["--metrics-addr", "127.0.0.1:0"]).spawn().unwrap();
    let addr = weir_tests::metrics_addr(&mut child);
    let lag = || -> Option<u64> {
        weir_tests::scrape(&addr)
            .lines()
            .find(|l| l.starts_with("weir_source_lag_records{job=\"lagging\"") && l.contains("node=\"in\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "lag seen: {seen:?}");
        if let Some(l) = lag()
            && l > 0
            && seen.last() != Some(&l)
        {
            seen.push(l);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Reading 500 records a second, the backlog shrinks.
    assert!(seen.windows(2).all(|w| w[1] < w[0]) && seen[0] <= 4000, "{seen:?}");
}
