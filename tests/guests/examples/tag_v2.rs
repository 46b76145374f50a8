//! tag_v2: the plugin `tag` at version 2.0.0, adding {"weir_test": "v2"} to every event (must cause: rows tagged v2 while it serves; hot reload swaps it).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
#[allow(unused_imports)]
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "tag".into(),
            version: "2.0.0".into(),
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
            let _ = i;
            fields.extend_from_slice(br#"{"weir_test":"v2"}"#);
            field_ends.push(fields.len() as u32);
        }
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
