//! End-to-end benchmark against the real services (a benchmark, not a test: it
//! prints figures and ratios and asserts nothing about time).
//!
//! ```text
//! cargo bench --bench pipeline -- [--events N] [--soak-secs S] [--database-core]
//! ```
//!
//! `--database-core` gives the database server CPU 0 alone and everything else
//! (broker, `weir`, the generator, this bench) the other CPUs, for the raw load
//! and the pipeline alike: the shape of a deployment where SingleStore runs on
//! hosts of its own. Without it all share every core.
//!
//! 1. `weir gen` produces N events beforehand (the topic is full before timing).
//! 2. Raw LOAD DATA: the same records, read from Kafka and encoded into rows
//!    ahead of time, loaded into a copy of the table in transactions of the same
//!    size as the pipeline's batches. Only the database time counts: the ceiling.
//!    Then the same with multi-row INSERT (the other write path).
//! 3. `weir run` (the empty chain) drains the topic; events/s from start to the
//!    last commit, and the steady rate between 10% and 90%.
//! 4. Freshness: with `weir run` live, `weir gen` produces at half the measured
//!    rate for 20 s; p50/p99 of event timestamp -> `ingested_at` (when its batch
//!    was written, just before the commit).
//! 5. Optional soak: `weir run` at full rate for S seconds, RSS sampled each 10 s
//!    (the table is emptied once a minute so that the disk does not fill).
//!
//!    Then the Pinterest chain (examples/pinterest.toml as it is: filter, geo
//!    and category enrichers) drains the same N events from the start, under a
//!    consumer group and into a table of its own; its rate beside the empty
//!    chain's.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use weir::config::Config;
use weir::event::batch::Batch;
use weir::sink::{encode, insert_rows, load_rows, EncodeContext, Encoded, RowFormat, TablePlan};

mod common;
use common::{arg, gen, root, services, Cpu, BROKERS, SERVER};

