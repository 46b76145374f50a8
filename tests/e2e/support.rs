//! What every end-to-end test needs: the real services (started by
//! `scripts/services up`, never by hand), a database and a topic of its own, the
//! `weir` binary as a user runs it, and the accounting check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
pub use weir::tools::gen::Summary;

/// The tests share one broker and one database server, and some stop them:
/// they run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// Runs `scripts/services ARGS`, panicking with its output on failure.
pub fn services(args: &[&str]) -> String {
    let out = Command::new(repo_root().join("scripts/services"))
        .args(args)
        .output()
        .expect("running scripts/services");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scripts/services {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Brings the services up once per test run.
pub fn services_up() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        services(&["up"]);
    });
}

pub const BROKERS: &str = "127.0.0.1:9092";
pub const SERVER_URL: &str = "mysql://weir:weir@127.0.0.1:3306";

/// The GeoLite2 City database `weir gen` draws addresses from.
pub fn geolite2() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| PathBuf::from(services(&["geolite2"]).trim()))
        .clone()
}

pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

/// A runtime for the tests' own database and Kafka calls.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// One test's world: its own database, topic, config file and log folder.
pub struct Scenario {
    pub name: String,
    pub topic: String,
    pub database: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pool: mysql_async::Pool,
}

/// Settings a scenario may change in its `weir.toml`.
pub struct Settings {
    pub partitions: i32,
    pub max_events: usize,
    pub max_wait_ms: u64,
    pub writers: usize,
    pub max_record_bytes: usize,
    pub write_method: &'static str,
    pub table: &'static str,
    /// Raw TOML appended to the pipeline (`[[pipeline.step]]` tables).
    pub steps: &'static str,
    /// Extra `column = "field"` lines for the column mapping.
    pub columns: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            partitions: 4,
            max_events: 2000,
            max_wait_ms: 50,
            writers: 2,
            max_record_bytes: 65536,
            write_method: "load-data",
            table: "engagement",
            steps: "",
            columns: "",
        }
    }
}

/// The example's table, without its unique key so that a duplicate would show
/// as a second row instead of a refused one.
pub fn engagement_ddl_without_unique_key() -> String {
    let ddl = std::fs::read_to_string(repo_root().join("examples/sql/mariadb/engagement.sql"))
        .expect("reading the example DDL");
    let replaced = ddl.replace(
        "PRIMARY KEY (kafka_partition, kafka_offset)",
        "KEY by_position (kafka_partition, kafka_offset)",
    );
    assert_ne!(ddl, replaced, "the example DDL changed shape");
    replaced
}

impl Scenario {
    pub fn new(name: &str, settings: Settings) -> Scenario {
        services_up();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let database = format!("weir_test_{name}");
        let topic = format!("{name}-{stamp}");
        let dir = std::env::temp_dir().join(format!("weir-e2e-{name}-{stamp}"));
        std::fs::create_dir_all(&dir).expect("test dir");
        let admin = mysql_async::Pool::new(format!("{SERVER_URL}/mysql").as_str());
        rt().block_on(async {
            let mut c = admin.get_conn().await.expect("database up");
            c.query_drop(format!("DROP DATABASE IF EXISTS {database}"))
                .await
                .expect("drop");
            c.query_drop(format!(
                "CREATE DATABASE {database} DEFAULT CHARACTER SET utf8mb4"
            ))
            .await
            .expect("create");
            drop(c);
            admin.disconnect().await.expect("disconnect");
        });
        let pool = mysql_async::Pool::new(format!("{SERVER_URL}/{database}").as_str());
        let s = Scenario {
            name: name.to_owned(),
            topic: topic.clone(),
            database: database.clone(),
            config: dir.join("weir.toml"),
            dir,
            pool,
        };
        s.exec(&engagement_ddl_without_unique_key());
        install_guests(&s.dir.join("plugins"));
        rt().block_on(weir::tools::gen::ensure_topic(
            BROKERS,
            &topic,
            settings.partitions,
        ))
        .expect("topic");
        std::fs::write(
            &s.config,
            format!(
                r#"[kafka]
brokers = "{BROKERS}"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[singlestore]
url = "{SERVER_URL}/{database}"
write_method = "{method}"

[plugins]
dir = "plugins"

[[pipeline]]
name = "{name}"
topic = "{topic}"
table = "{table}"
writers = {writers}
max_record_bytes = {max_record}
batch = {{ max_events = {max_events}, max_wait_ms = {max_wait} }}

  [pipeline.columns]
  kafka_partition = "@partition"
  kafka_offset = "@offset"
  event_id = "event_id"
  event_time = "ts"
  user_id = "user_id"
  pin_id = "pin_id"
  action = "action"
  app = "app"
  ip = "ip"
  user_agent = "user_agent"
  ingested_at = "@ingested_at"
{columns}
{steps}
"#,
                columns = settings.columns,
                steps = settings.steps,
                method = settings.write_method,
                table = settings.table,
                writers = settings.writers,
                max_record = settings.max_record_bytes,
                max_events = settings.max_events,
                max_wait = settings.max_wait_ms,
            ),
        )
        .expect("writing weir.toml");
        s
    }

