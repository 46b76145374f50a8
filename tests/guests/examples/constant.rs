//! constant: adds {"weir_test": "constant"} to every event (must cause: the field on every row).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
use weir_test_guests::same_for_each;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "constant".replace('_', "-"),
            version: "1.0.0".into(),
            reads: vec![],
            writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: true }],
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let (fields, field_ends) = same_for_each(events.offsets.len(), br#"{"weir_test":"constant"}"#);
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
