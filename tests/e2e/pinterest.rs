//! The Pinterest example as users run it: examples/pinterest.toml with the
//! three first-party plugins, against the real services; its expected offline
//! output; `weir check`; and a plugin made by `weir plugin new`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

type GeoRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn pinterest_chain_filters_enriches_and_accounts_for_every_event() {
    let _serial = serial();
    let s = Scenario::new("pinterest", Settings::default());
    let config = s.pinterest();
    let weir = s.start_with(&config, "run");
    let produced = s.gen(30_000, 0, &[]);
    s.wait_accounted(produced.produced, Duration::from_secs(180));
    assert!(weir.stop(Duration::from_secs(30)).success());
    let acc = s.assert_exactly_once(produced.produced);
    assert!(acc.rows > 5_000 && acc.filtered > 5_000, "{acc:?}");

    // The filter kept configured actions from people only.
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE action NOT IN ('click', 'save', 'closeup')"),
        0
    );
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM engagement WHERE LOWER(user_agent) LIKE '%bot%' \
             OR user_agent LIKE 'curl/%' OR user_agent LIKE 'python-requests%'"
        ),
        0
    );
    // Ill-typed pin ids pass the filter (the field is there) and are refused
    // by the sink's conversion, each with its reason.
    let sink = |cond: &str| {
        s.count(&format!(
            "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND stage = 'sink'{cond}",
            s.topic
        ))
    };
    assert!(sink("") > 0 && sink("") <= produced.ill_typed as i64);
    assert_eq!(
        sink(" AND reason NOT LIKE 'column `pin_id`%expected an integer%'"),
        0
    );

    // Categories are the catalog's, for every row.
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM engagement e LEFT JOIN pins p ON p.pin_id = e.pin_id \
             LEFT JOIN categories c ON c.category_id = p.category_id WHERE NOT (e.category <=> c.name)"
        ),
        0
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE category IS NULL"),
        0,
        "every generated pin is in the catalog"
    );

    // Geography is what the GeoLite2 file says, read here independently.
    let reader = maxminddb::Reader::open_readfile(geolite2()).expect("GeoLite2");
    let rows: Vec<GeoRow> =
        s.query("SELECT ip, country, region, city, latitude, longitude FROM engagement");
    let mut located = 0;
    for (ip, country, region, city, lat, lon) in &rows {
        let addr: IpAddr = ip.parse().expect("generated IPs parse");
        let want = reader
            .lookup::<maxminddb::geoip2::City>(addr)
            .expect("lookup");
        let en = |names: Option<&std::collections::BTreeMap<&str, &str>>| {
            names.and_then(|n| n.get("en")).map(|s| s.to_string())
        };
        let want = want.as_ref();
        let want_country = want
            .and_then(|w| w.country.as_ref())
            .and_then(|c| c.iso_code)
            .map(str::to_string);
        let want_region = want
            .and_then(|w| w.subdivisions.as_ref())
            .and_then(|s| s.first())
            .and_then(|s| en(s.names.as_ref()));
        let want_city = want
            .and_then(|w| w.city.as_ref())
            .and_then(|c| en(c.names.as_ref()));
        let loc = want.and_then(|w| w.location.as_ref());
        assert_eq!(country, &want_country, "country of {ip}");
        assert_eq!(region, &want_region, "region of {ip}");
        assert_eq!(city, &want_city, "city of {ip}");
        assert_eq!(*lat, loc.and_then(|l| l.latitude), "latitude of {ip}");
        assert_eq!(*lon, loc.and_then(|l| l.longitude), "longitude of {ip}");
        located += usize::from(country.is_some());
    }
    assert!(
        located * 10 > rows.len() * 9,
        "only {located} of {} rows located",
        rows.len()
    );
}

