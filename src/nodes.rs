//! Which nodes a command acts on: `--nodes`/`--nodes-file` entries parsed
//! into SSH specs, or the local lab when no nodes are given.
//!
//! An entry is `[ALIAS=][USER@]HOST[:PORT]` (IPv6 as `[::1]:22`), or,
//! when a lab exists, a lab node's name (`n1`): with a lab, a bare word
//! without `@`, `=`, `:` or `.` must be a lab node. The node's name is
//! the alias, else the host. A nodes file holds one entry per line; blank
//! lines and `#` comments are skipped, and errors name the file and line.
//!
//! A nodes file may also be a TOML inventory (when it ends in `.toml`, or
//! parses as TOML with a `nodes` key):
//!
//! ```toml
//! nodes = ["n1=10.0.0.5", "n2=10.0.0.6", "db3.example.org"]
//! user = "admin"          # for entries without USER@
//! port = 2222             # for entries without :PORT
//! key = "~/.ssh/nightly"  # like --ssh-key (relative to the file)
//! known_hosts = "known_hosts"
//! sudo = true             # like --sudo
//! accept_new_host_keys = false
//! ```
//!
//! Flags given on the command line win over the file's settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Deserialize;

use crate::lab::LabState;
use crate::remote::NodeSpec;
use crate::usage;

/// The node-selection flags shared by `exec`, `nemesis` and `test`.
#[derive(Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// Nodes: [ALIAS=][USER@]HOST[:PORT] (e.g. n1=root@10.0.0.5), or lab
    /// node names (n1,n3). Default: the local lab.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub nodes: Vec<String>,
    /// File with one node per line (same forms as --nodes; # comments), or
    /// a TOML inventory: nodes = [...], user, port, key, sudo (docs/nodes.md).
    #[arg(long, value_name = "FILE", conflicts_with = "nodes")]
    pub nodes_file: Option<PathBuf>,
    /// Private key for nodes outside the lab (default: ~/.ssh/id_ed25519,
    /// then ~/.ssh/id_rsa).
    #[arg(long, alias = "key", value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts for nodes outside the lab (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record host keys not yet in known_hosts instead of refusing them (a
    /// changed key is always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Run commands through `sudo -n` (for users other than root).
    #[arg(long)]
    pub sudo: bool,
}

/// One parsed `--nodes` entry outside the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub user: String,
    pub host: String,
    pub port: u16,
}

/// Whether `s` can name a node (history, store dirs, messages).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

/// Parses `[ALIAS=][USER@]HOST[:PORT]`.
pub fn parse_entry(s: &str) -> Result<Entry, String> {
    let s = s.trim();
    let (alias, target) = match s.split_once('=') {
        Some((a, t)) => (Some(a.trim()), t.trim()),
        None => (None, s),
    };
    let (user, hostport) = match target.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("root", target),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: missing ']' after an IPv6 address"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{s:?}: expected :PORT after ']'"))?,
                ),
            ),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => 22,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?}: bad port {p:?}"))?,
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if !host_ok {
        return Err(format!("{s:?}: bad host {host:?}"));
    }
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !user_ok {
        return Err(format!("{s:?}: bad user {user:?}"));
    }
    let name = alias.unwrap_or(host).to_string();
    if !valid_name(&name) {
        return Err(format!(
            "{s:?}: bad node name {name:?} (letters, digits, . _ - :)"
        ));
    }
    Ok(Entry {
        name,
        user: user.to_string(),
        host: host.to_string(),
        port,
    })
}

/// A nodes file's contents: the entries, and the SSH settings a TOML
/// inventory may carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodesFile {
    pub entries: Vec<String>,
    pub key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub sudo: bool,
    pub accept_new_host_keys: bool,
}

/// The TOML inventory (module docs).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Inventory {
    nodes: Vec<String>,
    user: Option<String>,
    port: Option<u16>,
    #[serde(alias = "ssh_key")]
    key: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    #[serde(default)]
    sudo: bool,
    #[serde(default)]
    accept_new_host_keys: bool,
}

