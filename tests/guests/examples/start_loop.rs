//! start_loop: an enricher that loops forever in `_initialize`, which the component runs when it is instantiated, before any export (must cause: instantiation stopped by its deadline, the step refused instead of a hung pipeline).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, RetryLater};

/// Spins forever. Exported as `_initialize`, so the component's start section
/// calls it during instantiation (a `.init_array` constructor would only run at
/// the first export call: wit-bindgen runs the constructors lazily).
#[unsafe(export_name = "_initialize")]
pub extern "C" fn spin() {
    let mut spins: u64 = 0;
    loop {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "start_loop".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let n = events.offsets.len();
        Ok(Additions { fields: Vec::new(), field_ends: vec![0; n], rejected: Vec::new() })
    }
}

export!(Plugin);
