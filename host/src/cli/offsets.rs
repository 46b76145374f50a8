//! `weir offsets show|set`: where each partition stands, and setting where a
//! pipeline resumes.

use std::path::PathBuf;

use weir::config::Config;
use weir::source::positions::{Positions, Target};

use super::Failure;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Each partition's stored next offset, its totals, and the lag behind Kafka.
    Show {
        #[arg(short, long)]
        config: PathBuf,
        /// The pipeline (default: the only one).
        #[arg(short, long)]
        pipeline: Option<String>,
    },
    /// Set where a pipeline resumes. Stop the pipeline first: a running owner is
    /// fenced by its next commit and re-reads the stored offset.
    Set {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(short, long)]
        pipeline: Option<String>,
        /// One partition (default: every partition of the topic).
        #[arg(long)]
        partition: Option<i32>,
        /// An offset, `earliest` or `latest`.
        #[arg(long)]
        to: Target,
    },
}

pub async fn execute(command: Command) -> Result<(), Failure> {
    let (Command::Show { config, pipeline }
    | Command::Set {
        config, pipeline, ..
    }) = &command;
    let config = Config::load(config)?;
    let p = super::pick(&config, pipeline.as_deref())?;
    let positions = Positions::open(&config, p).await?;
    match command {
        Command::Show { .. } => {
            println!(
                "pipeline {}  group {}  topic {}",
                p.name,
                p.group(),
                p.topic
            );
            println!(
                "{:>9} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}  updated_at",
                "partition",
                "next_offset",
                "log_start",
                "log_end",
                "lag",
                "rows",
                "filtered",
                "dead_letters"
            );
            for at in positions.all().await? {
                let Some(r) = &at.stored else {
                    println!("{:>9} (not yet claimed)", at.partition);
                    continue;
                };
                let (lo, hi) = at.log.unwrap_or((-1, -1));
                println!(
                    "{:>9} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}  {}",
                    r.partition,
                    r.next_offset,
                    lo,
                    hi,
                    at.lag().unwrap_or(-1),
                    r.rows_total,
                    r.filtered_total,
                    r.dead_letters_total,
                    r.updated_at
                );
                if let Some(lost) = at.lost() {
                    println!(
                        "          DATA LOSS UPSTREAM: offsets {}..{} were deleted before being read",
                        lost.start, lost.end
                    );
                }
            }
        }
        Command::Set { partition, to, .. } => {
            for (part, next) in positions.set(partition, to).await? {
                println!("partition {part}: next offset set to {next}");
            }
        }
    }
    positions.close().await;
    Ok(())
}
