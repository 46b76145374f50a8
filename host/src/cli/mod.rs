//! One module per command, each with its `Args` and an `execute`; the work
//! itself is done by the library. A command fails with a [`Failure`], which
//! says what the exit status is.

use clap::{Parser, Subcommand, ValueEnum};

use weir::config::ConfigError;
use weir::pipeline::PrepareError;

mod archive;
mod check;
mod dead_letters;
mod gen;
mod offsets;
mod plugin;
mod run;
mod test;
mod top;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Kafka → WebAssembly steps → SingleStore, exactly once"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the pipelines of a configuration until SIGINT or SIGTERM.
    Run(ConfigArgs),
    /// Run a pipeline's chain offline over events in a JSON-lines file.
    Test(test::Args),
    /// Check a configuration without running it: the file, the plugins (world,
    /// contract version, init), the chain's fields, the lookup tables and each
    /// target table's columns and types.
    Check(ConfigArgs),
    /// A live view of a running instance, read from its metrics endpoint:
    /// throughput, lag, freshness and per-step cost.
    Top(top::Args),
    /// Produce realistic Pinterest engagement events into Kafka.
    Gen(weir::tools::gen::GenArgs),
    /// Write the pin catalog (`categories` and `pins`, DDL in examples/sql/)
    /// that `weir gen`'s pins come from.
    GenPins(gen::PinsArgs),
    /// Make plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::Command,
    },
    /// Look at a pipeline's dead letters, or replay them through the current
    /// chain into its table once their cause is fixed.
    DeadLetters {
        #[command(subcommand)]
        command: dead_letters::Command,
    },
    /// Show or set a pipeline's stored offsets.
    Offsets {
        #[command(subcommand)]
        command: offsets::Command,
    },
    /// What an archive pipeline has written to object storage.
    Archive {
        #[command(subcommand)]
        command: archive::Command,
    },
}

pub async fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run(args) => run::execute(args).await,
        Command::Test(args) => test::execute(args).await,
        Command::Check(args) => check::execute(args).await,
        Command::Top(args) => top::execute(args).await,
        Command::Gen(args) => gen::execute(args).await,
        Command::GenPins(args) => gen::execute_pins(args).await,
        Command::Plugin { command } => plugin::execute(command).await,
        Command::DeadLetters { command } => dead_letters::execute(command).await,
        Command::Offsets { command } => offsets::execute(command).await,
        Command::Archive { command } => archive::execute(command).await,
    }
}

/// A command that takes only the configuration file.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(short, long)]
    config: std::path::PathBuf,
}

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The configuration, a plugin or a table cannot be used as configured;
    /// nothing was consumed. Status 2.
    Unusable(anyhow::Error),
    /// Anything else that stopped the command. Status 1.
    Failed(anyhow::Error),
    /// The command ran and found a difference, already printed. Status 1.
    Differs,
}

impl Failure {
    pub fn status(&self) -> u8 {
        match self {
            Failure::Unusable(_) => 2,
            Failure::Failed(_) | Failure::Differs => 1,
        }
    }

    /// What to print, if anything is left to say.
    pub fn message(&self) -> Option<String> {
        match self {
            Failure::Unusable(e) | Failure::Failed(e) => Some(format!("{e:#}")),
            Failure::Differs => None,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Failed(e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Unusable(e.into())
    }
}

impl From<PrepareError> for Failure {
    fn from(e: PrepareError) -> Failure {
        match e {
            PrepareError::Unusable(e) => Failure::Unusable(e),
            PrepareError::Failed(e) => Failure::Failed(e),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Failed(e.into())
    }
}

/// The pipeline named, or the only one.
fn pick<'c>(
    config: &'c weir::config::Config,
    name: Option<&str>,
) -> Result<&'c weir::config::PipelineConfig, Failure> {
    config
        .pick(name)
        .map_err(|e| Failure::Failed(anyhow::anyhow!(e)))
}

/// The pipeline named, or the only table pipeline.
fn pick_table<'c>(
    config: &'c weir::config::Config,
    name: Option<&str>,
) -> Result<&'c weir::config::PipelineConfig, Failure> {
    config
        .pick_table(name)
        .map_err(|e| Failure::Failed(anyhow::anyhow!(e)))
}

pub fn init_logging(format: LogFormat) {
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
