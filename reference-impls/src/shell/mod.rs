//! The I/O shell: runs any [`Core`] as a real server.
//!
//! Threads and channels, not tokio: the core is single-threaded by nature
//! (one owner, `step`/`ready` in a loop), so the shell is one **core
//! thread** fed by one channel, plus blocking socket threads around it (a
//! sender per peer, a reader per inbound peer connection, a reader and a
//! writer per client connection). This keeps the process independent of
//! how libfaketime treats monotonic clocks (LAB-NOTES §4: tokio hangs when
//! they are faked; `std` does not), keeps the library free of an async
//! runtime for the targets crate that links it, and a 3–5 node cluster
//! with tens of clients needs only tens of threads.
//!
//! The core thread loops:
//! 1. wait for an event (peer message, client request, status query) or
//!    the next tick, then take every event already queued (up to
//!    [`MAX_BATCH`]) — batching is what makes group commit work;
//! 2. feed them to [`Core::step`], plus a `Tick{now_ms}` when a tick is
//!    due (ticks are scheduled on the monotonic clock; `now_ms` is the
//!    wall clock, [`SystemTime`], so libfaketime's clock faults reach it);
//! 3. one [`Core::ready`], then, in the order of the Ready contract:
//!    rewrite the WAL if asked, append the records and fsync once, and
//!    only then hand messages to peer senders and replies to clients.
//!
//! A failed fsync or write is fatal: the node logs it and exits rather
//! than send something it could not make durable.
//!
//! Logs (stderr; the faultline target sends them to `node.log` in the
//! node's directory): start-up and recovery, peer connections, every
//! change of role, term or leader, and once a second the commit point and
//! applied rate when they moved.

pub mod api;
pub mod net;
pub mod single;
pub mod trace;
pub mod wal;

use crate::core::{Config, Core, Input, NodeId, Ready, Status};
use crate::kv::RequestId;
use api::{ClientReply, ClientRequest, NodeStatus};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wal::Wal;

/// Events taken per batch before the core gets a `ready()`.
pub const MAX_BATCH: usize = 4096;

// The protocols it runs are listed in `crate::registry`.

/// Everything `faultline-node <protocol>` is started with.
#[derive(Clone, Debug)]
pub struct Options {
    pub protocol: String,
    pub id: NodeId,
    /// Every member (this node included): id → peer address.
    pub peers: BTreeMap<NodeId, String>,
    /// Address the client API listens on.
    pub client_addr: String,
    pub data_dir: PathBuf,
    pub bugs: Vec<String>,
    pub tick: Duration,
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    pub seed: Option<u64>,
    /// Protocol options (`lease-read`, `snapshot-entries=64`).
    pub options: Vec<String>,
    /// How much of the message trace (`messages.jsonl`) is kept.
    pub trace: trace::TraceConfig,
}

impl Options {
    pub fn config(&self) -> Config {
        let mut c = Config::new(self.id, self.peers.keys().copied().collect());
        c.bugs = self.bugs.iter().cloned().collect();
        c.election_ticks = self.election_ticks;
        c.heartbeat_ticks = self.heartbeat_ticks;
        if let Some(s) = self.seed {
            c.seed = s;
        }
        for o in &self.options {
            let (k, v) = o.split_once('=').unwrap_or((o, ""));
            c.options.insert(k.to_string(), v.to_string());
        }
        c
    }
}

/// A line logger shared by threads: `HH:MM:SS.mmm n<id> <protocol>: msg`
/// on stderr. The time is the node's wall clock, so a clock fault shows.
#[derive(Clone)]
pub struct Log {
    prefix: Arc<str>,
    out: Arc<Mutex<()>>,
}

impl Log {
    pub fn new(prefix: String) -> Log {
        Log {
            prefix: prefix.into(),
            out: Arc::new(Mutex::new(())),
        }
    }

    pub fn line(&self, msg: &str) {
        let ms = now_ms();
        let (h, m, s, frac) = (
            (ms / 3_600_000) % 24,
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000,
        );
        let _g = self.out.lock();
        eprintln!("{h:02}:{m:02}:{s:02}.{frac:03} {}: {msg}", self.prefix);
    }
}

