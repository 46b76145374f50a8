//! A running pipeline: its table checked, its writers started, its source polled,
//! and its progress logged, until it is told to stop; and [`reload`], the
//! supervisor that swaps steps, plans and whole pipelines while events flow.
//!
//! The control plane: it builds and wires every layer below and offers them
//! new parts; none of them imports it.

pub mod reload;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mysql_async::Pool;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, PipelineConfig};
use crate::sink::{Links, MySql, TablePlan, Writer, WriterSettings};
use crate::source::claim::Claims;
use crate::source::{self, Progress, SourceSettings};
use crate::store::db;
use crate::store::offsets::OffsetTable;

/// Why pipelines, or a chain run offline, could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The configuration, a plugin or a target table cannot be used as
    /// configured; nothing was consumed. `weir` exits with status 2.
    #[error("{0:#}")]
    Unusable(anyhow::Error),
    /// A service could not be reached or failed, or a file could not be read.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// Where a prepared pipeline writes.
#[derive(Clone)]
pub enum Target {
    /// A table, checked.
    Table(Arc<TablePlan>),
    /// Object storage, opened.
    Archive(Arc<ArchiveTarget>),
}

/// An archive pipeline's bucket and file layout.
pub struct ArchiveTarget {
    pub bucket: crate::archive::Bucket,
    pub layout: Arc<crate::archive::files::Layout>,
    pub settings: crate::archive::ArchiveSettings,
}

/// A pipeline checked against its table, ready to run.
pub struct Prepared {
    pub config: PipelineConfig,
    pub target: Target,
    pub brokers: String,
    pub properties: Vec<(String, String)>,
    pub method: crate::config::WriteMethod,
    /// The chain's steps, loaded and checked.
    pub steps: Vec<Arc<crate::chain::StepSpec>>,
    /// Per writer, where a reloaded chain waits for its next batch.
    pub slots: Vec<crate::sink::Slot>,
}

impl Prepared {
    /// The table plan of a table pipeline; an error naming the pipeline for
    /// an archive (for commands that only make sense for tables).
    pub fn table_plan(&self) -> anyhow::Result<&Arc<TablePlan>> {
        match &self.target {
            Target::Table(plan) => Ok(plan),
            Target::Archive(_) => anyhow::bail!(
                "pipeline `{}` archives to object storage; this works on table pipelines",
                self.config.name
            ),
        }
    }
}

/// Checks the database side of every pipeline before anything is consumed:
/// Weir's own tables exist, each target table has the mapped columns with types
/// that can take the values.
/// With `check_only`, nothing is created or started: Weir's tables are left
/// alone and lookup tables are loaded once, not refreshed.
pub async fn prepare(
    config: &Config,
    pool: &Pool,
    check_only: bool,
) -> Result<(Vec<Prepared>, crate::plugin::lookup::Lookups), PrepareError> {
    use PrepareError::{Failed, Unusable};
    config.brokers().map_err(|e| Unusable(e.into()))?;
    config.kafka_properties().map_err(|e| Unusable(e.into()))?;
    if !config.needs_database() {
        return prepare_without_database(config).await;
    }
    let mut conn = db::connect(pool, Duration::from_secs(15))
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database at {}",
                db::describe_url(&config.database_url().unwrap_or_default())
            )
        })
        .map_err(Failed)?;
    if !check_only {
        db::ensure_own_tables(&mut conn)
            .await
            .context("creating weir_offsets and weir_dead_letters")
            .map_err(Failed)?;
    }
    let runtime = plugin_runtime(config)?;
    let lookups = crate::plugin::lookup::load_all(config, Some(pool))
        .await
        .map_err(|e| Failed(e.into()))?;
    if !check_only {
        crate::plugin::lookup::spawn_refresh(config, &lookups, pool.clone());
    }
    let prepared = prepare_pipelines(config, Some(&mut conn), runtime.as_ref(), &lookups).await?;
    Ok((prepared, lookups))
}

/// The plugin runtime, if any pipeline has steps.
fn plugin_runtime(config: &Config) -> Result<Option<crate::plugin::Runtime>, PrepareError> {
    if !config.pipelines.iter().any(|p| !p.steps.is_empty()) {
        return Ok(None);
    }
    crate::plugin::Runtime::new(crate::plugin::Runtime::default_cache_dir())
        .map(Some)
        .map_err(PrepareError::Failed)
}

/// [`prepare`] for a configuration whose pipelines all archive, with no
/// database lookups and no dead letters to a table: no database is used.
async fn prepare_without_database(
    config: &Config,
) -> Result<(Vec<Prepared>, crate::plugin::lookup::Lookups), PrepareError> {
    use PrepareError::Failed;
    let runtime = plugin_runtime(config)?;
    let lookups = crate::plugin::lookup::load_all(config, None)
        .await
        .map_err(|e| Failed(e.into()))?;
    let prepared = prepare_pipelines(config, None, runtime.as_ref(), &lookups).await?;
    Ok((prepared, lookups))
}

