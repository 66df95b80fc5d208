//! The shared store: sessions in Redis, so any number of replicas can serve any session and a
//! replica that dies loses nothing.
//!
//! Two keys per session, with the same TTL (the guest's `keep_secs`), names as the reference
//! server has them (irma-server.md §4.1), under an optional prefix:
//!
//! | key | value |
//! |---|---|
//! | `token:<rt>` | the client token `ct` |
//! | `session:<ct>` | a summary line, `<version> [<PREVIOUS>>]<STATUS> <lapses-at-ms or -> <rt>\n`, then the record as the guest wrote it |
//!
//! Status polls read only the summary line (`GETRANGE`), never the record. Each key costs Redis
//! about 70 bytes of its own, so the summary shares the record's key (until December 2026 it
//! had a `status:<ct>` key of its own; replicas of either layout do not share a Redis).
//!
//! Every write is one Lua script that compares the version in the summary and writes the
//! session's keys, so two replicas racing on one session cannot both win (the loser reloads and
//! reruns its transition). Reads are plain `GET`/`GETRANGE` and never write. Status changes are
//! published on one channel, `<prefix>statusevents`, that every replica subscribes to.
//!
//! Work that must happen even if no request comes, committed by the same script:
//!
//! | key | value |
//! |---|---|
//! | `wakeups` | sorted set: client token → when to run `tick` on it (a timeout with a callback) |
//! | `outbox` | sorted set: delivery id → when it is due |
//! | `outbox:<id>` | the delivery (JSON: URL, body, attempts), kept a day at most |
//!
//! A replica claims due members by moving their score to the end of a lease, so a replica that
//! dies holding them loses nothing: they fall due again when the lease ends.
//!
//! In a Redis Cluster ([`Shards`]) a session's keys, and the sets and deliveries its writes
//! touch, carry its shard's hash tag (`session:{7}<ct>`, `wakeups{7}`, `outbox:{7}<id>`), so the
//! script still touches one slot; `token:<rt>` lives elsewhere and is written and extended
//! beside the script. Replicas claim due work shard by shard.
//!
//! The master is whatever [`Link`] says: one address, the one the sentinels name, or the
//! cluster. With Sentinel or a cluster a request that meets a failover waits for the new master.
//!
//! With `--redis-encryption-key-file`, `session:<ct>` and `outbox:<id>` values (everything that
//! holds attribute values, nonces, requests or results) are sealed ([`sealing`]). What stays
//! plain holds nothing personal and is what the hot paths read without the guest: the summary
//! line of `session:<ct>` (version, statuses, lapse time, requestor token), `token:<rt>`, the `wakeups` and `outbox`
//! sets (tokens and times), status events (client token and status) and guest components.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use tokio::sync::broadcast;

use super::redis_link::{Conn, Link};
use super::sealing::{self, Sealer};
use super::shards::Shards;
use super::{
    Delivery, Loaded, Saved, SessionStore, StatusEvent, StoreError, Summary, Token, Write,
    status_from_name, status_name,
};

/// How to reach Redis (from the `--redis-*` flags, validated).
#[derive(Clone)]
pub struct RedisOptions {
    pub endpoint: Endpoint,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub tls: Tls,
    /// Prepended to every key and the channel (`<username>:` with `--redis-acl-use-key-prefixes`).
    pub key_prefix: String,
    /// `--redis-encryption-key-file`: the first seals records and outbox entries, all open them.
    pub encryption_keys: Vec<[u8; 32]>,
    /// Every session write waits until this many replicas have it (`WAIT`); 0: no waiting.
    pub wait_replicas: u32,
    /// How long a write waits for its replicas before the request fails.
    pub wait_timeout_ms: u64,
}

/// Where the master is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `--redis-addr host:port`.
    Addr { host: String, port: u16 },
    /// `--redis-sentinel-addrs`: whichever node these sentinels name as the master.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master_name: String,
        username: Option<String>,
        password: Option<String>,
    },
    /// `--redis-cluster-addrs`: a Redis Cluster, found from these seed nodes.
    Cluster { nodes: Vec<(String, u16)> },
}

