//! A lock service with leases and fencing tokens on top of [`Raft`]
//! (Burrows, "The Chubby lock service", OSDI 2006, §2.4 sequencers;
//! Kleppmann, "How to do distributed locking", 2016), plus the fenced
//! storage service ([`storage`]) that makes the tokens useful.
//!
//! The replicated part is the [`Store`](crate::kv::Store)'s lease table:
//! `LeaseAcquire` / `LeaseRenew` / `LeaseRelease` go through the Raft log
//! like any write, a grant hands out the next **fencing token** (a counter
//! committed through Raft, so tokens strictly increase with every grant),
//! and each holder remembers the request that granted or last renewed it
//! (`since`).
//!
//! **Expiry is not replicated**: only the leader times leases, on its own
//! clock, and only to decide whether an acquire may *preempt* a holder.
//! It then proposes `LeaseAcquire { preempt: Some((token, since)) }`,
//! which the state machine grants only if that exact lease (same token,
//! not renewed since) still holds the lock — so a renew that commits
//! between the decision and the preempt wins, deterministically.
//!
//! The leader's clock is **ticks** (`--tick-ms` each). Ticks are scheduled
//! on the monotonic clock and are never replayed after a pause, so the
//! count can only lag real time: a lease then lasts longer, never shorter,
//! than the client thinks. A lease starts when the leader *proposed* the
//! grant or renew, which is after the client sent it, so it runs at least
//! `lease_ms` from the client's request. A leader that did not propose a
//! holder's lease itself (it inherited it from an earlier leader, or
//! proposed it in an earlier term) does not know when it started: it
//! waits out the whole lease (its length is replicated with the holder;
//! `max-lease-ms` bounds it) from the moment it became leader, which is
//! after the old leader proposed it (the entry reached a voter before the
//! vote). So the new leader never grants before the old lease could have
//! expired.
//!
//! Options: `tick-ms=N` (set by `faultline-node lock` from `--tick-ms`),
//! `max-lease-ms=N` (longest lease a client may ask for, default 10000),
//! `storage-port=P` and `storage-node=ID` (see [`storage`]).

pub mod storage;

