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

pub mod lookup;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Bindings generated from `wit/plugin.wit`.
pub mod bindings {
    /// The `filter-plugin` world.
    pub mod filter {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "filter-plugin",
            // Host functions may trap: a `lookup-many` answer larger than the
            // guest could receive ends the call instead of growing host memory.
            imports: { default: trappable },
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
    /// The deadline of `init` (which may load a file or a model), and of
    /// instantiation (a component's start functions).
    pub init_deadline: Duration,
    /// WASI resources (open files, streams, pollables) an instance may hold at once.
    pub max_handles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            event_budget: Duration::from_micros(200),
            min_deadline: Duration::from_millis(100),
            init_deadline: Duration::from_secs(10),
            max_handles: 256,
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
        // One ticker per engine; it ends when the engine is dropped. The epoch
        // follows the wall clock: a sleep that overslept is made up for, so that
        // a deadline of N ticks is N milliseconds, not N sleeps.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut ticks: u128 = 0;
                while let Some(engine) = weak.upgrade() {
                    let due = start.elapsed().as_micros() / TICK.as_micros();
                    while ticks < due {
                        engine.increment_epoch();
                        ticks += 1;
                    }
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .context("starting the epoch ticker")?;
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
        let sha256 = crate::event::batch::sha256_hex(&bytes);
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
        let Some(dir) = self.cache_dir.as_deref().filter(|d| cache::usable(d)) else {
            return Component::from_binary(&self.engine, bytes);
        };
        let artifact = dir.join(format!("{sha256}-{:016x}.cwasm", self.compat));
        if let Some(native) = cache::read_verified(&artifact) {
            // SAFETY: `read_verified` only returns bytes from a file in a folder
            // this process's user owns and no one else may write, whose SHA-256
            // matches the digest written beside it when this engine's
            // `precompile_component` produced it; the name carries the
            // component's SHA-256 and the engine's compatibility hash.
            #[allow(unsafe_code)]
            if let Ok(c) = unsafe { Component::deserialize(&self.engine, &native) } {
                return Ok(c);
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        cache::write(&artifact, &compiled);
        // SAFETY: these bytes were just produced by this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }?;
        Ok(component)
    }
}

/// The artifact cache: native code, so it is only read from a folder this
/// process's user owns and that no one else may write, and each artifact only
/// when its SHA-256 matches the digest written beside it (`NAME.sha256`).
mod cache {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::Path;

    fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        unsafe {
            libc::geteuid()
        }
    }

    /// Whether `path` belongs to this process's user and no one else may write it.
    fn private(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            m.uid() == euid() && m.mode() & 0o022 == 0 && !m.file_type().is_symlink()
        })
    }

    /// Creates the folder (0700) if missing; whether it may be used.
    pub fn usable(dir: &Path) -> bool {
        if !dir.exists() {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        if private(dir) {
            return true;
        }
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                cache = %dir.display(),
                "artifact cache not used: it must be a folder of this user that no one else may write"
            )
        });
        false
    }

    fn digest_path(artifact: &Path) -> std::path::PathBuf {
        artifact.with_extension("cwasm.sha256")
    }

    /// The artifact's bytes, if it and its digest are private and agree.
    pub fn read_verified(artifact: &Path) -> Option<Vec<u8>> {
        let digest = digest_path(artifact);
        if !private(artifact) || !private(&digest) {
            return None;
        }
        let want = std::fs::read_to_string(&digest).ok()?;
        let bytes = std::fs::read(artifact).ok()?;
        (crate::event::batch::sha256_hex(&bytes) == want.trim()).then_some(bytes)
    }

    /// Writes the artifact and its digest, each by a rename of a private file.
    pub fn write(artifact: &Path, bytes: &[u8]) {
        let put = |path: &Path, data: &[u8]| -> std::io::Result<()> {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(data)?;
            }
            std::fs::rename(&tmp, path)
        };
        // The digest goes second: an artifact without its digest is never read.
        let _ = std::fs::remove_file(digest_path(artifact));
        if put(artifact, bytes).is_ok() {
            let _ = put(
                &digest_path(artifact),
                crate::event::batch::sha256_hex(bytes).as_bytes(),
            );
        }
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
    #[error("plugin `{name}`: {message}")]
    Describe { name: String, message: String },
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
            .map_err(|fault| PluginError::Trap {
                name: self.name.clone(),
                message: format!("instantiating: {}", fault.reason()),
            })?;
        match inst.call_init(config) {
            Ok(Ok(())) => Ok(inst),
            Ok(Err(message)) => Err(PluginError::Init {
                name: self.name.clone(),
                message: guest_text(&message, 2000),
            }),
            Err(fault) => Err(PluginError::Trap {
                name: self.name.clone(),
                message: format!("in init: {}", fault.reason()),
            }),
        }
    }

    fn bare_instance(&self, limits: Limits, grants: &Grants) -> Result<Instance, Fault> {
        let stdout = GuestOutput::default();
        let stderr = GuestOutput::default();
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(dir) = &grants.files {
            builder
                .preopened_dir(dir.path(), GUEST_FILES, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| Fault::Trap {
                    message: format!("granting {}: {e:#}", dir.path().display()),
                })?;
        }
        let wasi = builder.build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let state = HostState {
            wasi,
            table,
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
            memory_cap: limits.memory_bytes,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Instantiation runs the component's start functions: guest code, under
        // the same deadline as `init`.
        store.set_epoch_deadline(ticks(limits.init_deadline));
        store.epoch_deadline_trap();
        let exports = match &*self.pre {
            Pre::Filter(pre) => pre.instantiate(&mut store).map(Exports::Filter),
            Pre::Enricher(pre) => pre.instantiate(&mut store).map(Exports::Enricher),
        };
        let exports = exports.map_err(|e| {
            let stderr = stderr.take();
            classify(
                e,
                limits.init_deadline,
                &limits,
                &String::from_utf8_lossy(&stderr),
            )
        })?;
        Ok(Instance {
            store,
            exports,
            limits,
            grants: grants.clone(),
            stdout,
            stderr,
            poisoned: false,
            armed: Duration::ZERO,
            plugin: self.clone(),
        })
    }
}