impl RedisOptions {
    /// Where the master is, for logs: `host:port`, or the master name and the sentinels.
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Endpoint::Addr { host, port } => format!("{host}:{port}"),
            Endpoint::Sentinel {
                sentinels,
                master_name,
                ..
            } => format!(
                "{master_name} via sentinels {}",
                sentinels
                    .iter()
                    .map(|(h, p)| format!("{h}:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Endpoint::Cluster { nodes } => format!(
                "cluster via {}",
                nodes
                    .iter()
                    .map(|(h, p)| format!("{h}:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// Plain TCP to one address, no password: for tests and tools.
    pub fn plain(host: &str, port: u16) -> RedisOptions {
        RedisOptions {
            endpoint: Endpoint::Addr {
                host: host.to_owned(),
                port,
            },
            username: None,
            password: None,
            db: 0,
            tls: Tls::Off,
            key_prefix: String::new(),
            encryption_keys: Vec::new(),
            wait_replicas: 0,
            wait_timeout_ms: 5000,
        }
    }
}

/// TLS towards Redis.
#[derive(Clone)]
pub enum Tls {
    /// `--redis-no-tls`.
    Off,
    /// The system's root certificates.
    SystemRoots,
    /// This PEM certificate is the only trusted root; optionally a client certificate and key.
    Custom {
        root_pem: Vec<u8>,
        client: Option<(Vec<u8>, Vec<u8>)>,
    },
}

// The password never reaches a log line.
impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("endpoint", &self.endpoint_name())
            .field("username", &self.username)
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("wait_replicas", &self.wait_replicas)
            .field(
                "encryption_keys",
                &self
                    .encryption_keys
                    .iter()
                    .map(sealing::key_name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Compare-and-swap. KEYS: session, wakeups, outbox, then `outbox:<id>` of each delivery,
/// then (on one node; in a cluster it lives in another slot) `token:<rt>`. ARGV: expected
/// version, the new value (its summary line carries the next version, computed by the caller:
/// Lua's numbers are doubles), TTL in ms, ct, wake-up time in ms or `-`, the number of
/// deliveries, then id, due time (ms) and payload of each. Returns 1 if written, 0 if the
/// version moved on or the session is gone.
const SAVE: &str = r#"
local cur = redis.call('GETRANGE', KEYS[1], 0, 23)
local v = string.match(cur, '^(%d+) ')
if v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if ARGV[5] == '-' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
end
local n = tonumber(ARGV[6])
for i = 1, n do
  local at = 7 + 3 * (i - 1)
  redis.call('SET', KEYS[3 + i], ARGV[at + 2], 'PX', 86400000)
  redis.call('ZADD', KEYS[3], ARGV[at + 1], ARGV[at])
end
if #KEYS > 3 + n then
  redis.call('PEXPIRE', KEYS[#KEYS], ARGV[3])
end
return 1
"#;

/// Leases what is due in a sorted set. KEYS: the set. ARGV: now, lease end, how many at most.
/// Returns the members leased.
const CLAIM: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], m)
end
return due
"#;

/// The summary line is at most this long (version, two statuses, a time, the requestor token):
/// status polls read this much of a session's value.
const SUMMARY_MAX: usize = 128;

/// How long an undelivered callback is kept at most.
const OUTBOX_KEEP_MS: u64 = 86_400_000;

/// How long a request waits for Sentinel to name a new master before it fails.
const FAILOVER_PATIENCE: Duration = Duration::from_secs(15);

pub struct RedisStore {
    link: Arc<Link>,
    save: Script,
    claim: Script,
    prefix: String,
    /// `<prefix>statusevents`.
    status_channel: String,
    events: broadcast::Sender<StatusEvent>,
    guest_announcements: broadcast::Sender<String>,
    client_tokens: TokenCache,
    /// With `--redis-encryption-key-file`: seals `session:<ct>` and `outbox:<id>` values.
    sealer: Option<Sealer>,
    /// One shard, or (in a cluster) [`super::shards::CLUSTER_SHARDS`] with their hash tags.
    shards: Shards,
    /// `WAIT <replicas> <ms>` after each session write, unless 0 replicas.
    wait_replicas: u32,
    wait_timeout_ms: u64,
}

/// Requestor token → client token, remembered: the pair never changes while a session lives
/// (both are random and unique), so a requestor's status poll costs one read, not two. Two
/// generations bound its size: when the young one is full the old one is dropped.
#[derive(Default)]
struct TokenCache {
    generations: std::sync::Mutex<[std::collections::HashMap<String, String>; 2]>,
}

impl TokenCache {
    const GENERATION: usize = 50_000;

    fn get(&self, rt: &str) -> Option<String> {
        let g = self.generations.lock().expect("not poisoned");
        g[0].get(rt).or_else(|| g[1].get(rt)).cloned()
    }

    fn put(&self, rt: &str, ct: &str) {
        let mut g = self.generations.lock().expect("not poisoned");
        if g[0].len() >= Self::GENERATION {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(rt.to_owned(), ct.to_owned());
    }
}

/// Whether a write reached as many replicas as asked.
struct Replicated(bool);

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects (a `PING` must succeed, as with `irma server`) and starts following the status
    /// channel.
    pub async fn connect(options: &RedisOptions) -> anyhow::Result<RedisStore> {
        let link = Link::connect(options).await?;
        let events = broadcast::channel(1024).0;
        let guest_announcements = broadcast::channel(16).0;
        tokio::spawn(follow_channels(
            link.clone(),
            options.key_prefix.clone(),
            events.clone(),
            guest_announcements.clone(),
        ));
        Ok(RedisStore {
            link,
            save: Script::new(SAVE),
            claim: Script::new(CLAIM),
            prefix: options.key_prefix.clone(),
            status_channel: format!("{}statusevents", options.key_prefix),
            events,
            guest_announcements,
            client_tokens: TokenCache::default(),
            sealer: (!options.encryption_keys.is_empty())
                .then(|| Sealer::new(&options.encryption_keys)),
            shards: match options.endpoint {
                Endpoint::Cluster { .. } => Shards::cluster(),
                _ => Shards::single(),
            },
            wait_replicas: options.wait_replicas,
            wait_timeout_ms: options.wait_timeout_ms,
        })
    }

    /// One `PING` on the current master (or a cluster node), without waiting for a failover.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.link.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The link to the master, for other users of this Redis (the guest registry).
    pub fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    /// Runs `op` on the master. With Sentinel or a cluster, an error a failover explains waits
    /// (up to [`FAILOVER_PATIENCE`]) for a new master and runs `op` again there: a compare-and-swap whose first try did take effect then reads as a conflict,
    /// and the transition runs again on what was committed.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // The clock is read only once something fails: the hot path pays nothing for this.
        let mut deadline = None;
        loop {
            let seen = self.link.seen();
            match op(self.link.conn()).await {
                Ok(v) => return Ok(v),
                Err(e) if self.link.failover_may_help(&e) => {
                    tracing::debug!("Redis command failed, waiting for a new master: {e}");
                    let until = *deadline
                        .get_or_insert_with(|| tokio::time::Instant::now() + FAILOVER_PATIENCE);
                    if !self.link.recovered_since(seen, until).await {
                        return Err(unavailable(e));
                    }
                    crate::metrics::store_retry();
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
    }

    /// After a session write on `conn`: waits until enough replicas have it, if asked to.
    async fn replicated(&self, conn: &mut Conn) -> redis::RedisResult<Replicated> {
        if self.wait_replicas == 0 {
            return Ok(Replicated(true));
        }
        let acked: u32 = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(self.wait_timeout_ms)
            .query_async(conn)
            .await?;
        Ok(Replicated(acked >= self.wait_replicas))
    }

    /// The error for a write that too few replicas acknowledged in time.
    fn not_replicated(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "the write was not acknowledged by {} Redis replica(s) within {} ms",
            self.wait_replicas, self.wait_timeout_ms
        ))
    }

    /// Whether this is a Redis Cluster (keys that go together need one hash tag).
    pub fn clustered(&self) -> bool {
        self.shards.clustered()
    }

    /// The key prefix (`<username>:` or empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Guest versions announced on `<prefix>guests` (their hashes).
    pub fn guest_announcements(&self) -> broadcast::Receiver<String> {
        self.guest_announcements.subscribe()
    }

    /// `<prefix>token:<rt>`: found by the requestor token alone, so in a cluster it lives in
    /// its own slot.
    fn token_key(&self, rt: &str) -> String {
        format!("{}token:{rt}", self.prefix)
    }

    /// `<prefix>session:<tag><ct>`: carries its shard's tag, as the shard's sets do.
    fn session_key(&self, ct: &str) -> String {
        format!("{}session:{}{ct}", self.prefix, self.shards.tag_of(ct))
    }

    /// `<prefix><name><tag>`: a shard's `wakeups` or `outbox` set.
    fn set_key(&self, name: &str, tag: &str) -> String {
        format!("{}{name}{tag}", self.prefix)
    }

    /// `<prefix>outbox:<tag><id>`: a delivery, beside its session.
    fn delivery_key(&self, tag: &str, id: &str) -> String {
        format!("{}outbox:{tag}{id}", self.prefix)
    }

    /// The client token a requestor token stands for. A remembered pair may outlive its
    /// session: the session's own keys are then gone, which is what callers look at next.
    async fn client_token(&self, token: Token<'_>) -> Result<Option<String>, StoreError> {
        let rt = match token {
            Token::Client(ct) => return Ok(Some(ct.to_owned())),
            Token::Requestor(rt) => rt,
        };
        if let Some(ct) = self.client_tokens.get(rt) {
            return Ok(Some(ct));
        }
        let key = &self.token_key(rt);
        let ct: Option<String> = self.run(|mut c| async move { c.get(key).await }).await?;
        if let Some(ct) = &ct {
            self.client_tokens.put(rt, ct);
        }
        Ok(ct)
    }
}

/// Forwards what any replica publishes to this process's subscribers, for as long as the
/// process runs; reconnects after Redis goes away. Two channels: `<prefix>statusevents`
/// (session status changes) and `<prefix>guests` (a new active guest version). Messages
/// published while the subscription is down are lost: SSE streams re-read the summary and the
/// guest watcher re-reads the active version every second for that.
async fn follow_channels(
    link: Arc<Link>,
    prefix: String,
    events: broadcast::Sender<StatusEvent>,
    guests: broadcast::Sender<String>,
) {
    let status_channel = format!("{prefix}statusevents");
    let guest_channel = format!("{prefix}guests");
    let mut master = link.generation();
    loop {
        master.borrow_and_update();
        match link.client().get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub
                .subscribe(&[status_channel.as_str(), guest_channel.as_str()])
                .await
            {
                Ok(()) => {
                    tracing::debug!("following status events and guest announcements");
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let msg = tokio::select! {
                            m = messages.next() => m,
                            // A new master: subscribe there (the old one may linger as a
                            // replica, or half-dead).
                            _ = master.changed() => None,
                        };
                        let Some(msg) = msg else { break };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        if msg.get_channel_name() == guest_channel {
                            let _ = guests.send(payload);
                        } else if let Some(event) = parse_event(&payload) {
                            let _ = events.send(event);
                        }
                    }
                    tracing::warn!("Redis subscription lost; resubscribing");
                }
                Err(e) => tracing::warn!("cannot subscribe to Redis channels: {e}"),
            },
            Err(e) => tracing::debug!("cannot connect for Redis channels: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn parse_event(payload: &str) -> Option<StatusEvent> {
    let (ct, status) = payload.split_once(' ')?;
    Some(StatusEvent {
        ct: ct.to_owned(),
        status: status_from_name(status)?,
    })
}

/// `"[<PREVIOUS>>]<STATUS> <lapse>"`, the part of the status value after the version, e.g.
/// `PAIRING>CONNECTED 1700000000000`.
fn summary_value(s: &Summary) -> String {
    let previous = match s.previous {
        Some(p) => format!("{}>", status_name(p)),
        None => String::new(),
    };
    match s.lapses_at_ms {
        Some(t) => format!("{previous}{} {t}", status_name(s.status)),
        None => format!("{previous}{} -", status_name(s.status)),
    }
}

/// Tokens as the guest makes them (20 letters and digits), with room to spare.
fn plain_token(t: &str) -> bool {
    (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The summary line at the start of a session's value (without its newline), and where the
/// record starts.
fn summary_line(value: &[u8]) -> Result<(&str, usize), StoreError> {
    // Nothing of the value in the error: it may hold tokens.
    let corrupt = || {
        StoreError::Corrupt(
            "a session value without a summary line (from a replica of the layout before \
             December 2026?)"
                .into(),
        )
    };
    let end = value[..value.len().min(SUMMARY_MAX)]
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(corrupt)?;
    let line = std::str::from_utf8(&value[..end]).map_err(|_| corrupt())?;
    Ok((line, end + 1))
}

/// Parses `<version> [<PREVIOUS>>]<STATUS> <lapse> <rt>`.
fn parse_status(value: &str) -> Result<(u64, Summary, String), StoreError> {
    // Nothing of the value in the error (it reaches logs and answers): it holds a token.
    let corrupt = || StoreError::Corrupt("an unreadable session summary line".into());
    let mut parts = value.split(' ');
    let (Some(v), Some(s), Some(l), Some(rt), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(corrupt());
    };
    // Digits only, as the compare-and-swap script compares them (no `+`, no leading zero).
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || (v.len() > 1 && v.starts_with('0'))
    {
        return Err(corrupt());
    }
    let version = v.parse().map_err(|_| corrupt())?;
    let (previous, status) = match s.split_once('>') {
        Some((p, s)) => (Some(status_from_name(p).ok_or_else(corrupt)?), s),
        None => (None, s),
    };
    let status = status_from_name(status).ok_or_else(corrupt)?;
    let lapses_at_ms = match l {
        "-" => None,
        l => Some(l.parse().map_err(|_| corrupt())?),
    };
    Ok((
        version,
        Summary {
            status,
            previous,
            lapses_at_ms,
        },
        rt.to_owned(),
    ))
}

fn ttl_ms(keep_secs: u32) -> u64 {
    (keep_secs.max(1) as u64) * 1000
}

impl SessionStore for RedisStore {
    async fn create(&self, rt: &str, ct: &str, write: Write) -> Result<(), StoreError> {
        let ttl = ttl_ms(write.keep_secs);
        let expiring = || redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl));
        if !plain_token(rt) || !plain_token(ct) {
            // They go into the summary line, which a space or newline would break.
            return Err(StoreError::Corrupt(
                "the guest made a token that is not 1 to 64 letters and digits".into(),
            ));
        }
        let key = self.session_key(ct);
        let value = self.session_value(&key, 1, &write.summary, rt, write.record);
        let tag = self.shards.tag_of(ct);
        // The session's keys and its shard's sets: one slot, one transaction.
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some(t) = write.wake_at_ms {
            pipe.zadd(self.set_key("wakeups", &tag), ct, t).ignore();
        }
        for d in &write.outbox {
            self.add_delivery(&mut pipe, d, d.created_ms);
        }
        pipe.set_options(key, value, expiring()).ignore();
        // The token: in the same transaction on one node; in a cluster afterwards (another
        // slot). If that fails the requestor never learns of the session, which expires.
        let mut token = redis::cmd("SET");
        token.arg(self.token_key(rt)).arg(ct).arg("PX").arg(ttl);
        if !self.shards.clustered() {
            pipe.add_command(token.clone()).ignore();
        }
        let (pipe, token) = (&pipe, &token);
        let replicated = self
            .run(|mut c| async move {
                pipe.exec_async(&mut c).await?;
                self.replicated(&mut c).await
            })
            .await?;
        if !replicated.0 {
            return Err(self.not_replicated());
        }
        if self.shards.clustered() {
            self.run(|mut c| async move { token.exec_async(&mut c).await })
                .await?;
        }
        self.client_tokens.put(rt, ct);
        Ok(())
    }

    async fn load(&self, token: Token<'_>) -> Result<Option<Loaded>, StoreError> {
        let Some(ct) = self.client_token(token).await? else {
            return Ok(None);
        };
        let key = &self.session_key(&ct);
        let value: Option<Vec<u8>> = self.run(|mut c| async move { c.get(key).await }).await?;
        let Some(mut value) = value else {
            return Ok(None);
        };
        let (line, record_at) = summary_line(&value)?;
        let (version, summary, rt) = parse_status(line)?;
        value.drain(..record_at);
        let record = self
            .open(key, value)
            .map_err(|e| StoreError::Corrupt(format!("session record: {e}")))?;
        Ok(Some(Loaded {
            ct,
            rt,
            record,
            summary,
            version,
        }))
    }

    async fn save(&self, loaded: &Loaded, write: Write) -> Result<Saved, StoreError> {
        let tag = self.shards.tag_of(&loaded.ct);
        let mut keys = vec![
            self.session_key(&loaded.ct),
            self.set_key("wakeups", &tag),
            self.set_key("outbox", &tag),
        ];
        keys.extend(
            write
                .outbox
                .iter()
                .map(|d| self.delivery_key(&self.shards.tag_of(&d.ct), &d.id)),
        );
        let token_key = self.token_key(&loaded.rt);
        if !self.shards.clustered() {
            keys.push(token_key.clone());
        }
        let mut args: Vec<Vec<u8>> = vec![
            loaded.version.to_string().into_bytes(),
            self.session_value(
                &keys[0],
                loaded.version + 1,
                &write.summary,
                &loaded.rt,
                write.record,
            ),
            ttl_ms(write.keep_secs).to_string().into_bytes(),
            loaded.ct.clone().into_bytes(),
            write
                .wake_at_ms
                .map_or("-".to_owned(), |t| t.to_string())
                .into_bytes(),
            write.outbox.len().to_string().into_bytes(),
        ];
        for d in &write.outbox {
            args.push(d.id.clone().into_bytes());
            args.push(d.created_ms.to_string().into_bytes());
            args.push(self.delivery_value(d));
        }
        let (keys, args) = (&keys, &args);
        let (written, replicated) = self
            .run(|mut c| async move {
                let mut save = self.save.prepare_invoke();
                for k in keys {
                    save.key(k);
                }
                for a in args {
                    save.arg(a);
                }
                let written: i64 = save.invoke_async(&mut c).await?;
                let replicated = match written {
                    1 => self.replicated(&mut c).await?,
                    _ => Replicated(true),
                };
                Ok((written, replicated))
            })
            .await?;
        if !replicated.0 {
            return Err(self.not_replicated());
        }
        if written == 1 && self.shards.clustered() {
            // The requestor token lives as long as the session (another slot: not atomic; if
            // this fails, the session stays reachable by its client token until it would
            // have expired anyway).
            let (key, ttl) = (&token_key, ttl_ms(write.keep_secs));
            if let Err(e) = self
                .run(|mut c| async move { c.pexpire::<_, ()>(key, ttl as i64).await })
                .await
            {
                tracing::warn!("cannot extend a requestor token: {e}");
            }
        }
        Ok(if written == 1 {
            Saved::Ok
        } else {
            Saved::Conflict
        })
    }

    async fn summary(&self, token: Token<'_>) -> Result<Option<(String, Summary)>, StoreError> {
        let Some(ct) = self.client_token(token).await? else {
            return Ok(None);
        };
        let key = &self.session_key(&ct);
        let head: Vec<u8> = self
            .run(|mut c| async move { c.getrange(key, 0, SUMMARY_MAX as isize - 1).await })
            .await?;
        if head.is_empty() {
            return Ok(None);
        }
        Ok(Some((ct, parse_status(summary_line(&head)?.0)?.1)))
    }

    async fn announce(&self, event: StatusEvent) {
        let message = format!("{} {}", event.ct, status_name(event.status));
        // One try: subscribers re-read summaries, so a lost announcement only delays them.
        let sent: Result<i64, _> = self
            .link
            .conn()
            .publish(&self.status_channel, message)
            .await;
        if let Err(e) = sent {
            // Subscribers re-read the summary periodically, so they still learn of it.
            tracing::warn!("cannot publish a status event: {e}");
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.events.subscribe()
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let due = self
            .claim_due("outbox", now_ms, lease_until_ms, max)
            .await?;
        let mut out = Vec::new();
        for (tag, id) in due {
            let key = &self.delivery_key(&tag, &id);
            let payload: Option<Vec<u8>> =
                self.run(|mut c| async move { c.get(key).await }).await?;
            let Some(payload) = payload else {
                // Expired: nothing can be delivered; forget it.
                self.forget_delivery(&tag, &id).await?;
                continue;
            };
            let plain = match self.open(key, payload) {
                Ok(p) => p,
                Err(e) => {
                    // Perhaps a replica with the right key can: leave it (it falls due again
                    // after the lease, and expires with its TTL).
                    tracing::error!("outbox entry that cannot be opened: {e}");
                    continue;
                }
            };
            match serde_json::from_slice::<Delivery>(&plain) {
                Ok(d) => out.push(d),
                Err(e) => {
                    tracing::error!("unreadable outbox entry: {e}");
                    self.forget_delivery(&tag, &id).await?;
                }
            }
        }
        Ok(out)
    }

    async fn finish_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.forget_delivery(&self.shards.tag_of(&delivery.ct), &delivery.id)
            .await
    }

    async fn retry_delivery(&self, delivery: &Delivery, at_ms: i64) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.add_delivery(&mut pipe, delivery, at_ms);
        let pipe = &pipe;
        self.run(|mut c| async move { pipe.exec_async(&mut c).await })
            .await
    }

    async fn claim_wakeups(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let due = self
            .claim_due("wakeups", now_ms, lease_until_ms, max)
            .await?;
        Ok(due.into_iter().map(|(_, ct)| ct).collect())
    }

    async fn drop_wakeup(&self, ct: &str) -> Result<(), StoreError> {
        let key = &self.set_key("wakeups", &self.shards.tag_of(ct));
        let _: i64 = self
            .run(|mut c| async move { c.zrem(key, ct).await })
            .await?;
        Ok(())
    }

    async fn pending_deliveries(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        // One shard on one node; in a cluster a shard at a time (a scrape every few seconds).
        for tag in self.shards.all_tags() {
            let set = &self.set_key("outbox", &tag);
            let n: usize = self.run(|mut c| async move { c.zcard(set).await }).await?;
            total += n;
        }
        Ok(total)
    }
}

impl RedisStore {
    /// Removes delivery `id` of shard `tag` from the outbox.
    async fn forget_delivery(&self, tag: &str, id: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrem(self.set_key("outbox", tag), id)
            .ignore()
            .del(self.delivery_key(tag, id))
            .ignore();
        let pipe = &pipe;
        self.run(|mut c| async move { pipe.exec_async(&mut c).await })
            .await
    }

    /// What `session:<ct>` (named `key`) holds: the summary line,
    /// `<version> [<PREVIOUS>>]<STATUS> <lapse> <rt>` and a newline, then the record, sealed if
    /// keys are set.
    fn session_value(
        &self,
        key: &str,
        version: u64,
        summary: &Summary,
        rt: &str,
        record: Vec<u8>,
    ) -> Vec<u8> {
        let mut value = format!("{version} {} {rt}\n", summary_value(summary)).into_bytes();
        value.extend(self.seal(key, record));
        value
    }

    fn seal(&self, name: &str, plain: Vec<u8>) -> Vec<u8> {
        sealing::seal(self.sealer.as_ref(), name, plain)
    }

    fn open(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>, sealing::Unsealable> {
        sealing::open(self.sealer.as_ref(), name, value)
    }

    /// What `outbox:<id>` holds: the delivery as JSON, sealed if keys are set.
    fn delivery_value(&self, d: &Delivery) -> Vec<u8> {
        let json = serde_json::to_vec(d).expect("serializes");
        self.seal(&self.delivery_key(&self.shards.tag_of(&d.ct), &d.id), json)
    }

    /// Adds `d` to the outbox, due at `at_ms`.
    fn add_delivery(&self, pipe: &mut redis::Pipeline, d: &Delivery, at_ms: i64) {
        let tag = self.shards.tag_of(&d.ct);
        pipe.set_options(
            self.delivery_key(&tag, &d.id),
            self.delivery_value(d),
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(OUTBOX_KEEP_MS)),
        )
        .ignore()
        .zadd(self.set_key("outbox", &tag), &d.id, at_ms)
        .ignore();
    }

    /// Leases what is due in the `name` set of every shard (at most `max` in all), starting
    /// at a shard that moves on with every call so that none waits behind the others.
    async fn claim_due(
        &self,
        name: &str,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for tag in self.shards.tags_from_next() {
            if out.len() >= max {
                break;
            }
            let (set, left) = (&self.set_key(name, &tag), max - out.len());
            let due: Vec<String> = self
                .run(|mut c| async move {
                    self.claim
                        .key(set)
                        .arg(now_ms)
                        .arg(lease_until_ms)
                        .arg(left)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            out.extend(due.into_iter().map(|m| (tag.clone(), m)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::SessionStatus;

    #[test]
    fn status_values_round_trip_and_bad_ones_are_refused() {
        let s = Summary::first(SessionStatus::Pairing, Some(1_700_000_000_123))
            .then(SessionStatus::Connected, Some(1_700_000_000_456));
        let v = format!("7 {} {}", summary_value(&s), "R".repeat(20));
        assert_eq!(
            v,
            format!("7 PAIRING>CONNECTED 1700000000456 {}", "R".repeat(20))
        );
        assert_eq!(parse_status(&v).unwrap(), (7, s, "R".repeat(20)));
        let first = Summary::first(SessionStatus::Initialized, Some(5));
        assert_eq!(summary_value(&first), "INITIALIZED 5");
        assert_eq!(
            parse_status("1 INITIALIZED 5 rt").unwrap(),
            (1, first, "rt".into())
        );
        let done = s.then(SessionStatus::Done, None);
        assert_eq!(
            parse_status(&format!("2 {} rt", summary_value(&done))).unwrap(),
            (2, done, "rt".into())
        );
        for bad in [
            "",
            "1",
            "x DONE - rt",
            "1 BOGUS - rt",
            "1 BOGUS>DONE - rt",
            "1 DONE> - rt",
            "1 DONE x rt",
            "1 DONE - rt more",
            "+1 DONE - rt",
            "01 DONE - rt",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_event("ct DONE").map(|e| e.status),
            Some(SessionStatus::Done)
        );
        assert!(parse_event("ct").is_none());
    }

    #[test]
    fn the_summary_line_is_found_only_where_polls_read() {
        let value = b"3 DONE - rt\n\x00SL1sealed record\nwith newlines";
        assert_eq!(summary_line(value).unwrap(), ("3 DONE - rt", 12));
        // A value of the old layout (a bare JSON record), or a line past what polls read.
        assert!(summary_line(br#"{"schema":1,"rt":"x"}"#).is_err());
        let mut long = vec![b'1'; SUMMARY_MAX];
        long.push(b'\n');
        assert!(summary_line(&long).is_err());
        assert!(summary_line(b"").is_err());
        // What may go into it as tokens.
        assert!(plain_token("T6CoGdu2YHe2Hh67BPjd"));
        for bad in ["", "a b", "a\nb", "ä", &"x".repeat(65)] {
            assert!(!plain_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_token_cache_is_bounded_by_two_generations() {
        let c = TokenCache::default();
        c.put("first", "ct0");
        for i in 0..TokenCache::GENERATION {
            c.put(&format!("rt{i}"), "ct");
        }
        assert_eq!(
            c.get("first").as_deref(),
            Some("ct0"),
            "in the old generation"
        );
        for i in 0..TokenCache::GENERATION {
            c.put(&format!("again{i}"), "ct");
        }
        assert_eq!(c.get("first"), None, "dropped with the old generation");
        let g = c.generations.lock().unwrap();
        assert!(g[0].len() + g[1].len() <= 2 * TokenCache::GENERATION);
    }
}
