//! Changes while events flow: plugin files and the configuration.
//!
//! The [`Supervisor`] owns the running pipelines. One thread watches the plugin
//! folder and the configuration file (and hears SIGHUP), and handles one change
//! at a time, off the data path:
//!
//! - A `.wasm` file written (closed after writing) or renamed into the plugin
//!   folder is compiled on a background single-thread engine and checked like
//!   `weir check` checks a step (its world, its name, a pinned hash, `init` with
//!   the step's config, the chain's fields, the target table's columns), then
//!   swapped in at the next batch boundary of every writer of every step that
//!   uses it. A file failing a check is rejected with one log line and a
//!   metric; the version serving keeps serving. A half-written file is never
//!   read: creation alone is ignored, only a closed write or a rename counts. A
//!   deleted plugin keeps its last good version.
//! - A changed configuration is validated whole, as `weir check` would, before
//!   anything changes. Then: a pipeline whose steps, columns or fields changed
//!   gets new chains and a new table plan at its writers' next batch; one whose
//!   source, table or batching changed is stopped (its batches in flight
//!   committed) and started again; added pipelines start, removed ones stop.
//!   `[kafka]`, `[singlestore]`, `[metrics]`, `[lookup.*]` and the plugin
//!   folder apply only at start: a change to them rejects the file whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mysql_async::Pool;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::chain::{Chain, StepSpec};
use crate::config::diff::{ConfigDiff, PipelineChange};
use crate::config::{Config, PipelineConfig};
use crate::pipeline::{Prepared, Target};
use crate::plugin::Runtime;
use crate::sink::{offer, Slot, Swap, TablePlan};

/// Where a pipeline's result goes when it ends: its name and how it ended.
pub type Results = tokio::sync::mpsc::UnboundedSender<(String, anyhow::Result<()>)>;

/// A pipeline this process runs.
struct Live {
    config: PipelineConfig,
    steps: Vec<Arc<StepSpec>>,
    slots: Vec<Slot>,
    /// Stops this pipeline alone (a child of the process's stop).
    stop: CancellationToken,
    /// The pipeline's task, finished when its batches in flight are committed.
    task: tokio::task::JoinHandle<()>,
}

/// Why a plugin file or a configuration was not applied.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error("describe() names it `{0}`")]
    Name(String),
    #[error("{0}")]
    Fields(String),
    #[error("{0}")]
    Table(String),
}

/// The running pipelines and what they were started from.
pub struct Supervisor {
    path: PathBuf,
    config: Config,
    /// The text of the configuration applied last.
    applied: String,
    pool: Pool,
    rt: tokio::runtime::Handle,
    runtime: Option<Arc<Runtime>>,
    lookups: crate::plugin::lookup::Lookups,
    live: Vec<Live>,
    stop: CancellationToken,
    results: Results,
    tasks: TaskTracker,
}

enum Change {
    Plugin(String, PathBuf),
    PluginRemoved(String),
    Config { forced: bool },
}

impl Supervisor {
    /// `stop` stops every pipeline; `tasks` tracks the pipelines not yet
    /// ended; each pipeline's result is sent to `results`.
    pub fn new(
        config: Config,
        pool: Pool,
        lookups: crate::plugin::lookup::Lookups,
        stop: CancellationToken,
        results: Results,
        tasks: TaskTracker,
    ) -> Supervisor {
        Supervisor {
            path: config.path.clone(),
            applied: config.text.clone(),
            config,
            pool,
            rt: tokio::runtime::Handle::current(),
            runtime: None,
            lookups,
            live: Vec::new(),
            stop,
            results,
            tasks,
        }
    }

    /// Starts a prepared pipeline.
    pub fn start(&mut self, p: Prepared) {
        let stop = self.stop.child_token();
        let name = p.config.name.clone();
        let (config, steps, slots) = (p.config.clone(), p.steps.clone(), p.slots.clone());
        let (pool, results, own) = (self.pool.clone(), self.results.clone(), stop.clone());
        let _guard = self.rt.enter();
        let task = self.tasks.spawn(async move {
            let result = crate::pipeline::run(p, pool, own).await;
            let _ = results.send((name, result));
        });
        self.live.push(Live {
            config,
            steps,
            slots,
            stop,
            task,
        });
    }

