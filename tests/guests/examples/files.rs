//! files: opens /etc/passwd, which it was not granted, for events with "note":"file" (must cause: a rejection naming the refusal).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "files".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let mut rejected = Vec::new();
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"file""#) {
                match std::fs::read("/etc/passwd") {
                    Ok(b) => rejected.push(Rejection { index: i as u32, reason: format!("read {} bytes of /etc/passwd", b.len()) }),
                    Err(e) => rejected.push(Rejection { index: i as u32, reason: format!("open /etc/passwd: {e}") }),
                }
            }
        }
        Ok((vec![true; events.offsets.len()], rejected))
    }
}

export!(Plugin);
