//! Unit tests in the paper's vocabulary (after raft-rs's
//! `test_raft_paper.rs`); each names the section it checks.

use super::*;
use crate::core::{Config, Core, Input, Reply};
use crate::kv::{Command, Op, RequestId};
use crate::sim::Sim;
use serde_json::json;

const E: u64 = 10;

fn config(id: NodeId, n: u64) -> Config {
    Config::new(id, (1..=n).collect())
}

fn node(id: NodeId, n: u64) -> Raft {
    Raft::recover(config(id, n), Vec::new())
}

fn node_with(id: NodeId, n: u64, f: impl Fn(&mut Config)) -> Raft {
    let mut c = config(id, n);
    f(&mut c);
    Raft::recover(c, Vec::new())
}

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        data: EntryData::Noop,
    }
}

fn write(client: u64, key: u64, value: i64) -> Command {
    Command {
        id: RequestId { client, seq: 1 },
        op: Op::Write { key, value },
    }
}

fn read(client: u64, key: u64) -> Command {
    Command {
        id: RequestId { client, seq: 1 },
        op: Op::Read { key },
    }
}

fn msg(r: &mut Raft, from: NodeId, m: Message) -> Ready<Message, Record> {
    r.step(Input::Message { from, msg: m });
    r.ready()
}

/// Ticks (10 ms each) until the node campaigns; returns the ticks taken.
fn campaign(r: &mut Raft) -> u64 {
    for t in 1..=2 * E {
        r.step(Input::Tick { now_ms: t * 10 });
        if r.role() != Role::Follower {
            return t;
        }
    }
    panic!("no election after {} ticks", 2 * E);
}

/// Makes `r` the leader of its cluster with the votes of 2 and 3.
fn elect(r: &mut Raft) -> Ready<Message, Record> {
    campaign(r);
    r.ready();
    let term = r.term();
    for p in [2, 3] {
        let rd = msg(
            r,
            p,
            Message::RequestVoteResponse {
                term,
                vote_granted: true,
            },
        );
        if r.role() == Role::Leader {
            return rd;
        }
    }
    panic!("not elected");
}

/// Follower `from` acknowledges everything up to `match_index`.
fn ack(r: &mut Raft, from: NodeId, match_index: Index, read_seq: u64) -> Ready<Message, Record> {
    let term = r.term();
    msg(
        r,
        from,
        Message::AppendEntriesResponse {
            term,
            success: true,
            match_index,
            rejected: 0,
            hint: 0,
            read_seq,
        },
    )
}

fn replies(rd: &Ready<Message, Record>) -> Vec<(RequestId, Reply)> {
    rd.replies.clone()
}

fn heartbeat_seq(rd: &Ready<Message, Record>) -> Option<u64> {
    rd.messages.iter().find_map(|(_, m)| match m {
        Message::Heartbeat { read_seq, .. } => Some(*read_seq),
        _ => None,
    })
}

/// Recovers a node whose disk holds `records`.
fn restart(c: Config, records: Vec<Record>) -> Raft {
    Raft::recover(c, records)
}

// ---- §5.2 leader election ------------------------------------------------

#[test]
fn follower_campaigns_after_election_timeout_and_persists_vote_before_requesting() {
    // §5.2: a follower that hears nothing for an election timeout
    // increments its term, votes for itself and sends RequestVote.
    let mut r = node(1, 3);
    let ticks = campaign(&mut r);
    assert!(
        (E..2 * E).contains(&ticks),
        "timeout {ticks} outside [E, 2E)"
    );
    assert_eq!(r.term(), 1);
    let rd = r.ready();
    assert!(rd.records.contains(&Record::HardState {
        term: 1,
        voted_for: Some(1)
    }));
    let to: BTreeSet<NodeId> = rd
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::RequestVote { term: 1, .. }))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(to, BTreeSet::from([2, 3]));
}

