use weir_sdk::testing::lookup_table;
use weir_sdk::{enricher, Event, Fields};

#[enricher(
    reads(pin_id: int?, board: text?),
    writes(category: text?, owner: text?),
    lookups(categories = "pin_id", owners)
)]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::category, event.lookup(lookups::categories));
    let board = event.get(reads::board);
    out.set(writes::owner, board.and_then(|b| lookups::owners.get(&b)));
}

fn main() {
    lookup_table("categories", &[("7", "Food")]);
    lookup_table("owners", &[("b1", "ann")]);
    let out = weir_plugin::test(
        &[
            r#"{"pin_id":7,"board":"b1"}"#,
            r#"{"pin_id":8,"board":"b2"}"#,
        ],
        &[],
    )
    .unwrap();
    assert_eq!(out[0].added().0, r#"{"category":"Food","owner":"ann"}"#);
    assert_eq!(out[1].added().0, r#"{"category":null,"owner":null}"#);
}
