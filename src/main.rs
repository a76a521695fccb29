//! The `faultline` binary: a thin CLI over the library crates.
//!
//! `main` only maps results to exit codes (DESIGN.md): 0 valid, 1 invalid,
//! 2 unknown, 3 the run itself failed, 64 bad arguments or input.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code for bad arguments or bad input (BSD's EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code for a run that failed by itself (setup, SSH, I/O).
pub const EXIT_RUN_FAILED: u8 = 3;

/// A user error: bad arguments or unreadable input. Exits 64.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

#[derive(Parser, Debug)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style correctness checking: record what clients saw, prove or refute consistency",
    max_term_width = 80
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the version (the `check` command lands with the checker)
    Version,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else clap
            // rejects is a usage error (64), not clap's default 2, which
            // means "unknown" here.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_RUN_FAILED)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version => {
            println!("faultline {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
