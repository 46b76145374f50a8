//! `weir offsets show|set`: where each partition stands, and setting where a
//! pipeline resumes.

use std::path::PathBuf;

use weir::config::{Config, PipelineConfig};
use weir::source::positions::{Positions, Target};

use super::Failure;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Each partition's stored next offset, its totals, and the lag behind Kafka.
    Show {
        #[arg(short, long)]
        config: PathBuf,
        /// The pipeline (default: every pipeline of the file).
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
    match command {
        Command::Show { config, pipeline } => {
            let config = Config::load(&config)?;
            let chosen: Vec<&PipelineConfig> = match pipeline.as_deref() {
                Some(name) => vec![super::pick(&config, Some(name))?],
                None => config.pipelines.iter().collect(),
            };
            for (i, p) in chosen.into_iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if p.archive.is_some() {
                    archive(&config, p, None).await?;
                } else {
                    show(&config, p).await?;
                }
            }
            Ok(())
        }
        Command::Set {
            config,
            pipeline,
            partition,
            to,
        } => {
            let config = Config::load(&config)?;
            let p = super::pick(&config, pipeline.as_deref())?;
            if p.archive.is_some() {
                return archive(&config, p, Some((partition, to))).await;
            }
            let positions = Positions::open(&config, p).await?;
            for (part, next) in positions.set(partition, to).await? {
                println!("partition {part}: next offset set to {next}");
            }
            positions.close().await;
            Ok(())
        }
    }
}

/// A table pipeline's `weir_offsets` rows against Kafka.
async fn show(config: &Config, p: &PipelineConfig) -> Result<(), Failure> {
    let positions = Positions::open(config, p).await?;
    println!(
        "pipeline {}  group {}  topic {}",
        p.name,
        p.group(),
        p.topic
    );
    header("updated_at");
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
        print_lost(at.lost());
    }
    positions.close().await;
    Ok(())
}

/// `offsets show|set` for an archive pipeline: its partitions' logs.
/// `set`: `Some((partition, target))`; `None` shows.
async fn archive(
    config: &Config,
    p: &PipelineConfig,
    set: Option<(Option<i32>, Target)>,
) -> Result<(), Failure> {
    use weir::archive::log::{Kind, Record};
    use weir::archive::PartitionLog;
    let bucket = super::archive::open_bucket(config, p)?;
    let (consumer, partitions) = weir::source::positions::kafka_client(config, p)?;
    let watermarks = |part: i32| {
        use rdkafka::consumer::Consumer as _;
        consumer
            .fetch_watermarks(&p.topic, part, std::time::Duration::from_secs(10))
            .ok()
    };
    match set {
        None => {
            println!(
                "pipeline {}  group {}  topic {}  archive {}",
                p.name,
                p.group(),
                p.topic,
                bucket.url()
            );
            header("log");
            for part in partitions {
                let head = PartitionLog::new(p.group(), &p.topic, part)
                    .head(&bucket)
                    .await
                    .map_err(anyhow::Error::from)?;
                let Some(h) = head else {
                    println!("{part:>9} (nothing archived yet)");
                    continue;
                };
                let (lo, hi) = watermarks(part).unwrap_or((-1, -1));
                let state = match &h.pending {
                    Some(r) => format!(
                        "record {}: generation {}..={} being written",
                        h.seq, r.start, r.end
                    ),
                    None => format!("record {}", h.seq),
                };
                println!(
                    "{part:>9} {:>12} {lo:>12} {hi:>12} {:>10} {:>12} {:>10} {:>12}  {state}",
                    h.position,
                    if hi >= 0 {
                        (hi - h.position).max(0)
                    } else {
                        -1
                    },
                    h.totals.rows,
                    h.totals.filtered,
                    h.totals.dead_letters,
                );
                print_lost(weir::source::positions::lost(h.position, lo));
            }
        }
        Some((partition, to)) => {
            let chosen: Vec<i32> = match partition {
                Some(one) => vec![one],
                None => partitions,
            };
            for part in chosen {
                let log = PartitionLog::new(p.group(), &p.topic, part);
                let head = log.head(&bucket).await.map_err(anyhow::Error::from)?;
                if let Some(r) = head.as_ref().and_then(|h| h.pending.as_ref()) {
                    return Err(Failure::Failed(anyhow::anyhow!(
                        "partition {part}: generation {}..={} is being written; run the pipeline until it is committed, then set",
                        r.start, r.end
                    )));
                }
                let (lo, hi) = watermarks(part).ok_or_else(|| {
                    anyhow::anyhow!("cannot read partition {part}'s offsets from Kafka")
                })?;
                let next = match to {
                    Target::Earliest => lo,
                    Target::Latest => hi,
                    Target::Offset(o) => o,
                };
                let (seq, totals) = head.map(|h| (h.seq, h.totals)).unwrap_or_default();
                // A commit of no files: a running owner finds its next record
                // taken, is fenced, and re-reads the log.
                let record = Record {
                    seq: seq + 1,
                    kind: Kind::Commit,
                    start: next,
                    end: next - 1,
                    position: next,
                    files: Vec::new(),
                    totals,
                    writer: format!("weir offsets set ({})", weir::archive::log::writer_id()),
                    at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                };
                log.append(&bucket, &record)
                    .await
                    .map_err(anyhow::Error::from)?;
                println!("partition {part}: next offset set to {next}");
            }
        }
    }
    Ok(())
}

/// The line under a partition whose unread events Kafka deleted.
fn print_lost(lost: Option<std::ops::Range<i64>>) {
    if let Some(lost) = lost {
        println!(
            "          DATA LOSS UPSTREAM: offsets {}..{} were deleted before being read",
            lost.start, lost.end
        );
    }
}

/// The column names of `offsets show`, the last one `last`.
fn header(last: &str) {
    println!(
        "{:>9} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}  {last}",
        "partition",
        "next_offset",
        "log_start",
        "log_end",
        "lag",
        "rows",
        "filtered",
        "dead_letters"
    );
}
