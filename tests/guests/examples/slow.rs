//! slow: spends about 20 µs per event, legally (must cause nothing: every event flows on).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "slow".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        for _ in 0..events.offsets.len() {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_micros(20) {}
        }
        Ok((vec![true; events.offsets.len()], Vec::new()))
    }
}

export!(Plugin);
