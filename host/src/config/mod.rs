//! The `weir.toml` configuration: typed, strict (unknown keys are errors) and
//! reported with the file, line, column and key of every mistake.
//!
//! ```toml
//! [kafka]
//! brokers = "127.0.0.1:9092"          # or WEIR_KAFKA_BROKERS
//!
//! [singlestore]
//! url = "mysql://weir:weir@127.0.0.1:3306/weir"   # or WEIR_SINGLESTORE_URL
//!
//! [[pipeline]]
//! name = "engagement"                 # also the consumer group unless `group` is set
//! topic = "pin-engagement"
//! table = "engagement"
//! batch = { max_events = 5000, max_wait_ms = 50 }
//!
//!   [pipeline.columns]                # table column = event field
//!   pin_id = "pin_id"
//!   kafka_offset = "@offset"
//! ```
//!
//! Relative paths resolve against the folder of the file that names them.
//!
//! The lowest layer but `ops`: it uses no other folder. [`diff`] compares two
//! configurations for the supervisor.

pub mod diff;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

/// The environment variable that supplies the database URL when the file has none.
pub const URL_ENV: &str = "WEIR_SINGLESTORE_URL";
/// The environment variable that supplies the Kafka brokers when the file has none.
pub const BROKERS_ENV: &str = "WEIR_KAFKA_BROKERS";

/// A whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach Kafka.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// How to reach SingleStore (or a MySQL-protocol stand-in).
    #[serde(default)]
    pub singlestore: SinkConfig,
    /// Where plugins are found.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Reference tables plugins may look keys up in, by name.
    #[serde(rename = "lookup", default)]
    pub lookups: BTreeMap<String, LookupConfig>,
    /// The pipelines this process runs, each its own consumer group.
    #[serde(rename = "pipeline", default)]
    pub pipelines: Vec<PipelineConfig>,
    /// Where the file was read from (set by [`Config::load`]).
    #[serde(skip)]
    pub path: PathBuf,
    /// The file's text, to locate errors found after parsing.
    #[serde(skip)]
    pub text: String,
}

/// `[metrics]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve `/metrics`, `/healthz` and `/readyz` on (default:
    /// not served). Example: `address = "127.0.0.1:9464"`.
    pub address: Option<String>,
}

/// `[lookup.NAME]`: a reference table, from a CSV file or an SQL query.
///
/// ```toml
/// [lookup.categories]
/// query = "SELECT p.pin_id, c.name FROM pins p JOIN categories c USING (category_id)"
/// refresh_secs = 60
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// A CSV file with a header row, relative to this file.
    pub csv: Option<PathBuf>,
    /// An SQL query whose first column is the key and second the value (rows
    /// with a NULL in either are skipped).
    pub query: Option<String>,
    /// The CSV column holding the key (default: the first).
    pub key: Option<String>,
    /// The CSV column holding the value (default: the second).
    pub value: Option<String>,
    /// A MaxMind DB file (GeoLite2, GeoIP2, an ASN or ISP database), relative
    /// to this file, `${VAR}` expanded: an IP address is the key; the value, a JSON object of the
    /// record's members that `select` names (default: the whole record).
    pub mmdb: Option<PathBuf>,
    /// With `mmdb`: output member = path in the record, members separated by
    /// `.` and list items by their index. Example:
    /// `select = { country = "country.iso_code", city = "city.names.en" }`.
    pub select: Option<BTreeMap<String, String>>,
    /// Reload every this many seconds (default 60; 0: never).
    pub refresh_secs: Option<u64>,
}

/// Where a lookup table's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum LookupSource<'a> {
    Csv(&'a Path),
    Query(&'a str),
    Mmdb(&'a Path),
}

impl LookupConfig {
    /// The table's source (validation ensures exactly one is set).
    pub fn source(&self) -> LookupSource<'_> {
        match (&self.csv, &self.mmdb, &self.query) {
            (Some(p), _, _) => LookupSource::Csv(p),
            (None, Some(p), _) => LookupSource::Mmdb(p),
            (None, None, q) => LookupSource::Query(q.as_deref().unwrap_or_default()),
        }
    }

    /// Seconds between reloads; 0: never.
    pub fn refresh(&self) -> u64 {
        self.refresh_secs.unwrap_or(60)
    }
}

/// `[kafka]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated. Example: `brokers = "127.0.0.1:9092"`.
    /// When absent, `WEIR_KAFKA_BROKERS` is used.
    pub brokers: Option<String>,
    /// Extra librdkafka properties for the consumer, applied last.
    /// Example: `properties = { "session.timeout.ms" = "6000" }`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// SASL authentication (`[kafka.sasl]`).
    pub sasl: Option<SaslConfig>,
    /// TLS to the brokers (`[kafka.tls]`); with `sasl`, SASL over TLS.
    pub tls: Option<TlsConfig>,
}