#[test]
fn election_timeouts_are_randomized() {
    // §5.2: randomized timeouts make split votes rare.
    let timeouts: BTreeSet<u64> = (0..20)
        .map(|seed| {
            let mut r = node_with(1, 3, |c| c.seed = seed);
            campaign(&mut r)
        })
        .collect();
    assert!(timeouts.len() > 3, "{timeouts:?}");
    assert!(timeouts.iter().all(|t| (E..2 * E).contains(t)));
}

#[test]
fn candidate_with_a_majority_becomes_leader_and_appends_a_noop() {
    // §5.2 and §8: the winner sends AppendEntries and commits a no-op of
    // its own term.
    let mut r = node(1, 3);
    let rd = elect(&mut r);
    assert_eq!(r.log().last_index(), 1);
    assert_eq!(r.log().entry(1).map(|e| &e.data), Some(&EntryData::Noop));
    assert!(rd.records.iter().any(|x| matches!(x, Record::Entries(_))));
    let appends = rd
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::AppendEntries { entries, .. } if entries.len() == 1))
        .count();
    assert_eq!(appends, 2);
    let rd = ack(&mut r, 2, 1, 0);
    assert_eq!(r.commit_index(), 1);
    assert!(rd.applied.is_empty(), "a no-op is not a command");
}

#[test]
fn candidate_steps_down_on_append_entries_of_its_term() {
    // §5.2: a candidate that hears from a leader of its term follows it.
    let mut r = node(1, 3);
    campaign(&mut r);
    r.ready();
    msg(
        &mut r,
        2,
        Message::Heartbeat {
            term: 1,
            leader_commit: 0,
            read_seq: 1,
        },
    );
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.status().leader, Some(2));
}

#[test]
fn vote_granted_at_most_once_per_term() {
    // §5.2: first come, first served, one vote per term.
    let mut r = node(1, 3);
    let rv = Message::RequestVote {
        term: 1,
        last_log_index: 0,
        last_log_term: 0,
    };
    let rd = msg(&mut r, 2, rv.clone());
    assert!(rd.records.contains(&Record::HardState {
        term: 1,
        voted_for: Some(2)
    }));
    assert!(matches!(
        rd.messages[..],
        [(
            2,
            Message::RequestVoteResponse {
                vote_granted: true,
                ..
            }
        )]
    ));
    let rd = msg(&mut r, 3, rv.clone());
    assert!(matches!(
        rd.messages[..],
        [(
            3,
            Message::RequestVoteResponse {
                vote_granted: false,
                ..
            }
        )]
    ));
    // A retransmitted request from the same candidate is granted again.
    let rd = msg(&mut r, 2, rv);
    assert!(matches!(
        rd.messages[..],
        [(
            2,
            Message::RequestVoteResponse {
                vote_granted: true,
                ..
            }
        )]
    ));
}

#[test]
fn voted_for_survives_a_restart() {
    // Figure 2: votedFor is persistent state, so a restarted node does not
    // vote twice in one term.
    let c = config(1, 3);
    let mut r = Raft::recover(c.clone(), Vec::new());
    let rv = Message::RequestVote {
        term: 1,
        last_log_index: 0,
        last_log_term: 0,
    };
    let disk = msg(&mut r, 2, rv.clone()).records;
    let mut r = restart(c, disk);
    let rd = msg(&mut r, 3, rv);
    assert!(
        matches!(
            rd.messages[..],
            [(
                _,
                Message::RequestVoteResponse {
                    vote_granted: false,
                    ..
                }
            )]
        ),
        "{:?}",
        rd.messages
    );
}

