//! category-enricher: pin id → category, through the host's lookup table
//! `categories` (loaded from a CSV file or an SQL query and refreshed by the
//! host; see `[lookup.categories]` in the configuration). The whole batch is
//! looked up in one call. A pin the table does not know gets a null category.
//!
//! ```toml
//! [[pipeline.step]]
//! plugin = "category-enricher"
//! lookups = ["categories"]
//! ```

use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(pin_id: int), writes(category: text?), lookups(categories = "pin_id"))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::category, event.lookup(lookups::categories));
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{lookup_table, Added, Outcome};

    use super::{weir_plugin, writes};

    #[test]
    fn pins_get_their_category_and_unknown_pins_null() {
        lookup_table(
            "categories",
            &[("7919", "Home Decor"), ("15838", "Food & Drink")],
        );
        let out = weir_plugin::test(
            &[
                r#"{"pin_id":7919}"#,
                r#"{"pin_id":15838}"#,
                r#"{"pin_id":1}"#,
                r#"{}"#,
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            out[0].added().get(writes::category).as_deref(),
            Some("Home Decor")
        );
        assert_eq!(
            out[1],
            Outcome::Enriched(Added(r#"{"category":"Food & Drink"}"#.into()))
        );
        assert!(out[2].added().is_null(writes::category));
        assert!(out[3].added().is_null(writes::category));
    }

    #[test]
    fn takes_no_configuration() {
        let err = weir_plugin::test(&[], &[("table", "x")]).unwrap_err();
        assert_eq!(
            err,
            "config `table`: unknown key: the plugin takes no configuration"
        );
    }
}