/// `[kafka.sasl]`. The password never sits in the file: it is read from an
/// environment variable or a file (a mounted secret).
///
/// ```toml
/// [kafka.sasl]
/// mechanism = "SCRAM-SHA-256"       # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
/// username = "weir"
/// password_env = "WEIR_KAFKA_PASSWORD"   # or password_file = "/run/secrets/kafka"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// A SASL mechanism librdkafka speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `[kafka.tls]` or `[singlestore.tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) (PEM) to trust, relative to this file (default: the
    /// system's roots).
    pub ca: Option<PathBuf>,
    /// Whether the server's certificate must name the host connected to.
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

/// `[plugins]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// The plugin folder: step `plugin = "NAME"` loads `NAME.wasm` from here.
    /// Relative to the configuration file. Example: `dir = "plugins.d"`.
    pub dir: Option<PathBuf>,
    /// Accept only plugins whose hash a step pins (`sha256 = "..."`): every step
    /// must pin one, and a file with any other hash is refused, at start and on
    /// reload. Upgrading is then a config change.
    #[serde(default)]
    pub pinned_only: bool,
}

/// One `[[pipeline.step]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// The plugin's name: `NAME.wasm` in the plugin folder.
    pub plugin: String,
    /// Passed to the plugin's `init`, as strings. Example: `config = { actions = "click,save" }`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Files the plugin may read, relative to this file. Each is staged read-only
    /// in a private folder; the guest finds it at the path given to `init` as
    /// `file.NAME` (NAME: the file's name). Example: `files = ["data/GeoLite2-City.mmdb"]`.
    /// `${VAR}` in an entry is replaced by the environment variable's value.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Lookup tables (`[lookup.NAME]`) the plugin may read. Example: `lookups = ["categories"]`.
    #[serde(default)]
    pub lookups: Vec<String>,
    /// The step's sandbox limits.
    #[serde(default)]
    pub limits: StepLimits,
    /// What a fault (trap or forbidden answer) does: `"dead-letter"` (the
    /// default: the events at fault become dead letters, the rest flow on) or
    /// `"pause"` (the batch is held and retried with backoff until the plugin
    /// is fixed, nothing is dead-lettered).
    #[serde(default)]
    pub on_fault: FaultPolicy,
    /// What a field the plugin sets without declaring it in `describe()` does:
    /// `"dead-letter"` (the default: the event becomes a dead letter naming the
    /// field) or `"drop"` (the field is removed, counted in
    /// `weir_step_undeclared_dropped_total`, and the event flows on).
    #[serde(default)]
    pub undeclared_writes: UndeclaredWrites,
    /// The plugin's SHA-256 (hex, at least its first 12 digits): a file with any
    /// other hash is refused, at start and on reload.
    pub sha256: Option<String>,
    /// A candidate build to run in shadow: `NAME@VERSION.wasm` in the plugin
    /// folder. It sees the same events as the step on a share of batches; its
    /// answers are compared with the step's and never written. Example:
    /// `candidate = "geo-enricher@2.0.0.wasm"`.
    pub candidate: Option<String>,
    /// The share of batches the candidate runs on, from 0 (exclusive) to 1.
    #[serde(default = "default_canary_share")]
    pub canary_share: f64,
}

fn default_canary_share() -> f64 {
    0.1
}

impl StepConfig {
    /// A step of `plugin` with every setting at its default.
    pub fn bare(plugin: &str) -> StepConfig {
        StepConfig {
            plugin: plugin.to_owned(),
            config: BTreeMap::new(),
            files: Vec::new(),
            lookups: Vec::new(),
            limits: StepLimits::default(),
            on_fault: FaultPolicy::default(),
            undeclared_writes: UndeclaredWrites::default(),
            sha256: None,
            candidate: None,
            canary_share: default_canary_share(),
        }
    }
}

/// `on_fault` of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPolicy {
    #[default]
    DeadLetter,
    Pause,
}

/// `undeclared_writes` of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndeclaredWrites {
    #[default]
    DeadLetter,
    Drop,
}

/// `limits = { ... }` of a step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimits {
    /// Memory cap per instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: usize,
    /// Wall-clock budget per event, in microseconds; a call may take this times
    /// its batch size.
    #[serde(default = "default_event_budget_us")]
    pub event_budget_us: u64,
    /// The smallest deadline of a call, in milliseconds.
    #[serde(default = "default_min_deadline_ms")]
    pub min_deadline_ms: u64,
    /// The deadline of `init`, in milliseconds (it may load a database).
    #[serde(default = "default_init_ms")]
    pub init_ms: u64,
    /// WASI resources (open files, streams, pollables) an instance may hold at once.
    #[serde(default = "default_handles")]
    pub handles: usize,
}