/// What a step may touch beyond its own memory.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// A folder the guest may read at [`GUEST_FILES`], shared by the step's
    /// instances and removed when the last of them is gone.
    pub files: Option<Arc<Staged>>,
    /// The lookup tables it may read.
    pub lookups: crate::plugin::lookup::Lookups,
}

/// A private folder (0700, this process's user) holding a step's granted
/// files; removed when dropped.
#[derive(Debug)]
pub struct Staged(PathBuf);

impl Staged {
    /// A fresh private folder for `name`'s files under the system's temp folder.
    pub fn new(name: &str) -> std::io::Result<Staged> {
        use std::os::unix::fs::DirBuilderExt as _;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let path =
            std::env::temp_dir().join(format!("weir-files-{}-{n}-{safe}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Staged(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a step's granted files appear inside the sandbox.
pub const GUEST_FILES: &str = "/weir/files";

/// Bytes of standard output or error kept per call; more is counted and dropped
/// (the guest's writes still succeed).
const OUTPUT_CAP: usize = 64 << 10;

/// A guest's standard output or error: always writable, bounded, drained after
/// every call into log lines.
#[derive(Clone, Default)]
pub struct GuestOutput(Arc<std::sync::Mutex<OutputBuf>>);

#[derive(Default)]
struct OutputBuf {
    kept: Vec<u8>,
    dropped: u64,
}

impl GuestOutput {
    fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = OUTPUT_CAP.saturating_sub(b.kept.len());
        let take = bytes.len().min(room);
        b.kept.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// What was written since the last take (the kept part).
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()).kept)
    }

    /// Bytes dropped over the cap since the last call.
    fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()).dropped)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl wasmtime_wasi::p2::OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(OUTPUT_CAP)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

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
/// [`LOG_PER_SECOND`], each cut to [`LOG_LINE_MAX`] bytes, at most
/// [`LOG_BYTES_PER_CALL`] per call; what is over is counted and reported with
/// the next line.
pub struct LogBudget {
    tokens: f64,
    last: std::time::Instant,
    dropped: u64,
    /// Bytes logged in the call in progress.
    call_bytes: usize,
}

const LOG_BURST: f64 = 100.0;
const LOG_PER_SECOND: f64 = 20.0;
/// The longest plugin log line, in bytes (before escaping).
pub const LOG_LINE_MAX: usize = 1024;
/// Bytes of log lines one call may write.
pub const LOG_BYTES_PER_CALL: usize = 16 << 10;

impl LogBudget {
    fn new() -> LogBudget {
        LogBudget {
            tokens: LOG_BURST,
            last: std::time::Instant::now(),
            dropped: 0,
            call_bytes: 0,
        }
    }

