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
use faultline_node::core::NodeId;
use faultline_node::registry::{self, PROTOCOLS};
use faultline_node::shell::{self, Options};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
        for p in PROTOCOLS {
            println!("{}: {}", p.name, p.about);
            for b in p.bugs {
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
    let Some(proto) = registry::find(&protocol) else {
        return usage(format!(
            "unknown protocol `{protocol}` (known: {})",
            registry::names().join(", ")
        ));
    };
    if let Err(e) = faultline_node::bugs::validate(&protocol, &args.bugs) {
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
    if args.tick_ms == 0 {
        return usage("--tick-ms must be at least 1".into());
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
    if let Err(e) = (proto.prepare)(&mut opts) {
        return usage(e);
    }
    let r = (proto.run)(opts);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-node: {e}");
            ExitCode::from(1)
        }
    }
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
