//! amplifies: asks lookup-many for 60 000 keys in one call for "note":"amplify" and adds how many were found (must cause: the lookup's cost bounded, a dead letter or a count, the rest enriched).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::host::lookup_many;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
use weir_test_guests::payload_has;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "amplifies".replace('_', "-"),
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
            if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"amplify""#) {
                let keys = vec![b'k'; 60_000];
                let ends: Vec<u32> = (1..=60_000).collect();
                let (_values, _value_ends, found) = lookup_many("big", &keys, &ends);
                let count = found.iter().filter(|f| **f).count();
                fields.extend_from_slice(format!(r#"{{"weir_test":"{count}"}}"#).as_bytes());
            } else {
                fields.extend_from_slice(br#"{"weir_test":"ok"}"#);
            }
            field_ends.push(fields.len() as u32);
        }
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