    /// Whether a line of `bytes` may be logged now; if so, how many were
    /// dropped before it.
    pub fn take(&mut self, bytes: usize) -> Option<u64> {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * LOG_PER_SECOND)
            .min(LOG_BURST);
        self.last = now;
        let bytes = bytes.min(LOG_LINE_MAX);
        if self.tokens < 1.0 || self.call_bytes + bytes > LOG_BYTES_PER_CALL {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        self.call_bytes += bytes;
        Some(std::mem::take(&mut self.dropped))
    }

    fn new_call(&mut self) {
        self.call_bytes = 0;
    }
}

/// Text a guest controls, made safe to print: control characters (newlines,
/// escapes) written as `\n`, `\u{1b}`, and cut after `max` bytes with a mark
/// giving the full length. A plugin cannot forge a host log line with it.
pub fn guest_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 16);
    for (at, c) in text.char_indices() {
        if out.len() >= max {
            out.push_str(&format!(" …(cut: {} bytes in all)", text.len()));
            let _ = at;
            return out;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: PeakLimits,
    plugin: String,
    log_budget: LogBudget,
    lookups: crate::plugin::lookup::Lookups,
    /// The instance's memory cap: no host answer may be larger.
    memory_cap: usize,
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

/// The words of a host answer refused for its size.
const TOO_LARGE: &str = "host answer over the memory cap";

impl bindings::filter::weir::plugin::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let Some(dropped) = self.log_budget.take(message.len()) else {
            return Ok(());
        };
        let plugin = &self.plugin;
        if dropped > 0 {
            tracing::warn!(plugin = %plugin, dropped, "plugin log lines dropped (over {LOG_PER_SECOND}/s or {LOG_BYTES_PER_CALL} bytes a call)");
        }
        let message = guest_text(&message, LOG_LINE_MAX);
        match level {
            Level::Trace => tracing::trace!(plugin = %plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin = %plugin, "{message}"),
            Level::Info => tracing::info!(plugin = %plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin = %plugin, "{message}"),
            Level::Error => tracing::error!(plugin = %plugin, "{message}"),
        }
        Ok(())
    }

    fn lookup(&mut self, table: String, key: String) -> wasmtime::Result<Option<String>> {
        let Some(t) = self.lookups.get(&table) else {
            return Ok(None);
        };
        Ok(t.rows().get(key.as_str()).map(|v| v.to_string()))
    }

    /// A table the step was not granted answers "absent" for every key. An
    /// answer larger than the guest's memory cap traps before it is built.
    fn lookup_many(
        &mut self,
        table: String,
        keys: Vec<u8>,
        key_ends: Vec<u32>,
    ) -> wasmtime::Result<(Vec<u8>, Vec<u32>, Vec<bool>)> {
        let rows = self.lookups.get(&table).map(|t| t.rows());
        // The ends and flags alone must fit too.
        let mut budget = self.memory_cap.saturating_sub(key_ends.len() * 5);
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
                if v.len() > budget {
                    return Err(wasmtime::Error::msg(format!(
                        "{TOO_LARGE}: `lookup-many` on `{}` for {} keys would answer more than {} MiB",
                        guest_text(&table, 64),
                        key_ends.len(),
                        self.memory_cap >> 20
                    )));
                }
                budget -= v.len();
                values.extend_from_slice(v.as_bytes());
            }
            found.push(hit.is_some());
            ends.push(values.len() as u32);
        }
        Ok((values, ends, found))
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
    /// The guest's call stack ran out; `at`: its innermost frames.
    StackOverflow { at: String },
    /// The guest exited (WASI 0.2's `exit` carries only success, 0, or failure, 1).
    Exit { code: i32 },
    /// The guest reached a cap on what it may hold or ask for.
    Resource { message: String },
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
    /// The fault's kind, as the metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Deadline { .. } => "deadline",
            Fault::Memory { .. } => "memory",
            Fault::StackOverflow { .. } => "stack_overflow",
            Fault::Exit { .. } => "exit",
            Fault::Resource { .. } => "resource",
            Fault::Panic { .. } => "panic",
            Fault::BadResult { .. } => "bad_result",
            Fault::Blocked { .. } => "blocked",
            Fault::Trap { .. } => "trap",
        }
    }

    /// The kind and the guest's words, e.g. `panic: boom at offset 3`.
    pub fn reason(&self) -> String {
        match self {
            Fault::Deadline { budget } => format!("deadline: ran past its {budget:?} budget"),
            Fault::Memory { cap } => format!("memory: reached its cap of {} MiB", cap >> 20),
            Fault::StackOverflow { at } => {
                format!("stack overflow: the guest's call stack ran out{at}")
            }
            Fault::Exit { code } => format!("exit: the guest exited with status {code}"),
            Fault::Resource { message } => format!("resource: {message}"),
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

/// ` (in f < g < h)`: the guest's innermost frames, where wasmtime has them.
fn frames(error: &wasmtime::Error) -> String {
    let Some(bt) = error.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return String::new();
    };
    let names: Vec<String> = bt
        .frames()
        .iter()
        .take(3)
        .map(|f| match f.func_name() {
            Some(name) => guest_text(name, 80),
            None => format!("wasm function {}", f.func_index()),
        })
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (in {})", names.join(" < "))
    }
}