/// Opens an archive pipeline's bucket and lays out its files.
fn prepare_archive(
    config: &Config,
    i: usize,
    fields: &crate::chain::fields::Fields,
) -> Result<ArchiveTarget, PrepareError> {
    use PrepareError::Unusable;
    let p = &config.pipelines[i];
    let a = p.archive.as_ref().expect("an archive pipeline");
    let at = |m: String| {
        Unusable(anyhow::anyhow!(
            "pipeline `{}` in {}: {m}",
            p.name,
            config.path.display()
        ))
    };
    let base = config.path.parent().unwrap_or(std::path::Path::new("."));
    let bucket = crate::archive::Bucket::open(a, base).map_err(|e| at(e.to_string()))?;
    let layout = crate::archive::files::Layout::new(fields, !p.fields.is_empty(), &a.time_field)
        .map_err(at)?;
    Ok(ArchiveTarget {
        bucket,
        layout: Arc::new(layout),
        settings: crate::archive::ArchiveSettings {
            pipeline: p.name.clone(),
            group: p.group().to_owned(),
            topic: p.topic.clone(),
            format: a.format,
            compression: a.compression,
            partition: a.partition.clone(),
            max_bytes: a.max_bytes,
            max_secs: a.max_secs,
            dead_letters: a.dead_letters,
            max_record_bytes: p.max_record_bytes,
            dead_letter_cap: p.dead_letter_payload_cap,
        },
    })
}

/// Loads each pipeline's steps (plugins, `init`, the chain's fields) and checks
/// its table, with lookup tables already loaded: what a running process re-does
/// for a changed configuration before applying it.
pub async fn prepare_pipelines(
    config: &Config,
    mut conn: Option<&mut mysql_async::Conn>,
    runtime: Option<&crate::plugin::Runtime>,
    lookups: &crate::plugin::lookup::Lookups,
) -> Result<Vec<Prepared>, PrepareError> {
    use PrepareError::Unusable;
    let brokers = config.brokers().map_err(|e| Unusable(e.into()))?;
    let properties = config.kafka_properties().map_err(|e| Unusable(e.into()))?;
    let mut out = Vec::new();
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = || format!("pipeline `{}` in {}", p.name, config.path.display());
        let steps = match runtime {
            Some(rt) if !p.steps.is_empty() => {
                // Plugins may read their granted files in `init`, through WASI's
                // synchronous filesystem, which must not run on a runtime thread.
                tokio::task::block_in_place(|| {
                    crate::chain::load_steps(rt, config, &p.steps, lookups)
                })
                .with_context(at)
                .map_err(Unusable)?
            }
            _ => Vec::new(),
        };
        let fields = crate::chain::fields::chain_fields(config, i, &steps)
            .map_err(|e| Unusable(e.into()))?;
        let target = match (&p.archive, conn.as_deref_mut()) {
            (Some(_), _) => Target::Archive(Arc::new(prepare_archive(config, i, &fields)?)),
            (None, Some(conn)) => Target::Table(Arc::new(
                TablePlan::load(conn, p, &fields)
                    .await
                    .with_context(at)
                    .map_err(Unusable)?,
            )),
            (None, None) => unreachable!("a table pipeline needs the database"),
        };
        out.push(Prepared {
            config: p.clone(),
            target,
            brokers: brokers.clone(),
            properties: properties.clone(),
            method: config.singlestore.write_method,
            slots: (0..p.writers).map(|_| Default::default()).collect(),
            steps,
        });
    }
    Ok(out)
}

/// `weir_step_info` for a pipeline whose steps were `old` and are now `new`.
pub fn step_info(
    pipeline: &str,
    old: &[Arc<crate::chain::StepSpec>],
    new: &[Arc<crate::chain::StepSpec>],
) {
    let labels = |n: usize, step: &crate::chain::StepSpec| crate::ops::metrics::StepInfoLabels {
        pipeline: pipeline.to_owned(),
        step: step.plugin.name.clone(),
        position: (n + 1).to_string(),
    };
    let info = &crate::ops::metrics::get().step_info;
    for (n, step) in old.iter().enumerate() {
        info.remove(&labels(n, step));
    }
    for (n, step) in new.iter().enumerate() {
        info.get_or_create(&labels(n, step)).set(1);
    }
}

