//! The chain: a pipeline's steps run over each batch, between source and sink.
//!
//! Each step is one call per batch (or per part of a batch, see below) into the
//! step's plugin instance. A filter keeps or drops events; an enricher adds
//! fields, kept per event as a JSON object merged over the steps. Either may
//! reject events, which become dead letters with the plugin's reason.
//!
//! Containment: when a call traps (panic, deadline, memory) or answers something
//! the contract forbids, the instance is rebuilt if the fault poisoned it, and
//! the events are retried by halves until the ones at fault are alone; those
//! become dead letters whose reason names the kind of fault, the guest's words,
//! and the plugin's name and hash. The other events of the batch flow on. A
//! looping event costs about log2(batch) deadlines, each shorter than the last.
//! The halving itself is [`contain`]'s, tested apart from any plugin.
//!
//! [`fields`] follows the fields through the steps for `weir check` and the
//! table plan. Uses `plugin`, `event`, `store` (SQL quoting) and `config`.

mod contain;
pub mod fields;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::event::batch::Batch;
use crate::plugin::{Fault, Instance, Kind, Limits, Plugin, PluginError, RetryLater, WitBatch};

/// One configured step: a plugin, its config and its limits.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub plugin: Plugin,
    pub config: Vec<(String, String)>,
    pub limits: Limits,
    /// The step's granted files and lookup tables.
    pub grants: crate::plugin::Grants,
    /// What a fault does.
    pub on_fault: crate::config::FaultPolicy,
    /// What a field the plugin writes without declaring it does.
    pub undeclared_writes: crate::config::UndeclaredWrites,
    /// What the plugin said it is, reads and writes.
    pub description: crate::plugin::Description,
    /// The hash (prefix) the step pins, if any.
    pub pin: Option<String>,
    /// A candidate build run in shadow on a share of batches.
    pub canary: Option<Canary>,
}

/// The longest plugin version shown in labels, logs and dead letters.
const MAX_VERSION: usize = 64;

/// A candidate build of a step's plugin, run in shadow.
#[derive(Debug, Clone)]
pub struct Canary {
    /// The step with the candidate's plugin (same config, limits and grants).
    pub spec: Arc<StepSpec>,
    /// It runs on one batch in this many.
    pub every: u64,
}

impl StepSpec {
    /// `NAME@VERSION#HASH`: which build of which plugin this step runs (the
    /// version as the plugin describes it, escaped and cut to 64 bytes).
    pub fn label(&self) -> String {
        format!(
            "{}@{}#{}",
            self.plugin.name,
            self.version(),
            self.plugin.short_hash()
        )
    }

    /// The plugin's own version, safe to print: escaped, at most 64 bytes.
    pub fn version(&self) -> String {
        crate::plugin::guest_text(&self.description.version, MAX_VERSION)
    }

    /// Whether the plugin declared that it writes `field`.
    fn declares(&self, field: &str) -> bool {
        self.description.writes.iter().any(|w| w.name == field)
    }