/// `weir test` over examples/events.jsonl gives examples/pinterest.expected.jsonl
/// (kept events with their fields, then dead letters). `WEIR_BLESS=1 cargo test
/// --test e2e pinterest_example -- --include-ignored` rewrites the file from the
/// current output.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn pinterest_example_gives_the_expected_output() {
    let _serial = serial();
    let s = Scenario::new("pinterest_offline", Settings::default());
    let config = s.pinterest();
    let root = repo_root();
    let expected = root.join("examples/pinterest.expected.jsonl");
    let mut cmd = Command::new(weir_bin());
    cmd.args(["test", "-c"])
        .arg(&config)
        .arg("--input")
        .arg(root.join("examples/events.jsonl"));
    if std::env::var_os("WEIR_BLESS").is_some() {
        let dead = s.dir.join("dead.jsonl");
        let out = cmd
            .arg("--dead-letters")
            .arg(&dead)
            .output()
            .expect("weir test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut text = out.stdout;
        text.extend(std::fs::read(&dead).expect("dead letters"));
        std::fs::write(&expected, text).expect("writing the expected output");
        return;
    }
    let out = cmd
        .arg("--expect")
        .arg(&expected)
        .output()
        .expect("weir test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("output matches"), "{stderr}");
    // The counts the README quotes.
    assert!(stderr.contains("10000 events:"), "{stderr}");
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn check_accepts_the_example_and_names_what_does_not_line_up() {
    let _serial = serial();
    let s = Scenario::new("pinterest_check", Settings::default());
    let config = s.pinterest();
    let check = |path: &std::path::Path| {
        let out = Command::new(weir_bin())
            .args(["check", "-c"])
            .arg(path)
            .output()
            .expect("weir check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("step 2: geo-enricher 0.1.0 (enricher"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "writes: country text?, region text?, city text?, latitude float?, longitude float?"
        ),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let variant = |name: &str, from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        let path = s.dir.join(name);
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        path
    };
    // A step reads a field no one provides.
    let (code, _, stderr) = check(&variant("no-pin.toml", "pin_id = \"int\", ", ""));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`pipeline[0].step[0].plugin`: plugin `engagement-filter` reads `pin_id` (int), which pipeline[0].fields does not declare and no earlier step writes"),
        "{stderr}"
    );
    // A column maps a field no one writes.
    let (code, _, stderr) = check(&variant(
        "typo.toml",
        "category = \"category\"",
        "category = \"categry\"",
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`pipeline[0].columns.category`: field `categry` is neither declared"),
        "{stderr}"
    );
    // A step's field cannot go into its column.
    s.exec("ALTER TABLE engagement MODIFY latitude DATETIME NULL");
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("column `engagement.latitude` (datetime) cannot hold field `latitude`"),
        "{stderr}"
    );
    s.exec("ALTER TABLE engagement MODIFY latitude DOUBLE NOT NULL");
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("column `engagement.latitude` is NOT NULL, but plugin `geo-enricher` may write `latitude` as null"),
        "{stderr}"
    );
}

/// A plugin made by `weir plugin new` builds, passes its own test and runs in
/// `weir test`, as the README's "write your own enricher" section says.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn a_new_plugin_builds_tests_and_runs() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("weir-new-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let crate_dir = dir.join("hour-of-day");
    let out = Command::new(weir_bin())
        .args([
            "plugin",
            "new",
            "hour-of-day",
            "--kind",
            "enricher",
            "--dir",
        ])
        .arg(&crate_dir)
        .output()
        .expect("weir plugin new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One target folder for every run of this test, so that only the first compiles the SDK.
    let target = repo_root().join("target/new-plugin");
    let cargo = |args: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("cargo");
        assert!(
            out.status.success(),
            "cargo {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tested = cargo(&["test"]);
    assert!(
        tested.contains("test tests::adds_the_hour_of_the_day ... ok"),
        "{tested}"
    );
    cargo(&["build", "--target", "wasm32-wasip2", "--release"]);
    let plugins = dir.join("plugins.d");
    std::fs::create_dir_all(&plugins).expect("plugins.d");
    std::fs::copy(
        target.join("wasm32-wasip2/release/hour_of_day.wasm"),
        plugins.join("hour-of-day.wasm"),
    )
    .expect("install the plugin");
    let config = dir.join("weir.toml");
    std::fs::write(
        &config,
        r#"[[pipeline]]
name = "hours"
topic = "t"
table = "t"
columns = { hour = "hour" }

  [[pipeline.step]]
  plugin = "hour-of-day"
"#,
    )
    .expect("config");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"ts\":1795685400000}\n{\"ts\":1795690800000}\n").expect("events");
    let out = Command::new(weir_bin())
        .args(["test", "-c"])
        .arg(&config)
        .arg("--input")
        .arg(&events)
        .output()
        .expect("weir test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept: Vec<HashMap<String, serde_json::Value>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let hours: Vec<i64> = kept
        .iter()
        .map(|e| e["hour"].as_i64().expect("hour"))
        .collect();
    assert_eq!(hours, [9, 11]);
    let _ = std::fs::remove_dir_all(&dir);
}
