use weir_sdk::{filter, Event};

#[filter(reads(action: text))]
fn keep(event: &Event, config: String) -> bool {
    let _ = config;
    event.has(reads::action)
}

fn main() {}
