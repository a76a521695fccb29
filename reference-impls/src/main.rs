//! `faultline-node`: one server binary, one subcommand per protocol.
//!
//! ```text
//! faultline-node raft --id 1 --peers 1=10.77.9.11:7001,2=10.77.9.12:7001,3=10.77.9.13:7001 \
//!     --client-port 7000 --data-dir /opt/faultline-node/data [--bug NAME]… [--tick-ms 10]
//! ```
//!
//! `faultline-node twopc` runs two-phase commit on the same shell: node 1
//! coordinates, every node holds a shard of the bank (see `docs/twopc.md`).
//! `faultline-node saga` runs sagas over three services, one per node
//! (see `docs/saga.md`).
//!
//! `faultline-node crdt` runs a CRDT store (counter, OR-Set, LWW
//! registers) replicated by gossip (see `docs/crdt.md`).
//!
//! `faultline-node swim` runs SWIM membership (see `docs/swim.md`); its
//! client API answers `{"admin":{"members":true}}` with the member's view.
//!
//! Exit codes: 64 bad arguments (unknown protocol or bug, bad --peers),
//! 1 the node stopped (a WAL it cannot read or write, a port it cannot
//! bind).

use clap::Parser;
use faultline_node::bugs;
use faultline_node::core::{Core, NodeId};
use faultline_node::shell::{self, Options, PROTOCOLS};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Two-phase commit is not a replicated log, so it is not in the shell's
/// list of replication protocols (the node target's rows); it runs on the
/// same shell.
const TWOPC: (&str, &str) = ("twopc", faultline_node::twopc::ABOUT);
/// Sagas likewise (see `docs/saga.md`).
const SAGA: (&str, &str) = ("saga", faultline_node::saga::ABOUT);
/// The CRDT store has no leader and no log order either; it too runs on
/// the shell (see `docs/crdt.md`).
const CRDT: (&str, &str) = ("crdt", faultline_node::crdt::ABOUT);
/// The lock service runs Raft plus a storage service (docs/lock.md).
const LOCK: (&str, &str) = ("lock", faultline_node::lock::ABOUT);
/// The Dynamo-style store: leaderless quorums (docs/dynamo.md).
const DYNAMO: (&str, &str) = ("dynamo", faultline_node::dynamo::ABOUT);
/// The leader election service (bully, ring, raft; docs/election.md).
const ELECT: (&str, &str) = ("elect", faultline_node::elect::ABOUT);
/// SWIM membership: no replicated data, a failure detector (docs/swim.md).
const SWIM: (&str, &str) = ("swim", faultline_node::swim::ABOUT);

#[derive(Parser, Debug)]
#[command(
    name = "faultline-node",
    version,
    about = "A replicated key-value server running one of faultline's reference protocols",
    max_term_width = 80
)]
struct Args {
    /// Protocol to run (see --list)
    #[arg(required_unless_present = "list")]
    protocol: Option<String>,

    /// List the protocols and their seeded bugs, then exit
    #[arg(long)]
    list: bool,

    /// This node's id (a key of --peers)
    #[arg(long, default_value_t = 1)]
    id: NodeId,

    /// Every member, this one included: ID=HOST:PORT,… (peer addresses)
    #[arg(long, value_name = "LIST", default_value = "1=127.0.0.1:7001")]
    peers: String,

    /// Port of the client API, on this node's peer host
    #[arg(long, default_value_t = 7000, value_name = "P")]
    client_port: u16,

    /// Directory of the write-ahead log (created if missing)
    #[arg(long, value_name = "D", default_value = "faultline-node-data")]
    data_dir: PathBuf,

    /// Enable a seeded bug (repeatable)
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,

    /// Milliseconds per tick
    #[arg(long, default_value_t = 10, value_name = "MS")]
    tick_ms: u64,

    /// Ticks without a leader before campaigning (randomized up to 2×)
    #[arg(long, default_value_t = 50, value_name = "N")]
    election_ticks: u64,

    /// Ticks between a leader's heartbeats
    #[arg(long, default_value_t = 5, value_name = "N")]
    heartbeat_ticks: u64,

    /// Seed of the core's randomness (default: the node id)
    #[arg(long)]
    seed: Option<u64>,

