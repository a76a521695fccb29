//! The client API: newline-delimited JSON over TCP, one request per line,
//! one reply per line (replies may come out of order when a client
//! pipelines; match them by `id`).
//!
//! Requests:
//! - `{"id":{"client":7,"seq":1},"op":{"Write":{"key":1,"value":3}}}`: a
//!   [`Command`] ([`crate::kv::Op`] in serde's external tagging);
//! - `{"status":true}`: the node's [`Status`] (role, term, leader, commit);
//! - `{"admin":{…}}`: an operator request for the core
//!   ([`crate::core::Core::admin`]; primary-backup's `fence`/`promote`).
//!
//! Replies ([`ClientReply`]):
//! - `{"ok":{"id":…,"value":…}}`: applied (or read) with this output;
//! - `{"fail":{"id":…,"error":"…"}}`: certainly no effect (a CAS whose
//!   compare failed, an empty dequeue);
//! - `{"not_leader":{"id":…,"leader":2}}`: certainly no effect through this
//!   node; try `leader` (a node id, `null` when unknown);
//! - `{"unknown":{"id":…,"error":"…"}}`: may or may not take effect;
//! - `{"status":{"id":1,"role":"leader","term":3,"leader":1,"commit":42}}`;
//! - `{"admin":{…}}`: the core's answer to an admin request;
//! - `{"error":{"error":"…"}}`: the line was not a request (or the core
//!   refused the admin request).
//!
//! A request the node never answers (it crashed, lost leadership without
//! knowing the entry's fate) simply gets no reply: the client's timeout
//! turns it into `info`.

use crate::core::{NodeId, Reply, Status};
use crate::kv::{Command, RequestId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One line a client sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientRequest {
    Command(Command),
    Status,
    Admin(Value),
}

impl ClientRequest {
    pub fn parse(line: &str) -> Result<ClientRequest, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        if v.get("status").is_some() {
            return Ok(ClientRequest::Status);
        }
        if let Some(a) = v.get("admin") {
            return Ok(ClientRequest::Admin(a.clone()));
        }
        serde_json::from_value(v)
            .map(ClientRequest::Command)
            .map_err(|e| format!("not a request {{\"id\":{{\"client\",\"seq\"}},\"op\":…}}: {e}"))
    }

    pub fn to_line(&self) -> String {
        let mut s = match self {
            ClientRequest::Command(c) => serde_json::to_string(c).unwrap_or_default(),
            ClientRequest::Status => "{\"status\":true}".to_string(),
            ClientRequest::Admin(a) => serde_json::json!({ "admin": a }).to_string(),
        };
        s.push('\n');
        s
    }
}

/// A node's answer to a status request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
}

impl NodeStatus {
    pub fn new(id: NodeId, s: &Status) -> NodeStatus {
        NodeStatus {
            id,
            role: s.role.to_string(),
            term: s.term,
            leader: s.leader,
            commit: s.commit,
        }
    }
}

/// One line a node sends back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientReply {
    Ok {
        id: RequestId,
        value: Value,
    },
    Fail {
        id: RequestId,
        error: String,
    },
    NotLeader {
        id: RequestId,
        leader: Option<NodeId>,
    },
    Unknown {
        id: RequestId,
        error: String,
    },
    Status(NodeStatus),
    Admin(Value),
    Error {
        error: String,
    },
}

impl ClientReply {
    pub fn from_reply(id: RequestId, r: Reply) -> ClientReply {
        match r {
            Reply::Done(Ok(value)) => ClientReply::Ok { id, value },
            Reply::Done(Err(error)) => ClientReply::Fail { id, error },
            Reply::NotLeader { leader } => ClientReply::NotLeader { id, leader },
            Reply::Unknown(error) => ClientReply::Unknown { id, error },
        }
    }

    pub fn id(&self) -> Option<RequestId> {
        match self {
            ClientReply::Ok { id, .. }
            | ClientReply::Fail { id, .. }
            | ClientReply::NotLeader { id, .. }
            | ClientReply::Unknown { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use serde_json::json;

    #[test]
    fn wire_format_is_as_documented() {
        let c = ClientRequest::parse(
            r#"{"id":{"client":7,"seq":1},"op":{"Write":{"key":1,"value":3}}}"#,
        )
        .unwrap();
        let ClientRequest::Command(c) = c else {
            panic!("not a command")
        };
        assert_eq!(c.op, Op::Write { key: 1, value: 3 });
        assert_eq!(
            ClientRequest::parse(r#"{"status":true}"#).unwrap(),
            ClientRequest::Status
        );
        assert!(ClientRequest::parse("{").unwrap_err().contains("not JSON"));
        assert!(
            ClientRequest::parse(r#"{"op":1}"#)
                .unwrap_err()
                .contains("not a request")
        );
        let id = RequestId { client: 7, seq: 1 };
        let r = ClientReply::from_reply(id, Reply::NotLeader { leader: Some(2) });
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"not_leader": {"id": {"client": 7, "seq": 1}, "leader": 2}})
        );
        let back: ClientReply = serde_json::from_str(r.to_line().trim()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            ClientReply::from_reply(id, Reply::Done(Ok(json!(3)))).to_line(),
            "{\"ok\":{\"id\":{\"client\":7,\"seq\":1},\"value\":3}}\n"
        );
    }
}
