#[weir_sdk::filter(reads(action: text))]
struct Keep;

fn main() {}
