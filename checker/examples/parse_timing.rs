//! Times parsing: `cargo run --release -p faultline-checker --example
//! parse_timing -- FILE... [--repeat N]`. Prints events and the best time.

use faultline_checker::format::parse_file_detected;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 5;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(5);
        args.drain(i..(i + 2).min(args.len()));
    }
    let mut total = Duration::ZERO;
    for a in &args {
        let mut best = Duration::MAX;
        let mut events = 0;
        for _ in 0..repeat.max(1) {
            let t = Instant::now();
            match parse_file_detected(Path::new(a), None) {
                Ok((h, _)) => events = h.events.len(),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
            best = best.min(t.elapsed());
        }
        total += best;
        if args.len() <= 10 {
            println!("{a}: {events} events in {best:?}");
        }
    }
    println!("{} files, best total {total:?}", args.len());
}
