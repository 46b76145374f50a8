//! The `weir` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{error, info, warn};

use weir::config::{Config, ConfigError};
use weir::pipeline;
use weir::store::db;
use weir::store::offsets::OffsetTable;
use weir::tools::gen;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Kafka → WebAssembly steps → SingleStore, exactly once"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines of a configuration until SIGINT or SIGTERM.
    Run {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run a pipeline's chain offline over events in a JSON-lines file.
    Test {
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
    },
    /// Check a configuration without running it: the file, the plugins (world,
    /// contract version, init), the chain's fields, the lookup tables and each
    /// target table's columns and types.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// A live view of a running instance, read from its metrics endpoint:
    /// throughput, lag, freshness and per-step cost.
    Top {
        /// The instance's `[metrics] address`.
        #[arg(long, default_value = "127.0.0.1:9464")]
        address: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Print this many frames, then exit (default: until interrupted).
        #[arg(long)]
        frames: Option<u64>,
    },
    /// Produce realistic Pinterest engagement events into Kafka.
    Gen(gen::GenArgs),
    /// Write the pin catalog (`categories` and `pins`, DDL in examples/sql/)
    /// that `weir gen`'s pins come from.
    GenPins {
        /// Pins to write, by popularity rank (as `weir gen --pins`).
        #[arg(long, default_value_t = 200_000)]
        pins: u64,
        /// The database.
        #[arg(long, env = "WEIR_SINGLESTORE_URL")]
        url: String,
    },
    /// Make plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Look at a pipeline's dead letters, or replay them through the current
    /// chain into its table once their cause is fixed.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
    /// Show or set a pipeline's stored offsets.
    Offsets {
        #[command(subcommand)]
        command: OffsetsCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Compare two builds of a plugin over captured events, as a canary does:
    /// per event, what each kept, dropped, refused or set. Exits 1 when they differ.
    Diff {
        /// The build serving now.
        old: PathBuf,
        /// The candidate.
        new: PathBuf,
        /// Events, one JSON object per line.
        #[arg(long)]
        input: PathBuf,
        /// Take the step's config, files and lookups from this configuration.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The pipeline (default: the only one).
        #[arg(short, long)]
        pipeline: Option<String>,
        /// The plugin's name (default: OLD's file name, without `@VERSION`).
        #[arg(long)]
        step: Option<String>,
        /// Show at most this many differences.
        #[arg(long, default_value_t = 10)]
        samples: usize,
    },
    /// A new plugin crate, with a working function and its test.
    New {
        /// The plugin's name (also its crate's and its `.wasm` file's).
        name: String,
        #[arg(long, value_enum)]
        kind: weir::tools::scaffold::PluginKind,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The weir-sdk crate (default: $WEIR_SDK, else the checkout weir was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct DeadLetterFilter {
    #[arg(short, long)]
    config: PathBuf,
    /// The pipeline (default: the only one).
    #[arg(short, long)]
    pipeline: Option<String>,
    /// Only dead letters written since then: `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339,
    /// or an age such as `30m`, `2h`, `1d`.
    #[arg(long, value_parser = weir::tools::replay::parse_since)]
    since: Option<chrono::NaiveDateTime>,
    /// Only dead letters whose reason contains this text.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// Dead letters by stage and reason, with how many were replayed.
    Show(DeadLetterFilter),
    /// Send dead letters through the pipeline's current chain into its table,
    /// exactly once: each one replayed is marked, so replaying again does
    /// nothing for it. Those refused again stay, with their new reason.
    Replay {
        #[command(flatten)]
        filter: DeadLetterFilter,
        /// Do everything, then roll back: report what would happen.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum OffsetsCommand {
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
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Run { config } => run(config).await,
            Command::Gen(args) => {
                let summary = gen::run(&args, !args.json).await?;
                if args.json {
                    println!("{}", serde_json::to_string(&summary)?);
                } else {
                    println!(
                        "produced {} events to {} in {:.1} s ({:.0}/s): {} good, {} from bots, \
                         {} malformed, {} not objects, {} ill-typed, {} oversized",
                        summary.produced,
                        summary.topic,
                        summary.seconds,
                        summary.produced as f64 / summary.seconds.max(1e-9),
                        summary.good,
                        summary.bots,
                        summary.malformed,
                        summary.non_object,
                        summary.ill_typed,
                        summary.oversized
                    );
                }
                Ok(())
            }
            Command::Offsets { command } => offsets(command).await,
            Command::DeadLetters { command } => dead_letters(command).await,
            Command::Check { config } => check(config).await,
            Command::Top {
                address,
                interval,
                frames,
            } => {
                weir::ops::top::run(&address, Duration::from_secs_f64(interval.max(0.2)), frames)
                    .await
            }
            Command::GenPins { pins, url } => {
                let pool = db::pool(&url)?;
                let n = gen::write_catalog(&pool, pins).await?;
                println!(
                    "wrote {} categories and {n} pins to {}",
                    gen::CATEGORIES.len(),
                    db::describe_url(&url)
                );
                Ok(())
            }
            Command::Plugin {
                command:
                    PluginCommand::Diff {
                        old,
                        new,
                        input,
                        config,
                        pipeline,
                        step,
                        samples,
                    },
            } => plugin_diff(old, new, input, config, pipeline, step, samples).await,
            Command::Plugin {
                command:
                    PluginCommand::New {
                        name,
                        kind,
                        dir,
                        sdk,
                    },
            } => {
                let sdk = weir::tools::scaffold::find_sdk(sdk.as_deref())?;
                let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
                weir::tools::scaffold::new_plugin(&name, kind, &dir, &sdk)?;
                println!(
                    "created {} ({kind:?} plugin `{name}`, weir-sdk from {})\n\
                     next: cd {} && cargo test && cargo build --target wasm32-wasip2 --release\n\
                     then: cp target/wasm32-wasip2/release/{}.wasm PLUGIN_DIR/{name}.wasm",
                    dir.display(),
                    sdk.display(),
                    dir.display(),
                    name.replace('-', "_")
                );
                Ok(())
            }
            Command::Test {
                config,
                pipeline,
                input,
                dead_letters,
                expect,
            } => test(config, pipeline, input, dead_letters, expect).await,
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<ConfigError>() {
                eprintln!("error: {c}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            // A table that cannot take the configured mapping, or a plugin that
            // cannot be used, is a configuration error too: nothing was consumed.
            if e.chain()
                .any(|c| c.is::<weir::sink::PlanError>() || c.is::<weir::plugin::PluginError>())
            {
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let url = config.database_url()?;
    let pool = db::pool_for(&config)?;
    let (prepared, lookups) = pipeline::prepare(&config, &pool, false).await?;
    weir::ops::metrics::spawn_database_check(pool.clone());
    if let Some(address) = &config.metrics.address {
        let bound = weir::ops::metrics::serve(address).await?;
        info!(address = %bound, "serving /metrics, /healthz and /readyz");
    }
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_signals(stop.clone()));
    info!(
        config = %path.display(),
        database = %db::describe_url(&url),
        pipelines = prepared.len(),
        "weir running"
    );
    let (results, mut ended) = tokio::sync::mpsc::unbounded_channel();
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut supervisor = weir::pipeline::reload::Supervisor::new(
        config,
        pool.clone(),
        lookups,
        stop.clone(),
        results,
        running.clone(),
    );
    for p in prepared {
        supervisor.start(p);
    }
    supervisor.watch()?;
    let mut failed = None;
    loop {
        tokio::select! {
            Some((name, result)) = ended.recv() => {
                if let Err(e) = result {
                    error!(pipeline = %name, "{e:#}");
                    stop.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if stop.load(Ordering::Relaxed) && running.load(Ordering::SeqCst) == 0 {
            break;
        }
    }
    while let Ok((name, result)) = ended.try_recv() {
        if let Err(e) = result {
            error!(pipeline = %name, "{e:#}");
            failed.get_or_insert(e);
        }
    }
    let _ = pool.disconnect().await;
    match failed {
        Some(e) => Err(e),
        None => {
            info!("all batches in flight committed; bye");
            Ok(())
        }
    }
}

async fn plugin_diff(
    old: PathBuf,
    new: PathBuf,
    input: PathBuf,
    config: Option<PathBuf>,
    pipeline: Option<String>,
    step: Option<String>,
    samples: usize,
) -> anyhow::Result<()> {
    let name = match step {
        Some(s) => s,
        None => {
            let stem = old
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            stem.split('@').next().unwrap_or_default().replace('_', "-")
        }
    };
    let (config, p) = match config {
        Some(path) => {
            let c = Config::load(&path)?;
            let p = pick_pipeline(&c, pipeline.as_deref())?.clone();
            (c, p)
        }
        None => {
            let c = Config {
                path: std::env::current_dir()?.join("weir.toml"),
                ..Config::default()
            };
            let p: weir::config::PipelineConfig = toml::from_str(
                "name = \"diff\"\ntopic = \"diff\"\ntable = \"diff\"\ncolumns = {}",
            )?;
            (c, p)
        }
    };
    let step = match p.steps.iter().find(|s| s.plugin == name) {
        Some(s) => s.clone(),
        None => toml::from_str(&format!("plugin = {}", toml::Value::from(name.clone())))?,
    };
    let pool = if config
        .lookups
        .values()
        .any(|l| matches!(l.source(), weir::config::LookupSource::Query(_)))
    {
        Some(db::pool_for(&config)?)
    } else {
        None
    };
    let lookups = weir::plugin::lookup::load_all(&config, pool.as_ref()).await?;
    let d = tokio::task::block_in_place(|| {
        weir::tools::offline::diff(&config, &p, &step, (&old, &new), &input, &lookups, samples)
    })?;
    println!(
        "{} -> {}: {} events, {} compared, {} same, {} different{}",
        d.old,
        d.new,
        d.events,
        d.same + d.different,
        d.same,
        d.different,
        if d.skipped > 0 {
            format!(
                " ({} never reach the step: malformed or oversized)",
                d.skipped
            )
        } else {
            String::new()
        }
    );
    for (event, old, new) in &d.samples {
        println!("event {event}:\n  old: {old}\n  new: {new}");
    }
    if d.different > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn dead_letters(command: DeadLettersCommand) -> anyhow::Result<()> {
    let (filter, replay) = match command {
        DeadLettersCommand::Show(f) => (f, None),
        DeadLettersCommand::Replay { filter, dry_run } => (filter, Some(dry_run)),
    };
    let config = Config::load(&filter.config)?;
    let p = pick_pipeline(&config, filter.pipeline.as_deref())?;
    let pool = db::pool_for(&config)?;
    let selection = weir::tools::replay::Selection {
        since: filter.since,
        reason: filter.reason.clone(),
    };
    let mut conn = db::connect(&pool, Duration::from_secs(15))
        .await
        .context("connecting to the database")?;
    db::ensure_own_tables(&mut conn).await?;
    match replay {
        None => {
            let lines =
                weir::tools::replay::show(&mut conn, p.group(), &p.topic, &selection).await?;
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
            let (prepared, _) = pipeline::prepare(&only, &pool, true).await?;
            let r = weir::tools::replay::replay(&pool, &prepared[0], &selection, dry_run).await?;
            println!(
                "{}{} dead letters of pipeline `{}` replayed: {} rows, {} filtered, {} refused again{}",
                if dry_run { "dry run (rolled back): " } else { "" },
                r.selected,
                p.name,
                r.rows,
                r.filtered,
                r.still_dead,
                if r.truncated > 0 {
                    format!(
                        "; {} not replayable (only the first bytes of their payload were kept)",
                        r.truncated
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = pool.disconnect().await;
    Ok(())
}

/// First SIGINT/SIGTERM: finish the batches in flight and exit 0. Second: exit now.
async fn watch_signals(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if n == 0 {
            info!("signal received: finishing the batches in flight (again to exit at once)");
            stop.store(true, Ordering::Relaxed);
        } else {
            warn!("second signal: exiting without waiting");
            std::process::exit(130);
        }
    }
}

async fn test(
    path: PathBuf,
    pipeline: Option<String>,
    input: PathBuf,
    dead_letters: Option<PathBuf>,
    expect: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let config = Config::load(&path)?;
    let p = pick_pipeline(&config, pipeline.as_deref())?;
    // Tables from SQL need the database; tables from CSV files do not.
    let needs_db = config
        .lookups
        .values()
        .any(|l| matches!(l.source(), weir::config::LookupSource::Query(_)));
    let pool = if needs_db {
        Some(db::pool_for(&config)?)
    } else {
        None
    };
    let lookups = weir::plugin::lookup::load_all(&config, pool.as_ref()).await?;
    let report =
        tokio::task::block_in_place(|| weir::tools::offline::run(&config, p, &input, &lookups))?;
    let mut stdout = std::io::stdout().lock();
    for line in &report.kept {
        writeln!(stdout, "{line}")?;
    }
    drop(stdout);
    match &dead_letters {
        Some(file) => std::fs::write(
            file,
            report
                .dead_letters
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        )
        .with_context(|| format!("writing {}", file.display()))?,
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
    if let Some(expected) = expect {
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
            bail!(
                "output differs from {} at line {}:\n  expected: {}\n  got:      {}\n({} lines expected, {} produced)",
                expected.display(),
                n + 1,
                want.get(n).unwrap_or(&"<nothing>"),
                got.get(n).unwrap_or(&"<nothing>"),
                want.len(),
                got.len()
            );
        }
        eprintln!("output matches {}", expected.display());
    }
    Ok(())
}

async fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let pool = db::pool_for(&config)?;
    let (prepared, _) = pipeline::prepare(&config, &pool, true).await?;
    for p in &prepared {
        let c = &p.config;
        println!(
            "pipeline `{}`: topic `{}` -> table `{}` ({} columns checked)",
            c.name,
            c.topic,
            c.table,
            c.columns.len()
        );
        if c.fields.is_empty() && !p.steps.is_empty() {
            println!("  note: no `fields` declared, so the steps' reads are not checked");
        }
        let list = |specs: &[weir::plugin::FieldSpec]| {
            if specs.is_empty() {
                return "-".to_string();
            }
            specs
                .iter()
                .map(weir::chain::fields::show)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (n, s) in p.steps.iter().enumerate() {
            let d = &s.description;
            println!(
                "  step {}: {} {} ({}, sha256 {})\n    reads:  {}\n    writes: {}",
                n + 1,
                s.plugin.name,
                s.version(),
                s.plugin.kind.as_str(),
                s.plugin.short_hash(),
                list(&d.reads),
                list(&d.writes)
            );
            if let Some(c) = &s.canary {
                println!("    canary: {} on one batch in {}", c.spec.label(), c.every);
            }
        }
        for (field, step) in weir::chain::fields::unmapped_writes(c, &p.steps) {
            println!(
                "{}",
                weir::chain::fields::keep_suggestion(&c.table, field, step)
            );
        }
    }
    println!("{}: ok", path.display());
    Ok(())
}

fn pick_pipeline<'c>(
    config: &'c Config,
    name: Option<&str>,
) -> anyhow::Result<&'c weir::config::PipelineConfig> {
    match name {
        Some(n) => config
            .pipeline(n)
            .with_context(|| format!("no pipeline `{n}` in {}", config.path.display())),
        None if config.pipelines.len() == 1 => Ok(&config.pipelines[0]),
        None => bail!(
            "{} has several pipelines; name one with --pipeline",
            config.path.display()
        ),
    }
}

async fn offsets(command: OffsetsCommand) -> anyhow::Result<()> {
    let (path, name) = match &command {
        OffsetsCommand::Show { config, pipeline }
        | OffsetsCommand::Set {
            config, pipeline, ..
        } => (config.clone(), pipeline.clone()),
    };
    let config = Config::load(&path)?;
    let p = pick_pipeline(&config, name.as_deref())?;
    let pool = db::pool_for(&config)?;
    let mut conn = db::connect(&pool, Duration::from_secs(15))
        .await
        .context("connecting to the database")?;
    db::ensure_own_tables(&mut conn).await?;
    let table = OffsetTable::new(p.group(), &p.topic);
    let mut client = rdkafka::ClientConfig::new();
    client
        .set("bootstrap.servers", config.brokers()?)
        .set("group.id", p.group());
    for (k, v) in config.kafka_properties()? {
        client.set(k, v);
    }
    let consumer: BaseConsumer = client.create().context("creating a Kafka client")?;
    let metadata = consumer
        .fetch_metadata(Some(&p.topic), Duration::from_secs(10))
        .with_context(|| format!("reading metadata of topic {}", p.topic))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let watermarks = |part: i32| {
        consumer
            .fetch_watermarks(&p.topic, part, Duration::from_secs(10))
            .ok()
    };
    match command {
        OffsetsCommand::Show { .. } => {
            let rows = table.all(&mut conn).await?;
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
            for r in &rows {
                let (lo, hi) = watermarks(r.partition).unwrap_or((-1, -1));
                let lag = if hi >= 0 {
                    (hi - r.next_offset).max(0)
                } else {
                    -1
                };
                println!(
                    "{:>9} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}  {}",
                    r.partition,
                    r.next_offset,
                    lo,
                    hi,
                    lag,
                    r.rows_total,
                    r.filtered_total,
                    r.dead_letters_total,
                    r.updated_at
                );
                if lo >= 0 && r.next_offset < lo {
                    println!(
                        "          DATA LOSS UPSTREAM: offsets {}..{} were deleted before being read",
                        r.next_offset, lo
                    );
                }
            }
            for part in partitions
                .iter()
                .filter(|x| !rows.iter().any(|r| r.partition == **x))
            {
                println!("{part:>9} (not yet claimed)");
            }
        }
        OffsetsCommand::Set { partition, to, .. } => {
            let targets: Vec<i32> = match partition {
                Some(x) => vec![x],
                None => partitions.clone(),
            };
            for part in targets {
                let (lo, hi) = watermarks(part)
                    .with_context(|| format!("reading watermarks of partition {part}"))?;
                let next = match to.as_str() {
                    "earliest" => lo,
                    "latest" => hi,
                    n => n.parse::<i64>().with_context(|| {
                        format!("--to {n}: expected an offset, earliest or latest")
                    })?,
                };
                table.set(&mut conn, part, next).await?;
                println!("partition {part}: next offset set to {next}");
            }
        }
    }
    Ok(())
}
