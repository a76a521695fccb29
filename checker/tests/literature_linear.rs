//! Knossos's and Porcupine's own linearizability test cases, transcribed:
//! each history and asserted verdict comes from jepsen-io/knossos
//! (`test/knossos/*_test.clj`, `data/cas-register/…`) or
//! anishathalye/porcupine (`porcupine_test.go`), named above each test.
//! Their etcd and kv files are in ../shared/corpus (tests/corpus_lin.rs);
//! these are the small hand-written cases: crashed ops, initial values,
//! reads of never-written values, zero-duration ops, failed writes.

use faultline_checker::Verdict;
use faultline_checker::format::{self, Format};
use faultline_checker::history::History;
use faultline_checker::linear::{LinearResult, Options, check_history};
use faultline_checker::model::{ModelKind, ModelSpec};
use serde_json::json;

fn edn(text: &str) -> History {
    format::parse_reader(text.as_bytes(), Format::Edn).expect("EDN parses")
}

fn jsonl(text: &str) -> History {
    format::parse_reader(text.as_bytes(), Format::Jsonl).expect("JSONL parses")
}

fn check(h: &History, spec: &ModelSpec) -> LinearResult {
    let r = check_history(h, spec, &Options::default()).expect("checkable");
    serde_json::to_string(&r.keys).expect("serializes");
    r
}

/// Knossos's `(register 0)` / `(cas-register 0)`.
fn from_zero(kind: ModelKind) -> ModelSpec {
    ModelSpec::new(kind).with_initial(json!(0))
}

/// The op the search could not linearize, as (process, value) of its line.
fn failing(h: &History, r: &LinearResult) -> Option<String> {
    let (_, k) = r.keys.iter().find(|(_, k)| k.verdict == Verdict::Invalid)?;
    let id = k.failing_op?;
    let ops = h.pair().ok()?.operations;
    let op = ops.iter().find(|o| o.id == id)?;
    Some(format!("{} {} {}", op.process, op.f, op.value))
}

// ---- knossos wgl_test.clj / linear_test.clj ----

/// crash-test: a write that crashed (info) is linearizable.
#[test]
fn knossos_crash() {
    let h = edn("[{:process 0 :type :invoke :f :write :value 1}
                  {:process 0 :type :info :f :write :value 1}]");
    let r = check(&h, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Valid);
}

/// sequential-test: reading the initial 0.
#[test]
fn knossos_sequential() {
    let h = edn("[{:process 0 :type :invoke :f :read :value 0}
                  {:process 0 :type :ok :f :read :value 0}]");
    let r = check(&h, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Valid);
}

/// preserves-indices-test: write 1, then read 2; the read (index 100) is
/// the op that cannot be linearized. Sparse `:index` values.
#[test]
fn knossos_preserves_indices() {
    let h = edn("[{:process 0 :type :invoke :f :write :value 1 :index 5}
          {:process 0 :type :ok     :f :write :value 1 :index 7}
          {:process 0 :type :invoke :f :read :value 2 :index 99}
          {:process 0 :type :ok     :f :read :value 2 :index 100}]");
    let r = check(&h, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failing(&h, &r).as_deref(), Some("0 read 2"));
}

/// read-wrong-initial-value-test: reading 1 from a register holding 0.
#[test]
fn knossos_read_wrong_initial_value() {
    let h = edn("[{:process 0 :type :invoke :f :read :value 1}
                  {:process 0 :type :ok :f :read :value 1}]");
    let r = check(&h, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failing(&h, &r).as_deref(), Some("0 read 1"));
    // The minimal counterexample is the read alone.
    let k = r.keys.values().next().expect("one key");
    assert_eq!(k.minimal.len(), 1);
}

/// bad-analysis-test (data/cas-register/bad/bad-analysis.edn): after x = 0
/// and a crashed write of 1, two concurrent reads of 3 and 2; Knossos
/// names process 21's read of 2 (it returns first).
#[test]
fn knossos_bad_analysis() {
    let h = edn("[{:process 4, :type :invoke, :f :write, :value 2}
 {:process 4, :type :ok, :f :write, :value 2}
 {:process 6, :type :invoke, :f :read, :value nil}
 {:process 1, :type :invoke, :f :write, :value 4}
 {:process 1, :type :ok, :f :write, :value 4}
 {:process 14, :type :invoke, :f :read, :value 4}
 {:process 14, :type :ok, :f :read, :value 4}
 {:process 9, :type :invoke, :f :write, :value 0}
 {:process 9, :type :ok, :f :write, :value 0}
 {:process 19, :type :invoke, :f :read, :value 0}
 {:process 20, :type :invoke, :f :write, :value 1}
 {:process 19, :type :ok, :f :read, :value 0}
 {:process 22  :type :invoke, :f :read, :value 3}
 {:process 21, :type :invoke, :f :read, :value 2}
 {:process 21, :type :ok, :f :read, :value 2}
 {:process 22, :type :ok, :f :read, :value 3}]");
    let r = check(&h, &from_zero(ModelKind::CasRegister));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failing(&h, &r).as_deref(), Some("21 read 2"));
}

