//! `faultline targets`: every system `faultline test --target` knows, with
//! its workloads, the faults it supports and its seeded bugs, for people
//! (a table) and for test matrices (`--json`).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use faultline_targets::db;
use faultline_workloads::Workload;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct TargetsArgs {
    /// One JSON document instead of the table
    #[arg(long)]
    pub json: bool,
}

fn names(ws: &[Workload]) -> Vec<&'static str> {
    ws.iter().map(|w| w.name()).collect()
}

/// The catalogue, as JSON.
pub fn catalogue() -> Value {
    let out: Vec<Value> = db::catalogue()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "workloads": names(&t.workloads),
                "faults": t.faults,
                "unsupported_faults": t.unsupported_faults(),
                "bugs": t.bugs
                    .iter()
                    .map(|(name, description)| json!({"name": name, "description": description}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "targets": out })
}

pub fn run(a: TargetsArgs) -> Result<ExitCode> {
    use std::io::Write;
    let cat = catalogue();
    // Written, not printed: `faultline targets | head` must not panic.
    let mut out = crate::out::stdout();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&cat)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let empty = Vec::new();
    for t in cat["targets"].as_array().unwrap_or(&empty) {
        let list = |k: &str| {
            t[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        writeln!(out, "{}", t["name"].as_str().unwrap_or("?"))?;
        writeln!(out, "  {}", t["description"].as_str().unwrap_or(""))?;
        writeln!(out, "  workloads: {}", list("workloads"))?;
        let faults = list("faults");
        writeln!(
            out,
            "  faults:    {}",
            if faults.is_empty() { "none" } else { &faults }
        )?;
        let bugs = t["bugs"].as_array().unwrap_or(&empty);
        if !bugs.is_empty() {
            writeln!(out, "  seeded bugs (--bug NAME):")?;
            for b in bugs {
                writeln!(
                    out,
                    "    {:<24} {}",
                    b["name"].as_str().unwrap_or("?"),
                    b["description"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_target_with_workloads_and_faults() {
        let c = catalogue();
        let names: Vec<&str> = c["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(names.starts_with(&["etcd", "noop"]), "{names:?}");
        for p in faultline_targets::node::protocols() {
            assert!(names.contains(&p.name), "{names:?}");
        }
        let etcd = &c["targets"][0];
        assert!(
            etcd["unsupported_faults"]["clock"]
                .as_str()
                .unwrap()
                .contains("vDSO")
        );
        assert_eq!(etcd["workloads"][0], "register");
        // Every workload `faultline test` accepts for the target is listed.
        assert!(
            etcd["workloads"]
                .as_array()
                .is_some_and(|w| w.iter().any(|n| n == "lock")),
            "{etcd}"
        );
    }
}
