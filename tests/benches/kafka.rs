//! `make bench` (sixth part): the Kafka connectors against plain rdkafka
//! loops, in one run: `WEIR_BENCH_KAFKA_RECORDS` records (default
//! 2,000,000) each. Every side of every case runs on a fresh broker
//! (noida-db on 127.0.0.1, as in the tests) and is timed from creating its
//! clients (Weir: from submitting the job) to the last commit or flush.
//!
//! - read: a Weir job `kafka` source (bounded) → `blackhole` over a
//!   4-partition topic of 100-byte values, against a `BaseConsumer` loop
//!   reading every partition to its end;
//! - write, at-least-once / exactly-once: the `bytes` generator (100-byte
//!   values) → `kafka` sink with a checkpoint a second, against a loop
//!   that polls the same generator and produces each record with the
//!   idempotent producer, flushing every second (at-least-once) or
//!   committing a transaction every second (exactly-once);
//! - copy, at-least-once / exactly-once: `kafka` → `kafka` (100-byte
//!   values) with a checkpoint a second, against a consume → produce loop
//!   that flushes every second, or commits a transaction a second with the
//!   consumer's offsets in it (what makes a plain copy exactly-once).
//!
//! `WEIR_BENCH_KAFKA_CASES="write,copy exactly-once"` runs only the cases
//! whose names start with one of those. Each case runs
//! `WEIR_BENCH_KAFKA_RUNS` times per side (default 5), the sides
//! alternating, and the table shows the medians: the broker's own pauses
//! (it saves its whole state every few seconds) make single runs vary by
//! ±30 % here.
//!
//! Target: Weir ≥ 0.8× the plain loop. Figures are ratios from one run on
//! a shared machine; the broker shares its two cores and is most of the
//! cost.
//!
//! noida-db sends a `read_committed` fetch everything up to the stable
//! offset, whatever `fetch.max.bytes` says; both sides' consumers raise
//! `receive.message.max.bytes` so that a large backlog fits.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use weir_connectors::{SourcePoll, SplitState, source_factory};
use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::kafka::{Broker, flush, send};

const PARTITIONS: i32 = 4;
const VALUE: usize = 100;
/// See the module's last paragraph.
const RECEIVE_MAX: &str = "1000000000";

/// A consumer of every partition of `topic` from its start.
fn consumer(broker: &Broker, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = broker
        .config()
        .set("group.id", "bench-plain")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("receive.message.max.bytes", RECEIVE_MAX)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&list).unwrap();
    c
}

