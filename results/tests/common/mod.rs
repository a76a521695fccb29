//! A synthetic run for the renderer tests: clients doing reads, writes and
//! CASes for 30 s, with a partition and a kill that slow and fail them.

#![allow(dead_code)]

use faultline_checker::{Event, EventType, History, Process};
use serde_json::{Value, json};

/// Deterministic pseudo-random numbers (no unseeded randomness in tests).
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

fn event(process: Process, kind: EventType, f: &str, value: Value, time: u64) -> Event {
    Event {
        index: Default::default(),
        time: Some(time),
        process,
        kind,
        f: f.into(),
        key: Some(Box::new(json!(1))),
        value,
        node: Some("n1".into()),
        error: None,
        line: 0,
    }
}

const S: u64 = 1_000_000_000;

/// About `n_events` events over 30 s; partition 10–18 s, kill 22–26 s.
pub fn synthetic(n_events: usize) -> History {
    let mut rng = Lcg(7);
    let clients = (n_events as u64 / 2000).clamp(5, 50);
    let ops_per_client = n_events / 2 / clients as usize;
    let span = 30 * S;
    let gap = span / ops_per_client.max(1) as u64;
    let in_fault = |t: u64| (10 * S..18 * S).contains(&t) || (22 * S..26 * S).contains(&t);
    let mut evs: Vec<Event> = Vec::new();
    for c in 0..clients {
        let mut process = c;
        let mut t = c * gap / clients;
        for _ in 0..ops_per_client {
            let f = ["read", "write", "cas"][(rng.next() * 3.0) as usize % 3];
            let base_ms = 0.5 + rng.next() * rng.next() * 20.0;
            let (kind, lat_ms) = if in_fault(t) {
                let r = rng.next();
                if r < 0.3 {
                    (EventType::Info, 1000.0 + rng.next() * 500.0)
                } else if r < 0.6 {
                    (EventType::Fail, 50.0 + rng.next() * 200.0)
                } else {
                    (EventType::Ok, base_ms * 10.0)
                }
            } else if rng.next() < 0.03 {
                (EventType::Fail, base_ms)
            } else {
                (EventType::Ok, base_ms)
            };
            let lat = (lat_ms * 1e6) as u64;
            let p = Process::Client(process);
            evs.push(event(p.clone(), EventType::Invoke, f, json!(3), t));
            evs.push(event(p, kind, f, json!(3), t + lat));
            if kind == EventType::Info {
                process += clients; // a new process after info, as Jepsen does
            }
            t += lat.max(gap);
            if t > span {
                break;
            }
        }
    }
    for (f, t, v) in [
        (
            "start-partition",
            10 * S,
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
        ),
        ("stop-partition", 18 * S, json!("fully connected")),
        ("start-kill", 22 * S, json!({"n2": "killed pid 4242"})),
        ("stop-kill", 26 * S, json!({"n2": "restarted"})),
    ] {
        evs.push(event(
            Process::Nemesis,
            EventType::Invoke,
            f,
            Value::Null,
            t - S / 100,
        ));
        evs.push(event(Process::Nemesis, EventType::Info, f, v, t));
    }
    // real-time order, as the runner records it
    evs.sort_by_key(|e| e.time);
    for (i, e) in evs.iter_mut().enumerate() {
        e.index = Some(i as u64).into();
        e.line = i + 1;
    }
    History { events: evs }
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (w, h)
}

/// Number of distinct colours in a PNG (a blank or text-less plot has few).
pub fn distinct_colours(bytes: &[u8]) -> usize {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("decodes as PNG")
        .to_rgb8();
    let mut seen: std::collections::HashSet<[u8; 3]> = std::collections::HashSet::new();
    for p in img.pixels() {
        seen.insert(p.0);
    }
    seen.len()
}
