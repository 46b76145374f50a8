//! picky_v1: the plugin `picky` at version 1.0.0, a buggy enricher: it refuses events from bots ("bot" anywhere in the payload) and tags the others {"weir_test": "v1"} (must cause: bot events as dead letters of step `picky`; fixed by picky_v2, then replayed).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, Rejection, RetryLater};
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "picky".into(),
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
        let mut rejected = Vec::new();
        for i in 0..events.offsets.len() {
            if payload_has(&events.payloads, &events.payload_ends, i, "bot") {
                rejected.push(Rejection { index: i as u32, reason: "picky 1.0.0 cannot handle bots".into() });
            } else {
                fields.extend_from_slice(br#"{"weir_test":"v1"}"#);
            }
            field_ends.push(fields.len() as u32);
        }
        Ok(Additions { fields, field_ends, rejected })
    }
}

export!(Plugin);