#[test]
fn ack_before_commit_bug_answers_a_write_before_a_majority_has_it() {
    for bug in [false, true] {
        let mut r = node_with(1, 3, |c| {
            if bug {
                c.bugs.insert("ack-before-commit".into());
            }
        });
        elect(&mut r);
        r.step(Input::Request(write(7, 1, 5)));
        let rd = r.ready();
        let acked = replies(&rd)
            .iter()
            .any(|(id, rep)| id.client == 7 && matches!(rep, Reply::Done(Ok(_))));
        assert_eq!(acked, bug, "bug={bug}");
        // Durable in the same batch as the (premature) reply.
        assert!(!rd.records.is_empty());
    }
}

// ---- §5.4.1 election restriction -------------------------------------------

#[test]
fn vote_only_for_candidates_at_least_as_up_to_date() {
    // §5.4.1: compare last terms, then lengths.
    let records = vec![
        Record::HardState {
            term: 2,
            voted_for: None,
        },
        Record::Entries(vec![entry(1, 1), entry(2, 2)]),
    ];
    let cases = [
        ((1, 5), false), // older last term, longer log
        ((2, 1), false), // same last term, shorter
        ((2, 2), true),  // same
        ((2, 3), true),  // same last term, longer
        ((3, 1), true),  // newer last term, shorter
    ];
    for bug in [false, true] {
        for ((last_log_term, last_log_index), up_to_date) in cases {
            let mut c = config(1, 3);
            if bug {
                c.bugs.insert("vote-without-log-check".into());
            }
            let mut r = restart(c, records.clone());
            let rd = msg(
                &mut r,
                2,
                Message::RequestVote {
                    term: 3,
                    last_log_index,
                    last_log_term,
                },
            );
            let granted = matches!(
                rd.messages[..],
                [(
                    _,
                    Message::RequestVoteResponse {
                        vote_granted: true,
                        ..
                    }
                )]
            );
            assert_eq!(
                granted,
                up_to_date || bug,
                "bug={bug} candidate ({last_log_term}, {last_log_index})"
            );
        }
    }
}

// ---- §5.1 terms -----------------------------------------------------------

#[test]
fn stale_term_messages_are_refused_with_the_current_term() {
    // §5.1: a request with a stale term is rejected; the reply's term makes
    // the old leader step down.
    let mut r = restart(
        config(1, 3),
        vec![Record::HardState {
            term: 5,
            voted_for: None,
        }],
    );
    let rd = msg(
        &mut r,
        2,
        Message::AppendEntries {
            term: 4,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![entry(1, 4)],
            leader_commit: 1,
            read_seq: 0,
        },
    );
    assert_eq!(r.log().last_index(), 0);
    assert!(matches!(
        rd.messages[..],
        [(
            2,
            Message::AppendEntriesResponse {
                term: 5,
                success: false,
                ..
            }
        )]
    ));
    let mut leader = node(1, 3);
    elect(&mut leader);
    let t = leader.term();
    msg(
        &mut leader,
        2,
        Message::AppendEntriesResponse {
            term: t + 1,
            success: false,
            match_index: 0,
            rejected: 0,
            hint: 0,
            read_seq: 0,
        },
    );
    assert_eq!(leader.role(), Role::Follower);
    assert_eq!(leader.term(), t + 1);
}

// ---- §5.3 log replication ---------------------------------------------------

fn follower_with(entries: Vec<Entry>, term: Term) -> (Config, Vec<Record>, Raft) {
    let c = config(2, 3);
    let disk = vec![
        Record::HardState {
            term,
            voted_for: None,
        },
        Record::Entries(entries),
    ];
    let r = restart(c.clone(), disk.clone());
    (c, disk, r)
}

