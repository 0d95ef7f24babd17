//! `make bench` (sixth part): the Kafka connectors against plain rdkafka
//! loops on the same broker (noida-db on 127.0.0.1, as in the tests), in
//! one run: `WEIR_BENCH_KAFKA_RECORDS` records (default 1,000,000) of
//! 100-byte values in a 4-partition topic.
//!
//! - read: a Weir job `kafka` source (bounded) → `blackhole`, against a
//!   `BaseConsumer` loop reading every partition to its end;
//! - copy, at-least-once: `kafka` → `kafka` with a checkpoint a second,
//!   against a consume → produce loop with the idempotent producer that
//!   flushes every second (what makes a checkpointed copy at-least-once);
//! - copy, exactly-once: the same with `delivery: exactly-once`, against a
//!   consume → produce loop committing a transaction a second with the
//!   consumer's offsets in it (what makes a plain copy exactly-once).
//!
//! Target: Weir ≥ 0.8× the plain loop. Figures are ratios from one run on
//! a shared machine; both sides talk to the same local broker, which is
//! most of the cost.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use weir_runtime::{JobOptions, run_job};
use weir_spec::{Format, JobSpec};
use weir_tests::kafka::Broker;

const PARTITIONS: i32 = 4;
const VALUE: usize = 100;

fn send(producer: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

/// A consumer of every partition of `topic` from its start.
fn consumer(broker: &Broker, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = broker
        .config()
        .set("group.id", "bench-plain")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
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
    let c = consumer(broker, "in");
    let t = Instant::now();
    let mut bytes = 0usize;
    consume(&c, n, |_, v| bytes += v.len());
    std::hint::black_box(bytes);
    t.elapsed()
}

fn plain_copy(broker: &Broker, n: u64, to: &str, transactional: bool) -> Duration {
    let c = consumer(broker, "in");
    let mut config = broker.config();
    config.set("enable.idempotence", "true");
    if transactional {
        config.set("transactional.id", format!("bench-plain-{to}"));
    }
    let producer: BaseProducer = config.create().unwrap();
    let t = Instant::now();
    if transactional {
        producer.init_transactions(Duration::from_secs(10)).unwrap();
        producer.begin_transaction().unwrap();
    }
    let mut since = Instant::now();
    let mut seen = 0u64;
    consume(&c, n, |k, v| {
        send(&producer, BaseRecord::to(to).key(k).payload(v));
        seen += 1;
        if seen.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
        if since.elapsed() >= Duration::from_secs(1) {
            if transactional {
                let offsets = c.position().unwrap();
                producer
                    .send_offsets_to_transaction(&offsets, &c.group_metadata().unwrap(), Duration::from_secs(60))
                    .unwrap();
                producer.commit_transaction(Duration::from_secs(60)).unwrap();
                producer.begin_transaction().unwrap();
            } else {
                producer.flush(Duration::from_secs(60)).unwrap();
            }
            since = Instant::now();
        }
    });
    match transactional {
        true => producer.commit_transaction(Duration::from_secs(60)).unwrap(),
        false => producer.flush(Duration::from_secs(60)).unwrap(),
    }
    t.elapsed()
}

fn weir(broker: &Broker, dir: &std::path::Path, name: &str, sink: &str) -> Duration {
    let checkpoint = if sink.contains("kafka") {
        format!("checkpoint: {{ interval: 1s, dir: {} }}\n", dir.join(name).display())
    } else {
        String::new()
    };
    let text = format!(
        "name: {name}
{checkpoint}sources:
  - {{ id: in, type: kafka, bootstrap: '{}', topics: [in], format: raw, stop_at: latest }}
sinks:
  - {sink}
",
        broker.bootstrap
    );
    let spec = JobSpec::parse(&text, Format::Yaml).unwrap();
    let engine = weir_wasm::PluginEngine::new().unwrap();
    let report = run_job(&spec, &JobOptions::default(), &engine).unwrap();
    report.elapsed
}

fn main() {
    let n: u64 = std::env::var("WEIR_BENCH_KAFKA_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topic("in", PARTITIONS);
    for t in ["plain-alo", "weir-alo", "plain-eo", "weir-eo"] {
        broker.create_topic(t, PARTITIONS);
    }
    let producer: BaseProducer = broker.config().set("enable.idempotence", "true").create().unwrap();
    let value = [b'x'; VALUE];
    let t = Instant::now();
    for i in 0..n {
        let key = format!("key-{}", i % 1000);
        send(&producer, BaseRecord::to("in").key(key.as_bytes()).payload(&value[..]).partition((i % 4) as i32));
        if i.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let fill = t.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let mb = |d: Duration| (n as f64 * VALUE as f64) / d.as_secs_f64() / 1e6;
    println!("Kafka connectors: {n} records of {VALUE} bytes in {PARTITIONS} partitions (one broker, 127.0.0.1)");
    println!("  filling the topic (plain idempotent producer): {:.0} records/s", rate(fill));
    println!("{:<26} {:>14} {:>8} {:>14} {:>8} {:>7}", "", "plain rec/s", "MB/s", "weir rec/s", "MB/s", "ratio");
    let cases: [(&str, Duration, Duration); 3] = [
        (
            "read → blackhole",
            plain_read(&broker, n),
            weir(&broker, dir.path(), "read", "{ id: out, type: blackhole, input: in }"),
        ),
        (
            "copy, at-least-once",
            plain_copy(&broker, n, "plain-alo", false),
            weir(
                &broker,
                dir.path(),
                "copy-alo",
                &format!(
                    "{{ id: out, type: kafka, bootstrap: '{}', topic: weir-alo, delivery: at-least-once, input: in }}",
                    broker.bootstrap
                ),
            ),
        ),
        (
            "copy, exactly-once",
            plain_copy(&broker, n, "plain-eo", true),
            weir(
                &broker,
                dir.path(),
                "copy-eo",
                &format!(
                    "{{ id: out, type: kafka, bootstrap: '{}', topic: weir-eo, delivery: exactly-once, input: in }}",
                    broker.bootstrap
                ),
            ),
        ),
    ];
    for (name, plain, weir) in cases {
        println!(
            "{name:<26} {:>14.0} {:>8.1} {:>14.0} {:>8.1} {:>6.2}×",
            rate(plain),
            mb(plain),
            rate(weir),
            mb(weir),
            plain.as_secs_f64() / weir.as_secs_f64()
        );
    }
}
