//! loops: loops forever on events with "note":"loop" (must cause: a deadline dead letter, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "loops".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let mut spins: u64 = 0;
        for i in 0..events.offsets.len() {
            while payload_has(&events.payloads, &events.payload_ends, i, r#""note":"loop""#) {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        Ok((vec![spins == 0; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
