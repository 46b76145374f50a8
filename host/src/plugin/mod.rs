//! The plugin runtime: filters and enrichers as WebAssembly components behind the
//! `weir:plugin` WIT contract (`wit/plugin.wit`), run in batches in a sandbox.
//!
//! - [`engine`]: one [`Runtime`] per process: a wasmtime engine with epoch
//!   interruption and `concurrency_support` off, a thread ticking the epoch
//!   every millisecond, and a cache of precompiled artifacts keyed by the
//!   component's SHA-256 and the engine's `precompile_compatibility_hash`.
//! - Here: a [`Plugin`] is a loaded component, checked against the world its
//!   kind expects and pre-instantiated (`InstancePre`).
//! - [`instance`]: an [`Instance`] is one long-lived store and instance per
//!   plugin and worker. Every call gets an epoch deadline of a per-event
//!   budget times the batch size, and the store a memory cap that traps when
//!   reached. Its answers are checked; an enricher's additions are parsed by
//!   [`additions`].
//! - [`host`]: what a guest is given: no ambient capability (no environment,
//!   arguments, sockets; files only as granted, read-only), clocks and
//!   randomness, bounded standard output and error, a log budget, lookups.
//! - [`fault`]: how a call fails, named ([`Fault`]).
//! - [`lookup`]: the lookup tables the host imports read.
//!
//! Uses [`crate::config`], [`crate::event`] and [`crate::store`] (lookup
//! tables from a query).
//!
//! Architecture Invariant: nothing a guest does can take the host down. A trap
//! poisons only its instance, which the caller rebuilds from the `InstancePre`.

mod additions;
mod engine;
mod fault;
mod host;
mod instance;
pub mod lookup;
pub mod mmdb;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

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

pub use additions::{parse_additions, MAX_ADDITIONS_BYTES};
pub use engine::Runtime;
pub use fault::Fault;
pub use host::{
    guest_text, GuestOutput, HostState, LogBudget, Staged, GUEST_FILES, LOG_BYTES_PER_CALL,
    LOG_LINE_MAX,
};
pub use instance::{Enriched, Instance, Keep};

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
    #[error("{path}: it imports what the sandbox does not grant: {imports} (granted: {granted})")]
    Imports {
        path: PathBuf,
        imports: String,
        granted: String,
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

pub(crate) enum Pre {
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
        let mut inst = Instance::bare(self, limits, grants).map_err(|fault| PluginError::Trap {
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
