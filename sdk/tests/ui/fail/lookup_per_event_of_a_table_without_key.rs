use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(pin_id: int), writes(category: text?), lookups(categories))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::category, event.lookup(lookups::categories));
}

fn main() {}
