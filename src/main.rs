//! The `faultline` binary: a thin CLI over the library crates.
//!
//! Exit codes: 0 valid/ok · 1 invalid (or a remote command failed) · 2 unknown ·
//! 3 the run itself failed · 64 bad arguments.

#![deny(clippy::print_stderr)]

/// `print!` for everything the binary prints: a closed stdout stops the
/// output quietly instead of panicking (see [`out`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!($($arg)*))
    };
}

/// `println!` for everything the binary prints (see [`out`]).
macro_rules! outln {
    () => {
        $crate::out::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod check;
mod cli_exec;
mod cli_hunt;
mod cli_hunt_shrink;
mod cli_lab;
mod cli_matrix;
mod cli_nemesis;
mod cli_replay;
mod cli_ring;
mod cli_serve;
mod cli_targets;
mod cli_test;
mod cli_trace;
mod delayer;
mod lab;
mod nemesis_ctl;
mod nemesis_driver;
mod nemesis_schedule;
mod nodes;
mod remote;

#[macro_use]
extern crate faultline;

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
    /// Shrink an invalid run's fault schedule to the fewest, shortest
    /// faults that still make it fail.
    Shrink(cli_hunt_shrink::ShrinkArgs),
    /// Look for a bug without knowing it: short tests under fault mixes
    /// chosen by feedback, until one fails (then shrink it) or the budget ends.
    Hunt(cli_hunt::HuntArgs),
    /// Browse the store over HTTP: every run, filters, trends, reports, zips.
    Serve(cli_serve::ServeArgs),
    /// Draw a run's messages as a Lamport space-time diagram, or count them.
    Trace(cli_trace::TraceArgs),
}

/// Standard output that a reader may close early (`faultline check --json
/// RUN | head -c 10`). `println!` panics then ("failed printing to stdout",
/// exit 101), and a `?` on the write error would end the command with the
/// wrong exit code: nightly jobs read the verdict from the exit code
/// whatever became of the text. Here a closed stdout (or any other failure
/// to write it, said once on stderr) only stops the output; the command
/// goes on and exits with its own code.
pub mod out {
    use std::io::{self, Write};
    use std::sync::atomic::{AtomicBool, Ordering};

    static CLOSED: AtomicBool = AtomicBool::new(false);

    /// Whether stdout has stopped taking output.
    #[allow(dead_code)]
    pub fn closed() -> bool {
        CLOSED.load(Ordering::Relaxed)
    }

    /// Locked stdout whose writes never fail but for `Interrupted` (which
    /// `write_all` retries).
    pub struct Stdout(io::StdoutLock<'static>);

    /// The replacement for `std::io::stdout().lock()`.
    pub fn stdout() -> Stdout {
        Stdout(io::stdout().lock())
    }

    /// What `out!` and `outln!` call.
    pub fn print(args: std::fmt::Arguments<'_>) {
        // Cannot fail: `Stdout` absorbs every error.
        let _ = stdout().write_fmt(args);
    }

    fn absorb(e: io::Error) -> io::Result<()> {
        if e.kind() == io::ErrorKind::Interrupted {
            return Err(e);
        }
        if !CLOSED.swap(true, Ordering::Relaxed) && e.kind() != io::ErrorKind::BrokenPipe {
            errln!("faultline: cannot write to stdout: {e}; output stops here");
        }
        Ok(())
    }

    impl Write for Stdout {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if closed() {
                return Ok(buf.len());
            }
            match self.0.write(buf) {
                Ok(n) => Ok(n),
                Err(e) => absorb(e).map(|()| buf.len()),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            if closed() {
                return Ok(());
            }
            self.0.flush().or_else(absorb)
        }
    }
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
            errln!("faultline: {e:#}");
            if e.chain().any(|c| c.is::<UsageError>()) {
                ExitCode::from(64)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

/// Appends a generated list to an argument's short and long help.
fn with_list(a: clap::Arg, list: &str) -> clap::Arg {
    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
    let long = a
        .get_long_help()
        .map_or_else(|| help.clone(), |h| h.to_string());
    a.help(format!("{help}. {list}"))
        .long_help(format!("{long}\n\n{list}"))
}

/// The command line, with every list its help shows (models, targets,
/// workloads, faults, seeded bugs) generated from the tables the parsers
/// check against: help cannot name fewer entries than exist.
fn command() -> clap::Command {
    use clap::CommandFactory;
    let models = check::model_groups()
        .iter()
        .map(|(group, names)| format!("{group}: {}.", names.join(", ")))
        .collect::<Vec<_>>()
        .join(" ");
    let targets = faultline_targets::db::catalogue();
    let target_names = targets.iter().map(|t| t.name).collect::<Vec<_>>();
    let bugs = targets
        .iter()
        .filter(|t| !t.bugs.is_empty())
        .map(|t| {
            let names = t.bugs.iter().map(|(n, _)| *n).collect::<Vec<_>>();
            format!("{}: {}.", t.name, names.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" ");
    let workloads = faultline_workloads::Workload::ALL.map(|w| w.name());
    let faults = nemesis_driver::NemesisKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>();
    let formats = faultline_checker::format::Format::ALL.map(|f| f.name());
    Cli::command()
        .mut_subcommand("check", |c| {
            c.mut_arg("model", |a| with_list(a, &models))
                .mut_arg("format", |a| {
                    with_list(a, &format!("Formats: auto, {}.", formats.join(", ")))
                })
        })
        .mut_subcommand("test", |c| {
            c.mut_arg("target", |a| {
                with_list(a, &format!("Targets: {}.", target_names.join(", ")))
            })
            .mut_arg("workload", |a| {
                with_list(a, &format!("Workloads: {}.", workloads.join(", ")))
            })
            .mut_arg("nemesis", |a| {
                with_list(a, &format!("Faults: {}.", faults.join(", ")))
            })
            .mut_arg("bugs", |a| {
                let long = a.get_long_help().or(a.get_help()).map(|h| h.to_string());
                a.long_help(format!(
                    "{}\n\nSeeded bugs. {bugs}",
                    long.unwrap_or_default()
                ))
            })
        })
}

/// `faultline check …` parsed by a command that has only `check` in it:
/// building every subcommand's arguments is most of a small check's
/// start-up (nightly jobs run one process per history). `None` when the
/// subcommand is another, or on any parse error or help request: the whole
/// command then parses again and prints clap's own help or error, so the
/// two can differ only in speed.
fn parse_check_alone() -> Option<check::CheckArgs> {
    use clap::{Args, FromArgMatches};
    let mut argv = std::env::args_os();
    let _bin = argv.next();
    if argv.next()? != "check" {
        return None;
    }
    let cmd = clap::Command::new("faultline")
        .subcommand(check::CheckArgs::augment_args(clap::Command::new("check")));
    let m = cmd.try_get_matches().ok()?;
    let (_, sub) = m.subcommand()?;
    check::CheckArgs::from_arg_matches(sub).ok()
}

fn run() -> anyhow::Result<ExitCode> {
    use clap::error::ErrorKind;
    use clap::{CommandFactory, FromArgMatches};
    // `faultline --version` answers before clap builds every subcommand's
    // arguments: scripts call it to probe for the binary (BENCHMARKS.md,
    // "Start-up"). The text is clap's.
    let mut argv = std::env::args_os().skip(1);
    if let (Some(a), None) = (argv.next(), argv.next())
        && (a == "--version" || a == "-V")
    {
        outln!("faultline {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(args) = parse_check_alone() {
        return check::run(args);
    }
    // The lists in help are built from the tables only when help is shown:
    // the target catalogue is not free, and a check needs none of it.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let e = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    command().try_get_matches().err().unwrap_or(e)
                }
                _ => e,
            };
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
        Command::Trace(a) => cli_trace::run(a),
        Command::Shrink(a) => cli_hunt_shrink::run(a),
        Command::Hunt(a) => cli_hunt::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The check-only command is the full one's `check`: same arguments,
    /// so parsing with either gives the same options.
    #[test]
    fn check_alone_has_the_full_commands_arguments() {
        use clap::Args;
        let alone = check::CheckArgs::augment_args(clap::Command::new("check"));
        let full = Cli::command();
        let full = full.find_subcommand("check").unwrap();
        let ids = |c: &clap::Command| {
            let mut v: Vec<String> = c.get_arguments().map(|a| format!("{a:?}")).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&alone), ids(full));
    }

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    /// The long help (`--help`) of `faultline SUB`.
    fn long_help(sub: &str) -> String {
        let mut cmd = command();
        cmd.build();
        let sub = cmd.find_subcommand_mut(sub).expect(sub);
        sub.render_long_help().to_string()
    }

    /// Every name of `table` appears in `help` as a word of its own.
    fn assert_lists(help: &str, what: &str, table: &[&str]) {
        let words: std::collections::HashSet<&str> = help
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .collect();
        let missing: Vec<_> = table.iter().filter(|n| !words.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{what} missing from help: {missing:?}\n{help}"
        );
    }

    #[test]
    fn help_lists_every_model() {
        let help = long_help("check");
        for (group, names) in check::model_groups() {
            assert_lists(&help, group, names);
        }
        // Every model the linearizability checker has is reachable by name.
        for kind in faultline_checker::model::ModelKind::ALL {
            assert_lists(&help, "ModelKind::ALL", &[kind.name()]);
        }
    }

    #[test]
    fn help_lists_every_target_workload_fault_and_bug() {
        let help = long_help("test");
        let cat = faultline_targets::db::catalogue();
        assert!(cat.len() >= 17, "{}", cat.len());
        assert_lists(
            &help,
            "targets",
            &cat.iter().map(|t| t.name).collect::<Vec<_>>(),
        );
        for t in &cat {
            let bugs: Vec<&str> = t.bugs.iter().map(|(n, _)| *n).collect();
            assert_lists(&help, t.name, &bugs);
        }
        assert_lists(
            &help,
            "workloads",
            &faultline_workloads::Workload::ALL.map(|w| w.name()),
        );
        assert_lists(
            &help,
            "faults",
            &nemesis_driver::NemesisKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>(),
        );
    }

    /// Errors name the same tables as help.
    #[test]
    fn errors_list_every_workload_and_fault() {
        let e = "nope"
            .parse::<faultline_workloads::Workload>()
            .unwrap_err()
            .to_string();
        assert_lists(
            &e,
            "workloads",
            &faultline_workloads::Workload::ALL.map(|w| w.name()),
        );
        let e = nemesis_driver::parse_list("partition,nope").unwrap_err();
        assert_lists(
            &e,
            "faults",
            &nemesis_driver::NemesisKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn every_fault_name_parses_back() {
        for k in nemesis_driver::NemesisKind::ALL {
            assert_eq!(k.name().parse::<nemesis_driver::NemesisKind>(), Ok(*k));
        }
    }
}
