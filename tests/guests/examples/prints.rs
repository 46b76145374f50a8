//! prints: prints 2 KiB to stdout on every call and keeps every event (must cause: its output captured and capped, every event flowing on).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "prints".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        println!("{}", "p".repeat(2048));
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
