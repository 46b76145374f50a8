//! reads-file: adds the first line of its granted file `greeting.txt` as `weir_test`, and tries to overwrite it for events with "note":"write" (must cause: the line on every event; a rejection naming the refused write).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use std::sync::OnceLock;

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, Rejection, RetryLater};
use weir_test_guests::payload_has;

static PATH: OnceLock<String> = OnceLock::new();

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "reads-file".into(),
            version: "1.0.0".into(),
            reads: vec![],
            writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: false }],
        }
    }

    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let path = config
            .into_iter()
            .find(|(k, _)| k == "file.greeting.txt")
            .map(|(_, v)| v)
            .ok_or("no file.greeting.txt in the step's config")?;
        let _ = PATH.set(path);
        Ok(())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let path = PATH.get().cloned().unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| RetryLater { reason: format!("read {path}: {e}") })?;
        let line = text.lines().next().unwrap_or_default().replace('"', "");
        let mut fields = Vec::new();
        let mut field_ends = Vec::new();
        let mut rejected = Vec::new();
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"write""#) {
                if let Err(e) = std::fs::write(&path, b"overwritten") {
                    rejected.push(Rejection { index: i as u32, reason: format!("write {path}: {e}") });
                }
            }
            fields.extend_from_slice(format!(r#"{{"weir_test":"{line}"}}"#).as_bytes());
            field_ends.push(fields.len() as u32);
        }
        Ok(Additions { fields, field_ends, rejected })
    }
}

export!(Plugin);
