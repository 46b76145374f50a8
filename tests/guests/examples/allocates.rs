//! allocates: allocates without end on events with "note":"alloc" (must cause: a memory dead letter, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "allocates".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        for i in 0..events.offsets.len() {
            while payload_has(&events.payloads, &events.payload_ends, i, r#""note":"alloc""#) {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        Ok((vec![hoard.is_empty(); events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
