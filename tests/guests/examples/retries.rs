//! retries: asks for its first two batches to be retried later, then keeps everything (must cause: the batches held and retried with backoff, nothing lost or duplicated).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use std::sync::atomic::{AtomicU32, Ordering};

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};

static CALLS: AtomicU32 = AtomicU32::new(0);

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "retries".into(), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        if CALLS.fetch_add(1, Ordering::Relaxed) < 2 {
            return Err(RetryLater { reason: "reference table not loaded yet".into() });
        }
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