/// Reads a nodes file: a TOML inventory, or one entry per line (`#` starts
/// a comment). Errors name the file and line.
pub fn read_nodes_file(path: &Path) -> Result<NodesFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--nodes-file {}: {e}", path.display())))?;
    let is_toml_name = path.extension().is_some_and(|e| e == "toml");
    let as_toml = toml::from_str::<toml::Table>(&text)
        .ok()
        .filter(|t| t.contains_key("nodes"));
    if is_toml_name || as_toml.is_some() {
        let base = path.parent().unwrap_or(Path::new("."));
        return parse_inventory(&text, base)
            .map_err(|e| usage(format!("--nodes-file {}: {e}", path.display())));
    }
    let entries = parse_nodes_text(&text)
        .map_err(|(line, e)| usage(format!("{}:{line}: {e}", path.display())))?;
    Ok(NodesFile {
        entries,
        ..Default::default()
    })
}

/// `~/x` under $HOME; a relative path under `base` (the file's directory).
fn file_path(base: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(h) = std::env::var_os("HOME")
    {
        return PathBuf::from(h).join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parses a TOML inventory; `user` and `port` fill entries that lack them.
pub fn parse_inventory(text: &str, base: &Path) -> Result<NodesFile, String> {
    let inv: Inventory = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    if inv.nodes.is_empty() {
        return Err("`nodes` is empty".into());
    }
    if let Some(u) = &inv.user
        && (u.is_empty()
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(format!("bad `user` {u:?}"));
    }
    if inv.port == Some(0) {
        return Err("bad `port` 0".into());
    }
    let mut entries = Vec::new();
    for (i, e) in inv.nodes.iter().enumerate() {
        let e = e.trim();
        let (alias, target) = match e.split_once('=') {
            Some((a, t)) => (Some(a), t),
            None => (None, e),
        };
        let mut target = target.to_string();
        if let Some(u) = &inv.user
            && !target.contains('@')
        {
            target = format!("{u}@{target}");
        }
        if let Some(p) = inv.port {
            let host = target.rsplit_once('@').map_or(target.as_str(), |(_, h)| h);
            let has_port = if host.starts_with('[') {
                !host.ends_with(']')
            } else {
                host.contains(':')
            };
            if !has_port {
                target = format!("{target}:{p}");
            }
        }
        let entry = match alias {
            Some(a) => format!("{a}={target}"),
            None => target,
        };
        parse_entry(&entry).map_err(|m| format!("nodes[{i}]: {m}"))?;
        entries.push(entry);
    }
    Ok(NodesFile {
        entries,
        key: inv.key.as_deref().map(|k| file_path(base, k)),
        known_hosts: inv.known_hosts.as_deref().map(|k| file_path(base, k)),
        sudo: inv.sudo,
        accept_new_host_keys: inv.accept_new_host_keys,
    })
}

/// The entries of a nodes file's text; an error carries its 1-based line.
pub fn parse_nodes_text(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.split_whitespace().count() > 1 {
            return Err((i + 1, format!("one node per line, got {line:?}")));
        }
        // Lab names are checked later; everything else must parse now.
        parse_entry(line).map_err(|e| (i + 1, e))?;
        out.push(line.to_string());
    }
    if out.is_empty() {
        return Err((0, "no nodes in the file".into()));
    }
    Ok(out)
}

/// The nodes a command acts on.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub specs: Vec<NodeSpec>,
    /// The lab, when every node is a lab node (faults may then use the
    /// lab's own means: crash, libfaketime).
    pub lab: Option<LabState>,
}

impl Resolved {
    pub fn names(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }
}

fn home_file(rel: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rel))
}

impl NodeArgs {
    /// The raw entries from `--nodes` or `--nodes-file` (empty: the lab).
    pub fn entries(&self) -> Result<Vec<String>> {
        Ok(self.file()?.entries)
    }

    /// The entries with the nodes file's SSH settings (none for `--nodes`).
    fn file(&self) -> Result<NodesFile> {
        match &self.nodes_file {
            Some(f) => read_nodes_file(f),
            None => Ok(NodesFile {
                entries: self
                    .nodes
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                ..Default::default()
            }),
        }
    }

    /// Whether any node was given.
    pub fn given(&self) -> bool {
        self.nodes_file.is_some() || !self.nodes.is_empty()
    }

    /// Resolves the entries. Lab names need the lab at `lab_dir`; nodes
    /// outside the lab never read it.
    pub fn resolve(&self, lab_dir: &Path, connect_timeout: Duration) -> Result<Resolved> {
        let file = self.file()?;
        // Flags win over the file's settings.
        let flags = NodeArgs {
            ssh_key: self.ssh_key.clone().or(file.key),
            known_hosts: self.known_hosts.clone().or(file.known_hosts),
            sudo: self.sudo || file.sudo,
            accept_new_host_keys: self.accept_new_host_keys || file.accept_new_host_keys,
            ..NodeArgs::default()
        };
        flags.resolve_entries(file.entries, lab_dir, connect_timeout)
    }