    /// A protocol option, NAME or NAME=VALUE (repeatable; raft:
    /// lease-read, snapshot-entries=N; crdt: gossip-ticks=N, fanout=K;
    /// dynamo: n=3,r=2,w=2, vnodes=V, sloppy=false;
    /// swim: detector=swim|phi, period-ticks=N, k=K, … (docs/swim.md))
    #[arg(long = "option", value_name = "OPT")]
    options: Vec<String>,

    /// Message trace: keep the last N records in DATA_DIR/messages.jsonl
    /// (about 200 bytes each; the file holds at most 2N + 10000); 0 turns
    /// it off. Also `--option trace-limit=N`, so `faultline test
    /// --db-option trace-limit=N` reaches it (docs/trace.md)
    #[arg(long, value_name = "N", default_value_t = shell::trace::DEFAULT_LIMIT)]
    trace_limit: usize,

    /// Message trace: keep only the last S seconds (0: no time bound).
    /// Also `--option trace-seconds=S`
    #[arg(long, value_name = "S", default_value_t = 0)]
    trace_seconds: u64,
}

/// The trace settings: the flags, overridden by `--option trace-limit=N`
/// and `--option trace-seconds=S`.
fn trace_config(args: &Args) -> Result<shell::trace::TraceConfig, String> {
    let mut limit = args.trace_limit;
    let mut seconds = args.trace_seconds;
    for o in &args.options {
        if let Some(v) = o.strip_prefix("trace-limit=") {
            limit = v
                .parse()
                .map_err(|_| format!("--option {o}: not a number of records"))?;
        } else if let Some(v) = o.strip_prefix("trace-seconds=") {
            seconds = v
                .parse()
                .map_err(|_| format!("--option {o}: not a number of seconds"))?;
        }
    }
    Ok(shell::trace::TraceConfig {
        limit,
        window: (seconds > 0).then(|| Duration::from_secs(seconds)),
    })
}

fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut m = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("--peers: `{part}` is not ID=HOST:PORT"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("--peers: `{id}` in `{part}` is not a node id"))?;
        if !addr.contains(':') {
            return Err(format!("--peers: `{addr}` in `{part}` has no :PORT"));
        }
        if m.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("--peers: node {id} is listed twice"));
        }
    }
    if m.is_empty() {
        return Err("--peers is empty".into());
    }
    Ok(m)
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if args.list {
        for (p, what) in PROTOCOLS
            .iter()
            .chain([&TWOPC, &SAGA, &CRDT, &LOCK, &DYNAMO, &ELECT, &SWIM])
        {
            println!("{p}: {what}");
            for b in bugs::of(p) {
                println!("  --bug {}: {}", b.name, b.description);
            }
        }
        return ExitCode::SUCCESS;
    }
    let protocol = args.protocol.clone().unwrap_or_default();
    let usage = |msg: String| {
        eprintln!("faultline-node: {msg}");
        ExitCode::from(64)
    };
    if !PROTOCOLS
        .iter()
        .chain([&TWOPC, &SAGA, &CRDT, &LOCK, &DYNAMO, &ELECT, &SWIM])
        .any(|(p, _)| *p == protocol)
    {
        let known: Vec<_> = PROTOCOLS
            .iter()
            .chain([&TWOPC, &SAGA, &CRDT, &LOCK, &DYNAMO, &ELECT, &SWIM])
            .map(|(p, _)| *p)
            .collect();
        return usage(format!(
            "unknown protocol `{protocol}` (known: {})",
            known.join(", ")
        ));
    }
    if let Err(e) = bugs::validate(&protocol, &args.bugs) {
        return usage(e);
    }
    let peers = match parse_peers(&args.peers) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let Some(me) = peers.get(&args.id) else {
        return usage(format!("--peers has no entry for --id {}", args.id));
    };
    let host = me.rsplit_once(':').map_or(me.as_str(), |(h, _)| h);
    if protocol == "elect" {
        let algo = args
            .options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix("algo="))
            .unwrap_or("bully");
        let checked = faultline_node::elect::Algo::parse(algo)
            .map_err(|e| format!("--option {e}"))
            .and_then(|a| faultline_node::elect::validate_bugs(a, &args.bugs));
        if let Err(e) = checked {
            return usage(e);
        }
    }
    if args.tick_ms == 0 {
        return usage("--tick-ms must be at least 1".into());
    }
    if protocol == "pb"
        && let Some(m) = args.options.iter().find_map(|o| o.strip_prefix("mode="))
        && let Err(e) = faultline_node::pb::Mode::parse(m)
    {
        return usage(format!("--option {e}"));
    }
    if protocol == "swim" {
        let mut c = faultline_node::core::Config::new(args.id, vec![args.id]);
        for o in &args.options {
            let (k, v) = o.split_once('=').unwrap_or((o, ""));
            c.options.insert(k.to_string(), v.to_string());
        }
        if let Err(e) = faultline_node::swim::Params::from_config(&c) {
            return usage(e);
        }
    }
    let trace = match trace_config(&args) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let mut opts = Options {
        protocol: protocol.clone(),
        id: args.id,
        client_addr: format!("{host}:{}", args.client_port),
        peers,
        data_dir: args.data_dir,
        bugs: args.bugs,
        tick: Duration::from_millis(args.tick_ms),
        election_ticks: args.election_ticks.max(1),
        heartbeat_ticks: args.heartbeat_ticks.max(1),
        seed: args.seed,
        options: args.options,
        trace,
    };
    if protocol == "dynamo" {
        // `--option n=3,r=2,w=2` is three options.
        opts.options = opts
            .options
            .iter()
            .flat_map(|o| o.split(','))
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if let Err(e) = faultline_node::dynamo::Params::from_config(&opts.config()) {
            return usage(e);
        }
    }
    let r = match protocol.as_str() {
        "raft" => run::<faultline_node::raft::Raft>(opts),
        "paxos" => run::<faultline_node::paxos::Paxos>(opts),
        "zab" => run::<faultline_node::zab::Zab>(opts),
        "single" => run::<shell::single::Single>(opts),
        "pb" => run::<faultline_node::pb::Pb>(opts),
        "chain" => run::<faultline_node::chain::Chain>(opts),
        "twopc" => run::<faultline_node::twopc::TwoPc>(opts),
        "saga" => run::<faultline_node::saga::Saga>(opts),
        "crdt" => run::<faultline_node::crdt::CrdtStore>(opts),
        "lock" => run_lock(opts),
        "dynamo" => run::<faultline_node::dynamo::DynamoStore>(opts),
        "elect" => run::<faultline_node::elect::Elect>(opts),
        "swim" => run::<faultline_node::swim::Swim>(opts),
        other => Err(format!("protocol `{other}` is listed but not wired")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-node: {e}");
            ExitCode::from(1)
        }
    }
}