const BATCH: usize = 5000;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let events = arg("--events", 500_000);
    let soak = arg("--soak-secs", 0);
    services(&["up"]);
    let geolite = services(&["geolite2"]);
    let rt = tokio::runtime::Runtime::new()?;
    let stamp = chrono::Utc::now().timestamp();
    let topic = format!("bench-{stamp}");
    let db = "weir_bench";
    let url = format!("{SERVER}/{db}");
    let pins = std::fs::read_to_string(root().join("examples/sql/mariadb/pins.sql"))?;
    let pins: Vec<String> = pins
        .split(';')
        .filter(|s| s.contains("CREATE"))
        .map(str::to_owned)
        .collect();
    rt.block_on(async {
        common::fresh_database(
            db,
            &[
                "engagement_raw",
                "engagement_raw_insert",
                "engagement_raw_partitioned",
                "engagement_chain",
                "engagement_scraped",
            ],
            &pins,
        )
        .await?;
        weir::tools::gen::ensure_topic(BROKERS, &topic, 4).await
    })?;
    let dir = std::env::temp_dir().join(format!("weir-bench-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    // The example's table pipeline alone (not its archive of the raw topic).
    let mut example: toml::Table = toml::from_str(&std::fs::read_to_string(
        root().join("examples/pinterest.toml"),
    )?)?;
    example["pipeline"]
        .as_array_mut()
        .expect("[[pipeline]]")
        .retain(|p| p.get("archive").is_none());
    let example = toml::to_string(&example)?;
    let chain_text = format!(
        "[kafka]\nbrokers = \"{BROKERS}\"\n\n{}",
        example
            .replace(
                "topic = \"pin-engagement\"",
                &format!("topic = \"{topic}\"")
            )
            .replace(
                "[singlestore]\n",
                &format!("[singlestore]\nurl = \"{url}\"\n")
            )
            .replace("${WEIR_GEOLITE2}", &geolite)
    );
    // The empty chain: the example without its steps, the columns they fill and
    // the lookup table they read (loading it would only delay the start).
    let mut empty: toml::Table = toml::from_str(&chain_text)?;
    empty.remove("lookup");
    {
        let p = empty["pipeline"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        p.remove("step");
        p.insert("name".into(), "bench".into());
        let fields = p["fields"].as_table().unwrap().clone();
        let columns = p["columns"].as_table_mut().unwrap();
        columns.retain(|_, v| {
            let v = v.as_str().unwrap_or_default();
            v.starts_with('@') || fields.contains_key(v)
        });
    }
    let config_path = dir.join("weir.toml");
    std::fs::write(&config_path, toml::to_string(&empty)?)?;
    let config = Config::load(&config_path)?;
    let metrics_address = config
        .metrics
        .address
        .clone()
        .unwrap_or_else(|| "127.0.0.1:9464".into());
    // The empty chain again, its /metrics scraped every second.
    let scraped_path = dir.join("scraped.toml");
    {
        let mut scraped = empty.clone();
        scraped.insert(
            "metrics".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "address".to_string(),
                toml::Value::from(metrics_address.clone()),
            )])),
        );
        let p = scraped["pipeline"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        p.insert("name".into(), "bench_scraped".into());
        p.insert("table".into(), "engagement_scraped".into());
        std::fs::write(&scraped_path, toml::to_string(&scraped)?)?;
    }
    let chain_path = dir.join("chain.toml");
    std::fs::write(
        &chain_path,
        chain_text
            .replace("name = \"engagement\"", "name = \"bench_chain\"")
            .replace("table = \"engagement\"", "table = \"engagement_chain\""),
    )?;
    let status = Command::new(root().join("scripts/plugins"))
        .arg(dir.join("plugins.d"))
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "scripts/plugins failed");
    let status = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["gen-pins", "--url", &url])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "weir gen-pins failed");

    println!("machine: {} cores, {}", num_cpus(), kernel());
    let _cores = common::DatabaseCore::from_args();
    println!("events: {events}, produced beforehand into {topic} (4 partitions)");

    let t = Instant::now();
    let out = gen(&topic, events, 0, &geolite).wait_with_output()?;
    anyhow::ensure!(out.status.success(), "weir gen failed");
    println!(
        "produce: {events} events in {:.1} s ({:.0}/s)",
        t.elapsed().as_secs_f64(),
        events as f64 / t.elapsed().as_secs_f64()
    );

    // Raw LOAD DATA of the same rows.
    let raw = |format, layout| rt.block_on(raw_load(&config, &url, &topic, events, format, layout));
    let (raw_rate, raw_cpu) = raw(RowFormat::Tsv, Layout::ReadOrder)?;
    let (part_rate, part_cpu) = raw(RowFormat::Tsv, Layout::ByPartition)?;
    let (insert_rate, _) = raw(RowFormat::Sql, Layout::ReadOrder)?;
    println!(
        "raw LOAD DATA: {raw_rate:.0} rows/s (batches of {BATCH}, one transaction each, {} connections); {raw_cpu}",
        config.pipelines[0].writers
    );
    println!(
        "raw LOAD DATA, each partition's batches in order on one connection, as the pipeline writes them: \
         {part_rate:.0} rows/s ({:.2} of the above); {part_cpu}",
        part_rate / raw_rate
    );
    println!(
        "raw multi-row INSERT: {insert_rate:.0} rows/s (same rows and batches; LOAD DATA is {:.2}x)",
        raw_rate / insert_rate
    );

    // The pipeline.
    let pool = mysql_async::Pool::new(url.as_str());
    let accounted = |pool: &mysql_async::Pool, group: &str| -> u64 {
        rt.block_on(async {
            let mut c = pool.get_conn().await.ok()?;
            c.query_first::<Option<i64>, _>(format!(
                "SELECT CAST(SUM(rows_total + filtered_total + dead_letters_total) AS SIGNED) \
                 FROM weir_offsets WHERE topic = '{topic}' AND consumer_group = '{group}'"
            ))
            .await
            .ok()
            .flatten()
            .flatten()
        })
        .unwrap_or(0) as u64
    };
    // Starts `weir run` on `config` and waits until `events` are accounted
    // for: (events/s from process start, steady events/s between 10% and 90%,
    // max RSS in KiB, the process, where the CPU went).
    let drain = |config: &Path,
                 log: &str,
                 accounted: &dyn Fn() -> u64,
                 events: u64|
     -> anyhow::Result<(f64, f64, u64, Child, String)> {
        Cpu::settle();
        let weir = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "-c"])
            .arg(config)
            .env("WEIR_LOG", "warn")
            .stderr(std::fs::File::create(dir.join(log))?)
            .spawn()?;
        let start = Instant::now();
        let cpu = Cpu::now(Some(weir.id()));
        let (mut t10, mut t90) = (None, None);
        let mut rss_max = 0;
        loop {
            let n = accounted();
            rss_max = rss_max.max(rss_kib(weir.id()));
            if t10.is_none() && n >= events / 10 {
                t10 = Some((Instant::now(), n));
            }
            if t90.is_none() && n >= events * 9 / 10 {
                t90 = Some((Instant::now(), n));
            }
            if n >= events {
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(900),
                "pipeline stalled at {n}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let wall = start.elapsed().as_secs_f64();
        let used = cpu.report(&Cpu::now(Some(weir.id())), events, Some("weir"));
        let (a, b) = (t10.unwrap(), t90.unwrap());
        let steady = (b.1 - a.1) as f64 / (b.0 - a.0).as_secs_f64();
        Ok((events as f64 / wall, steady, rss_max, weir, used))
    };
    let (from_start, steady, rss_max, mut weir, weir_cpu) = drain(
        &config_path,
        "weir.log",
        &|| accounted(&pool, "bench"),
        events,
    )?;
    let wall = events as f64 / from_start;
    println!(
        "weir run (empty chain): {events} events in {wall:.2} s from process start = {:.0} events/s; \
         steady (10%..90%) {steady:.0} events/s; RSS max {} MiB; {weir_cpu}",
        events as f64 / wall,
        rss_max / 1024
    );
    println!(
        "ratio to raw LOAD DATA: {:.2} (from start), {:.2} (steady)",
        events as f64 / wall / raw_rate,
        steady / raw_rate
    );

    // The cost of metrics: the same drain with /metrics scraped every second.
    let scraping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let scraper = {
        let (scraping, address) = (scraping.clone(), metrics_address.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut scrapes = 0u64;
            while scraping.load(std::sync::atomic::Ordering::Relaxed) {
                if rt
                    .block_on(weir::ops::metrics::fetch(&address, "/metrics"))
                    .is_ok()
                {
                    scrapes += 1;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            scrapes
        })
    };
    Command::new("kill")
        .args(["-TERM", &weir.id().to_string()])
        .status()?;
    weir.wait()?;
    let (scraped_start, scraped_steady, _, mut scraped, _) = drain(
        &scraped_path,
        "weir-scraped.log",
        &|| accounted(&pool, "bench_scraped"),
        events,
    )?;
    scraping.store(false, std::sync::atomic::Ordering::Relaxed);
    let scrapes = scraper.join().unwrap_or(0);
    println!(
        "weir run (empty chain, /metrics scraped every second, {scrapes} scrapes): {scraped_start:.0} events/s \
         from process start, steady {scraped_steady:.0}; against not scraped: {:+.1}% (from start), {:+.1}% (steady)",
        (scraped_start / from_start - 1.0) * 100.0,
        (scraped_steady / steady - 1.0) * 100.0
    );
    Command::new("kill")
        .args(["-TERM", &scraped.id().to_string()])
        .status()?;
    scraped.wait()?;
    let mut weir = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(&config_path)
        .env("WEIR_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("weir-after-scraped.log"))?)
        .spawn()?;

    // The Pinterest chain over the same events, from the start, while the
    // empty chain's process is stopped; then that process again, caught up.
    Command::new("kill")
        .args(["-TERM", &weir.id().to_string()])
        .status()?;
    weir.wait()?;
    let (chain_start, chain_steady, chain_rss, mut chain, chain_cpu) = drain(
        &chain_path,
        "weir-chain.log",
        &|| accounted(&pool, "bench_chain"),
        events,
    )?;
    println!(
        "weir run (Pinterest chain: filter, geo, category): {events} events at {chain_start:.0} events/s \
         from process start, steady {chain_steady:.0} events/s; RSS max {} MiB; {chain_cpu}",
        chain_rss / 1024
    );
    println!(
        "chain against the empty chain: {:+.1}% (from start), {:+.1}% (steady) in events/s; \
         against raw LOAD DATA: {:.2} (steady)",
        (chain_start / from_start - 1.0) * 100.0,
        (chain_steady / steady - 1.0) * 100.0,
        chain_steady / raw_rate
    );
    Command::new("kill")
        .args(["-TERM", &chain.id().to_string()])
        .status()?;
    chain.wait()?;
    Cpu::settle();
    let mut weir = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-c"])
        .arg(&config_path)
        .env("WEIR_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("weir-again.log"))?)
        .spawn()?;
    std::thread::sleep(Duration::from_secs(3));

    // Freshness at half the maximum rate, live.
    // `weir gen` tops out near 110k events/s on two cores; above that the
    // producer's own backlog would be measured, not Weir.
    let half = ((steady / 2.0) as u64).min(100_000);
    let seconds = 20;
    let since = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(1);
    let out = gen(&topic, half * seconds, half, &geolite).wait_with_output()?;
    anyhow::ensure!(out.status.success(), "weir gen failed");
    let target = events + half * seconds;
    let wait = Instant::now();
    while accounted(&pool, "bench") < target && wait.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let latencies = |from: chrono::NaiveDateTime| -> anyhow::Result<Vec<f64>> {
        let mut lat: Vec<f64> = rt.block_on(async {
            let mut c = pool.get_conn().await?;
            c.query(format!(
                "SELECT TIMESTAMPDIFF(MICROSECOND, event_time, ingested_at) / 1000.0 FROM engagement \
                 WHERE event_time >= '{}'",
                from.format("%Y-%m-%d %H:%M:%S%.3f")
            ))
            .await
        })?;
        lat.sort_by(f64::total_cmp);
        Ok(lat)
    };
    let pct = |lat: &[f64], p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    // The producer's first two seconds (connection, idempotent producer id,
    // first batches) are reported apart: they measure `weir gen`, not Weir.
    let first: Option<chrono::NaiveDateTime> = rt.block_on(async {
        let mut c = pool.get_conn().await?;
        c.query_first::<Option<String>, _>(format!(
            "SELECT CAST(MIN(event_time) AS CHAR) FROM engagement WHERE event_time >= '{}'",
            since.format("%Y-%m-%d %H:%M:%S%.3f")
        ))
        .await
        .map(|v| {
            v.flatten().and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f").ok()
            })
        })
    })?;
    let steady_lat = latencies(first.unwrap_or(since) + chrono::Duration::seconds(2))?;
    let all_lat = latencies(since)?;
    println!(
        "freshness at {half} events/s (half the steady rate), event time -> written: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} rows after the producer's first 2 s; \
         with them: p99 {:.1} ms, max {:.1} ms",
        pct(&steady_lat, 0.5),
        pct(&steady_lat, 0.99),
        pct(&steady_lat, 1.0),
        steady_lat.len(),
        pct(&all_lat, 0.99),
        pct(&all_lat, 1.0)
    );

    if soak > 0 {
        let rate = steady as u64;
        println!("soak: {soak} s at {rate} events/s; RSS every 10 s (MiB):");
        let mut producer = gen(&topic, rate * soak, rate, &geolite);
        let begin = Instant::now();
        let mut line = Vec::new();
        let mut ticks = 0u64;
        while begin.elapsed() < Duration::from_secs(soak) {
            std::thread::sleep(Duration::from_secs(10));
            line.push(rss_kib(weir.id()) / 1024);
            ticks += 1;
            // Keep the disk from filling: empty the table once a minute (Kafka's
            // own retention bounds the topic).
            if ticks.is_multiple_of(6) {
                let emptied = rt.block_on(async {
                    let mut c = pool.get_conn().await?;
                    c.query_drop("TRUNCATE TABLE engagement").await
                });
                if let Err(e) = emptied {
                    eprintln!("emptying the table failed: {e}");
                    break;
                }
            }
        }
        let _ = producer.wait();
        println!("  {line:?}");
    }

    Command::new("kill")
        .args(["-TERM", &weir.id().to_string()])
        .status()?;
    let status = weir.wait()?;
    println!("weir stopped: {status}");

    rt.block_on(pool.disconnect())?;
    Ok(())
}

/// How the raw load spreads its batches over its connections.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// The batches of one partition after another, dealt out in turn, so that the
    /// connections load neighbouring stretches of one partition at a time.
    ReadOrder,
    /// Partition `p` on connection `p % connections`, in offset order: the
    /// pipeline's layout, where concurrent batches cover the same stretch of time.
    ByPartition,
}