#[test]
fn follower_rejects_append_entries_failing_the_consistency_check() {
    // §5.3: prevLogIndex/prevLogTerm must match; the reply hints where to
    // retry.
    let (_, _, mut r) = follower_with(vec![entry(1, 1)], 1);
    for (prev_log_index, prev_log_term, hint) in [(3, 1, 1), (1, 2, 0)] {
        let rd = msg(
            &mut r,
            1,
            Message::AppendEntries {
                term: 2,
                prev_log_index,
                prev_log_term,
                entries: vec![entry(prev_log_index + 1, 2)],
                leader_commit: 0,
                read_seq: 0,
            },
        );
        assert!(
            matches!(
                rd.messages[..],
                [(
                    1,
                    Message::AppendEntriesResponse {
                        success: false,
                        rejected,
                        hint: h,
                        ..
                    }
                )] if rejected == prev_log_index && h == hint
            ),
            "{:?}",
            rd.messages
        );
        assert_eq!(r.log().last_index(), 1);
    }
}

#[test]
fn conflicting_entries_are_overwritten_durably() {
    // §5.3 step 3: an existing entry that conflicts with a new one is
    // deleted with all that follow; the record's first index says so, and
    // recovery rebuilds the same log.
    let (c, mut disk, mut r) = follower_with(vec![entry(1, 1), entry(2, 1), entry(3, 1)], 1);
    let rd = msg(
        &mut r,
        1,
        Message::AppendEntries {
            term: 2,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![entry(2, 2)],
            leader_commit: 0,
            read_seq: 0,
        },
    );
    let terms = |r: &Raft| -> Vec<Term> { r.log().entries.iter().map(|e| e.term).collect() };
    assert_eq!(terms(&r), vec![1, 2]);
    assert!(rd.records.contains(&Record::Entries(vec![entry(2, 2)])));
    assert!(matches!(
        rd.messages[..],
        [(
            1,
            Message::AppendEntriesResponse {
                success: true,
                match_index: 2,
                ..
            }
        )]
    ));
    disk.extend(rd.records);
    assert_eq!(terms(&restart(c, disk)), vec![1, 2]);
}

#[test]
fn stale_append_entries_do_not_truncate_matching_entries() {
    // §5.3: "if an existing entry conflicts" — a delayed, already-applied
    // AppendEntries must not cut off entries that follow it.
    let (_, _, mut r) = follower_with(vec![entry(1, 1), entry(2, 1), entry(3, 1)], 1);
    let rd = msg(
        &mut r,
        1,
        Message::AppendEntries {
            term: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![entry(1, 1)],
            leader_commit: 0,
            read_seq: 0,
        },
    );
    assert_eq!(r.log().last_index(), 3);
    assert!(rd.records.is_empty());
}

#[test]
fn leader_pipelines_unsent_entries_in_one_append_entries() {
    // Batching: requests appended since the last Ready go out together,
    // and next_index advances optimistically (pipelining).
    let mut r = node(1, 3);
    elect(&mut r);
    ack(&mut r, 2, 1, 0);
    ack(&mut r, 3, 1, 0);
    for i in 0..5 {
        r.step(Input::Request(write(10 + i, 1, i as i64)));
    }
    let rd = r.ready();
    let sizes: Vec<usize> = rd
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::AppendEntries { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![5, 5]);
    r.step(Input::Request(write(20, 1, 20)));
    let rd = r.ready();
    let prevs: Vec<Index> = rd
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::AppendEntries { prev_log_index, .. } => Some(*prev_log_index),
            _ => None,
        })
        .collect();
    assert_eq!(prevs, vec![6, 6], "sent before the first batch was acked");
    // Committed once a majority stores them; the replies carry outputs.
    let rd = ack(&mut r, 2, 7, 0);
    assert_eq!(r.commit_index(), 7);
    assert_eq!(rd.applied.len(), 6);
    assert!(
        rd.replies
            .iter()
            .all(|(_, reply)| matches!(reply, Reply::Done(Ok(_))))
    );
}

