//! The plugin runtime: filters and enrichers as WebAssembly components behind the
//! `weir:plugin` WIT contract (`wit/plugin.wit`), run in batches in a sandbox.
//!
//! - One [`Runtime`] per process: a wasmtime engine with epoch interruption and
//!   `concurrency_support` off, a thread ticking the epoch every millisecond, and
//!   a cache of precompiled artifacts keyed by the component's SHA-256 and the
//!   engine's `precompile_compatibility_hash`.
//! - A [`Plugin`] is a loaded component, checked against the world its kind
//!   expects and pre-instantiated (`InstancePre`).
//! - An [`Instance`] is one long-lived store and instance per plugin and worker.
//!   Every call gets an epoch deadline of a per-event budget times the batch
//!   size, and the store a memory cap that traps when reached. No ambient
//!   capability: no environment, arguments, sockets or files; clocks and
//!   randomness only. Standard output and error are captured per call.
//!
//! Architecture Invariant: nothing a guest does can take the host down. A trap
//! poisons only its instance, which the caller rebuilds from the `InstancePre`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Bindings generated from `wit/plugin.wit`.
pub mod bindings {
    /// The `filter-plugin` world.
    pub mod filter {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "filter-plugin",
        });
    }
    /// The `enricher-plugin` world, sharing the host and type interfaces.
    pub mod enricher {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "enricher-plugin",
            with: {
                "weir:plugin/types": super::filter::weir::plugin::types,
                "weir:plugin/host": super::filter::weir::plugin::host,
            },
        });
    }
}

use bindings::filter::weir::plugin::host::Level;
pub use bindings::filter::weir::plugin::types::{
    Additions, Batch as WitBatch, Description, FieldSpec, FieldType, Rejection, RetryLater,
};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Enricher,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Enricher => "enricher",
        }
    }
}

/// Limits of one step's instances.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget per event; a call's deadline is this times its batch size.
    pub event_budget: Duration,
    /// The smallest deadline of a call, however small its batch.
    pub min_deadline: Duration,
    /// The deadline of `init` (which may load a file or a model).
    pub init_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            event_budget: Duration::from_micros(200),
            min_deadline: Duration::from_millis(100),
            init_deadline: Duration::from_secs(10),
        }
    }
}

/// The engine every plugin runs in.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    compat: u64,
}

/// Milliseconds per epoch tick.
const TICK: Duration = Duration::from_millis(1);

impl Runtime {
    /// The engine, with its epoch ticker. `cache_dir` holds precompiled artifacts.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        Runtime::build(cache_dir, true)
    }

    /// An engine for compiling while events flow: on one thread, so that the
    /// data path keeps the other cores (used by the plugin reloader).
    pub fn background(cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        Runtime::build(cache_dir, false)
    }

    fn build(cache_dir: Option<PathBuf>, parallel: bool) -> anyhow::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .parallel_compilation(parallel)
            .concurrency_support(false);
        let engine =
            Engine::new(&config).map_err(|e| anyhow::anyhow!("creating the wasm engine: {e:#}"))?;
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compat = h.finish();
        // One ticker per engine; it ends when the engine is dropped.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .context("starting the epoch ticker")?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the artifact cache {}", dir.display()))?;
        }
        Ok(Runtime {
            engine,
            cache_dir,
            compat,
        })
    }

    /// The default artifact cache: `$WEIR_CACHE` or `~/.cache/weir`, under `artifacts/`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let base = std::env::var_os("WEIR_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/weir")))?;
        Some(base.join("artifacts"))
    }

    /// Loads a plugin file, compiling it or reusing its cached artifact, and checks
    /// that it implements `kind`'s world of this contract version.
    pub fn load(&self, path: &Path, kind: Kind) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        let sha256 = crate::batch::sha256_hex(&bytes);
        let component = self
            .component(&bytes, &sha256)
            .map_err(|e| PluginError::Compile {
                path: path.to_owned(),
                message: format!("{e:#}"),
            })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut linker: Linker<HostState> = Linker::new(&self.engine);
        let wrong_world = |e: wasmtime::Error| PluginError::World {
            path: path.to_owned(),
            kind,
            message: format!("{e:#}"),
        };
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wrong_world)?;
        refuse_blocking_calls(&mut linker).map_err(wrong_world)?;
        let pre = match kind {
            Kind::Filter => {
                bindings::filter::FilterPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
                    &mut linker,
                    |s| s,
                )
                .map_err(wrong_world)?;
                let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
                Pre::Filter(bindings::filter::FilterPluginPre::new(pre).map_err(wrong_world)?)
            }
            Kind::Enricher => {
                bindings::enricher::EnricherPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
                    &mut linker,
                    |s| s,
                )
                .map_err(wrong_world)?;
                let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
                Pre::Enricher(bindings::enricher::EnricherPluginPre::new(pre).map_err(wrong_world)?)
            }
        };
        Ok(Plugin {
            name,
            sha256,
            kind,
            pre: Arc::new(pre),
            engine: self.engine.clone(),
        })
    }

    fn component(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Component::from_binary(&self.engine, bytes);
        };
        let artifact = dir.join(format!("{sha256}-{:016x}.cwasm", self.compat));
        if artifact.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine
            // with the same compatibility hash (it is in the name), under the
            // SHA-256 of the component it came from; Weir writes nothing else there.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &artifact) };
            if let Ok(c) = loaded {
                return Ok(c);
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &compiled).is_ok() {
            let _ = std::fs::rename(&tmp, &artifact);
        }
        // SAFETY: these bytes were just produced by this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }?;
        Ok(component)
    }
}

