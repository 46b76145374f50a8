//! `weir test`: a pipeline's chain run offline over events in a JSON-lines
//! file, compared with expected output if asked.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use weir::config::Config;

use super::Failure;

#[derive(clap::Args)]
pub struct Args {
    #[arg(short, long)]
    config: PathBuf,
    /// The pipeline (default: the only one).
    #[arg(short, long)]
    pipeline: Option<String>,
    /// Events, one JSON object per line.
    #[arg(long)]
    input: PathBuf,
    /// Write dead letters here as JSON lines (default: stderr, prefixed `dead letter: `).
    #[arg(long)]
    dead_letters: Option<PathBuf>,
    /// Compare kept events, then dead letters, with this file; fail on a difference.
    #[arg(long)]
    expect: Option<PathBuf>,
}

pub async fn execute(args: Args) -> Result<(), Failure> {
    let config = Config::load(&args.config)?;
    let p = super::pick_table(&config, args.pipeline.as_deref())?;
    let report = weir::tools::offline::test(&config, p, &args.input).await?;
    let mut stdout = std::io::stdout().lock();
    for line in &report.kept {
        writeln!(stdout, "{line}")?;
    }
    drop(stdout);
    match &args.dead_letters {
        Some(file) => {
            let text: String = report
                .dead_letters
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?
        }
        None => {
            for l in &report.dead_letters {
                eprintln!("dead letter: {l}");
            }
        }
    }
    for (name, st) in &report.steps {
        let per_event = st.time.as_nanos() / u128::from(st.events_in.max(1));
        eprintln!(
            "step {name}: in {}, kept {}, dropped {}, dead letters {}, faults {}, {per_event} ns/event",
            st.events_in, st.kept, st.dropped, st.dead_letters, st.faults
        );
    }
    eprintln!(
        "{} events: {} kept, {} dead letters; chain {} ns/event",
        report.events,
        report.kept.len(),
        report.dead_letters.len(),
        report.chain_nanos / report.events.max(1) as u128
    );
    let Some(expected) = args.expect else {
        return Ok(());
    };
    let want = std::fs::read_to_string(&expected)
        .with_context(|| format!("reading {}", expected.display()))?;
    let want: Vec<&str> = want.lines().collect();
    let got: Vec<&str> = report
        .kept
        .iter()
        .chain(&report.dead_letters)
        .map(String::as_str)
        .collect();
    if let Some(n) = (0..want.len().max(got.len())).find(|&n| want.get(n) != got.get(n)) {
        return Err(Failure::Failed(anyhow::anyhow!(
            "output differs from {} at line {}:\n  expected: {}\n  got:      {}\n({} lines expected, {} produced)",
            expected.display(),
            n + 1,
            want.get(n).unwrap_or(&"<nothing>"),
            got.get(n).unwrap_or(&"<nothing>"),
            want.len(),
            got.len()
        )));
    }
    eprintln!("output matches {}", expected.display());
    Ok(())
}
