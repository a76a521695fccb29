//! The parsers against the shared corpus (Porcupine etcd/kv logs, Elle EDN
//! histories) and against broken files.

// The one skip path (a failure under CI=true): tests/common/skip.rs.
#[path = "../../tests/common/skip.rs"]
mod skip;

use faultline_checker::format::{self, Format, InputError, check_pairs, parse_file_detected};
use faultline_checker::{EventType, History, Outcome, Process};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(CORPUS);
    if p.is_dir() {
        Some(p)
    } else {
        skip::skipped("../shared/corpus not found (the shared corpus)");
        None
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn porcupine_etcd_corpus() {
    let Some(c) = corpus() else { return };
    let start = Instant::now();
    // FORMATS.md's totals are over etcd_000–etcd_099 (the TAB-separated
    // files); etcd_100–102 are tallied apart and checked against `awk`.
    let mut tallies = [Tally::default(), Tally::default()];
    let (mut n_files, mut empty) = (0, 0);
    for path in files(&c.join("porcupine/test_data/jepsen")) {
        let (h, detected) = parse_file_detected(&path, None).unwrap_or_else(|e| panic!("{e}"));
        n_files += 1;
        if h.events.is_empty() {
            empty += 1;
            assert_eq!(detected, None, "{}", path.display());
            continue;
        }
        assert_eq!(detected, Some(Format::PorcupineEtcd), "{}", path.display());
        let name = path.display().to_string();
        let paired = check_pairs(&h, Some(&name)).unwrap_or_else(|e| panic!("{e}"));
        assert!((73..=90).contains(&paired.operations.len()), "{name}");
        let t = &mut tallies[usize::from(name.contains("etcd_1"))];
        for e in &h.events {
            match e.kind {
                EventType::Invoke => *t.invokes.entry(e.f.to_string()).or_default() += 1,
                EventType::Info => t.infos += 1,
                EventType::Fail if e.f == "cas" => t.failed_cas += 1,
                _ => {}
            }
            assert!(matches!(e.process, Process::Client(_)));
        }
        // Forced format gives the same history.
        let forced = format::parse_file(&path, Some(Format::PorcupineEtcd)).unwrap();
        assert_eq!(forced, h);
    }
    let elapsed = start.elapsed();
    println!("etcd corpus: {n_files} files parsed and paired, then parsed again, in {elapsed:?}");
    assert_eq!(n_files, 103);
    assert_eq!(empty, 1, "etcd_095.log is empty");
    let counts = |r, w, c| -> BTreeMap<String, usize> {
        [("cas", c), ("read", r), ("write", w)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    };
    assert_eq!(tallies[0].invokes, counts(2863, 2671, 2762));
    assert_eq!(tallies[0].infos, 1244);
    assert_eq!(tallies[0].failed_cas, 1705);
    // etcd_100–102: 39 `:info` lines plus the 17 `:fail :read :timed-out`.
    assert_eq!(tallies[1].invokes, counts(76, 77, 74));
    assert_eq!(tallies[1].infos, 39 + 17);
}

#[derive(Default)]
struct Tally {
    invokes: BTreeMap<String, usize>,
    infos: usize,
    failed_cas: usize,
}

#[test]
fn porcupine_kv_corpus() {
    let Some(c) = corpus() else { return };
    let mut n = 0;
    for path in files(&c.join("porcupine/test_data/kv")) {
        let (h, detected) = parse_file_detected(&path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(detected, Some(Format::PorcupineKv), "{}", path.display());
        let paired = check_pairs(&h, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            (38..=2024).contains(&paired.operations.len()),
            "{}: {}",
            path.display(),
            paired.operations.len()
        );
        // FORMATS.md: every invocation is completed with `ok`; all carry a key.
        assert!(paired.operations.iter().all(|o| o.outcome == Outcome::Ok));
        assert!(
            h.events
                .iter()
                .all(|e| e.key.as_ref().is_some_and(|k| k.is_string()))
        );
        assert!(
            h.events
                .iter()
                .all(|e| ["get", "put", "append"].contains(&e.f.as_str()))
        );
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn elle_corpus() {
    let Some(c) = corpus() else { return };
    let mut seen = 0;
    for path in files(&c.join("elle/histories")) {
        let start = Instant::now();
        let (h, detected) = parse_file_detected(&path, None).unwrap_or_else(|e| panic!("{e}"));
        let t = start.elapsed();
        assert_eq!(detected, Some(Format::Edn), "{}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let paired = check_pairs(&h, Some(&name)).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{name}: {} events, {} ops, {} nemesis, parsed in {t:?}",
            h.events.len(),
            paired.operations.len(),
            paired.nemesis.len()
        );
        match name.as_str() {
            "huge-scc.edn" => {
                assert_eq!(h.events.len(), 20602);
                assert!(!paired.nemesis.is_empty());
                assert!(h.events.iter().any(|e| e.error.is_some()));
                assert!(
                    h.events
                        .iter()
                        .all(|e| e.index.is_some() && e.time.is_some())
                );
            }
            "paper-example.edn" => assert_eq!(h.events.len(), 8),
            _ => assert!(!h.events.is_empty()),
        }
        seen += 1;
    }
    assert!(seen >= 4);
}

/// Writes `bytes` to a fresh temporary file named `name`.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-parsers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn parse_err(name: &str, bytes: &[u8]) -> InputError {
    let p = temp_file(name, bytes);
    let r = format::parse_file(&p, None)
        .and_then(|h| check_pairs(&h, Some(&p.display().to_string())).map(|_| h));
    let e = r.expect_err(name);
    let shown = e.to_string();
    assert!(shown.starts_with(&p.display().to_string()), "{shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
    e
}

#[test]
fn broken_files_name_the_line() {
    let e = parse_err("trunc.edn", b"[{:process 0 :type");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("end of input"), "{e}");

    let e = parse_err(
        "trunc2.edn",
        b"{:process 0, :type :invoke, :f :read}\n{:process 0,\n :type :ok",
    );
    assert_eq!(e.line, 3);
    assert!(e.message.contains("line 2"), "{e}");

    let e = parse_err("bad.jsonl", b"{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"r\xff\"}\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("UTF-8"), "{e}");

    let e = parse_err("bad.edn", b"{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read, :value \"\xc3\x28\"}\n");
    assert_eq!(e.line, 2);

    let e = parse_err(
        "bad.log",
        b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t\xff\n",
    );
    assert_eq!(e.line, 2);

    let e = parse_err("type.jsonl", b"{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}\n\n{\"process\":0,\"type\":\"okay\",\"f\":\"r\"}\n");
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .ends_with(":3: expected \"type\" to be one of invoke, ok, fail, info, found \"okay\""),
        "{e}"
    );

    let e = parse_err(
        "type.edn",
        b"{:process 0, :type :invoke, :f :read}\n{:process 0, :type :okay, :f :read}",
    );
    assert_eq!(e.line, 2);

    let e = parse_err(
        "type.log",
        b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:okay\t:read\tnil\n",
    );
    assert_eq!(e.line, 2);

    let e = parse_err("orphan.jsonl", b"{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}\n{\"process\":1,\"type\":\"ok\",\"f\":\"r\"}\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("no matching invoke"), "{e}");

    let e = parse_err(
        "orphan.edn",
        b"[{:process 0, :type :invoke, :f :read}\n\n{:process 1, :type :ok, :f :read}]",
    );
    assert_eq!(e.line, 3);
    assert!(e.message.contains("no matching invoke"), "{e}");

    let e = parse_err("orphan.log", b"INFO  jepsen.util - 3\t:ok\t:read\t1\n");
    assert_eq!(e.line, 1);

    let e = parse_err("what.txt", b"hello world\n");
    assert!(e.message.contains("cannot tell the history format"), "{e}");

    let missing = std::env::temp_dir().join("faultline-no-such-file.jsonl");
    let e = format::parse_file(&missing, None).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );
}

#[test]
fn empty_and_blank_files_are_empty_histories() {
    for (name, bytes) in [("e.jsonl", &b""[..]), ("b.edn", b"\n ; nothing\n\n")] {
        let p = temp_file(name, bytes);
        assert_eq!(format::parse_file(&p, None).unwrap(), History::default());
    }
}

#[test]
fn detection_skips_long_blank_preambles_and_bom() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::iter::repeat_n(b'\n', 100_000));
    bytes.extend_from_slice(b"{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}\n");
    let p = temp_file("late.jsonl", &bytes);
    let (h, f) = parse_file_detected(&p, None).unwrap();
    assert_eq!(f, Some(Format::Jsonl));
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].line, 100_001);

    let p = temp_file(
        "bom.edn",
        b"\xEF\xBB\xBF; comment\n[{:process 0 :type :invoke :f :r}]",
    );
    let (h, f) = parse_file_detected(&p, None).unwrap();
    assert_eq!(f, Some(Format::Edn));
    assert_eq!(h.events[0].line, 2);
}