/// A trap (or a host function's error) as a [`Fault`]. `armed`: the deadline
/// of the call; `stderr`: what the guest printed to standard error in it.
fn classify(error: wasmtime::Error, armed: Duration, limits: &Limits, stderr: &str) -> Fault {
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Fault::Exit { code: exit.0 };
    }
    let text = format!("{error:#}");
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        match trap {
            wasmtime::Trap::Interrupt => return Fault::Deadline { budget: armed },
            wasmtime::Trap::StackOverflow => return Fault::StackOverflow { at: frames(&error) },
            wasmtime::Trap::UnreachableCodeReached => {
                let message = panic_message(stderr)
                    .map(|m| guest_text(&m, 1000))
                    .unwrap_or_else(|| format!("unreachable code reached{}", frames(&error)));
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
            cap: limits.memory_bytes,
        };
    }
    if text.contains("resource table has no free keys") {
        return Fault::Resource {
            message: format!(
                "holds {} WASI handles (open files, streams, pollables), its cap",
                limits.max_handles
            ),
        };
    }
    if text.contains("cannot allocate another handle") {
        return Fault::Resource {
            message: "its component's handle table is full".into(),
        };
    }
    if let Some(at) = text.find(TOO_LARGE) {
        let rest = text[at..].lines().next().unwrap_or_default();
        return Fault::Resource {
            message: rest.to_owned(),
        };
    }
    let what = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    Fault::Trap {
        message: format!("{}{}", guest_text(&what, 1000), frames(&error)),
    }
}

/// One live instance of a plugin.
pub struct Instance {
    store: Store<HostState>,
    exports: Exports,
    limits: Limits,
    grants: Grants,
    stdout: GuestOutput,
    stderr: GuestOutput,
    poisoned: bool,
    /// The deadline of the call in progress.
    armed: Duration,
    plugin: Plugin,
}

/// A filter's answer for a batch.
pub type Keep = (Vec<bool>, Vec<Rejection>);

/// An enricher's answer for a batch, checked: per event, the fields it adds
/// (parsed once, strictly, numbers as written) or why they are unusable.
#[derive(Debug)]
pub struct Enriched {
    pub fields: Vec<Result<serde_json::Map<String, serde_json::Value>, String>>,
    pub rejected: Vec<Rejection>,
}

/// The most bytes of additions one event may get from one step.
pub const MAX_ADDITIONS_BYTES: usize = 1 << 20;

/// One event's additions, strictly: valid UTF-8 JSON (escapes included, no
/// lone surrogates), an object, nested at most 128 deep, under
/// [`MAX_ADDITIONS_BYTES`]. Numbers keep the digits the plugin wrote.
pub fn parse_additions(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if bytes.len() > MAX_ADDITIONS_BYTES {
        return Err(format!(
            "additions of {} bytes, over the {} MiB cap",
            bytes.len(),
            MAX_ADDITIONS_BYTES >> 20
        ));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("additions are not a JSON object".into());
    }
    let fields = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
        .map_err(|e| {
            if e.to_string().starts_with("recursion limit exceeded") {
                "additions nest deeper than 128 levels".to_owned()
            } else {
                format!("additions are not valid JSON: {e}")
            }
        })?;
    reserved_keys(bytes)?;
    Ok(fields)
}

/// The names serde_json gives its own tokens (with `arbitrary_precision` and
/// `raw_value`, an object `{"$serde_json::private::Number": "…"}` is read as a
/// number, `{"$serde_json::private::RawValue": "…"}` as the JSON in the
/// string): a plugin's object named so would be read as something it did not
/// write, so such names are refused, at any depth and however escaped.
const RESERVED: &str = "$serde_json::private::";

