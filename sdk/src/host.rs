//! What the host offers: its log and its lookup tables. In a plugin built for
//! wasm these are the host's imports; in a native build (unit tests, native
//! baselines) the log goes to stderr and lookups read tables set with
//! [`crate::testing::lookup_table`].

use std::sync::OnceLock;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Values found for many keys, in columns: the values back to back, their
/// ends, and per key whether it was found.
pub type Found = (Vec<u8>, Vec<u32>, Vec<bool>);

/// The host's functions, installed by the generated glue at `init`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct HostFns {
    pub log: fn(Level, &str),
    pub lookup: fn(&str, &str) -> Option<String>,
    pub lookup_many: fn(&str, &[u8], &[u32]) -> Found,
}

static HOST: OnceLock<HostFns> = OnceLock::new();

#[doc(hidden)]
pub fn install(fns: HostFns) {
    let _ = HOST.set(fns);
}

fn host() -> &'static HostFns {
    HOST.get_or_init(|| HostFns {
        log: |level, message| eprintln!("{level:?}: {message}"),
        lookup: crate::testing::native_lookup,
        lookup_many: crate::testing::native_lookup_many,
    })
}

/// Writes a line to the host's log, tagged with the plugin (rate-limited there).
pub fn log(level: Level, message: &str) {
    (host().log)(level, message)
}

/// Looks `key` up in table `table`, one call across the boundary; plugin code
/// calls it through a declared table ([`crate::Table::get`]).
pub(crate) fn lookup(table: &str, key: &str) -> Option<String> {
    (host().lookup)(table, key)
}

pub(crate) fn lookup_many(
    table: &str,
    keys: &[u8],
    ends: &[u32],
) -> (Vec<u8>, Vec<u32>, Vec<bool>) {
    (host().lookup_many)(table, keys, ends)
}
