//! faultline as a library: what the `faultline` binary is built from.
//!
//! - [`runner`]: runs a test (workers, nemesis hook, history recording).

#![deny(clippy::print_stderr)]

/// `eprintln!` for the `faultline` binary and this library: a closed or
/// failing stderr (`faultline test 2>&1 | head`) must not panic mid-run,
/// which would skip the heal of an active fault and leave the lab up; the
/// message is dropped instead. `clippy::print_stderr` (denied in the
/// binary and here) keeps `eprintln!` out.
#[macro_export]
macro_rules! errln {
    () => {
        $crate::stderr_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stderr_line(format_args!($($arg)*))
    };
}

pub mod runner;

/// What [`errln!`] calls: one line to stderr, errors ignored.
#[doc(hidden)]
pub fn stderr_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(format_args!("{args}\n"));
}
