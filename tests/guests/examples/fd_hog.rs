//! fd_hog: opens its granted file 5000 times without closing it for events with "note":"fds" (must cause: the handles capped, with a rejection naming the failed open, or all opens served and the rest kept).
wit_bindgen::generate!({ path: "../../wit", world: "filter-plugin" });

use std::fs::File;
use std::sync::{Mutex, OnceLock};

use exports::weir::plugin::filter::Guest;
use weir::plugin::types::{Batch, Description, Rejection, RetryLater};
use weir_test_guests::payload_has;

/// The path of the granted file, from the config key starting with `file.`.
static PATH: OnceLock<String> = OnceLock::new();
/// Every file opened, never dropped.
static OPEN: Mutex<Vec<File>> = Mutex::new(Vec::new());

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description { name: "fd_hog".replace('_', "-"), version: "1.0.0".into(), reads: vec![], writes: vec![] }
    }

    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let path = config
            .into_iter()
            .find(|(k, _)| k.starts_with("file."))
            .map(|(_, v)| v)
            .ok_or("no file.* key in the step's config")?;
        let _ = PATH.set(path);
        Ok(())
    }

    fn keep(events: Batch) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater> {
        let path = PATH.get().cloned().unwrap_or_default();
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let mut rejected = Vec::new();
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"fds""#) {
                for n in 1..=5000 {
                    match File::open(&path) {
                        Ok(f) => open.push(f),
                        Err(e) => {
                            rejected.push(Rejection { index: i as u32, reason: format!("open #{n}: {e}") });
                            break;
                        }
                    }
                }
            }
        }
        Ok((vec![true; events.offsets.len()], rejected))
    }
}

export!(Plugin);
