//! Every parser on arbitrary bytes: see `faultline_checker::format::fuzz_check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The last byte picks the small buffer size, so libFuzzer explores
    // buffer boundaries too.
    let small = data.last().map_or(1, |b| 1 + usize::from(*b % 16));
    faultline_checker::format::fuzz_check(data, small);
});