    fn resolve_entries(
        &self,
        entries: Vec<String>,
        lab_dir: &Path,
        connect_timeout: Duration,
    ) -> Result<Resolved> {
        let lab = LabState::load(lab_dir);
        if entries.is_empty() {
            let lab = lab?;
            let mut specs = lab.node_specs(&[], connect_timeout)?;
            self.apply_flags(&mut specs);
            return Ok(Resolved {
                specs,
                lab: Some(lab),
            });
        }
        let is_lab_name = |e: &str| {
            !e.contains(['@', '=', ':'])
                && lab
                    .as_ref()
                    .is_ok_and(|l| l.nodes.iter().any(|n| n.name == e))
        };
        let all_lab = entries.iter().all(|e| is_lab_name(e));
        let mut specs = Vec::new();
        for e in &entries {
            // With a lab, a bare word is a lab node's name; a machine is
            // named with user@, ALIAS= or a dotted address.
            if let Ok(l) = &lab
                && !e.contains(['@', '=', ':', '.'])
                && !is_lab_name(e)
            {
                return Err(usage(format!(
                    "no node {e:?} in the lab at {} (it has {}); name other machines as \
                     USER@HOST or ALIAS=HOST",
                    l.dir.display(),
                    l.names().join(", ")
                )));
            }
            if let (true, Ok(l)) = (is_lab_name(e), &lab) {
                specs.extend(l.node_specs(std::slice::from_ref(e), connect_timeout)?);
                continue;
            }
            let p = parse_entry(e).map_err(|m| usage(format!("--nodes: {m}")))?;
            let key = self
                .ssh_key
                .clone()
                .or_else(|| {
                    ["id_ed25519", "id_rsa"]
                        .iter()
                        .filter_map(|k| home_file(&format!(".ssh/{k}")))
                        .find(|p| p.exists())
                })
                .ok_or_else(|| usage(format!("{}: --ssh-key is needed", p.name)))?;
            let known_hosts = self
                .known_hosts
                .clone()
                .or_else(|| home_file(".ssh/known_hosts"))
                .ok_or_else(|| usage(format!("{}: --known-hosts is needed", p.name)))?;
            specs.push(NodeSpec {
                name: p.name,
                host: p.host,
                port: p.port,
                user: p.user,
                key,
                known_hosts,
                accept_new_host_keys: false,
                sudo: false,
                connect_timeout,
            });
        }
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == s.name) {
                return Err(usage(format!(
                    "node {:?} is given twice (use ALIAS=HOST to tell nodes apart)",
                    s.name
                )));
            }
        }
        self.apply_flags(&mut specs);
        Ok(Resolved {
            specs,
            lab: if all_lab { lab.ok() } else { None },
        })
    }

    fn apply_flags(&self, specs: &mut [NodeSpec]) {
        for s in specs {
            s.accept_new_host_keys |= self.accept_new_host_keys;
            s.sudo |= self.sudo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let e = parse_entry("n1=admin@10.0.0.5:2222").unwrap();
        assert_eq!(
            e,
            Entry {
                name: "n1".into(),
                user: "admin".into(),
                host: "10.0.0.5".into(),
                port: 2222
            }
        );
        let e = parse_entry("db-1.example.org").unwrap();
        assert_eq!(
            (e.name.as_str(), e.user.as_str(), e.port),
            ("db-1.example.org", "root", 22)
        );
        let e = parse_entry("v6=root@[fd00::5]:22").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("fd00::5", 22));
        for bad in [
            "", "root@", "@h", "h:0", "h:99999", "h:x", "n 1=h", "h;rm", "[fd00::5", "a=b=c",
            "u$@h",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn nodes_file_comments_and_line_numbers() {
        let t = "# cluster\n\nn1=root@10.0.0.5  # first\n  root@10.0.0.6:2222\n";
        assert_eq!(
            parse_nodes_text(t).unwrap(),
            vec!["n1=root@10.0.0.5", "root@10.0.0.6:2222"]
        );
        assert_eq!(parse_nodes_text("a\nb c\n").unwrap_err().0, 2);
        assert_eq!(parse_nodes_text("ok\n\nbad:port\n").unwrap_err().0, 3);
        assert!(parse_nodes_text("# nothing\n").is_err());
    }

    #[test]
    fn toml_inventory_fills_user_port_and_settings() {
        let t = r#"
            # nightly cluster
            nodes = ["n1=10.0.0.5", "n2=ops@10.0.0.6:22", "db3.example.org", "v6=[fd00::5]"]
            user = "admin"
            port = 2222
            key = "keys/id_ed25519"
            sudo = true
        "#;
        let f = parse_inventory(t, Path::new("/etc/faultline")).unwrap();
        assert_eq!(
            f.entries,
            vec![
                "n1=admin@10.0.0.5:2222",
                "n2=ops@10.0.0.6:22",
                "admin@db3.example.org:2222",
                "v6=admin@[fd00::5]:2222"
            ]
        );
        assert_eq!(
            f.key.as_deref(),
            Some(Path::new("/etc/faultline/keys/id_ed25519"))
        );
        assert!(f.sudo && !f.accept_new_host_keys);
        // Without user/port, lab names stay lab names.
        let f = parse_inventory("nodes = [\"n1\", \"n2\"]", Path::new(".")).unwrap();
        assert_eq!(f.entries, vec!["n1", "n2"]);
        for (bad, why) in [
            ("nodes = []", "empty"),
            ("nodes = [\"h\"]\nuser = \"a b\"", "bad `user`"),
            ("nodes = [\"h;rm\"]", "nodes[0]"),
            ("nodes = [\"h\"]\nsudoo = true", "sudoo"),
            ("nodes = [\"h\"]\nport = 70000", "port"),
        ] {
            let e = parse_inventory(bad, Path::new(".")).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn nodes_files_are_toml_by_name_or_content() {
        let d = std::env::temp_dir().join(format!("faultline-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let toml_file = d.join("inv.toml");
        std::fs::write(&toml_file, "nodes = [\"a=root@10.0.0.1\"]\nsudo = true\n").unwrap();
        let f = read_nodes_file(&toml_file).unwrap();
        assert_eq!((f.entries.len(), f.sudo), (1, true));
        // No .toml, but TOML with `nodes`: still an inventory.
        let plain = d.join("cluster");
        std::fs::write(&plain, "nodes = [\"a=root@10.0.0.1\"]\nport = 2200\n").unwrap();
        assert_eq!(
            read_nodes_file(&plain).unwrap().entries,
            vec!["a=root@10.0.0.1:2200"]
        );
        // The line format is unchanged.
        std::fs::write(&plain, "# two\nn1=root@10.0.0.5\nroot@10.0.0.6\n").unwrap();
        assert_eq!(read_nodes_file(&plain).unwrap().entries.len(), 2);
        // A broken .toml names the file and the line.
        std::fs::write(&toml_file, "nodes = [\"a\"]\nuser = \n").unwrap();
        let e = format!("{:#}", read_nodes_file(&toml_file).unwrap_err());
        assert!(e.contains("inv.toml") && e.contains("line 2"), "{e}");
        // Flags win over the file; the file fills what flags leave out.
        std::fs::write(
            &toml_file,
            "nodes = [\"a=root@10.0.0.1\"]\nkey = \"/file/key\"\nknown_hosts = \"/file/kh\"\nsudo = true\n",
        )
        .unwrap();
        let a = NodeArgs {
            nodes_file: Some(toml_file.clone()),
            ssh_key: Some("/flag/key".into()),
            ..Default::default()
        };
        let r = a
            .resolve(Path::new("/nonexistent-lab"), Duration::from_secs(1))
            .unwrap();
        assert_eq!(r.specs[0].key, PathBuf::from("/flag/key"));
        assert_eq!(r.specs[0].known_hosts, PathBuf::from("/file/kh"));
        assert!(r.specs[0].sudo);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let a = NodeArgs {
            nodes: vec!["root@h1".into(), "x@h1:2200".into()],
            ssh_key: Some("/k".into()),
            known_hosts: Some("/kh".into()),
            ..Default::default()
        };
        let e = a
            .resolve(Path::new("/nonexistent-lab"), Duration::from_secs(1))
            .unwrap_err();
        assert!(format!("{e}").contains("given twice"), "{e}");
    }
}
