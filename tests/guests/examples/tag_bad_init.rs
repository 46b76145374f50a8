//! tag_bad_init: the plugin `tag` at version 3.0.0, whose init always fails (must cause: a reload of it rejected, the serving version staying).
wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

use exports::weir::plugin::enricher::Guest;
use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};
use weir_test_guests::same_for_each;

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "tag".into(),
            version: "3.0.0".into(),
            reads: vec![],
            writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: true }],
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Err("tag 3.0.0 needs a `colour` setting".into())
    }

    fn enrich(events: Batch) -> Result<Additions, RetryLater> {
        let (fields, field_ends) = same_for_each(events.offsets.len(), br#"{"weir_test":"v1"}"#);
        Ok(Additions { fields, field_ends, rejected: Vec::new() })
    }
}

export!(Plugin);
