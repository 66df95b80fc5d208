//! Stateless mode as deployed: replicas of the real binary on one real `redis-server`, behind a
//! real `nginx` round-robin balancer whose URL the replicas give apps (`--url`), so app and
//! frontend traffic is spread over the replicas too.

use crate::balancer::Balancer;
use crate::redis::Redis;
use crate::{Schemes, Server, free_port};

/// What the replicas keep sessions in: one `redis-server`, or Redis with Sentinel.
pub trait Backing {
    /// The flags that point a server at it.
    fn server_flags(&self) -> Vec<String>;
}

impl Backing for Redis {
    fn server_flags(&self) -> Vec<String> {
        Redis::server_flags(self)
    }
}

pub struct Cluster<B: Backing = Redis> {
    pub redis: B,
    pub replicas: Vec<Server>,
    pub ports: Vec<u16>,
    /// The balancer, as a server to start sessions on.
    pub front: Server,
    /// Every replica's flags beyond the harness's own (Redis, `--url`, the caller's).
    pub flags: Vec<String>,
    /// Runs as long as the cluster.
    _balancer: Balancer,
}

impl<B: Backing> Cluster<B> {
    /// `n` replicas with `extra` flags on `redis`, and the balancer.
    pub fn start(n: usize, redis: B, extra: &[&str]) -> Cluster<B> {
        let lb_port = free_port();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut flags: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        flags.extend(redis.server_flags());
        flags.extend(["--url".into(), format!("http://127.0.0.1:{lb_port}")]);
        let mut c = Cluster {
            replicas: Vec::new(),
            _balancer: Balancer::start(lb_port, &ports),
            ports,
            front: Server::external(&format!("http://127.0.0.1:{lb_port}")),
            redis,
            flags,
        };
        for i in 0..n {
            c.replicas.push(c.replica(i));
        }
        c
    }

    /// Starts replica `i` (on its port, with the cluster's flags).
    pub fn replica(&self, i: usize) -> Server {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        Server::start_at(self.ports[i], Schemes::Demo, &flags)
    }

    /// Kills replica `i` (SIGKILL) and starts it again on the same port.
    pub fn restart(&mut self, i: usize) {
        self.replicas[i].kill();
        self.replicas[i] = self.replica(i);
    }

    /// The replicas' own URLs (not through the balancer).
    pub fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.url.clone()).collect()
    }
}
