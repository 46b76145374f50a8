//! The archive sink against the S3 server of `scripts/services` (a benchmark:
//! it prints figures and ratios, and asserts nothing about time).
//!
//! ```text
//! cargo bench --bench archive -- [--events N]
//! ```
//!
//! 1. `weir gen` fills a 4-partition topic with N events (default 1,000,000;
//!    no oversized records) before anything is timed.
//! 2. Raw upload, the ceiling: a plain archiver, reading the same records from
//!    Kafka and uploading their bytes as they came (newline-separated) in
//!    objects of 64 MiB, two uploads at a time (as many as weir's writers).
//!    Timed from its first read to its last upload.
//! 3. `weir run` with an archive pipeline drains the topic into the same
//!    server: Parquet (zstd), Parquet (snappy), gzip'd JSON lines, each under
//!    a consumer group and prefix of its own; timed from start to the last
//!    partition's commit.
//! 4. The files' sizes per million events, from `weir archive ls`'s inventory.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use weir::archive::{inventory, Bucket, PartitionLog};
use weir::config::ArchiveConfig;

mod common;
use common::{arg, gen, root, services, BROKERS};

const PARTITIONS: i32 = 4;
const OBJECT_BYTES: usize = 64 << 20;

fn main() -> anyhow::Result<()> {
    let events = arg("--events", 1_000_000);
    services(&["up"]);
    let env: Vec<(String, String)> = services(&["env"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().strip_prefix("export ")?.split_once('=')?;
            Some((k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        })
        .collect();
    for (k, v) in &env {
        // The bench's own S3 client (raw upload, inventory) reads them too;
        // set before any other thread starts.
        std::env::set_var(k, v);
    }
    let geolite = services(&["geolite2"]);
    let bucket_name = std::env::var("WEIR_S3_BUCKET").unwrap_or_else(|_| "weir-archive".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("bench-archive-{stamp}");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(weir::tools::gen::ensure_topic(BROKERS, &topic, PARTITIONS))?;
    println!("producing {events} events into {topic} ...");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["gen", "--json", "--brokers", BROKERS, "--topic", &topic])
        .args(["--count", &events.to_string(), "--rate", "0"])
        .args(["--geolite2", &geolite, "--oversized", "0"])
        .stderr(Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "weir gen failed");
    let _ = gen; // the shared helper streams; here the topic is full first.

    // 2. The raw upload.
    let raw_bucket = open(&format!("s3://{bucket_name}/bench-raw-{stamp}"))?;
    let (raw_secs, raw_bytes) = rt.block_on(raw_upload(&topic, events, raw_bucket))?;
    let raw_rate = events as f64 / raw_secs;
    println!(
        "raw upload: {events} events, {:.1} MB in {raw_secs:.2} s = {raw_rate:.0} events/s",
        raw_bytes as f64 / 1e6
    );

    // 3 and 4. weir run, per format.
    let mut rows = Vec::new();
    for (label, archive) in [
        (
            "parquet zstd",
            r#"format = "parquet", compression = "zstd""#,
        ),
        (
            "parquet snappy",
            r#"format = "parquet", compression = "snappy""#,
        ),
        ("jsonl.gz", r#"format = "jsonl.gz""#),
    ] {
        let name = format!("bench-{}", label.replace([' ', '.'], "-"));
        let url = format!("s3://{bucket_name}/{name}-{stamp}");
        let dir = std::env::temp_dir().join(format!("weir-bench-archive-{stamp}"));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join(format!("{name}.toml"));
        let metrics = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.to_string()
        };
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbrokers = \"{BROKERS}\"\n\n[metrics]\naddress = \"{metrics}\"\n\n[[pipeline]]\nname = \"{name}\"\ntopic = \"{topic}\"\n\
                 writers = 2\nbatch = {{ max_events = 5000, max_wait_ms = 50 }}\n\
                 archive = {{ url = \"{url}\", {archive}, max_secs = 60 }}\n"
            ),
        )?;
        let bucket = open(&url)?;
        let started = Instant::now();
        let mut weir = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "-c"])
            .arg(&config)
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let ends = watermarks(&topic)?;
        // Drained: every partition's log is committed up to its end. Stopped
        // with SIGTERM once drained: the last generations are cut and uploaded
        // then, and the clock stops when they are committed.
        let mut stopped = false;
        loop {
            let done = rt.block_on(committed(&bucket, &name, &topic))?;
            let all = ends.iter().all(|(p, end)| done.get(p) == Some(end));
            if all {
                break;
            }
            if !stopped && consumed(&metrics, &name) >= events {
                let _ = Command::new("kill")
                    .args(["-TERM", &weir.id().to_string()])
                    .status();
                stopped = true;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(900),
                "{label}: not drained in 15 minutes"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let secs = started.elapsed().as_secs_f64();
        if !stopped {
            let _ = Command::new("kill")
                .args(["-TERM", &weir.id().to_string()])
                .status();
        }
        weir.wait()?;
        let partitions: Vec<i32> = (0..PARTITIONS).collect();
        let inv = rt.block_on(inventory(&bucket, &name, &topic, &partitions))?;
        let (files, bytes, archived) = inv.by_folder.values().fold((0, 0, 0), |(f, b, r), l| {
            (f + l.files, b + l.bytes, r + l.rows)
        });
        anyhow::ensure!(
            archived + inv.dead_letters.rows == events,
            "{label}: {archived} rows + {} dead letters archived of {events}",
            inv.dead_letters.rows
        );
        let rate = events as f64 / secs;
        println!(
            "weir {label}: {secs:.2} s = {rate:.0} events/s ({:.2}x the raw upload), {files} files, \
             {:.1} MB ({:.1} MB per million events)",
            rate / raw_rate,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / (events as f64 / 1e6)
        );
        rows.push((label, rate, bytes));
    }
    println!();
    println!("| archive | events/s | vs raw upload | MB per million events | vs raw bytes |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| raw upload (bytes as read) | {raw_rate:.0} | 1.00x | {:.1} | 1.00x |",
        raw_bytes as f64 / 1e6 / (events as f64 / 1e6)
    );
    for (label, rate, bytes) in rows {
        println!(
            "| weir, {label} | {rate:.0} | {:.2}x | {:.1} | {:.2}x |",
            rate / raw_rate,
            bytes as f64 / 1e6 / (events as f64 / 1e6),
            bytes as f64 / raw_bytes as f64
        );
    }
    Ok(())
}

