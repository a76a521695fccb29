//! History records of the nemesis: one `info` operation per fault start and
//! heal, with what was done to whom, so reports can shade fault windows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fault::Fault;

/// `{"process":"nemesis","type":"info","f":"start-partition","value":{...}}`
///
/// `value` holds the fault (`"fault"`) and, per node, what the node said
/// (`"nodes": {"n1": {"exit":0,"stdout":"123 "}}`): pids signalled, rules set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NemesisEvent {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<u64>,
    /// Nanoseconds since the test (or nemesis run) started, monotonic.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<u64>,
    pub process: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub f: String,
    pub value: Value,
}

impl NemesisEvent {
    fn new(f: String, fault: &Fault, nodes: Value) -> Self {
        NemesisEvent {
            index: None,
            time: None,
            process: "nemesis".into(),
            kind: "info".into(),
            f,
            value: serde_json::json!({ "fault": fault, "nodes": nodes }),
        }
    }

    /// A fault was started; `nodes` is the per-node outcome.
    pub fn start(fault: &Fault, nodes: Value) -> Self {
        Self::new(format!("start-{}", fault.name()), fault, nodes)
    }

    /// A fault was healed; `nodes` is the per-node outcome.
    pub fn heal(fault: &Fault, nodes: Value) -> Self {
        Self::new(format!("stop-{}", fault.name()), fault, nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge;

    #[test]
    fn shape() {
        let f = Fault::Partition {
            grudge: grudge::one_way("n1", "n2"),
            one_way: true,
        };
        let e = NemesisEvent::start(&f, serde_json::json!({"n2": {"exit": 0}}));
        let v: Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["process"], "nemesis");
        assert_eq!(v["type"], "info");
        assert_eq!(v["f"], "start-partition");
        assert_eq!(v["value"]["fault"]["grudge"]["n2"][0], "n1");
        assert!(v.get("time").is_none());
    }
}
