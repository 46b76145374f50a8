use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(pin: int), writes(category: text?), lookups(categories = "pin_id"))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::category, event.lookup(lookups::categories));
}

fn main() {}
