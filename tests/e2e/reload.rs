//! Hot reload under live traffic: a new version of a plugin dropped into the
//! folder serves from the next batch of each partition on, a broken file is
//! rejected while the serving version stays, and every event lands once.

use std::time::Duration;

use crate::support::*;

/// Writes `bytes` as `dir/NAME.wasm` the way a deployment should: aside, then renamed.
fn drop_in(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let aside = dir.join(format!(".{name}.wasm.part"));
    std::fs::write(&aside, bytes).expect("write aside");
    std::fs::rename(&aside, dir.join(format!("{name}.wasm"))).expect("rename");
}

#[test]
fn a_plugin_swapped_under_traffic_serves_new_events_exactly_once() {
    let _serial = serial();
    let s = Scenario::new(
        "reload",
        Settings {
            steps: "  [[pipeline.step]]\n  plugin = \"tag\"\n",
            columns: "  weir_test = \"weir_test\"",
            max_events: 500,
            ..Settings::default()
        },
    );
    s.exec("ALTER TABLE engagement ADD COLUMN weir_test VARCHAR(32) NULL");
    let plugins = s.dir.join("plugins");
    let v1 = std::fs::read(plugins.join("tag-v1.wasm")).expect("tag v1");
    let v2 = std::fs::read(plugins.join("tag-v2.wasm")).expect("tag v2");
    drop_in(&plugins, "tag", &v1);
    let weir = s.start("run");
    let started = std::time::Instant::now();
    while !weir.log().contains("watching the plugin folder") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let producer = s.gen_spawn(40_000, 5_000, &[]);
    let rows_tagged = |tag: &str| {
        s.count(&format!(
            "SELECT COUNT(*) FROM engagement WHERE weir_test = '{tag}'"
        ))
    };
    let wait_rows = |tag: &str| {
        let started = std::time::Instant::now();
        while rows_tagged(tag) < 1000 {
            assert!(started.elapsed() < Duration::from_secs(60), "no {tag} rows");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // While v1 serves, v2 lands; once v2 serves, the broken files land.
    wait_rows("v1");
    drop_in(&plugins, "tag", &v2);
    wait_rows("v2");
    // Broken files: not a component, and a component of the other world.
    drop_in(&plugins, "tag", b"\0asm definitely not a component");
    std::thread::sleep(Duration::from_millis(500));
    let filter = std::fs::read(plugins.join("pass.wasm")).expect("pass");
    drop_in(&plugins, "tag", &filter);
    let out = producer.wait_with_output().expect("weir gen");
    assert!(out.status.success());
    let produced: Summary = serde_json::from_slice(&out.stdout).expect("summary");
    s.wait_accounted(produced.produced, Duration::from_secs(120));
    let log = weir.log();
    assert!(weir.stop(Duration::from_secs(30)).success(), "{log}");
    s.assert_exactly_once(produced.produced);

    // Per partition, in offset order: v1 first, then v2, never back.
    let rows: Vec<(i32, i64, Option<String>)> = s.query(
        "SELECT kafka_partition, kafka_offset, weir_test FROM engagement \
         ORDER BY kafka_partition, kafka_offset",
    );
    let (mut v1_rows, mut v2_rows) = (0, 0);
    let mut last: Option<(i32, String)> = None;
    for (p, offset, tag) in &rows {
        let tag = tag.clone().unwrap_or_default();
        match tag.as_str() {
            "v1" => v1_rows += 1,
            "v2" => v2_rows += 1,
            other => panic!("partition {p} offset {offset}: tag {other:?}"),
        }
        if let Some((lp, lt)) = &last {
            assert!(
                !(lp == p && lt == "v2" && tag == "v1"),
                "partition {p} offset {offset}: v1 after v2"
            );
        }
        last = Some((*p, tag));
    }
    assert!(v1_rows > 0 && v2_rows > 0, "v1 {v1_rows}, v2 {v2_rows}");
    assert!(log.contains("plugin reloaded"), "{log}");
    let rejected = log
        .matches("plugin file rejected, the serving version stays")
        .count();
    assert_eq!(rejected, 2, "{log}");
}