impl Default for StepLimits {
    fn default() -> Self {
        StepLimits {
            memory_mb: default_memory_mb(),
            event_budget_us: default_event_budget_us(),
            min_deadline_ms: default_min_deadline_ms(),
            init_ms: default_init_ms(),
            handles: default_handles(),
        }
    }
}

fn default_memory_mb() -> usize {
    128
}
fn default_event_budget_us() -> u64 {
    200
}
fn default_init_ms() -> u64 {
    10_000
}
fn default_handles() -> usize {
    256
}
fn default_min_deadline_ms() -> u64 {
    100
}

/// `[singlestore]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `mysql://user:password@host:port/database`. When absent, the variable named by
    /// `url_env` (default `WEIR_SINGLESTORE_URL`) is read.
    pub url: Option<String>,
    /// The environment variable holding the URL. Example: `url_env = "ANALYTICS_DB_URL"`.
    pub url_env: Option<String>,
    /// A file holding the URL (a mounted secret), relative to this file.
    pub url_file: Option<PathBuf>,
    /// TLS to the database (`[singlestore.tls]`).
    pub tls: Option<TlsConfig>,
    /// How rows are written: `"load-data"` (LOAD DATA LOCAL INFILE, the default and
    /// fastest) or `"insert"` (multi-row INSERT).
    #[serde(default)]
    pub write_method: WriteMethod,
}

/// How the sink writes rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMethod {
    /// `LOAD DATA LOCAL INFILE` streamed from memory.
    #[default]
    LoadData,
    /// Multi-row `INSERT ... VALUES (...), (...)` statements.
    Insert,
}

/// One `[[pipeline]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Unique name; also the consumer group unless `group` is set. Renaming a
    /// pipeline starts a new offsets history.
    pub name: String,
    /// Consumer group. Example: `group = "engagement-v2"`.
    pub group: Option<String>,
    /// Source topic.
    pub topic: String,
    /// Target table in the database of the URL. Either this (with `columns`)
    /// or `archive`.
    #[serde(default)]
    pub table: String,
    /// Object storage instead of a table: every event archived in files
    /// under date partitions. Example:
    /// `archive = { url = "s3://bucket/prefix", format = "parquet" }`.
    pub archive: Option<ArchiveConfig>,
    /// Batching per partition.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Concurrent partition writers, each holding one database connection.
    #[serde(default = "default_writers")]
    pub writers: usize,
    /// Batches queued per writer before the source pauses its partitions.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Records larger than this many bytes become dead letters.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// At most this many bytes of a dead letter's original payload are stored.
    #[serde(default = "default_dead_letter_cap")]
    pub dead_letter_payload_cap: usize,
    /// The fields the source events carry, with their types. Optional; when given,
    /// every mapped field must be declared and its type must suit its column.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldType>,
    /// The chain: filters and enrichers run in order between source and sink.
    #[serde(rename = "step", default)]
    pub steps: Vec<StepConfig>,
    /// Table column = event field, or one of the record's own properties:
    /// `@topic`, `@partition`, `@offset`, `@timestamp` (Kafka's, in ms), `@key`,
    /// `@ingested_at` (when the batch was written, in ms), `@chain` (the chain
    /// that handled the event: `NAME@VERSION#HASH` per step, comma-separated).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

/// `archive = { ... }`: a pipeline that writes files to object storage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// `s3://BUCKET/PREFIX` (credentials, region and endpoint from the usual
    /// `AWS_*` variables) or `file:///PATH` (relative: `file://PATH`, against
    /// this file's folder).
    pub url: String,
    /// `"parquet"` or `"jsonl.gz"` (gzip'd JSON lines).
    #[serde(default)]
    pub format: ArchiveFormat,
    /// Parquet's page compression: `"zstd"` (default), `"snappy"` or `"none"`.
    #[serde(default)]
    pub compression: ArchiveCompression,
    /// The date partition of a file, from its events' time (UTC), as
    /// `%Y`, `%m`, `%d`, `%H` and `%M` between literal text.
    #[serde(default = "default_archive_partition")]
    pub partition: String,
    /// Where an event's time comes from: `"@timestamp"` (Kafka's, the default)
    /// or a field holding epoch milliseconds (int) or RFC 3339 text.
    #[serde(default = "default_archive_time_field")]
    pub time_field: String,
    /// A partition's open files are cut once its events reach this many bytes
    /// (as read from Kafka) ...
    #[serde(default = "default_archive_max_bytes")]
    pub max_bytes: usize,
    /// ... or once its oldest event has waited this many seconds.
    #[serde(default = "default_archive_max_secs")]
    pub max_secs: u64,
    /// Where dead letters go: `"bucket"` (JSON lines under `_dead_letters/`
    /// beside the archive, the default) or `"table"` (the database's
    /// `weir_dead_letters`).
    #[serde(default)]
    pub dead_letters: ArchiveDeadLetters,
    /// An S3-compatible server's address, when not AWS's and not in
    /// `AWS_ENDPOINT_URL`. Example: `endpoint = "http://127.0.0.1:9000"`.
    pub endpoint: Option<String>,
    /// The bucket's region, when not in `AWS_REGION`.
    pub region: Option<String>,
}

