//! The archive sink against the real services: Kafka and an S3 server (moto,
//! from `scripts/services`), or a local folder. Every check reads the
//! archive back with an independent reader (`scripts/archive-read`, pyarrow
//! and boto3) and finds each produced event in exactly one file, under the
//! date partition of its time, or as a dead letter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    free_address, repo_root, rt, serial, services, wait_log, wait_until, weir_bin, Scenario,
    Settings, Summary, Weir, BROKERS,
};

/// The environment `scripts/services env` gives (S3 credentials, endpoint,
/// the reader's Python).
fn services_env() -> Vec<(String, String)> {
    services(&["env"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().strip_prefix("export ")?.split_once('=')?;
            Some((k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        })
        .collect()
}

fn env_var(name: &str) -> String {
    services_env()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("scripts/services env gives no {name}"))
}

/// An archive scenario: the topic of a [`Scenario`], an archive pipeline
/// writing under its own prefix.
struct Archive {
    s: Scenario,
    url: String,
    /// Extra `KEY = VALUE` pairs for the archive table.
    env: Vec<(String, String)>,
}

impl Archive {
    fn new(name: &str, partitions: i32, archive: &str, url: Option<String>) -> Archive {
        let s = Scenario::new(
            name,
            Settings {
                partitions,
                ..Settings::default()
            },
        );
        let url = url.unwrap_or_else(|| format!("s3://{}/{}", env_var("WEIR_S3_BUCKET"), s.topic));
        let a = Archive {
            url,
            env: services_env(),
            s,
        };
        a.write_config(archive, "");
        a
    }

    fn write_config(&self, archive: &str, extra: &str) {
        std::fs::write(
            &self.s.config,
            format!(
                r#"[kafka]
brokers = "{BROKERS}"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[[pipeline]]
name = "{name}"
topic = "{topic}"
writers = 2
max_record_bytes = 65536
batch = {{ max_events = 1000, max_wait_ms = 50 }}
archive = {{ url = "{url}", {archive} }}
{extra}
"#,
                name = self.s.name,
                topic = self.s.topic,
                url = self.url,
            ),
        )
        .expect("writing weir.toml");
    }

    fn start(&self, tag: &str) -> Weir {
        self.s.start_env(&self.s.config, tag, &self.env)
    }

    /// `weir ARGS -c CONFIG` with the services' environment; its stdout.
    fn weir(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(weir_bin())
            .args(args)
            .arg("-c")
            .arg(&self.s.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("weir");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// The archive read back by the independent reader: per
    /// `partition:offset`, the files holding it (data files, then dead letters).
    fn read_back(&self) -> (Reading, Reading) {
        (self.reader(&[]), self.reader(&["--dead-letters"]))
    }

    fn reader(&self, extra: &[&str]) -> Reading {
        let out = Command::new(env_var("WEIR_PYTHON"))
            .arg(repo_root().join("scripts/archive-read"))
            .arg(&self.url)
            .args(["--events", "kafka_partition,kafka_offset,kafka_timestamp"])
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("scripts/archive-read");
        assert!(
            out.status.success(),
            "archive-read failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reader JSON");
        let mut r = Reading::default();
        for (value, keys) in v["values"].as_object().expect("values") {
            let mut it = value.splitn(3, ':');
            let (p, o, ts) = (it.next(), it.next(), it.next());
            let p: i32 = p.and_then(|p| p.parse().ok()).expect("partition");
            let o: i64 = o.and_then(|o| o.parse().ok()).expect("offset");
            let keys: Vec<String> = keys
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k.as_str().expect("key").to_owned())
                .collect();
            // The same event under two texts (two formats in one prefix)
            // is two copies: the keys add up.
            let entry = r
                .events
                .entry((p, o))
                .or_insert_with(|| (Vec::new(), ts.unwrap_or_default().to_owned()));
            entry.0.extend(keys);
        }
        r
    }

    /// Every offset of every partition, from the log start to the end, is in
    /// exactly one data file (under the date partition of its Kafka time) or
    /// exactly one dead-letter file. Returns (rows, dead letters).
    fn assert_exactly_once(&self, produced: u64) -> (u64, u64) {
        let (rows, dead) = self.read_back();
        let mut expected = 0u64;
        let mut problems = Vec::new();
        for (p, (lo, hi)) in self.s.watermarks() {
            expected += (hi - lo) as u64;
            for o in lo..hi {
                let as_row = rows.events.get(&(p, o));
                let as_dead = dead.events.get(&(p, o));
                let copies =
                    as_row.map_or(0, |(k, _)| k.len()) + as_dead.map_or(0, |(k, _)| k.len());
                if copies != 1 && problems.len() < 20 {
                    problems.push(format!(
                        "partition {p} offset {o}: {copies} copies (files {:?}, dead letters {:?})",
                        as_row.map(|r| &r.0),
                        as_dead.map(|d| &d.0)
                    ));
                }
                if let Some((keys, ts)) = as_row {
                    if let Some(folder) = folder_of(ts) {
                        if !keys.iter().all(|k| k.contains(&folder)) && problems.len() < 20 {
                            problems.push(format!("partition {p} offset {o} at {ts} is in {keys:?}, not under {folder}"));
                        }
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "not exactly once:\n{}",
            problems.join("\n")
        );
        assert_eq!(expected, produced, "the topic holds what was produced");
        (rows.events.len() as u64, dead.events.len() as u64)
    }
}

#[derive(Default)]
struct Reading {
    /// (partition, offset) -> (files, timestamp text)
    events: HashMap<(i32, i64), (Vec<String>, String)>,
}

/// `dt=YYYY-MM-DD/hr=HH` of a timestamp as the reader prints it: epoch
/// milliseconds (JSON lines) or `YYYY-MM-DD HH:MM:SS...` (Parquet, UTC).
fn folder_of(ts: &str) -> Option<String> {
    if let Ok(ms) = ts.parse::<i64>() {
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
        return Some(t.format("dt=%Y-%m-%d/hr=%H").to_string());
    }
    let (date, rest) = (ts.get(..10)?, ts.get(11..13)?);
    Some(format!("dt={date}/hr={rest}"))
}

fn gen_summary(child: Child) -> Summary {
    let out = child.wait_with_output().expect("gen");
    assert!(out.status.success(), "weir gen failed");
    serde_json::from_slice(&out.stdout).expect("gen summary")
}

/// The log has committed every partition up to Kafka's end.
fn wait_archived(a: &Archive, timeout: Duration) {
    let ends = a.s.watermarks();
    wait_until("every partition archived up to its end", timeout, || {
        let (_, out) = a.weir(&["offsets", "show"]);
        ends.iter().all(|(p, (_, hi))| {
            *hi == 0
                || out.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 2
                        && f[0] == p.to_string()
                        && f[1] == hi.to_string()
                        && !l.contains("being written")
                })
        })
    });
}

/// Raw events into Parquet on the S3 server: all of them, each once, under
/// its hour; oversized ones as dead letters in the bucket; `weir archive ls`
/// and `weir offsets show` agree with what the reader found.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn raw_events_land_in_parquet_exactly_once() {
    let _g = serial();
    let a = Archive::new("arcraw", 4, r#"format = "parquet", max_secs = 2"#, None);
    let weir = a.start("run");
    let summary = a.s.gen(20_000, 20_000, &[]);
    wait_archived(&a, Duration::from_secs(90));
    assert!(weir.stop(Duration::from_secs(30)).success());
    let (rows, dead) = a.assert_exactly_once(summary.produced);
    // A raw archive keeps malformed and ill-typed events as they came; only
    // records over max_record_bytes are dead letters.
    assert_eq!(dead, summary.oversized);
    assert_eq!(rows + dead, summary.produced);
    let (ok, ls) = a.weir(&["archive", "ls"]);
    assert!(ok, "{ls}");
    let total = ls.lines().find(|l| l.starts_with("total")).expect(&ls);
    assert_eq!(
        total.split_whitespace().nth(2),
        Some(rows.to_string().as_str()),
        "{ls}"
    );
    assert!(
        !ls.contains("MISSING") && !ls.contains("not committed"),
        "{ls}"
    );
}

/// kill -9 five times while events flow and files are cut every 64 KiB:
/// after the last restart, every event is in exactly one file.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn kill9_during_writes_and_uploads_loses_and_repeats_nothing() {
    let _g = serial();
    let a = Archive::new(
        "arckill",
        4,
        r#"format = "parquet", max_bytes = 65536, max_secs = 1"#,
        None,
    );
    let producer = a.s.gen_spawn(60_000, 4_000, &[]);
    let mut weir = a.start("run0");
    for round in 1..=5 {
        wait_log(&weir, "partitions assigned");
        // Let some generations land, then kill at a random moment of the next.
        std::thread::sleep(Duration::from_millis(1500 + rand::random::<u64>() % 1500));
        weir.kill9();
        weir = a.start(&format!("run{round}"));
    }
    let summary = gen_summary(producer);
    wait_archived(&a, Duration::from_secs(120));
    assert!(weir.stop(Duration::from_secs(30)).success());
    a.assert_exactly_once(summary.produced);
}

/// The object server is unreachable for 20 s mid-run (connections refused
/// and cut): weir retries, stays up, and every event lands once.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn object_server_away_for_20s() {
    let _g = serial();
    let server = Moto::start();
    let proxy = Proxy::start(server.endpoint.trim_start_matches("http://"));
    let mut a = Archive::new(
        "arcdown",
        4,
        r#"format = "parquet", max_secs = 1"#,
        Some("s3://outage/events".into()),
    );
    a.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    a.env.push((
        "AWS_ENDPOINT_URL".into(),
        format!("http://{}", proxy.address),
    ));
    server.create_bucket("outage");
    let mut weir = a.start("run");
    let producer = a.s.gen_spawn(60_000, 2_000, &[]);
    // Files are landing (the producer may take a while to start) ...
    wait_until(
        "a first generation committed",
        Duration::from_secs(60),
        || {
            let (_, out) = a.weir(&["offsets", "show"]);
            out.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 5
                    && f[0].parse::<i32>().is_ok()
                    && f[5].parse::<u64>().is_ok_and(|rows| rows > 0)
            })
        },
    );
    // ... when the server goes away.
    proxy.set_down(true);
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        weir.is_running(),
        "weir gave up while the object server was away"
    );
    proxy.set_down(false);
    let summary = gen_summary(producer);
    wait_archived(&a, Duration::from_secs(180));
    assert!(weir.stop(Duration::from_secs(30)).success());
    assert!(
        weir_log(&a, "run").contains("object storage unavailable, retrying"),
        "the outage was not noticed"
    );
    a.assert_exactly_once(summary.produced);
}