/// The node's wall clock in ms since the epoch (faked by libfaketime).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error("--peers has no entry for this node's --id {0}")]
    NoSelf(NodeId),
    #[error("{what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// Where the core loop's output goes after the WAL: peers and clients.
pub trait Effects<M> {
    fn send(&mut self, to: NodeId, msg: M);
    fn reply(&mut self, id: RequestId, reply: crate::core::Reply);
}

/// Applies one Ready batch in the contract's order: rewrite, append +
/// fsync, then messages and replies. Returns an error (and sends nothing)
/// when the log could not be made durable.
pub fn flush_ready<M, R: serde::Serialize>(
    ready: Ready<M, R>,
    wal: &mut Wal,
    fx: &mut impl Effects<M>,
) -> Result<(), wal::WalError> {
    if let Some(all) = &ready.rewrite {
        wal.rewrite(all)?;
    }
    wal.append(&ready.records)?;
    for (to, m) in ready.messages {
        fx.send(to, m);
    }
    for (id, r) in ready.replies {
        fx.reply(id, r);
    }
    Ok(())
}

enum Event<M> {
    /// From, the sender's Lamport clock, the message.
    Peer(NodeId, u64, M),
    Request(crate::kv::Command, Sender<ClientReply>),
    Status(Sender<ClientReply>),
    Admin(serde_json::Value, Sender<ClientReply>),
}

struct LiveEffects<M> {
    peers: BTreeMap<NodeId, net::PeerSender<M>>,
    waiting: HashMap<RequestId, Sender<ClientReply>>,
    tracer: trace::Tracer,
}

impl<M: serde::Serialize + Send + 'static> Effects<M> for LiveEffects<M> {
    fn send(&mut self, to: NodeId, msg: M) {
        // Traced before the queue: a message dropped there is a send
        // without a receive, as on a lossy link.
        let lc = self.tracer.send(to, &msg);
        if let Some(p) = self.peers.get_mut(&to) {
            p.send(lc, msg);
        }
    }

    fn reply(&mut self, id: RequestId, reply: crate::core::Reply) {
        if let Some(tx) = self.waiting.remove(&id) {
            let _ = tx.send(ClientReply::from_reply(id, reply));
        }
    }
}

/// Runs a node until it fails (it never returns `Ok` on its own).
pub fn run<C: Core>(opts: Options) -> Result<(), ShellError> {
    let log = Log::new(format!("n{} {}", opts.id, opts.protocol));
    let me = opts
        .peers
        .get(&opts.id)
        .ok_or(ShellError::NoSelf(opts.id))?;
    let peer_addr = net::resolve(me).map_err(ShellError::Config)?;
    let client_addr = net::resolve(&opts.client_addr).map_err(ShellError::Config)?;
    let mut peer_addrs = BTreeMap::new();
    for (id, a) in &opts.peers {
        if *id != opts.id {
            peer_addrs.insert(*id, net::resolve(a).map_err(ShellError::Config)?);
        }
    }

    let t0 = Instant::now();
    let (mut wal, records, rec) = Wal::open::<C::Record>(&opts.data_dir)?;
    log.line(&format!(
        "starting: peers {:?}, client API {client_addr}, data {}, tick {} ms, election {} ticks, \
         heartbeat {} ticks, bugs [{}], options [{}]",
        opts.peers,
        opts.data_dir.display(),
        opts.tick.as_millis(),
        opts.election_ticks,
        opts.heartbeat_ticks,
        opts.bugs.join(", "),
        opts.options.join(", ")
    ));
    if rec.torn_bytes > 0 {
        log.line(&format!(
            "recovery: cut a torn last record ({} bytes) off {}",
            rec.torn_bytes,
            wal.path().display()
        ));
    }
    let mut core = C::recover(opts.config(), records);
    log.line(&format!(
        "recovered {} records ({} bytes) in {} ms",
        rec.records,
        wal.bytes,
        t0.elapsed().as_millis()
    ));

    let peer_listener = TcpListener::bind(peer_addr).map_err(|source| ShellError::Bind {
        what: "peer address",
        addr: peer_addr.to_string(),
        source,
    })?;
    let client_listener = TcpListener::bind(client_addr).map_err(|source| ShellError::Bind {
        what: "client address",
        addr: client_addr.to_string(),
        source,
    })?;

    let (tx, rx) = mpsc::channel::<Event<C::Message>>();
    let ptx = Mutex::new(tx.clone());
    let ptx = Arc::new(ptx);
    net::serve_peers::<C::Message, _>(
        peer_listener,
        opts.peers
            .keys()
            .copied()
            .filter(|p| *p != opts.id)
            .collect(),
        move |from, lc, m| {
            ptx.lock()
                .map(|t| t.send(Event::Peer(from, lc, m)).is_ok())
                .unwrap_or(false)
        },
        log.clone(),
    );
    serve_clients(client_listener, tx, log.clone());

    let tracer = trace::Tracer::start(&opts.data_dir, opts.id, opts.trace, &log);
    on_terminate(tracer.flusher(), log.clone());
    let mut fx = LiveEffects {
        peers: peer_addrs
            .iter()
            .map(|(id, a)| (*id, net::PeerSender::spawn(opts.id, *id, *a, log.clone())))
            .collect(),
        waiting: HashMap::new(),
        tracer,
    };
    core_loop(&mut core, &mut wal, &mut fx, &rx, opts.id, opts.tick, &log)
}

