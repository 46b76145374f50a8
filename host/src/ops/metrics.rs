//! What an operator sees: Prometheus metrics (`/metrics`, OpenMetrics text from
//! the `prometheus-client` crate), liveness (`/healthz`) and readiness
//! (`/readyz`, with the reasons when not ready), served on `[metrics] address`.
//!
//! One registry per process ([`get`]); the source, the writers and the chain
//! record into it as they work. Names follow Prometheus conventions: a `weir_`
//! prefix, base units (`_seconds`), `_total` on counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    pub pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub pipeline: String,
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub pipeline: String,
    pub step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub pipeline: String,
    pub step: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrapLabels {
    pub pipeline: String,
    pub step: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepInfoLabels {
    pub pipeline: String,
    pub step: String,
    pub position: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub pipeline: String,
    pub plugin: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CanaryLabels {
    pub pipeline: String,
    pub step: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub pipeline: String,
    pub partition: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn sizes() -> Histogram {
    // 1 .. 16384 events
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// Every metric Weir exports.
pub struct Metrics {
    registry: Registry,
    pub consumed: Family<PipelineLabels, Counter>,
    pub rows: Family<PipelineLabels, Counter>,
    pub filtered: Family<PipelineLabels, Counter>,
    pub dead_letters: Family<StageLabels, Counter>,
    pub step_info: Family<StepInfoLabels, Gauge>,
    pub step_events: Family<OutcomeLabels, Counter>,
    pub step_seconds: Histograms<StepLabels>,
    pub traps: Family<TrapLabels, Counter>,
    pub undeclared_dropped: Family<StepLabels, Counter>,
    pub settled: Family<StepLabels, Counter>,
    pub memory_peak: Family<StepLabels, Gauge>,
    pub batch_events: Histograms<PipelineLabels>,
    pub write_seconds: Histograms<PipelineLabels>,
    pub retries: Family<PipelineLabels, Counter>,
    pub lag: Family<PartitionLabels, Gauge>,
    pub freshness: Histograms<PipelineLabels>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub canary_events: Family<CanaryLabels, Counter>,
    pub archive_objects: Family<PipelineLabels, Counter>,
    pub archive_bytes: Family<PipelineLabels, Counter>,
    pub archive_open_files: Family<PipelineLabels, Gauge>,
    pub archive_oldest: Family<PipelineLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub health: Health,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("weir");
        let m = Metrics {
            consumed: Family::default(),
            rows: Family::default(),
            filtered: Family::default(),
            dead_letters: Family::default(),
            step_info: Family::default(),
            step_events: Family::default(),
            step_seconds: Family::new_with_constructor(seconds),
            traps: Family::default(),
            undeclared_dropped: Family::default(),
            settled: Family::default(),
            memory_peak: Family::default(),
            batch_events: Family::new_with_constructor(sizes),
            write_seconds: Family::new_with_constructor(seconds),
            retries: Family::default(),
            lag: Family::default(),
            freshness: Family::new_with_constructor(seconds),
            reloads: Family::default(),
            config_reloads: Family::default(),
            canary_events: Family::default(),
            archive_objects: Family::default(),
            archive_bytes: Family::default(),
            archive_open_files: Family::default(),
            archive_oldest: Family::default(),
            health: Health::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_consumed",
            "Records read from Kafka",
            m.consumed.clone(),
        );
        registry.register(
            "rows_written",
            "Rows committed to the table",
            m.rows.clone(),
        );
        registry.register(
            "events_filtered",
            "Events dropped by a filter step (committed with their batch)",
            m.filtered.clone(),
        );
        registry.register(
            "dead_letters",
            "Dead letters committed, by stage (source, decode, step:NAME, sink)",
            m.dead_letters.clone(),
        );
        registry.register(
            "step_info",
            "Each chain step (value 1), with its position in the chain (1: first)",
            m.step_info.clone(),
        );
        registry.register(
            "step_events",
            "Events through each chain step, by outcome (in, kept, dropped, dead_letter)",
            m.step_events.clone(),
        );
        registry.register_with_unit(
            "step_batch",
            "Time a chain step spent on one batch",
            Unit::Seconds,
            m.step_seconds.clone(),
        );
        registry.register(
            "plugin_traps",
            "Plugin faults by kind (deadline, memory, stack_overflow, exit, resource, panic, bad_result, blocked, trap)",
            m.traps.clone(),
        );
        registry.register(
            "step_undeclared_dropped",
            "Fields a step wrote without declaring them, dropped (undeclared_writes = \"drop\")",
            m.undeclared_dropped.clone(),
        );
        registry.register(
            "step_settled_batches",
            "Batches a step faulted on mostly, settled as dead letters without running each event alone",
            m.settled.clone(),
        );
        registry.register_with_unit(
            "plugin_memory_peak",
            "The most linear memory one instance of a step's plugin has held",
            Unit::Bytes,
            m.memory_peak.clone(),
        );
        registry.register(
            "batch_events",
            "Events per batch written",
            m.batch_events.clone(),
        );
        registry.register_with_unit(
            "sink_write",
            "Time to encode and commit one batch (the transaction with its offsets)",
            Unit::Seconds,
            m.write_seconds.clone(),
        );
        registry.register(
            "sink_retries",
            "Batch write attempts that failed and were retried",
            m.retries.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records between a partition's committed position and its log end (librdkafka, each second)",
            m.lag.clone(),
        );
        registry.register_with_unit(
            "freshness",
            "Kafka timestamp of an event to the commit of its batch",
            Unit::Seconds,
            m.freshness.clone(),
        );
        registry.register(
            "plugin_reloads",
            "Plugin files seen in the plugin folder, by result (accepted, rejected)",
            m.reloads.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration changes seen (file or SIGHUP), by result (applied, rejected, unchanged)",
            m.config_reloads.clone(),
        );
        registry.register(
            "canary_events",
            "Events a canary step ran in shadow, by result (same, different)",
            m.canary_events.clone(),
        );
        registry.register(
            "archive_objects_written",
            "Objects an archive pipeline uploaded (data and dead-letter files)",
            m.archive_objects.clone(),
        );
        registry.register_with_unit(
            "archive_written",
            "Bytes of the objects an archive pipeline uploaded",
            Unit::Bytes,
            m.archive_bytes.clone(),
        );
        registry.register(
            "archive_open_files",
            "Files an archive pipeline holds open (one per partition and date partition)",
            m.archive_open_files.clone(),
        );
        registry.register_with_unit(
            "archive_oldest_unflushed_age",
            "Age of the oldest event an archive pipeline has read but not yet uploaded",
            Unit::Seconds,
            m.archive_oldest.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `{pipeline}` labels.
pub fn pipeline(name: &str) -> PipelineLabels {
    PipelineLabels {
        pipeline: name.to_owned(),
    }
}

/// What readiness is made of.
#[derive(Default)]
pub struct Health {
    database: Mutex<Option<String>>,
    database_checked: AtomicBool,
    pipelines: Mutex<BTreeMap<String, PipelineHealth>>,
}

#[derive(Debug, Clone)]
struct PipelineHealth {
    joined: bool,
    brokers_up: bool,
    lag: i64,
    last_progress: Instant,
}

/// A pipeline makes no progress for this long while it lags: stalled.
const STALLED_AFTER: Duration = Duration::from_secs(30);

impl Health {
    /// The database answered (`None`) or not (the error).
    pub fn set_database(&self, error: Option<String>) {
        *self.database.lock().unwrap_or_else(|e| e.into_inner()) = error;
        self.database_checked.store(true, Ordering::Relaxed);
    }

    fn with<F: FnOnce(&mut PipelineHealth)>(&self, pipeline: &str, f: F) {
        let mut p = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        let h = p.entry(pipeline.to_owned()).or_insert(PipelineHealth {
            joined: false,
            brokers_up: false,
            lag: 0,
            last_progress: Instant::now(),
        });
        f(h);
    }

    /// A pipeline started (not yet in its group).
    pub fn started(&self, pipeline: &str) {
        self.with(pipeline, |_| {});
    }

    /// A pipeline stopped (removed from the configuration, or restarting):
    /// readiness no longer waits for it.
    pub fn stopped(&self, pipeline: &str) {
        self.pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pipeline);
    }

    /// The group gave the pipeline its partitions (possibly none).
    pub fn joined(&self, pipeline: &str) {
        self.with(pipeline, |h| {
            h.joined = true;
            h.last_progress = Instant::now();
        });
    }

    /// librdkafka's view: whether a broker is up, and the total lag.
    pub fn kafka(&self, pipeline: &str, brokers_up: bool, lag: i64) {
        self.with(pipeline, |h| {
            h.brokers_up = brokers_up;
            if lag < h.lag || lag == 0 {
                h.last_progress = Instant::now();
            }
            h.lag = lag;
        });
    }

    /// A batch of the pipeline committed.
    pub fn progressed(&self, pipeline: &str) {
        self.with(pipeline, |h| h.last_progress = Instant::now());
    }

    /// Why the process is not ready (empty: ready).
    pub fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        match &*self.database.lock().unwrap_or_else(|e| e.into_inner()) {
            _ if !self.database_checked.load(Ordering::Relaxed) => {
                why.push("database: not checked yet".to_string())
            }
            Some(e) => why.push(format!("database unreachable: {e}")),
            None => {}
        }
        for (name, h) in self
            .pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if !h.brokers_up {
                why.push(format!("pipeline `{name}`: no Kafka broker reachable"));
            }
            if !h.joined {
                why.push(format!(
                    "pipeline `{name}`: not assigned its partitions yet"
                ));
            }
            let idle = h.last_progress.elapsed();
            if h.lag > 0 && idle > STALLED_AFTER {
                why.push(format!(
                    "pipeline `{name}`: stalled: lag {} and no progress for {} s",
                    h.lag,
                    idle.as_secs()
                ));
            }
        }
        why
    }
}

/// Checks the database every second for readiness, until the process ends.
pub fn spawn_database_check(pool: mysql_async::Pool) {
    tokio::spawn(async move {
        loop {
            let result = tokio::time::timeout(Duration::from_secs(2), async {
                use mysql_async::prelude::Queryable as _;
                let mut c = pool.get_conn().await?;
                c.query_drop("SELECT 1").await
            })
            .await;
            get().health.set_database(match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("no answer within 2 s".into()),
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` until the process ends.
pub async fn serve(address: &str) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} for /metrics"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                // The request line is all that is needed; read until the headers end.
                while len < buf.len() {
                    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[len..]))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let mut parts = request.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = path.split('?').next().unwrap_or("");
                let (status, kind, body) = match (method, path) {
                    ("GET", "/metrics") => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        get().encode(),
                    ),
                    ("GET", "/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".into()),
                    ("GET", "/readyz") => {
                        let why = get().health.not_ready();
                        if why.is_empty() {
                            ("200 OK", "text/plain; charset=utf-8", "ready\n".into())
                        } else {
                            let mut body = String::from("not ready:\n");
                            for w in why {
                                let _ = writeln!(body, "- {w}");
                            }
                            ("503 Service Unavailable", "text/plain; charset=utf-8", body)
                        }
                    }
                    ("GET", _) => (
                        "404 Not Found",
                        "text/plain; charset=utf-8",
                        "try /metrics, /healthz or /readyz\n".into(),
                    ),
                    _ => (
                        "405 Method Not Allowed",
                        "text/plain; charset=utf-8",
                        "GET only\n".into(),
                    ),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(local)
}

/// GET `path` from `address` (for `weir top` and the tests): status line and body.
pub async fn fetch(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use anyhow::Context as _;
    let mut stream = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .with_context(|| format!("connecting to {address}: no answer"))?
    .with_context(|| format!("connecting to {address}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .context("reading the answer")??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}
