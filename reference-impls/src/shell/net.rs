//! Peer transport: newline-delimited JSON over TCP.
//!
//! Each node dials every other node once (an outbound connection per peer,
//! owned by one sender thread) and accepts their dials (a reader thread
//! per inbound connection). The first line a dialer sends is
//! `{"hello":<its id>}`; every later line is one protocol message after
//! the sender's Lamport clock at its send: `41 {"Prepare":{…}}` (the
//! receiver's trace matches it to the send, `faultline_trace`).
//!
//! The core loop never waits on a peer: it hands messages to the peer's
//! sender thread through a bounded queue and drops them when the queue is
//! full. Consensus protocols tolerate lost messages (they retransmit on
//! their heartbeat), so a dead or partitioned peer costs memory bounded by
//! the queue, never a stall. A sender reconnects with exponential backoff
//! (20 ms doubling to 1 s); messages that arrive while it is disconnected
//! and waiting are dropped.

use crate::core::NodeId;
use serde::{Serialize, de::DeserializeOwned};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Messages queued per peer before new ones are dropped.
pub const QUEUE: usize = 8192;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A write blocked this long (peer paused, network cut with full buffers)
/// drops the connection; the queue keeps filling and then drops messages.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Resolves `host:port`.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))
}

/// The sending half towards one peer.
pub struct PeerSender<M> {
    tx: SyncSender<(u64, M)>,
    pub dropped: u64,
}

impl<M: Serialize + Send + 'static> PeerSender<M> {
    /// Starts the sender thread for `peer` at `addr`; `me` goes in the hello.
    pub fn spawn(me: NodeId, peer: NodeId, addr: SocketAddr, log: super::Log) -> PeerSender<M> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name(format!("peer-{peer}"))
            .spawn(move || sender_loop(me, peer, addr, rx, log))
            .expect("spawning a peer thread");
        PeerSender { tx, dropped: 0 }
    }

    /// Queues `msg`, sent at Lamport clock `lc`; never blocks.
    pub fn send(&mut self, lc: u64, msg: M) {
        match self.tx.try_send((lc, msg)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped += 1,
        }
    }
}

fn sender_loop<M: Serialize>(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    rx: Receiver<(u64, M)>,
    log: super::Log,
) {
    let mut conn: Option<BufWriter<TcpStream>> = None;
    let mut backoff = BACKOFF_MIN;
    let mut next_try = Instant::now();
    let mut was_up = false;
    let hello = format!("{{\"hello\":{me}}}\n");
    while let Ok(first) = rx.recv() {
        if conn.is_none() {
            if Instant::now() < next_try {
                // Still backing off: this message (and what queued with it)
                // is lost, as on a dead link.
                while rx.try_recv().is_ok() {}
                continue;
            }
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).and_then(|s| {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                let mut w = BufWriter::with_capacity(256 << 10, s);
                w.write_all(hello.as_bytes())?;
                Ok(w)
            }) {
                Ok(w) => {
                    conn = Some(w);
                    backoff = BACKOFF_MIN;
                    if !was_up {
                        log.line(&format!("peer {peer} ({addr}): connected"));
                        was_up = true;
                    }
                }
                Err(e) => {
                    if was_up {
                        log.line(&format!("peer {peer} ({addr}): down ({e}); reconnecting"));
                        was_up = false;
                    }
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    while rx.try_recv().is_ok() {}
                    continue;
                }
            }
        }
        let Some(w) = conn.as_mut() else { continue };
        let mut res = write_msg(w, &first);
        // Batch whatever else is queued into the same flush.
        let mut n = 1;
        while res.is_ok() && n < 1024 {
            match rx.try_recv() {
                Ok(m) => res = write_msg(w, &m),
                Err(_) => break,
            }
            n += 1;
        }
        if let Err(e) = res.and_then(|_| w.flush()) {
            log.line(&format!(
                "peer {peer} ({addr}): write failed ({e}); reconnecting"
            ));
            was_up = false;
            conn = None;
            next_try = Instant::now() + backoff;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

fn write_msg<M: Serialize>(
    w: &mut BufWriter<TcpStream>,
    (lc, m): &(u64, M),
) -> std::io::Result<()> {
    write!(w, "{lc} ")?;
    serde_json::to_writer(&mut *w, m)?;
    w.write_all(b"\n")
}

/// Accepts peer connections on `listener`; every message read goes to
/// `deliver(from, sent_lc, msg)`. Returns at once (threads run in the background).
pub fn serve_peers<M, F>(listener: TcpListener, peers: Vec<NodeId>, deliver: F, log: super::Log)
where
    M: DeserializeOwned + Send + 'static,
    F: Fn(NodeId, u64, M) -> bool + Send + Sync + Clone + 'static,
{
    std::thread::Builder::new()
        .name("peer-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(s) = conn else { continue };
                let deliver = deliver.clone();
                let peers = peers.clone();
                let log = log.clone();
                let _ = std::thread::Builder::new()
                    .name("peer-in".into())
                    .spawn(move || read_peer(s, &peers, deliver, log));
            }
        })
        .expect("spawning the peer listener");
}

fn read_peer<M, F>(s: TcpStream, peers: &[NodeId], deliver: F, log: super::Log)
where
    M: DeserializeOwned,
    F: Fn(NodeId, u64, M) -> bool,
{
    let remote = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut r = BufReader::with_capacity(256 << 10, s);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let from = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v.get("hello").and_then(|h| h.as_u64()));
    let Some(from) = from.filter(|f| peers.contains(f)) else {
        log.line(&format!(
            "peer connection from {remote}: bad hello {:?}",
            line.trim()
        ));
        return;
    };
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => match parse_line::<M>(&line) {
                Ok((lc, m)) => {
                    if !deliver(from, lc, m) {
                        return;
                    }
                }
                Err(e) => {
                    log.line(&format!(
                        "peer {from}: undecodable message ({e}); dropping the connection"
                    ));
                    return;
                }
            },
        }
    }
}

/// `<lc> <json>` → the sender's Lamport clock and the message.
fn parse_line<M: DeserializeOwned>(line: &str) -> Result<(u64, M), String> {
    let (lc, json) = line
        .split_once(' ')
        .ok_or_else(|| "no Lamport clock before the message".to_string())?;
    let lc = lc
        .parse()
        .map_err(|_| format!("`{lc}` is not a Lamport clock"))?;
    let m = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok((lc, m))
}