/// The WASI calls that wait (for a timer, a stream, ...) trap instead: an epoch
/// deadline cannot interrupt a guest that waits inside the host.
fn refuse_blocking_calls(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_POLL)?;
    for name in ["poll", "[method]pollable.block"] {
        poll.func_new(name, move |_, _, _, _| {
            Err(wasmtime::Error::msg(format!(
                "{BLOCKING}: {WASI_POLL} `{name}`"
            )))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The interface whose waiting calls are refused, as wasmtime-wasi names it.
const WASI_POLL: &str = "wasi:io/poll@0.2.12";
/// The words of a refused blocking call's trap.
const BLOCKING: &str = "blocking call refused";

/// Why a plugin cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: cannot read the plugin: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("{path}: does not implement the weir:plugin@0.1.0 {} world: {message}", kind.as_str())]
    World {
        path: PathBuf,
        kind: Kind,
        message: String,
    },
    #[error("plugin `{name}` ({path}): describe() says it is `{described}`; the file must be named after the plugin")]
    Name {
        name: String,
        path: PathBuf,
        described: String,
    },
    #[error("plugin `{name}` ({path}) has sha256 {sha256}, but its step pins {pinned}")]
    Pin {
        name: String,
        path: PathBuf,
        sha256: String,
        pinned: String,
    },
    #[error("plugin `{name}`: init failed: {message}")]
    Init { name: String, message: String },
    #[error("plugin `{name}`: {message}")]
    Trap { name: String, message: String },
}

enum Pre {
    Filter(bindings::filter::FilterPluginPre<HostState>),
    Enricher(bindings::enricher::EnricherPluginPre<HostState>),
}

/// A loaded, checked plugin, ready to be instantiated.
#[derive(Clone)]
pub struct Plugin {
    pub name: String,
    pub sha256: String,
    pub kind: Kind,
    pre: Arc<Pre>,
    engine: Engine,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Plugin {
    /// The first 12 hex digits of the component's SHA-256.
    pub fn short_hash(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }

    /// A fresh instance with these limits, grants and config (`init` is called).
    /// if any, is a folder the guest may read at [`GUEST_FILES`].
    pub fn instantiate(
        &self,
        limits: Limits,
        config: &[(String, String)],
        grants: &Grants,
    ) -> Result<Instance, PluginError> {
        let mut inst = self
            .bare_instance(limits, grants)
            .map_err(|e| PluginError::Trap {
                name: self.name.clone(),
                message: format!("instantiating: {e:#}"),
            })?;
        let init = inst.call_init(config);
        match init {
            Ok(Ok(())) => Ok(inst),
            Ok(Err(message)) => Err(PluginError::Init {
                name: self.name.clone(),
                message,
            }),
            Err(fault) => Err(PluginError::Trap {
                name: self.name.clone(),
                message: format!("in init: {}", fault.reason()),
            }),
        }
    }

    fn bare_instance(&self, limits: Limits, grants: &Grants) -> wasmtime::Result<Instance> {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAP);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAP);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(dir) = &grants.files {
            builder.preopened_dir(dir, GUEST_FILES, wasmtime_wasi::FsPerms::ReadOnly)?;
        }
        let wasi = builder.build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: PeakLimits {
                peak: 0,
                inner: StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .instances(4)
                    .trap_on_grow_failure(true)
                    .build(),
            },
            plugin: self.name.clone(),
            log_budget: LogBudget::new(),
            lookups: grants.lookups.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1_000_000);
        store.epoch_deadline_trap();
        let exports = match &*self.pre {
            Pre::Filter(pre) => Exports::Filter(pre.instantiate(&mut store)?),
            Pre::Enricher(pre) => Exports::Enricher(pre.instantiate(&mut store)?),
        };
        Ok(Instance {
            store,
            exports,
            limits,
            grants: grants.clone(),
            stdout,
            stderr,
            seen_out: 0,
            seen_err: 0,
            poisoned: false,
            armed: Duration::ZERO,
            plugin: self.clone(),
        })
    }
}