/// Reads `n` records of `topic`, handing each to `each`.
fn consume(c: &BaseConsumer, n: u64, mut each: impl FnMut(&[u8], &[u8])) {
    let mut seen = 0;
    while seen < n {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                each(m.key().unwrap_or_default(), m.payload().unwrap_or_default());
                seen += 1;
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
}

fn plain_read(broker: &Broker, n: u64) -> Duration {
    let t = Instant::now();
    let c = consumer(broker, "in");
    let mut bytes = 0usize;
    consume(&c, n, |_, v| bytes += v.len());
    std::hint::black_box(bytes);
    t.elapsed()
}

/// A plain producer: idempotent, and transactional under `id`.
fn producer(broker: &Broker, id: Option<&str>) -> BaseProducer {
    let mut config = broker.config();
    config.set("enable.idempotence", "true");
    if let Some(id) = id {
        config.set("transactional.id", id);
    }
    let producer: BaseProducer = config.create().unwrap();
    // As the sinks do: connections up before the producer asks for its id
    // (else librdkafka may wait 500 ms to ask again).
    for _ in 0..2 {
        producer.client().fetch_metadata(Some("out"), Duration::from_secs(10)).unwrap();
    }
    if id.is_some() {
        producer.init_transactions(Duration::from_secs(10)).unwrap();
        producer.begin_transaction().unwrap();
    }
    producer
}

/// Every second: a flush, or a commit of the open transaction (with the
/// consumer's offsets, for a copy) and a new one.
fn end_interval(producer: &BaseProducer, transactional: bool, consumer: Option<&BaseConsumer>) {
    if !transactional {
        flush(producer, Duration::from_secs(60));
        return;
    }
    if let Some(c) = consumer {
        let offsets = c.position().unwrap();
        producer.send_offsets_to_transaction(&offsets, &c.group_metadata().unwrap(), Duration::from_secs(60)).unwrap();
    }
    producer.commit_transaction(Duration::from_secs(60)).unwrap();
    producer.begin_transaction().unwrap();
}

/// The `bytes` generator's `n` events, written by a plain producer
/// loop; the time and the value bytes.
fn plain_write(broker: &Broker, n: u64, transactional: bool) -> (Duration, u64) {
    let spec = JobSpec::parse(
        &format!(
            "name: w\nsources: [{{ id: in, type: generator, generator: bytes, size: {VALUE}, events: {n} }}]\n\
             sinks: [{{ id: out, type: blackhole, input: in }}]\n"
        ),
        Format::Yaml,
    )
    .unwrap();
    let factory = source_factory(&spec.sources[0], "w");
    let splits = factory.splits(1).unwrap().into_iter().map(|id| SplitState { id, position: None }).collect();
    let task = weir_types::TaskInfo { node: "in".into(), index: 0, parallelism: 1 };
    let mut source = factory.reader(splits, 0, &task).unwrap();
    let t = Instant::now();
    let producer = producer(broker, transactional.then_some("bench-plain"));
    let mut since = Instant::now();
    let mut bytes = 0u64;
    loop {
        match source.poll(1024).unwrap() {
            SourcePoll::Records { records, .. } => {
                for r in records.iter() {
                    bytes += r.value.len() as u64;
                    let mut record = BaseRecord::to("out").payload(r.value);
                    if let Some(key) = r.key {
                        record = record.key(key);
                    }
                    send(&producer, record);
                }
                producer.poll(Duration::ZERO);
            }
            SourcePoll::Pending(wait) => std::thread::sleep(wait),
            SourcePoll::SplitDone(_) => {}
            SourcePoll::End => break,
        }
        if since.elapsed() >= Duration::from_secs(1) {
            end_interval(&producer, transactional, None);
            since = Instant::now();
        }
    }
    match transactional {
        true => producer.commit_transaction(Duration::from_secs(60)).unwrap(),
        false => flush(&producer, Duration::from_secs(60)),
    }
    (t.elapsed(), bytes)
}

fn plain_copy(broker: &Broker, n: u64, transactional: bool) -> Duration {
    let t = Instant::now();
    let c = consumer(broker, "in");
    let producer = producer(broker, transactional.then_some("bench-plain"));
    let mut since = Instant::now();
    let mut seen = 0u64;
    consume(&c, n, |k, v| {
        send(&producer, BaseRecord::to("out").key(k).payload(v));
        seen += 1;
        if seen.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
        if since.elapsed() >= Duration::from_secs(1) {
            end_interval(&producer, transactional, Some(&c));
            since = Instant::now();
        }
    });
    match transactional {
        true => producer.commit_transaction(Duration::from_secs(60)).unwrap(),
        false => flush(&producer, Duration::from_secs(60)),
    }
    t.elapsed()
}

/// A Weir job of `source` → `sink`, checkpointed every second when the
/// sink is Kafka's; its run time.
fn weir(dir: &std::path::Path, name: &str, source: &str, sink: &str) -> Duration {
    let checkpoint = if sink.contains("kafka") {
        format!("checkpoint: {{ interval: 1s, dir: {} }}\n", dir.join(name).display())
    } else {
        String::new()
    };
    let text = format!("name: {name}\n{checkpoint}sources:\n  - {source}\nsinks:\n  - {sink}\n");
    let spec = JobSpec::parse(&text, Format::Yaml).unwrap();
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let report = run_job(&spec, &JobOptions::default(), &engine).unwrap();
    report.elapsed
}

/// Fills `in` with `n` records of 100 bytes over its partitions.
fn fill(broker: &Broker, n: u64) -> Duration {
    let producer = producer(broker, None);
    let value = [b'x'; VALUE];
    let t = Instant::now();
    for i in 0..n {
        let key = format!("key-{}", i % 1000);
        send(&producer, BaseRecord::to("in").key(key.as_bytes()).payload(&value[..]).partition((i % 4) as i32));
        if i.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    flush(&producer, Duration::from_secs(120));
    t.elapsed()
}

/// The cases, in the order they run: `read`, `write` or `copy`, then the
/// delivery.
const CASES: [(&str, &str); 5] = [
    ("read", "blackhole"),
    ("write", "at-least-once"),
    ("write", "exactly-once"),
    ("copy", "at-least-once"),
    ("copy", "exactly-once"),
];

/// One line of the table.
struct Case {
    name: String,
    /// Value bytes written or read.
    bytes: u64,
    /// Each run's time.
    plain: Vec<Duration>,
    weir: Vec<Duration>,
}

fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// A fresh broker with the 4-partition topics `in` (holding `n` records of
/// 100 bytes when `filled`) and `out`. Every side of every case gets its
/// own: noida-db saves its whole state every few seconds, a cost that
/// grows with what it holds, so a shared broker would slow whichever side
/// runs later. Its data is in memory (`/dev/shm`): the saves then cost
/// CPU only, not the shared disk's latency.
fn fresh(n: u64, filled: bool) -> Broker {
    let broker = Broker::start_in_memory();
    broker.create_topic("in", PARTITIONS);
    broker.create_topic("out", PARTITIONS);
    if filled {
        fill(&broker, n);
    }
    broker
}

fn main() {
    let n: u64 = std::env::var("WEIR_BENCH_KAFKA_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let runs: usize = std::env::var("WEIR_BENCH_KAFKA_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let only = std::env::var("WEIR_BENCH_KAFKA_CASES").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|w| name.starts_with(w.trim()));
    let dir = tempfile::tempdir().unwrap();
    println!(
        "Kafka connectors: {n} records per case; each side on a fresh broker (127.0.0.1) with a {PARTITIONS}-partition \
         topic `in` of {VALUE}-byte values to read"
    );
    let kafka_in = |b: &Broker| {
        format!(
            "{{ id: in, type: kafka, bootstrap: '{}', topics: [in], format: raw, stop_at: latest, \
             properties: {{ receive.message.max.bytes: '{RECEIVE_MAX}' }} }}",
            b.bootstrap
        )
    };
    let kafka_out = |b: &Broker, delivery: &str| {
        format!("{{ id: out, type: kafka, bootstrap: '{}', topic: out, delivery: {delivery}, input: in }}", b.bootstrap)
    };
    let generator = format!("{{ id: in, type: generator, generator: bytes, size: {VALUE}, events: {n} }}");
    let copied = n * VALUE as u64;
    // Each writing side must leave exactly `n` committed records in `out`.
    let written = |b: &Broker| assert_eq!(b.read("out", "read_committed").len() as u64, n, "records in `out`");
    let mut cases = Vec::new();
    for (kind, delivery) in CASES {
        let name = format!("{kind} {delivery}");
        if !wanted(&name) {
            continue;
        }
        let transactional = delivery == "exactly-once";
        let mut case = Case { name, bytes: copied, plain: Vec::new(), weir: Vec::new() };
        for run in 0..runs {
            // Each side on its own broker, the last one stopped first: it
            // goes on saving what it holds for a while.
            let b = fresh(n, kind != "write");
            case.plain.push(match kind {
                "read" => plain_read(&b, n),
                "write" => {
                    let (took, bytes) = plain_write(&b, n, transactional);
                    case.bytes = bytes;
                    took
                }
                _ => plain_copy(&b, n, transactional),
            });
            if kind != "read" {
                written(&b);
            }
            drop(b);
            let b = fresh(n, kind != "write");
            // (A checkpoint dir of its own: a job that ran to its end
            // would not run again.)
            let job = format!("{kind}-{delivery}-{run}");
            case.weir.push(match kind {
                "read" => weir(dir.path(), &job, &kafka_in(&b), "{ id: out, type: blackhole, input: in }"),
                "write" => weir(dir.path(), &job, &generator, &kafka_out(&b, delivery)),
                _ => weir(dir.path(), &job, &kafka_in(&b), &kafka_out(&b, delivery)),
            });
            if kind != "read" {
                written(&b);
            }
        }
        cases.push(case);
    }

    println!("(medians of {runs} runs per side, the sides alternating)");
    println!(
        "{:<24} {:>9} {:>12} {:>7} {:>12} {:>7} {:>7}",
        "", "value B", "plain rec/s", "MB/s", "weir rec/s", "MB/s", "ratio"
    );
    for c in &cases {
        let (plain, weir) = (median(&c.plain), median(&c.weir));
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        let mb = |d: Duration| c.bytes as f64 / d.as_secs_f64() / 1e6;
        println!(
            "{:<24} {:>9.0} {:>12.0} {:>7.1} {:>12.0} {:>7.1} {:>6.2}×",
            c.name,
            c.bytes as f64 / n as f64,
            rate(plain),
            mb(plain),
            rate(weir),
            mb(weir),
            plain.as_secs_f64() / weir.as_secs_f64()
        );
    }
    println!("each run, k rec/s:");
    for c in &cases {
        let each = |runs: &[Duration]| {
            runs.iter().map(|d| format!("{:.0}", n as f64 / d.as_secs_f64() / 1e3)).collect::<Vec<_>>().join(" ")
        };
        println!("  {:<22} plain {}; weir {}", c.name, each(&c.plain), each(&c.weir));
    }
}
