//! Checks for root and the Debian packages the lab needs, so a missing
//! tool is one clear message before anything is created.

use std::path::Path;

use anyhow::{Result, bail};

/// (program, Debian package)
const TOOLS: &[(&str, &str)] = &[
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("iptables", "iptables"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
    ("setsid", "util-linux"),
];

const PATH_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];

fn find(prog: &str) -> bool {
    PATH_DIRS.iter().any(|d| Path::new(d).join(prog).is_file())
}

/// The libfaketime library path (`.../faketime/libfaketime.so.1`), if installed.
pub fn libfaketime() -> Option<String> {
    let entries = std::fs::read_dir("/usr/lib").ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain(std::iter::once(
            Path::new("/usr/lib/faketime/libfaketime.so.1").to_path_buf(),
        ))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

pub fn check_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the lab needs root (network namespaces, bridges, iptables): run as root");
    }
    Ok(())
}

pub fn check() -> Result<()> {
    check_root()?;
    let mut missing: Vec<String> = TOOLS
        .iter()
        .filter(|(prog, _)| !find(prog))
        .map(|(prog, pkg)| format!("{pkg} ({prog})"))
        .collect();
    if libfaketime().is_none() {
        missing.push("libfaketime (libfaketime.so.1)".into());
    }
    if !missing.is_empty() {
        bail!(
            "missing Debian packages: {}; install them with: apt-get install -y \
             --no-install-recommends $(cat scripts/lab-packages.txt)",
            missing.join(", ")
        );
    }
    Ok(())
}
