//! The node's message trace: every message the core sends and receives and
//! its role/term/leader/commit changes, as [`faultline_trace::Record`]s in
//! `messages.jsonl` in the data dir (the runner fetches it into the run's
//! `nodes/<node>/`).
//!
//! The core thread keeps the Lamport clock and builds records (name and a
//! bounded summary of the message, [`faultline_trace::describe`]); a writer
//! thread serializes them, keeps a ring of the last [`TraceConfig::limit`]
//! records (and, if set, only the last [`TraceConfig::window`]), and appends
//! to the file every [`FLUSH_EVERY`] — so `kill -9` loses at most that tail
//! — and when asked ([`Flusher`], on SIGTERM). The file is rewritten from
//! the ring once it holds twice the ring (plus a slack), which bounds it.
//!
//! After a restart the clock resumes [`RESTART_GAP`] past the last clock in
//! the file, so sends of the new process never reuse a clock value of sends
//! the old one made but did not get to write.

use super::Log;
use crate::core::{NodeId, Status};
use faultline_trace::{Body, EventKind, Lamport, MESSAGES_FILE, Observation, Record};
use serde::Serialize;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How often the writer appends what it has to the file.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// More than a lost unflushed tail can hold (200 ms of messages).
pub const RESTART_GAP: u64 = 1_000_000;
/// Records kept by default (about 200 bytes each).
pub const DEFAULT_LIMIT: usize = 200_000;
/// Lines beyond twice the ring before the file is rewritten.
const SLACK: usize = 10_000;

/// How much of the trace is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceConfig {
    /// Records kept (the last N); 0 turns the trace off.
    pub limit: usize,
    /// Keep only records this recent (by the node's wall clock); `None`:
    /// no time bound.
    pub window: Option<Duration>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            limit: DEFAULT_LIMIT,
            window: None,
        }
    }
}

enum Cmd {
    Record(Record),
    Flush(Sender<()>),
}

/// The core thread's half: the clock and the record builder.
pub struct Tracer {
    me: String,
    clock: Lamport,
    tx: Option<Sender<Cmd>>,
    last_commit: (u64, u64),
}

/// Asks the writer to write out everything it has, and waits (bounded).
#[derive(Clone)]
pub struct Flusher(Option<Sender<Cmd>>);

impl Flusher {
    pub fn flush(&self, wait: Duration) {
        if let Some(tx) = &self.0 {
            let (done, rx) = mpsc::channel();
            if tx.send(Cmd::Flush(done)).is_ok() {
                let _ = rx.recv_timeout(wait);
            }
        }
    }
}

fn name(id: NodeId) -> String {
    format!("n{id}")
}

impl Tracer {
    /// Opens (or continues) the trace in `dir` and starts its writer. A
    /// trace that cannot be written is logged and turned off: the node
    /// runs on.
    pub fn start(dir: &Path, me: NodeId, cfg: TraceConfig, log: &Log) -> Tracer {
        let path = dir.join(MESSAGES_FILE);
        let (ring, last_lc) = if cfg.limit == 0 {
            (VecDeque::new(), 0)
        } else {
            load(&path, cfg.limit)
        };
        let start = if last_lc == 0 {
            0
        } else {
            last_lc + RESTART_GAP
        };
        let mut t = Tracer {
            me: name(me),
            clock: Lamport::starting_at(start),
            tx: None,
            last_commit: (0, 0),
        };
        if cfg.limit == 0 {
            // An empty file still says "this node ran, untraced".
            let _ = File::create(&path);
            return t;
        }
        match Writer::open(path, ring, cfg) {
            Ok(w) => {
                let (tx, rx) = mpsc::channel();
                let spawned = std::thread::Builder::new()
                    .name("trace".into())
                    .spawn(move || w.run(rx));
                match spawned {
                    Ok(_) => t.tx = Some(tx),
                    Err(e) => log.line(&format!("trace off: {e}")),
                }
            }
            Err(e) => log.line(&format!("trace off: {e}")),
        }
        t
    }

    pub fn flusher(&self) -> Flusher {
        Flusher(self.tx.clone())
    }