/// The file format of an archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ArchiveFormat {
    #[default]
    #[serde(rename = "parquet")]
    Parquet,
    #[serde(rename = "jsonl.gz")]
    JsonLinesGz,
}

impl ArchiveFormat {
    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Parquet => "parquet",
            ArchiveFormat::JsonLinesGz => "jsonl.gz",
        }
    }
}

/// Parquet's page compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveCompression {
    #[default]
    Zstd,
    Snappy,
    None,
}

/// Where an archive pipeline's dead letters go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveDeadLetters {
    #[default]
    Bucket,
    Table,
}

fn default_archive_partition() -> String {
    "dt=%Y-%m-%d/hr=%H".into()
}
fn default_archive_time_field() -> String {
    "@timestamp".into()
}
fn default_archive_max_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_archive_max_secs() -> u64 {
    60
}

/// Checks an archive's `partition` template: path segments of literal
/// letters, digits, `=`, `-`, `_`, `.` and the conversions `%Y %m %d %H %M`,
/// so that no event's time can make a key climb out of its prefix.
pub fn check_partition_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("must not be empty".into());
    }
    for segment in template.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "`{template}`: empty, `.` or `..` path segments are not allowed"
            ));
        }
        if segment.starts_with(['_', '.']) {
            return Err(format!(
                "`{template}`: a segment may not start with `_` or `.` (kept for weir's own objects and readers' hidden files)"
            ));
        }
        let mut chars = segment.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => match chars.next() {
                    Some('Y' | 'm' | 'd' | 'H' | 'M') => {}
                    other => {
                        return Err(format!(
                            "`{template}`: `%{}` is not one of %Y %m %d %H %M",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                },
                c if c.is_ascii_alphanumeric() || matches!(c, '=' | '-' | '_' | '.') => {}
                c => {
                    return Err(format!(
                    "`{template}`: `{c}` is not allowed (letters, digits, `=`, `-`, `_`, `.`, `/`)"
                ))
                }
            }
        }
    }
    Ok(())
}

impl PipelineConfig {
    /// A pipeline named `name` (also its topic and table) with no columns,
    /// fields or steps and every setting at its default: the frame a plugin
    /// runs in when compared outside any configuration.
    pub fn bare(name: &str) -> PipelineConfig {
        let text = format!(
            "name = {0}\ntopic = {0}\ntable = {0}\ncolumns = {{}}",
            toml::Value::from(name)
        );
        toml::from_str(&text).expect("a pipeline with only its required keys")
    }

    /// The consumer group: `group`, or the pipeline's name.
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }
}

/// `batch = { ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A partition's batch is sent when it holds this many events.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// ... or when its first event has waited this long.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// ... or when its payloads reach this many bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: default_max_events(),
            max_wait_ms: default_max_wait_ms(),
            max_bytes: default_max_bytes(),
        }
    }
}

/// The type of a source field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Int,
    Float,
    Boolean,
    Json,
}

fn default_writers() -> usize {
    4
}
fn default_queue() -> usize {
    4
}
fn default_max_record_bytes() -> usize {
    256 * 1024
}
fn default_dead_letter_cap() -> usize {
    16 * 1024
}
fn default_max_events() -> usize {
    5000
}
fn default_max_wait_ms() -> u64 {
    50
}
fn default_max_bytes() -> usize {
    8 * 1024 * 1024
}

/// The record properties a column may name instead of an event field.
pub const RECORD_PROPERTIES: &[&str] = &[
    "@topic",
    "@partition",
    "@offset",
    "@timestamp",
    "@key",
    "@ingested_at",
    "@chain",
];

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not fit the schema, or breaks a rule.
    #[error("{0}")]
    Invalid(Box<Located>),
    /// A setting the file leaves to the environment is missing there too.
    #[error("{path}: {message}")]
    Missing { path: PathBuf, message: String },
}