/// Reads the topic, encodes rows ahead of time, and times only LOAD DATA + COMMIT.
async fn raw_load(
    config: &Config,
    url: &str,
    topic: &str,
    events: u64,
    format: RowFormat,
    layout: Layout,
) -> anyhow::Result<(f64, String)> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", "weir-bench-raw")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut batches: HashMap<i32, Vec<Batch>> = HashMap::new();
    let mut read = 0;
    while read < events {
        let Some(m) = consumer.poll(Duration::from_secs(10)) else {
            anyhow::bail!("topic ended after {read} events");
        };
        let m = m?;
        let list = batches.entry(m.partition()).or_default();
        if list.last().is_none_or(|b| b.len() >= BATCH) {
            list.push(Batch {
                partition: m.partition(),
                ..Batch::default()
            });
        }
        list.last_mut().unwrap().push(
            m.offset(),
            m.timestamp().to_millis().unwrap_or(-1),
            m.key(),
            m.payload().unwrap_or_default(),
            65536,
            16384,
        );
        read += 1;
    }
    drop(tpl);
    drop(consumer);
    let pool = mysql_async::Pool::new(url);
    let mut conn = pool.get_conn().await?;
    let mut p = config.pipelines[0].clone();
    p.table = match (format, layout) {
        (RowFormat::Sql, _) => "engagement_raw_insert".into(),
        (RowFormat::Tsv, Layout::ReadOrder) => "engagement_raw".into(),
        (RowFormat::Tsv, Layout::ByPartition) => "engagement_raw_partitioned".into(),
    };
    let plan =
        Arc::new(TablePlan::load(&mut conn, &p, &weir::chain::fields::source_fields(&p)).await?);
    let mut encoded = Vec::new();
    let mut partitions: Vec<&i32> = batches.keys().collect();
    partitions.sort();
    for b in partitions.into_iter().flat_map(|p| &batches[p]) {
        let mut enc = Encoded::default();
        let ctx = EncodeContext {
            topic,
            ingested_ms: chrono::Utc::now().timestamp_millis(),
            max_record_bytes: 65536,
            dead_letter_cap: 16384,
            format,
        };
        encode(&plan, b, 0, ctx, &HashMap::new(), None, &mut enc);
        encoded.push((b.partition, enc));
    }
    let rows: usize = encoded.iter().map(|(_, e)| e.row_ends.len()).sum();
    drop(conn);
    // As many connections as the pipeline has writers, each loading its share.
    let writers = config.pipelines[0].writers;
    let mut shares: Vec<Vec<Encoded>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, (partition, enc)) in encoded.into_iter().enumerate() {
        let share = match layout {
            Layout::ReadOrder => i % writers,
            Layout::ByPartition => partition.rem_euclid(writers as i32) as usize,
        };
        shares[share].push(enc);
    }
    Cpu::settle();
    let cpu = Cpu::now(None);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let (plan, pool) = (plan.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get_conn().await?;
            for enc in &share {
                conn.query_drop("START TRANSACTION").await?;
                match format {
                    RowFormat::Tsv => load_rows(&mut conn, &plan, &enc.rows).await?,
                    RowFormat::Sql => insert_rows(&mut conn, &plan, enc, 4 << 20).await?,
                };
                conn.query_drop("COMMIT").await?;
            }
            Ok::<_, mysql_async::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = rows as f64 / t.elapsed().as_secs_f64();
    let used = cpu.report(&Cpu::now(None), rows as u64, None);
    pool.disconnect().await?;
    Ok((rate, used))
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/version")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
