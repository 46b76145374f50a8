//! sleeps: sleeps 10 s in a blocking call for events with "note":"sleep" (must cause: a blocked-call dead letter, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "sleeps".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"sleep""#) {
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
        }
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
