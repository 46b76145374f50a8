//! `weir gen` and `weir gen-pins`: events into Kafka, the pin catalog into
//! the database.

use weir::store::db;
use weir::tools::gen::{self, GenArgs};

use super::Failure;

#[derive(clap::Args)]
pub struct PinsArgs {
    /// Pins to write, by popularity rank (as `weir gen --pins`).
    #[arg(long, default_value_t = 200_000)]
    pins: u64,
    /// The database.
    #[arg(long, env = "WEIR_SINGLESTORE_URL")]
    url: String,
}

pub async fn execute(args: GenArgs) -> Result<(), Failure> {
    let s = gen::run(&args, !args.json).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&s).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    println!(
        "produced {} events to {} in {:.1} s ({:.0}/s): {} good, {} from bots, \
         {} malformed, {} not objects, {} ill-typed, {} oversized",
        s.produced,
        s.topic,
        s.seconds,
        s.produced as f64 / s.seconds.max(1e-9),
        s.good,
        s.bots,
        s.malformed,
        s.non_object,
        s.ill_typed,
        s.oversized
    );
    Ok(())
}

pub async fn execute_pins(args: PinsArgs) -> Result<(), Failure> {
    let pool = db::pool(&args.url)?;
    let n = gen::write_catalog(&pool, args.pins).await?;
    println!(
        "wrote {} categories and {n} pins to {}",
        gen::CATEGORIES.len(),
        db::describe_url(&args.url)
    );
    Ok(())
}