/// What a step may touch beyond its own memory.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// A folder the guest may read at [`GUEST_FILES`].
    pub files: Option<PathBuf>,
    /// The lookup tables it may read.
    pub lookups: crate::lookup::Lookups,
}

/// Where a step's granted files appear inside the sandbox.
pub const GUEST_FILES: &str = "/weir/files";

/// Bytes of standard output or error kept per instance before it is rebuilt.
const OUTPUT_CAP: usize = 1 << 20;

/// The store's limits, remembering the most memory the guest asked for.
struct PeakLimits {
    inner: StoreLimits,
    peak: usize,
}

impl wasmtime::ResourceLimiter for PeakLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak = self.peak.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Plugin log lines allowed per instance: a burst of [`LOG_BURST`], then
/// [`LOG_PER_SECOND`]; what is over is counted and reported with the next line.
pub struct LogBudget {
    tokens: f64,
    last: std::time::Instant,
    dropped: u64,
}

const LOG_BURST: f64 = 100.0;
const LOG_PER_SECOND: f64 = 20.0;

impl LogBudget {
    fn new() -> LogBudget {
        LogBudget {
            tokens: LOG_BURST,
            last: std::time::Instant::now(),
            dropped: 0,
        }
    }

    /// Whether a line may be logged now; if so, how many were dropped before it.
    pub fn take(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * LOG_PER_SECOND)
            .min(LOG_BURST);
        self.last = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }
}

/// What a store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: PeakLimits,
    plugin: String,
    log_budget: LogBudget,
    lookups: crate::lookup::Lookups,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::filter::weir::plugin::types::Host for HostState {}

impl bindings::filter::weir::plugin::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let Some(dropped) = self.log_budget.take() else {
            return;
        };
        let plugin = &self.plugin;
        if dropped > 0 {
            tracing::warn!(plugin = %plugin, dropped, "plugin log lines dropped (over {LOG_PER_SECOND}/s)");
        }
        match level {
            Level::Trace => tracing::trace!(plugin = %plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin = %plugin, "{message}"),
            Level::Info => tracing::info!(plugin = %plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin = %plugin, "{message}"),
            Level::Error => tracing::error!(plugin = %plugin, "{message}"),
        }
    }

    fn lookup(&mut self, table: String, key: String) -> Option<String> {
        let rows = self.lookups.get(&table)?.rows();
        rows.get(key.as_str()).map(|v| v.to_string())
    }

    /// A table the step was not granted answers "absent" for every key.
    fn lookup_many(
        &mut self,
        table: String,
        keys: Vec<u8>,
        key_ends: Vec<u32>,
    ) -> (Vec<u8>, Vec<u32>, Vec<bool>) {
        let rows = self.lookups.get(&table).map(|t| t.rows());
        let mut values = Vec::new();
        let mut ends = Vec::with_capacity(key_ends.len());
        let mut found = Vec::with_capacity(key_ends.len());
        let mut start = 0usize;
        for &end in &key_ends {
            let end = (end as usize).clamp(start, keys.len());
            let hit = std::str::from_utf8(&keys[start..end])
                .ok()
                .and_then(|k| rows.as_ref()?.get(k));
            start = end;
            if let Some(v) = hit {
                values.extend_from_slice(v.as_bytes());
            }
            found.push(hit.is_some());
            ends.push(values.len() as u32);
        }
        (values, ends, found)
    }
}

enum Exports {
    Filter(bindings::filter::FilterPlugin),
    Enricher(bindings::enricher::EnricherPlugin),
}

/// How a call went wrong, in the words a dead letter carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call ran past its deadline.
    Deadline { budget: Duration },
    /// The guest reached its memory cap.
    Memory { cap: usize },
    /// The guest panicked (or hit `unreachable`), with its message if it printed one.
    Panic { message: String },
    /// The guest returned something the contract forbids.
    BadResult { message: String },
    /// The guest made a call that waits (a sleep, a blocking read).
    Blocked { call: String },
    /// Any other trap.
    Trap { message: String },
}

