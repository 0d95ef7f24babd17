//! A real Kafka-protocol broker for tests: noida-db (installed by
//! `scripts/setup.sh` into the tools virtualenv), started on 127.0.0.1 on
//! a free port with a fresh data directory, stopped when dropped; and
//! librdkafka clients to make topics, write input and read output.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// The broker version the tests are written against (`scripts/setup.sh`
/// pins the same).
pub const BROKER_VERSION: &str = "0.2.3";

/// A record read back: partition, offset, key, value, timestamp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Read {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key, if any.
    pub key: Option<String>,
    /// Value.
    pub value: String,
    /// Record timestamp (ms), if any.
    pub timestamp: Option<i64>,
}

/// A running broker.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
    dir: tempfile::TempDir,
}

/// The broker binary: `$WEIR_TOOLS/bin/noida-db`, the native server
/// `scripts/setup.sh` links there from the noida-db package (not the
/// package's Python wrapper, whose child would outlive a killed wrapper).
pub fn broker_bin() -> PathBuf {
    crate::tools().join("bin/noida-db")
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    /// Starts a broker on a free port and waits until it answers metadata
    /// requests.
    pub fn start() -> Broker {
        Broker::start_at(free_port())
    }

    /// Starts a broker on `port` (one a job already tries to reach).
    pub fn start_at(port: u16) -> Broker {
        Broker::start_with(port, tempfile::tempdir().unwrap())
    }

    /// Starts a broker whose data lives in memory (`/dev/shm`, where there
    /// is one): for benchmarks, so that the broker's periodic saves do not
    /// measure the machine's disk.
    pub fn start_in_memory() -> Broker {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        Broker::start_with(free_port(), dir.unwrap())
    }

    fn start_with(port: u16, dir: tempfile::TempDir) -> Broker {
        let bin = broker_bin();
        assert!(
            bin.exists(),
            "the test Kafka broker {} is missing: run `make setup` (it installs noida-db {BROKER_VERSION})",
            bin.display()
        );
        let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
        let child = Command::new(&bin)
            .args(["start", "--only", "kafka", "--host", "127.0.0.1"])
            .arg("--kafka-port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let broker = Broker { child, bootstrap: format!("127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        let consumer: BaseConsumer = broker.config().create().unwrap();
        while consumer.fetch_metadata(None, Duration::from_millis(500)).is_err() {
            assert!(Instant::now() < deadline, "the broker did not come up: {}", broker.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// What the broker printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// A client configuration for this broker.
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap).set("log_level", "3");
        c
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let results = runtime
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .unwrap();
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
        }
    }

    /// Grows `topic` to `partitions` partitions.
    pub fn add_partitions(&self, topic: &str, partitions: usize) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let results = runtime
            .block_on(admin.create_partitions(
                &[rdkafka::admin::NewPartitions::new(topic, partitions)],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .unwrap();
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot add partitions to {t}: {e}"));
        }
    }

    /// Writes `records` (partition, key, value, timestamp) and waits until
    /// every one is acknowledged.
    /// Record timestamps older than the broker's retention (a week) are
    /// deleted as they come: give recent ones.
    pub fn produce(&self, topic: &str, records: &[(i32, Option<&str>, &str, Option<i64>)]) {
        self.produce_with(topic, records, &[]);
    }

    /// [`Broker::produce`] with more producer settings (e.g.
    /// `compression.type`).
    pub fn produce_with(
        &self,
        topic: &str,
        records: &[(i32, Option<&str>, &str, Option<i64>)],
        settings: &[(&str, &str)],
    ) {
        let mut config = self.config();
        config.set("enable.idempotence", "true");
        for (k, v) in settings {
            config.set(*k, *v);
        }
        let producer: BaseProducer = config.create().unwrap();
        for (partition, key, value, timestamp) in records {
            let mut record = BaseRecord::<str, str>::to(topic).payload(value).partition(*partition);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(t) = timestamp {
                record = record.timestamp(*t);
            }
            send(&producer, record);
        }
        flush(&producer, Duration::from_secs(30));
    }

    /// Every record of `topic` (all partitions) as a consumer with
    /// `isolation.level` sees it, in partition and offset order.
    pub fn read(&self, topic: &str, isolation: &str) -> Vec<Read> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "weir-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", isolation)
            // noida-db answers a read_committed fetch with everything up
            // to the stable offset, whatever fetch.max.bytes says.
            .set("receive.message.max.bytes", "1000000000")
            .create()
            .unwrap();
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            list.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut at_end = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions.len() {
            assert!(Instant::now() < deadline, "reading {topic} did not reach its end");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    at_end.remove(&m.partition());
                    out.push(Read {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                        timestamp: m.timestamp().to_millis(),
                    });
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out.sort();
        out
    }

    /// The values of `topic` a `read_committed` consumer sees, sorted.
    pub fn committed_values(&self, topic: &str) -> Vec<String> {
        let mut values: Vec<String> = self.read(topic, "read_committed").into_iter().map(|r| r.value).collect();
        values.sort();
        values
    }

    /// The offset group `group` committed for partition `partition`.
    pub fn group_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let consumer: BaseConsumer = self.config().set("group.id", group).create().unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let committed = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
        match committed.find_partition(topic, partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `record`, waiting while librdkafka's queue is full.
pub fn send<K, P>(producer: &BaseProducer, mut record: BaseRecord<'_, K, P>)
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, back)) => panic!("cannot produce to {}: {e}", back.topic),
        }
    }
}

/// Waits until every record sent is acknowledged, serving delivery
/// reports; panics on a failed one or after `timeout`.
///
/// Not `BaseProducer::flush`, which in rdkafka 0.39 takes at least 100 ms
/// whenever a record is in flight (its poll steps last their whole length).
pub fn flush(producer: &BaseProducer, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let _ = producer.flush(Duration::ZERO);
    let mut left = producer.in_flight_count();
    while left > 0 {
        assert!(Instant::now() < deadline, "{left} records not acknowledged within {timeout:?}");
        producer.poll(Duration::ZERO);
        let now = producer.in_flight_count();
        if now == left {
            std::thread::sleep(Duration::from_micros(200));
        }
        left = now;
    }
}
