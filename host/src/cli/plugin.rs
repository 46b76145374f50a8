//! `weir plugin diff` and `weir plugin new`.

use std::path::PathBuf;

use weir::tools::offline::{compare, DiffSetup};
use weir::tools::scaffold::{find_sdk, new_plugin, Lang, PluginKind};

use super::Failure;

#[derive(clap::Subcommand)]
pub enum Command {
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
        kind: PluginKind,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK folder, `sdk/` of a Weir checkout, which holds the Rust crate
        /// and `python/` and `js/` (default: $WEIR_SDK, else the checkout weir
        /// was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

pub async fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Diff {
            old,
            new,
            input,
            config,
            pipeline,
            step,
            samples,
        } => {
            let setup = DiffSetup {
                config: config.as_deref(),
                pipeline: pipeline.as_deref(),
                step,
                samples,
            };
            let d = compare((&old, &new), &input, setup).await?;
            let skipped = if d.skipped > 0 {
                format!(
                    " ({} never reach the step: malformed or oversized)",
                    d.skipped
                )
            } else {
                String::new()
            };
            println!(
                "{} -> {}: {} events, {} compared, {} same, {} different{skipped}",
                d.old,
                d.new,
                d.events,
                d.same + d.different,
                d.same,
                d.different,
            );
            for (event, old, new) in &d.samples {
                println!("event {event}:\n  old: {old}\n  new: {new}");
            }
            if d.different > 0 {
                return Err(Failure::Differs);
            }
            Ok(())
        }
        Command::New {
            name,
            kind,
            lang,
            dir,
            sdk,
        } => {
            let sdk = find_sdk(sdk.as_deref())?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            new_plugin(&name, kind, lang, &dir, &sdk)?;
            println!(
                "created {} ({lang:?} {kind:?} plugin `{name}`, SDK from {})\n{}",
                dir.display(),
                sdk.display(),
                lang.next_steps(&name, &dir, &sdk)
            );
            Ok(())
        }
    }
}
