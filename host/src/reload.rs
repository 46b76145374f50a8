//! Hot reload of plugins: the plugin folder is watched; a `.wasm` file that
//! was written (closed after writing) or renamed into it is compiled off the
//! data path, checked like `weir check` checks a step (its world, its name,
//! `init` with the step's config, the chain's fields), and swapped in at the
//! next batch boundary of every writer of every pipeline that uses it. A file
//! failing a check is rejected with one log line and a metric; the version
//! serving keeps serving. A half-written file is never read: creation alone
//! is ignored, only a closed write or a rename counts. A deleted plugin keeps
//! its last good version.

use std::path::Path;
use std::sync::{Arc, Mutex};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tracing::{info, warn};

use crate::chain::{Chain, StepSpec};
use crate::config::Config;
use crate::plugin::Runtime;

/// Where a writer finds a new chain to use from its next batch on.
pub type Slot = Arc<Mutex<Option<Chain>>>;

/// One pipeline as the reloader sees it: its steps now, and its writers' slots.
pub struct Reloadable {
    pub index: usize,
    pub steps: Vec<Arc<StepSpec>>,
    pub slots: Vec<Slot>,
}

/// Why a file was not swapped in.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error("describe() names it `{0}`")]
    Name(String),
    #[error("{0}")]
    Fields(String),
}

/// Watches the plugin folder until the process ends.
pub fn spawn(
    config: Arc<Config>,
    runtime: Arc<Runtime>,
    mut pipelines: Vec<Reloadable>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = config.plugin_dir();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e| {
        let _ = tx.send(e);
    })
    .context("watching the plugin folder")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    info!(dir = %dir.display(), "watching the plugin folder");
    std::thread::Builder::new()
        .name("weir-reload".into())
        .spawn(move || {
            let _watcher = watcher;
            // One rename can arrive as several events: a file is handled once
            // per (size, modification time).
            let mut seen: std::collections::HashMap<String, (u64, std::time::SystemTime)> =
                std::collections::HashMap::new();
            for event in rx {
                let Ok(event) = event else { continue };
                let written = matches!(
                    event.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                );
                let removed = matches!(event.kind, EventKind::Remove(_));
                for path in &event.paths {
                    let Some(name) = plugin_name(path) else { continue };
                    if removed {
                        if pipelines.iter().any(|p| p.steps.iter().any(|s| s.plugin.name == name)) {
                            warn!(plugin = %name, "plugin file deleted: its last good version keeps serving");
                        }
                    } else if written {
                        let Ok(meta) = std::fs::metadata(path) else { continue };
                        let stamp = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
                        if seen.insert(name.clone(), stamp) == Some(stamp) {
                            continue;
                        }
                        for p in &mut pipelines {
                            reload(&config, &runtime, p, &name, path);
                        }
                    }
                }
            }
        })
        .context("starting the reload thread")?;
    Ok(())
}

/// `NAME` of `DIR/NAME.wasm` (hidden files, such as a copy being written, are not plugins).
fn plugin_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file.strip_suffix(".wasm")?;
    (!name.starts_with('.') && !name.is_empty()).then(|| name.to_owned())
}

fn reload(config: &Config, runtime: &Runtime, p: &mut Reloadable, name: &str, path: &Path) {
    let Some(at) = p.steps.iter().position(|s| s.plugin.name == name) else {
        return;
    };
    let pipeline = config.pipelines[p.index].name.clone();
    let labels = |result: &str| crate::metrics::ReloadLabels {
        pipeline: pipeline.clone(),
        plugin: name.to_owned(),
        result: result.to_owned(),
    };
    let started = std::time::Instant::now();
    match candidate(config, runtime, p, at, path) {
        Ok(None) => {}
        Ok(Some((steps, chains))) => {
            let old = p.steps[at].plugin.short_hash().to_owned();
            for (slot, chain) in p.slots.iter().zip(chains) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(chain);
            }
            p.steps = steps;
            let new = &p.steps[at];
            crate::metrics::get()
                .reloads
                .get_or_create(&labels("accepted"))
                .inc();
            info!(
                pipeline = %pipeline, plugin = %name,
                version = %new.description.version,
                "plugin reloaded: sha256 {old} -> {} (ready in {} ms; each writer swaps at its next batch)",
                new.plugin.short_hash(),
                started.elapsed().as_millis()
            );
        }
        Err(e) => {
            crate::metrics::get()
                .reloads
                .get_or_create(&labels("rejected"))
                .inc();
            warn!(pipeline = %pipeline, plugin = %name, file = %path.display(),
                  "plugin file rejected, the serving version stays: {e}");
        }
    }
}

type Ready = (Vec<Arc<StepSpec>>, Vec<Chain>);

/// The pipeline's steps with `path` at step `at`, and one chain per writer
/// (`None`: the file is the version serving).
fn candidate(
    config: &Config,
    runtime: &Runtime,
    p: &Reloadable,
    at: usize,
    path: &Path,
) -> Result<Option<Ready>, Rejected> {
    let current = &p.steps[at];
    let plugin = runtime.load(path, current.plugin.kind)?;
    if plugin.sha256 == current.plugin.sha256 {
        return Ok(None);
    }
    let mut spec = (**current).clone();
    spec.plugin = plugin;
    let mut probe = spec
        .plugin
        .instantiate(spec.limits, &spec.config, &spec.grants)?;
    let described = probe
        .describe()
        .map_err(|f| crate::plugin::PluginError::Trap {
            name: spec.plugin.name.clone(),
            message: format!("in describe: {}", f.reason()),
        })?;
    if described.name != current.plugin.name {
        return Err(Rejected::Name(described.name));
    }
    spec.description = described;
    let mut steps = p.steps.clone();
    steps[at] = Arc::new(spec);
    crate::check::chain_fields(config, p.index, &steps)
        .map_err(|e| Rejected::Fields(e.to_string()))?;
    let chains = p
        .slots
        .iter()
        .map(|_| Chain::new(&steps))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((steps, chains)))
}
