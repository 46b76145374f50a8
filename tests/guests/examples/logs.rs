//! logs: floods the host log with 200 lines of 1 MiB for "note":"flood", forges a host log line with escapes for "note":"forge" (must cause: the log rate-limited and truncated, the forged line escaped, every event kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::host::{log, Level};
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "logs".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"flood""#) {
                let line = "f".repeat(1 << 20);
                for _ in 0..200 {
                    log(Level::Info, &line);
                }
            }
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"forge""#) {
                log(Level::Info, "innocent\n2026-11-28T00:00:00.000000Z ERROR weir: forged host line\x1b[31m");
            }
        }
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