fn run<C: Core>(opts: Options) -> Result<(), String> {
    shell::run::<C>(opts).map_err(|e| e.to_string())
}

/// `faultline-node lock`: the storage service (or its relay) on
/// `storage-port`, then the Raft lock service.
fn run_lock(mut opts: Options) -> Result<(), String> {
    use faultline_node::lock::storage;
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
    let log = shell::Log::new(format!("n{} lock", opts.id));
    storage::serve(
        listen,
        upstream,
        &opts.data_dir,
        opts.bugs.iter().any(|b| b == "storage-per-client"),
        log,
    )?;
    run::<faultline_node::lock::LockService>(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Args::command().debug_assert();
    }

    #[test]
    fn trace_options_override_the_flags() {
        let a = Args::try_parse_from(["n", "raft", "--trace-limit", "5"]).unwrap();
        assert_eq!(trace_config(&a).unwrap().limit, 5);
        let a = Args::try_parse_from([
            "n",
            "raft",
            "--option",
            "trace-limit=0",
            "--option",
            "trace-seconds=30",
        ])
        .unwrap();
        let t = trace_config(&a).unwrap();
        assert_eq!((t.limit, t.window), (0, Some(Duration::from_secs(30))));
        let a = Args::try_parse_from(["n", "raft", "--option", "trace-limit=x"]).unwrap();
        assert!(trace_config(&a).unwrap_err().contains("trace-limit=x"));
    }

    #[test]
    fn peers_parse_and_errors_name_the_part() {
        let m = parse_peers("1=10.77.9.11:7001, 2=10.77.9.12:7001").unwrap();
        assert_eq!(m[&2], "10.77.9.12:7001");
        assert!(parse_peers("1=a:1,1=b:2").unwrap_err().contains("twice"));
        assert!(parse_peers("x=a:1").unwrap_err().contains("`x`"));
        assert!(parse_peers("1=a").unwrap_err().contains("no :PORT"));
    }
}
