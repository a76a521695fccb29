//! Synthetic histories of a linearizable key-value store of cas-registers,
//! for benchmarks and tests: `concurrency` workers issue read / write / cas
//! on random keys; each op takes effect at a random moment between its
//! invocation and completion, so every generated history is linearizable
//! (check it with model `cas-register`, split by key, initial absent and
//! `nil` = absent). A fraction of ops time out (`info`): such an op takes
//! effect or not, at random, and its worker continues under a new process id.

use crate::history::{Event, EventType, History, Process, Value};

/// SplitMix64: a tiny seeded generator, so histories replay from a seed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Shape of a generated history.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub seed: u64,
    /// Operations (invocations) to generate.
    pub ops: usize,
    pub keys: usize,
    pub concurrency: usize,
    /// Fraction of ops that end `info` (timed out).
    pub info_rate: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 1,
            ops: 1000,
            keys: 10,
            concurrency: 10,
            info_rate: 0.05,
        }
    }
}

#[derive(Clone)]
enum Stage {
    Idle,
    Pending,
    Applied(Value, bool),
}

struct Worker {
    process: u64,
    stage: Stage,
    f: &'static str,
    key: u64,
    arg: Value,
    timeout: bool,
}

/// Generates a linearizable history (events with `index`, `time`, `key`).
pub fn generate(cfg: &GenConfig) -> History {
    let mut rng = Rng(cfg.seed);
    let conc = cfg.concurrency.max(1);
    let keys = cfg.keys.max(1) as u64;
    let mut store: Vec<Option<i64>> = vec![None; keys as usize];
    let mut next_val: i64 = 0;
    let mut workers: Vec<Worker> = (0..conc)
        .map(|i| Worker {
            process: i as u64,
            stage: Stage::Idle,
            f: "read",
            key: 0,
            arg: Value::Null,
            timeout: false,
        })
        .collect();
    let mut events = Vec::with_capacity(cfg.ops * 2 + conc);
    let mut invoked = 0usize;
    let mut busy = 0usize;
    while invoked < cfg.ops || busy > 0 {
        let w = &mut workers[rng.below(conc as u64) as usize];
        let mut emit = |kind: EventType, f: &str, key: u64, value: Value, process: u64| {
            let n = events.len();
            events.push(Event {
                index: Some(n as u64).into(),
                time: Some(n as u64 * 1000),
                process: Process::Client(process),
                kind,
                f: f.into(),
                key: Some(Box::new(Value::from(key))),
                value,
                node: None,
                error: None,
                line: n + 1,
            });
        };
        match w.stage.clone() {
            Stage::Idle => {
                if invoked >= cfg.ops {
                    continue;
                }
                invoked += 1;
                busy += 1;
                w.key = rng.below(keys);
                let r = rng.below(10);
                let cur = store[w.key as usize];
                (w.f, w.arg) = if r < 4 {
                    ("read", Value::Null)
                } else if r < 7 {
                    next_val += 1;
                    ("write", Value::from(next_val % 5))
                } else {
                    // Expect the current value half the time.
                    let e = match cur {
                        Some(c) if rng.chance(0.5) => c,
                        _ => rng.below(5) as i64,
                    };
                    next_val += 1;
                    ("cas", Value::from(vec![e, next_val % 5]))
                };
                emit(EventType::Invoke, w.f, w.key, w.arg.clone(), w.process);
                w.timeout = rng.chance(cfg.info_rate);
                w.stage = Stage::Pending;
            }
            Stage::Pending => {
                // The linearization point; half the timed-out ops never
                // take effect.
                if w.timeout && rng.chance(0.5) {
                    w.stage = Stage::Applied(Value::Null, false);
                    continue;
                }
                let k = w.key as usize;
                let (v, ok) = match w.f {
                    "read" => (store[k].map_or(Value::Null, Value::from), true),
                    "write" => {
                        store[k] = w.arg.as_i64();
                        (w.arg.clone(), true)
                    }
                    _ => {
                        let e = w.arg[0].as_i64();
                        if store[k] == e {
                            store[k] = w.arg[1].as_i64();
                            (w.arg.clone(), true)
                        } else {
                            (w.arg.clone(), false)
                        }
                    }
                };
                w.stage = Stage::Applied(v, ok);
            }
            Stage::Applied(v, ok) => {
                busy -= 1;
                if w.timeout {
                    emit(
                        EventType::Info,
                        w.f,
                        w.key,
                        Value::from("timed-out"),
                        w.process,
                    );
                    w.process += conc as u64;
                } else if ok {
                    emit(EventType::Ok, w.f, w.key, v, w.process);
                } else {
                    emit(EventType::Fail, w.f, w.key, v, w.process);
                }
                w.stage = Stage::Idle;
            }
        }
    }
    History { events }
}

/// One JSON Lines row per event, in faultline's history format.
pub fn to_jsonl(h: &History) -> String {
    let mut s = String::new();
    for e in &h.events {
        let mut m = serde_json::Map::new();
        if let Some(i) = e.index.get() {
            m.insert("index".into(), Value::from(i));
        }
        if let Some(t) = e.time {
            m.insert("time".into(), Value::from(t));
        }
        m.insert("process".into(), e.process.to_value());
        m.insert("type".into(), Value::from(e.kind.as_str()));
        m.insert("f".into(), Value::from(e.f.as_str()));
        if let Some(k) = &e.key {
            m.insert("key".into(), (**k).clone());
        }
        m.insert("value".into(), e.value.clone());
        s.push_str(&Value::Object(m).to_string());
        s.push('\n');
    }
    s
}
