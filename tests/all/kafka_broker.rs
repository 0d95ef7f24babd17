//! The behaviour of the test broker (noida-db, pinned) that the Kafka
//! connectors rely on, checked with librdkafka on its own: a broker
//! upgrade that changes any of it fails here, by name, before the
//! connector tests fail in ways harder to read.
//!
//! Known deviation from Apache Kafka, which the connectors do not rely on
//! (docs/kafka.md): a `read_committed` consumer that was reading live when
//! a producer aborted a transaction does not see that producer's later
//! committed records (a consumer reading from before the abort does).

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use weir_tests::kafka::{BROKER_VERSION, Broker, broker_bin};

const T: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn the_broker_is_the_pinned_version() {
    let out = std::process::Command::new(broker_bin()).arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("noida-db {BROKER_VERSION}"));
}

#[test]
fn transactions_markers_fencing_and_offsets_behave_as_the_connectors_need() {
    let broker = Broker::start();
    broker.create_topic("out", 2);
    let producer: BaseProducer = broker.config().set("transactional.id", "conformance-0").create().unwrap();
    producer.init_transactions(T).unwrap();
    let group: BaseConsumer = broker.config().set("group.id", "marker-group").create().unwrap();
    let send = |p: &BaseProducer, value: &str, partition: i32| {
        p.send(BaseRecord::<str, str>::to("out").key("k").payload(value).partition(partition)).unwrap();
    };
    let marker = |offset: i64, token: &str| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("out", 0, Offset::Offset(offset)).unwrap();
        list.find_partition("out", 0).unwrap().set_metadata(token);
        list
    };

    // A committed transaction with a marker (TxnOffsetCommit with
    // metadata): records and marker become visible together.
    producer.begin_transaction().unwrap();
    send(&producer, "committed-0", 0);
    send(&producer, "committed-1", 1);
    producer.send_offsets_to_transaction(&marker(7, "token-a"), &group.group_metadata().unwrap(), T).unwrap();
    producer.flush(T).unwrap();
    producer.commit_transaction(T).unwrap();
    // An aborted one: neither records nor marker.
    producer.begin_transaction().unwrap();
    send(&producer, "aborted", 0);
    producer.send_offsets_to_transaction(&marker(8, "token-b"), &group.group_metadata().unwrap(), T).unwrap();
    producer.flush(T).unwrap();
    producer.abort_transaction(T).unwrap();
    // An open one, then a new producer of the same id: it fences the old
    // one and aborts what it left open.
    producer.begin_transaction().unwrap();
    send(&producer, "left-open", 1);
    producer.flush(T).unwrap();
    let successor: BaseProducer = broker.config().set("transactional.id", "conformance-0").create().unwrap();
    successor.init_transactions(T).unwrap();
    producer.begin_transaction().ok();
    send(&producer, "zombie", 0);
    producer.flush(T).ok();
    let fenced = producer.commit_transaction(T).unwrap_err().to_string();
    assert!(fenced.contains("fenced"), "{fenced}");
    // The same producer id commits again after the abort.
    successor.begin_transaction().unwrap();
    send(&successor, "after-fencing", 0);
    successor.flush(T).unwrap();
    successor.commit_transaction(T).unwrap();

    let committed = broker.committed_values("out");
    assert_eq!(committed, ["after-fencing", "committed-0", "committed-1"]);
    let mut all: Vec<String> = broker.read("out", "read_uncommitted").into_iter().map(|r| r.value).collect();
    all.sort();
    // (The fenced producer could not even write its record.)
    assert_eq!(all, ["aborted", "after-fencing", "committed-0", "committed-1", "left-open"]);

    let mut list = TopicPartitionList::new();
    list.add_partition("out", 0);
    let offsets = group.committed_offsets(list, T).unwrap();
    let elem = offsets.find_partition("out", 0).unwrap();
    assert_eq!((elem.offset(), elem.metadata()), (Offset::Offset(7), "token-a"));
    let mut list = TopicPartitionList::new();
    list.add_partition("out", 0);
    let fresh: BaseConsumer = broker.config().set("group.id", "never-used").create().unwrap();
    assert_eq!(fresh.committed_offsets(list, T).unwrap().find_partition("out", 0).unwrap().offset(), Offset::Invalid);
}

/// Where a transactional producer's delivery reports say each record went.
struct Reported(Mutex<Vec<(String, i32, i64)>>);

impl ClientContext for Reported {}

impl ProducerContext for Reported {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let m = result.as_ref().expect("delivered");
        let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        self.0.lock().unwrap().push((value, m.partition(), m.offset()));
    }
}