    fn record(&mut self, lc: u64, body: Body) {
        if let Some(tx) = &self.tx {
            let r = Record {
                node: self.me.clone(),
                lc,
                at_ms: super::now_ms(),
                body,
            };
            if tx.send(Cmd::Record(r)).is_err() {
                self.tx = None;
            }
        }
    }

    /// A send to `to`: ticks the clock and returns the value the message
    /// carries on the wire.
    pub fn send<M: Serialize>(&mut self, to: NodeId, msg: &M) -> u64 {
        let lc = self.clock.tick();
        if self.tx.is_some() {
            let (ty, summary) = faultline_trace::describe(msg);
            self.record(
                lc,
                Body::Send {
                    to: name(to),
                    ty,
                    summary,
                },
            );
        }
        lc
    }

    /// A receive from `from` of a message sent at its clock `sent_lc`.
    pub fn receive<M: Serialize>(&mut self, from: NodeId, sent_lc: u64, msg: &M) {
        let lc = self.clock.receive(sent_lc);
        if self.tx.is_some() {
            let (ty, summary) = faultline_trace::describe(msg);
            self.record(
                lc,
                Body::Recv {
                    from: name(from),
                    sent_lc,
                    ty,
                    summary,
                },
            );
        }
    }

    /// The core's status after a batch (`old`: before it; `None` at start):
    /// records role, term and leader changes, and commit advances at most
    /// every [`faultline_trace::COMMIT_EVERY_MS`].
    pub fn status(&mut self, old: Option<&Status>, s: &Status) {
        if self.tx.is_none() {
            return;
        }
        let event = match old {
            None => EventKind::Start,
            Some(o) if o.role != s.role => EventKind::Role,
            Some(o) if o.term != s.term => EventKind::Term,
            Some(o) if o.leader != s.leader => EventKind::Leader,
            Some(_) => {
                let now = super::now_ms();
                if s.commit == self.last_commit.0
                    || now < self.last_commit.1 + faultline_trace::COMMIT_EVERY_MS
                {
                    return;
                }
                EventKind::Commit
            }
        };
        self.last_commit = (s.commit, super::now_ms());
        let lc = self.clock.tick();
        self.record(
            lc,
            Body::Event(Observation {
                event,
                role: Some(s.role.to_string()),
                term: Some(s.term),
                leader: s.leader.map(name),
                commit: Some(s.commit),
            }),
        );
    }
}

/// The previous incarnation's complete lines (the last `limit`), and the
/// largest clock among them.
fn load(path: &Path, limit: usize) -> (VecDeque<(u64, String)>, u64) {
    let Ok(text) = fs::read_to_string(path) else {
        return (VecDeque::new(), 0);
    };
    let mut ring = VecDeque::new();
    let mut last = 0;
    for r in faultline_trace::parse(&text, "").unwrap_or_default() {
        last = last.max(r.lc);
        if let Ok(line) = serde_json::to_string(&r) {
            ring.push_back((r.at_ms, line));
            if ring.len() > limit {
                ring.pop_front();
            }
        }
    }
    (ring, last)
}

struct Writer {
    path: PathBuf,
    file: File,
    ring: VecDeque<(u64, String)>,
    /// Serialized records not yet in the file.
    pending: Vec<u8>,
    file_lines: usize,
    cfg: TraceConfig,
}

impl Writer {
    /// Starts the file from the ring (dropping a line torn by `kill -9`).
    fn open(
        path: PathBuf,
        ring: VecDeque<(u64, String)>,
        cfg: TraceConfig,
    ) -> std::io::Result<Writer> {
        let file = File::create(&path)?;
        let mut w = Writer {
            path,
            file,
            ring,
            pending: Vec::new(),
            file_lines: 0,
            cfg,
        };
        w.rewrite()?;
        Ok(w)
    }

