//! Writes `timeline.html` of a synthetic run with a given number of client
//! operations (the input of BENCHMARKS.md, "timeline.html of a
//! 1,000,000-operation history").
//!
//! `cargo run --release -p faultline-results --example timeline_html -- OUT.html [OPS]`
//! (1,000,000 by default): 100 clients over 300 s, keys 0–99, ok/fail/info
//! outcomes (5 % info during faults, each followed by a new process, as
//! Jepsen does), a partition every 60 s for 20 s. Prints the operation
//! count, the file's size and how long rendering took.

use faultline_checker::{Event, EventType, History, Process};
use faultline_results::{plots, run_timeline};
use serde_json::{Value, json};
use std::time::Instant;

const S: u64 = 1_000_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "timeline.html".into());
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let h = synthetic(n);
    let ops = h
        .events
        .iter()
        .filter(|e| !e.process.is_nemesis() && e.kind == EventType::Invoke)
        .count();
    let t = Instant::now();
    let windows = plots::fault_windows(&h);
    let html = run_timeline::render_run_timeline("synthetic timeline", &h, &windows);
    let took = t.elapsed();
    std::fs::write(&out, &html)?;
    println!(
        "{out}: {ops} operations, {} events, {:.1} MB, rendered in {took:?}",
        h.events.len(),
        html.len() as f64 / 1e6
    );
    Ok(())
}

/// A seeded linear congruential generator: the same history every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ev(process: Process, kind: EventType, f: &str, key: u64, value: Value, time: u64) -> Event {
    Event {
        index: Default::default(),
        time: Some(time),
        process,
        kind,
        f: f.into(),
        key: Some(Box::new(json!(key))),
        value,
        node: None,
        error: None,
        line: 0,
    }
}

fn synthetic(n_ops: usize) -> History {
    let mut rng = Lcg(7);
    let clients = 100u64;
    let span = 300 * S;
    let per_client = n_ops.div_ceil(clients as usize);
    let gap = span / per_client as u64;
    let in_fault = |t: u64| t % (60 * S) >= 30 * S && t % (60 * S) < 50 * S;
    let mut evs: Vec<Event> = Vec::with_capacity(n_ops * 2 + 20);
    for c in 0..clients {
        let mut process = c;
        let node = format!("n{}", c % 5 + 1);
        for i in 0..per_client as u64 {
            if (c * per_client as u64 + i) as usize >= n_ops {
                break;
            }
            let t = i * gap + c * gap / clients;
            let f = ["read", "write", "cas"][(rng.next() * 3.0) as usize % 3];
            let key = (rng.next() * 100.0) as u64;
            let r = rng.next();
            let (kind, lat) = if in_fault(t) && r < 0.05 {
                (EventType::Info, gap * 9 / 10)
            } else if r < 0.05 {
                (EventType::Fail, gap / 4)
            } else {
                (EventType::Ok, (gap as f64 * 0.8 * rng.next()) as u64 + 1000)
            };
            let value = json!((rng.next() * 10.0) as u64);
            let p = Process::Client(process);
            let mut inv = ev(p.clone(), EventType::Invoke, f, key, value.clone(), t);
            inv.node = Some(node.as_str().into());
            let mut done = ev(p, kind, f, key, value, t + lat);
            done.node = Some(node.as_str().into());
            evs.push(inv);
            evs.push(done);
            if kind == EventType::Info {
                process += clients;
            }
        }
    }
    for w in 0..5u64 {
        for (t, f) in [
            (w * 60 * S + 30 * S, "start-partition"),
            (w * 60 * S + 50 * S, "stop-partition"),
        ] {
            evs.push(ev(
                Process::Nemesis,
                EventType::Info,
                f,
                0,
                json!("partition"),
                t,
            ));
        }
    }
    evs.sort_by_key(|e| e.time);
    for (i, e) in evs.iter_mut().enumerate() {
        e.index = Some(i as u64).into();
        e.line = i + 1;
    }
    History { events: evs }
}