/// Two instances share the topic's partitions (the second joins mid-run, a
/// rebalance), then the first stops: every event once.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn two_instances_share_partitions_through_a_rebalance() {
    let _g = serial();
    let a = Archive::new("arctwo", 6, r#"format = "jsonl.gz", max_secs = 1"#, None);
    let first = a.start("a");
    let producer = a.s.gen_spawn(40_000, 4_000, &[]);
    wait_log(&first, "partitions assigned");
    std::thread::sleep(Duration::from_secs(2));
    let second = a.start("b");
    wait_log(&second, "partitions assigned");
    std::thread::sleep(Duration::from_secs(3));
    assert!(first.stop(Duration::from_secs(30)).success());
    let summary = gen_summary(producer);
    wait_archived(&a, Duration::from_secs(120));
    assert!(second.stop(Duration::from_secs(30)).success());
    a.assert_exactly_once(summary.produced);
}

/// An owner frozen past its session (SIGSTOP) loses its partitions; another
/// instance archives them; when the first wakes, what it held is dropped
/// (revoked, or fenced if its writer reaches the log first), and nothing is
/// written twice.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn a_frozen_owner_that_wakes_writes_nothing_twice() {
    let _g = serial();
    let a = Archive::new("arcstale", 2, r#"format = "parquet", max_secs = 2"#, None);
    let stale = a.start("stale");
    wait_log(&stale, "partitions assigned");
    // Events the stale owner holds in open files when it freezes.
    a.s.gen(3_000, 3_000, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let pid = stale.child.id().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let fresh = a.start("fresh");
    wait_log(&fresh, "partitions assigned");
    let more = a.s.gen(3_000, 3_000, &[]);
    wait_archived(&a, Duration::from_secs(60));
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    wait_until("the stale owner let go", Duration::from_secs(30), || {
        std::fs::read_to_string(&stale.log)
            .is_ok_and(|l| l.contains("fenced") || l.contains("partitions revoked"))
    });
    assert!(stale.stop(Duration::from_secs(30)).success());
    assert!(fresh.stop(Duration::from_secs(30)).success());
    a.assert_exactly_once(3_000 + more.produced);
}

/// The S3 server's conditional write is what fences: a second create-only
/// write of a log record is refused, and the first stays.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn the_s3_server_refuses_a_taken_log_record() {
    let _g = serial();
    for (k, v) in services_env() {
        // The library's S3 client reads its credentials from the environment.
        std::env::set_var(k, v);
    }
    let url = format!(
        "s3://{}/fence-{}",
        env_var("WEIR_S3_BUCKET"),
        std::process::id()
    );
    let a: weir::config::ArchiveConfig = toml::from_str(&format!("url = \"{url}\"")).unwrap();
    let bucket = weir::archive::Bucket::open(&a, Path::new("/")).expect("bucket");
    let log = weir::archive::PartitionLog::new("g", "t", 0);
    let record = |writer: &str| weir::archive::log::Record {
        seq: 1,
        kind: weir::archive::log::Kind::Commit,
        start: 0,
        end: 9,
        position: 10,
        files: Vec::new(),
        totals: Default::default(),
        writer: writer.into(),
        at: String::new(),
    };
    rt().block_on(async {
        log.append(&bucket, &record("first"))
            .await
            .expect("the first write");
        match log.append(&bucket, &record("second")).await {
            Err(weir::archive::LogError::Fenced(1)) => {}
            other => panic!("the second writer of record 1 was not fenced: {other:?}"),
        }
        let head = log.head(&bucket).await.unwrap().unwrap();
        assert_eq!((head.seq, head.position), (1, 10));
        assert_eq!(log.read(&bucket, 1).await.unwrap().unwrap().writer, "first");
    });
}

