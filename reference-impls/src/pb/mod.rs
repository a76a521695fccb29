//! `pb`: primary-backup replication with views, fencing and an operator
//! (or harness) driven failover — the textbook scheme of Budhiraja et al.,
//! "The Primary-Backup Approach" (1993), with MySQL's three shipping modes.
//!
//! A **view** is `(epoch, primary)`; every other member is a backup. The
//! first view is `(1, lowest id)`. The primary appends each client command
//! (reads too: reads go through the log, so a deposed primary cannot
//! answer them) to its log and streams it to the backups; an entry carries
//! the epoch that created it, and an Append carries the epoch of the entry
//! before it, so a backup's log matches the primary's up to what it
//! acknowledges (Raft's log-matching rule). When an entry commits depends
//! on `--option mode=`:
//!
//! - `sync` (default): every backup has it on disk;
//! - `semi-sync`: at least one backup has it on disk;
//! - `async`: the primary alone has it on disk (backups catch up later) —
//!   a failover loses what the old primary acknowledged alone. That is the
//!   mode's documented price, not a bug.
//!
//! **Fencing**: a member never accepts an Append (or acknowledges one) from
//! an epoch lower than its own, and tells the sender the newer view, which
//! steps a deposed primary down.
//!
//! **Failover** is not decided by the members (that would be consensus);
//! an operator does it with two admin requests ([`Core::admin`]):
//! `{"fence":E}` moves a backup to epoch E with no primary (it answers
//! with its log's length and last epoch), then `{"promote":E}` makes the
//! chosen one primary of E. [`choose`] is the policy: in `sync` mode any
//! fenced backup has every committed entry; in `semi-sync` every backup
//! must be fenced (an unfenced one could still help the old primary
//! commit) and the most up-to-date one wins; `async` takes the most
//! up-to-date reachable one and still loses writes. The faultline target
//! runs this from the nemesis' heal (`Target::failover`).

#[cfg(test)]
mod tests;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, RequestId, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ABOUT: &str = "primary-backup: views with epochs and fencing, sync/semi-sync/async \
     (--option mode=), failover by fence + promote";

crate::seeded_bugs! {
    "pb";
    ack_before_fsync = "ack-before-fsync":
        "entries are acknowledged (by the primary to its clients, by a backup \
                      to its primary) before they are on disk; the log is written once every \
                      100 ticks (1 s, like Redis' appendfsync everysec), so a crash of every \
                      node, or of a primary and the backup that replaces it, loses the last \
                      second of acknowledged writes",
    no_fencing = "no-fencing":
        "a backup accepts Appends from a deposed primary's older epoch",
    promote_any = "promote-any":
        "the failover promotes the lowest-id fenced backup in semi-sync mode \
                      instead of the most up-to-date one",
    local_read = "local-read":
        "the primary answers reads from its own store without the log, so a \
                      deposed primary serves stale reads",
    ;
    sim_only:
}

/// Entries per Append message.
const MAX_BATCH: usize = 256;

/// When the primary may commit an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Sync,
    SemiSync,
    Async,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "sync" => Ok(Mode::Sync),
            "semi-sync" => Ok(Mode::SemiSync),
            "async" => Ok(Mode::Async),
            _ => Err(format!("mode `{s}`: expected sync, semi-sync or async")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::SemiSync => "semi-sync",
            Mode::Async => "async",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub epoch: u64,
    pub cmd: Command,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Entries `prev+1 ..`, the epoch of the entry at `prev` (0 for none),
    /// and the primary's commit.
    Append {
        epoch: u64,
        prev: u64,
        prev_epoch: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// `ok`: "my log matches yours up to `len`, durably"; otherwise "resend
    /// from `len + 1`".
    Ack { epoch: u64, ok: bool, len: u64 },
    /// "You are deposed: the view is now `(epoch, primary)`."
    Stale { epoch: u64, primary: Option<NodeId> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    View { epoch: u64, primary: Option<NodeId> },
    Entry { index: u64, entry: Entry },
}

/// What a fenced backup reports to the failover.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fenced {
    pub id: NodeId,
    pub epoch: u64,
    pub len: u64,
    pub last_epoch: u64,
    pub mode: Mode,
    /// The seeded bug `promote-any` is on.
    #[serde(default)]
    pub promote_any: bool,
}

/// The failover policy: which fenced backup to promote, given every
/// member but the lost primary (`backups`) and those that answered the
/// fence. `Err` says why none may be promoted.
pub fn choose(backups: &[NodeId], fenced: &[Fenced]) -> Result<NodeId, String> {
    let Some(first) = fenced.first() else {
        return Err("no backup answered the fence".into());
    };
    let by_age = |f: &&Fenced| (f.last_epoch, f.len, std::cmp::Reverse(f.id));
    let lowest = fenced.iter().min_by_key(|f| f.id).map(|f| f.id);
    match first.mode {
        // Every backup acknowledged every committed entry.
        Mode::Sync => lowest.ok_or_else(|| "no backup".into()),
        Mode::SemiSync => {
            let missing: Vec<_> = backups
                .iter()
                .filter(|b| !fenced.iter().any(|f| f.id == **b))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "semi-sync: backups {missing:?} did not answer the fence; the one that \
                     has the last committed entry may be among them"
                ));
            }
            if first.promote_any {
                return lowest.ok_or_else(|| "no backup".into());
            }
            Ok(fenced.iter().max_by_key(by_age).map_or(first.id, |f| f.id))
        }
        Mode::Async => Ok(fenced.iter().max_by_key(by_age).map_or(first.id, |f| f.id)),
    }
}

