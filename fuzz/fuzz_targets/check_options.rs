//! The checkers' options on arbitrary histories read as from stdin: see
//! `check_options_case.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "check_options_case.rs"]
mod case;

fuzz_target!(|data: &[u8]| case::run(data));