fn core_loop<C: Core>(
    core: &mut C,
    wal: &mut Wal,
    fx: &mut LiveEffects<C::Message>,
    rx: &Receiver<Event<C::Message>>,
    id: NodeId,
    tick: Duration,
    log: &Log,
) -> Result<(), ShellError> {
    let mut next_tick = Instant::now() + tick;
    let mut last = core.status();
    log_status(log, None, &last);
    fx.tracer.status(None, &last);
    let mut applied_total = 0u64;
    let mut last_report = (Instant::now(), last.commit, 0u64);
    loop {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(timeout) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ShellError::Config("every listener stopped".into()));
            }
        };
        // A due tick goes in before the batch's requests, so a request
        // that waited out a pause (SIGSTOP) is judged on the time after it
        // (lease reads compare `now_ms` with earlier readings).
        let now = Instant::now();
        if now >= next_tick {
            core.step(Input::Tick { now_ms: now_ms() });
            // After a pause do not replay the missed ticks in a burst: time
            // just moved on.
            next_tick = (next_tick + tick).max(now);
        }
        let mut n = 0;
        let mut next = first;
        // Admin answers wait for the batch to be durable (a fence must be
        // on disk before the operator relies on it).
        let mut admin_replies = Vec::new();
        while let Some(ev) = next {
            match ev {
                Event::Peer(from, lc, msg) => {
                    fx.tracer.receive(from, lc, &msg);
                    core.step(Input::Message { from, msg });
                }
                Event::Request(cmd, reply) => {
                    fx.waiting.insert(cmd.id, reply);
                    core.step(Input::Request(cmd));
                }
                Event::Status(reply) => {
                    let _ = reply.send(ClientReply::Status(NodeStatus::new(id, &core.status())));
                }
                Event::Admin(req, reply) => {
                    let r = match core.admin(&req) {
                        Ok(v) => ClientReply::Admin(v),
                        Err(error) => ClientReply::Error { error },
                    };
                    log.line(&format!("admin {req}: {}", r.to_line().trim_end()));
                    admin_replies.push((reply, r));
                }
            }
            n += 1;
            next = if n < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let ready = core.ready();
        applied_total += ready.applied.len() as u64;
        if !ready.is_empty()
            && let Err(e) = flush_ready(ready, wal, fx)
        {
            log.line(&format!("fatal: the write-ahead log failed, stopping: {e}"));
            return Err(e.into());
        }
        for (tx, r) in admin_replies {
            let _ = tx.send(r);
        }
        for mut note in core.notes() {
            if let Some(o) = note.as_object_mut() {
                o.insert("at_ms".into(), now_ms().into());
            }
            log.line(&format!("note {note}"));
        }
        let s = core.status();
        if s.role != last.role || s.term != last.term || s.leader != last.leader {
            log_status(log, Some(&last), &s);
        }
        fx.tracer.status(Some(&last), &s);
        last = s;
        if last_report.0.elapsed() >= Duration::from_secs(1)
            && (last.commit != last_report.1 || applied_total != last_report.2)
        {
            let dt = last_report.0.elapsed().as_secs_f64();
            log.line(&format!(
                "commit {} applied {} ({:.0}/s), wal {} fsyncs {} bytes, dropped to peers {:?}",
                last.commit,
                applied_total,
                (applied_total - last_report.2) as f64 / dt,
                wal.syncs,
                wal.bytes,
                fx.peers
                    .iter()
                    .map(|(p, s)| (*p, s.dropped))
                    .filter(|(_, d)| *d > 0)
                    .collect::<Vec<_>>()
            ));
            last_report = (Instant::now(), last.commit, applied_total);
        }
    }
}