pub struct Pb {
    config: Config,
    bugs: Bugs,
    mode: Mode,
    epoch: u64,
    primary: Option<NodeId>,
    log: Vec<Entry>,
    commit: u64,
    applied: u64,
    store: Store,
    /// Primary: per backup, the length up to which its log matches ours
    /// (acknowledged in this epoch).
    matched: BTreeMap<NodeId, u64>,
    /// Primary: per backup, the next index to send.
    next: BTreeMap<NodeId, u64>,
    ticks: u64,
    /// Backup: the tick we last heard from our primary.
    heard: u64,
    out: Ready<Message, Record>,
    pending: BTreeMap<u64, RequestId>,
    /// Bug `ack-before-fsync`: records acknowledged but not yet on disk.
    unsynced: Vec<Record>,
}

/// Bug `ack-before-fsync`: how often the lazy log reaches the disk, in ticks
/// (100 × 10 ms: once a second, as Redis' `appendfsync everysec`). A whole
/// second, not one tick, so that a crash of every node (`kill-all`) lands
/// inside the window often enough to be seen.
pub const LAZY_FSYNC_TICKS: u64 = 100;

impl Pb {
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn log_len(&self) -> u64 {
        self.log.len() as u64
    }

    fn is_primary(&self) -> bool {
        self.primary == Some(self.config.id)
    }

    fn backups(&self) -> Vec<NodeId> {
        let me = self.config.id;
        self.config
            .peers
            .iter()
            .copied()
            .filter(|p| *p != me)
            .collect()
    }

    fn epoch_at(&self, index: u64) -> u64 {
        if index == 0 {
            0
        } else {
            self.log.get(index as usize - 1).map_or(0, |e| e.epoch)
        }
    }

    fn fenced(&self) -> Fenced {
        Fenced {
            id: self.config.id,
            epoch: self.epoch,
            len: self.log_len(),
            last_epoch: self.epoch_at(self.log_len()),
            mode: self.mode,
            promote_any: self.bugs.promote_any,
        }
    }

    fn persist(&mut self, r: Record) {
        self.out.records.push(r);
    }

    /// A log entry: on disk before anything depends on it, or (bug
    /// `ack-before-fsync`) at the next lazy write.
    fn persist_entry(&mut self, r: Record) {
        if self.bugs.ack_before_fsync {
            self.unsynced.push(r);
        } else {
            self.persist(r);
        }
    }

    /// Moves to a newer view; a primary that is deposed gives up on its
    /// pending requests (they may or may not survive).
    fn adopt(&mut self, epoch: u64, primary: Option<NodeId>) {
        if self.is_primary() && primary != Some(self.config.id) {
            for (_, id) in std::mem::take(&mut self.pending) {
                self.out
                    .replies
                    .push((id, Reply::Unknown("deposed by a newer view".into())));
            }
        }
        self.epoch = epoch;
        self.primary = primary;
        self.heard = self.ticks;
        self.persist(Record::View { epoch, primary });
    }

    /// Replaces the durable log with the current state (after truncating).
    fn rewrite(&mut self) {
        let mut all = vec![Record::View {
            epoch: self.epoch,
            primary: self.primary,
        }];
        all.extend(self.log.iter().enumerate().map(|(i, e)| Record::Entry {
            index: i as u64 + 1,
            entry: e.clone(),
        }));
        self.unsynced.clear();
        self.out.records.clear();
        self.out.rewrite = Some(all);
    }

    fn send_append(&mut self, to: NodeId, from_next: u64) {
        let len = self.log_len();
        let start = from_next.clamp(1, len + 1);
        let end = (start - 1 + MAX_BATCH as u64).min(len);
        let entries = self.log[(start - 1) as usize..end as usize].to_vec();
        self.next.insert(to, end + 1);
        self.out.messages.push((
            to,
            Message::Append {
                epoch: self.epoch,
                prev: start - 1,
                prev_epoch: self.epoch_at(start - 1),
                entries,
                commit: self.commit,
            },
        ));
    }

