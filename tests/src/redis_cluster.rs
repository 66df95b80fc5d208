//! A Redis Cluster for one test: Debian's `redis-server` nodes with `cluster-enabled`, formed
//! with `redis-cli --cluster create` (three masters, a replica each), on free loopback ports
//! with their own folders. Nodes notice a dead master within a second
//! (`cluster-node-timeout 1000`) and promote its replica; a slot can be moved between masters
//! by hand, keys and all, as `redis-cli --cluster reshard` does.

use std::process::Command;

use crate::cluster::Backing;
use crate::eventually;
use crate::redis::{Options, Redis};

pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Slot ranges it serves (masters).
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// `masters` masters with one replica each, every node agreeing that all slots are served.
    pub fn start(masters: usize) -> RedisCluster {
        let nodes: Vec<Redis> = (0..masters * 2)
            .map(|_| {
                Redis::start_with(Options {
                    cluster: true,
                    ..Options::default()
                })
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(n.addr());
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("All 16384 slots covered"),
            "redis-cli --cluster create: {said}"
        );
        let c = RedisCluster { nodes };
        c.wait_until_healthy();
        c
    }

    /// The cluster as node `port` sees it.
    pub fn view(&self, port: u16) -> Vec<Node> {
        let node = self.nodes.iter().find(|n| n.port == port).expect("a node");
        node.cli(&["CLUSTER", "NODES"])
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let port = f
                    .get(1)?
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let flags = f.get(2)?;
                Some(Node {
                    id: f[0].to_owned(),
                    port,
                    master: flags.contains("master"),
                    failed: flags.contains("fail"),
                    slots: f
                        .iter()
                        .skip(8)
                        .filter(|s| !s.starts_with('['))
                        .filter_map(|r| {
                            let (a, b) = r.split_once('-').unwrap_or((r, r));
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// A running node's view.
    fn any_view(&self) -> Vec<Node> {
        let port = self
            .nodes
            .iter()
            .find(|n| n.running())
            .expect("a node")
            .port;
        self.view(port)
    }

    /// The masters that serve slots (and are not failed), as a running node sees them.
    pub fn masters(&self) -> Vec<Node> {
        self.any_view()
            .into_iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .collect()
    }

    /// The hash slot of `key`.
    pub fn keyslot(&self, key: &str) -> u16 {
        let node = self.nodes.iter().find(|n| n.running()).expect("a node");
        node.cli(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("a slot")
    }

    /// The master serving `slot`.
    pub fn owner(&self, slot: u16) -> Node {
        self.masters()
            .into_iter()
            .find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .expect("an owner")
    }

    pub fn node(&self, port: u16) -> &Redis {
        self.nodes.iter().find(|n| n.port == port).expect("a node")
    }

    /// SIGKILLs the master on `port`; returns the node's index.
    pub fn kill(&mut self, port: u16) -> usize {
        let i = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a node");
        self.nodes[i].kill();
        i
    }

    /// Starts node `i` again (it rejoins from its folder, as a replica) and waits for health.
    pub fn rejoin(&mut self, i: usize) {
        self.nodes[i].restart();
        self.wait_until_healthy();
    }

    /// Until every running node says the cluster is ok and sees every other running node
    /// healthy, and every replica is in sync with its master (else it cannot take over).
    pub fn wait_until_healthy(&self) {
        let took = eventually(
            || {
                let running: Vec<&Redis> = self.nodes.iter().filter(|n| n.running()).collect();
                running.iter().all(|n| {
                    let replication = n.cli(&["INFO", "replication"]);
                    let in_sync = replication.contains("role:master")
                        || replication.contains("master_link_status:up");
                    in_sync
                        && n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
                        && self
                            .view(n.port)
                            .iter()
                            .filter(|v| running.iter().any(|r| r.port == v.port))
                            .all(|v| !v.failed)
                })
            },
            || "the cluster is not healthy".into(),
        );
        eprintln!("cluster healthy after {took:?}");
    }

    /// Moves `slot` and its keys from its master to master `to`, as `redis-cli --cluster
    /// reshard` does: importing/migrating, `MIGRATE` in batches, then the new owner for all.
    pub fn migrate_slot(&self, slot: u16, to: &Node) {
        let from = self.owner(slot);
        assert_ne!(from.id, to.id, "already there");
        let s = slot.to_string();
        let (src, dst) = (self.node(from.port), self.node(to.port));
        assert_eq!(
            dst.cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.id]),
            "OK"
        );
        assert_eq!(
            src.cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &to.id]),
            "OK"
        );
        loop {
            let keys = src.cli(&["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.port.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter());
            let said = src.cli(&args);
            assert!(said == "OK" || said == "NOKEY", "MIGRATE: {said}");
        }
        for n in self.masters() {
            self.node(n.port)
                .cli(&["CLUSTER", "SETSLOT", &s, "NODE", &to.id]);
        }
    }
}

impl Backing for RedisCluster {
    fn server_flags(&self) -> Vec<String> {
        let seeds: Vec<String> = self.nodes.iter().map(|n| n.addr()).collect();
        vec![
            "--store-type".into(),
            "redis".into(),
            "--redis-cluster-addrs".into(),
            seeds.join(","),
            "--redis-allow-empty-password".into(),
            "--redis-no-tls".into(),
        ]
    }
}
