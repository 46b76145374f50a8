use weir_sdk::{filter, Event};

#[filter(reads(pin_id: integer))]
fn keep(event: &Event) -> bool {
    event.has(reads::pin_id)
}

fn main() {}
