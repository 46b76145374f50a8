//! Dead letters of a buggy plugin, replayed after its fix: they land in the
//! table once, through the chain serving now, and replaying again does nothing.
//! Rows and dead letters record which build of the chain handled them.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn dead_letters(s: &Scenario, args: &[&str]) -> String {
    let out = Command::new(weir_bin())
        .arg("dead-letters")
        .args(args)
        .arg("-c")
        .arg(&s.config)
        .output()
        .expect("weir dead-letters");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "weir dead-letters {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn dead_letters_of_a_fixed_plugin_replay_into_the_table_exactly_once() {
    let _serial = serial();
    let s = Scenario::tagged(
        "replay",
        "  [[pipeline.step]]\n  plugin = \"picky\"\n",
        "  weir_test = \"weir_test\"\n  weir_chain = \"@chain\"",
    );
    let plugins = s.dir.join("plugins");
    let v1 = plugins.join("picky-v1.wasm");
    let v2 = plugins.join("picky-v2.wasm");
    drop_in(&plugins, "picky", &std::fs::read(&v1).expect("picky v1"));
    let weir = s.start("run");
    let produced = s.gen(20_000, 20_000, &[]);
    s.wait_accounted(produced.produced, Duration::from_secs(120));
    let refused = s.count(&format!(
        "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND stage = 'step:picky'",
        s.topic
    ));
    assert!(refused > 100, "{refused} events refused by picky v1");

    // Provenance: the dead letters and the rows name the build that handled them.
    let chain_v1 = format!("picky@1.0.0#{}", short_hash(&v1));
    let chains: Vec<(Option<String>,)> = s.query(&format!(
        "SELECT DISTINCT chain FROM weir_dead_letters WHERE topic = '{}' AND stage = 'step:picky'",
        s.topic
    ));
    assert_eq!(chains, vec![(Some(chain_v1.clone()),)]);
    let row_chains: Vec<(Option<String>,)> = s.query("SELECT DISTINCT weir_chain FROM engagement");
    assert_eq!(row_chains, vec![(Some(chain_v1.clone()),)]);

    // The fix lands while weir runs.
    drop_in(&plugins, "picky", &std::fs::read(&v2).expect("picky v2"));
    wait_log(&weir, "plugin reloaded");

    let shown = dead_letters(&s, &["show"]);
    assert!(shown.contains("cannot handle bots"), "{shown}");
    assert!(shown.contains("step:picky"), "{shown}");

    let dry = dead_letters(
        &s,
        &["replay", "--reason", "cannot handle bots", "--dry-run"],
    );
    assert!(dry.starts_with("dry run (rolled back): "), "{dry}");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE weir_test = 'v2'"),
        0,
        "a dry run wrote rows"
    );

    let out = dead_letters(&s, &["replay", "--reason", "cannot handle bots"]);
    assert!(
        out.starts_with(&format!(
            "{refused} dead letters of pipeline `replay` replayed: "
        )),
        "{out}"
    );
    // Each became a row tagged by v2, or (ill-typed ones) a dead letter of the sink.
    let chain_v2 = format!("picky@2.0.0#{}", short_hash(&v2));
    let replayed_rows = s.count(&format!(
        "SELECT COUNT(*) FROM engagement WHERE weir_test = 'v2' AND weir_chain = '{chain_v2}'"
    ));
    let marked = s.count(&format!(
        "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND replay_result = 'row' \
         AND replayed_at IS NOT NULL",
        s.topic
    ));
    assert_eq!(replayed_rows, marked);
    let refused_again = s.count(&format!(
        "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND replayed_at IS NULL \
         AND replay_attempts = 1 AND stage = 'sink'",
        s.topic
    ));
    assert_eq!(replayed_rows + refused_again, refused, "{out}");
    assert!(replayed_rows > refused / 2, "{out}");
    assert!(
        out.contains(&format!(
            "{replayed_rows} rows, 0 filtered, {refused_again} refused again"
        )),
        "{out}"
    );
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND stage = 'step:picky' \
             AND replayed_at IS NULL",
            s.topic
        )),
        0
    );

    // Twice does nothing more: only those refused again are tried again.
    let again = dead_letters(&s, &["replay", "--reason", "cannot handle bots"]);
    assert!(again.starts_with("0 dead letters"), "{again}");
    let all = dead_letters(&s, &["replay"]);
    assert!(all.contains(" 0 rows, "), "{all}");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE weir_test = 'v2'"),
        replayed_rows
    );

    let log = weir.log();
    assert!(weir.stop(Duration::from_secs(30)).success(), "{log}");
    // Rows + filtered + dead letters still add up, the table holds rows_total rows,
    // and no event is both a row and an unreplayed dead letter.
    s.assert_exactly_once(produced.produced);
}