    fn advance_commit(&mut self) {
        let len = self.log_len();
        let acks: Vec<u64> = self
            .backups()
            .iter()
            .map(|b| self.matched.get(b).copied().unwrap_or(0))
            .collect();
        let c = match self.mode {
            Mode::Sync => acks.iter().copied().min().unwrap_or(len),
            Mode::SemiSync => acks.iter().copied().max().unwrap_or(len),
            Mode::Async => len,
        }
        .min(len);
        self.commit = self.commit.max(c);
    }

    fn apply(&mut self) {
        let upto = self.commit.min(self.log_len());
        while self.applied < upto {
            self.applied += 1;
            let cmd = self.log[(self.applied - 1) as usize].cmd.clone();
            let out = self.store.apply(&cmd);
            if let Some(id) = self.pending.remove(&self.applied) {
                self.out.replies.push((id, Reply::Done(out)));
            }
            self.out.applied.push((self.applied, cmd));
        }
    }

    fn on_append(
        &mut self,
        from: NodeId,
        epoch: u64,
        prev: u64,
        prev_epoch: u64,
        entries: Vec<Entry>,
        commit: u64,
    ) {
        if epoch < self.epoch && !self.bugs.no_fencing {
            self.out.messages.push((
                from,
                Message::Stale {
                    epoch: self.epoch,
                    primary: self.primary,
                },
            ));
            return;
        }
        if epoch > self.epoch || (epoch == self.epoch && self.primary.is_none()) {
            // A newer view, or the promoted primary of the epoch we were
            // fenced into.
            self.adopt(epoch, Some(from));
        } else if epoch == self.epoch && self.primary != Some(from) {
            // Two primaries in one epoch cannot happen; ignore rather than
            // trust it.
            return;
        }
        if self.is_primary() {
            return;
        }
        if epoch == self.epoch {
            self.heard = self.ticks;
        }
        let len = self.log_len();
        if prev > len || self.epoch_at(prev) != prev_epoch {
            let hint = len.min(prev.saturating_sub(1));
            self.out.messages.push((
                from,
                Message::Ack {
                    epoch,
                    ok: false,
                    len: hint,
                },
            ));
            return;
        }
        let mut truncated = false;
        let n = entries.len() as u64;
        for (i, e) in entries.into_iter().enumerate() {
            let index = prev + 1 + i as u64;
            if index <= self.log_len() {
                if self.log[(index - 1) as usize].epoch == e.epoch {
                    continue;
                }
                // A divergent suffix from an older view: drop it.
                // (Only an uncommitted suffix in a correct build; an applied
                // one cannot be unapplied, and the sim reports the
                // divergence when another node applies this position.)
                self.log.truncate((index - 1) as usize);
                truncated = true;
            }
            self.log.push(e.clone());
            if !truncated {
                self.persist_entry(Record::Entry { index, entry: e });
            }
        }
        if truncated {
            self.rewrite();
        }
        let matched = prev + n;
        self.commit = self.commit.max(commit.min(matched));
        self.out.messages.push((
            from,
            Message::Ack {
                epoch,
                ok: true,
                len: matched,
            },
        ));
        self.apply();
    }

    fn on_ack(&mut self, from: NodeId, epoch: u64, ok: bool, len: u64) {
        if epoch != self.epoch || !self.is_primary() {
            return;
        }
        if ok {
            let m = self.matched.entry(from).or_insert(0);
            *m = (*m).max(len);
            if self.next.get(&from).copied().unwrap_or(1) <= len {
                self.next.insert(from, len + 1);
            }
        } else {
            self.next.insert(from, len + 1);
        }
        let next = self.next.get(&from).copied().unwrap_or(1);
        if next <= self.log_len() || !ok {
            self.send_append(from, next);
        }
        self.advance_commit();
        self.apply();
    }

    fn become_primary(&mut self, epoch: u64) {
        self.adopt(epoch, Some(self.config.id));
        self.matched.clear();
        let next = self.log_len() + 1;
        for b in self.backups() {
            self.next.insert(b, next);
            self.send_append(b, next);
        }
        self.advance_commit();
        self.apply();
    }
}

