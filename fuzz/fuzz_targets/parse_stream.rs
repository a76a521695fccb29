//! A history read once from a stream, as `faultline check -` reads stdin
//! and `/dev/stdin` on a pipe: see `faultline_checker::format::fuzz_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks how many bytes each read of the stream hands
    // over (a pipe may split anywhere, even inside a byte order mark).
    let (chunk, history) = match data.split_first() {
        Some((b, rest)) => (1 + usize::from(*b % 64), rest),
        None => (1, data),
    };
    faultline_checker::format::fuzz_stream(history, chunk);
});
