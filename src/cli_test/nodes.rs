//! Which nodes a test runs on: lab nodes by name, or machines given by
//! address or in a nodes file, and how the controller reaches them.

use super::*;

/// The nodes of the test: names, how to reach them, their addresses, and
/// the lab they are in (none for machines given by address).
pub(super) struct Nodes {
    pub(super) names: Vec<String>,
    pub(super) lab: Option<LabState>,
    pub(super) specs: Vec<NodeSpec>,
    pub(super) addrs: faultline_nemesis::NodeAddrs,
}

/// The address of a node outside the lab, as the controller resolves it:
/// etcd's client URLs must be reachable from here.
pub(super) fn controller_addr(spec: &NodeSpec) -> Result<String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = (spec.host.as_str(), spec.port)
        .to_socket_addrs()
        .with_context(|| format!("{}: resolving {}", spec.name, spec.host))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip().to_string())
        .ok_or_else(|| anyhow!("{}: no address for {}", spec.name, spec.host))
}

pub(super) fn resolve_nodes(plan: &Plan, checked: &Checked) -> Result<Nodes> {
    if !checked.info.is_deployed() {
        let names = match Some(&plan.nodes).filter(|n| !n.is_empty()) {
            Some(n) => n
                .iter()
                .map(|e| crate::nodes::parse_entry(e).map(|p| p.name))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(usage)?,
            None => (1..=plan.node_count).map(|i| format!("n{i}")).collect(),
        };
        return Ok(Nodes {
            names,
            lab: None,
            specs: Vec::new(),
            addrs: Default::default(),
        });
    }
    // Machines given by address: no lab is read or brought up.
    let plan_nodes = Some(&plan.nodes).filter(|n| !n.is_empty());
    if plan_nodes.is_some() {
        let r = plan
            .node_args()
            .resolve(&plan.lab_dir, Duration::from_secs(10))?;
        if r.lab.is_none() {
            if plan.nemesis.contains(&NemesisKind::Crash) {
                return Err(usage(
                    "--nemesis crash needs lab nodes (a node is killed from the lab host); \
                     use kill on other nodes",
                ));
            }
            let mut addrs = faultline_nemesis::NodeAddrs::new();
            for s in &r.specs {
                addrs.insert(s.name.clone(), controller_addr(s)?);
            }
            return Ok(Nodes {
                names: r.names(),
                lab: None,
                specs: r.specs,
                addrs,
            });
        }
    }
    let want = plan_nodes.map_or(plan.node_count, Vec::len);
    let lab = match LabState::load(&plan.lab_dir) {
        Ok(s)
            if s.nodes.len() >= want
                && lab::health(&s).iter().all(|(_, alive, ssh)| *alive && *ssh) =>
        {
            s
        }
        old => {
            if plan_nodes.is_some() && old.is_err() {
                bail!(
                    "--nodes names lab nodes, but there is no lab at {} (run `faultline lab up`, \
                     or name machines as USER@HOST)",
                    plan.lab_dir.display()
                );
            }
            let (bridge, prefix) = match &old {
                Ok(s) => (
                    s.bridge.clone(),
                    lab::parse_subnet(&s.subnet).unwrap_or_else(|_| "10.77.0".into()),
                ),
                Err(_) => (
                    lab::DEFAULT_BRIDGE.to_string(),
                    lab::parse_subnet(lab::DEFAULT_SUBNET)?,
                ),
            };
            let nodes = old.as_ref().map_or(want, |s| s.nodes.len().max(want));
            errln!(
                "faultline: bringing the lab up ({nodes} nodes at {})",
                plan.lab_dir.display()
            );
            let (s, _) = lab::up(&LabConfig {
                dir: plan.lab_dir.clone(),
                nodes,
                prefix,
                bridge,
            })?;
            s
        }
    };
    let names = match plan_nodes {
        Some(n) => {
            for name in n {
                if !lab.nodes.iter().any(|x| &x.name == name) {
                    return Err(usage(format!(
                        "node {name:?} is not in the lab at {} (it has {}); name other \
                         machines as USER@HOST or ALIAS=HOST",
                        plan.lab_dir.display(),
                        lab.names().join(", ")
                    )));
                }
            }
            n.clone()
        }
        None => lab.names().into_iter().take(want).collect(),
    };
    if let (true, Clock::OutsideLab(why)) = (
        plan.nemesis.iter().any(|k| k.uses_clock()),
        checked.info.clock,
    ) {
        return Err(usage(format!(
            "--nemesis clock cannot be used with --target {} in the lab: {why}",
            plan.target
        )));
    }
    Ok(Nodes {
        specs: lab.node_specs(&names, Duration::from_secs(10))?,
        addrs: lab.addrs(),
        names,
        lab: Some(lab),
    })
}
