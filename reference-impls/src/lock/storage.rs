//! The fenced storage service (Kleppmann, "How to do distributed locking",
//! 2016): a key-value log that accepts `write(key, value, token)` only if
//! `token` is at least the highest token it has accepted for that key, so a
//! lock holder whose lease ran out while it was paused cannot overwrite
//! the work of the holder after it.
//!
//! One node holds the data (`storage-node=ID`, default the lowest id);
//! every `faultline-node lock` listens on `storage-port` (default 7002) and
//! the others relay their connections to it byte for byte. A client talks
//! to its own node, so pausing that node holds the client's writes in
//! flight — the lock holder "paused after it checked its lease" of the
//! article.
//!
//! Wire format, one JSON object per line:
//! - `{"write":{"key":1,"value":5,"token":7,"client":9}}` (`token` null: an
//!   unfenced write, accepted unchecked) → `{"ok":{"token":7}}` or
//!   `{"rejected":{"max":8}}` (certainly not applied);
//! - `{"read":true}` → `{"log":{"1":[{"token":7,"value":5,"client":9},…]}}`,
//!   every accepted write per key in the order accepted;
//! - `{"error":"…"}`: a bad line, or (at a relay) the storage node is
//!   unreachable and the line was not forwarded.
//!
//! Accepted writes are appended to `storage.jsonl` in the data directory
//! (flushed, not fsynced: a killed process loses nothing the kernel has)
//! and replayed at start, so the highest tokens survive a restart.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default `storage-port`.
pub const DEFAULT_PORT: u16 = 7002;

/// One accepted write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub key: u64,
    pub value: i64,
    pub token: Option<u64>,
    pub client: u64,
}

/// The storage's state: what it accepted, and the highest token per key.
#[derive(Debug, Default)]
pub struct Storage {
    log: BTreeMap<u64, Vec<Accepted>>,
    /// Highest token accepted per key (the `storage-per-client` bug: per
    /// client).
    max: BTreeMap<u64, u64>,
    per_client: bool,
}

impl Storage {
    pub fn new(per_client: bool) -> Storage {
        Storage {
            per_client,
            ..Storage::default()
        }
    }

    fn scope(&self, w: &Accepted) -> u64 {
        if self.per_client { w.client } else { w.key }
    }

    /// Accepts `w` unless its token is older than one already accepted;
    /// `Err(max)` when rejected.
    pub fn write(&mut self, w: Accepted) -> Result<(), u64> {
        let scope = self.scope(&w);
        if let Some(t) = w.token {
            let max = self.max.get(&scope).copied().unwrap_or(0);
            if t < max {
                return Err(max);
            }
            self.max.insert(scope, t);
        }
        self.log.entry(w.key).or_default().push(w);
        Ok(())
    }

    pub fn read(&self) -> Value {
        json!(
            self.log
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        )
    }
}

/// Answers one request line against `store`; `persist` gets each
/// accepted write first.
pub fn handle(
    store: &Mutex<Storage>,
    line: &str,
    persist: &mut dyn FnMut(&Accepted) -> std::io::Result<()>,
) -> Value {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"error": format!("not JSON: {e}")}),
    };
    let Ok(mut s) = store.lock() else {
        return json!({"error": "storage state poisoned"});
    };
    if v.get("read").is_some() {
        return json!({"log": s.read()});
    }
    let Some(w) = v.get("write") else {
        return json!({"error": "expected {\"write\":…} or {\"read\":true}"});
    };
    let w: Accepted = match serde_json::from_value(w.clone()) {
        Ok(w) => w,
        Err(e) => return json!({"error": format!("bad write: {e}")}),
    };
    let token = w.token;
    let scope = s.scope(&w);
    if let Some(t) = token {
        let max = s.max.get(&scope).copied().unwrap_or(0);
        if t < max {
            return json!({"rejected": {"max": max}});
        }
    }
    if let Err(e) = persist(&w) {
        return json!({"error": format!("storage log: {e}")});
    }
    match s.write(w) {
        Ok(()) => json!({"ok": {"token": token}}),
        Err(max) => json!({"rejected": {"max": max}}),
    }
}