impl Fault {
    /// The kind and the guest's words, e.g. `panic: boom at offset 3`.
    /// The fault's kind, as the metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Deadline { .. } => "deadline",
            Fault::Memory { .. } => "memory",
            Fault::Panic { .. } => "panic",
            Fault::BadResult { .. } => "bad_result",
            Fault::Blocked { .. } => "blocked",
            Fault::Trap { .. } => "trap",
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Fault::Deadline { budget } => format!("deadline: ran past its {budget:?} budget"),
            Fault::Memory { cap } => format!("memory: reached its cap of {} MiB", cap >> 20),
            Fault::Panic { message } => format!("panic: {message}"),
            Fault::BadResult { message } => format!("bad result: {message}"),
            Fault::Blocked { call } => format!("blocked: {call}, which the sandbox refuses"),
            Fault::Trap { message } => format!("trap: {message}"),
        }
    }

    /// Whether the instance must be rebuilt after this fault.
    pub fn poisons(&self) -> bool {
        !matches!(self, Fault::BadResult { .. })
    }
}

/// One live instance of a plugin.
pub struct Instance {
    store: Store<HostState>,
    exports: Exports,
    limits: Limits,
    grants: Grants,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    seen_out: usize,
    seen_err: usize,
    poisoned: bool,
    /// The deadline of the call in progress.
    armed: Duration,
    plugin: Plugin,
}

/// A filter's answer for a batch.
pub type Keep = (Vec<bool>, Vec<Rejection>);

impl Instance {
    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The most linear memory the guest has held, in bytes.
    pub fn memory_peak(&self) -> usize {
        self.store.data().limits.peak
    }

    /// Whether a trap poisoned this instance (it must be rebuilt).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Rebuilds this instance from its plugin, with the same config.
    pub fn rebuild(&mut self, config: &[(String, String)]) -> Result<(), PluginError> {
        let fresh = self.plugin.instantiate(self.limits, config, &self.grants)?;
        *self = fresh;
        Ok(())
    }

    fn arm(&mut self, events: usize) {
        self.arm_for((self.limits.event_budget * events as u32).max(self.limits.min_deadline));
    }

    fn arm_for(&mut self, budget: Duration) {
        self.armed = budget;
        let ticks = (budget.as_micros() / TICK.as_micros()).max(1) as u64;
        self.store.set_epoch_deadline(ticks);
    }

    /// The guest's output since the last call, as log lines tagged with the plugin.
    fn drain_output(&mut self) -> String {
        let out = self.stdout.contents();
        let err = self.stderr.contents();
        let new_out = String::from_utf8_lossy(&out[self.seen_out.min(out.len())..]).into_owned();
        let new_err = String::from_utf8_lossy(&err[self.seen_err.min(err.len())..]).into_owned();
        self.seen_out = out.len();
        self.seen_err = err.len();
        for line in new_out.lines().chain(new_err.lines()) {
            match self.store.data_mut().log_budget.take() {
                None => {}
                Some(0) => tracing::info!(plugin = %self.plugin.name, "guest: {line}"),
                Some(dropped) => {
                    tracing::warn!(plugin = %self.plugin.name, dropped, "plugin output lines dropped (over {LOG_PER_SECOND}/s)");
                    tracing::info!(plugin = %self.plugin.name, "guest: {line}");
                }
            }
        }
        if self.seen_out + self.seen_err > OUTPUT_CAP / 2 {
            // Nearly full pipes would make the guest's writes fail: start afresh.
            self.poisoned = true;
        }
        new_err
    }

