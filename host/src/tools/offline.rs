//! `weir test`: a pipeline's chain run offline over captured events (JSON lines),
//! with the same engine, limits and containment as `weir run`.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use crate::chain::{load_steps, Chain, Outcome, StepStats};
use crate::config::{Config, PipelineConfig};
use crate::event::batch::Batch;
use crate::event::convert::Decoder;
use crate::pipeline::PrepareError::{self, Failed, Unusable};
use crate::plugin::Runtime;

/// What the chain made of the input.
#[derive(Debug, Default)]
pub struct Report {
    /// Kept events with their additions, one JSON object per line.
    pub kept: Vec<String>,
    /// Dead letters, one JSON object per line.
    pub dead_letters: Vec<String>,
    /// Per step: name and counts.
    pub steps: Vec<(String, StepStats)>,
    /// Events read.
    pub events: usize,
    /// Wall time of the chain alone, in nanoseconds.
    pub chain_nanos: u128,
}

/// The non-blank lines of `text`.
fn events(text: &[u8]) -> Vec<&[u8]> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

/// A batch of `lines` (offsets counting on from `offset`), which events the
/// chain must skip, and why (stage, reason) for each skipped one.
#[allow(clippy::type_complexity)]
fn read_batch(
    lines: &[&[u8]],
    offset: &mut i64,
    pipeline: &PipelineConfig,
    decoder: &Decoder,
) -> (Batch, Vec<bool>, Vec<Option<(String, String)>>) {
    let mut batch = Batch::default();
    for line in lines {
        batch.push(
            *offset,
            -1,
            None,
            line,
            pipeline.max_record_bytes,
            pipeline.dead_letter_payload_cap,
        );
        *offset += 1;
    }
    let mut skip = vec![false; batch.len()];
    let mut early: Vec<Option<(String, String)>> = vec![None; batch.len()];
    for o in &batch.oversized {
        skip[o.index] = true;
        early[o.index] = Some((
            "source".into(),
            format!(
                "oversized record: {} bytes, over max_record_bytes = {}",
                o.size, pipeline.max_record_bytes
            ),
        ));
    }
    let mut slots = Vec::new();
    for (i, e) in early.iter_mut().enumerate() {
        if e.is_none() {
            if let Err(err) = decoder.decode(batch.payload(i), &mut slots) {
                skip[i] = true;
                *e = Some(("decode".into(), err.to_string()));
            }
        }
    }
    (batch, skip, early)
}

/// What `weir plugin diff` found.
#[derive(Debug, Default)]
pub struct Diff {
    /// `NAME@VERSION#HASH` of each build.
    pub old: String,
    pub new: String,
    /// Events read, and those the step never sees (malformed, oversized).
    pub events: usize,
    pub skipped: usize,
    pub same: u64,
    pub different: u64,
    /// The first differences: event number (from 0), old answer, new answer.
    pub samples: Vec<(i64, String, String)>,
}

/// Runs two builds of one plugin over the lines of `input`, as a step of
/// `pipeline` (its config, files and lookups when it has a step of that
/// plugin), and compares their answers event by event, as a canary does.
fn diff(
    config: &Config,
    pipeline: &PipelineConfig,
    step: &crate::config::StepConfig,
    (old, new): (&Path, &Path),
    input: &Path,
    lookups: &crate::plugin::lookup::Lookups,
    samples: usize,
) -> Result<Diff, PrepareError> {
    let text = std::fs::read(input)
        .with_context(|| format!("reading {}", input.display()))
        .map_err(Failed)?;
    let runtime = Runtime::new(Runtime::default_cache_dir()).map_err(Failed)?;
    let load = |path| {
        crate::chain::load_step(&runtime, config, step, path, lookups)
            .map_err(|e| Unusable(e.into()))
    };
    let (mut live, candidate) = (load(old)?, load(new)?);
    if candidate.plugin.kind != live.plugin.kind {
        return Err(Unusable(anyhow::anyhow!(
            "{} is a {} and {} a {}",
            old.display(),
            live.plugin.kind.as_str(),
            new.display(),
            candidate.plugin.kind.as_str()
        )));
    }
    let mut report = Diff {
        old: live.label(),
        new: candidate.label(),
        ..Diff::default()
    };
    live.canary = Some(crate::chain::Canary {
        spec: std::sync::Arc::new(candidate),
        every: 1,
    });
    let mut chain = Chain::new(&[std::sync::Arc::new(live)]).map_err(|e| Unusable(e.into()))?;
    chain.canary_samples = samples;
    let decoder = Decoder::new(Vec::new());
    let lines = events(&text);
    report.events = lines.len();
    let mut offset = 0i64;
    for chunk in lines.chunks(pipeline.batch.max_events) {
        let (batch, skip, _) = read_batch(chunk, &mut offset, pipeline, &decoder);
        report.skipped += skip.iter().filter(|&&s| s).count();
        let out = chain
            .run(&pipeline.topic, &batch, &skip)
            .context("running the plugins")
            .map_err(Failed)?;
        for d in out.canary_diffs {
            if report.samples.len() < samples {
                report
                    .samples
                    .push((batch.offsets[d.event], d.live, d.candidate));
            }
        }
    }
    report.same = chain.stats[0].canary_same;
    report.different = chain.stats[0].canary_different;
    Ok(report)
}

