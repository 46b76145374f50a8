//! short: answers one result too few when an event has "note":"short" (must cause: a bad-result dead letter for that event, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "short".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let n = events.offsets.len();
        let short = (0..n).any(|i| payload_has(&events.payloads, &events.payload_ends, i, r#""note":"short""#));
        Ok((vec![true; if short { n - 1 } else { n }], Vec::new()))
    }
}

export!(Plugin);
