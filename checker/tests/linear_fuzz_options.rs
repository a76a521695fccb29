//! Stable-Rust smoke of the cargo-fuzz target `check_options` (issue #16:
//! "the fuzz targets cover `-` and the new options"): the same case
//! function, on seed histories under every option flag and on random
//! mutations of them. A panic anywhere is the failure. For a longer run:
//! `FAULTLINE_FUZZ_CASES=100000 cargo test --release -p faultline-checker --test linear_fuzz_options`.

#[path = "../../fuzz/fuzz_targets/check_options_case.rs"]
mod case;
#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

const SEEDS: &[&str] = &[
    // list-append with a G-single over items and a duplicate element.
    "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",null]]}\n\
     {\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1],[\"r\",\"y\",[]]]}\n\
     {\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",null]]}\n\
     {\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"y\",1],[\"r\",\"x\",[1,1]]]}\n",
    // rw-register, EDN.
    "[{:process 0, :type :invoke, :f :txn, :value [[:w :x 1] [:r :y nil]]}\n\
     {:process 0, :type :ok, :f :txn, :value [[:w :x 1] [:r :y 2]]}\n\
     {:process 1, :type :invoke, :f :txn, :value [[:w :y 2] [:r :x nil]]}\n\
     {:process 1, :type :ok, :f :txn, :value [[:w :y 2] [:r :x nil]]}]\n",
    // A stale read (register), with a key and a timed-out write.
    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n\
     {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\",\"value\":1}\n\
     {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":2}\n\
     {\"process\":1,\"type\":\"info\",\"f\":\"write\",\"key\":\"k\",\"value\":2}\n\
     {\"process\":2,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":3}\n\
     {\"process\":2,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\",\"value\":3}\n\
     {\"process\":3,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n\
     {\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"key\":\"k\",\"value\":1}\n",
    // Porcupine etcd log lines.
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n\
     INFO  jepsen.util - 2\t:invoke\t:cas\t[1 0]\nINFO  jepsen.util - 2\t:ok\t:cas\t[1 0]\n\
     INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t1\n",
    // A byte order mark, then a comment and a queue.
    "\u{feff}; queue\n{:process 0, :type :invoke, :f :enqueue, :value 1}\n\
     {:process 0, :type :ok, :f :enqueue, :value 1}\n\
     {:process 1, :type :invoke, :f :dequeue, :value nil}\n\
     {:process 1, :type :ok, :f :dequeue, :value 2}\n",
];

/// Bytes that matter to some parser.
const BYTES: &[u8] = b"{}[]:\"\n,-0123456789 nulx";

/// The four option bytes, then the history.
fn input(flags: u8, anomalies: u8, models: u8, chunk: u8, history: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, anomalies, models, chunk];
    v.extend_from_slice(history);
    v
}

#[test]
fn every_option_flag_on_every_seed() {
    for seed in SEEDS {
        for flags in 0..=255u8 {
            // Every flag combination once, with varied picks and chunking.
            let picks = flags.wrapping_mul(37);
            case::run(&input(flags, picks, !picks, flags % 7, seed.as_bytes()));
        }
    }
}

#[test]
fn random_mutations_with_random_options() {
    let cases: usize = std::env::var("FAULTLINE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut r = Rng(0x5EED_0016);
    for n in 0..cases {
        let mut h = SEEDS[r.below(SEEDS.len())].as_bytes().to_vec();
        for _ in 0..1 + r.below(4) {
            let at = r.below(h.len() + 1);
            match r.below(3) {
                0 if at < h.len() => {
                    h.remove(at);
                }
                1 => h.insert(at, BYTES[r.below(BYTES.len())]),
                _ => {
                    let from = r.below(h.len());
                    let piece: Vec<u8> = h[from..(from + 1 + r.below(40)).min(h.len())].to_vec();
                    h.splice(at..at, piece);
                }
            }
        }
        let b = r.next().to_le_bytes();
        let data = input(b[0], b[1], b[2], b[3], &h);
        let replay = std::panic::catch_unwind(|| case::run(&data));
        assert!(
            replay.is_ok(),
            "case {n} panicked on {:?}",
            String::from_utf8_lossy(&data)
        );
    }
}
