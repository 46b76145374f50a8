use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(ip: text?), writes(latitude: float?))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::latitude, event.get(reads::ip));
}

fn main() {}
