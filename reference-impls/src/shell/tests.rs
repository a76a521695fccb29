//! Shell tests: the Ready order against a real WAL file, and a real
//! 3-node `single` cluster on loopback driven through the client API.

use super::*;
use crate::core::Reply;
use crate::kv::{Command, Op};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fl-shell-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A core that logs one record per request and, in the same Ready,
/// tells peer 2 about it and replies to the client.
struct Echo {
    n: u64,
    out: Ready<u64, u64>,
}

impl Core for Echo {
    type Message = u64;
    type Record = u64;
    fn recover(_: Config, records: Vec<u64>) -> Echo {
        Echo {
            n: records.len() as u64,
            out: Ready::default(),
        }
    }
    fn step(&mut self, input: Input<u64>) {
        if let Input::Request(c) = input {
            self.n += 1;
            self.out.records.push(self.n);
            self.out.messages.push((2, self.n));
            self.out
                .replies
                .push((c.id, Reply::Done(Ok(json!(self.n)))));
            if self.n.is_multiple_of(3) && self.n < 8 {
                // Compaction now and then: the rewrite must land first.
                self.out.rewrite = Some((1..self.n).collect());
            }
        }
    }
    fn ready(&mut self) -> Ready<u64, u64> {
        std::mem::take(&mut self.out)
    }
    fn status(&self) -> Status {
        Status {
            role: "leader",
            term: 0,
            leader: None,
            commit: self.n,
        }
    }
}

/// Checks, at every send and reply, that the WAL on disk already holds
/// the record the message announces (fsync counts are checked per batch).
struct Checker {
    path: PathBuf,
    dir: PathBuf,
    sent: Vec<u64>,
    replied: usize,
}

impl Checker {
    fn on_disk(&self) -> Vec<u64> {
        // A fresh handle, as after a crash.
        Wal::read::<u64>(&self.dir).expect("reading the log back")
    }
}

impl Effects<u64> for Checker {
    fn send(&mut self, _to: NodeId, msg: u64) {
        assert!(self.path.exists());
        assert!(
            self.on_disk().contains(&msg),
            "sent {msg} before it was durable"
        );
        self.sent.push(msg);
    }
    fn reply(&mut self, _id: RequestId, r: Reply) {
        let Reply::Done(Ok(v)) = r else {
            panic!("{r:?}")
        };
        let n = v.as_u64().unwrap();
        assert!(
            self.on_disk().contains(&n),
            "replied {n} before it was durable"
        );
        self.replied += 1;
    }
}

#[test]
fn records_are_fsynced_before_messages_and_replies() {
    let dir = tmpdir("order");
    let (mut wal, recs, _) = Wal::open::<u64>(&dir).unwrap();
    let mut core = Echo::recover(Config::new(1, vec![1, 2]), recs);
    let mut fx = Checker {
        path: dir.join(wal::WAL_FILE),
        dir: dir.clone(),
        sent: Vec::new(),
        replied: 0,
    };
    for seq in 1..=7 {
        let before = wal.syncs;
        core.step(Input::Request(Command {
            id: RequestId { client: 1, seq },
            op: Op::Read { key: 0 },
        }));
        flush_ready(core.ready(), &mut wal, &mut fx).unwrap();
        assert!(wal.syncs > before, "no fsync for a batch with records");
    }
    // Group commit: several requests, one ready, one fsync.
    let before = wal.syncs;
    for seq in 8..=9 {
        core.step(Input::Request(Command {
            id: RequestId { client: 1, seq },
            op: Op::Read { key: 0 },
        }));
    }
    flush_ready(core.ready(), &mut wal, &mut fx).unwrap();
    assert_eq!(wal.syncs, before + 1);
    assert_eq!(fx.sent, (1..=9).collect::<Vec<_>>());
    assert_eq!(fx.replied, 9);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    return Conn {
                        r: BufReader::new(s.try_clone().unwrap()),
                        w: s,
                    };
                }
                Err(e) if Instant::now() > deadline => panic!("connect {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    fn call(&mut self, req: &ClientRequest) -> ClientReply {
        self.w.write_all(req.to_line().as_bytes()).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).expect("a reply");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }
}

#[test]
fn three_single_nodes_serve_clients_over_tcp() {
    let base = tmpdir("cluster");
    let pp: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let cp: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peers: BTreeMap<NodeId, String> = (1..=3)
        .map(|i| (i, format!("127.0.0.1:{}", pp[i as usize - 1])))
        .collect();
    for i in 1..=3u64 {
        let opts = Options {
            protocol: "single".into(),
            id: i,
            peers: peers.clone(),
            client_addr: format!("127.0.0.1:{}", cp[i as usize - 1]),
            data_dir: base.join(format!("n{i}")),
            bugs: vec![],
            tick: Duration::from_millis(5),
            election_ticks: 10,
            heartbeat_ticks: 2,
            seed: None,
            options: vec![],
            trace: Default::default(),
        };
        std::thread::spawn(move || run::<single::Single>(opts));
    }
    let mut primary = Conn::open(cp[0]);
    let mut backup = Conn::open(cp[1]);
    let cmd = |seq, op| {
        ClientRequest::Command(Command {
            id: RequestId { client: 9, seq },
            op,
        })
    };
    let r = backup.call(&cmd(1, Op::Write { key: 1, value: 5 }));
    assert!(
        matches!(
            r,
            ClientReply::NotLeader {
                leader: Some(1),
                ..
            }
        ),
        "{r:?}"
    );
    let r = primary.call(&cmd(1, Op::Write { key: 1, value: 5 }));
    assert!(matches!(r, ClientReply::Ok { .. }), "{r:?}");
    let r = primary.call(&cmd(
        2,
        Op::Cas {
            key: 1,
            from: 4,
            to: 6,
        },
    ));
    assert!(matches!(r, ClientReply::Fail { .. }), "{r:?}");
    let r = primary.call(&cmd(3, Op::Read { key: 1 }));
    assert_eq!(
        r,
        ClientReply::Ok {
            id: RequestId { client: 9, seq: 3 },
            value: json!(5)
        }
    );
    // A retry of an applied request is answered from the session table.
    let r = primary.call(&cmd(3, Op::Read { key: 1 }));
    assert!(matches!(r, ClientReply::Ok { .. }), "{r:?}");
    let ClientReply::Status(s) = backup.call(&ClientRequest::Status) else {
        panic!("no status")
    };
    assert_eq!((s.id, s.role.as_str(), s.leader), (2, "follower", Some(1)));
    // Garbage gets an error line, and the connection stays usable.
    backup.w.write_all(b"{nope\n").unwrap();
    let mut line = String::new();
    backup.r.read_line(&mut line).unwrap();
    assert!(line.starts_with("{\"error\""), "{line}");
    // Every member has the three writes' records on disk.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: Vec<usize> = (1..=3)
            .map(|i| {
                Wal::read::<single::Record>(&base.join(format!("n{i}")))
                    .map(|r| r.len())
                    .unwrap_or(0)
            })
            .collect();
        if n == [4, 4, 4] {
            break;
        }
        assert!(Instant::now() < deadline, "records per node: {n:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&base);
}