    fn run(mut self, rx: Receiver<Cmd>) {
        let mut next = Instant::now() + FLUSH_EVERY;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Cmd::Record(r)) => self.push(&r),
                Ok(Cmd::Flush(done)) => {
                    let _ = self.flush();
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush();
                    return;
                }
            }
            if Instant::now() >= next {
                // Errors (disk full) only cost trace lines.
                let _ = self.flush();
                next = Instant::now() + FLUSH_EVERY;
            }
        }
    }

    fn push(&mut self, r: &Record) {
        let Ok(line) = serde_json::to_string(r) else {
            return;
        };
        self.pending.extend_from_slice(line.as_bytes());
        self.pending.push(b'\n');
        self.ring.push_back((r.at_ms, line));
        if self.ring.len() > self.cfg.limit {
            self.ring.pop_front();
        }
        if let Some(w) = self.cfg.window {
            let oldest = r.at_ms.saturating_sub(w.as_millis() as u64);
            while self.ring.front().is_some_and(|(at, _)| *at < oldest) {
                self.ring.pop_front();
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let new_lines = self.pending.iter().filter(|b| **b == b'\n').count();
        if self.file_lines + new_lines > 2 * self.ring.len() + SLACK {
            self.pending.clear();
            return self.rewrite();
        }
        self.file.write_all(&self.pending)?;
        self.pending.clear();
        self.file_lines += new_lines;
        Ok(())
    }

    /// Replaces the file with the ring: write aside, then rename.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut f = std::io::BufWriter::new(File::create(&tmp)?);
        for (_, line) in &self.ring {
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.file_lines = self.ring.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fl-trace-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(d: &Path) -> Vec<Record> {
        let text = fs::read_to_string(d.join(MESSAGES_FILE)).unwrap();
        faultline_trace::parse(&text, "t").unwrap()
    }

    #[derive(Serialize)]
    enum Msg {
        Ping { n: u64 },
    }

    #[test]
    fn sends_receives_and_events_reach_the_file_with_lamport_clocks() {
        let d = dir("basic");
        let log = Log::new("t".into());
        let mut t = Tracer::start(&d, 1, TraceConfig::default(), &log);
        let s = Status {
            role: "follower",
            term: 1,
            leader: None,
            commit: 0,
        };
        t.status(None, &s);
        let lc = t.send(2, &Msg::Ping { n: 7 });
        t.receive(2, 100, &Msg::Ping { n: 8 });
        let s2 = Status {
            role: "leader",
            ..s.clone()
        };
        t.status(Some(&s), &s2);
        t.flusher().flush(Duration::from_secs(5));
        let rs = read(&d);
        assert_eq!(rs.len(), 4, "{rs:?}");
        assert_eq!(rs[1].lc, lc);
        assert_eq!(
            rs[1].body,
            Body::Send {
                to: "n2".into(),
                ty: "Ping".into(),
                summary: "n:7".into()
            }
        );
        // IR2: past the sender's 100.
        assert_eq!(rs[2].lc, 101);
        assert!(matches!(&rs[3].body, Body::Event(o) if o.event == EventKind::Role));
        // A restart resumes past every clock written.
        drop(t);
        std::thread::sleep(Duration::from_millis(50));
        let mut t = Tracer::start(&d, 1, TraceConfig::default(), &log);
        assert!(t.send(2, &Msg::Ping { n: 9 }) > 102 + RESTART_GAP - 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn the_ring_bounds_the_file() {
        let d = dir("ring");
        let log = Log::new("t".into());
        let cfg = TraceConfig {
            limit: 100,
            window: None,
        };
        let mut t = Tracer::start(&d, 1, cfg, &log);
        let f = t.flusher();
        for i in 0..(3 * SLACK as u64) {
            t.send(2, &Msg::Ping { n: i });
            if i % 1000 == 0 {
                f.flush(Duration::from_secs(5));
            }
        }
        f.flush(Duration::from_secs(5));
        let rs = read(&d);
        assert!(rs.len() <= 2 * 100 + SLACK, "{} lines", rs.len());
        // The newest record is always there.
        assert_eq!(rs.last().map(|r| r.lc), Some(3 * SLACK as u64));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn limit_zero_turns_it_off_but_leaves_an_empty_file() {
        let d = dir("off");
        let mut t = Tracer::start(
            &d,
            1,
            TraceConfig {
                limit: 0,
                window: None,
            },
            &Log::new("t".into()),
        );
        // The clock still runs: messages carry it on the wire.
        assert_eq!(t.send(2, &Msg::Ping { n: 1 }), 1);
        t.flusher().flush(Duration::from_secs(1));
        assert_eq!(fs::read_to_string(d.join(MESSAGES_FILE)).unwrap(), "");
        let _ = fs::remove_dir_all(&d);
    }
}