/// rethink-fail-minimal-test (data/cas-register/bad/rethink-fail-minimal.edn),
/// `(cas-register nil)`: x = 0, then a read of 3 concurrent with a write
/// of 4. The read of 3 is the culprit, not the later read of 4 (WGL once
/// blamed the op after it).
#[test]
fn knossos_rethink_fail_minimal() {
    let h = edn("({:type :invoke, :f :write, :value 0, :process 0}
 {:type :ok, :f :write, :value 0, :process 0}
 {:type :invoke, :f :read, :value nil, :process 1}
 {:type :invoke, :f :write, :value 4, :process 2}
 {:type :ok, :f :read, :value 3, :process 1}
 {:type :ok, :f :write, :value 4, :process 2}
 {:type :invoke, :f :read, :value nil, :process 3}
 {:type :ok, :f :read, :value 4, :process 3}
)");
    let r = check(&h, &ModelSpec::new(ModelKind::CasRegister));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failing(&h, &r).as_deref(), Some("1 read 3"));
    let k = r.keys.values().next().expect("one key");
    assert_eq!(k.minimal.len(), 1, "the read of 3 alone: nobody wrote 3");
}

/// data/cas-register/bad/immediate-failure.edn (Knossos's examples-test
/// expects every file under bad/ invalid): a read of 3 whose only writer
/// failed.
#[test]
fn knossos_immediate_failure() {
    let h = edn("[{:type :invoke, :process 1, :f :read, :value nil}
{:type :invoke, :process 101, :f :write, :value 3}
{:type :fail, :process 101, :f :write, :value 3, :error [:temporarily-unavailable nil]}
{:type :ok, :process 1, :f :read, :value 3}]");
    let r = check(&h, &ModelSpec::new(ModelKind::CasRegister));
    assert_eq!(r.verdict, Verdict::Invalid);
}

/// core_test.clj history-a: a CAS-register history that once exposed a
/// Knossos bug; valid, with process 6's read never completing.
#[test]
fn knossos_history_a() {
    let h = edn("[{:process 4, :type :invoke, :f :write, :value 2}
           {:process 4, :type :ok, :f :write, :value 2}
           {:process 6, :type :invoke, :f :read, :value nil}
           {:process 1, :type :invoke, :f :write, :value 4}
           {:process 1, :type :ok, :f :write, :value 4}
           {:process 14, :type :invoke, :f :read, :value 4}
           {:process 14, :type :ok, :f :read, :value 4}
           {:process 9, :type :invoke, :f :write, :value 0}
           {:process 9, :type :ok, :f :write, :value 0}
           {:process 19, :type :invoke, :f :read, :value 0}
           {:process 19, :type :ok, :f :read, :value 0}]");
    let r = check(&h, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Valid);
}

