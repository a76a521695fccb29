//! Deploying Redis 7 (Debian's `redis-server`) on nodes: the first node is
//! the primary, the others its replicas. Shell commands only, run by the
//! `faultline` binary over SSH; the clients and the failover are
//! [`crate::redis`].
//!
//! Layout on every node (under its private /opt, LAB-NOTES §7):
//! `/opt/redis/` holds the append-only file (`appendfsync everysec`,
//! Redis' advice), `redis.log` and `redis.pid`. `--protected-mode no`, or
//! remote clients are refused. Short replication timeouts (`repl-timeout
//! 3`, pings every second) so a replica notices a lost primary quickly.
//!
//! A node (re)starts as a replica of whichever other node says it is a
//! primary (`redis-cli ROLE`), else of the first node, unless it is the
//! first node and no other node is a primary: so the same command starts
//! the cluster and restarts a killed member after a failover, as a replica
//! of the new primary.
//!
//! ```
//! use faultline_targets::redis_db::RedisDb;
//! let db = RedisDb::new([("n1", "10.77.0.11"), ("n2", "10.77.0.12")]);
//! let cmd = db.start_command("n2").unwrap();
//! assert!(cmd.contains("--bind 10.77.0.12"));
//! assert!(cmd.contains("redis-cli -h 10.77.0.11 -p 6379 ROLE"));
//! ```

use faultline_nemesis::NemesisKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, TargetInfo};
use crate::redis::{PORT, RedisConfig, RedisTarget, control, parse_info};
use crate::{BoxFuture, Target};

pub const DIR: &str = "/opt/redis";
pub const LOG_FILE: &str = "/opt/redis/redis.log";
pub const PID_FILE: &str = "/opt/redis/redis.pid";

/// A primary and replicas on a set of nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisDb {
    /// (node, address) in the test's order; the first is the primary.
    pub nodes: Vec<(String, String)>,
    by_name: BTreeMap<String, String>,
    /// `WAIT N` after each write (`--redis-wait N`).
    pub wait: Option<u32>,
    /// Promote a replica when the primary is lost.
    pub failover: bool,
}

impl RedisDb {
    pub fn new<N: Into<String>, A: Into<String>>(
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> RedisDb {
        let nodes: Vec<(String, String)> = nodes
            .into_iter()
            .map(|(n, a)| (n.into(), a.into()))
            .collect();
        RedisDb {
            by_name: nodes.iter().cloned().collect(),
            nodes,
            wait: None,
            failover: false,
        }
    }

    pub fn install_command(&self) -> String {
        "command -v redis-server >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get \
         install -y redis-server >/tmp/faultline-apt.log 2>&1 || { tail -5 /tmp/faultline-apt.log >&2; \
         exit 1; }; }; command -v redis-cli >/dev/null 2>&1 || { echo 'redis-server is not \
         installed and apt-get did not install it' >&2; exit 1; }"
            .into()
    }

    /// See the module docs: idempotent; primary or replica by asking the
    /// others.
    pub fn start_command(&self, node: &str) -> Option<String> {
        let addr = self.by_name.get(node)?;
        let (first, first_addr) = self.nodes.first()?;
        let others: Vec<&str> = self
            .nodes
            .iter()
            .filter(|(n, _)| n != node)
            .map(|(_, a)| a.as_str())
            .collect();
        let ask: String = others
            .iter()
            .map(|a| {
                format!(
                    "[ -z \"$m\" ] && [ \"$(timeout 2 redis-cli -h {a} -p {PORT} ROLE 2>/dev/null | \
                     head -1)\" = master ] && m={a}; "
                )
            })
            .collect();
        let fallback = if node == first {
            String::new()
        } else {
            format!("[ -z \"$m\" ] && m={first_addr}; ")
        };
        Some(format!(
            "if [ -f {PID_FILE} ] && kill -0 $(cat {PID_FILE}) 2>/dev/null; then cat {PID_FILE}; exit 0; fi; \
             m=; {ask}{fallback}rep=; [ -n \"$m\" ] && rep=\"--replicaof $m {PORT}\"; \
             mkdir -p {DIR}; cd {DIR}; \
             setsid nohup redis-server --bind {addr} --port {PORT} --protected-mode no \
             --dir {DIR} --save '' --appendonly yes --appendfsync everysec \
             --repl-timeout 3 --repl-ping-replica-period 1 $rep \
             </dev/null >>{LOG_FILE} 2>&1 & echo $! > {PID_FILE}; cat {PID_FILE}"
        ))
    }

    pub fn teardown_command(&self) -> String {
        crate::pidfile::teardown_command(PID_FILE, &format!("rm -rf {DIR}"))
    }
}

/// The catalogue row.
pub fn info() -> TargetInfo {
    TargetInfo {
        name: "redis",
        description: "Redis 7 (apt redis-server): a primary and replicas; --db-option \
                      failover=true promotes a replica when the primary is lost, \
                      --redis-wait N uses WAIT (docs/redis.md)"
            .into(),
        workloads: crate::redis::WORKLOADS.to_vec(),
        faults: vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Crash,
            NemesisKind::Bandwidth,
            NemesisKind::Loss,
            NemesisKind::Latency,
        ],
        clock: Clock::OutsideLab(
            "the lab fakes clocks per process with libfaketime, which this target does \
             not preload; outside the lab the real clock is set",
        ),
        bugs: Vec::new(),
        needs_node_binary: false,
        kind: Kind::Deployed(build),
    }
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options("redis", &ctx.options, &["wait", "failover"])?;
    let mut db = RedisDb::new(ctx.nodes.iter().cloned());
    if let Some(w) = ctx.options.get("wait") {
        let n: u32 = w
            .parse()
            .map_err(|_| format!("--redis-wait {w}: expected a number of replicas"))?;
        db.wait = (n > 0).then_some(n);
    }
    if let Some(f) = ctx.options.get("failover") {
        db.failover = match f.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(format!("--db-option failover={f}: expected true or false")),
        };
    }
    Ok(Box::new(db))
}

