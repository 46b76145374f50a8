//! The database and the broker go away mid-run.

use std::time::Duration;

use crate::support::{serial, services, Scenario, Settings, Summary};

/// The database is stopped for 20 s mid-run: `weir` waits, retries, resumes,
/// and every event lands once.
#[test]
fn database_stopped_for_20s() {
    let _g = serial();
    let s = Scenario::new("dbdown", Settings::default());
    let mut weir = s.start("dbdown");
    let producer = s.gen_spawn(60_000, 3_000, &[]);
    std::thread::sleep(Duration::from_secs(4));
    let before = s.totals();
    services(&["down", "mariadb"]);
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
fn broker_restarted() {
    let _g = serial();
    let s = Scenario::new("brokerdown", Settings::default());
    let weir = s.start("brokerdown");
    let producer = s.gen_spawn(60_000, 3_000, &[]);
    std::thread::sleep(Duration::from_secs(5));
    services(&["down", "kafka"]);
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
