//! traps: overflows its stack for "note":"stack", exits with status 3 for "note":"exit", creates pollables until that fails for "note":"handles" (must cause: a dead letter for each, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
use weir_test_guests::payload_has;

/// Recurses until the wasm call stack is exhausted (the way out is never
/// reached). The call goes through an opaque function pointer and its result is
/// used after it, so the compiler can turn it neither into a loop nor into a
/// tail call; no local lives in linear memory, so the shadow stack stays put.
#[inline(never)]
fn deeper(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let next: fn(u64) -> u64 = std::hint::black_box(deeper);
    next(n + 1) ^ n
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "traps".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"stack""#) {
                std::hint::black_box(deeper(0));
            }
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"exit""#) {
                std::process::exit(3);
            }
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"handles""#) {
                let mut pollables = Vec::new();
                loop {
                    pollables.push(wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
                }
            }
        }
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
