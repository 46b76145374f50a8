use weir_sdk::{filter, Event};

#[filter(reads(action: text))]
fn keep(event: &Event) -> bool {
    event.has(reads::action) && event.get(reads::user_id).is_some()
}

fn main() {}