/// `faultline-node lock`: the storage service (or its relay) on
/// `storage-port`, then the Raft lock service.
pub fn run_node(mut opts: crate::shell::Options) -> Result<(), String> {
    if !opts.options.iter().any(|o| o.starts_with("tick-ms=")) {
        opts.options
            .push(format!("tick-ms={}", opts.tick.as_millis().max(1)));
    }
    let cfg = opts.config();
    let port: u16 = match cfg.option("storage-port") {
        None => storage::DEFAULT_PORT,
        Some(p) => p
            .parse()
            .map_err(|_| format!("--option storage-port={p}: not a port"))?,
    };
    let first = *opts.peers.keys().next().ok_or("no peers")?;
    let holder: u64 = match cfg.option("storage-node") {
        None => first,
        Some(n) => n
            .parse()
            .map_err(|_| format!("--option storage-node={n}: not a node id"))?,
    };
    let host_of = |id: u64| -> Result<String, String> {
        let a = opts
            .peers
            .get(&id)
            .ok_or(format!("storage-node {id} is not in --peers"))?;
        Ok(a.rsplit_once(':')
            .map_or(a.as_str(), |(h, _)| h)
            .to_string())
    };
    let resolve = |h: String| -> Result<std::net::SocketAddr, String> {
        use std::net::ToSocketAddrs;
        format!("{h}:{port}")
            .to_socket_addrs()
            .map_err(|e| format!("{h}:{port}: {e}"))?
            .next()
            .ok_or(format!("{h}:{port}: no address"))
    };
    let listen = resolve(host_of(opts.id)?)?;
    let upstream = if holder == opts.id {
        None
    } else {
        Some(resolve(host_of(holder)?)?)
    };
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("{}: {e}", opts.data_dir.display()))?;
    let log = crate::shell::Log::new(format!("n{} lock", opts.id));
    storage::serve(
        listen,
        upstream,
        &opts.data_dir,
        Bugs::from_names(&opts.bugs)?.storage_per_client,
        log,
    )?;
    crate::shell::run::<LockService>(opts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;

use crate::core::{Config, Core, Input, Ready, Reply, Status};
use crate::kv::{Command, LeaseHolder, Op, RequestId};
use crate::raft::{Message, Raft, Record};
use std::collections::BTreeMap;

/// One line about the protocol (`faultline-node --list`).
pub const ABOUT: &str = "a lease lock service with fencing tokens on Raft, and a fenced storage service (fenced workload only)";

// The lock service's seeded bugs (`--bug NAME`).
crate::seeded_bugs! {
    "lock";
    skip_fencing = "skip-fencing":
        "the client checks its lease on its own clock and then writes without its fencing token, so the storage cannot reject a write that a pause delayed past the lease",
    grant_after_election = "grant-after-election":
        "a new leader treats the leases it inherited as expired and grants the lock at once, instead of waiting out the old lease",
    wall_clock_lease = "wall-clock-lease":
        "the leader times leases on its wall clock, so a clock that jumps forward expires a lease early and the lock is granted twice",
    storage_per_client = "storage-per-client":
        "the storage remembers the highest token per client instead of per key, so a late write with an old token from another client is accepted",
    ;
    sim_only:
}

/// Default `max-lease-ms`.
pub const DEFAULT_MAX_LEASE_MS: u64 = 10_000;

/// The lock service core: Raft plus the leader's lease clock.
pub struct LockService {
    raft: Raft,
    tick_ms: u64,
    max_lease_ms: u64,
    wall_clock: bool,
    grant_after_election: bool,
    ticks: u64,
    wall_ms: u64,
    /// The term this node leads, and when (by [`LockService::now`]) it
    /// became leader.
    leading: Option<(u64, u64)>,
    /// Lease requests this node proposed while leading in the current
    /// term: request → proposal time.
    proposed: BTreeMap<RequestId, u64>,
    replies: Vec<(RequestId, Reply)>,
}

impl LockService {
    /// This node's lease clock in ms: ticks × tick length (the
    /// `wall-clock-lease` bug: the wall clock).
    pub fn now(&self) -> u64 {
        if self.wall_clock {
            self.wall_ms
        } else {
            self.ticks * self.tick_ms
        }
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// When the leader may consider `h`'s lease over. The lease clock
    /// reads in whole ticks: the stamp is the last tick's, which can
    /// precede the request (even the client's send) by a tick, and a late
    /// tick's successors are scheduled from when it was due, so two ticks
    /// of slack keep the lease from ending before `lease_ms` after the
    /// client asked (a campaign saw grants 4 ms early without it).
    pub fn expiry(&self, h: &LeaseHolder) -> u64 {
        let slack = 2 * self.tick_ms;
        if let Some(t) = self.proposed.get(&h.since) {
            return t + h.lease_ms + slack;
        }
        if self.grant_after_election {
            // BUG grant-after-election: an inherited lease counts as over.
            return 0;
        }
        let since = self.leading.map_or(u64::MAX, |(_, s)| s);
        since.saturating_add(h.lease_ms).saturating_add(slack)
    }

    fn track_leadership(&mut self) {
        let st = self.raft.status();
        if !st.is_leader() {
            self.leading = None;
            self.proposed.clear();
        } else if self.leading.map(|(t, _)| t) != Some(st.term) {
            self.leading = Some((st.term, self.now()));
            self.proposed.clear();
        }
    }

    fn request(&mut self, mut cmd: Command) {
        if self.leading.is_none() {
            // Raft answers not-leader (or a lease read bug would apply).
            self.raft.step(Input::Request(cmd));
            return;
        }
        let now = self.now();
        match &mut cmd.op {
            Op::LeaseAcquire {
                lock,
                lease_ms,
                preempt,
            } => {
                if *lease_ms == 0 || *lease_ms > self.max_lease_ms {
                    let e = format!(
                        "acquire: a lease must be 1..={} ms, not {lease_ms}",
                        self.max_lease_ms
                    );
                    self.replies.push((cmd.id, Reply::Done(Err(e))));
                    return;
                }
                *preempt = None;
                if let Some(h) = self.raft.store().lease(*lock).cloned() {
                    let until = self.expiry(&h);
                    if now < until {
                        let e = format!(
                            "acquire: lock {lock} is held by client {} (token {}) for {} ms more",
                            h.owner,
                            h.token,
                            until - now
                        );
                        self.replies.push((cmd.id, Reply::Done(Err(e))));
                        return;
                    }
                    *preempt = Some((h.token, h.since));
                }
                self.proposed.entry(cmd.id).or_insert(now);
            }
            Op::LeaseRenew { lease_ms, .. } => {
                if *lease_ms == 0 || *lease_ms > self.max_lease_ms {
                    let e = format!("renew: a lease must be 1..={} ms", self.max_lease_ms);
                    self.replies.push((cmd.id, Reply::Done(Err(e))));
                    return;
                }
                self.proposed.entry(cmd.id).or_insert(now);
            }
            _ => {}
        }
        self.raft.step(Input::Request(cmd));
    }
}

impl Core for LockService {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> LockService {
        let num = |k: &str, d: u64| {
            config
                .option(k)
                .and_then(|v| v.parse().ok())
                .filter(|&n: &u64| n > 0)
                .unwrap_or(d)
        };
        let tick_ms = num("tick-ms", 10);
        let max_lease_ms = num("max-lease-ms", DEFAULT_MAX_LEASE_MS);
        let bugs = Bugs::from_config(&config);
        let (wall_clock, grant_after_election) = (bugs.wall_clock_lease, bugs.grant_after_election);
        LockService {
            // The lock service's bugs are its own; its Raft has none.
            raft: Raft::recover_with(config, records, crate::raft::Bugs::default()),
            tick_ms,
            max_lease_ms,
            wall_clock,
            grant_after_election,
            ticks: 0,
            wall_ms: 0,
            leading: None,
            proposed: BTreeMap::new(),
            replies: Vec::new(),
        }
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => {
                self.ticks += 1;
                self.wall_ms = now_ms;
                self.raft.step(Input::Tick { now_ms });
                // Requests older than any lease cannot matter any more.
                if self.ticks.is_multiple_of(256) {
                    let now = self.now();
                    let keep = self.max_lease_ms;
                    self.proposed
                        .retain(|_, t| t.saturating_add(keep) >= now || now < *t);
                }
            }
            Input::Message { from, msg } => self.raft.step(Input::Message { from, msg }),
            Input::Request(cmd) => self.request(cmd),
        }
        self.track_leadership();
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        let mut r = self.raft.ready();
        self.track_leadership();
        r.replies.append(&mut self.replies);
        r
    }

    fn status(&self) -> Status {
        self.raft.status()
    }
}
