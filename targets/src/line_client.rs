//! One client connection to one `faultline-node` over its line protocol
//! (a JSON request per line, replies matched by request id): what the
//! leaderless targets (crdt, dynamo, swim) bind each client to, and their
//! readiness: every member answers a status request.

use faultline_node::kv::{Command, Op as KvOp, RequestId};
use faultline_node::shell::api::{ClientReply, ClientRequest};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// A lazily (re)opened connection to `node` at `addr`.
pub(crate) struct LineConn {
    node: String,
    addr: String,
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
    /// Unique per client; the stores do not deduplicate, the id only
    /// pairs replies with requests.
    client_id: u64,
    seq: u64,
    /// Time allowed per request, connecting included.
    budget: Duration,
}

impl LineConn {
    pub(crate) fn new(node: &str, addr: String, budget: Duration) -> LineConn {
        LineConn {
            node: node.to_string(),
            addr,
            conn: None,
            client_id: rand::random::<u64>() >> 1,
            seq: 0,
            budget,
        }
    }

    /// Drops the connection; the next call reconnects.
    pub(crate) fn close(&mut self) {
        self.conn = None;
    }

    /// One request to this client's node. `Err((sent, why))`.
    pub(crate) async fn call(&mut self, op: KvOp) -> Result<ClientReply, (bool, String)> {
        self.seq += 1;
        let id = RequestId {
            client: self.client_id,
            seq: self.seq,
        };
        let line = ClientRequest::Command(Command { id, op }).to_line();
        let deadline = Instant::now() + self.budget;
        let node = self.node.clone();
        if self.conn.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, TcpStream::connect(&self.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    let (r, w) = s.into_split();
                    self.conn = Some((BufReader::new(r), w));
                }
                Ok(Err(e)) => return Err((false, format!("{node}: {e}"))),
                Err(_) => return Err((false, format!("{node}: connect timed out"))),
            }
        }
        let Some((r, w)) = self.conn.as_mut() else {
            return Err((false, format!("{node}: no connection")));
        };
        if let Err(e) = w.write_all(line.as_bytes()).await {
            self.conn = None;
            return Err((true, format!("{node}: sending: {e}")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        loop {
            let mut buf = String::new();
            match tokio::time::timeout(left, r.read_line(&mut buf)).await {
                Err(_) => {
                    self.conn = None;
                    return Err((true, format!("{node}: no reply in time")));
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.conn = None;
                    return Err((true, format!("{node}: connection lost after sending")));
                }
                Ok(Ok(_)) => match serde_json::from_str::<ClientReply>(&buf) {
                    // A late reply to an earlier request that timed out.
                    Ok(rep) if rep.id().is_some_and(|i| i != id) => continue,
                    Ok(rep) => return Ok(rep),
                    Err(e) => {
                        self.conn = None;
                        return Err((true, format!("{node}: bad reply {buf:?}: {e}")));
                    }
                },
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
    let fut = async {
        let s = TcpStream::connect(addr).await.ok()?;
        let (r, mut w) = s.into_split();
        w.write_all(ClientRequest::Status.to_line().as_bytes())
            .await
            .ok()?;
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await.ok()?;
        match serde_json::from_str(&line).ok()? {
            ClientReply::Status(_) => Some(()),
            _ => None,
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .ok()
        .flatten()
        .is_some()
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
