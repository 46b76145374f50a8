//! Plain runs, restarts and kill -9.

use std::time::Duration;

use rand::Rng;

use crate::support::{serial, Scenario, Settings};

/// 100,000 events with the default share of bad records, one `weir`, stopped by
/// SIGTERM after catching up: exit 0 and every event accounted for.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn plain_run_of_100k_events() {
    let _g = serial();
    let s = Scenario::new("plain", Settings::default());
    let summary = s.gen(100_000, 0, &["--oversized", "0.001"]);
    assert_eq!(summary.produced, 100_000);
    let weir = s.start("plain");
    s.wait_accounted(summary.produced, Duration::from_secs(180));
    let status = weir.stop(Duration::from_secs(30));
    assert!(status.success(), "weir exited with {status}");
    let acc = s.assert_exactly_once(summary.produced);
    assert_eq!(acc.dead_letters as u64, summary.bad());
    assert_eq!(
        acc.rows as u64,
        summary.good + summary.bots,
        "every good event is a row"
    );
    assert_eq!(acc.filtered, 0, "the chain is empty: nothing is filtered");
    let kinds = s.dead_letter_kinds();
    assert_eq!(
        kinds.get("malformed JSON").copied().unwrap_or(0) as u64,
        summary.malformed
    );
    assert_eq!(
        kinds
            .get("payload is not a JSON object")
            .copied()
            .unwrap_or(0) as u64,
        summary.non_object
    );
    assert_eq!(
        kinds.get("oversized record").copied().unwrap_or(0) as u64,
        summary.oversized
    );
    assert_eq!(
        kinds
            .get("column `pin_id` (bigint(20) unsigned)")
            .copied()
            .unwrap_or(0) as u64,
        summary.ill_typed
    );
}

/// `weir` killed with SIGKILL at random moments, five times, while events are
/// produced; restarted each time. Nothing lost, nothing twice.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn sigkill_at_random_moments() {
    let _g = serial();
    let s = Scenario::new("sigkill", Settings::default());
    let producer = s.gen_spawn(120_000, 10_000, &[]);
    let mut rng = rand::rng();
    for round in 0..5 {
        let mut weir = s.start(&format!("round{round}"));
        std::thread::sleep(Duration::from_millis(rng.random_range(1500..4000)));
        assert!(weir.is_running(), "weir died on its own: {}", weir.log());
        weir.kill9();
    }
    let out = producer.wait_with_output().expect("gen");
    assert!(out.status.success());
    let summary: weir::tools::gen::Summary = serde_json::from_slice(&out.stdout).expect("summary");
    let weir = s.start("final");
    s.wait_accounted(summary.produced, Duration::from_secs(180));
    assert!(weir.stop(Duration::from_secs(30)).success());
    let acc = s.assert_exactly_once(summary.produced);
    assert_eq!(acc.dead_letters as u64, summary.bad());
}

/// Two `weir` processes in one consumer group share the partitions; one is
/// killed mid-run and the other takes its partitions over.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn two_processes_one_killed() {
    let _g = serial();
    let s = Scenario::new(
        "pair",
        Settings {
            partitions: 6,
            ..Settings::default()
        },
    );
    let mut a = s.start("a");
    let b = s.start("b");
    crate::support::wait_log(&a, "partitions assigned");
    crate::support::wait_log(&b, "partitions assigned");
    let producer = s.gen_spawn(100_000, 12_000, &[]);
    s.wait_committed();
    a.kill9();
    let out = producer.wait_with_output().expect("gen");
    assert!(out.status.success());
    let summary: weir::tools::gen::Summary = serde_json::from_slice(&out.stdout).expect("summary");
    s.wait_accounted(summary.produced, Duration::from_secs(180));
    let b_log = b.log();
    assert!(b.stop(Duration::from_secs(30)).success());
    // b saw a rebalance after a died: it was assigned partitions more than once.
    assert!(
        b_log.matches("partitions assigned").count() >= 2,
        "b never took over: {b_log}"
    );
    s.assert_exactly_once(summary.produced);
}

/// A pipeline whose table does not exist: `weir run` exits with status 2 and a
/// message naming the table, before consuming anything.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn missing_table_stops_before_consuming() {
    let _g = serial();
    let s = Scenario::new(
        "notable",
        Settings {
            table: "no_such_table",
            ..Settings::default()
        },
    );
    s.gen(100, 0, &[]);
    let mut weir = s.start("notable");
    let status = weir.child.wait().expect("wait");
    assert_eq!(status.code(), Some(2), "{}", weir.log());
    assert!(
        weir.log().contains("pipeline `notable` in")
            && weir
                .log()
                .contains("table `no_such_table` does not exist in the database"),
        "{}",
        weir.log()
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM weir_offsets"),
        0,
        "nothing was claimed"
    );
}