fn open(url: &str) -> anyhow::Result<Bucket> {
    let a: ArchiveConfig = toml::from_str(&format!("url = \"{url}\""))?;
    Ok(Bucket::open(&a, &root())?)
}

fn watermarks(topic: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()?;
    (0..PARTITIONS)
        .map(|p| Ok((p, c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1)))
        .collect()
}

/// Each partition's committed position in the archive's logs.
async fn committed(
    bucket: &Bucket,
    group: &str,
    topic: &str,
) -> anyhow::Result<std::collections::HashMap<i32, i64>> {
    let mut out = std::collections::HashMap::new();
    for p in 0..PARTITIONS {
        if let Some(h) = PartitionLog::new(group, topic, p).head(bucket).await? {
            if h.pending.is_none() {
                out.insert(p, h.position);
            }
        }
    }
    Ok(out)
}

/// `weir_events_consumed_total` of `pipeline`, read from weir's /metrics.
fn consumed(address: &str, pipeline: &str) -> u64 {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(address) else {
        return 0;
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    weir::ops::top::sum(
        &weir::ops::top::parse(&text),
        "weir_events_consumed_total",
        &[("pipeline", pipeline)],
    ) as u64
}

/// The plain archiver: reads every record and uploads the payloads, newline
/// separated, in objects of 64 MiB, two uploads in flight.
async fn raw_upload(topic: &str, events: u64, bucket: Bucket) -> anyhow::Result<(f64, u64)> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", format!("bench-raw-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    c.subscribe(&[topic])?;
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(2));
    let mut uploads = tokio::task::JoinSet::new();
    let mut buf = Vec::with_capacity(OBJECT_BYTES + (1 << 20));
    let (mut seen, mut bytes, mut n) = (0u64, 0u64, 0u32);
    let mut flush = |buf: &mut Vec<u8>, uploads: &mut tokio::task::JoinSet<anyhow::Result<()>>| {
        let body = bytes::Bytes::from(std::mem::take(buf));
        let key = bucket.key([format!("raw-{n:06}").as_str()]);
        n += 1;
        let (bucket, limit) = (bucket.clone(), limit.clone());
        uploads.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            bucket.put(&key, body).await?;
            Ok(())
        });
    };
    while seen < events {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                buf.extend_from_slice(payload);
                buf.push(b'\n');
                bytes += payload.len() as u64 + 1;
                seen += 1;
                if buf.len() >= OBJECT_BYTES {
                    flush(&mut buf, &mut uploads);
                    buf.reserve(OBJECT_BYTES + (1 << 20));
                }
            }
            Some(Err(e)) => anyhow::bail!("reading {topic}: {e}"),
            None => tokio::task::yield_now().await,
        }
    }
    if !buf.is_empty() {
        flush(&mut buf, &mut uploads);
    }
    while let Some(r) = uploads.join_next().await {
        r??;
    }
    Ok((started.elapsed().as_secs_f64(), bytes))
}
