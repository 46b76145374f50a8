//! How a call can fail, named: a trap is classified into a [`Fault`] with
//! the guest's words and top frames.

use super::engine::BLOCKING;
use super::guest_text;
use super::host::TOO_LARGE;
use std::time::Duration;

use super::Limits;

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
pub(super) fn frames(error: &wasmtime::Error) -> String {
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
pub(super) fn classify(
    error: wasmtime::Error,
    armed: Duration,
    limits: &Limits,
    stderr: &str,
) -> Fault {
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

/// Rust's panic hook prints `panicked at FILE:LINE:COL:\nMESSAGE`; keep MESSAGE.
pub(super) fn panic_message(stderr: &str) -> Option<String> {
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
}
