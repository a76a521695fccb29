//! Stable-Rust fuzz smoke for the history parsers: random bytes and random
//! mutations of real history lines through every parser, checked by
//! `format::fuzz_check` (no panic, errors name real lines, streaming does not
//! depend on buffer boundaries).
//!
//! Bounded and deterministic by default so CI stays fast; for a longer run:
//! `FAULTLINE_FUZZ_CASES=2000000 cargo test --release -p faultline-checker --test fuzz_parsers`
//! (and `FAULTLINE_FUZZ_SEED=N` for another sequence). See `fuzz/README.md`.

#[path = "common/rng.rs"]
mod rng;

use faultline_checker::format::fuzz_check;
use rng::Rng;
use std::path::PathBuf;

const SEEDS: &[&str] = &[
    "{\"index\":0,\"time\":1234567,\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"value\":2,\"node\":\"n2\"}\n{\"index\":1,\"time\":1234999,\"process\":3,\"type\":\"ok\",\"f\":\"write\",\"value\":2}\n",
    "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"value\":[\"n1\",{\"a\":1}],\"key\":\"k\",\"error\":null}\n",
    "[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 1, :type :invoke, :f :write, :value 3}\n {:process 1, :type :info, :f :write, :value 3, :error :timeout}\n ; a nemesis event\n {:process :nemesis, :type :info, :f :start, :value \"partition\"}\n {:process 0, :type :ok, :f :read, :value 3}]\n",
    "{:process 2, :type :ok, :f :txn, :value [[:read :x 0] [:write :y 2]], :time 77361}\n",
    "#jepsen.history.Op{:index 0, :time 12, :type :invoke, :process 0, :f :txn, :value [[:append 1 2] [:r 1 nil]]}\n",
    "(#_{:x 1} {:type :ok :process :worker :f :cas :value #{1 2N 3M 1/2 -4.5e3} :error \"a \\\"q\\\" \\u00e9\\n\" :node \\a :key #inst \"2020\"})",
    "{:process 0, :type :invoke, :f :append, :key \"4\", :value \"x 0 1 y\"}\n{:process 0, :type :ok, :f :append, :key \"4\", :value \"x 0 1 y\"}\n",
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n",
    "{:a {:b [#{(\\newline \\u0041 ##Inf ##NaN #\"re\" #:ns{:k 1} sym/bol :kw/x 123456789012345678901234567890)}]}}",
];

/// Bytes that matter to some parser, to make random inputs reach deep code.
const ALPHABET: &[u8] =
    b"{}[]()#_:;,\"\\ \t\n\r0123456789-+.eEMN/abfnotuxyz{:}INFOjepsen.util\xff\xc3\xa9\x00";

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "#{",
    "#_",
    "#inst ",
    "#jepsen.history.Op",
    ":process ",
    ":type ",
    ":invoke",
    ":ok",
    ":info",
    ":fail",
    ":f ",
    ":value ",
    ":key ",
    "nil",
    "\"",
    "\\",
    "\\u",
    "\\n",
    "\\newline",
    "1/0",
    "99999999999999999999999N",
    "1e999",
    "-",
    ";",
    "\n",
    ",",
    "##",
    "#:a",
    "\"type\":",
    "\"process\":",
    "\"nemesis\"",
    "INFO  jepsen.util - ",
    ":timed-out",
    "\u{e9}",
    "\u{1F600}",
    "\u{ff}",
];

fn corpus_seeds() -> Vec<Vec<u8>> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    let mut out = Vec::new();
    for dir in [
        "porcupine/test_data/jepsen",
        "porcupine/test_data/kv",
        "elle/histories",
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths.iter().take(4) {
            if let Ok(b) = std::fs::read(p) {
                // A few KB is enough context; whole files make cases slow.
                out.push(b[..b.len().min(2048)].to_vec());
            }
        }
    }
    out
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(6) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(ALPHABET);
            }
            2 => {
                let i = rng.below(len + 1);
                let t = rng.pick(TOKENS).as_bytes();
                data.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                data.drain(i..j);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(64)).min(len);
                let chunk = data[i..j].to_vec();
                let k = rng.below(len + 1);
                data.splice(k..k, chunk);
            }
            5 => data.truncate(rng.below(len + 1)),
            6 => {
                let other = rng.pick(seeds);
                let k = rng.below(other.len() + 1);
                data.extend_from_slice(&other[k..]);
            }
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| *rng.pick(ALPHABET)).collect();
                data.splice(i..i, bytes);
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_smoke() {
    let cases = env_u64("FAULTLINE_FUZZ_CASES", 2500);
    let seed = env_u64("FAULTLINE_FUZZ_SEED", 0x5EED);
    let mut seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    seeds.extend(corpus_seeds());
    let start = std::time::Instant::now();
    for case in 0..cases {
        let mut rng = Rng(seed ^ (case.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let data = if rng.below(4) == 0 {
            let n = rng.below(200);
            (0..n).map(|_| *rng.pick(ALPHABET)).collect()
        } else {
            let mut d = rng.pick(&seeds).clone();
            mutate(&mut rng, &mut d, &seeds);
            d
        };
        let small = 1 + rng.below(9);
        let r = std::panic::catch_unwind(|| fuzz_check(&data, small));
        if r.is_err() {
            panic!(
                "case {case} (FAULTLINE_FUZZ_SEED={seed}) failed on input {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    println!("{cases} cases in {:?}", start.elapsed());
}

/// Every seed parses as something; keeps the seeds honest.
#[test]
fn seeds_pass_the_checks() {
    for s in SEEDS {
        fuzz_check(s.as_bytes(), 3);
    }
}