    /// Watches the plugin folder and the configuration file, and listens for
    /// SIGHUP, until the process ends.
    pub fn watch(mut self) -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let plugin_dir = self.config.plugin_dir();
        let config_file = self.path.file_name().map(|f| f.to_owned());
        let config_dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let files = tx.clone();
        let dir_a = Dir::new(&plugin_dir);
        let dir_b = Dir::new(&config_dir);
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            let Ok(event) = e else { return };
            let written = matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
            );
            let removed = matches!(event.kind, EventKind::Remove(_));
            for path in event.paths {
                let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                if dir_a.holds(&dir) {
                    if let Some(name) = plugin_name(&path) {
                        if written {
                            let _ = files.send(Change::Plugin(name, path.clone()));
                        } else if removed {
                            let _ = files.send(Change::PluginRemoved(name));
                        }
                    }
                }
                if written && dir_b.holds(&dir) && path.file_name() == config_file.as_deref() {
                    let _ = files.send(Change::Config { forced: false });
                }
            }
        })
        .context("watching files")?;
        if plugin_dir.is_dir() {
            watcher
                .watch(&plugin_dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", plugin_dir.display()))?;
            info!(dir = %plugin_dir.display(), "watching the plugin folder");
        }
        watcher
            .watch(&config_dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", config_dir.display()))?;
        info!(config = %self.path.display(), "watching the configuration (also re-read on SIGHUP)");
        let hup = tx;
        self.rt.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut signals) = signal(SignalKind::hangup()) else {
                warn!("cannot listen for SIGHUP");
                return;
            };
            while signals.recv().await.is_some() {
                info!("SIGHUP: re-reading the configuration");
                if hup.send(Change::Config { forced: true }).is_err() {
                    return;
                }
            }
        });
        std::thread::Builder::new()
            .name("weir-reload".into())
            .spawn(move || {
                lower_priority();
                let _loud = PanicAlarm;
                let _watcher = watcher;
                // One write can arrive as several events: a plugin file is
                // handled once per (size, modification time), the configuration
                // once per text.
                let mut seen: std::collections::HashMap<String, (u64, std::time::SystemTime)> =
                    std::collections::HashMap::new();
                let mut seen_text = self.applied.clone();
                for change in rx {
                    match change {
                        Change::Plugin(name, path) => {
                            let Ok(meta) = std::fs::metadata(&path) else { continue };
                            let stamp =
                                (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
                            if seen.insert(name.clone(), stamp) != Some(stamp) {
                                self.plugin_changed(&name, &path);
                            }
                        }
                        Change::PluginRemoved(name) => {
                            if self.live.iter().any(|l| l.steps.iter().any(|s| s.plugin.name == name)) {
                                warn!(plugin = %name, "plugin file deleted: its last good version keeps serving");
                            }
                        }
                        Change::Config { forced } => {
                            let text = match std::fs::read_to_string(&self.path) {
                                Ok(t) => t,
                                Err(e) => {
                                    self.rejected(&format!("{}: {e}", self.path.display()));
                                    continue;
                                }
                            };
                            if !forced && text == seen_text {
                                continue;
                            }
                            seen_text = text.clone();
                            self.config_changed(text);
                        }
                    }
                    if self.stop.is_cancelled() {
                        return;
                    }
                }
            })
            .context("starting the reload thread")?;
        Ok(())
    }

    /// The background engine, made on first use.
    fn runtime(&mut self) -> anyhow::Result<Arc<Runtime>> {
        if self.runtime.is_none() {
            self.runtime = Some(Arc::new(Runtime::background(Runtime::default_cache_dir())?));
        }
        Ok(self.runtime.clone().expect("just set"))
    }

    fn plugin_changed(&mut self, name: &str, path: &Path) {
        let runtime = match self.runtime() {
            Ok(r) => r,
            Err(e) => {
                error!("cannot start the reload engine: {e:#}");
                return;
            }
        };
        for l in 0..self.live.len() {
            if !self.live[l].steps.iter().any(|s| s.plugin.name == name) {
                continue;
            }
            let pipeline = self.live[l].config.name.clone();
            let labels = |result: &str| crate::ops::metrics::ReloadLabels {
                pipeline: pipeline.clone(),
                plugin: name.to_owned(),
                result: result.to_owned(),
            };
            let started = Instant::now();
            match self.candidate(&runtime, l, name, path) {
                Ok(None) => {}
                Ok(Some((steps, plan, chains))) => {
                    let live = &mut self.live[l];
                    let old = live
                        .steps
                        .iter()
                        .find(|s| s.plugin.name == name)
                        .map(|s| s.label());
                    for (slot, chain) in live.slots.iter().zip(chains) {
                        offer(
                            slot,
                            Swap {
                                chain: Some(chain),
                                plan: Some(plan.clone()),
                            },
                        );
                    }
                    live.steps = steps;
                    let new = live
                        .steps
                        .iter()
                        .find(|s| s.plugin.name == name)
                        .map(|s| s.label());
                    crate::ops::metrics::get()
                        .reloads
                        .get_or_create(&labels("accepted"))
                        .inc();
                    info!(
                        pipeline = %pipeline, plugin = %name,
                        "plugin reloaded: {} -> {} (ready in {} ms; each writer swaps at its next batch)",
                        old.unwrap_or_default(),
                        new.unwrap_or_default(),
                        started.elapsed().as_millis()
                    );
                }
                Err(e) => {
                    crate::ops::metrics::get()
                        .reloads
                        .get_or_create(&labels("rejected"))
                        .inc();
                    warn!(pipeline = %pipeline, plugin = %name, file = %path.display(),
                          "plugin file rejected, the serving version stays: {e}");
                }
            }
        }
    }

    /// Pipeline `l`'s steps with the plugin at `path` in every step named
    /// `name`, its table plan, and one chain per writer (`None`: the file is
    /// the version serving).
    #[allow(clippy::type_complexity)]
    fn candidate(
        &self,
        runtime: &Runtime,
        l: usize,
        name: &str,
        path: &Path,
    ) -> Result<Option<(Vec<Arc<StepSpec>>, Arc<TablePlan>, Vec<Chain>)>, Rejected> {
        let live = &self.live[l];
        let kind = live
            .steps
            .iter()
            .find(|s| s.plugin.name == name)
            .map(|s| s.plugin.kind)
            .expect("the caller found the step");
        let plugin = runtime.load(path, kind)?;
        let mut steps = live.steps.clone();
        let mut changed = false;
        for step in steps.iter_mut().filter(|s| s.plugin.name == name) {
            if step.plugin.sha256 == plugin.sha256 {
                continue;
            }
            let mut spec = (**step).clone();
            spec.plugin = plugin.clone();
            spec.check_pin(path)?;
            let mut probe = spec
                .plugin
                .instantiate(spec.limits, &spec.config, &spec.grants)?;
            let described = probe
                .describe()
                .map_err(|f| crate::plugin::PluginError::Trap {
                    name: spec.plugin.name.clone(),
                    message: format!("in describe: {}", f.reason()),
                })?;
            if described.name != name {
                return Err(Rejected::Name(described.name));
            }
            spec.description = described;
            *step = Arc::new(spec);
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let index = self.index_of(&live.config.name);
        let fields = crate::chain::fields::chain_fields(&self.config, index, &steps)
            .map_err(|e| Rejected::Fields(e.to_string()))?;
        let pipeline = &self.config.pipelines[index];
        let plan = self
            .rt
            .block_on(async {
                let mut conn =
                    crate::store::db::connect(&self.pool, Duration::from_secs(15)).await?;
                TablePlan::load(&mut conn, pipeline, &fields)
                    .await
                    .map_err(anyhow::Error::from)
            })
            .map_err(|e| Rejected::Table(format!("{e:#}")))?;
        let chains = live
            .slots
            .iter()
            .map(|_| Chain::new(&steps))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((steps, Arc::new(plan), chains)))
    }

    fn index_of(&self, pipeline: &str) -> usize {
        self.config
            .pipelines
            .iter()
            .position(|p| p.name == pipeline)
            .expect("a live pipeline is in the applied configuration")
    }

    fn rejected(&self, why: &str) {
        count_config_reload("rejected");
        warn!("configuration rejected, nothing changed: {why}");
    }

    fn config_changed(&mut self, text: String) {
        if text == self.applied {
            count_config_reload("unchanged");
            info!("configuration unchanged");
            return;
        }
        let started = Instant::now();
        match self.validate(&text) {
            Ok(plan) => {
                self.apply(plan);
                self.applied = text;
                count_config_reload("applied");
                info!(
                    ms = started.elapsed().as_millis() as u64,
                    "configuration applied"
                );
            }
            Err(e) => self.rejected(&format!("{e:#}")),
        }
    }

    /// Everything a new configuration needs, checked and built before anything changes.
    fn validate(&mut self, text: &str) -> anyhow::Result<Plan> {
        let config = Config::parse(text, &self.path)?;
        let diff = ConfigDiff::between(&self.config, &config);
        if let Some(section) = diff.fixed.first() {
            anyhow::bail!(
                "{}: {section} changed, and it applies only at start; restart weir to apply it",
                self.path.display()
            );
        }
        let runtime = if config.pipelines.iter().any(|p| !p.steps.is_empty()) {
            Some(self.runtime()?)
        } else {
            None
        };
        let lookups = self.lookups.clone();
        let prepared = self.rt.block_on(async {
            let mut conn = if config.needs_database() {
                Some(
                    crate::store::db::connect(&self.pool, Duration::from_secs(15))
                        .await
                        .context("connecting to the database")?,
                )
            } else {
                None
            };
            anyhow::Ok(
                crate::pipeline::prepare_pipelines(
                    &config,
                    conn.as_mut(),
                    runtime.as_deref(),
                    &lookups,
                )
                .await?,
            )
        })?;
        let mut actions = Vec::new();
        for p in prepared {
            let action = match self
                .live
                .iter()
                .position(|l| l.config.name == p.config.name)
            {
                None => Action::Start(p),
                Some(l) if diff.change(&p.config.name) == PipelineChange::Restart => {
                    Action::Restart(l, p)
                }
                // An archive's writers hold generations of files open: a new
                // chain or layout starts with the next process of the pipeline.
                Some(l)
                    if p.config.archive.is_some()
                        && (diff.change(&p.config.name) == PipelineChange::Rechain
                            || builds_changed(&self.live[l], &p)) =>
                {
                    Action::Restart(l, p)
                }
                Some(l)
                    if diff.change(&p.config.name) == PipelineChange::Rechain
                        || builds_changed(&self.live[l], &p) =>
                {
                    let chains = if p.steps.is_empty() {
                        self.live[l].slots.iter().map(|_| None).collect()
                    } else {
                        self.live[l]
                            .slots
                            .iter()
                            .map(|_| Chain::new(&p.steps).map(Some))
                            .collect::<Result<Vec<_>, _>>()
                            .with_context(|| format!("pipeline `{}`", p.config.name))?
                    };
                    Action::Swap(l, p, chains)
                }
                Some(_) => continue,
            };
            actions.push(action);
        }
        let stopped = self
            .live
            .iter()
            .enumerate()
            .filter(|(_, l)| !config.pipelines.iter().any(|p| p.name == l.config.name))
            .map(|(i, _)| i)
            .collect();
        Ok(Plan {
            config,
            actions,
            stopped,
        })
    }

    fn apply(&mut self, plan: Plan) {
        let Plan {
            config,
            actions,
            stopped,
        } = plan;
        for &l in &stopped {
            info!(pipeline = %self.live[l].config.name, "pipeline removed from the configuration: stopping it");
            crate::pipeline::step_info(&self.live[l].config.name, &self.live[l].steps, &[]);
            self.live[l].stop.cancel();
        }
        let mut starts = Vec::new();
        let mut restarted = Vec::new();
        for action in actions {
            match action {
                Action::Start(p) => {
                    info!(pipeline = %p.config.name, "pipeline added: starting it");
                    starts.push(p);
                }
                Action::Restart(l, p) => {
                    info!(pipeline = %p.config.name,
                          "pipeline source, table or batching changed: stopping it at a batch boundary and starting it again");
                    self.live[l].stop.cancel();
                    crate::pipeline::step_info(&p.config.name, &self.live[l].steps, &[]);
                    restarted.push(l);
                    starts.push(p);
                }
                Action::Swap(l, p, chains) => {
                    let live = &mut self.live[l];
                    let Target::Table(plan) = p.target.clone() else {
                        unreachable!("archive pipelines restart instead")
                    };
                    for (slot, chain) in live.slots.iter().zip(chains) {
                        offer(
                            slot,
                            Swap {
                                chain,
                                plan: Some(plan.clone()),
                            },
                        );
                    }
                    info!(pipeline = %p.config.name, steps = ?p.steps.iter().map(|s| s.label()).collect::<Vec<_>>(),
                          "pipeline steps or columns changed: each writer swaps at its next batch");
                    crate::pipeline::step_info(&p.config.name, &live.steps, &p.steps);
                    live.steps = p.steps;
                    live.config = p.config;
                }
            }
        }
        // A restarted pipeline's consumer leaves its group before the new one joins.
        for &l in &restarted {
            let task = &mut self.live[l].task;
            // The timer is made inside the runtime: this is the reload thread.
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(120), task).await });
        }
        let mut gone: Vec<usize> = stopped.into_iter().chain(restarted).collect();
        gone.sort_unstable();
        for l in gone.into_iter().rev() {
            self.live.remove(l);
        }
        self.config = config;
        for p in starts {
            self.start(p);
        }
    }
}

