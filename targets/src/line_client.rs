//! One client connection to one `faultline-node` over its line protocol
//! (a JSON request per line, replies matched by request id): what the
//! leaderless targets (crdt, dynamo, swim) and elect bind each client to,
//! and their readiness: every member answers a status request.

use crate::line_conn::{LineConn, ReadError};
use faultline_node::kv::{Command, Op as KvOp, RequestId};
use faultline_node::shell::api::{ClientReply, ClientRequest};
use std::time::Duration;
use tokio::time::Instant;

/// A client of one node over a lazily (re)opened [`LineConn`].
pub(crate) struct LineClient {
    node: String,
    addr: String,
    conn: LineConn,
    /// Unique per client; the stores do not deduplicate, the id only
    /// pairs replies with requests.
    client_id: u64,
    seq: u64,
    /// Time allowed per request, connecting included.
    budget: Duration,
}

impl LineClient {
    pub(crate) fn new(node: &str, addr: String, budget: Duration) -> LineClient {
        LineClient {
            node: node.to_string(),
            addr,
            conn: LineConn::default(),
            client_id: rand::random::<u64>() >> 1,
            seq: 0,
            budget,
        }
    }

    /// Drops the connection; the next call reconnects.
    pub(crate) fn close(&mut self) {
        self.conn.close();
    }

    /// One command to this client's node, with a fresh request id.
    /// `Err((sent, why))`.
    pub(crate) async fn call(&mut self, op: KvOp) -> Result<ClientReply, (bool, String)> {
        self.seq += 1;
        let id = RequestId {
            client: self.client_id,
            seq: self.seq,
        };
        self.request(&ClientRequest::Command(Command { id, op }))
            .await
    }

    /// One request and its reply: for a command, the reply carrying its
    /// id (late replies to earlier, timed-out commands are skipped); for
    /// anything else, the next line.
    /// `Err((sent, why))`: `sent` is false only when nothing went out.
    pub(crate) async fn request(
        &mut self,
        req: &ClientRequest,
    ) -> Result<ClientReply, (bool, String)> {
        let id = match req {
            ClientRequest::Command(c) => Some(c.id),
            _ => None,
        };
        let deadline = Instant::now() + self.budget;
        let node = &self.node;
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.conn.open(&self.addr, left).await {
            return Err((false, format!("{node}: {e}")));
        }
        if let Err(e) = self.conn.send(&req.to_line()).await {
            return Err((true, format!("{node}: sending: {e}")));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let buf = match self.conn.read_line(left).await {
                Ok(buf) => buf,
                Err(ReadError::Timeout) => return Err((true, format!("{node}: no reply in time"))),
                Err(ReadError::Lost) => {
                    return Err((true, format!("{node}: connection lost after sending")));
                }
            };
            match serde_json::from_str::<ClientReply>(&buf) {
                // A late reply to an earlier request that timed out.
                Ok(rep) if id.is_some() && rep.id().is_some_and(|i| Some(i) != id) => continue,
                Ok(rep) => return Ok(rep),
                Err(e) => {
                    self.conn.close();
                    return Err((true, format!("{node}: bad reply {buf:?}: {e}")));
                }
            }
        }
    }
}

/// The client address of `node` among `members` (`(node, address)`).
pub(crate) fn member_addr(
    members: &[(String, String)],
    node: &str,
) -> Result<String, crate::TargetError> {
    members
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, a)| a.clone())
        .ok_or_else(|| crate::TargetError::UnknownNode(node.to_string()))
}

/// True when the node at `addr` answers a status request in time.
pub(crate) async fn answers(addr: &str, timeout: Duration) -> bool {
    let line = LineConn::once(addr, &ClientRequest::Status.to_line(), timeout).await;
    matches!(
        line.and_then(|l| serde_json::from_str(&l).ok()),
        Some(ClientReply::Status(_))
    )
}

/// Waits until every member `(node, client address)` answers a status
/// request, for the leaderless targets' `Db::wait_ready`; `what` names the
/// members in errors ("crdt replicas").
pub(crate) async fn wait_all_answer(
    what: &str,
    members: &[(String, String)],
    deadline: Duration,
    cancelled: crate::db::Cancelled<'_>,
) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let mut silent = Vec::new();
        for (n, addr) in members {
            if !answers(addr, Duration::from_secs(1)).await {
                silent.push(format!("{n} (no answer on {addr})"));
            }
        }
        if silent.is_empty() {
            return Ok(());
        }
        if cancelled() {
            return Err(format!("interrupted while waiting for the {what}"));
        }
        if t0.elapsed() > deadline {
            return Err(format!(
                "{what} not up within {} s: {}",
                deadline.as_secs(),
                silent.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