/// Files are cut by size (many files per hour with a small `max_bytes`) and
/// by time (a quiet partition's file appears after `max_secs`), into a local
/// folder with the same naming.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn files_are_cut_by_size_and_by_time() {
    let _g = serial();
    let dir_s = std::env::temp_dir().join(format!("weir-arccut-{}", std::process::id()));
    let a = Archive::new(
        "arccut",
        1,
        r#"format = "parquet", max_bytes = 32768, max_secs = 3"#,
        Some(format!("file://{}", dir_s.display())),
    );
    let weir = a.start("run");
    wait_log(&weir, "partitions assigned");
    let summary = a.s.gen(3_000, 30_000, &["--oversized", "0"]);
    wait_archived(&a, Duration::from_secs(60));
    let files = data_files(&dir_s);
    // ~300 bytes an event: 3000 events over 32 KiB cuts make dozens of files.
    assert!(files.len() >= 10, "size cuts: only {} files", files.len());
    // Time: one event, then nothing: its file lands after max_secs.
    let before = files.len();
    let started = Instant::now();
    a.s.gen(1, 1, &["--oversized", "0", "--malformed", "0"]);
    wait_until(
        "the quiet partition's file",
        Duration::from_secs(30),
        || data_files(&dir_s).len() > before,
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "cut after {waited:?}, before max_secs"
    );
    assert!(weir.stop(Duration::from_secs(30)).success());
    a.assert_exactly_once(summary.produced + 1);
    let _ = std::fs::remove_dir_all(&dir_s);
}

