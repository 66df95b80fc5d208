//! The connection to Redis: one fixed address (`--redis-addr`); whichever node Redis Sentinel
//! says is the master (`--redis-sentinel-addrs`), followed across failovers; or a Redis Cluster
//! (`--redis-cluster-addrs`), whose client follows slots, redirections and failovers itself.
//!
//! With Sentinel, a replica asks the sentinels in turn for the master's address and checks
//! with `ROLE` that the node agrees. It looks again when a sentinel announces `+switch-master`,
//! when a command fails in a way a failover explains (connection lost or refused, `READONLY`
//! from a demoted master), and every second, so a missed announcement costs at most a second.
//! A new master gets a new connection; everything that holds a subscription watches
//! [`Link::generation`] and subscribes again there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, ServerErrorKind, Value,
};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::redis::{Endpoint, RedisOptions, Tls};

/// Redis errors give a 500 at once rather than after long retries; the connection manager
/// reconnects by itself on the next command, so service resumes when Redis is back.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a request waits before it tries a cluster again after a failover error.
const CLUSTER_RETRY: Duration = Duration::from_millis(250);
/// How often the sentinels are asked even if nothing seems wrong.
const RECHECK: Duration = Duration::from_secs(1);

/// A connection to the master, or to the whole cluster.
#[derive(Clone)]
pub enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// One master (or cluster), as connected to.
struct Master {
    /// `host:port`, as the sentinels name it (`cluster` for a cluster).
    addr: String,
    /// For subscriptions: the master, or each seed node of a cluster in turn (a message
    /// published on any node of a cluster reaches the subscribers of every node).
    clients: Vec<Client>,
    conn: Conn,
}

pub struct Link {
    options: RedisOptions,
    master: RwLock<Arc<Master>>,
    /// Which of a cluster's seed nodes the next subscription goes to.
    next_client: AtomicUsize,
    /// Bumped on every switch to a new master.
    generation: watch::Sender<u64>,
    /// Something failed: ask the sentinels now.
    suspect: Notify,
}

impl Link {
    /// Connects to the master (a `PING` must succeed, as with `irma server`); with Sentinel,
    /// starts following failovers.
    pub async fn connect(options: &RedisOptions) -> anyhow::Result<Arc<Link>> {
        let master = match &options.endpoint {
            Endpoint::Addr { host, port } => Master::connect(options, host, *port).await,
            Endpoint::Sentinel { .. } => match discover(options).await {
                Ok((host, port)) => Master::connect(options, &host, port).await,
                Err(e) => Err(e),
            },
            Endpoint::Cluster { nodes } => Master::cluster(options, nodes).await,
        }
        .map_err(|e| anyhow::anyhow!("failed to connect to Redis: {e}"))?;
        tracing::info!(master = %master.addr, "connected to Redis");
        let link = Arc::new(Link {
            options: options.clone(),
            master: RwLock::new(Arc::new(master)),
            next_client: AtomicUsize::new(0),
            generation: watch::channel(0).0,
            suspect: Notify::new(),
        });
        if let Endpoint::Sentinel { .. } = &options.endpoint {
            tokio::spawn(follow_failovers(link.clone()));
            tokio::spawn(listen_for_switches(link.clone()));
        }
        Ok(link)
    }

    fn master(&self) -> Arc<Master> {
        self.master.read().expect("not poisoned").clone()
    }

    /// A (multiplexed) connection to the current master, or to the cluster.
    pub fn conn(&self) -> Conn {
        self.master().conn.clone()
    }

    /// A client for subscriptions: the current master, or the next seed node of a cluster.
    pub fn client(&self) -> Client {
        let m = self.master();
        let i = self.next_client.fetch_add(1, Ordering::Relaxed);
        m.clients[i % m.clients.len()].clone()
    }

    /// Changes on every switch to a new master.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Whether a failed command may succeed after a failover (with Sentinel or a cluster, and
    /// an error a failover explains); with Sentinel, the sentinels are asked at once.
    pub fn failover_may_help(&self, e: &RedisError) -> bool {
        let explained = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || matches!(
                e.code(),
                Some("READONLY" | "LOADING" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN")
            );
        match self.options.endpoint {
            Endpoint::Addr { .. } => false,
            Endpoint::Sentinel { .. } => {
                if explained {
                    self.suspect.notify_one();
                }
                explained
            }
            // A redirection the client did not follow (inside a transaction, which then did
            // not run at all) is over once it has refreshed its slots.
            Endpoint::Cluster { .. } => {
                explained
                    || e.is_cluster_error()
                    || e.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort)
            }
        }
    }

