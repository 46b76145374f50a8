use weir_sdk::{filter, Event};

#[filter(reads("user-agent": text?))]
fn keep(event: &Event) -> bool {
    event.has(reads::user_agent)
}

fn main() {}
