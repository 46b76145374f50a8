//! picky_v2: the plugin `picky` at version 2.0.0, fixed: it tags every event {"weir_test": "v2"} (must cause: replayed dead letters of picky 1.0.0 land as rows tagged v2).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
use weir_test_guests::same_for_each;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "picky".into(),
            version: "2.0.0".into(),
            reads: vec![],
            writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: true }],
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let (fields, field_ends) = same_for_each(events.offsets.len(), br#"{"weir_test":"v2"}"#);
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
