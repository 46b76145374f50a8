//! `weir archive ls`: what an archive pipeline has written, per date
//! partition, from its partitions' logs, checked against the bucket's listing.

use std::path::PathBuf;

use anyhow::Context as _;
use weir::archive::{inventory, Bucket};
use weir::config::Config;

use super::Failure;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Files, rows and bytes per date partition; files the logs name that are
    /// missing, and files no commit names.
    Ls {
        #[arg(short, long)]
        config: PathBuf,
        /// The pipeline (default: the only archive pipeline).
        #[arg(short, long)]
        pipeline: Option<String>,
    },
}

pub async fn execute(command: Command) -> Result<(), Failure> {
    let Command::Ls { config, pipeline } = command;
    let config = Config::load(&config)?;
    let p = match pipeline {
        Some(_) => super::pick(&config, pipeline.as_deref())?,
        None => {
            let archives: Vec<_> = config
                .pipelines
                .iter()
                .filter(|p| p.archive.is_some())
                .collect();
            match archives[..] {
                [one] => one,
                [] => {
                    return Err(Failure::Unusable(anyhow::anyhow!(
                        "{} has no archive pipeline",
                        config.path.display()
                    )))
                }
                _ => super::pick(&config, None)?,
            }
        }
    };
    let bucket = open_bucket(&config, p)?;
    let (_, partitions) = weir::source::positions::kafka_client(&config, p)?;
    let inv = inventory(&bucket, p.group(), &p.topic, &partitions)
        .await
        .with_context(|| format!("reading the archive at {}", bucket.url()))?;
    println!(
        "pipeline {}  topic {}  archive {}",
        p.name,
        p.topic,
        bucket.url()
    );
    println!(
        "{:<32} {:>8} {:>12} {:>14}",
        "partition", "files", "rows", "bytes"
    );
    let mut total = weir::archive::Listed::default();
    for (folder, l) in &inv.by_folder {
        println!("{folder:<32} {:>8} {:>12} {:>14}", l.files, l.rows, l.bytes);
        total.files += l.files;
        total.rows += l.rows;
        total.bytes += l.bytes;
    }
    println!(
        "{:<32} {:>8} {:>12} {:>14}",
        "total", total.files, total.rows, total.bytes
    );
    let d = &inv.dead_letters;
    println!(
        "{:<32} {:>8} {:>12} {:>14}",
        "_dead_letters", d.files, d.rows, d.bytes
    );
    for (part, head) in &inv.heads {
        let pending = head
            .pending
            .as_ref()
            .map(|r| format!("  (generation {}..={} not yet committed)", r.start, r.end))
            .unwrap_or_default();
        println!(
            "kafka partition {part}: next offset {}, rows {}, filtered {}, dead letters {}{pending}",
            head.position, head.totals.rows, head.totals.filtered, head.totals.dead_letters
        );
    }
    for k in &inv.missing {
        println!("MISSING: {k} is committed but not in the bucket");
    }
    for k in &inv.unlisted {
        println!("not committed: {k} (a try that never committed; replaced or left over)");
    }
    if inv.missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::Differs)
    }
}

/// An archive pipeline's bucket, or an error saying the pipeline has none.
pub fn open_bucket(config: &Config, p: &weir::config::PipelineConfig) -> Result<Bucket, Failure> {
    let a = p.archive.as_ref().ok_or_else(|| {
        Failure::Unusable(anyhow::anyhow!(
            "pipeline `{}` writes a table, not an archive",
            p.name
        ))
    })?;
    let base = config.path.parent().unwrap_or(std::path::Path::new("."));
    Bucket::open(a, base)
        .map_err(|e| Failure::Unusable(anyhow::anyhow!("pipeline `{}`: {e}", p.name)))
}
