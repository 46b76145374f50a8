use weir_sdk::{enricher, Event};

#[enricher(reads(ip: text), writes(country: text?))]
fn enrich(event: &Event) {
    let _ = event;
}

fn main() {}