/// A message tied to a place in a file.
#[derive(Debug)]
pub struct Located {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The dotted key, e.g. `pipeline[0].batch.max_events` (empty for syntax errors).
    pub key: String,
    pub message: String,
    /// The offending source line.
    pub source_line: String,
    /// Columns (1-based, inclusive start) and width of the mark under `source_line`.
    pub mark: (usize, usize),
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        writeln!(f, "{}", self.message)?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(
            f,
            "{:gutter$} | {}{}",
            "",
            " ".repeat(self.mark.0.saturating_sub(1)),
            "^".repeat(self.mark.1.max(1))
        )
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text that came from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let locate = |span: Option<Range<usize>>, key: String, message: String| {
            ConfigError::Invalid(Box::new(Located::new(path, text, span, key, message)))
        };
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| locate(e.span(), String::new(), e.message().to_owned()))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = tidy_path(&e.path().to_string());
            let inner = e.into_inner();
            locate(inner.span(), key, inner.message().to_owned())
        })?;
        config.path = path.to_owned();
        config.text = text.to_owned();
        if let Err((key, message)) = config.validate() {
            return Err(config.error_at(&key, message));
        }
        Ok(config)
    }

    /// An error located at the dotted `key` of this file (e.g.
    /// `pipeline[0].step[1].plugin`), for rules checked after parsing.
    pub fn error_at(&self, key: &str, message: String) -> ConfigError {
        let span = DeTable::parse(&self.text)
            .ok()
            .and_then(|root| span_of(root.get_ref(), key));
        ConfigError::Invalid(Box::new(Located::new(
            &self.path,
            &self.text,
            span,
            key.to_owned(),
            message,
        )))
    }

    /// A step's granted file, `${VAR}` expanded and resolved against this file.
    pub fn step_file(&self, file: &Path) -> Result<PathBuf, String> {
        let text = file.to_string_lossy();
        let mut out = String::new();
        let mut rest = &*text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("`{text}`: `${{` is not closed"))?;
            let var = &rest[start + 2..start + end];
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => out.push_str(&v),
                _ => {
                    return Err(format!(
                        "`{text}` names ${var}, which is not set (`scripts/services env` prints it for the local setup)"
                    ))
                }
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(self.resolve(Path::new(&out)))
    }

    /// Rules serde cannot express. Returns the dotted key at fault and a message.
    fn validate(&self) -> Result<(), (String, String)> {
        if self.pipelines.is_empty() {
            return Err((String::new(), "no [[pipeline]] is defined".into()));
        }
        for (name, l) in &self.lookups {
            let sources = [l.csv.is_some(), l.query.is_some(), l.mmdb.is_some()];
            if sources.iter().filter(|&&s| s).count() != 1 {
                return Err((
                    format!("lookup.{name}"),
                    "set exactly one of `csv`, `query` and `mmdb`".into(),
                ));
            }
            if l.mmdb.is_some() && (l.key.is_some() || l.value.is_some()) {
                return Err((
                    format!("lookup.{name}"),
                    "`key` and `value` name CSV columns; a MaxMind DB's key is an IP address and `select` picks the value's members".into(),
                ));
            }
            if l.select.is_some() && l.mmdb.is_none() {
                return Err((
                    format!("lookup.{name}"),
                    "`select` picks members of a MaxMind DB record: it needs `mmdb`".into(),
                ));
            }
            if l.query.is_some() && (l.key.is_some() || l.value.is_some()) {
                return Err((
                    format!("lookup.{name}"),
                    "`key` and `value` name CSV columns; a query's first column is the key, its second the value".into(),
                ));
            }
        }
        for (i, p) in self.pipelines.iter().enumerate() {
            let key = |k: &str| format!("pipeline[{i}].{k}");
            if !is_identifier(&p.name, false) {
                return Err((
                    key("name"),
                    format!(
                        "`{}` is not a valid name (letters, digits, `-` and `_`)",
                        p.name
                    ),
                ));
            }
            if let Some(j) = self.pipelines[..i].iter().position(|q| q.name == p.name) {
                return Err((
                    key("name"),
                    format!("pipeline `{}` is already defined as pipeline[{j}]", p.name),
                ));
            }
            if p.topic.is_empty() {
                return Err((key("topic"), "must not be empty".into()));
            }
            if let Some(a) = &p.archive {
                if !p.table.is_empty() || !p.columns.is_empty() {
                    return Err((
                        key("archive"),
                        "an archive pipeline writes files, not a table: remove `table` and `columns`, or split it into two pipelines".into(),
                    ));
                }
                self.validate_archive(i, a)
                    .map_err(|(k, m)| (key(&format!("archive.{k}")), m))?;
            } else if p.table.is_empty() {
                return Err((
                    key("table"),
                    "set `table` (with `columns`) or `archive`".into(),
                ));
            } else if !is_identifier(&p.table, false) {
                return Err((
                    key("table"),
                    format!("`{}` is not a plain table name", p.table),
                ));
            }
            if p.batch.max_events == 0 {
                return Err((key("batch.max_events"), "must be at least 1".into()));
            }
            if p.batch.max_bytes < 1024 {
                return Err((key("batch.max_bytes"), "must be at least 1024".into()));
            }
            if p.writers == 0 {
                return Err((key("writers"), "must be at least 1".into()));
            }
            if p.queue == 0 {
                return Err((key("queue"), "must be at least 1".into()));
            }
            if p.max_record_bytes == 0 {
                return Err((key("max_record_bytes"), "must be at least 1".into()));
            }
            for (n, step) in p.steps.iter().enumerate() {
                if let Some(c) = &step.candidate {
                    let ok = c
                        .strip_prefix(&format!("{}@", step.plugin))
                        .and_then(|v| v.strip_suffix(".wasm"))
                        .is_some_and(|v| !v.is_empty() && !v.contains(['/', '\\']));
                    if !ok {
                        return Err((
                            key(&format!("step[{n}].candidate")),
                            format!(
                                "must name a file `{}@VERSION.wasm` in the plugin folder",
                                step.plugin
                            ),
                        ));
                    }
                }
                if !(step.canary_share > 0.0 && step.canary_share <= 1.0) {
                    return Err((
                        key(&format!("step[{n}].canary_share")),
                        "must be above 0 and at most 1".into(),
                    ));
                }
                match &step.sha256 {
                    Some(h)
                        if h.len() < 12
                            || h.len() > 64
                            || !h.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        return Err((
                            key(&format!("step[{n}].sha256")),
                            "must be 12 to 64 hex digits of the plugin's SHA-256".into(),
                        ));
                    }
                    None if self.plugins.pinned_only => {
                        return Err((
                            key(&format!("step[{n}]")),
                            format!(
                                "[plugins] pinned_only is set, so step `{}` must pin its plugin with `sha256 = \"...\"`",
                                step.plugin
                            ),
                        ));
                    }
                    _ => {}
                }
                for (f, file) in step.files.iter().enumerate() {
                    self.step_file(file)
                        .map_err(|m| (key(&format!("step[{n}].files[{f}]")), m))?;
                }
                for (l, name) in step.lookups.iter().enumerate() {
                    if !self.lookups.contains_key(name) {
                        return Err((
                            key(&format!("step[{n}].lookups[{l}]")),
                            format!("no [lookup.{name}] is defined"),
                        ));
                    }
                }
                if !is_identifier(&step.plugin, false) {
                    return Err((
                        key(&format!("step[{n}].plugin")),
                        format!(
                            "`{}` is not a plugin name (letters, digits, `-` and `_`)",
                            step.plugin
                        ),
                    ));
                }
                if step.limits.memory_mb == 0 || step.limits.event_budget_us == 0 {
                    return Err((
                        key(&format!("step[{n}].limits")),
                        "limits must be above 0".into(),
                    ));
                }
            }
            if p.columns.is_empty() && p.archive.is_none() {
                return Err((key("columns"), "maps no column".into()));
            }
            for (column, source) in &p.columns {
                let ckey = key(&format!("columns.{column}"));
                if !is_identifier(column, true) {
                    return Err((ckey, format!("`{column}` is not a plain column name")));
                }
                if let Some(prop) = source.strip_prefix('@') {
                    if !RECORD_PROPERTIES.contains(&source.as_str()) {
                        return Err((
                            ckey,
                            format!(
                                "unknown record property `@{prop}`, expected one of {}",
                                RECORD_PROPERTIES.join(", ")
                            ),
                        ));
                    }
                } else if source.is_empty() {
                    return Err((ckey, "names no field".into()));
                } else if !p.fields.is_empty()
                    && p.steps.is_empty()
                    && !p.fields.contains_key(source)
                {
                    return Err((
                        ckey,
                        format!("field `{source}` is not declared in pipeline[{i}].fields"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether any pipeline or lookup uses the database: a table pipeline, an
    /// archive with dead letters to the table, or a lookup by query.
    pub fn needs_database(&self) -> bool {
        self.pipelines.iter().any(|p| match &p.archive {
            None => true,
            Some(a) => a.dead_letters == ArchiveDeadLetters::Table,
        }) || self.lookups.values().any(|l| l.query.is_some())
    }

    /// An archive's own rules; the key returned is under `archive.`.
    fn validate_archive(&self, i: usize, a: &ArchiveConfig) -> Result<(), (String, String)> {
        let p = &self.pipelines[i];
        match a.url.split_once("://") {
            Some(("s3", rest)) => {
                let bucket = rest.split('/').next().unwrap_or_default();
                if bucket.is_empty() {
                    return Err(("url".into(), format!("`{}` names no bucket", a.url)));
                }
            }
            Some(("file", path)) if !path.is_empty() => {}
            _ => {
                return Err((
                    "url".into(),
                    format!("`{}` is not `s3://BUCKET/PREFIX` or `file://PATH`", a.url),
                ))
            }
        }
        if a.url.split('/').any(|s| s == "..") {
            return Err(("url".into(), "`..` is not allowed in the URL".into()));
        }
        check_partition_template(&a.partition).map_err(|m| ("partition".to_owned(), m))?;
        if a.time_field != "@timestamp" {
            if a.time_field.starts_with('@') {
                return Err((
                    "time_field".into(),
                    format!(
                        "`{}`: the only record property with a time is `@timestamp`",
                        a.time_field
                    ),
                ));
            }
            match p.fields.get(&a.time_field) {
                Some(FieldType::Int | FieldType::Text) => {}
                Some(other) => {
                    return Err((
                        "time_field".into(),
                        format!(
                            "field `{}` is declared {}; an event time is int (epoch milliseconds) or text (RFC 3339)",
                            a.time_field,
                            format!("{other:?}").to_lowercase()
                        ),
                    ))
                }
                None if !p.fields.is_empty() => {
                    return Err((
                        "time_field".into(),
                        format!("field `{}` is not declared in pipeline[{i}].fields", a.time_field),
                    ))
                }
                None => {}
            }
        }
        if a.max_bytes < 1024 {
            return Err(("max_bytes".into(), "must be at least 1024".into()));
        }
        if a.max_secs == 0 {
            return Err(("max_secs".into(), "must be at least 1".into()));
        }
        if a.format == ArchiveFormat::JsonLinesGz && a.compression != ArchiveCompression::default()
        {
            return Err((
                "compression".into(),
                "applies to Parquet; JSON lines are always gzip'd".into(),
            ));
        }
        if let Some(j) = self.pipelines[..i]
            .iter()
            .position(|q| q.topic == p.topic && q.archive.as_ref().is_some_and(|b| b.url == a.url))
        {
            return Err((
                "url".into(),
                format!(
                    "pipeline[{j}] already archives topic `{}` to `{}`: their files would collide",
                    p.topic, a.url
                ),
            ));
        }
        Ok(())
    }

    /// The database URL: the file's `url`, else `url_file`'s content, else the environment.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        if let Some(url) = &self.singlestore.url {
            return Ok(url.clone());
        }
        if let Some(file) = &self.singlestore.url_file {
            return self.secret_file("singlestore.url_file", file);
        }
        let var = self.singlestore.url_env.as_deref().unwrap_or(URL_ENV);
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => Err(ConfigError::Missing {
                path: self.path.clone(),
                message: format!("`singlestore.url` is not set and ${var} is empty"),
            }),
        }
    }

    fn secret_file(&self, key: &str, file: &Path) -> Result<String, ConfigError> {
        let path = self.resolve(file);
        std::fs::read_to_string(&path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| ConfigError::Missing {
                path: self.path.clone(),
                message: format!("`{key}`: cannot read {}: {e}", path.display()),
            })
    }

    /// librdkafka properties for every Kafka client of the file: security
    /// (SASL, TLS, the password read now) then `properties`.
    pub fn kafka_properties(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let k = &self.kafka;
        let mut out = Vec::new();
        let protocol = match (&k.sasl, &k.tls) {
            (None, None) => None,
            (Some(_), None) => Some("SASL_PLAINTEXT"),
            (None, Some(_)) => Some("SSL"),
            (Some(_), Some(_)) => Some("SASL_SSL"),
        };
        if let Some(p) = protocol {
            out.push(("security.protocol".to_owned(), p.to_owned()));
        }
        if let Some(sasl) = &k.sasl {
            let password = match (&sasl.password_env, &sasl.password_file) {
                (Some(var), None) => std::env::var(var).map_err(|_| ConfigError::Missing {
                    path: self.path.clone(),
                    message: format!("`kafka.sasl.password_env`: ${var} is not set"),
                })?,
                (None, Some(file)) => self.secret_file("kafka.sasl.password_file", file)?,
                _ => {
                    return Err(self.error_at(
                        "kafka.sasl",
                        "set exactly one of `password_env` and `password_file` (a password is never written in this file)".into(),
                    ))
                }
            };
            out.push((
                "sasl.mechanisms".to_owned(),
                sasl.mechanism.as_str().to_owned(),
            ));
            out.push(("sasl.username".to_owned(), sasl.username.clone()));
            out.push(("sasl.password".to_owned(), password));
        }
        if let Some(tls) = &k.tls {
            if let Some(ca) = &tls.ca {
                out.push((
                    "ssl.ca.location".to_owned(),
                    self.resolve(ca).display().to_string(),
                ));
            }
            out.push((
                "ssl.endpoint.identification.algorithm".to_owned(),
                if tls.verify_hostname { "https" } else { "none" }.to_owned(),
            ));
        }
        out.extend(k.properties.iter().map(|(a, b)| (a.clone(), b.clone())));
        Ok(out)
    }

    /// The Kafka bootstrap servers: the file's `brokers`, else the environment.
    pub fn brokers(&self) -> Result<String, ConfigError> {
        if let Some(b) = &self.kafka.brokers {
            return Ok(b.clone());
        }
        match std::env::var(BROKERS_ENV) {
            Ok(b) if !b.is_empty() => Ok(b),
            _ => Err(ConfigError::Missing {
                path: self.path.clone(),
                message: format!("`kafka.brokers` is not set and ${BROKERS_ENV} is empty"),
            }),
        }
    }

    /// The plugin folder, resolved against the file's folder (default: `plugins.d`).
    pub fn plugin_dir(&self) -> PathBuf {
        self.resolve(
            self.plugins
                .dir
                .as_deref()
                .unwrap_or(Path::new("plugins.d")),
        )
    }

    /// The pipeline called `name`.
    pub fn pipeline(&self, name: &str) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// The pipeline named `name`, or the only one when `name` is `None`.
    pub fn pick(&self, name: Option<&str>) -> Result<&PipelineConfig, String> {
        match name {
            Some(n) => self
                .pipeline(n)
                .ok_or_else(|| format!("no pipeline `{n}` in {}", self.path.display())),
            None if self.pipelines.len() == 1 => Ok(&self.pipelines[0]),
            None => Err(format!(
                "{} has several pipelines; name one with --pipeline",
                self.path.display()
            )),
        }
    }

    /// The pipeline named, or the only one writing a table (for commands on
    /// tables: dead letters, offline runs of a chain).
    pub fn pick_table(&self, name: Option<&str>) -> Result<&PipelineConfig, String> {
        let tables: Vec<&PipelineConfig> = self
            .pipelines
            .iter()
            .filter(|p| p.archive.is_none())
            .collect();
        match (name, &tables[..]) {
            (None, [one]) => Ok(one),
            _ => self.pick(name),
        }
    }

    /// Resolves a path named in the file against the file's folder.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_owned(),
        }
    }
}