/// Refuses additions with a key in [`RESERVED`]'s namespace. The walk reads
/// each level as raw values, which serde_json never reinterprets; additions
/// without a `$` or a backslash, nearly all, skip it.
fn reserved_keys(bytes: &[u8]) -> Result<(), String> {
    // The name starts with `$`, written as is or escaped: without either
    // byte no key can be in the namespace.
    if !bytes.iter().any(|&b| b == b'$' || b == b'\\') {
        return Ok(());
    }
    fn walk(raw: &str) -> Result<(), String> {
        use serde_json::value::RawValue;
        match raw.trim_start().as_bytes().first() {
            Some(b'{') => {
                let map: std::collections::HashMap<String, &RawValue> =
                    serde_json::from_str(raw)
                        .map_err(|e| format!("additions are not valid JSON: {e}"))?;
                for (key, value) in map {
                    if key.starts_with(RESERVED) {
                        return Err(format!(
                            "additions use the reserved name `{}`",
                            guest_text(&key, 64)
                        ));
                    }
                    walk(value.get())?;
                }
                Ok(())
            }
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(raw)
                    .map_err(|e| format!("additions are not valid JSON: {e}"))?;
                items.iter().try_for_each(|v| walk(v.get()))
            }
            _ => Ok(()),
        }
    }
    walk(std::str::from_utf8(bytes).map_err(|e| format!("additions are not valid JSON: {e}"))?)
}

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
        self.store.set_epoch_deadline(ticks(budget));
        self.store.data_mut().log_budget.new_call();
    }

    /// The guest's output since the last call, as log lines tagged with the
    /// plugin (escaped, cut, rate-limited); returns what it wrote to stderr.
    fn drain_output(&mut self) -> String {
        let out = self.stdout.take();
        let err = self.stderr.take();
        let over = self.stdout.take_dropped() + self.stderr.take_dropped();
        let new_err = String::from_utf8_lossy(&err).into_owned();
        let name = &self.plugin.name;
        let budget = &mut self.store.data_mut().log_budget;
        for line in String::from_utf8_lossy(&out).lines().chain(new_err.lines()) {
            match budget.take(line.len()) {
                None => {}
                Some(0) => {
                    tracing::info!(plugin = %name, "guest: {}", guest_text(line, LOG_LINE_MAX))
                }
                Some(dropped) => {
                    tracing::warn!(plugin = %name, dropped, "plugin output lines dropped (over {LOG_PER_SECOND}/s or {LOG_BYTES_PER_CALL} bytes a call)");
                    tracing::info!(plugin = %name, "guest: {}", guest_text(line, LOG_LINE_MAX));
                }
            }
        }
        if over > 0 {
            tracing::warn!(plugin = %name, bytes = over, "plugin output over {OUTPUT_CAP} bytes in one call dropped");
        }
        new_err
    }

    fn fault(&mut self, error: wasmtime::Error) -> Fault {
        self.poisoned = true;
        let stderr = self.drain_output();
        classify(error, self.armed, &self.limits, &stderr)
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

    /// Runs an enricher over a batch, checks the answer's shape (one entry per
    /// event, in range) and parses each event's additions strictly: an event
    /// whose additions are unusable gets the reason instead.
    pub fn enrich(&mut self, batch: &WitBatch) -> Result<Result<Enriched, RetryLater>, Fault> {
        let n = batch.offsets.len();
        self.arm(n);
        let Exports::Enricher(b) = &self.exports else {
            return Err(Fault::BadResult {
                message: "not an enricher".into(),
            });
        };
        let r = b.weir_plugin_enricher().call_enrich(&mut self.store, batch);
        let add = match self.settle(r)? {
            Ok(add) => add,
            Err(retry) => return Ok(Err(retry)),
        };
        if add.field_ends.len() != n {
            return Err(Fault::BadResult {
                message: format!("{} additions for {n} events", add.field_ends.len()),
            });
        }
        check_rejections(&add.rejected, n)?;
        let mut fields = Vec::with_capacity(n);
        let mut start = 0usize;
        for (i, &end) in add.field_ends.iter().enumerate() {
            let end = end as usize;
            if end < start || end > add.fields.len() {
                return Err(Fault::BadResult {
                    message: format!("additions of event {i} end at {end}, out of range"),
                });
            }
            let obj = &add.fields[start..end];
            start = end;
            fields.push(if obj.is_empty() {
                Ok(serde_json::Map::new())
            } else {
                parse_additions(obj)
            });
        }
        Ok(Ok(Enriched {
            fields,
            rejected: add.rejected,
        }))
    }
}

