//! The `faultline` binary: a thin CLI over the library crates.
//!
//! Exit codes: 0 valid/ok · 1 invalid (or a remote command failed) · 2 unknown ·
//! 3 the run itself failed · 64 bad arguments.

mod check;
mod cli_exec;
mod cli_lab;
mod cli_matrix;
mod cli_nemesis;
mod cli_replay;
mod cli_ring;
mod cli_serve;
mod cli_targets;
mod cli_test;
mod delayer;
mod lab;
mod nemesis_ctl;
mod nemesis_driver;
mod nemesis_schedule;
mod nodes;
mod remote;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style correctness checker",
    max_term_width = 80
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check recorded histories for linearizability or transactional anomalies.
    Check(check::CheckArgs),
    /// Manage the local lab of nodes (network namespaces with sshd).
    #[command(subcommand)]
    Lab(cli_lab::LabCommand),
    /// Run a shell command on nodes over SSH.
    Exec(cli_exec::ExecArgs),
    /// Start and heal faults on the lab's nodes.
    #[command(subcommand)]
    Nemesis(cli_nemesis::NemesisCommand),
    /// Run a test: deploy, drive clients under faults, check, report.
    Test(cli_test::TestArgs),
    /// List the systems `test --target` knows: workloads, faults, seeded bugs.
    Targets(cli_targets::TargetsArgs),
    /// Analyse consistent hashing: load balance and keys moved vs theory.
    Ring(cli_ring::RingArgs),
    /// Run a matrix of tests (targets × workloads × nemeses × seeds) from a
    /// TOML file; write summary.html, summary.json and junit.xml.
    Matrix(cli_matrix::MatrixArgs),
    /// Run a stored test again with its recorded options and seed.
    Replay(cli_replay::ReplayArgs),
    /// Browse the store over HTTP: every run, filters, trends, reports, zips.
    Serve(cli_serve::ServeArgs),
}

/// A bad argument found after parsing (exit 64, like clap's own errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("faultline: {e:#}");
            if e.chain().any(|c| c.is::<UsageError>()) {
                ExitCode::from(64)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help/--version print to stdout and succeed; every other clap
            // error is a usage error (64, not clap's default 2, which means
            // "unknown" to our CI).
            let _ = e.print();
            return Ok(if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Lab(c) => cli_lab::run(c),
        Command::Exec(a) => cli_exec::run(a),
        Command::Nemesis(c) => cli_nemesis::run(c),
        Command::Test(a) => cli_test::run(a),
        Command::Targets(a) => cli_targets::run(a),
        Command::Ring(a) => cli_ring::run(a),
        Command::Serve(a) => cli_serve::run(a),
        Command::Matrix(a) => cli_matrix::run(a),
        Command::Replay(a) => cli_replay::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