    /// A scenario for plugin builds that tag rows: its chain is `steps` (raw
    /// `[[pipeline.step]]` TOML), in batches of at most 500 events, its table
    /// has the nullable columns `weir_test` and `weir_chain`, and `columns`
    /// (raw `column = "field"` lines) are added to its mapping.
    pub fn tagged(name: &str, steps: &'static str, columns: &'static str) -> Scenario {
        let s = Scenario::new(
            name,
            Settings {
                steps,
                columns,
                max_events: 500,
                ..Settings::default()
            },
        );
        s.exec(
            "ALTER TABLE engagement ADD COLUMN weir_test VARCHAR(32) NULL, \
             ADD COLUMN weir_chain VARCHAR(255) NULL",
        );
        s
    }

    pub fn url(&self) -> String {
        format!("{SERVER_URL}/{}", self.database)
    }

    pub fn exec(&self, sql: &str) {
        rt().block_on(async {
            let mut c = self.pool.get_conn().await.expect("connect");
            c.query_drop(sql).await.expect(sql);
        });
    }

    pub fn query<T: mysql_async::prelude::FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        rt().block_on(async {
            let mut c = self.pool.get_conn().await.expect("connect");
            c.query(sql).await.expect(sql)
        })
    }

    fn try_query_one(&self, sql: &str) -> Option<i64> {
        rt().block_on(async {
            let mut c = self.pool.get_conn().await.ok()?;
            c.query_first::<Option<i64>, _>(sql)
                .await
                .ok()
                .flatten()
                .flatten()
        })
    }

    /// Produces events with `weir gen` as a user would; returns its summary.
    pub fn gen(&self, count: u64, rate: u64, extra: &[&str]) -> Summary {
        let out = self
            .gen_command(count, rate, extra)
            .output()
            .expect("weir gen");
        assert!(
            out.status.success(),
            "weir gen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("gen summary")
    }

    /// `weir gen` started in the background.
    /// Produces `payloads` to the scenario's topic (key `k`), in order, and
    /// waits until the broker has them.
    pub fn produce<S: AsRef<str>>(&self, payloads: &[S]) {
        let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", BROKERS)
            .create()
            .expect("producer");
        for p in payloads {
            producer
                .send(
                    rdkafka::producer::BaseRecord::<str, str>::to(&self.topic)
                        .key("k")
                        .payload(p.as_ref()),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).expect("flush");
    }

    pub fn gen_spawn(&self, count: u64, rate: u64, extra: &[&str]) -> Child {
        self.gen_command(count, rate, extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("weir gen")
    }

    fn gen_command(&self, count: u64, rate: u64, extra: &[&str]) -> Command {
        let mut c = Command::new(weir_bin());
        c.args([
            "gen",
            "--json",
            "--brokers",
            BROKERS,
            "--topic",
            &self.topic,
        ])
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .arg("--geolite2")
        .arg(geolite2())
        .args(["--oversized-bytes", "100000"])
        .args(extra)
        .stderr(Stdio::inherit());
        c
    }

    /// Starts `weir run` on this scenario's config; its log goes to a file.
    pub fn start(&self, tag: &str) -> Weir {
        self.start_with(&self.config, tag)
    }

    /// Starts `weir run` on another config file of this scenario.
    pub fn start_with(&self, config: &Path, tag: &str) -> Weir {
        self.start_env(config, tag, &[])
    }

    /// Starts `weir run` with variables added to its environment.
    pub fn start_env(&self, config: &Path, tag: &str, env: &[(String, String)]) -> Weir {
        let log = self.dir.join(format!("weir-{tag}.log"));
        let child = Command::new(weir_bin())
            .args(["run", "-c"])
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("weir run");
        Weir { child, log }
    }

    /// The totals of `weir_offsets` for this topic: (rows, filtered, dead letters).
    /// Waits until at least `n` rows of `engagement` meet `sql_condition`.
    pub fn wait_rows(&self, sql_condition: &str, n: i64) {
        let started = Instant::now();
        loop {
            let have = self.count(&format!(
                "SELECT COUNT(*) FROM engagement WHERE {sql_condition}"
            ));
            if have >= n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "after 60 s: {have} rows where {sql_condition}, not {n}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until some batch of this scenario is committed.
    pub fn wait_committed(&self) {
        wait_until("committed batch", Duration::from_secs(60), || {
            self.totals().is_some_and(|(r, f, d)| r + f + d > 0)
        });
    }

    pub fn totals(&self) -> Option<(i64, i64, i64)> {
        let rows: Vec<(Option<i64>, Option<i64>, Option<i64>)> = rt().block_on(async {
            let mut c = self.pool.get_conn().await.ok()?;
            c.query(format!(
                "SELECT CAST(SUM(rows_total) AS SIGNED), CAST(SUM(filtered_total) AS SIGNED), \
                 CAST(SUM(dead_letters_total) AS SIGNED) FROM weir_offsets WHERE topic = '{}'",
                self.topic
            ))
            .await
            .ok()
        })?;
        let (r, f, d) = rows.first().copied()?;
        Some((r?, f?, d?))
    }

    /// Waits until the offsets' totals account for `produced` events.
    pub fn wait_accounted(&self, produced: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some((r, f, d)) = self.totals() {
                if (r + f + d) as u64 >= produced {
                    return;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "{}: only {:?} of {produced} events accounted for after {timeout:?}; logs in {}",
                self.name,
                self.totals(),
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every produced event is a row or a dead letter exactly once (a replayed
    /// dead letter counts as what it became): the totals add
    /// up, the table and the dead letters hold what the totals say, no position
    /// appears twice, and together they cover every offset of every partition.
    pub fn assert_exactly_once(&self, produced: u64) -> Accounting {
        let (rows, filtered, dead) = self.totals().expect("weir_offsets has totals");
        assert_eq!(
            (rows + filtered + dead) as u64,
            produced,
            "rows {rows} + filtered {filtered} + dead letters {dead} != produced {produced}"
        );
        let table_rows = self.count("SELECT COUNT(*) FROM engagement");
        assert_eq!(table_rows, rows, "rows in the table vs rows_total");
        let dl_rows = self.count(&format!(
            "SELECT COUNT(*) FROM weir_dead_letters WHERE topic = '{}' AND replayed_at IS NULL",
            self.topic
        ));
        assert_eq!(
            dl_rows, dead,
            "dead letters in the table vs dead_letters_total"
        );
        let dups = self.count(
            "SELECT COUNT(*) FROM (SELECT kafka_partition, kafka_offset FROM engagement \
             GROUP BY kafka_partition, kafka_offset HAVING COUNT(*) > 1) d",
        );
        assert_eq!(dups, 0, "duplicate rows by partition and offset");
        let both = self.count(&format!(
            "SELECT COUNT(*) FROM engagement e JOIN weir_dead_letters d ON d.topic = '{}' \
             AND d.kafka_partition = e.kafka_partition AND d.kafka_offset = e.kafka_offset \
             AND d.replayed_at IS NULL",
            self.topic
        ));
        assert_eq!(both, 0, "events both written and dead-lettered");
        // Every offset of every partition is covered once (the topic has no gaps):
        // rows and dead letters, distinct by the checks above, plus the filter
        // drops counted for the partition, make up the whole log.
        let per_partition: Vec<(i32, i64)> = self.query(&format!(
            "SELECT p, COUNT(*) FROM (SELECT kafka_partition p, kafka_offset o FROM engagement \
             UNION ALL SELECT kafka_partition, kafka_offset FROM weir_dead_letters WHERE topic = '{}' \
             AND replayed_at IS NULL) x GROUP BY p",
            self.topic
        ));
        let filtered_by_partition: HashMap<i32, i64> = self
            .query::<(i32, i64)>(&format!(
                "SELECT kafka_partition, filtered_total FROM weir_offsets WHERE topic = '{}'",
                self.topic
            ))
            .into_iter()
            .collect();
        let watermarks = self.watermarks();
        for (p, n) in per_partition {
            let (_, end) = watermarks[&p];
            let dropped = filtered_by_partition.get(&p).copied().unwrap_or(0);
            assert_eq!(
                n + dropped,
                end,
                "partition {p}: rows + dead letters + filtered vs log end"
            );
        }
        Accounting {
            rows,
            filtered,
            dead_letters: dead,
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.try_query_one(sql)
            .unwrap_or_else(|| panic!("no answer to {sql}"))
    }

    /// Low and high watermarks per partition.
    pub fn watermarks(&self) -> HashMap<i32, (i64, i64)> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", BROKERS)
            .create()
            .expect("kafka client");
        let md = c
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .expect("metadata");
        let mut out = HashMap::new();
        for t in md.topics() {
            for p in t.partitions() {
                let w = c
                    .fetch_watermarks(&self.topic, p.id(), Duration::from_secs(10))
                    .expect("watermarks");
                out.insert(p.id(), w);
            }
        }
        out
    }

    /// Dead letters grouped by reason prefix (up to the first `:`), with counts.
    pub fn dead_letter_kinds(&self) -> HashMap<String, i64> {
        let rows: Vec<(String, i64)> = self.query(&format!(
            "SELECT SUBSTRING_INDEX(reason, ':', 1), COUNT(*) FROM weir_dead_letters \
             WHERE topic = '{}' GROUP BY 1",
            self.topic
        ));
        rows.into_iter().collect()
    }
}

/// Totals after a run.
#[derive(Debug, Clone, Copy)]
pub struct Accounting {
    pub rows: i64,
    pub filtered: i64,
    pub dead_letters: i64,
}

/// A running `weir run`.
pub struct Weir {
    pub child: Child,
    pub log: PathBuf,
}

impl Weir {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, then the exit status (within `timeout`).
    pub fn stop(mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("weir did not stop within {timeout:?}; log: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the test guests (tests/guests) for wasm32-wasip2 once per test run, and
/// returns the folder holding `NAME.wasm` for each.
pub fn guests() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let target = root.join("target/guests");
            let out = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--examples",
                ])
                .arg("--manifest-path")
                .arg(root.join("tests/guests/Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .expect("cargo build of the test guests");
            assert!(
                out.status.success(),
                "building the test guests failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("wasm32-wasip2/release/examples")
        })
        .clone()
}

/// Copies every test guest into `dir` as `NAME.wasm`, NAME as the guest's
/// `describe` says (underscores become dashes).
pub fn install_guests(dir: &Path) {
    std::fs::create_dir_all(dir).expect("plugin dir");
    let built = guests();
    for entry in std::fs::read_dir(&built).expect("guests dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // cargo writes NAME.wasm and NAME-HASH.wasm; take the plain ones.
        if let Some(stem) = name.strip_suffix(".wasm").filter(|s| !s.contains('-')) {
            std::fs::copy(&path, dir.join(format!("{}.wasm", stem.replace('_', "-"))))
                .expect("copy guest");
        }
    }
}

/// Builds the first-party plugins (plugins/) for wasm32-wasip2 with the
/// `plugin` profile once per test run, as `scripts/plugins` does, and returns
/// the folder holding them (`NAME_WITH_UNDERSCORES.wasm`).
pub fn first_party_plugins() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let out = Command::new(env!("CARGO"))
                .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
                .args([
                    "-p",
                    "engagement-filter",
                    "-p",
                    "geo-enricher",
                    "-p",
                    "category-enricher",
                ])
                .current_dir(&root)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .expect("cargo build of the plugins");
            assert!(
                out.status.success(),
                "building the plugins failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            root.join("target/wasm32-wasip2/plugin")
        })
        .clone()
}

impl Scenario {
    /// examples/pinterest.toml made this scenario's: its topic, database,
    /// consumer group (the scenario's name) and GeoLite2 file, with the
    /// first-party plugins in `plugins.d/` beside it and the pin catalog
    /// (examples/sql/mariadb/pins.sql, `weir gen-pins`) in its database.
    pub fn pinterest(&self) -> PathBuf {
        let plugins = self.dir.join("plugins.d");
        std::fs::create_dir_all(&plugins).expect("plugins.d");
        for name in ["engagement-filter", "geo-enricher", "category-enricher"] {
            let built = first_party_plugins().join(format!("{}.wasm", name.replace('-', "_")));
            std::fs::copy(&built, plugins.join(format!("{name}.wasm"))).expect("copy plugin");
        }
        let example = std::fs::read_to_string(repo_root().join("examples/pinterest.toml"))
            .expect("examples/pinterest.toml");
        let mut text = example.clone();
        for (from, to) in [
            (
                "[singlestore]\n".to_string(),
                format!(
                    "[kafka]\nbrokers = \"{BROKERS}\"\n\n[singlestore]\nurl = \"{}\"\n",
                    self.url()
                ),
            ),
            (
                "name = \"engagement\"".into(),
                format!("name = \"{}\"", self.name),
            ),
            (
                "topic = \"pin-engagement\"".into(),
                format!("topic = \"{}\"", self.topic),
            ),
            ("${WEIR_GEOLITE2}".into(), geolite2().display().to_string()),
            // The raw archive into a folder of the scenario's.
            (
                "url = \"s3://weir-archive/pinterest\"".into(),
                format!("url = \"file://{}\"", self.dir.join("archive").display()),
            ),
            // A port of its own, so that nothing else listening on the example's
            // port gets in the way.
            (
                "address = \"127.0.0.1:9464\"".into(),
                format!("address = \"{}\"", free_address()),
            ),
        ] {
            assert!(
                text.contains(&from),
                "examples/pinterest.toml no longer has {from}"
            );
            text = text.replace(&from, &to);
        }
        let config = self.dir.join("pinterest.toml");
        std::fs::write(&config, text).expect("writing pinterest.toml");
        let ddl = std::fs::read_to_string(repo_root().join("examples/sql/mariadb/pins.sql"))
            .expect("pins.sql");
        for statement in ddl.split(';').filter(|s| s.contains("CREATE")) {
            self.exec(statement);
        }
        let out = Command::new(weir_bin())
            .args(["gen-pins", "--url", &self.url()])
            .output()
            .expect("weir gen-pins");
        assert!(
            out.status.success(),
            "weir gen-pins: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        config
    }
}

/// A free port on loopback, for a metrics endpoint.
pub fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// The first 12 hex digits of a file's SHA-256, as dead letters name plugins.
pub fn short_hash(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("plugin file");
    hex::encode(sha2::Sha256::digest(bytes))[..12].to_owned()
}

/// Writes `bytes` as `dir/NAME.wasm`: aside, then renamed.
pub fn drop_in(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let aside = dir.join(format!(".{name}.wasm.part"));
    std::fs::write(&aside, bytes).expect("write aside");
    std::fs::rename(&aside, dir.join(format!("{name}.wasm"))).expect("rename");
}

/// Waits until `weir`'s log holds `text`.
pub fn wait_log(weir: &Weir, text: &str) {
    wait_log_count(weir, text, 1);
}

/// Waits until `weir`'s log holds `text` at least `n` times.
pub fn wait_log_count(weir: &Weir, text: &str, n: usize) {
    let started = Instant::now();
    while weir.log().matches(text).count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not {n} times `{text}` in the log:\n{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `done` holds, for at most `timeout`; panics naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "after {timeout:?}: no {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds a Python or JavaScript plugin from source with its SDK's build
/// script (`sdk/python/build`, `sdk/js/build`), as a user does, into `out`.
pub fn build_with_sdk(lang: &str, plugin_dir: &Path, out: &Path) {
    let script = repo_root().join("sdk").join(lang).join("build");
    let output = Command::new(&script)
        .arg(plugin_dir)
        .arg(out)
        .output()
        .expect("running the SDK's build script");
    assert!(
        output.status.success(),
        "{} {} {} failed:\n{}{}",
        script.display(),
        plugin_dir.display(),
        out.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Python and JavaScript example plugins, built once per test run, in a
/// folder as `NAME.wasm`.
pub fn polyglot_plugins() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let dir = root.join("target/polyglot");
            std::fs::create_dir_all(&dir).expect("target/polyglot");
            for (lang, name) in [
                ("python", "python-device-enricher"),
                ("js", "js-sample-filter"),
            ] {
                build_with_sdk(
                    lang,
                    &root.join("plugins").join(name),
                    &dir.join(format!("{name}.wasm")),
                );
            }
            dir
        })
        .clone()
}
