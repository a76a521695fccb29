//! Which nodes a command acts on: `--nodes`/`--nodes-file` entries parsed
//! into SSH specs, or the local lab when no nodes are given.
//!
//! An entry is `[ALIAS=][USER@]HOST[:PORT]` (IPv6 as `[::1]:22`), or,
//! when a lab exists, a lab node's name (`n1`): with a lab, a bare word
//! without `@`, `=`, `:` or `.` must be a lab node. The node's name is
//! the alias, else the host. A nodes file holds one entry per line; blank
//! lines and `#` comments are skipped, and errors name the file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

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
    /// File with one node per line (same forms as --nodes; # comments).
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

/// Reads a nodes file: one entry per line, `#` starts a comment.
pub fn read_nodes_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--nodes-file {}: {e}", path.display())))?;
    parse_nodes_text(&text).map_err(|(line, e)| usage(format!("{}:{line}: {e}", path.display())))
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
        match &self.nodes_file {
            Some(f) => read_nodes_file(f),
            None => Ok(self
                .nodes
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()),
        }
    }

    /// Whether any node was given.
    pub fn given(&self) -> bool {
        self.nodes_file.is_some() || !self.nodes.is_empty()
    }

    /// Resolves the entries. Lab names need the lab at `lab_dir`; nodes
    /// outside the lab never read it.
    pub fn resolve(&self, lab_dir: &Path, connect_timeout: Duration) -> Result<Resolved> {
        let entries = self.entries()?;
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