    /// After an error a failover explains: with Sentinel, waits until the master changes from
    /// generation `seen`; in a cluster (whose client finds the new master itself) a moment.
    /// Says whether to try again, which is never after `deadline`.
    pub async fn recovered_since(&self, seen: u64, deadline: Instant) -> bool {
        if let Endpoint::Cluster { .. } = self.options.endpoint {
            tokio::time::sleep_until(deadline.min(Instant::now() + CLUSTER_RETRY)).await;
            return Instant::now() < deadline;
        }
        let mut g = self.generation();
        tokio::time::timeout_at(deadline, g.wait_for(|&now| now != seen))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The generation now, for [`Link::switched_since`].
    pub fn seen(&self) -> u64 {
        *self.generation.borrow()
    }
}

impl Master {
    async fn connect(o: &RedisOptions, host: &str, port: u16) -> anyhow::Result<Master> {
        let client = client(
            o,
            host,
            port,
            o.username.as_deref(),
            o.password.as_deref(),
            o.db,
        )?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let mut conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Master {
            addr: format!("{host}:{port}"),
            clients: vec![client],
            conn: Conn::Node(conn),
        })
    }

    /// A cluster, from its seed nodes: the client learns the slots and follows them.
    async fn cluster(o: &RedisOptions, nodes: &[(String, u16)]) -> anyhow::Result<Master> {
        let clients = nodes
            .iter()
            .map(|(h, p)| client_for_node(o, h, *p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let infos: Vec<ConnectionInfo> = clients
            .iter()
            .map(|c| c.get_connection_info().clone())
            .collect();
        let mut builder = ClusterClientBuilder::new(infos)
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(6)
            .min_retry_wait(50)
            .max_retry_wait(1000);
        if let Some(u) = o.username.as_deref().filter(|u| !u.is_empty()) {
            builder = builder.username(u);
        }
        if let Some(p) = o.password.as_deref().filter(|p| !p.is_empty()) {
            builder = builder.password(p);
        }
        match &o.tls {
            Tls::Off => {}
            Tls::SystemRoots => builder = builder.tls(redis::TlsMode::Secure),
            Tls::Custom { root_pem, client } => {
                builder = builder
                    .tls(redis::TlsMode::Secure)
                    .certs(redis::TlsCertificates {
                        client_tls: client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                            client_cert: cert.clone(),
                            client_key: key.clone(),
                        }),
                        root_cert: Some(root_pem.clone()),
                    });
            }
        }
        let mut conn = builder.build()?.get_async_connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Master {
            addr: "cluster".into(),
            clients,
            conn: Conn::Cluster(conn),
        })
    }
}

/// A client for one Redis node (a master or a sentinel), with the TLS settings of the options.
pub fn client(
    o: &RedisOptions,
    host: &str,
    port: u16,
    username: Option<&str>,
    password: Option<&str>,
    db: i64,
) -> anyhow::Result<Client> {
    let addr = match o.tls {
        Tls::Off => ConnectionAddr::Tcp(host.to_owned(), port),
        _ => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        },
    };
    let mut settings = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(u) = username.filter(|u| !u.is_empty()) {
        settings = settings.set_username(u);
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        settings = settings.set_password(p);
    }
    let info: ConnectionInfo = addr.into_connection_info()?.set_redis_settings(settings);
    Ok(match &o.tls {
        Tls::Custom { root_pem, client } => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
                root_cert: Some(root_pem.clone()),
            },
        )?,
        _ => Client::open(info)?,
    })
}

/// A client for each sentinel.
fn sentinel_clients(o: &RedisOptions) -> Vec<(String, anyhow::Result<Client>)> {
    let Endpoint::Sentinel {
        sentinels,
        username,
        password,
        ..
    } = &o.endpoint
    else {
        return Vec::new();
    };
    sentinels
        .iter()
        .map(|(host, port)| {
            (
                format!("{host}:{port}"),
                client(o, host, *port, username.as_deref(), password.as_deref(), 0),
            )
        })
        .collect()
}