impl Core for Pb {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Self {
        let mode = config
            .option("mode")
            .and_then(|m| Mode::parse(m).ok())
            .unwrap_or(Mode::Sync);
        let mut epoch = 1;
        let mut primary = config.peers.iter().copied().min();
        let mut log: Vec<Entry> = Vec::with_capacity(records.len());
        for r in records {
            match r {
                Record::View {
                    epoch: e,
                    primary: p,
                } => {
                    epoch = e;
                    primary = p;
                }
                Record::Entry { index, entry } => {
                    if index >= 1 && index <= log.len() as u64 + 1 {
                        log.truncate(index as usize - 1);
                        log.push(entry);
                    }
                }
            }
        }
        let mut pb = Pb {
            bugs: Bugs::from_config(&config),
            config,
            mode,
            epoch,
            primary,
            log,
            commit: 0,
            applied: 0,
            store: Store::new(),
            matched: BTreeMap::new(),
            next: BTreeMap::new(),
            ticks: 0,
            heard: 0,
            out: Ready::default(),
            pending: BTreeMap::new(),
            unsynced: Vec::new(),
        };
        if pb.is_primary() {
            // A restarted primary knows its own log is durable; in async
            // mode that alone commits it.
            pb.advance_commit();
            pb.apply();
        }
        pb
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => {
                self.ticks += 1;
                // Bug `ack-before-fsync`: the lazy write, once a second.
                if self.ticks.is_multiple_of(LAZY_FSYNC_TICKS) {
                    let lazy = std::mem::take(&mut self.unsynced);
                    self.out.records.extend(lazy);
                }
                if self.is_primary()
                    && self
                        .ticks
                        .is_multiple_of(self.config.heartbeat_ticks.max(1))
                {
                    for b in self.backups() {
                        let from = self.matched.get(&b).copied().unwrap_or(0) + 1;
                        let from = from.min(self.next.get(&b).copied().unwrap_or(from));
                        self.send_append(b, from);
                    }
                }
            }
            Input::Request(cmd) => {
                if !self.is_primary() {
                    self.out.replies.push((
                        cmd.id,
                        Reply::NotLeader {
                            leader: self.primary,
                        },
                    ));
                    return;
                }
                if cmd.op.is_read_only() && self.bugs.local_read {
                    let out = self.store.clone().apply(&cmd);
                    self.out.replies.push((cmd.id, Reply::Done(out)));
                    return;
                }
                let entry = Entry {
                    epoch: self.epoch,
                    cmd: cmd.clone(),
                };
                self.log.push(entry.clone());
                let index = self.log_len();
                self.persist_entry(Record::Entry { index, entry });
                self.pending.insert(index, cmd.id);
                for b in self.backups() {
                    if self.next.get(&b).copied().unwrap_or(1) == index {
                        self.send_append(b, index);
                    }
                }
                self.advance_commit();
                self.apply();
            }
            Input::Message { from, msg } => match msg {
                Message::Append {
                    epoch,
                    prev,
                    prev_epoch,
                    entries,
                    commit,
                } => self.on_append(from, epoch, prev, prev_epoch, entries, commit),
                Message::Ack { epoch, ok, len } => self.on_ack(from, epoch, ok, len),
                Message::Stale { epoch, primary } => {
                    if epoch > self.epoch {
                        self.adopt(epoch, primary);
                    }
                }
            },
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        let role = if self.is_primary() {
            "leader"
        } else if self.primary.is_some()
            && self.ticks.saturating_sub(self.heard) < self.config.election_ticks.max(1)
        {
            "follower"
        } else {
            // No primary heard lately: what the failover looks for.
            "orphan"
        };
        Status {
            role,
            term: self.epoch,
            leader: self.primary,
            commit: self.commit,
        }
    }

    fn admin(&mut self, req: &Value) -> Result<Value, String> {
        let epoch_of = |k: &str| req.get(k).and_then(Value::as_u64);
        if let Some(e) = epoch_of("fence") {
            if e < self.epoch || (e == self.epoch && self.primary.is_some()) {
                return Err(format!(
                    "fence {e}: already in epoch {} (primary {:?})",
                    self.epoch, self.primary
                ));
            }
            if e > self.epoch {
                self.adopt(e, None);
            }
            return serde_json::to_value(self.fenced()).map_err(|x| x.to_string());
        }
        if let Some(e) = epoch_of("promote") {
            if e < self.epoch || (e == self.epoch && self.primary.is_some()) {
                return Err(format!(
                    "promote {e}: already in epoch {} (primary {:?})",
                    self.epoch, self.primary
                ));
            }
            self.become_primary(e);
            return Ok(json!({"promoted": self.config.id, "epoch": e, "len": self.log_len()}));
        }
        if req.get("state").is_some() {
            return serde_json::to_value(self.fenced()).map_err(|x| x.to_string());
        }
        Err(format!(
            "unknown admin request {req}: expected {{\"fence\":E}}, {{\"promote\":E}} or {{\"state\":true}}"
        ))
    }
}
