#[derive(weir_sdk::Config)]
pub struct Settings {
    #[config(default = "1")]
    limit: Option<u32>,
}

fn main() {}
