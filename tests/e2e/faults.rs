//! The database and the broker go away mid-run.

use std::time::Duration;

use crate::support::{serial, services, Scenario, Settings, Summary};

/// The database is stopped for 20 s mid-run: `weir` waits, retries, resumes,
/// and every event lands once.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn database_stopped_for_20s() {
    let _g = serial();
    let s = Scenario::new("dbdown", Settings::default());
    let mut weir = s.start("dbdown");
    let producer = s.gen_spawn(60_000, 3_000, &[]);
    s.wait_committed();
    let before = s.totals();
    services(&["down", "mariadb"]);
    // The outage itself.
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        weir.is_running(),
        "weir gave up while the database was away"
    );
    services(&["up", "mariadb"]);
    let out = producer.wait_with_output().expect("gen");
    assert!(out.status.success());
    let summary: Summary = serde_json::from_slice(&out.stdout).expect("summary");
    s.wait_accounted(summary.produced, Duration::from_secs(180));
    assert!(weir.stop(Duration::from_secs(30)).success());
    assert!(
        before.is_some(),
        "nothing was committed before the database stopped"
    );
    let acc = s.assert_exactly_once(summary.produced);
    assert_eq!(acc.dead_letters as u64, summary.bad());
}

/// The broker is restarted mid-run (producer and consumer both reconnect).
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn broker_restarted() {
    let _g = serial();
    let s = Scenario::new("brokerdown", Settings::default());
    let weir = s.start("brokerdown");
    let producer = s.gen_spawn(60_000, 3_000, &[]);
    s.wait_committed();
    services(&["down", "kafka"]);
    // The outage itself.
    std::thread::sleep(Duration::from_secs(3));
    services(&["up", "kafka"]);
    let out = producer.wait_with_output().expect("gen");
    assert!(
        out.status.success(),
        "weir gen failed across the broker restart"
    );
    let summary: Summary = serde_json::from_slice(&out.stdout).expect("summary");
    s.wait_accounted(summary.produced, Duration::from_secs(240));
    assert!(weir.stop(Duration::from_secs(30)).success());
    s.assert_exactly_once(summary.produced);
}

/// `weir gen` arguments for valid events only.
const ALL_GOOD: &[&str] = &[
    "--malformed",
    "0",
    "--non-object",
    "0",
    "--ill-typed",
    "0",
    "--oversized",
    "0",
];

/// Retention deleted events before the pipeline read them: `weir offsets show`
/// and `weir run` both say so loudly, and the pipeline resumes at the log start.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn upstream_data_loss_is_reported() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let _g = serial();
    let s = Scenario::new(
        "loss",
        Settings {
            partitions: 1,
            ..Settings::default()
        },
    );
    let first = s.gen(1000, 0, ALL_GOOD);
    let weir = s.start("first");
    s.wait_accounted(first.produced, Duration::from_secs(60));
    assert!(weir.stop(Duration::from_secs(30)).success());
    s.gen(1000, 0, ALL_GOOD);
    // Retention, simulated: everything before offset 1500 is deleted unread.
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", crate::support::BROKERS)
        .create()
        .expect("admin");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&s.topic, 0, Offset::Offset(1500))
        .expect("tpl");
    crate::support::rt()
        .block_on(admin.delete_records(&tpl, &AdminOptions::new()))
        .expect("delete records");
    let show = std::process::Command::new(crate::support::weir_bin())
        .args(["offsets", "show", "-c"])
        .arg(&s.config)
        .output()
        .expect("weir offsets show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("DATA LOSS UPSTREAM: offsets 1000..1500 were deleted before being read"),
        "{text}"
    );
    let weir = s.start("second");
    s.wait_accounted(1500, Duration::from_secs(60));
    let log = weir.log();
    assert!(weir.stop(Duration::from_secs(30)).success());
    assert!(
        log.contains("DATA LOSS UPSTREAM: events 1000..1500 were deleted from Kafka"),
        "{log}"
    );
    assert_eq!(s.totals(), Some((1500, 0, 0)));
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE kafka_offset BETWEEN 1000 AND 1499"),
        0
    );
    assert_eq!(
        s.count("SELECT COUNT(DISTINCT kafka_offset) FROM engagement"),
        1500
    );
}
