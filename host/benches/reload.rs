//! Hot reload under live traffic, against the real services (a benchmark: it
//! prints figures, asserts nothing about time).
//!
//! ```text
//! cargo bench --bench reload -- [--rate N] [--swaps N]
//! ```
//!
//! `weir run` with one enricher, `tag` (the test guests `tag_v1`/`tag_v2`,
//! padded with a custom section to 150 KB), while `weir gen` produces at a
//! steady rate. Every 4 s the other version lands in the plugin folder (written
//! aside, renamed in). Per swap: the time from the rename to the first row the
//! new version tagged being committed; the longest gap between two commits in
//! the 5 s around it; and the rows per second in those 5 s against the rate
//! before the first swap. Then every event is checked to be in the table once.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use mysql_async::prelude::Queryable;

use common::{arg, gen, root, services, BROKERS, SERVER};

/// The guest `NAME` padded to `size` bytes with a custom section.
fn padded(dir: &Path, name: &str, size: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join(format!("{name}.wasm"))).expect("guest");
    let pad = size.saturating_sub(bytes.len() + 16);
    let label = b"weir-padding";
    let mut body = vec![label.len() as u8];
    body.extend_from_slice(label);
    body.extend(std::iter::repeat_n(0u8, pad));
    bytes.push(0); // custom section
    let mut n = body.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        bytes.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    bytes.extend(body);
    bytes
}

fn main() -> anyhow::Result<()> {
    let rate = arg("--rate", 20_000);
    let swaps = arg("--swaps", 4) as usize;
    services(&["up"]);
    let geolite = services(&["geolite2"]);
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--examples",
        ])
        .arg("--manifest-path")
        .arg(root().join("tests/guests/Cargo.toml"))
        .arg("--target-dir")
        .arg(root().join("target/guests"))
        .status()?;
    anyhow::ensure!(status.success(), "building the test guests failed");
    let guests = root().join("target/guests/wasm32-wasip2/release/examples");
    let versions = [
        padded(&guests, "tag_v1", 150_000),
        padded(&guests, "tag_v2", 150_000),
    ];

    let stamp = Utc::now().timestamp();
    let (db, topic) = ("weir_bench_reload", format!("bench-reload-{stamp}"));
    let url = format!("{SERVER}/{db}");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        common::fresh_database(
            db,
            &[],
            &["ALTER TABLE engagement ADD COLUMN weir_test VARCHAR(32) NULL".to_owned()],
        )
        .await?;
        weir::tools::gen::ensure_topic(BROKERS, &topic, 4).await
    })?;
    let dir = std::env::temp_dir().join(format!("weir-bench-reload-{stamp}"));
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::write(plugins.join("tag.wasm"), &versions[0])?;
    let config = dir.join("weir.toml");
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
brokers = "{BROKERS}"
[singlestore]
url = "{url}"
[plugins]
dir = "plugins"
[[pipeline]]
name = "bench_reload"
topic = "{topic}"
table = "engagement"
batch = {{ max_events = 5000, max_wait_ms = 50 }}
  [[pipeline.step]]
  plugin = "tag"
  [pipeline.columns]
  kafka_partition = "@partition"
  kafka_offset = "@offset"
  event_id = "event_id"
  event_time = "ts"
  user_id = "user_id"
  pin_id = "pin_id"
  action = "action"
  ip = "ip"
  user_agent = "user_agent"
  ingested_at = "@ingested_at"
  weir_test = "weir_test"
