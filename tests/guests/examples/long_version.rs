//! long_version: describes itself with a 3000-character version, drops and also rejects events with "note":"reject" (must cause: the version shortened wherever it is shown, each such event one dead letter, counted as one, the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "long_version".replace('_', "-"), version: "9".repeat(3000), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let mut rejected = Vec::new();
        let mut keep = vec![true; events.offsets.len()];
        for (i, k) in keep.iter_mut().enumerate() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"reject""#) {
                *k = false;
                rejected.push(Rejection { index: i as u32, reason: "refused for the test".into() });
            }
        }
        Ok((keep, rejected))
    }
}

export!(Plugin);