/// A kept event as `weir test` prints it: its members with the steps'
/// additions over them, keys sorted. The event's own values are copied as
/// written (raw), never read back through `serde_json::Value`, which would
/// reinterpret serde_json's own token names in an untrusted record.
fn kept_event(payload: &[u8], additions: &Map<String, Value>) -> String {
    use serde_json::value::RawValue;
    let mut event: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(payload).unwrap_or_default();
    for (k, v) in additions {
        if let Ok(raw) = serde_json::value::to_raw_value(v) {
            event.insert(k.clone(), raw);
        }
    }
    serde_json::to_string(&event).unwrap_or_default()
}

/// Runs `pipeline`'s chain over the lines of `input`.
/// `lookups` are the configuration's tables, loaded (see [`crate::plugin::lookup::load_all`]).
fn run(
    config: &Config,
    pipeline: &PipelineConfig,
    input: &Path,
    lookups: &crate::plugin::lookup::Lookups,
) -> Result<Report, PrepareError> {
    let text = std::fs::read(input)
        .with_context(|| format!("reading {}", input.display()))
        .map_err(Failed)?;
    let runtime = Runtime::new(Runtime::default_cache_dir()).map_err(Failed)?;
    let specs =
        load_steps(&runtime, config, &pipeline.steps, lookups).map_err(|e| Unusable(e.into()))?;
    let mut chain = Chain::new(&specs).map_err(|e| Unusable(e.into()))?;
    let names = chain.names();
    let decoder = Decoder::new(Vec::new());
    let mut report = Report::default();
    let lines = events(&text);
    report.events = lines.len();
    let mut offset = 0i64;
    for chunk in lines.chunks(pipeline.batch.max_events) {
        let (batch, skip, early) = read_batch(chunk, &mut offset, pipeline, &decoder);
        let started = Instant::now();
        let out = chain
            .run(&pipeline.topic, &batch, &skip)
            .context("running the chain")
            .map_err(Failed)?;
        report.chain_nanos += started.elapsed().as_nanos();
        for (i, early) in early.iter().enumerate() {
            let dead = |stage: &str, reason: &str| {
                json!({
                    "offset": batch.offsets[i],
                    "stage": stage,
                    "reason": reason,
                    "payload": String::from_utf8_lossy(batch.payload(i)),
                })
                .to_string()
            };
            if let Some((stage, reason)) = early {
                report.dead_letters.push(dead(stage, reason));
                continue;
            }
            match &out.outcomes[i] {
                Outcome::Pass => report
                    .kept
                    .push(kept_event(batch.payload(i), &out.additions[i])),
                Outcome::Filtered { .. } => {}
                Outcome::Dead { step, reason } => {
                    report
                        .dead_letters
                        .push(dead(&format!("step:{}", names[*step]), reason));
                }
            }
        }
    }
    report.steps = names.into_iter().zip(chain.stats.iter().cloned()).collect();
    Ok(report)
}

/// `weir test`: runs the chain of `pipeline` (default: the only one) of the
/// configuration at `path` over the lines of `input`. A database is opened
/// only if a lookup table is read by a query.
pub async fn test(
    config: &Config,
    pipeline: &PipelineConfig,
    input: &Path,
) -> Result<Report, PrepareError> {
    let lookups = crate::plugin::lookup::load_offline(config)
        .await
        .map_err(Failed)?;
    tokio::task::block_in_place(|| run(config, pipeline, input, &lookups))
}

/// What `weir plugin diff` compares two builds as.
#[derive(Debug)]
pub struct DiffSetup<'a> {
    /// The configuration the step's config, files and lookups come from
    /// (`None`: a bare step, no config, files or lookups).
    pub config: Option<&'a Path>,
    /// Its pipeline (default: the only one).
    pub pipeline: Option<&'a str>,
    /// The plugin's name (default: OLD's file name without `@VERSION`).
    pub step: Option<String>,
    /// Differences kept as samples.
    pub samples: usize,
}

/// `weir plugin diff`: two builds of one plugin over the lines of `input`,
/// as a step of the configured pipeline or, without a configuration, of a
/// bare one.
pub async fn compare(
    (old, new): (&Path, &Path),
    input: &Path,
    setup: DiffSetup<'_>,
) -> Result<Diff, PrepareError> {
    let name = setup.step.unwrap_or_else(|| {
        let stem = old
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        stem.split('@').next().unwrap_or_default().replace('_', "-")
    });
    let (config, p) = match setup.config {
        Some(path) => {
            let c = Config::load(path).map_err(|e| Unusable(e.into()))?;
            let p = c
                .pick(setup.pipeline)
                .map_err(|e| Failed(anyhow::anyhow!(e)))?
                .clone();
            (c, p)
        }
        None => {
            let c = Config {
                path: std::env::current_dir()
                    .map_err(|e| Failed(e.into()))?
                    .join("weir.toml"),
                ..Config::default()
            };
            (c, PipelineConfig::bare("diff"))
        }
    };
    let step = match p.steps.iter().find(|s| s.plugin == name) {
        Some(s) => s.clone(),
        None => crate::config::StepConfig::bare(&name),
    };
    let lookups = crate::plugin::lookup::load_offline(&config)
        .await
        .map_err(Failed)?;
    tokio::task::block_in_place(|| {
        diff(
            &config,
            &p,
            &step,
            (old, new),
            input,
            &lookups,
            setup.samples,
        )
    })
}