impl Db for RedisDb {
    fn what(&self) -> &str {
        "redis"
    }
    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.by_name
    }
    fn install_command(&self) -> String {
        RedisDb::install_command(self)
    }
    fn teardown_command(&self) -> String {
        RedisDb::teardown_command(self)
    }
    fn start_command(&self, node: &str) -> Option<String> {
        RedisDb::start_command(self, node)
    }
    fn pidfile(&self) -> &str {
        PID_FILE
    }
    fn log_file(&self) -> &str {
        LOG_FILE
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "redis",
            serde_json::json!({
                "primary": self.nodes.first().map(|n| &n.0),
                "wait": self.wait,
                "failover": self.failover,
            }),
        )
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            loop {
                let mut unready = Vec::new();
                for (i, (n, a)) in self.nodes.iter().enumerate() {
                    let r = control(
                        &format!("{a}:{PORT}"),
                        &["INFO", "replication"],
                        Duration::from_secs(1),
                    )
                    .await
                    .map(|t| parse_info(&t));
                    let why = match r {
                        Err(e) => e,
                        Ok(info) => {
                            let role = info.get("role").cloned().unwrap_or_default();
                            let link = info.get("master_link_status").cloned();
                            match (i, role.as_str(), link.as_deref()) {
                                (0, "master", _) | (1.., "slave", Some("up")) => continue,
                                _ => format!("role {role}, link {}", link.unwrap_or_default()),
                            }
                        }
                    };
                    unready.push(format!("{n} ({why})"));
                }
                if unready.is_empty() {
                    return Ok(());
                }
                if cancelled() {
                    return Err("interrupted while waiting for redis".into());
                }
                if t0.elapsed() > deadline {
                    return Err(format!(
                        "redis did not become ready within {} s: {}",
                        deadline.as_secs(),
                        unready.join("; ")
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
    fn target(&self) -> Arc<dyn Target> {
        let mut cfg = RedisConfig::new(self.nodes.iter().cloned());
        cfg.wait = self.wait;
        cfg.failover = self.failover;
        Arc::new(RedisTarget::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> RedisDb {
        RedisDb::new([("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")])
    }

    #[test]
    fn the_first_node_is_primary_unless_another_is() {
        let d = db();
        let c1 = d.start_command("n1").unwrap();
        assert!(c1.contains("redis-cli -h 10.0.0.2 -p 6379 ROLE"));
        assert!(!c1.contains("m=10.0.0.1"), "{c1}");
        let c2 = d.start_command("n2").unwrap();
        assert!(c2.contains("[ -z \"$m\" ] && m=10.0.0.1; "), "{c2}");
        assert!(c2.contains("--bind 10.0.0.2 --port 6379 --protected-mode no"));
        assert!(c2.contains("& echo $! > /opt/redis/redis.pid"));
        assert!(d.start_command("n9").is_none());
    }

    #[test]
    fn options_are_checked() {
        let mut ctx = DbContext::default();
        ctx.options.insert("wait".into(), "x".into());
        assert!(build("redis", &ctx).err().unwrap().contains("--redis-wait"));
        ctx.options.insert("wait".into(), "1".into());
        ctx.options.insert("failover".into(), "maybe".into());
        assert!(
            build("redis", &ctx)
                .err()
                .unwrap()
                .contains("true or false")
        );
        ctx.options.insert("failover".into(), "true".into());
        assert!(build("redis", &ctx).is_ok());
    }
}