impl Located {
    fn new(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: String,
        message: String,
    ) -> Located {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source_line = text[line_start..line_end].trim_end_matches('\r').to_owned();
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = text[start..end].chars().count();
        // toml reports only the first line of a multi-line error's message.
        let message = message.lines().next().unwrap_or_default().trim().to_owned();
        Located {
            path: path.to_owned(),
            line,
            column,
            key,
            message,
            source_line,
            mark: (column, width),
        }
    }
}

/// serde_path_to_error writes `pipeline[0].columns.x` already; drop its `?` for unknown paths.
fn tidy_path(path: &str) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path.to_owned()
    }
}

/// Finds the span of the value at a dotted key such as `pipeline[1].batch.max_events`.
fn span_of(root: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let mut table = root;
    let mut span = None;
    let parts: Vec<&str> = key.split('.').filter(|s| !s.is_empty()).collect();
    for (n, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        let mut value = v;
        span = Some(if n + 1 == parts.len() && index.is_none() {
            k.span()
        } else {
            v.span()
        });
        if let Some(i) = index {
            match value.get_ref() {
                DeValue::Array(items) => {
                    value = items.get(i)?;
                    span = Some(value.span());
                }
                _ => return span,
            }
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return span,
        }
    }
    span
}

/// Plain SQL identifiers only: they are interpolated into statements.
pub fn is_identifier(s: &str, allow_leading_digit: bool) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && (allow_leading_digit || s.chars().next().is_some_and(|c| !c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[singlestore]
url = "mysql://weir:weir@127.0.0.1:3306/weir"

[[pipeline]]
name = "engagement"
topic = "pin-engagement"
table = "engagement"
batch = { max_events = 100 }

  [pipeline.columns]
  pin_id = "pin_id"
  kafka_offset = "@offset"
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD, Path::new("weir.toml")).unwrap();
        let p = &c.pipelines[0];
        assert_eq!(p.group(), "engagement");
        assert_eq!(p.batch.max_events, 100);
        assert_eq!(p.batch.max_wait_ms, 50);
        assert_eq!(c.singlestore.write_method, WriteMethod::LoadData);
    }

    #[test]
    fn unknown_key_is_located() {
        let text = GOOD.replace("max_events = 100", "max_evnts = 100");
        let err = Config::parse(&text, Path::new("w.toml")).unwrap_err();
        let ConfigError::Invalid(l) = err else {
            panic!("{err}")
        };
        assert_eq!(l.line, 12);
        assert_eq!(l.key, "pipeline[0].batch.max_evnts");
        assert!(
            l.message.contains("unknown field `max_evnts`"),
            "{}",
            l.message
        );
    }

    #[test]
    fn rule_violation_points_at_the_key() {
        let text = GOOD.replace("\"@offset\"", "\"@offsett\"");
        let err = Config::parse(&text, Path::new("w.toml")).unwrap_err();
        let ConfigError::Invalid(l) = err else {
            panic!("{err}")
        };
        assert_eq!(l.line, 16);
        assert_eq!(l.key, "pipeline[0].columns.kafka_offset");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let c = Config::parse(GOOD, Path::new("/etc/weir/weir.toml")).unwrap();
        assert_eq!(
            c.resolve(Path::new("data/x.mmdb")),
            Path::new("/etc/weir/data/x.mmdb")
        );
        assert_eq!(c.resolve(Path::new("/abs")), Path::new("/abs"));
    }
}
