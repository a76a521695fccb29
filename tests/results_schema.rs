//! Every checker's `--json` output against the schema in docs/results.md
//! (issue #17, item 6): the schema is read from the doc's code block, so
//! the doc and the checkers cannot drift apart unnoticed.
//!
//! The validator is a small subset of JSON Schema (the keywords the doc
//! names); an unknown keyword fails the test rather than being ignored.

mod common;

use common::{faultline, text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The ```json block after `## Schema`: the one schema of every checker.
fn schema() -> Value {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results.md"))
            .expect("docs/results.md");
    let at = doc.find("\n## Schema").expect("a ## Schema section");
    let mut blocks = doc[at..].split("```json\n").skip(1).map(|b| {
        let end = b.find("\n```").expect("a closed code block");
        serde_json::from_str::<Value>(&b[..end]).unwrap_or_else(|e| panic!("schema block: {e}"))
    });
    let schema = blocks.next().expect("the schema");
    assert!(
        blocks.next().is_none(),
        "one schema for every checker, no exception"
    );
    schema
}

/// Errors of `v` against `s`, each with its JSON path.
fn validate(root: &Value, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let s = match s {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errs.push(format!("{path}: not allowed"));
            return;
        }
        Value::Object(m) => m,
        other => panic!("schema at {path} is not an object: {other}"),
    };
    for (k, x) in s {
        match k.as_str() {
            "$ref" => {
                let name = x
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("bad $ref {x}"));
                let def = &root["$defs"][name];
                assert!(!def.is_null(), "no $defs/{name}");
                validate(root, def, v, path, errs);
            }
            "$defs" => {}
            "type" => {
                let types: Vec<&str> = match x {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("bad type {x}"),
                };
                let is = |t: &str| match t {
                    "object" => v.is_object(),
                    "array" => v.is_array(),
                    "string" => v.is_string(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "boolean" => v.is_boolean(),
                    "null" => v.is_null(),
                    other => panic!("unknown type {other}"),
                };
                if !types.iter().any(|t| is(t)) {
                    errs.push(format!("{path}: {} is not {types:?}", short(v)));
                }
            }
            "enum" => {
                if !x.as_array().is_some_and(|a| a.contains(v)) {
                    errs.push(format!("{path}: {} is not one of {x}", short(v)));
                }
            }
            "minimum" => {
                if let (Some(n), Some(min)) = (v.as_f64(), x.as_f64())
                    && n < min
                {
                    errs.push(format!("{path}: {n} < {min}"));
                }
            }
            "required" => {
                if let Value::Object(o) = v {
                    for r in x.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !o.contains_key(r) {
                            errs.push(format!("{path}: missing {r}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Value::Object(o) = v {
                    for (p, ps) in x.as_object().expect("properties object") {
                        if let Some(pv) = o.get(p) {
                            validate(root, ps, pv, &format!("{path}.{p}"), errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Value::Object(o) = v {
                    let named = s.get("properties").and_then(Value::as_object);
                    for (p, pv) in o {
                        if !named.is_some_and(|n| n.contains_key(p)) {
                            validate(root, x, pv, &format!("{path}.{p}"), errs);
                        }
                    }
                }
            }
            "items" => {
                if let Value::Array(a) = v {
                    for (i, it) in a.iter().enumerate() {
                        validate(root, x, it, &format!("{path}[{i}]"), errs);
                    }
                }
            }
            "anyOf" => {
                let ok = x.as_array().expect("anyOf list").iter().any(|alt| {
                    let mut e = Vec::new();
                    validate(root, alt, v, path, &mut e);
                    e.is_empty()
                });
                if !ok {
                    errs.push(format!("{path}: {} matches none of anyOf", short(v)));
                }
            }
            "allOf" => {
                for alt in x.as_array().expect("allOf list") {
                    validate(root, alt, v, path, errs);
                }
            }
            other => panic!("the schema uses {other:?}, which this validator does not know"),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        s.chars().take(120).chain(['…']).collect()
    } else {
        s
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Histories written by the test for checkers without a fixture file.
fn written(dir: &Path, name: &str, events: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&p, body).unwrap();
    p
}

fn ev(i: u64, p: u64, kind: &str, f: &str, value: Value) -> Value {
    json!({"index": i, "time": i * 1_000_000, "process": p, "type": kind, "f": f, "value": value})
}

#[test]
fn every_checker_writes_the_documented_shape() {
    let schema = schema();

    let tmp = common::TmpStore::new("results-schema");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let election = written(
        &tmp.0,
        "election.jsonl",
        &[
            ev(0, 0, "invoke", "leader?", Value::Null),
            ev(
                1,
                0,
                "ok",
                "leader?",
                json!({"node": "n1", "epoch": 1, "leader": "n1", "am_leader": true}),
            ),
            ev(2, 1, "invoke", "leader?", Value::Null),
            ev(
                3,
                1,
                "ok",
                "leader?",
                json!({"node": "n2", "epoch": 1, "leader": "n2", "am_leader": true}),
            ),
        ],
    );
    let fenced = written(
        &tmp.0,
        "fenced.jsonl",
        &[
            ev(0, 0, "invoke", "acquire", Value::Null),
            ev(1, 0, "ok", "acquire", json!({"token": 1, "lease_ms": 1000})),
            ev(2, 0, "invoke", "write", json!(7)),
            ev(3, 0, "ok", "write", json!({"value": 7, "token": 1})),
            ev(4, 0, "invoke", "release", Value::Null),
            ev(5, 0, "ok", "release", Value::Null),
        ],
    );
    let keyed = |i: u64, p: u64, kind: &str, f: &str, value: Value| {
        let mut e = ev(i, p, kind, f, value);
        e["key"] = json!("x");
        e
    };
    let lww = written(
        &tmp.0,
        "lww.jsonl",
        &[
            keyed(0, 0, "invoke", "write", json!(1)),
            keyed(1, 0, "ok", "write", json!(1)),
            keyed(2, 1, "invoke", "read", Value::Null),
            keyed(3, 1, "ok", "read", json!(1)),
        ],
    );
    let siblings = written(
        &tmp.0,
        "siblings.jsonl",
        &[
            keyed(0, 0, "invoke", "write", json!(1)),
            keyed(1, 0, "ok", "write", json!(1)),
            keyed(2, 1, "invoke", "read", Value::Null),
            keyed(3, 1, "ok", "read", json!([])),
        ],
    );
    // A value written twice: the session checker cannot tell which write a
    // read saw, and says so in `reason`.
    let twice = written(
        &tmp.0,
        "causal-twice.jsonl",
        &[
            keyed(0, 0, "invoke", "write", json!(1)),
            keyed(1, 0, "ok", "write", json!(1)),
            keyed(2, 1, "invoke", "write", json!(1)),
            keyed(3, 1, "ok", "write", json!(1)),
            keyed(4, 1, "invoke", "read", Value::Null),
            keyed(5, 1, "ok", "read", json!(1)),
        ],
    );
    // A saga refunded twice: double compensation, money not conserved.
    let order = json!({"saga": 2, "customer": 0, "item": 0, "qty": 1, "amount": 7, "dest": 1});
    let ledger = |entries: &[(&str, i64)]| -> Vec<Value> {
        entries
            .iter()
            .map(|(k, u)| json!({"saga": 2, "kind": k, "units": u, "account": 0}))
            .collect()
    };
    let saga = written(
        &tmp.0,
        "saga.jsonl",
        &[
            ev(0, 1, "invoke", "order", order.clone()),
            ev(1, 1, "fail", "order", order),
            ev(2, 9, "invoke", "read", Value::Null),
            ev(
                3,
                9,
                "ok",
                "read",
                json!({"mode": "orchestrated", "sagas": {"2": "compensated"}, "services": {
                    "reserve-credit": {"initial": [100], "current": [107],
                        "ledger": ledger(&[("action", 7), ("compensation", 7), ("compensation", 7)])},
                    "book-stock": {"initial": [10], "current": [10],
                        "ledger": ledger(&[("refused", 1)])},
                    "ship": {"initial": [0], "current": [0], "ledger": []}}}),
            ),
        ],
    );

    // The set workload's check runs on a run directory (`workload: set`):
    // add 1 acknowledged, the final read lost it.
    let set_run = tmp.0.join("set-run");
    std::fs::create_dir_all(&set_run).unwrap();
    std::fs::write(
        set_run.join("test.json"),
        json!({"workload": "set"}).to_string(),
    )
    .unwrap();
    written(
        &set_run,
        "history.jsonl",
        &[
            ev(0, 0, "invoke", "add", json!(1)),
            ev(1, 0, "ok", "add", json!(1)),
            ev(2, 1, "invoke", "read", Value::Null),
            ev(3, 1, "ok", "read", json!([])),
        ],
    );

    let cases: Vec<(&str, PathBuf, &[&str])> = vec![
        ("saga", saga, &[]),
        ("set", set_run.clone(), &[]),
        ("causal-register", twice, &[]),
        (
            "list-append",
            data("tests/data/postgres-15.18-serializable-g2-item.jsonl"),
            &["--time-limit", "0.000000001"],
        ),
        ("cas-register", data("tests/data/register-bad.jsonl"), &[]),
        ("cas-register", data("tests/data/register-ok.jsonl"), &[]),
        ("cas-register", data("tests/data/cas-register.edn"), &[]),
        ("list-append", data("tests/data/list-append-g1c.jsonl"), &[]),
        (
            "list-append",
            data("tests/data/postgres-15.18-serializable-g2-item.jsonl"),
            &[],
        ),
        ("rw-register", data("checker/tests/data/rw-wfr.jsonl"), &[]),
        ("causal-register", data("tests/data/causal-bad.jsonl"), &[]),
        ("causal-register", data("tests/data/causal-ok.jsonl"), &[]),
        ("bank", data("tests/data/bank-bad.jsonl"), &[]),
        ("bank", data("tests/data/bank-ok.jsonl"), &[]),
        ("counter", data("tests/data/counter-bad.jsonl"), &[]),
        ("counter", data("tests/data/counter-ok.jsonl"), &[]),
        ("queue", data("tests/data/queue-bad.jsonl"), &[]),
        ("unique-ids", data("tests/data/unique-ids-bad.jsonl"), &[]),
        ("lock", data("tests/data/lock-bad.jsonl"), &[]),
        ("lock", data("tests/data/lock-ok.jsonl"), &[]),
        (
            "crdt-convergence",
            data("tests/data/crdt-convergence-bad.jsonl"),
            &[],
        ),
        ("or-set", data("tests/data/or-set-bad.jsonl"), &[]),
        ("detector", data("tests/data/membership-loss.jsonl"), &[]),
        ("election", election, &[]),
        ("fenced", fenced, &[]),
        ("lww-register", lww, &[]),
        ("siblings", siblings, &[]),
        // `--spectrum` (issue #22): the rungs, and the same shape.
        (
            "register",
            data("tests/data/sc-stale-read.jsonl"),
            &["--spectrum"],
        ),
        (
            "register",
            data("tests/data/sc-store-buffer.jsonl"),
            &["--spectrum"],
        ),
    ];
    let mut failures = Vec::new();
    let mut verdicts = Vec::new();
    for (model, file, extra) in &cases {
        let f = file.to_str().unwrap();
        // A run directory: the model its workload implies.
        let mut args = if file.is_dir() {
            vec!["check", "--json"]
        } else {
            vec!["check", "--json", "--model", model]
        };
        args.extend_from_slice(extra);
        args.push(f);
        let o = faultline(&args);
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{model} {f}: {}",
            text(&o)
        );
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{model} {f}: not JSON ({e}): {}", text(&o)));
        let mut errs = Vec::new();
        validate(&schema, &schema, &v, "$", &mut errs);
        if !errs.is_empty() {
            failures.push(format!("{model} {f}:\n  {}", errs.join("\n  ")));
        }
        // `anomaly_types` names every type `anomalies` lists.
        let types = v["anomaly_types"].as_array().cloned().unwrap_or_default();
        for (t, list) in v["anomalies"].as_object().into_iter().flatten() {
            if list.as_array().is_some_and(|l| !l.is_empty()) && !types.contains(&json!(t)) {
                failures.push(format!("{model} {f}: anomaly_types lacks {t}"));
            }
        }
        if file.ends_with("causal-twice.jsonl") {
            assert!(
                v["reason"].as_str().is_some_and(|r| r.contains("twice")),
                "{v}"
            );
        }
        verdicts.push((model.to_string(), v["valid"].clone()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The fixtures cover every verdict, so `valid`'s three forms are all met.
    for want in [json!(true), json!(false), json!("unknown")] {
        assert!(verdicts.iter().any(|(_, v)| *v == want), "{verdicts:?}");
    }
}

#[test]
fn the_validator_rejects_what_the_doc_forbids() {
    let schema = schema();
    let bad = [
        json!({"valid": "no", "model": "m", "anomalies": {}, "stats": {}}),
        json!({"valid": true, "model": "m", "anomalies": [], "stats": {}}),
        // The list form linearizability wrote before issue #17 item 6.
        json!({"valid": false, "model": "cas-register", "stats": {},
               "anomalies": [{"type": "nonlinearizable", "key": "x", "op": {"line": 3}}]}),
        json!({"valid": true, "model": "m", "anomalies": {}, "stats": {}, "reasons": ["x"]}),
        json!({"valid": false, "model": "m", "stats": {},
               "anomalies": {"lost": [{"op": {"f": "read", "index": 3}}]}}),
    ];
    for v in bad {
        let mut errs = Vec::new();
        validate(&schema, &schema, &v, "$", &mut errs);
        assert!(!errs.is_empty(), "accepted {v}");
    }
    let good = json!({"valid": "unknown", "model": "m", "reason": "budget", "stats": {},
        "anomalies": {"lost": [{"explanation": "…", "op": {"f": "read", "line": 4}}]}});
    let mut errs = Vec::new();
    validate(&schema, &schema, &good, "$", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
}
