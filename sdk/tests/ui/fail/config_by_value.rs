use weir_sdk::{filter, Event};

#[filter(reads(action: text))]
fn keep(event: &Event, config: String) -> bool {
    event.has(&config)
}

fn main() {}