    /// Refuses a plugin whose hash is not the one the step pins.
    pub fn check_pin(&self, path: &std::path::Path) -> Result<(), PluginError> {
        match &self.pin {
            Some(pin) if !self.plugin.sha256.starts_with(&pin.to_ascii_lowercase()) => {
                Err(PluginError::Pin {
                    name: self.plugin.name.clone(),
                    path: path.to_owned(),
                    sha256: self.plugin.sha256.clone(),
                    pinned: pin.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}

impl StepSpec {
    /// A step of `plugin` with no config or grants, the default limits, faults
    /// dead-lettered and the plugin's own description (for benchmarks and
    /// tests; an empty one if `describe` fails).
    pub fn bare(plugin: Plugin) -> StepSpec {
        let description = plugin
            .instantiate(Limits::default(), &[], &Default::default())
            .ok()
            .and_then(|mut inst| inst.describe().ok())
            .unwrap_or_else(|| crate::plugin::Description {
                name: plugin.name.clone(),
                version: String::new(),
                reads: Vec::new(),
                writes: Vec::new(),
            });
        StepSpec {
            description,
            plugin,
            config: Vec::new(),
            limits: Limits::default(),
            grants: crate::plugin::Grants::default(),
            on_fault: crate::config::FaultPolicy::DeadLetter,
            undeclared_writes: crate::config::UndeclaredWrites::DeadLetter,
            pin: None,
            canary: None,
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It went through every step.
    Pass,
    /// A filter dropped it (counted, not written).
    Filtered { step: usize },
    /// A step refused it or failed on it: a dead letter.
    Dead { step: usize, reason: String },
}

/// Per step: events in, kept, dropped, dead letters, time spent.
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    pub events_in: u64,
    pub kept: u64,
    pub dropped: u64,
    pub dead_letters: u64,
    pub faults: u64,
    /// Fields written without being declared, dropped (`undeclared_writes = "drop"`).
    pub undeclared_dropped: u64,
    /// Batches settled without running every event alone (see [`Chain::run`]).
    pub settled: u64,
    /// The most memory one of the step's instances has held, in bytes.
    pub memory_peak: usize,
    /// Faults by kind (see [`Fault::kind`]).
    pub traps: std::collections::BTreeMap<&'static str, u64>,
    pub time: Duration,
    /// Events the step's canary answered as the step did, and otherwise.
    pub canary_same: u64,
    pub canary_different: u64,
}

impl StepStats {
    /// Records what containment found in step `step`'s outcomes.
    fn contained(&mut self, step: usize, found: contain::Contained, out: &mut ChainOutput) {
        for (i, reason) in found.dead {
            out.outcomes[i] = Outcome::Dead { step, reason };
            self.dead_letters += 1;
        }
        if let Some((events, reason)) = found.settled {
            self.settled += 1;
            for i in events {
                out.outcomes[i] = Outcome::Dead {
                    step,
                    reason: reason.clone(),
                };
                self.dead_letters += 1;
            }
        }
    }
}

/// An event the canary answered differently from the live step.
#[derive(Debug, Clone)]
pub struct CanaryDiff {
    pub step: usize,
    /// The event's index in the batch.
    pub event: usize,
    /// What the live step did, and what the candidate would have done.
    pub live: String,
    pub candidate: String,
}

/// The chain's answer for a batch.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Per event of the batch.
    pub outcomes: Vec<Outcome>,
    /// Per event, the fields the steps added (empty: none).
    pub additions: Vec<Map<String, Value>>,
    /// Canary differences found in this batch (the first few).
    pub canary_diffs: Vec<CanaryDiff>,
}

/// A worker's instances of a chain's steps.
pub struct Chain {
    steps: Vec<(Arc<StepSpec>, Instance)>,
    /// Per step, its canary's instance and the batches seen.
    shadows: Vec<Option<(Instance, u64)>>,
    pub stats: Vec<StepStats>,
    /// At most this many canary differences are kept per batch.
    pub canary_samples: usize,
}

/// Why a chain could not run a batch now.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A plugin asked for the batch to be retried later.
    #[error("plugin `{plugin}` asked to retry later: {reason}")]
    RetryLater { plugin: String, reason: String },
    /// A step whose policy is to pause faulted: the batch is held.
    #[error("plugin `{plugin}` faulted and its step pauses on faults: {reason}")]
    Paused { plugin: String, reason: String },
    /// An instance could not be rebuilt after a fault.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl Chain {
    /// Instantiates every step (calling `init` with its config).
    pub fn new(specs: &[Arc<StepSpec>]) -> Result<Chain, PluginError> {
        let mut steps = Vec::new();
        let mut shadows = Vec::new();
        for spec in specs {
            let inst = spec
                .plugin
                .instantiate(spec.limits, &spec.config, &spec.grants)?;
            steps.push((spec.clone(), inst));
            shadows.push(match &spec.canary {
                Some(c) => Some((
                    c.spec
                        .plugin
                        .instantiate(c.spec.limits, &c.spec.config, &c.spec.grants)?,
                    0,
                )),
                None => None,
            });
        }
        Ok(Chain {
            stats: vec![StepStats::default(); steps.len()],
            steps,
            shadows,
            canary_samples: 3,
        })
    }

    /// The steps' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|(s, _)| s.plugin.name.clone())
            .collect()
    }

    /// The chain's version label: each step's `NAME@VERSION#HASH`, comma-separated
    /// (what an `@chain` column and a dead letter's `chain` record).
    pub fn version(&self) -> String {
        let labels: Vec<String> = self.steps.iter().map(|(s, _)| s.label()).collect();
        labels.join(",")
    }

    /// The label of step `step`'s canary, if it has one.
    pub fn canary_label(&self, step: usize) -> Option<String> {
        self.steps[step].0.canary.as_ref().map(|c| c.spec.label())
    }

    /// `NAME VERSION (sha256 HASH)`: the plugin of a step as logs name it.
    pub fn plugin_label(&self, step: usize) -> String {
        let spec = &self.steps[step].0;
        format!(
            "{} {} (sha256 {})",
            spec.plugin.name,
            spec.version(),
            spec.plugin.short_hash()
        )
    }

    /// The step label a dead letter carries: `step:NAME`.
    pub fn stage(&self, step: usize) -> String {
        format!("step:{}", self.steps[step].0.plugin.name)
    }

    /// Runs every step over the events of `batch` not in `skip`.
    pub fn run(
        &mut self,
        topic: &str,
        batch: &Batch,
        skip: &[bool],
    ) -> Result<ChainOutput, ChainError> {
        let n = batch.len();
        let mut out = ChainOutput {
            outcomes: vec![Outcome::Pass; n],
            additions: vec![Map::new(); n],
            canary_diffs: Vec::new(),
        };
        let mut alive: Vec<usize> = (0..n)
            .filter(|&i| !skip.get(i).copied().unwrap_or(false))
            .collect();
        for step in 0..self.steps.len() {
            if alive.is_empty() {
                break;
            }
            let started = Instant::now();
            self.stats[step].events_in += alive.len() as u64;
            let shadow = self.shadow(step, topic, batch, &alive, &out.additions);
            let before: Vec<Map<String, Value>> = match shadow {
                Some(_) => alive.iter().map(|&i| out.additions[i].clone()).collect(),
                None => Vec::new(),
            };
            // Containment: the events at fault become dead letters, the
            // others' answers stand.
            let found = contain::contain(&alive, |part| {
                let fault = self.call(step, topic, batch, part, &mut out)?;
                Ok::<_, ChainError>(fault.map(|f| fault_reason(&self.steps[step].0.plugin, &f)))
            })?;
            self.stats[step].contained(step, found, &mut out);
            if let Some(candidate) = shadow {
                self.compare(step, &alive, &before, candidate, &mut out);
            }
            alive.retain(|&i| out.outcomes[i] == Outcome::Pass);
            let peak = self.steps[step].1.memory_peak();
            let st = &mut self.stats[step];
            st.kept += alive.len() as u64;
            st.time += started.elapsed();
            st.memory_peak = st.memory_peak.max(peak);
        }
        Ok(out)
    }

    /// One call of step `step` over the events `idx`, its answer applied to
    /// `out`. A fault is returned (the instance rebuilt if it was poisoned),
    /// unless the step pauses on faults.
    fn call(
        &mut self,
        step: usize,
        topic: &str,
        batch: &Batch,
        idx: &[usize],
        out: &mut ChainOutput,
    ) -> Result<Option<crate::plugin::Fault>, ChainError> {
        let wit = wit_batch(topic, batch, idx, &out.additions);
        let (spec, inst) = &mut self.steps[step];
        let kind = spec.plugin.kind;
        let answer = match kind {
            Kind::Filter => inst.keep(&wit).map(|r| r.map(Answer::Keep)),
            Kind::Enricher => inst.enrich(&wit).map(|r| r.map(Answer::Add)),
        };
        match answer {
            Ok(Ok(Answer::Keep((keep, rejected)))) => {
                for (k, &i) in keep.iter().zip(idx) {
                    if !k {
                        out.outcomes[i] = Outcome::Filtered { step };
                        self.stats[step].dropped += 1;
                    }
                }
                self.reject(step, idx, rejected, out);
                Ok(None)
            }
            Ok(Ok(Answer::Add(add))) => {
                for (fields, &i) in add.fields.into_iter().zip(idx) {
                    match fields.and_then(|f| self.declared(step, f)) {
                        Ok(fields) => out.additions[i].extend(fields),
                        Err(message) => {
                            let plugin = &self.steps[step].0.plugin;
                            let reason =
                                fault_reason(plugin, &crate::plugin::Fault::BadResult { message });
                            out.outcomes[i] = Outcome::Dead { step, reason };
                            self.stats[step].dead_letters += 1;
                        }
                    }
                }
                self.reject(step, idx, add.rejected, out);
                Ok(None)
            }
            Ok(Err(RetryLater { reason })) => Err(ChainError::RetryLater {
                plugin: spec.plugin.name.clone(),
                reason: crate::plugin::guest_text(&reason, 1000),
            }),
            Err(fault) => {
                self.stats[step].faults += 1;
                *self.stats[step].traps.entry(fault.kind()).or_default() += 1;
                if fault.poisons() {
                    let config = spec.config.clone();
                    inst.rebuild(&config)?;
                }
                if spec.on_fault == crate::config::FaultPolicy::Pause {
                    return Err(ChainError::Paused {
                        plugin: spec.plugin.name.clone(),
                        reason: fault_reason(&spec.plugin, &fault),
                    });
                }
                Ok(Some(fault))
            }
        }
    }

    /// An event's additions from step `step`, held to what the step declared:
    /// an undeclared field makes the event a dead letter, or, where the step
    /// says `undeclared_writes = "drop"`, is removed and counted.
    fn declared(
        &mut self,
        step: usize,
        mut fields: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let spec = &self.steps[step].0;
        if fields.keys().all(|k| spec.declares(k)) {
            return Ok(fields);
        }
        match spec.undeclared_writes {
            crate::config::UndeclaredWrites::DeadLetter => {
                let undeclared: Vec<String> = fields
                    .keys()
                    .filter(|k| !spec.declares(k))
                    .take(5)
                    .map(|k| format!("`{}`", crate::plugin::guest_text(k, 64)))
                    .collect();
                let declared: Vec<&str> = spec
                    .description
                    .writes
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect();
                Err(format!(
                    "wrote {} without declaring it (describe() declares writes: {})",
                    undeclared.join(", "),
                    if declared.is_empty() {
                        "none".to_owned()
                    } else {
                        crate::plugin::guest_text(&declared.join(", "), 200)
                    }
                ))
            }
            crate::config::UndeclaredWrites::Drop => {
                let before = fields.len();
                fields.retain(|k, _| spec.declares(k));
                self.stats[step].undeclared_dropped += (before - fields.len()) as u64;
                Ok(fields)
            }
        }
    }

    fn reject(
        &mut self,
        step: usize,
        idx: &[usize],
        rejected: Vec<crate::plugin::Rejection>,
        out: &mut ChainOutput,
    ) {
        let name = &self.steps[step].0.plugin.name;
        for r in rejected {
            let i = idx[r.index as usize];
            match out.outcomes[i] {
                Outcome::Pass => self.stats[step].dead_letters += 1,
                // Dropped and rejected by the same answer: a dead letter, as
                // the contract says, and counted as one.
                Outcome::Filtered { step: s } if s == step => {
                    self.stats[step].dropped -= 1;
                    self.stats[step].dead_letters += 1;
                }
                _ => {}
            }
            out.outcomes[i] = Outcome::Dead {
                step,
                reason: format!(
                    "rejected by `{name}`: {}",
                    crate::plugin::guest_text(&r.reason, 1000)
                ),
            };
        }
    }
}

enum Answer {
    Keep(crate::plugin::Keep),
    Add(crate::plugin::Enriched),
}

/// What a step did with one event, as canaries compare it.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Kept, setting these fields (to values they did not already have).
    Kept(Map<String, Value>),
    Dropped,
    Refused(String),
    Fault(String),
}

impl Verdict {
    fn describe(&self) -> String {
        match self {
            Verdict::Kept(m) if m.is_empty() => "kept".into(),
            Verdict::Kept(m) => format!("kept, sets {}", Value::Object(m.clone())),
            Verdict::Dropped => "dropped".into(),
            Verdict::Refused(r) => format!("refused: {r}"),
            Verdict::Fault(f) => format!("fault: {f}"),
        }
    }
}

/// The fields of `set` whose values differ from those in `before`.
fn changed(
    before: &Map<String, Value>,
    set: impl IntoIterator<Item = (String, Value)>,
) -> Map<String, Value> {
    set.into_iter()
        .filter(|(k, v)| before.get(k) != Some(v))
        .collect()
}

impl Chain {
    /// If step `step` has a canary and this batch is one of its share: the
    /// candidate's verdict on each event of `idx`.
    fn shadow(
        &mut self,
        step: usize,
        topic: &str,
        batch: &Batch,
        idx: &[usize],
        additions: &[Map<String, Value>],
    ) -> Option<Vec<Verdict>> {
        let every = self.steps[step].0.canary.as_ref()?.every;
        let (inst, seen) = self.shadows[step].as_mut()?;
        *seen += 1;
        if (*seen - 1) % every != 0 {
            return None;
        }
        let wit = wit_batch(topic, batch, idx, additions);
        let spec = &self.steps[step].0.canary.as_ref()?.spec;
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(idx.len());
        let rejected = match spec.plugin.kind {
            Kind::Filter => inst.keep(&wit).map(|r| {
                r.map(|(keep, rejected)| {
                    verdicts.extend(keep.iter().map(|&k| {
                        if k {
                            Verdict::Kept(Map::new())
                        } else {
                            Verdict::Dropped
                        }
                    }));
                    rejected
                })
            }),
            Kind::Enricher => inst.enrich(&wit).map(|r| {
                r.map(|add| {
                    for (set, &i) in add.fields.into_iter().zip(idx) {
                        verdicts.push(match set {
                            Ok(set) => Verdict::Kept(changed(&additions[i], set)),
                            Err(message) => {
                                Verdict::Fault(crate::plugin::Fault::BadResult { message }.reason())
                            }
                        });
                    }
                    add.rejected
                })
            }),
        };
        match rejected {
            Ok(Ok(rejected)) => {
                verdicts.resize_with(idx.len(), || Verdict::Fault("no answer".into()));
                for r in rejected {
                    if let Some(v) = verdicts.get_mut(r.index as usize) {
                        *v = Verdict::Refused(crate::plugin::guest_text(&r.reason, 1000));
                    }
                }
            }
            Ok(Err(RetryLater { reason })) => {
                verdicts = idx
                    .iter()
                    .map(|_| Verdict::Fault(format!("asked to retry later: {reason}")))
                    .collect();
            }
            Err(fault) => {
                if fault.poisons() {
                    let config = spec.config.clone();
                    let _ = inst.rebuild(&config);
                }
                verdicts = idx.iter().map(|_| Verdict::Fault(fault.reason())).collect();
            }
        }
        Some(verdicts)
    }

    /// Compares the live step's verdicts on `idx` (from `out`, with `before`,
    /// the additions before the step) with its canary's.
    fn compare(
        &mut self,
        step: usize,
        idx: &[usize],
        before: &[Map<String, Value>],
        candidate: Vec<Verdict>,
        out: &mut ChainOutput,
    ) {
        let prefix = format!("rejected by `{}`: ", self.steps[step].0.plugin.name);
        for ((&i, was), theirs) in idx.iter().zip(before).zip(candidate) {
            let ours = match &out.outcomes[i] {
                Outcome::Pass => Verdict::Kept(changed(
                    was,
                    out.additions[i].iter().map(|(k, v)| (k.clone(), v.clone())),
                )),
                Outcome::Filtered { .. } => Verdict::Dropped,
                Outcome::Dead { reason, .. } => match reason.strip_prefix(&prefix) {
                    Some(r) => Verdict::Refused(r.to_owned()),
                    None => Verdict::Fault(reason.clone()),
                },
            };
            if ours == theirs {
                self.stats[step].canary_same += 1;
                continue;
            }
            self.stats[step].canary_different += 1;
            if out.canary_diffs.len() < self.canary_samples {
                out.canary_diffs.push(CanaryDiff {
                    step,
                    event: i,
                    live: ours.describe(),
                    candidate: theirs.describe(),
                });
            }
        }
    }
}

/// `plugin `NAME` (sha256 0123456789ab) panic: boom`.
pub fn fault_reason(plugin: &Plugin, fault: &Fault) -> String {
    format!(
        "plugin `{}` (sha256 {}) {}",
        plugin.name,
        plugin.short_hash(),
        fault.reason()
    )
}

/// The events `idx` of `batch` as the WIT batch, with the fields set so far.
fn wit_batch(
    topic: &str,
    batch: &Batch,
    idx: &[usize],
    additions: &[Map<String, Value>],
) -> WitBatch {
    let mut w = WitBatch {
        topic: topic.to_owned(),
        payloads: Vec::with_capacity(idx.len() * 256),
        payload_ends: Vec::with_capacity(idx.len()),
        keys: Vec::new(),
        key_ends: Vec::with_capacity(idx.len()),
        fields: Vec::new(),
        field_ends: Vec::with_capacity(idx.len()),
        timestamps_ms: Vec::with_capacity(idx.len()),
        partitions: Vec::with_capacity(idx.len()),
        offsets: Vec::with_capacity(idx.len()),
    };
    for &i in idx {
        w.payloads.extend_from_slice(batch.payload(i));
        w.payload_ends.push(w.payloads.len() as u32);
        w.keys.extend_from_slice(batch.key(i).unwrap_or_default());
        w.key_ends.push(w.keys.len() as u32);
        if !additions[i].is_empty() {
            let _ = serde_json::to_writer(&mut w.fields, &additions[i]);
        }
        w.field_ends.push(w.fields.len() as u32);
        w.timestamps_ms.push(batch.timestamps[i]);
        w.partitions.push(batch.partition);
        w.offsets.push(batch.offsets[i]);
    }
    w
}

/// Loads the steps of a pipeline from the plugin folder: `NAME.wasm` for each
/// step, its world found by trying filter then enricher, and its `describe`
/// checked against its name (an instance is made and `init` called, so a bad
/// config fails here, before anything is consumed). A step's candidate
/// (`NAME@VERSION.wasm`) is loaded the same way, as its canary.
pub fn load_steps(
    runtime: &crate::plugin::Runtime,
    config: &crate::config::Config,
    steps: &[crate::config::StepConfig],
    lookups: &crate::plugin::lookup::Lookups,
) -> Result<Vec<Arc<StepSpec>>, PluginError> {
    let dir = config.plugin_dir();
    let mut out = Vec::new();
    for step in steps {
        let path = dir.join(format!("{}.wasm", step.plugin));
        let mut spec = load_step(runtime, config, step, &path, lookups)?;
        spec.check_pin(&path)?;
        if let Some(candidate) = &step.candidate {
            let path = dir.join(candidate);
            let c = load_step(runtime, config, step, &path, lookups)?;
            if c.plugin.kind != spec.plugin.kind {
                return Err(PluginError::World {
                    path,
                    kind: spec.plugin.kind,
                    message: format!(
                        "the candidate of a {} step must be one too",
                        spec.plugin.kind.as_str()
                    ),
                });
            }
            spec.canary = Some(Canary {
                spec: Arc::new(c),
                every: (1.0 / step.canary_share).round().max(1.0) as u64,
            });
        }
        out.push(Arc::new(spec));
    }
    Ok(out)
}

/// A filter or an enricher from `path`: the filter world is tried first.
pub fn load_plugin(
    runtime: &crate::plugin::Runtime,
    path: &std::path::Path,
) -> Result<Plugin, PluginError> {
    match runtime.load(path, Kind::Filter) {
        Ok(p) => Ok(p),
        Err(PluginError::World { .. }) => runtime.load(path, Kind::Enricher).map_err(|e| match e {
            PluginError::World { path, message, .. } => PluginError::World {
                path,
                kind: Kind::Enricher,
                message: format!("neither a filter nor an enricher: {message}"),
            },
            other => other,
        }),
        Err(e) => Err(e),
    }
}

/// Step `n` (`step`) of a pipeline with the plugin at `path`: its files staged,
/// its lookups granted, an instance made and `init` called, and `describe`
/// checked to name the step's plugin.
pub fn load_step(
    runtime: &crate::plugin::Runtime,
    config: &crate::config::Config,
    step: &crate::config::StepConfig,
    path: &std::path::Path,
    lookups: &crate::plugin::lookup::Lookups,
) -> Result<StepSpec, PluginError> {
    let plugin = load_plugin(runtime, path)?;
    let mut init: Vec<(String, String)> = step
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let files = stage_files(config, step, &mut init)?;
    let mut spec = StepSpec {
        description: crate::plugin::Description {
            name: String::new(),
            version: String::new(),
            reads: Vec::new(),
            writes: Vec::new(),
        },
        plugin,
        grants: crate::plugin::Grants {
            files,
            lookups: crate::plugin::lookup::granted(lookups, &step.lookups),
        },
        on_fault: step.on_fault,
        undeclared_writes: step.undeclared_writes,
        pin: step.sha256.clone(),
        canary: None,
        config: init,
        limits: Limits {
            memory_bytes: step.limits.memory_mb << 20,
            event_budget: Duration::from_micros(step.limits.event_budget_us),
            min_deadline: Duration::from_millis(step.limits.min_deadline_ms),
            init_deadline: Duration::from_millis(step.limits.init_ms),
            max_handles: step.limits.handles,
        },
    };
    let mut probe = spec
        .plugin
        .instantiate(spec.limits, &spec.config, &spec.grants)?;
    let described = probe.describe().map_err(|f| PluginError::Trap {
        name: spec.plugin.name.clone(),
        message: format!("in describe: {}", f.reason()),
    })?;
    if described.name != step.plugin {
        return Err(PluginError::Name {
            name: step.plugin.clone(),
            path: path.to_owned(),
            described: crate::plugin::guest_text(&described.name, 128),
        });
    }
    check_fields(&described).map_err(|message| PluginError::Describe {
        name: step.plugin.clone(),
        message,
    })?;
    spec.description = described;
    // A candidate's file is `NAME@VERSION.wasm`; it is still plugin NAME.
    spec.plugin.name = step.plugin.clone();
    Ok(spec)
}

/// The longest field name a plugin may declare: MySQL's and SingleStore's
/// longest column name.
const MAX_FIELD_NAME: usize = 64;

/// A description's fields must have names a column can take: 1 to 64
/// characters, none of them a control character.
fn check_fields(d: &crate::plugin::Description) -> Result<(), String> {
    for (what, f) in d
        .reads
        .iter()
        .map(|f| ("reads", f))
        .chain(d.writes.iter().map(|f| ("writes", f)))
    {
        let n = f.name.chars().count();
        if n == 0 || n > MAX_FIELD_NAME || f.name.chars().any(char::is_control) {
            return Err(format!(
                "describe() {what} a field named `{}`: a field name must be 1 to {MAX_FIELD_NAME} characters, none of them a control character",
                crate::plugin::guest_text(&f.name, 128)
            ));
        }
    }
    Ok(())
}

/// Copies a step's granted files into a private folder (0700, removed when the
/// step's last instance is gone) and tells the plugin where they are:
/// `file.NAME = /weir/files/NAME` in its config. The guest sees the folder
/// read-only.
fn stage_files(
    config: &crate::config::Config,
    step: &crate::config::StepConfig,
    init: &mut Vec<(String, String)>,
) -> Result<Option<Arc<crate::plugin::Staged>>, PluginError> {
    if step.files.is_empty() {
        return Ok(None);
    }
    let fail = |path: &std::path::Path, e: std::io::Error| PluginError::Read {
        path: path.to_owned(),
        source: e,
    };
    let staged =
        crate::plugin::Staged::new(&step.plugin).map_err(|e| fail(&std::env::temp_dir(), e))?;
    for file in &step.files {
        let source = config
            .step_file(file)
            .map_err(|message| PluginError::Read {
                path: file.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, message),
            })?;
        let name = source
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = staged.path().join(&name);
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(|e| fail(&source, e))?;
        }
        init.push((
            format!("file.{name}"),
            format!("{}/{name}", crate::plugin::GUEST_FILES),
        ));
    }
    Ok(Some(Arc::new(staged)))
}