/// Runs one pipeline until `stop` is cancelled; then commits what was read and returns.
pub async fn run(p: Prepared, pool: Pool, stop: CancellationToken) -> anyhow::Result<()> {
    let c = &p.config;
    let archive = match &p.target {
        Target::Archive(a) => Some(a.clone()),
        Target::Table(_) => None,
    };
    let offsets = OffsetTable::new(c.group(), &c.topic);
    let claims = Claims::default();
    let heads = crate::archive::Heads::default();
    let (notes_tx, notes_rx) = std::sync::mpsc::channel();
    let mut senders = Vec::new();
    let mut writers = tokio::task::JoinSet::new();
    step_info(&c.name, &[], &p.steps);
    for w in 0..c.writers {
        let chain = if p.steps.is_empty() {
            None
        } else {
            // `init` may read granted files through WASI's synchronous
            // filesystem, which must not run on a runtime thread.
            Some(
                tokio::task::block_in_place(|| crate::chain::Chain::new(&p.steps))
                    .with_context(|| format!("pipeline `{}`", c.name))?,
            )
        };
        let (tx, rx) = tokio::sync::mpsc::channel(c.queue);
        senders.push(tx);
        let links = Links {
            claims: claims.clone(),
            notes: notes_tx.clone(),
            reload: p.slots.get(w).cloned(),
            stop: stop.clone(),
        };
        let plan = match (&p.target, &archive) {
            (Target::Table(plan), _) => plan.clone(),
            (Target::Archive(_), Some(a)) => {
                let table = (a.settings.dead_letters == crate::config::ArchiveDeadLetters::Table)
                    .then(|| crate::archive::DeadLetterTable { pool: pool.clone() });
                let writer = crate::archive::ArchiveWriter::new(
                    a.settings.clone(),
                    a.layout.clone(),
                    a.bucket.clone(),
                    heads.clone(),
                    table,
                    chain,
                    Links {
                        reload: None,
                        ..links
                    },
                );
                writers.spawn(writer.run(rx));
                continue;
            }
            (Target::Archive(_), None) => unreachable!(),
        };
        let writer = Writer::new(
            WriterSettings {
                pipeline: c.name.clone(),
                method: p.method,
                max_record_bytes: c.max_record_bytes,
                dead_letter_cap: c.dead_letter_payload_cap,
            },
            plan,
            offsets.clone(),
            MySql::new(pool.clone(), offsets.clone()),
            chain,
            links,
        );
        writers.spawn(writer.run(rx));
    }
    drop(notes_tx);
    let settings = SourceSettings {
        pipeline: c.name.clone(),
        topic: c.topic.clone(),
        group: c.group().to_owned(),
        brokers: p.brokers.clone(),
        properties: p.properties.clone(),
        batch: c.batch.clone(),
        max_record_bytes: c.max_record_bytes,
        dead_letter_cap: c.dead_letter_payload_cap,
        pause_at: c.queue,
    };
    let progress = Arc::new(Progress::default());
    let reporter = tokio::spawn(report(c.name.clone(), progress.clone(), stop.clone()));
    let wiring = source::Wiring {
        store: match &archive {
            Some(a) => Arc::new(crate::archive::ArchivePositions {
                bucket: a.bucket.clone(),
                group: c.group().to_owned(),
                topic: c.topic.clone(),
                heads,
            }),
            None => Arc::new(source::TablePositions { offsets, pool }),
        },
        rt: tokio::runtime::Handle::current(),
        claims,
        writers: senders,
        notes: notes_rx,
        stop: stop.clone(),
        progress: progress.clone(),
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("weir-source-{}", c.name))
        .spawn(move || {
            let _ = done_tx.send(source::run(settings, wiring));
        })
        .context("starting the source thread")?;
    let result = done_rx.await.context("the source thread panicked")?;
    while let Some(ended) = writers.join_next().await {
        ended.context("a writer panicked")?;
    }
    reporter.abort();
    crate::ops::metrics::get().health.stopped(&c.name);
    info!(
        pipeline = %c.name,
        consumed = progress.consumed.load(Ordering::Relaxed),
        rows = progress.rows.load(Ordering::Relaxed),
        dead_letters = progress.dead_letters.load(Ordering::Relaxed),
        "stopped"
    );
    result.with_context(|| format!("pipeline `{}`", c.name))
}

/// Logs throughput every ten seconds while events flow.
async fn report(name: String, progress: Arc<Progress>, stop: CancellationToken) {
    let mut last = (0, 0, Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let consumed = progress.consumed.load(Ordering::Relaxed);
        let rows = progress.rows.load(Ordering::Relaxed);
        if consumed == last.0 && rows == last.1 {
            continue;
        }
        let secs = last.2.elapsed().as_secs_f64();
        info!(
            pipeline = %name,
            consumed,
            rows,
            dead_letters = progress.dead_letters.load(Ordering::Relaxed),
            "{:.0} events/s in, {:.0} rows/s written",
            (consumed - last.0) as f64 / secs,
            (rows - last.1) as f64 / secs,
        );
        last = (consumed, rows, Instant::now());
    }
}