#[test]
fn leader_backs_up_next_index_on_rejection() {
    // §5.3: after a rejection the leader decrements nextIndex (to the
    // follower's hint) and retries.
    let mut r = node(1, 3);
    elect(&mut r);
    let t = r.term();
    let rd = msg(
        &mut r,
        2,
        Message::AppendEntriesResponse {
            term: t,
            success: false,
            match_index: 0,
            rejected: 0,
            hint: 0,
            read_seq: 0,
        },
    );
    // rejected == match_index (0): stale, ignored.
    assert!(rd.messages.is_empty());
    for i in 0..3 {
        r.step(Input::Request(write(10 + i, 1, i as i64)));
    }
    r.ready();
    let rd = msg(
        &mut r,
        2,
        Message::AppendEntriesResponse {
            term: t,
            success: false,
            match_index: 0,
            rejected: 1,
            hint: 0,
            read_seq: 0,
        },
    );
    assert!(matches!(
        &rd.messages[..],
        [(2, Message::AppendEntries { prev_log_index: 0, entries, .. })] if entries.len() == 4
    ));
}

// ---- §5.4.2 committing entries from previous terms (Figure 8) -------------

/// Node 1 of five with entries (1, t1), (2, t2), elected leader of term 4
/// by 2 and 3; followers 2 and 3 then store up to index 2.
fn figure8(bug: bool) -> Raft {
    let mut c = config(1, 5);
    if bug {
        c.bugs.insert("commit-old-term".into());
    }
    let mut r = restart(
        c,
        vec![
            Record::HardState {
                term: 3,
                voted_for: None,
            },
            Record::Entries(vec![entry(1, 1), entry(2, 2)]),
        ],
    );
    elect(&mut r);
    assert_eq!(r.term(), 4);
    ack(&mut r, 2, 2, 0);
    ack(&mut r, 3, 2, 0);
    r
}

#[test]
fn leader_commits_only_current_term_entries_by_counting() {
    // §5.4.2, Figure 8: index 2 (term 2) on a majority is not committed by
    // counting; it commits with the leader's no-op of term 4.
    let mut r = figure8(false);
    assert_eq!(r.commit_index(), 0);
    ack(&mut r, 2, 3, 0);
    ack(&mut r, 3, 3, 0);
    assert_eq!(r.commit_index(), 3);
}

#[test]
fn commit_old_term_bug_commits_by_counting() {
    // The seeded bug `commit-old-term` commits index 2 as in Figure 8 (c),
    // which a leader of term 3 can still overwrite.
    let r = figure8(true);
    assert_eq!(r.commit_index(), 2);
}

// ---- §6.4 linearizable reads ----------------------------------------------

#[test]
fn read_index_waits_for_a_current_term_commit_and_a_heartbeat_quorum() {
    // Thesis §6.4: (1) a current-term entry committed, (2) readIndex =
    // commitIndex, (3) leadership confirmed by a heartbeat round, (4)
    // applied up to readIndex; then the query.
    let mut r = node(1, 3);
    elect(&mut r);
    r.step(Input::Request(write(1, 7, 42)));
    r.step(Input::Request(read(2, 7)));
    let rd = r.ready();
    assert!(replies(&rd).is_empty());
    assert_eq!(
        heartbeat_seq(&rd),
        None,
        "no round before the no-op commits"
    );
    let rd = ack(&mut r, 2, 2, 0);
    assert_eq!(replies(&rd).len(), 1, "the write");
    let seq = heartbeat_seq(&rd).expect("a read round once committed");
    let t = r.term();
    // An ack of an older round doesn't confirm this read.
    let rd = msg(
        &mut r,
        3,
        Message::HeartbeatResponse {
            term: t,
            read_seq: seq - 1,
        },
    );
    assert!(replies(&rd).is_empty());
    let rd = msg(
        &mut r,
        3,
        Message::HeartbeatResponse {
            term: t,
            read_seq: seq,
        },
    );
    assert_eq!(
        replies(&rd),
        vec![(RequestId { client: 2, seq: 1 }, Reply::Done(Ok(json!(42))))]
    );
}

