//! What an operator relies on: `/metrics` adding up to what was produced, lag
//! falling to zero once caught up, `/readyz` saying why while the database is
//! down, and `weir top` reading it all.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// Serves a config's metrics on `address`: its `[metrics]` table's, or a new one.
fn with_metrics(config: &Path, address: &str) {
    let text = std::fs::read_to_string(config).expect("config");
    let text = match text.find("[metrics]\naddress = \"") {
        Some(at) => {
            let start = at + "[metrics]\naddress = \"".len();
            let end = start + text[start..].find('"').expect("closing quote");
            format!("{}{address}{}", &text[..start], &text[end..])
        }
        None => format!("[metrics]\naddress = \"{address}\"\n\n{text}"),
    };
    std::fs::write(config, text).expect("write");
}

fn get(address: &str, path: &str) -> Option<(u16, String)> {
    rt().block_on(weir::ops::metrics::fetch(address, path)).ok()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Sum of a metric's samples whose labels include `filter`.
fn total(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    weir::ops::top::sum(&weir::ops::top::parse(text), name, filter)
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn metrics_add_up_lag_falls_to_zero_and_top_shows_them() {
    let _serial = serial();
    let s = Scenario::new("ops_metrics", Settings::default());
    let config = s.pinterest();
    let address = free_address();
    with_metrics(&config, &address);
    let weir = s.start_with(&config, "run");
    wait_for("/readyz 200", Duration::from_secs(60), || {
        get(&address, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    assert_eq!(get(&address, "/healthz").map(|r| r.0), Some(200));
    let produced = s.gen(20_000, 0, &[]).produced;
    s.wait_accounted(produced, Duration::from_secs(120));
    let p = [("pipeline", s.name.as_str())];
    // Lag is reported each second from the committed Kafka offsets.
    let mut text = String::new();
    wait_for("lag at zero", Duration::from_secs(30), || {
        text = get(&address, "/metrics").map(|r| r.1).unwrap_or_default();
        let parts = weir::ops::top::parse(&text)
            .into_iter()
            .filter(|(n, l, _)| n == "weir_consumer_lag" && l.get("pipeline") == Some(&s.name))
            .count();
        parts == 4 && total(&text, "weir_consumer_lag", &p) == 0.0
    });
    let acc = s.assert_exactly_once(produced);
    let consumed = total(&text, "weir_events_consumed_total", &p);
    let rows = total(&text, "weir_rows_written_total", &p);
    let filtered = total(&text, "weir_events_filtered_total", &p);
    let dead = total(&text, "weir_dead_letters_total", &p);
    assert_eq!(consumed as u64, produced, "consumed");
    assert_eq!(
        rows + filtered + dead,
        consumed,
        "in = kept + dropped + dead letters"
    );
    assert_eq!(
        (rows as i64, filtered as i64, dead as i64),
        (acc.rows, acc.filtered, acc.dead_letters),
        "the metrics agree with weir_offsets"
    );
    assert_eq!(total(&text, "weir_freshness_seconds_count", &p), rows);
    // Each step's events add up, and each step feeds the next.
    let mut fed = None;
    for step in ["engagement-filter", "geo-enricher", "category-enricher"] {
        let n = |outcome: &str| {
            total(
                &text,
                "weir_step_events_total",
                &[("pipeline", &s.name), ("step", step), ("outcome", outcome)],
            )
        };
        assert!(n("in") > 0.0, "{step}");
        assert_eq!(
            n("in"),
            n("kept") + n("dropped") + n("dead_letter"),
            "{step}"
        );
        if let Some(previous) = fed {
            assert_eq!(n("in"), previous, "{step} gets what the step before kept");
        }
        fed = Some(n("kept"));
    }
    // The 56 MB GeoLite2 file is held once by the host (`[lookup.geo]`), not
    // in the memory of each of the geo step's instances.
    let geo_peak = total(
        &text,
        "weir_plugin_memory_peak_bytes",
        &[("pipeline", &s.name), ("step", "geo-enricher")],
    );
    assert!(geo_peak > 0.0 && geo_peak < 8.0 * 1048576.0, "{geo_peak}");
    let by_stage: BTreeMap<String, f64> = weir::ops::top::parse(&text)
        .into_iter()
        .filter(|(n, _, _)| n == "weir_dead_letters_total")
        .map(|(_, l, v)| (l["stage"].clone(), v))
        .collect();
    assert!(by_stage.contains_key("decode"), "{by_stage:?}");

    let out = Command::new(weir_bin())
        .args([
            "top",
            "--address",
            &address,
            "--interval",
            "0.5",
            "--frames",
            "1",
        ])
        .output()
        .expect("weir top");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains(&format!("weir at {address}: ready")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("pipeline {}: in ", s.name)),
        "{shown}"
    );
    assert!(shown.contains("geo-enricher"), "{shown}");
    assert!(weir.stop(Duration::from_secs(30)).success());
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn readyz_says_why_while_the_database_is_down() {
    let _serial = serial();
    let s = Scenario::new("ops_ready", Settings::default());
    let address = free_address();
    with_metrics(&s.config, &address);
    let weir = s.start("run");
    wait_for("/readyz 200", Duration::from_secs(60), || {
        get(&address, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    services(&["down", "mariadb"]);
    let mut body = String::new();
    wait_for(
        "/readyz 503 naming the database",
        Duration::from_secs(20),
        || match get(&address, "/readyz") {
            Some((503, b)) => {
                body = b;
                body.contains("database unreachable")
            }
            _ => false,
        },
    );
    assert_eq!(
        get(&address, "/healthz").map(|r| r.0),
        Some(200),
        "alive all the same"
    );
    services(&["up", "mariadb"]);
    wait_for("/readyz 200 again", Duration::from_secs(60), || {
        get(&address, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    let produced = s.gen(2_000, 0, &[]).produced;
    s.wait_accounted(produced, Duration::from_secs(60));
    s.assert_exactly_once(produced);
    assert!(weir.stop(Duration::from_secs(30)).success(), "{body}");
}
