//! The `weir` command line: parses the arguments, sets up logging and the
//! runtime, runs the command (`cli/`), and turns its outcome into the exit
//! status: 0 done, 1 failed (or found a difference), 2 unusable as configured.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.log_format);
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
    let result = rt.block_on(cli::execute(args.command));
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message() {
                eprintln!("error: {message}");
            }
            ExitCode::from(failure.status())
        }
    }
}