/// The master's address as the first sentinel that knows it says, confirmed by the node.
async fn discover(o: &RedisOptions) -> anyhow::Result<(String, u16)> {
    let Endpoint::Sentinel { master_name, .. } = &o.endpoint else {
        anyhow::bail!("not in Sentinel mode");
    };
    let mut errors = Vec::new();
    for (sentinel, client) in sentinel_clients(o) {
        match ask(o, client, master_name).await {
            Ok(addr) => return Ok(addr),
            Err(e) => errors.push(format!("sentinel {sentinel}: {e}")),
        }
    }
    anyhow::bail!(
        "no sentinel named a master {master_name:?}: {}",
        errors.join("; ")
    )
}

async fn ask(
    o: &RedisOptions,
    client: anyhow::Result<Client>,
    master_name: &str,
) -> anyhow::Result<(String, u16)> {
    let client = client?;
    let mut conn = tokio::time::timeout(
        CONNECTION_TIMEOUT,
        client.get_multiplexed_async_connection(),
    )
    .await??;
    let addr: Option<(String, u16)> = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(master_name)
            .query_async(&mut conn),
    )
    .await??;
    let Some((host, port)) = addr else {
        anyhow::bail!("does not monitor a master of that name");
    };
    // The node must agree: right after a failover a sentinel may still name the old master.
    let node = client_for_node(o, &host, port)?;
    let mut conn =
        tokio::time::timeout(CONNECTION_TIMEOUT, node.get_multiplexed_async_connection()).await??;
    let role: Vec<redis::Value> =
        tokio::time::timeout(RESPONSE_TIMEOUT, redis::cmd("ROLE").query_async(&mut conn)).await??;
    match role.first() {
        Some(redis::Value::BulkString(r)) if r == b"master" => Ok((host, port)),
        Some(redis::Value::SimpleString(r)) if r == "master" => Ok((host, port)),
        _ => anyhow::bail!("{host}:{port} is named master but is not one (yet)"),
    }
}

fn client_for_node(o: &RedisOptions, host: &str, port: u16) -> anyhow::Result<Client> {
    client(
        o,
        host,
        port,
        o.username.as_deref(),
        o.password.as_deref(),
        o.db,
    )
}

/// Asks the sentinels when told to, and every [`RECHECK`]; switches to a new master when they
/// name one.
async fn follow_failovers(link: Arc<Link>) {
    // During a failover every try fails for a while: one warning every few seconds is enough.
    let mut warned: Option<Instant> = None;
    loop {
        let _ = tokio::time::timeout(RECHECK, link.suspect.notified()).await;
        let (host, port) = match discover(&link.options).await {
            Ok(a) => a,
            Err(e) => {
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!("looking for the Redis master: {e}");
                    warned = Some(Instant::now());
                } else {
                    tracing::debug!("looking for the Redis master: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let addr = format!("{host}:{port}");
        if addr == link.master().addr {
            continue;
        }
        match Master::connect(&link.options, &host, port).await {
            Ok(m) => {
                *link.master.write().expect("not poisoned") = Arc::new(m);
                link.generation.send_modify(|g| *g += 1);
                tracing::warn!(master = %addr, "Redis master changed; switched to it");
            }
            Err(e) => tracing::warn!(master = %addr, "cannot connect to the new Redis master: {e}"),
        }
    }
}

/// Follows `+switch-master` on one sentinel at a time, so a failover is noticed at once.
async fn listen_for_switches(link: Arc<Link>) {
    loop {
        for (sentinel, client) in sentinel_clients(&link.options) {
            let Ok(client) = client else { continue };
            let Ok(mut pubsub) = client.get_async_pubsub().await else {
                continue;
            };
            if pubsub.subscribe("+switch-master").await.is_err() {
                continue;
            }
            tracing::debug!(%sentinel, "following +switch-master");
            let mut messages = pubsub.into_on_message();
            while messages.next().await.is_some() {
                link.suspect.notify_one();
            }
            // That sentinel went away; the failover may be under way.
            link.suspect.notify_one();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