fn log_status(log: &Log, old: Option<&Status>, s: &Status) {
    let leader = s.leader.map_or("none".to_string(), |l| format!("n{l}"));
    match old {
        Some(o) if o.role != s.role => log.line(&format!(
            "role {} -> {} (term {}, leader {leader}, commit {})",
            o.role, s.role, s.term, s.commit
        )),
        Some(o) if o.term != s.term => log.line(&format!(
            "term {} -> {} as {} (leader {leader})",
            o.term, s.term, s.role
        )),
        _ => log.line(&format!(
            "{} in term {} (leader {leader}, commit {})",
            s.role, s.term, s.commit
        )),
    }
}

/// On SIGTERM (and SIGINT, SIGHUP) writes out the trace of every node this
/// process runs (tests run several), then exits as the signal would have
/// (128 + 15). The handler is installed once per process.
fn on_terminate(flusher: trace::Flusher, log: Log) {
    static FLUSHERS: std::sync::OnceLock<Mutex<Vec<trace::Flusher>>> = std::sync::OnceLock::new();
    let mut first = false;
    let all = FLUSHERS.get_or_init(|| {
        first = true;
        Mutex::new(Vec::new())
    });
    if let Ok(mut v) = all.lock() {
        v.push(flusher);
    }
    if !first {
        return;
    }
    let said = log.clone();
    let r = ctrlc::set_handler(move || {
        let fs = all.lock().map(|v| v.clone()).unwrap_or_default();
        for f in fs {
            f.flush(Duration::from_secs(2));
        }
        said.line("terminated: trace written, exiting");
        std::process::exit(143);
    });
    if let Err(e) = r {
        log.line(&format!(
            "no SIGTERM handler, the trace's last 200 ms may be lost: {e}"
        ));
    }
}

/// Accepts client connections: a reader thread per connection turns lines
/// into events, a writer thread writes the replies back.
fn serve_clients<M: Send + 'static>(listener: TcpListener, tx: Sender<Event<M>>, log: Log) {
    std::thread::Builder::new()
        .name("client-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(s) = conn else { continue };
                let tx = tx.clone();
                let log = log.clone();
                let _ = std::thread::Builder::new()
                    .name("client".into())
                    .spawn(move || client_conn(s, tx, log));
            }
        })
        .expect("spawning the client listener");
}

fn client_conn<M>(s: TcpStream, tx: Sender<Event<M>>, log: Log) {
    let _ = s.set_nodelay(true);
    let Ok(w) = s.try_clone() else { return };
    let (rtx, rrx) = mpsc::channel::<ClientReply>();
    let writer = std::thread::Builder::new()
        .name("client-w".into())
        .spawn(move || {
            let mut w = BufWriter::new(w);
            while let Ok(r) = rrx.recv() {
                let mut ok = w.write_all(r.to_line().as_bytes()).is_ok();
                while ok && let Ok(r) = rrx.try_recv() {
                    ok = w.write_all(r.to_line().as_bytes()).is_ok();
                }
                if !ok || w.flush().is_err() {
                    return;
                }
            }
        });
    if writer.is_err() {
        return;
    }
    let remote: Option<SocketAddr> = s.peer_addr().ok();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let ev = match ClientRequest::parse(&line) {
            Ok(ClientRequest::Command(c)) => Event::Request(c, rtx.clone()),
            Ok(ClientRequest::Status) => Event::Status(rtx.clone()),
            Ok(ClientRequest::Admin(a)) => Event::Admin(a, rtx.clone()),
            Err(error) => {
                log.line(&format!("client {remote:?}: bad request: {error}"));
                let _ = rtx.send(ClientReply::Error { error });
                continue;
            }
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
