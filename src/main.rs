//! The `faultline` binary: a thin CLI over the library crates.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