/// Declared fields make typed columns; a field of the wrong type, a missing
/// or unreadable event time, and malformed JSON are dead letters, here in
/// the database's `weir_dead_letters`, each once.
#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn typed_columns_and_dead_letters_to_the_table() {
    let _g = serial();
    let a = Archive::new("arctyped", 2, r#"format = "parquet""#, None);
    a.write_config(
        r#"format = "parquet", time_field = "ts", dead_letters = "table", max_secs = 1"#,
        r#"fields = { event_id = "text", ts = "int", user_id = "int", pin_id = "int", action = "text", app = "text", ip = "text", user_agent = "text" }"#,
    );
    // The database of the dead letters; [singlestore] goes before [[pipeline]].
    let text = std::fs::read_to_string(&a.s.config).unwrap();
    std::fs::write(
        &a.s.config,
        format!("[singlestore]\nurl = \"{}\"\n\n{text}", a.s.url()),
    )
    .unwrap();
    let weir = a.start("run");
    let summary = a.s.gen(5_000, 10_000, &[]);
    wait_archived(&a, Duration::from_secs(90));
    assert!(weir.stop(Duration::from_secs(30)).success());
    let (rows, _) = a.read_back();
    let in_table: Vec<(i32, i64)> =
        a.s.query("SELECT kafka_partition, kafka_offset FROM weir_dead_letters");
    let mut seen = std::collections::HashSet::new();
    for (p, o) in &in_table {
        assert!(seen.insert((*p, *o)), "dead letter {p}:{o} twice");
        assert!(
            !rows.events.contains_key(&(*p, *o)),
            "{p}:{o} both a row and a dead letter"
        );
    }
    assert_eq!(
        in_table.len() as u64,
        summary.bad(),
        "{:?}",
        a.s.dead_letter_kinds()
    );
    assert_eq!(
        rows.events.len() as u64 + in_table.len() as u64,
        summary.produced
    );
    for (p, o) in
        a.s.watermarks()
            .iter()
            .flat_map(|(p, (lo, hi))| (*lo..*hi).map(move |o| (*p, o)))
    {
        assert!(
            rows.events.contains_key(&(p, o)) || seen.contains(&(p, o)),
            "{p}:{o} is neither archived nor a dead letter"
        );
    }
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") || name.ends_with(".jsonl.gz") {
                out.push(p);
            }
        }
    }
    out
}