    fn fault(&mut self, error: wasmtime::Error) -> Fault {
        self.poisoned = true;
        let stderr = self.drain_output();
        let text = format!("{error:#}");
        if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
            match trap {
                wasmtime::Trap::Interrupt => return Fault::Deadline { budget: self.armed },
                wasmtime::Trap::UnreachableCodeReached => {
                    let message =
                        panic_message(&stderr).unwrap_or_else(|| "unreachable code reached".into());
                    return Fault::Panic { message };
                }
                _ => {}
            }
        }
        if let Some(at) = text.find(BLOCKING) {
            let call = text[at + BLOCKING.len()..]
                .trim_start_matches(':')
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            return Fault::Blocked {
                call: format!("a blocking call to {call}"),
            };
        }
        if text.contains("forcing trap when growing memory") || text.contains("memory allocation") {
            return Fault::Memory {
                cap: self.limits.memory_bytes,
            };
        }
        Fault::Trap {
            message: text.lines().next().unwrap_or_default().to_owned(),
        }
    }

    /// After a call: the guest's output logged, and a trap turned into a [`Fault`].
    fn settle<R>(&mut self, r: wasmtime::Result<R>) -> Result<R, Fault> {
        match r {
            Ok(v) => {
                self.drain_output();
                Ok(v)
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    fn call_init(&mut self, config: &[(String, String)]) -> Result<Result<(), String>, Fault> {
        self.arm_for(self.limits.init_deadline);
        let r = match &self.exports {
            Exports::Filter(b) => b.weir_plugin_filter().call_init(&mut self.store, config),
            Exports::Enricher(b) => b.weir_plugin_enricher().call_init(&mut self.store, config),
        };
        self.settle(r)
    }

    /// The plugin's description.
    pub fn describe(&mut self) -> Result<Description, Fault> {
        self.arm(1000);
        let r = match &self.exports {
            Exports::Filter(b) => b.weir_plugin_filter().call_describe(&mut self.store),
            Exports::Enricher(b) => b.weir_plugin_enricher().call_describe(&mut self.store),
        };
        self.settle(r)
    }

    /// Runs a filter over a batch and checks the answer's shape.
    pub fn keep(&mut self, batch: &WitBatch) -> Result<Result<Keep, RetryLater>, Fault> {
        let n = batch.offsets.len();
        self.arm(n);
        let Exports::Filter(b) = &self.exports else {
            return Err(Fault::BadResult {
                message: "not a filter".into(),
            });
        };
        let r = b.weir_plugin_filter().call_keep(&mut self.store, batch);
        let answer = self.settle(r)?;
        if let Ok((keep, rejected)) = &answer {
            if keep.len() != n {
                return Err(Fault::BadResult {
                    message: format!("{} results for {n} events", keep.len()),
                });
            }
            check_rejections(rejected, n)?;
        }
        Ok(answer)
    }

    /// Runs an enricher over a batch and checks the answer's shape: one JSON
    /// object (or nothing) per event.
    pub fn enrich(&mut self, batch: &WitBatch) -> Result<Result<Additions, RetryLater>, Fault> {
        let n = batch.offsets.len();
        self.arm(n);
        let Exports::Enricher(b) = &self.exports else {
            return Err(Fault::BadResult {
                message: "not an enricher".into(),
            });
        };
        let r = b.weir_plugin_enricher().call_enrich(&mut self.store, batch);
        let answer = self.settle(r)?;
        if let Ok(add) = &answer {
            if add.field_ends.len() != n {
                return Err(Fault::BadResult {
                    message: format!("{} additions for {n} events", add.field_ends.len()),
                });
            }
            let mut start = 0usize;
            for (i, &end) in add.field_ends.iter().enumerate() {
                let end = end as usize;
                if end < start || end > add.fields.len() {
                    return Err(Fault::BadResult {
                        message: format!("additions of event {i} end at {end}, out of range"),
                    });
                }
                let obj = &add.fields[start..end];
                if !obj.is_empty() && !is_json_object(obj) {
                    return Err(Fault::BadResult {
                        message: format!("additions of event {i} are not a JSON object"),
                    });
                }
                start = end;
            }
            check_rejections(&add.rejected, n)?;
        }
        Ok(answer)
    }
}

/// Every rejection must name an event of the batch.
fn check_rejections(rejected: &[Rejection], n: usize) -> Result<(), Fault> {
    match rejected.iter().find(|r| r.index as usize >= n) {
        Some(r) => Err(Fault::BadResult {
            message: format!("rejection index {} out of range for {n} events", r.index),
        }),
        None => Ok(()),
    }
}

fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// Rust's panic hook prints `panicked at FILE:LINE:COL:\nMESSAGE`; keep MESSAGE.
fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.rfind("panicked at")?;
    let rest = &stderr[at..];
    let mut lines = rest.lines();
    let first = lines.next()?;
    let message: Vec<&str> = lines
        .take_while(|l| !l.starts_with("note:") && !l.is_empty())
        .collect();
    if message.is_empty() {
        Some(first.trim().to_owned())
    } else {
        Some(message.join(" ").trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_taken_from_the_hook_output() {
        let err = "thread '<unnamed>' panicked at examples/panics.rs:25:17:\nboom at offset 3\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(err).as_deref(), Some("boom at offset 3"));
        assert_eq!(panic_message("nothing"), None);
    }

    #[test]
    fn additions_must_be_objects() {
        assert!(is_json_object(br#"{"a":1}"#));
        assert!(!is_json_object(b"[1]"));
        assert!(!is_json_object(b"{\"a\""));
    }
}