/// Runs the storage (or its relay) on `listen` in background threads.
/// `storage` is the address of the storage node, or `None` on that node;
/// there the state is replayed from and appended to `dir/storage.jsonl`.
pub fn serve(
    listen: SocketAddr,
    storage: Option<SocketAddr>,
    dir: &Path,
    per_client: bool,
    log: crate::shell::Log,
) -> Result<(), String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("storage port {listen}: {e}"))?;
    let Some(upstream) = storage else {
        let path = dir.join("storage.jsonl");
        let mut st = Storage::new(per_client);
        let mut n = 0;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                // A torn last line (killed mid-write) was never acknowledged.
                if let Ok(w) = serde_json::from_str::<Accepted>(&line) {
                    let _ = st.write(w);
                    n += 1;
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        log.line(&format!(
            "storage on {listen}: replayed {n} writes from {}{}",
            path.display(),
            if per_client {
                " (bug storage-per-client)"
            } else {
                ""
            }
        ));
        let store = Arc::new(Mutex::new(st));
        let file = Arc::new(Mutex::new(BufWriter::new(file)));
        spawn("storage-accept", move || {
            for conn in listener.incoming() {
                let Ok(s) = conn else { continue };
                let (store, file) = (Arc::clone(&store), Arc::clone(&file));
                spawn("storage", move || serve_conn(s, &store, &file));
            }
        });
        return Ok(());
    };
    log.line(&format!("storage relay on {listen} to {upstream}"));
    spawn("relay-accept", move || {
        for conn in listener.incoming() {
            let Ok(s) = conn else { continue };
            spawn("relay", move || relay(s, upstream));
        }
    });
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(f) {
        eprintln!("faultline-node: spawning {name}: {e}");
    }
}

fn serve_conn(s: TcpStream, store: &Mutex<Storage>, file: &Mutex<BufWriter<File>>) {
    let _ = s.set_nodelay(true);
    let Ok(w) = s.try_clone() else { return };
    let mut w = BufWriter::new(w);
    let mut persist = |a: &Accepted| -> std::io::Result<()> {
        let mut f = file.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        serde_json::to_writer(&mut *f, a)?;
        f.write_all(b"\n")?;
        f.flush()
    };
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let reply = handle(store, &line, &mut persist);
        if writeln!(w, "{reply}").and_then(|_| w.flush()).is_err() {
            return;
        }
    }
}

/// Forwards one client connection to the storage node, both ways.
fn relay(client: TcpStream, upstream: SocketAddr) {
    let _ = client.set_nodelay(true);
    match TcpStream::connect_timeout(&upstream, Duration::from_secs(1)) {
        Ok(up) => {
            let _ = up.set_nodelay(true);
            let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), up.try_clone()) else {
                return;
            };
            spawn("relay-back", move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
            let (mut c, mut u) = (client, up);
            let _ = std::io::copy(&mut c, &mut u);
            let _ = u.shutdown(std::net::Shutdown::Write);
        }
        Err(e) => {
            // Nothing is forwarded: every line certainly had no effect.
            let Ok(mut w) = client.try_clone() else {
                return;
            };
            let err = json!({"error": format!("storage node {upstream} unreachable: {e}")});
            for line in BufReader::new(client).lines() {
                if line.is_err() || writeln!(w, "{err}").is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: u64, value: i64, token: Option<u64>, client: u64) -> Accepted {
        Accepted {
            key,
            value,
            token,
            client,
        }
    }

    #[test]
    fn rejects_older_tokens_per_key_and_accepts_equal_ones() {
        let mut s = Storage::new(false);
        assert!(s.write(w(1, 1, Some(5), 1)).is_ok());
        assert!(s.write(w(1, 2, Some(5), 1)).is_ok(), "same holder again");
        assert!(s.write(w(2, 3, Some(3), 2)).is_ok(), "another key");
        assert_eq!(s.write(w(1, 4, Some(4), 2)), Err(5));
        assert!(s.write(w(1, 5, Some(6), 2)).is_ok());
        assert!(s.write(w(1, 6, None, 1)).is_ok(), "unfenced: unchecked");
        let log = s.read();
        let vals: Vec<i64> = log["1"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_i64().unwrap())
            .collect();
        assert_eq!(vals, [1, 2, 5, 6]);
    }

    #[test]
    fn the_per_client_bug_accepts_another_clients_stale_token() {
        let mut s = Storage::new(true);
        assert!(s.write(w(1, 1, Some(6), 2)).is_ok());
        assert!(s.write(w(1, 2, Some(5), 1)).is_ok());
    }

    #[test]
    fn handle_answers_lines() {
        let st = Mutex::new(Storage::new(false));
        let mut seen = Vec::new();
        let mut p = |a: &Accepted| {
            seen.push(a.value);
            Ok(())
        };
        let r = handle(
            &st,
            r#"{"write":{"key":1,"value":7,"token":3,"client":1}}"#,
            &mut p,
        );
        assert_eq!(r, json!({"ok": {"token": 3}}));
        let r = handle(
            &st,
            r#"{"write":{"key":1,"value":8,"token":2,"client":1}}"#,
            &mut p,
        );
        assert_eq!(r, json!({"rejected": {"max": 3}}));
        assert!(handle(&st, "{", &mut p)["error"].is_string());
        let r = handle(&st, r#"{"read":true}"#, &mut p);
        assert_eq!(r["log"]["1"][0]["value"], 7);
        assert_eq!(seen, [7]);
    }
}