fn weir_log(a: &Archive, tag: &str) -> String {
    std::fs::read_to_string(a.s.dir.join(format!("weir-{tag}.log"))).unwrap_or_default()
}

/// A moto S3 server of the test's own, to stop and continue.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let python = PathBuf::from(env_var("WEIR_PYTHON"));
        let moto = python.with_file_name("moto_server");
        let address = free_address();
        let (host, port) = address.split_once(':').expect("host:port");
        let child = Command::new(moto)
            .args(["-H", host, "-p", port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server");
        let endpoint = format!("http://{address}");
        wait_until("moto answers", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&address).is_ok()
        });
        Moto { child, endpoint }
    }

    fn create_bucket(&self, bucket: &str) {
        let ok = Command::new(env_var("WEIR_PYTHON"))
            .args([
                "-c",
                &format!(
                    "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='x', aws_secret_access_key='x', region_name='us-east-1').create_bucket(Bucket='{bucket}')",
                    self.endpoint
                ),
            ])
            .status()
            .expect("python");
        assert!(ok.success(), "creating bucket {bucket}");
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of a server, which can refuse and cut connections.
struct Proxy {
    address: String,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let address = free_address();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (bind, flag, target) = (address.clone(), down.clone(), target.to_owned());
        std::thread::spawn(move || {
            let open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> =
                Default::default();
            loop {
                if flag.load(Ordering::SeqCst) {
                    // Down: cut what is open, refuse what comes (nothing listens).
                    for c in open.lock().unwrap().drain(..) {
                        let _ = c.shutdown(std::net::Shutdown::Both);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let Ok(listener) = std::net::TcpListener::bind(&bind) else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                listener.set_nonblocking(true).expect("nonblocking");
                while !flag.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    let Ok(server) = std::net::TcpStream::connect(&target) else {
                        continue;
                    };
                    let mut list = open.lock().unwrap();
                    list.push(client.try_clone().expect("clone"));
                    list.push(server.try_clone().expect("clone"));
                    for (mut from, mut to) in [
                        (
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        ),
                        (server, client),
                    ] {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        wait_until("the proxy listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&address).is_ok()
        });
        Proxy { address, down }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}