/// core_test.clj linearizations-test: "Simple read-write race with one
/// linearization" and "Totally concurrent but corresponding reads/writes"
/// (six linearizations), both valid; and a failed read constrains
/// nothing ("Single invocation and failure").
#[test]
fn knossos_linearizations() {
    let race = edn("[{:process :a :type :invoke :f :read :value 0}
          {:process :a :type :ok :f :read :value 0}
          {:process :a :type :invoke :f :read :value 1}
          {:process :b :type :invoke :f :write :value 1}
          {:process :a :type :ok :f :read :value 1}
          {:process :b :type :ok :f :write :value 1}]");
    assert_eq!(
        check(&race, &from_zero(ModelKind::Register)).verdict,
        Verdict::Valid
    );
    let concurrent = edn("[{:process :w1 :type :invoke :f :write :value 1}
          {:process :r1 :type :invoke :f :read :value 1}
          {:process :w2 :type :invoke :f :write :value 2}
          {:process :r2 :type :invoke :f :read :value 2}
          {:process :w3 :type :invoke :f :write :value 3}
          {:process :r3 :type :invoke :f :read :value 3}
          {:process :w1 :type :ok :f :write :value 1}
          {:process :r1 :type :ok :f :read :value 1}
          {:process :w2 :type :ok :f :write :value 2}
          {:process :r2 :type :ok :f :read :value 2}
          {:process :w3 :type :ok :f :write :value 3}
          {:process :r3 :type :ok :f :read :value 3}]");
    assert_eq!(
        check(&concurrent, &from_zero(ModelKind::Register)).verdict,
        Verdict::Valid
    );
    let failed = edn("[{:process :a :type :invoke :f :read :value 0}
                       {:process :a :type :fail :f :read :value 0}]");
    let r = check(&failed, &from_zero(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Valid);
    // No op completed: valid vacuously, with a warning (Knossos: valid).
    assert!(r.warnings.iter().any(|w| w == "no-completed-ops"));
}

// ---- porcupine porcupine_test.go ----

/// One op per line as Porcupine's `Operation{client, input, call, output,
/// return}`: laid out as events sorted by time, calls before returns at
/// equal times (Porcupine's tie rule).
fn porcupine_ops(ops: &[(u64, &str, i64, u64, u64)]) -> History {
    let mut evs: Vec<(u64, bool, usize)> = Vec::new();
    for (i, &(_, _, _, call, ret)) in ops.iter().enumerate() {
        evs.push((call, false, i));
        evs.push((ret, true, i));
    }
    evs.sort();
    let mut text = String::new();
    for (idx, (t, is_ret, i)) in evs.into_iter().enumerate() {
        let (client, f, v, _, _) = ops[i];
        let kind = if is_ret { "ok" } else { "invoke" };
        let value = if f == "read" && !is_ret {
            json!(null)
        } else {
            json!(v)
        };
        let line = json!({"index": idx, "time": t, "process": client, "type": kind,
                          "f": f, "value": value});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    jsonl(&text)
}

/// TestRegisterModel (examples from MIT 6.824 2017 quiz 2, section VII).
#[test]
fn porcupine_register_model() {
    let ok = porcupine_ops(&[
        (0, "write", 100, 0, 100),
        (1, "read", 100, 25, 75),
        (2, "read", 0, 30, 60),
    ]);
    let spec = from_zero(ModelKind::Register);
    assert_eq!(check(&ok, &spec).verdict, Verdict::Valid);
    let bad = porcupine_ops(&[
        (0, "write", 200, 0, 100),
        (1, "read", 200, 10, 30),
        (2, "read", 0, 40, 90),
    ]);
    let r = check(&bad, &spec);
    assert_eq!(r.verdict, Verdict::Invalid);
    let k = r.keys.values().next().expect("one key");
    // The two reads: 200 returned before 0 was invoked, and whatever the
    // write does (relaxed: any time after its call, or never) it cannot
    // take the register back to 0.
    assert_eq!(k.minimal.len(), 2, "{:?}", k.minimal_explanation);
}

/// TestZeroDuration: ops whose call and return share a timestamp.
#[test]
fn porcupine_zero_duration() {
    let spec = from_zero(ModelKind::Register);
    let ok = porcupine_ops(&[
        (0, "write", 100, 0, 100),
        (1, "read", 100, 25, 75),
        (2, "read", 0, 30, 30),
        (3, "read", 0, 30, 30),
    ]);
    assert_eq!(check(&ok, &spec).verdict, Verdict::Valid);
    let bad = porcupine_ops(&[
        (0, "write", 200, 0, 100),
        (1, "read", 200, 10, 10),
        (2, "read", 200, 10, 10),
        (3, "read", 0, 40, 90),
    ]);
    assert_eq!(check(&bad, &spec).verdict, Verdict::Invalid);
}

/// TestSetModel: adds of 100 and 0 (or 110) concurrent with a read of the
/// whole set; a read that returns a duplicate element is not
/// linearizable; an unknown read is.
#[test]
fn porcupine_set_model() {
    let spec = ModelSpec::new(ModelKind::Set);
    let run = |second: i64, read: serde_json::Value, read_kind: &str| {
        let lines = [
            json!({"process": 0, "type": "invoke", "f": "add", "value": 100}),
            json!({"process": 1, "type": "invoke", "f": "add", "value": second}),
            json!({"process": 2, "type": "invoke", "f": "read", "value": null}),
            json!({"process": 2, "type": read_kind, "f": "read", "value": read}),
            json!({"process": 1, "type": "ok", "f": "add", "value": second}),
            json!({"process": 0, "type": "ok", "f": "add", "value": 100}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        check(&jsonl(&text), &spec).verdict
    };
    assert_eq!(run(0, json!([100]), "ok"), Verdict::Valid);
    assert_eq!(run(110, json!([100, 110]), "ok"), Verdict::Valid);
    assert_eq!(run(110, json!(null), "info"), Verdict::Valid);
    assert_eq!(run(110, json!([100, 100, 110]), "ok"), Verdict::Invalid);
}
