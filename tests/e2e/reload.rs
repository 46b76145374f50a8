//! Hot reload under live traffic: a new version of a plugin dropped into the
//! folder serves from the next batch of each partition on, a broken file is
//! rejected while the serving version stays, and every event lands once.
//! Configuration changes apply at batch boundaries, an invalid file changes
//! nothing, and a canary runs in shadow without writing.

use std::time::Duration;

use crate::support::*;

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn a_plugin_swapped_under_traffic_serves_new_events_exactly_once() {
    let _serial = serial();
    let s = Scenario::tagged(
        "reload",
        "  [[pipeline.step]]\n  plugin = \"tag\"\n",
        "  weir_test = \"weir_test\"",
    );
    let plugins = s.dir.join("plugins");
    let v1 = std::fs::read(plugins.join("tag-v1.wasm")).expect("tag v1");
    let v2 = std::fs::read(plugins.join("tag-v2.wasm")).expect("tag v2");
    drop_in(&plugins, "tag", &v1);
    let weir = s.start("run");
    wait_log(&weir, "watching the plugin folder");
    let producer = s.gen_spawn(40_000, 5_000, &[]);
    // While v1 serves, v2 lands; once v2 serves, the broken files land.
    s.wait_rows("weir_test = 'v1'", 1000);
    drop_in(&plugins, "tag", &v2);
    s.wait_rows("weir_test = 'v2'", 1000);
    // Broken files: not a component, and a component of the other world.
    const REJECTED: &str = "plugin file rejected, the serving version stays";
    drop_in(&plugins, "tag", b"\0asm definitely not a component");
    crate::support::wait_log_count(&weir, REJECTED, 1);
    let filter = std::fs::read(plugins.join("pass.wasm")).expect("pass");
    drop_in(&plugins, "tag", &filter);
    crate::support::wait_log_count(&weir, REJECTED, 2);
    // A component of the right world whose init fails.
    let bad_init = std::fs::read(plugins.join("tag-bad-init.wasm")).expect("tag bad init");
    drop_in(&plugins, "tag", &bad_init);
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
    assert_eq!(rejected, 3, "{log}");
    assert!(log.contains("tag 3.0.0 needs a `colour` setting"), "{log}");
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn configuration_changes_apply_under_traffic_and_a_broken_file_changes_nothing() {
    let _serial = serial();
    let s = Scenario::tagged(
        "reconfig",
        "  [[pipeline.step]]\n  plugin = \"tag\"\n",
        "  weir_test = \"weir_test\"",
    );
    let plugins = s.dir.join("plugins");
    drop_in(
        &plugins,
        "tag",
        &std::fs::read(plugins.join("tag-v1.wasm")).expect("tag v1"),
    );
    let original = std::fs::read_to_string(&s.config).expect("weir.toml");
    let write = |text: &str| std::fs::write(&s.config, text).expect("writing weir.toml");
    let weir = s.start("run");
    wait_log(&weir, "watching the configuration");
    let producer = s.gen_spawn(60_000, 5_000, &[]);
    s.wait_rows("weir_test = 'v1'", 1000);

    // A step replaced: `constant` serves from each writer's next batch.
    let constant = original.replace("plugin = \"tag\"", "plugin = \"constant\"");
    assert_ne!(constant, original);
    write(&constant);
    s.wait_rows("weir_test = 'constant'", 1000);

    // A broken file is rejected whole, located, and changes nothing.
    let broken = constant.replace("writers = 2", "writers = \"two\"");
    assert_ne!(broken, constant);
    write(&broken);
    wait_log(&weir, "configuration rejected, nothing changed");
    let log = weir.log();
    assert!(
        log.contains("weir.toml:") && log.contains("pipeline[0].writers"),
        "{log}"
    );

    // A pin the plugin does not match is rejected too.
    let pinned = constant.replace(
        "plugin = \"constant\"",
        "plugin = \"constant\"\n  sha256 = \"000000000000\"",
    );
    write(&pinned);
    wait_rejected(&weir, 2, "but its step pins 000000000000");
    // So is a change to what applies only at start.
    let kafka = constant.replace(
        "\"heartbeat.interval.ms\" = \"500\"",
        "\"heartbeat.interval.ms\" = \"600\"",
    );
    assert_ne!(kafka, constant);
    write(&kafka);
    wait_rejected(&weir, 3, "[kafka] changed, and it applies only at start");
    let before = s.count("SELECT COUNT(*) FROM engagement WHERE weir_test = 'constant'");
    s.wait_rows("weir_test = 'constant'", before + 1000);

    // A new column, filled with the chain's build.
    let hash = short_hash(&plugins.join("constant.wasm"));
    let with_chain = constant.replace(
        "  weir_test = \"weir_test\"",
        "  weir_test = \"weir_test\"\n  weir_chain = \"@chain\"",
    );
    write(&with_chain);
    s.wait_rows(&format!("weir_chain = 'constant@1.0.0#{hash}'"), 1000);

    // Batching changed: the pipeline stops at a batch boundary and starts again.
    write(&with_chain.replace("max_events = 500", "max_events = 300"));
    wait_log(&weir, "starting it again");
    let restarted = s.count("SELECT COUNT(*) FROM engagement");
    s.wait_rows("TRUE", restarted + 1000);

    // SIGHUP re-reads the file; it has not changed.
    let current = with_chain.replace("max_events = 500", "max_events = 300");
    weir.signal("HUP");
    wait_log(&weir, "configuration unchanged");

    // A pipeline added (its own group, the same topic, another table), then removed.
    s.exec("CREATE TABLE engagement_copy LIKE engagement");
    let section = &current[current.find("[[pipeline]]").expect("a pipeline")..];
    let copy = section
        .replace("name = \"reconfig\"", "name = \"reconfig_copy\"")
        .replace("table = \"engagement\"", "table = \"engagement_copy\"");
    assert_ne!(copy, section);
    write(&format!("{current}\n{copy}"));
    wait_log(&weir, "pipeline added: starting it");
    let started = std::time::Instant::now();
    while s.count("SELECT COUNT(*) FROM engagement_copy") < 1000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    write(&current);
    wait_log(
        &weir,
        "pipeline removed from the configuration: stopping it",
    );
    wait_log(&weir, "stopped pipeline=reconfig_copy");
    // What the copy committed adds up on its own; then its bookkeeping goes,
    // so that the topic's totals below are the main pipeline's alone.
    let copy_rows: Vec<(i64,)> = s.query(
        "SELECT CAST(SUM(rows_total) AS SIGNED) FROM weir_offsets WHERE consumer_group = 'reconfig_copy'",
    );
    assert_eq!(
        copy_rows[0].0,
        s.count("SELECT COUNT(*) FROM engagement_copy")
    );
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM (SELECT kafka_partition, kafka_offset FROM engagement_copy \
             GROUP BY 1, 2 HAVING COUNT(*) > 1) d"
        ),
        0
    );
    s.exec("DELETE FROM weir_offsets WHERE consumer_group = 'reconfig_copy'");
    s.exec("DELETE FROM weir_dead_letters WHERE consumer_group = 'reconfig_copy'");

    let out = producer.wait_with_output().expect("weir gen");
    assert!(out.status.success());
    let produced: Summary = serde_json::from_slice(&out.stdout).expect("summary");
    s.wait_accounted(produced.produced, Duration::from_secs(120));
    let log = weir.log();
    assert!(weir.stop(Duration::from_secs(30)).success(), "{log}");
    s.assert_exactly_once(produced.produced);
    assert_eq!(rejections_in(&log), 3, "{log}");

    // Per partition, in offset order: v1, then constant, never back.
    let rows: Vec<(i32, i64, Option<String>)> = s.query(
        "SELECT kafka_partition, kafka_offset, weir_test FROM engagement \
         ORDER BY kafka_partition, kafka_offset",
    );
    let mut last: Option<(i32, String)> = None;
    for (p, offset, tag) in rows {
        let tag = tag.unwrap_or_default();
        assert!(
            tag == "v1" || tag == "constant",
            "partition {p} offset {offset}: {tag:?}"
        );
        if let Some((lp, lt)) = &last {
            assert!(
                !(*lp == p && lt == "constant" && tag == "v1"),
                "partition {p} offset {offset}: v1 after constant"
            );
        }
        last = Some((p, tag));
    }
}