struct Plan {
    config: Config,
    actions: Vec<Action>,
    stopped: Vec<usize>,
}

enum Action {
    Start(Prepared),
    Restart(usize, Prepared),
    Swap(usize, Prepared, Vec<Option<Chain>>),
}

/// Says so when the reload thread ends in a panic: the pipelines keep running,
/// but no change is applied any more until `weir` restarts.
struct PanicAlarm;

impl Drop for PanicAlarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!(
                "the reload thread stopped after a panic: plugin and configuration changes \
                 are no longer applied; restart weir to apply them"
            );
        }
    }
}

/// Counts a configuration reload with its result.
fn count_config_reload(result: &str) {
    crate::ops::metrics::get()
        .config_reloads
        .get_or_create(&crate::ops::metrics::ResultLabels {
            result: result.into(),
        })
        .inc();
}

/// Whether a step's plugin is another build than the one serving.
fn builds_changed(live: &Live, new: &Prepared) -> bool {
    let hashes = |s: &[Arc<StepSpec>]| {
        s.iter()
            .map(|s| s.plugin.sha256.clone())
            .collect::<Vec<_>>()
    };
    hashes(&live.steps) != hashes(&new.steps)
}

/// Makes the calling thread yield the cores to the data path: compiling and
/// checking a plugin runs at the lowest CPU priority (nice 19).
fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux, PRIO_PROCESS
    // with a thread id sets that thread's nice value alone.
    #[allow(unsafe_code)]
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
    if result != 0 {
        warn!(
            "cannot lower the reload thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A watched folder, as given and as resolved.
struct Dir(PathBuf, Option<PathBuf>);

impl Dir {
    fn new(dir: &Path) -> Dir {
        Dir(dir.to_owned(), dir.canonicalize().ok())
    }

    /// Whether `dir` (an event's file's folder) is this folder.
    fn holds(&self, dir: &Path) -> bool {
        dir == self.0 || (self.1.is_some() && dir.canonicalize().ok() == self.1)
    }
}

/// `NAME` of `DIR/NAME.wasm` (hidden files, such as a copy being written, are not plugins).
fn plugin_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file.strip_suffix(".wasm")?;
    (!name.starts_with('.') && !name.is_empty()).then(|| name.to_owned())
}
