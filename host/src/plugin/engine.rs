//! The engine: one per process, with epoch interruption ticked by a thread
//! that follows the wall clock, and the cache of precompiled artifacts.

use super::{bindings, Plugin, Pre};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use super::host::HostState;
use super::{Kind, PluginError};

/// The engine every plugin runs in.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    compat: u64,
}

/// Milliseconds per epoch tick.
pub(super) const TICK: Duration = Duration::from_millis(1);

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

    pub(super) fn build(cache_dir: Option<PathBuf>, parallel: bool) -> anyhow::Result<Runtime> {
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
        let ungranted: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(import, _)| import.to_string())
            .filter(|import| !GRANTED.iter().any(|g| import.starts_with(g)))
            .collect();
        if !ungranted.is_empty() {
            return Err(PluginError::Imports {
                path: path.to_owned(),
                imports: ungranted.join(", "),
                granted: GRANTED.join(", "),
            });
        }
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

    pub(super) fn component(&self, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
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

    pub(super) fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        unsafe {
            libc::geteuid()
        }
    }

    /// Whether `path` belongs to this process's user and no one else may write it.
    pub(super) fn private(path: &Path) -> bool {
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

    pub(super) fn digest_path(artifact: &Path) -> std::path::PathBuf {
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
pub(super) fn refuse_blocking_calls(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
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

/// The interfaces a plugin may import, by name prefix. Everything else (HTTP,
/// say) is refused at load with the names of the imports. Sockets are linked
/// but deny every address; the filesystem holds only the granted files.
pub(super) const GRANTED: &[&str] = &[
    "weir:plugin/host@",
    "weir:plugin/types@",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// The interface whose waiting calls are refused, as wasmtime-wasi names it.
pub(super) const WASI_POLL: &str = "wasi:io/poll@0.2.12";
/// The words of a refused blocking call's trap.
pub(super) const BLOCKING: &str = "blocking call refused";

#[cfg(test)]
mod tests {
    use super::*;

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
}
