//! `weir top`: a live view of a running instance, from its metrics endpoint.

use std::time::Duration;

use super::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The instance's `[metrics] address`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    address: String,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Print this many frames, then exit (default: until interrupted).
    #[arg(long)]
    frames: Option<u64>,
}

pub async fn execute(args: Args) -> Result<(), Failure> {
    let every = Duration::from_secs_f64(args.interval.max(0.2));
    Ok(weir::ops::top::run(&args.address, every, args.frames).await?)
}