#[test]
fn deposed_leader_answers_pending_requests() {
    // Leadership lost: a write in the log may still commit (Unknown); a
    // read had no effect (NotLeader).
    let mut r = node(1, 3);
    elect(&mut r);
    r.step(Input::Request(write(1, 7, 42)));
    r.step(Input::Request(read(2, 7)));
    r.ready();
    let t = r.term();
    let rd = msg(
        &mut r,
        2,
        Message::Heartbeat {
            term: t + 1,
            leader_commit: 0,
            read_seq: 1,
        },
    );
    let rs = replies(&rd);
    assert!(matches!(rs[0].1, Reply::Unknown(_)));
    assert_eq!(rs[1].1, Reply::NotLeader { leader: None });
    // A follower redirects.
    r.step(Input::Request(write(3, 7, 1)));
    assert_eq!(
        replies(&r.ready()),
        vec![(
            RequestId { client: 3, seq: 1 },
            Reply::NotLeader { leader: Some(2) }
        )]
    );
}

#[test]
fn read_without_quorum_bug_serves_at_once() {
    let mut r = node_with(1, 3, |c| {
        c.bugs.insert("read-without-quorum".into());
    });
    elect(&mut r);
    r.step(Input::Request(read(2, 7)));
    assert_eq!(replies(&r.ready()).len(), 1);
}

#[test]
fn lease_read_is_local_within_the_lease_and_confirmed_after() {
    // Thesis §6.4.1: the lease runs from when a heartbeat round was sent,
    // for half the minimum election timeout.
    let mut r = node_with(1, 3, |c| {
        c.options.insert("lease-read".into(), String::new());
    });
    elect(&mut r); // ticks at 10 ms: tick_ms is known
    let now = r.now_ms;
    ack(&mut r, 2, 1, 0);
    r.ready();
    r.step(Input::Tick { now_ms: now + 10 });
    r.step(Input::Tick { now_ms: now + 20 }); // heartbeat round
    let rd = r.ready();
    let seq = heartbeat_seq(&rd).expect("heartbeat");
    let t = r.term();
    msg(
        &mut r,
        2,
        Message::HeartbeatResponse {
            term: t,
            read_seq: seq,
        },
    );
    assert_eq!(r.lease_until_ms, now + 20 + E * 10 / 2);
    r.step(Input::Request(read(5, 1)));
    assert_eq!(replies(&r.ready()).len(), 1, "served from the lease");
    // Past the lease (no acks meanwhile): back to ReadIndex.
    msg(
        &mut r,
        2,
        Message::HeartbeatResponse {
            term: t,
            read_seq: 0,
        },
    );
    r.now_ms = now + 20 + E * 10 / 2;
    r.step(Input::Request(read(6, 1)));
    assert!(replies(&r.ready()).is_empty());
}

#[test]
fn follower_in_lease_mode_ignores_votes_soon_after_hearing_a_leader() {
    // §4.2.3: within the minimum election timeout of hearing from a leader
    // a server neither updates its term nor votes.
    let mut r = node_with(2, 3, |c| {
        c.options.insert("lease-read".into(), String::new());
    });
    for t in 1..=E {
        r.step(Input::Tick { now_ms: t * 10 });
    }
    r.ready();
    msg(
        &mut r,
        1,
        Message::Heartbeat {
            term: 1,
            leader_commit: 0,
            read_seq: 1,
        },
    );
    let rv = Message::RequestVote {
        term: 2,
        last_log_index: 5,
        last_log_term: 1,
    };
    let rd = msg(&mut r, 3, rv.clone());
    assert!(rd.messages.is_empty());
    assert_eq!(r.term(), 1);
    for t in 0..E {
        r.step(Input::Tick {
            now_ms: 200 + t * 10,
        });
    }
    r.ready();
    if r.role() == Role::Follower {
        let rd = msg(&mut r, 3, rv);
        assert!(!rd.messages.is_empty());
        assert_eq!(r.term(), 2);
    }
}

// ---- §7 log compaction ------------------------------------------------------

