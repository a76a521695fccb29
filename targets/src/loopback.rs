//! Test kit: a faultline-node cluster on loopback, its shells running as
//! threads of the test process, for the targets' client tests.

use faultline_node::core::Core;
use faultline_node::shell::{self, Options};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A started cluster.
pub struct Cluster {
    /// Parent of the nodes' data dirs (fresh, per test `tag`).
    pub base: PathBuf,
    /// (`n1`…, client address), in id order.
    pub members: Vec<(String, String)>,
}

/// Starts `n` shells of `C` as `protocol`, ticking every 5 ms, with the
/// given election and heartbeat ticks and `--option`s.
pub fn start<C: Core>(
    protocol: &str,
    tag: &str,
    n: u64,
    (election_ticks, heartbeat_ticks): (u64, u64),
    options: &[String],
) -> Cluster {
    let base = std::env::temp_dir().join(format!("fl-{tag}-target-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("test data dir");
    let peers: BTreeMap<u64, String> = (1..=n)
        .map(|i| (i, format!("127.0.0.1:{}", free_port())))
        .collect();
    let mut members = Vec::new();
    for i in 1..=n {
        let client_addr = format!("127.0.0.1:{}", free_port());
        members.push((format!("n{i}"), client_addr.clone()));
        let o = Options {
            protocol: protocol.into(),
            id: i,
            peers: peers.clone(),
            client_addr,
            data_dir: base.join(format!("n{i}")),
            bugs: vec![],
            tick: Duration::from_millis(5),
            election_ticks,
            heartbeat_ticks,
            seed: None,
            options: options.to_vec(),
            trace: Default::default(),
        };
        std::thread::spawn(move || shell::run::<C>(o));
    }
    Cluster { base, members }
}