"#
        ),
    )?;
    let log = dir.join("weir.log");
    let mut weir = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(&config)
        .env("WEIR_LOG", "info")
        .stderr(std::fs::File::create(&log)?)
        .stdout(Stdio::null())
        .spawn()?;
    let wait_log = |what: &str| {
        let started = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(what)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no `{what}` in {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_log("partitions assigned");
    let seconds = 4 * (swaps as u64 + 3);
    let events = rate * seconds;
    println!(
        "{events} events at {rate}/s; `tag` ({} bytes) swapped every 4 s, {swaps} times",
        versions[0].len()
    );
    let producer = gen(&topic, events, rate, &geolite);
    // `weir gen` takes a few seconds to start (it reads the GeoLite2 networks):
    // the first swap comes 6 s after the first row, so that the steady rate and
    // the window around the first swap both see events flowing throughout.
    let pool = mysql_async::Pool::new(url.as_str());
    let started = Instant::now();
    let no_rows = || {
        rt.block_on(async {
            let mut c = pool.get_conn().await.ok()?;
            c.query_first::<i64, _>("SELECT COUNT(*) FROM engagement")
                .await
                .ok()
                .flatten()
        })
        .unwrap_or(0)
            == 0
    };
    while no_rows() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(6));
    let mut landed = Vec::new();
    let swapped = (0..swaps).try_for_each(|n| {
        let aside = plugins.join(".tag.wasm.part");
        std::fs::write(&aside, &versions[(n + 1) % 2])?;
        landed.push(Utc::now().naive_utc());
        std::fs::rename(&aside, plugins.join("tag.wasm"))?;
        std::thread::sleep(Duration::from_secs(4));
        Ok::<_, std::io::Error>(())
    });
    let out = producer.wait_with_output()?;
    swapped?;
    anyhow::ensure!(out.status.success(), "weir gen failed");
    let accounted = || -> u64 {
        rt.block_on(async {
            let mut c = pool.get_conn().await.ok()?;
            c.query_first::<Option<i64>, _>(
                "SELECT CAST(SUM(rows_total + filtered_total + dead_letters_total) AS SIGNED) FROM weir_offsets",
            )
            .await
            .ok()
            .flatten()
            .flatten()
        })
        .unwrap_or(0) as u64
    };
    let started = Instant::now();
    while accounted() < events && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-TERM", &weir.id().to_string()])
        .status()?;
    weir.wait()?;

    let rows: Vec<(String, String)> = rt.block_on(async {
        let mut c = pool.get_conn().await?;
        c.query("SELECT CAST(ingested_at AS CHAR), weir_test FROM engagement ORDER BY ingested_at")
            .await
    })?;
    let rows: Vec<(NaiveDateTime, String)> = rows
        .into_iter()
        .filter_map(|(t, tag)| {
            Some((
                NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f").ok()?,
                tag,
            ))
        })
        .collect();
    let duplicates: i64 = rt.block_on(async {
        let mut c = pool.get_conn().await?;
        c.query_first(
            "SELECT COUNT(*) FROM (SELECT kafka_partition, kafka_offset FROM engagement \
             GROUP BY 1, 2 HAVING COUNT(*) > 1) d",
        )
        .await
        .map(Option::unwrap_or_default)
    })?;
    println!(
        "accounted for {} of {events} events; {} rows; {duplicates} positions twice",
        accounted(),
        rows.len()
    );
    let ms = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let first = rows.first().map(|r| r.0).unwrap_or_default();
    let steady_end = landed.first().copied().unwrap_or(first);
    let steady_rows = rows
        .iter()
        .filter(|r| r.0 >= first + chrono::Duration::seconds(1) && r.0 < steady_end)
        .count();
    let steady_rate = steady_rows as f64 / (ms(steady_end - first) / 1000.0 - 1.0).max(0.1);
    println!("steady before the first swap: {steady_rate:.0} rows/s");
    println!(
        "{:>5} {:>14} {:>16} {:>18}",
        "swap", "serving (ms)", "max gap (ms)", "rows/s ±2.5 s (%)"
    );
    for (n, at) in landed.iter().enumerate() {
        let tag = if n % 2 == 0 { "v2" } else { "v1" };
        let serving = rows
            .iter()
            .find(|r| r.0 >= *at && r.1 == tag)
            .map(|r| ms(r.0 - *at));
        let (from, to) = (
            *at - chrono::Duration::milliseconds(2500),
            *at + chrono::Duration::milliseconds(2500),
        );
        let window: Vec<&NaiveDateTime> = rows
            .iter()
            .map(|r| &r.0)
            .filter(|t| **t >= from && **t < to)
            .collect();
        let mut commits: Vec<&NaiveDateTime> = window.clone();
        commits.dedup();
        let gap = commits
            .windows(2)
            .map(|w| ms(*w[1] - *w[0]))
            .fold(0.0, f64::max);
        println!(
            "{:>5} {:>14} {:>16.0} {:>18.0}",
            n + 1,
            serving.map_or("-".into(), |s| format!("{s:.0}")),
            gap,
            window.len() as f64 / 5.0 / steady_rate * 100.0
        );
    }
    let log_text = std::fs::read_to_string(&log)?;
    let ready: Vec<&str> = log_text
        .lines()
        .filter_map(|l| l.split("ready in ").nth(1)?.split(' ').next())
        .collect();
    println!("ready (compiled, checked, instances built) in ms, per swap: {ready:?}");
    rt.block_on(pool.disconnect())?;
    Ok(())
}
