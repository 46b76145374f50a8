//! noisy_init: its init fails with a 5 MiB message that starts by clearing the screen (must cause: the step refused with the message shortened and escaped).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "noisy_init".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        let line = "init failed\n";
        Err(format!("\x1b[2J{}", line.repeat((5 << 20) / line.len())))
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