/// The exactly-once sink's recovery: a flushed transaction that a new
/// producer of its id aborted keeps its records in the topic, readable
/// `read_uncommitted` at the offsets the delivery reports named, one
/// producer's records of a produce request at consecutive offsets.
#[test]
fn an_aborted_transactions_records_stay_at_the_offsets_its_delivery_reports_named() {
    let broker = Broker::start();
    broker.create_topic("out", 2);
    let other: BaseProducer = broker.config().set("enable.idempotence", "true").create().unwrap();
    let txn: BaseProducer<Reported> = broker
        .config()
        .set("transactional.id", "conformance-1")
        .create_with_context(Reported(Mutex::new(Vec::new())))
        .unwrap();
    txn.init_transactions(T).unwrap();
    txn.begin_transaction().unwrap();
    let send_to = |p: &BaseProducer<Reported>, values: &[&str], partition: i32| {
        for v in values {
            p.send(BaseRecord::<str, str>::to("out").key("k").payload(*v).partition(partition)).unwrap();
        }
        p.flush(T).unwrap();
    };
    send_to(&txn, &["a-0", "a-1", "a-2"], 0);
    other.send(BaseRecord::<str, str>::to("out").key("k").payload("other").partition(0)).unwrap();
    other.flush(T).unwrap();
    send_to(&txn, &["a-3"], 0);
    send_to(&txn, &["b-0", "b-1"], 1);
    let successor: BaseProducer = broker.config().set("transactional.id", "conformance-1").create().unwrap();
    successor.init_transactions(T).unwrap();

    let mut reported = txn.context().0.lock().unwrap().clone();
    reported.sort();
    let offsets: Vec<(i32, i64)> = reported.iter().map(|(_, p, o)| (*p, *o)).collect();
    assert_eq!(offsets, [(0, 0), (0, 1), (0, 2), (0, 4), (1, 0), (1, 1)]);
    let mut read: Vec<(String, i32, i64)> =
        broker.read("out", "read_uncommitted").into_iter().map(|r| (r.value, r.partition, r.offset)).collect();
    read.sort();
    let mut want = reported.clone();
    want.push(("other".into(), 0, 3));
    want.sort();
    assert_eq!(read, want);
    assert_eq!(broker.committed_values("out"), ["other"]);
}

#[test]
fn watermarks_times_positions_and_missing_topics_behave_as_the_source_needs() {
    let broker = Broker::start();
    broker.create_topic("in", 2);
    // Recent times: the broker's retention deletes records older than a week.
    let t0 = now_ms() - 3_600_000;
    let records: Vec<(i32, Option<&str>, &str, Option<i64>)> =
        (0..6).map(|i| (0, Some("k"), ["a", "b", "c", "d", "e", "f"][i], Some(t0 + 1000 * i as i64))).collect();
    broker.produce("in", &records);
    let consumer: BaseConsumer =
        broker.config().set("group.id", "g").set("isolation.level", "read_committed").create().unwrap();
    assert_eq!(consumer.fetch_watermarks("in", 0, T).unwrap(), (0, 6));
    assert_eq!(consumer.fetch_watermarks("in", 1, T).unwrap(), (0, 0));
    let mut list = TopicPartitionList::new();
    list.add_partition_offset("in", 0, Offset::Offset(t0 + 2500)).unwrap();
    list.add_partition_offset("in", 1, Offset::Offset(t0 + 2500)).unwrap();
    let found = consumer.offsets_for_times(list, T).unwrap();
    assert_eq!(found.find_partition("in", 0).unwrap().offset(), Offset::Offset(3));
    assert_eq!(found.find_partition("in", 1).unwrap().offset(), Offset::End);
    // An open transaction holds the end a read_committed consumer sees.
    let producer: BaseProducer = broker.config().set("transactional.id", "conformance-1").create().unwrap();
    producer.init_transactions(T).unwrap();
    producer.begin_transaction().unwrap();
    producer.send(BaseRecord::<str, str>::to("in").payload("open").partition(0)).unwrap();
    producer.flush(T).unwrap();
    assert_eq!(consumer.fetch_watermarks("in", 0, T).unwrap(), (0, 6));
    producer.commit_transaction(T).unwrap();
    // 6: the record, 7: the commit marker.
    assert_eq!(consumer.fetch_watermarks("in", 0, T).unwrap(), (0, 8));

    let metadata = consumer.fetch_metadata(Some("missing"), T).unwrap();
    let topic = &metadata.topics()[0];
    assert_eq!(topic.error(), Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
}
