//! undeclared: declares it writes only `weir_test`, but also adds `country` and `event_id` for "note":"sneak" (must cause: a dead letter for the undeclared fields, the rest enriched).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "undeclared".replace('_', "-"),
            version: "1.0.0".into(),
            reads: vec![],
            writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: true }],
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let mut fields = Vec::new();
        let mut field_ends = Vec::new();
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"sneak""#) {
                fields.extend_from_slice(br#"{"weir_test":"ok","country":"XX","event_id":"forged"}"#);
            } else {
                fields.extend_from_slice(br#"{"weir_test":"ok"}"#);
            }
            field_ends.push(fields.len() as u32);
        }
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