/// A large JSONL history: `cargo test --release -p faultline-checker --test
/// parsers -- --ignored --nocapture` prints the parse rate.
#[test]
#[ignore]
fn timing_one_million_jsonl_ops() {
    use std::fmt::Write as _;
    let n = 1_000_000;
    let mut s = String::with_capacity(n * 100);
    for i in 0..n {
        let p = i / 2 % 50;
        let (t, v) = if i % 2 == 0 {
            ("invoke", "null".to_string())
        } else {
            ("ok", (i % 7).to_string())
        };
        let _ = writeln!(
            s,
            r#"{{"index":{i},"time":{},"process":{p},"type":"{t}","f":"read","value":{v},"node":"n{}"}}"#,
            i * 1000,
            p % 5
        );
    }
    let start = Instant::now();
    let h = format::parse_reader(s.as_bytes(), Format::Jsonl).unwrap();
    let parse = start.elapsed();
    let paired = h.pair().unwrap();
    println!(
        "{n} JSONL events ({} MB): parse {parse:?}, pair {:?}",
        s.len() / 1_000_000,
        start.elapsed() - parse
    );
    assert_eq!(paired.operations.len(), n / 2);

    let edn: String = s
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{{:index {}, :time {}, :process {}, :type :{}, :f :read, :value {}}}\n",
                v["index"],
                v["time"],
                v["process"],
                v["type"].as_str().unwrap(),
                if v["value"].is_null() {
                    "nil".to_string()
                } else {
                    v["value"].to_string()
                }
            )
        })
        .collect();
    let start = Instant::now();
    let h = format::parse_reader(edn.as_bytes(), Format::Edn).unwrap();
    println!(
        "{n} EDN events ({} MB): parse {:?}",
        edn.len() / 1_000_000,
        start.elapsed()
    );
    assert_eq!(h.events.len(), n);
}
