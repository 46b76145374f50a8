use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(ts: int?), writes(hour: int))]
fn enrich(event: &Event, out: &mut Fields) {
    out.set(
        writes::hour,
        event.get(reads::ts).map(|ms| ms / 3_600_000 % 24),
    );
}

fn main() {}
