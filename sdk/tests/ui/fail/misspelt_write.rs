use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(ip: text?), writes(country: text?))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(writes::contry, event.get(reads::ip));
}

fn main() {}