#[test]
fn snapshot_rewrites_the_log_and_recovers() {
    // §7: applied entries are replaced by a snapshot of the state machine
    // and the last included index/term; restart starts from it.
    let c = {
        let mut c = Config::new(1, vec![1]);
        c.options.insert("snapshot-entries".into(), "4".into());
        c
    };
    let mut r = Raft::recover(c.clone(), Vec::new());
    campaign(&mut r);
    let mut disk = r.ready().records;
    assert_eq!(r.role(), Role::Leader);
    let mut rewritten = false;
    for i in 0..6 {
        r.step(Input::Request(write(10 + i, i, i as i64)));
        let rd = r.ready();
        if let Some(rw) = rd.rewrite {
            rewritten = true;
            disk = rw;
        }
        disk.extend(rd.records);
    }
    assert!(rewritten);
    assert!(r.log().snapshot_index() >= 4);
    let r2 = restart(c, disk);
    assert_eq!(r2.log().snapshot_index(), r.log().snapshot_index());
    assert_eq!(r2.log().last_index(), r.log().last_index());
    assert_eq!(r2.store(), &r.log().snapshot.store);
}

#[test]
fn lagging_follower_catches_up_by_install_snapshot() {
    // §7: a follower that needs compacted entries gets the snapshot.
    let mut sim: Sim<Raft> = Sim::new(3, 7, |c| {
        c.options.insert("snapshot-entries".into(), "4".into());
    });
    sim.isolate(3);
    while sim.leader().is_none_or(|l| l == 3) {
        sim.step_random();
    }
    let l = sim.leader().expect("leader");
    for i in 0..20 {
        sim.request(l, write(100 + i, 1, i as i64));
        sim.stabilize();
    }
    sim.heal();
    for _ in 0..300 {
        sim.step_random();
    }
    sim.stabilize();
    let n3 = sim.nodes[&3].as_ref().expect("node 3");
    assert!(n3.log().snapshot_index() > 0, "node 3 has a snapshot");
    assert_eq!(n3.store().query(&Op::Read { key: 1 }), Some(Ok(json!(19))));
}

// ---- thesis §4.1 membership changes -----------------------------------------

#[test]
fn membership_change_takes_effect_when_appended() {
    // Thesis §4.1: a server uses the latest configuration in its log,
    // committed or not; one change at a time.
    let mut r = node(1, 3);
    elect(&mut r);
    assert!(
        r.propose_conf_change(ConfChange::AddServer(4)).is_err(),
        "no entry of this term committed yet"
    );
    ack(&mut r, 2, 1, 0);
    let i = r
        .propose_conf_change(ConfChange::AddServer(4))
        .expect("add");
    assert_eq!(r.voters(), &BTreeSet::from([1, 2, 3, 4]));
    assert!(r.propose_conf_change(ConfChange::RemoveServer(2)).is_err());
    let rd = r.ready();
    assert!(
        rd.messages.iter().any(|(to, _)| *to == 4),
        "replicates to 4"
    );
    // Quorum is now 3 of 4.
    ack(&mut r, 2, i, 0);
    assert_eq!(r.commit_index(), 1);
    ack(&mut r, 4, i, 0);
    assert_eq!(r.commit_index(), i);
    assert!(r.propose_conf_change(ConfChange::RemoveServer(2)).is_ok());
}

#[test]
fn follower_adopts_configuration_on_append_and_reverts_on_truncation() {
    // §4.1: the configuration follows the log, including when a conflicting
    // configuration entry is deleted.
    let (_, _, mut r) = follower_with(vec![entry(1, 1)], 1);
    let conf = Entry {
        term: 1,
        index: 2,
        data: EntryData::AddServer(4),
    };
    msg(
        &mut r,
        1,
        Message::AppendEntries {
            term: 1,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![conf],
            leader_commit: 0,
            read_seq: 0,
        },
    );
    assert!(r.voters().contains(&4));
    msg(
        &mut r,
        3,
        Message::AppendEntries {
            term: 2,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![entry(2, 2)],
            leader_commit: 0,
            read_seq: 0,
        },
    );
    assert_eq!(r.voters(), &BTreeSet::from([1, 2, 3]));
}

