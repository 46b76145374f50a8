//! drops-bots: drops events whose payload holds "bot" anywhere (bot user agents) (must cause: those events counted as filtered).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "drops_bots".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let keep = (0..events.offsets.len())
            .map(|i| !payload_has(&events.payloads, &events.payload_ends, i, "bot"))
            .collect();
        Ok((keep, Vec::new()))
    }
}

export!(Plugin);
