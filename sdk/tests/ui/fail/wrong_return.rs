use weir_sdk::{filter, Event};

#[filter(reads(action: text))]
fn keep(event: &Event) -> i32 {
    i32::from(event.has(reads::action))
}

fn main() {}