#[test]
fn removed_leader_steps_down_once_its_removal_commits() {
    // Thesis §4.2.2: the leader replicates its own removal without counting
    // itself, then steps down.
    let mut r = node(1, 3);
    elect(&mut r);
    ack(&mut r, 2, 1, 0);
    let i = r
        .propose_conf_change(ConfChange::RemoveServer(1))
        .expect("remove");
    r.ready();
    ack(&mut r, 2, i, 0);
    assert_eq!(r.role(), Role::Leader, "needs both remaining servers");
    ack(&mut r, 3, i, 0);
    assert_eq!(r.role(), Role::Follower);
    for t in 0..3 * E {
        r.step(Input::Tick { now_ms: 1_000 + t });
    }
    assert_eq!(r.role(), Role::Follower, "a non-member never campaigns");
}

#[test]
fn check_quorum_steps_down_a_leader_that_hears_nobody() {
    // Thesis §6.2.
    let mut r = node(1, 3);
    elect(&mut r);
    for t in 0..2 * E {
        r.step(Input::Tick {
            now_ms: 1_000 + t * 10,
        });
    }
    assert_eq!(r.role(), Role::Follower);
}

// ---- thesis §9.6 PreVote ------------------------------------------------------

#[test]
fn pre_vote_keeps_a_partitioned_node_from_raising_its_term() {
    // Thesis §9.6: a node that can't win doesn't increment its term, so it
    // can't depose a healthy leader when it returns.
    let mut r = node_with(3, 3, |c| {
        c.options.insert("pre-vote".into(), String::new());
    });
    for round in 0..5 {
        for t in 0..2 * E {
            r.step(Input::Tick {
                now_ms: (round * 2 * E + t) * 10,
            });
        }
        let rd = r.ready();
        assert!(
            rd.messages
                .iter()
                .all(|(_, m)| matches!(m, Message::PreVote { term: 1, .. }))
        );
    }
    assert_eq!(r.term(), 0);
    assert_eq!(r.status().role, "pre-candidate");
    // A quorum of pre-votes starts the real election.
    let rd = msg(
        &mut r,
        1,
        Message::PreVoteResponse {
            term: 1,
            vote_granted: true,
        },
    );
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(r.term(), 1);
    assert!(
        rd.messages
            .iter()
            .all(|(_, m)| matches!(m, Message::RequestVote { term: 1, .. }))
    );
}

#[test]
fn pre_vote_denied_while_a_leader_is_heard_and_changes_no_state() {
    let mut r = node_with(2, 3, |c| {
        c.options.insert("pre-vote".into(), String::new());
    });
    msg(
        &mut r,
        1,
        Message::Heartbeat {
            term: 1,
            leader_commit: 0,
            read_seq: 1,
        },
    );
    let pv = Message::PreVote {
        term: 2,
        last_log_index: 9,
        last_log_term: 1,
    };
    let rd = msg(&mut r, 3, pv.clone());
    assert_eq!(
        rd.messages,
        vec![(
            3,
            Message::PreVoteResponse {
                term: 1,
                vote_granted: false
            }
        )]
    );
    assert!(rd.records.is_empty());
    for t in 0..E {
        r.step(Input::Tick { now_ms: t * 10 });
    }
    r.ready();
    if r.role() == Role::Follower {
        let rd = msg(&mut r, 3, pv);
        assert!(matches!(
            rd.messages[..],
            [(
                _,
                Message::PreVoteResponse {
                    term: 2,
                    vote_granted: true
                }
            )]
        ));
        assert_eq!(r.term(), 1, "a pre-vote changes no term");
    }
}
