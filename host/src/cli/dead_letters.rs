//! `weir dead-letters show|replay`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use weir::config::Config;
use weir::store::db;
use weir::tools::replay::{self, Selection};

use super::Failure;

#[derive(clap::Args)]
pub struct Filter {
    #[arg(short, long)]
    config: PathBuf,
    /// The pipeline (default: the only one).
    #[arg(short, long)]
    pipeline: Option<String>,
    /// Only dead letters written since then: `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339,
    /// or an age such as `30m`, `2h`, `1d`.
    #[arg(long, value_parser = replay::parse_since)]
    since: Option<chrono::NaiveDateTime>,
    /// Only dead letters whose reason contains this text.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Dead letters by stage and reason, with how many were replayed.
    Show(Filter),
    /// Send dead letters through the pipeline's current chain into its table,
    /// exactly once: each one replayed is marked, so replaying again does
    /// nothing for it. Those refused again stay, with their new reason.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Do everything, then roll back: report what would happen.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn execute(command: Command) -> Result<(), Failure> {
    let (filter, replay) = match command {
        Command::Show(f) => (f, None),
        Command::Replay { filter, dry_run } => (filter, Some(dry_run)),
    };
    let config = Config::load(&filter.config)?;
    let p = super::pick_table(&config, filter.pipeline.as_deref())?;
    let pool = db::pool_for(&config)?;
    let selection = Selection {
        since: filter.since,
        reason: filter.reason.clone(),
    };
    let mut conn = db::connect(&pool, Duration::from_secs(15))
        .await
        .context("connecting to the database")?;
    db::ensure_own_tables(&mut conn)
        .await
        .map_err(anyhow::Error::from)?;
    match replay {
        None => {
            let lines = replay::show(&mut conn, p.group(), &p.topic, &selection)
                .await
                .map_err(anyhow::Error::from)?;
            drop(conn);
            if lines.is_empty() {
                println!("no dead letters for pipeline `{}`", p.name);
            }
            println!(
                "{:>8} {:>8}  {:<18} {:<27} reason",
                "count", "replayed", "stage", "last"
            );
            for l in lines {
                println!(
                    "{:>8} {:>8}  {:<18} {:<27} {}",
                    l.count, l.replayed, l.stage, l.last, l.reason
                );
            }
        }
        Some(dry_run) => {
            drop(conn);
            let mut only = config.clone();
            only.pipelines.retain(|q| q.name == p.name);
            let (prepared, _) = weir::pipeline::prepare(&only, &pool, true).await?;
            let r = replay::replay(&pool, &prepared[0], &selection, dry_run).await?;
            let truncated = if r.truncated > 0 {
                format!(
                    "; {} not replayable (only the first bytes of their payload were kept)",
                    r.truncated
                )
            } else {
                String::new()
            };
            println!(
                "{}{} dead letters of pipeline `{}` replayed: {} rows, {} filtered, {} refused again{truncated}",
                if dry_run { "dry run (rolled back): " } else { "" },
                r.selected,
                p.name,
                r.rows,
                r.filtered,
                r.still_dead,
            );
        }
    }
    let _ = pool.disconnect().await;
    Ok(())
}
