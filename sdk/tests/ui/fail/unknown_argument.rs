use weir_sdk::{filter, Event};

#[filter(reads(action: text), writes(x: text))]
fn keep(event: &Event) -> bool {
    event.has(reads::action)
}

fn main() {}
