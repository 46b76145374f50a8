//! An instance: one long-lived store and instance per plugin and worker,
//! every call under a deadline and a memory cap, its answer checked.

use super::engine::TICK;
use super::host::{
    GuestOutput, LogBudget, PeakLimits, LOG_BYTES_PER_CALL, LOG_LINE_MAX, LOG_PER_SECOND,
    OUTPUT_CAP,
};
use super::{guest_text, Description, Grants, Plugin, Pre, GUEST_FILES};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;

use super::additions::parse_additions;
use super::fault::{classify, Fault};
use super::host::HostState;
use super::{bindings, Limits, PluginError, Rejection, RetryLater, WitBatch};

pub(super) enum Exports {
    Filter(bindings::filter::FilterPlugin),
    Enricher(bindings::enricher::EnricherPlugin),
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

impl Instance {
    /// A new instance of `plugin`, before `init`: instantiated (its start
    /// functions run under the init deadline) with nothing granted but `grants`.
    pub(super) fn bare(
        plugin: &Plugin,
        limits: Limits,
        grants: &Grants,
    ) -> Result<Instance, Fault> {
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
                    // A Rust component instantiates about 4 core modules;
                    // componentize-py's 14 (CPython is linked dynamically:
                    // libc, libpython, the runtime, adapters, shims), sharing
                    // one linear memory. A second memory would double what
                    // the cap allows, so there is at most one.
                    .instances(32)
                    .memories(1)
                    .trap_on_grow_failure(true)
                    .build(),
            },
            plugin: plugin.name.clone(),
            log_budget: LogBudget::new(),
            lookups: grants.lookups.clone(),
            memory_cap: limits.memory_bytes,
        };
        let mut store = Store::new(&plugin.engine, state);
        store.limiter(|s| &mut s.limits);
        // Instantiation runs the component's start functions: guest code, under
        // the same deadline as `init`.
        store.set_epoch_deadline(ticks(limits.init_deadline));
        store.epoch_deadline_trap();
        let exports = match &*plugin.pre {
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
            plugin: plugin.clone(),
        })
    }

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

    pub(super) fn arm(&mut self, events: usize) {
        self.arm_for((self.limits.event_budget * events as u32).max(self.limits.min_deadline));
    }

    pub(super) fn arm_for(&mut self, budget: Duration) {
        self.armed = budget;
        self.store.set_epoch_deadline(ticks(budget));
        self.store.data_mut().log_budget.new_call();
    }

    /// The guest's output since the last call, as log lines tagged with the
    /// plugin (escaped, cut, rate-limited); returns what it wrote to stderr.
    pub(super) fn drain_output(&mut self) -> String {
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

    pub(super) fn fault(&mut self, error: wasmtime::Error) -> Fault {
        self.poisoned = true;
        let stderr = self.drain_output();
        classify(error, self.armed, &self.limits, &stderr)
    }

    /// After a call: the guest's output logged, and a trap turned into a [`Fault`].
    pub(super) fn settle<R>(&mut self, r: wasmtime::Result<R>) -> Result<R, Fault> {
        match r {
            Ok(v) => {
                self.drain_output();
                Ok(v)
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    pub(super) fn call_init(
        &mut self,
        config: &[(String, String)],
    ) -> Result<Result<(), String>, Fault> {
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
pub(super) fn ticks(budget: Duration) -> u64 {
    (budget.as_micros() / TICK.as_micros()).max(1) as u64
}

/// Every rejection must name an event of the batch.
pub(super) fn check_rejections(rejected: &[Rejection], n: usize) -> Result<(), Fault> {
    match rejected.iter().find(|r| r.index as usize >= n) {
        Some(r) => Err(Fault::BadResult {
            message: format!("rejection index {} out of range for {n} events", r.index),
        }),
        None => Ok(()),
    }
}