/// Waits for the `n`th rejected configuration, and checks the log says `why`.
fn wait_rejected(weir: &Weir, n: usize, why: &str) {
    let started = std::time::Instant::now();
    while rejections_in(&weir.log()) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(weir.log().contains(why), "no `{why}` in:\n{}", weir.log());
}

fn rejections_in(log: &str) -> usize {
    log.matches("configuration rejected, nothing changed")
        .count()
}

/// The value of the first sample of `metric` whose labels include `label`.
fn sample(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(metric) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn a_canary_runs_in_shadow_and_its_differences_are_counted_not_written() {
    let _serial = serial();
    let s = Scenario::tagged("canary", "  [[pipeline.step]]\n  plugin = \"tag\"\n  candidate = \"tag@2.0.0.wasm\"\n  canary_share = 0.5\n", "  weir_test = \"weir_test\"");
    let plugins = s.dir.join("plugins");
    std::fs::copy(plugins.join("tag-v1.wasm"), plugins.join("tag.wasm")).expect("tag v1");
    std::fs::copy(plugins.join("tag-v2.wasm"), plugins.join("tag@2.0.0.wasm")).expect("tag v2");
    let address = free_address();
    let text = std::fs::read_to_string(&s.config).expect("weir.toml");
    std::fs::write(
        &s.config,
        format!("[metrics]\naddress = \"{address}\"\n\n{text}"),
    )
    .expect("weir.toml");
    let weir = s.start("run");
    let produced = s.gen(10_000, 20_000, &[]);
    s.wait_accounted(produced.produced, Duration::from_secs(120));
    let metrics = rt()
        .block_on(weir::ops::metrics::fetch(&address, "/metrics"))
        .expect("metrics")
        .1;
    let log = weir.log();
    assert!(weir.stop(Duration::from_secs(30)).success(), "{log}");
    let accounted = s.assert_exactly_once(produced.produced);

    // Nothing of the candidate's is written.
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE weir_test = 'v1'"),
        accounted.rows
    );
    // It ran on about half the batches, and differed on every event it saw.
    let different = sample(&metrics, "weir_canary_events_total", "result=\"different\"");
    let same = sample(&metrics, "weir_canary_events_total", "result=\"same\"");
    assert_eq!(same, 0.0, "{metrics}");
    assert!(
        different > accounted.rows as f64 * 0.2 && different < accounted.rows as f64 * 0.8,
        "{different} differences over {} rows",
        accounted.rows
    );
    assert!(
        log.contains(
            r#"canary differs from the live step: live kept, sets {"weir_test":"v1"}; candidate kept, sets {"weir_test":"v2"}"#
        ),
        "{log}"
    );

    // The same comparison offline: exit 1 with the differences, 0 for one build.
    let diff = |old: &str, new: &str| {
        std::process::Command::new(weir_bin())
            .args(["plugin", "diff"])
            .arg(plugins.join(old))
            .arg(plugins.join(new))
            .arg("--input")
            .arg(repo_root().join("examples/events.jsonl"))
            .args(["--samples", "1"])
            .output()
            .expect("weir plugin diff")
    };
    let out = diff("tag.wasm", "tag@2.0.0.wasm");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(" 0 same, "), "{text}");
    assert!(
        text.contains(r#"new: kept, sets {"weir_test":"v2"}"#),
        "{text}"
    );
    let out = diff("tag.wasm", "tag.wasm");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" 0 different"), "{text}");
}
