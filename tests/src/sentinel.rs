//! Redis with Sentinel for one test: a master and its replicas (Debian's `redis-server`) and three
//! sentinels (`redis-server --sentinel`), on free loopback ports with their own folders. The
//! sentinels notice a dead master within a second (`down-after-milliseconds 1000`) and promote
//! the replica; a node that comes back is restarted as a replica of whichever is master.

use std::process::{Child, Command, Stdio};

use crate::cluster::Backing;
use crate::redis::{Options, Redis};
use crate::{eventually, free_port};

pub const MASTER_NAME: &str = "irma-master";

pub struct Sentinels {
    /// Node 0 starts as the master, the others as its replicas; roles change with failovers.
    pub nodes: Vec<Redis>,
    sentinels: Vec<Sentinel>,
}

struct Sentinel {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sentinels {
    /// A master, `replicas` replicas in sync with it, and three sentinels that agree on them.
    pub fn start(replicas: usize) -> Sentinels {
        let master = Redis::start();
        let mut nodes = vec![];
        for _ in 0..replicas {
            nodes.push(Redis::start_with(Options {
                replica_of: Some(master.port),
                ..Options::default()
            }));
        }
        let sentinels = (0..3).map(|_| Sentinel::start(master.port)).collect();
        nodes.insert(0, master);
        let s = Sentinels { nodes, sentinels };
        s.wait_until_ready();
        s
    }

    /// The sentinels' `host:port`s, comma-separated (`--redis-sentinel-addrs`).
    pub fn addrs(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `redis-cli` against sentinel `i`.
    pub fn ask(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.sentinels[i].port.to_string()])
            .arg("--raw")
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// The port of the master, as the first sentinel that answers names it.
    pub fn master_port(&self) -> u16 {
        for i in 0..self.sentinels.len() {
            let a = self.ask(i, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]);
            if let Some(port) = a.lines().nth(1).and_then(|p| p.parse().ok()) {
                return port;
            }
        }
        panic!("no sentinel names a master");
    }

    /// The node that is master now.
    pub fn master(&self) -> &Redis {
        let port = self.master_port();
        self.nodes.iter().find(|n| n.port == port).expect("a node")
    }

    /// SIGKILLs the master; returns which node it was.
    pub fn kill_master(&mut self) -> usize {
        let port = self.master_port();
        let i = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a node");
        self.nodes[i].kill();
        i
    }

    /// Waits until the sentinels name a master other than the node on `old_port`.
    pub fn wait_for_failover(&self, old_port: u16) -> u16 {
        let mut now = old_port;
        eventually(
            || {
                now = self.master_port();
                now != old_port
            },
            || format!("the sentinels still name {old_port} the master"),
        );
        now
    }

    /// Starts node `i` again, as a replica of the current master, and waits until the
    /// sentinels could fail over to it.
    pub fn rejoin(&mut self, i: usize) {
        let master = self.master_port();
        self.nodes[i].restart_replicating(master);
        self.wait_until_ready();
    }

    /// Until every sentinel names the same master, knows the other two sentinels and sees every
    /// running replica healthy and in sync (so that a failover can happen).
    pub fn wait_until_ready(&self) {
        let took = eventually(
            || {
                let master = self.master_port();
                (0..self.sentinels.len()).all(|i| {
                    let info = self.ask(i, &["INFO", "sentinel"]);
                    let named = info.contains(&format!("status=ok,address=127.0.0.1:{master},"));
                    let peers = info.contains(",sentinels=3");
                    named && peers && self.healthy_replicas(i) == self.running() - 1
                })
            },
            || "the sentinels are not ready for a failover".into(),
        );
        eprintln!("sentinels ready after {took:?}");
    }

    fn running(&self) -> usize {
        self.nodes.iter().filter(|n| n.running()).count()
    }

    /// How many replicas sentinel `i` could promote: flags just `slave`, link up.
    fn healthy_replicas(&self, i: usize) -> usize {
        let raw = self.ask(i, &["SENTINEL", "REPLICAS", MASTER_NAME]);
        let lines: Vec<&str> = raw.lines().collect();
        let mut replicas: Vec<Vec<(&str, &str)>> = Vec::new();
        for pair in lines.chunks(2) {
            let [k, v] = pair else { break };
            if *k == "name" {
                replicas.push(Vec::new());
            }
            if let Some(r) = replicas.last_mut() {
                r.push((k, v));
            }
        }
        replicas
            .iter()
            .filter(|r| {
                r.contains(&("flags", "slave")) && r.contains(&("master-link-status", "ok"))
            })
            .count()
    }
}

impl Backing for Sentinels {
    fn server_flags(&self) -> Vec<String> {
        [
            "--store-type",
            "redis",
            "--redis-sentinel-addrs",
            &self.addrs(),
            "--redis-sentinel-master-name",
            MASTER_NAME,
            "--redis-allow-empty-password",
            "--redis-no-tls",
        ]
        .map(String::from)
        .to_vec()
    }
}

impl Sentinel {
    fn start(master_port: u16) -> Sentinel {
        let dir = tempfile::Builder::new()
            .prefix("irma-sentinel-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        // Sentinel rewrites its configuration file, so each has its own.
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 4000\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = crate::process::spawn(cmd).expect("redis-server --sentinel runs");
        let stdout = child.stdout.take().unwrap();
        crate::wait_for_line(&mut child, stdout, "+monitor master", None);
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }
}
