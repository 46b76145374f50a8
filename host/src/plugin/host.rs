//! What the host gives a guest, and bounds: granted files staged in a private
//! folder, standard output and error as bounded buffers, the memory limiter,
//! the log budget, the host imports (`log`, `lookup`, `lookup-many`), and
//! `guest_text`, which escapes and cuts anything a guest says.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings;
use super::Level;

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
pub(super) const OUTPUT_CAP: usize = 64 << 10;

/// A guest's standard output or error: always writable, bounded, drained after
/// every call into log lines.
#[derive(Clone, Default)]
pub struct GuestOutput(Arc<std::sync::Mutex<OutputBuf>>);

#[derive(Default)]
pub(super) struct OutputBuf {
    kept: Vec<u8>,
    dropped: u64,
}

impl GuestOutput {
    pub(super) fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = OUTPUT_CAP.saturating_sub(b.kept.len());
        let take = bytes.len().min(room);
        b.kept.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// What was written since the last take (the kept part).
    pub(super) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()).kept)
    }

    /// Bytes dropped over the cap since the last call.
    pub(super) fn take_dropped(&self) -> u64 {
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
pub(super) struct PeakLimits {
    pub(super) inner: StoreLimits,
    pub(super) peak: usize,
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

pub(super) const LOG_BURST: f64 = 100.0;
pub(super) const LOG_PER_SECOND: f64 = 20.0;
/// The longest plugin log line, in bytes (before escaping).
pub const LOG_LINE_MAX: usize = 1024;
/// Bytes of log lines one call may write.
pub const LOG_BYTES_PER_CALL: usize = 16 << 10;

impl LogBudget {
    pub(super) fn new() -> LogBudget {
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

    pub(super) fn new_call(&mut self) {
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
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: PeakLimits,
    pub(super) plugin: String,
    pub(super) log_budget: LogBudget,
    pub(super) lookups: crate::plugin::lookup::Lookups,
    /// The instance's memory cap: no host answer may be larger.
    pub(super) memory_cap: usize,
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
pub(super) const TOO_LARGE: &str = "host answer over the memory cap";

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
        let mut value = Vec::new();
        if !t.table().get_into(&key, &mut value) {
            return Ok(None);
        }
        // Tables hold text: CSV fields, query results, JSON written by the host.
        Ok(Some(String::from_utf8_lossy(&value).into_owned()))
    }

    /// A table the step was not granted answers "absent" for every key. An
    /// answer larger than the guest's memory cap traps before it is built.
    fn lookup_many(
        &mut self,
        table: String,
        keys: Vec<u8>,
        key_ends: Vec<u32>,
    ) -> wasmtime::Result<(Vec<u8>, Vec<u32>, Vec<bool>)> {
        let rows = self.lookups.get(&table).map(|t| t.table());
        // The ends and flags alone must fit too.
        let mut budget = self.memory_cap.saturating_sub(key_ends.len() * 5);
        let mut values = Vec::new();
        let mut ends = Vec::with_capacity(key_ends.len());
        let mut found = Vec::with_capacity(key_ends.len());
        let mut start = 0usize;
        for &end in &key_ends {
            let end = (end as usize).clamp(start, keys.len());
            let before = values.len();
            let hit = match (std::str::from_utf8(&keys[start..end]), rows.as_ref()) {
                (Ok(k), Some(rows)) => rows.get_into(k, &mut values),
                _ => false,
            };
            start = end;
            let len = values.len() - before;
            if len > budget {
                return Err(wasmtime::Error::msg(format!(
                    "{TOO_LARGE}: `lookup-many` on `{}` for {} keys would answer more than {} MiB",
                    guest_text(&table, 64),
                    key_ends.len(),
                    self.memory_cap >> 20
                )));
            }
            budget -= len;
            found.push(hit);
            ends.push(values.len() as u32);
        }
        Ok((values, ends, found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
