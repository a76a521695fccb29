//! The EDN value reader on arbitrary text: must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = faultline_checker::format::edn::parse_value(s);
    }
});
