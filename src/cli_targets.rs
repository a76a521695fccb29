//! `faultline targets`: every system `faultline test --target` knows, with
//! its workloads, the faults it supports and its seeded bugs, for people
//! (a table) and for test matrices (`--json`).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use faultline_targets::Target;
use faultline_targets::node as node_db;
use faultline_targets::noop::NoopTarget;
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
    let mut out = vec![
        json!({
            "name": "etcd",
            "description": "etcd 3.4 (apt etcd-server) deployed on the nodes, through its v3 JSON gateway",
            "workloads": names(&faultline_targets::etcd::WORKLOADS),
            "faults": ["partition", "kill", "pause", "crash"],
            "unsupported_faults": {"clock": faultline_targets::etcd_db::CLOCK_UNSUPPORTED},
            "bugs": [],
        }),
        json!({
            "name": "noop",
            "description": "an in-process linearizable store inside faultline (tests the runner; no nodes)",
            "workloads": names(NoopTarget::new().workloads()),
            "faults": [],
            "unsupported_faults": {"all": "it runs inside faultline, so faults on nodes cannot reach it"},
            "bugs": [],
        }),
    ];
    for (p, what) in node_db::protocols() {
        out.push(json!({
            "name": p,
            "description": format!("faultline-node {p}: {what}"),
            "workloads": names(&node_db::WORKLOADS),
            "faults": ["partition", "kill", "pause", "crash", "clock"],
            "unsupported_faults": {},
            "bugs": node_db::bugs_of(p)
                .into_iter()
                .map(|(name, description)| json!({"name": name, "description": description}))
                .collect::<Vec<_>>(),
        }));
    }
    json!({ "targets": out })
}

pub fn run(a: TargetsArgs) -> Result<ExitCode> {
    let cat = catalogue();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cat)?);
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
        println!("{}", t["name"].as_str().unwrap_or("?"));
        println!("  {}", t["description"].as_str().unwrap_or(""));
        println!("  workloads: {}", list("workloads"));
        let faults = list("faults");
        println!(
            "  faults:    {}",
            if faults.is_empty() { "none" } else { &faults }
        );
        let bugs = t["bugs"].as_array().unwrap_or(&empty);
        if !bugs.is_empty() {
            println!("  seeded bugs (--bug NAME):");
            for b in bugs {
                println!(
                    "    {:<24} {}",
                    b["name"].as_str().unwrap_or("?"),
                    b["description"].as_str().unwrap_or("")
                );
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
        for p in node_db::protocols() {
            assert!(names.contains(&p.0), "{names:?}");
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