/// Epoch ticks in `budget` (at least one).
fn ticks(budget: Duration) -> u64 {
    (budget.as_micros() / TICK.as_micros()).max(1) as u64
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
    fn additions_are_parsed_strictly_and_keep_their_digits() {
        let ok = parse_additions(
            br#"{"a":12345678901234567890123,"b":0.1000000000000000055511151231257827}"#,
        )
        .expect("valid");
        assert_eq!(ok["a"].to_string(), "12345678901234567890123");
        assert_eq!(ok["b"].to_string(), "0.1000000000000000055511151231257827");
        // The digits as written; serde_json spells an exponent's sign out.
        assert_eq!(
            parse_additions(b"{\"a\":1e400}").expect("kept")["a"].to_string(),
            "1e+400"
        );
        let bad = |b: &[u8]| parse_additions(b).expect_err("must be refused");
        assert_eq!(bad(b"[1]"), "additions are not a JSON object");
        assert!(bad(b"{\"a\"").starts_with("additions are not valid JSON: "));
        assert!(
            bad(b"{\"a\":\"\xff\"}").contains("invalid unicode"),
            "{}",
            bad(b"{\"a\":\"\xff\"}")
        );
        assert!(bad(br#"{"a":"\ud800"}"#).starts_with("additions are not valid JSON: "));
        assert!(bad(br#"{"a":"\ud800x"}"#).starts_with("additions are not valid JSON: "));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            bad(deep.as_bytes()),
            "additions nest deeper than 128 levels"
        );
        // serde_json's own token names cannot smuggle in another value.
        for sneaky in [
            r#"{"a":{"$serde_json::private::Number":"123"}}"#,
            r#"{"$serde_json::private::RawValue":"[1]"}"#,
            r#"{"a":[{"\u0024serde_json::private::RawValue":"{}"}]}"#,
        ] {
            assert!(
                bad(sneaky.as_bytes())
                    .starts_with("additions use the reserved name `$serde_json::private::"),
                "{sneaky}"
            );
        }
        assert!(parse_additions(br#"{"a":"\n$serde_json","b":{"c":[1,{"d":2}]}}"#).is_ok());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_ADDITIONS_BYTES));
        assert!(bad(big.as_bytes()).contains("over the 1 MiB cap"));
    }

    #[test]
    fn cached_artifacts_are_loaded_only_when_private_and_intact() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("weir-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(cache::usable(&dir), "a fresh folder is made private");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let artifact = dir.join("abc-0123.cwasm");
        cache::write(&artifact, b"native code");
        assert_eq!(
            cache::read_verified(&artifact).as_deref(),
            Some(&b"native code"[..])
        );
        // A changed artifact no longer matches its digest.
        std::fs::write(&artifact, b"other code!").unwrap();
        assert_eq!(cache::read_verified(&artifact), None);
        cache::write(&artifact, b"native code");
        // Writable by others: neither the file nor the folder is trusted.
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(cache::read_verified(&artifact), None);
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!cache::usable(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staged_folders_are_private_and_removed_with_the_step() {
        use std::os::unix::fs::PermissionsExt as _;
        let staged = Staged::new("geo/../enricher").unwrap();
        let path = staged.path().to_owned();
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("geo____enricher"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(staged);
        assert!(!path.exists());
    }

    #[test]
    fn guest_text_cannot_forge_lines() {
        let t = guest_text("ok\n2026-11-28T00:00:00Z ERROR weir: forged\x1b[31m", 200);
        assert!(!t.contains('\n') && !t.contains('\x1b'), "{t}");
        assert!(t.starts_with("ok\\n2026"), "{t}");
        let long = guest_text(&"é".repeat(1000), 100);
        assert!(
            long.starts_with(&"é".repeat(50)) && long.ends_with("(cut: 2000 bytes in all)"),
            "{long}"
        );
    }

    #[test]
    fn log_budget_caps_lines_and_bytes_per_call() {
        let mut b = LogBudget::new();
        let mut logged = 0;
        for _ in 0..1000 {
            if b.take(1 << 20).is_some() {
                logged += 1;
            }
        }
        assert_eq!(logged, LOG_BYTES_PER_CALL / LOG_LINE_MAX);
        b.new_call();
        assert!(b.take(10).is_some_and(|dropped| dropped > 900));
    }
}
