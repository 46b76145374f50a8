use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(ip: text))]
fn enrich(event: &Event, out: &mut Fields) {
    let _ = (event, out);
}

fn main() {}
