//! The guest registry in Redis (stateless mode): guest versions by hash, which one is active,
//! which were active before (for rollback), the record-schema [`Ledger`], and what every
//! replica runs. Keys, under the store's prefix:
//!
//! | key | value |
//! |---|---|
//! | `guest:blob:<sha256>` | the component's bytes |
//! | `guest:active` | the hash every replica should run |
//! | `guest:history` | list of previously active hashes, newest first |
//! | `guest:writes` | hash: guest hash → the record schema it writes |
//! | `guest:schemas` | hash: record schema → `live`, or the Unix ms after which none remain |
//! | `guest:replicas` | hash: replica → JSON [`ReplicaStatus`], refreshed every second; a report older than 5 s is dropped when read |
//!
//! In a Redis Cluster the prefix is `{guest}:` instead of `guest:`: one hash tag, one slot, so
//! the registry's transactions work there too.
//!
//! `guest publish` and `guest rollback` check the guest as a replica would (compile, WIT world,
//! self-check, ledger) before they move `guest:active`, then announce it on `<prefix>guests`.
//! Replicas check again before they swap (they may run another host build) and report.

use std::sync::Arc;
use std::time::Duration;

use crate::store::redis_link::Conn;
use anyhow::{Context, Result, anyhow, bail};
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::guest_signing::{self, Trust};
use crate::guests::{Guests, Ledger, ReplicaStatus, readable, retire};
use crate::runtime::{Runtime, guest_hash};
use crate::session::now_ms;
use crate::store::redis::RedisStore;
use crate::store::redis_link::Link;

/// How long a replica's report lives without being refreshed.
const REPORT_SECS: u64 = 5;

#[derive(Clone)]
pub struct Registry {
    link: Arc<Link>,
    prefix: String,
}

impl Registry {
    pub fn new(store: &RedisStore) -> Registry {
        Registry {
            link: store.link(),
            // In a cluster every registry key carries one hash tag, so that the registry's
            // transactions touch one slot.
            prefix: if store.clustered() {
                format!("{}{{guest}}:", store.prefix())
            } else {
                format!("{}guest:", store.prefix())
            },
        }
    }

    /// A connection to the current master.
    fn conn(&self) -> Conn {
        self.link.conn()
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    pub async fn active(&self) -> Result<Option<String>> {
        Ok(self.conn().get(self.key("active")).await?)
    }

    pub async fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .clone()
            .get(self.key(&format!("blob:{hash}")))
            .await?)
    }

    pub async fn ledger(&self) -> Result<Ledger> {
        let raw: Vec<(u32, String)> = self.conn().hgetall(self.key("schemas")).await?;
        raw.into_iter()
            .map(|(schema, v)| {
                let until = match v.as_str() {
                    "live" => None,
                    t => Some(
                        t.parse()
                            .map_err(|_| anyhow!("ledger entry {schema}: {t}"))?,
                    ),
                };
                Ok((schema, until))
            })
            .collect()
    }

    async fn write_ledger(&self, ledger: &Ledger) -> Result<()> {
        let entries: Vec<(u32, String)> = ledger
            .iter()
            .map(|(s, u)| (*s, u.map_or("live".to_owned(), |t| t.to_string())))
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic().del(self.key("schemas")).ignore();
        if !entries.is_empty() {
            pipe.hset_multiple(self.key("schemas"), &entries).ignore();
        }
        pipe.exec_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The schema a registered guest writes.
    async fn writes(&self, hash: &str) -> Result<Option<u32>> {
        Ok(self.conn().hget(self.key("writes"), hash).await?)
    }

    /// Keeps a guest's bytes, the schema it writes and its signature, if it has one.
    async fn store(&self, bytes: &[u8], runtime: &Runtime, signature: Option<&str>) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.set(self.key(&format!("blob:{}", runtime.hash)), bytes)
            .ignore()
            .hset(self.key("writes"), &runtime.hash, runtime.schema_written)
            .ignore();
        if let Some(sig) = signature {
            pipe.set(self.key(&format!("sig:{}", runtime.hash)), sig.trim())
                .ignore();
        }
        pipe.exec_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The signature of the guest `hash` (base64), if it was published with one.
    pub async fn signature(&self, hash: &str) -> Result<Option<String>> {
        Ok(self.conn().get(self.key(&format!("sig:{hash}"))).await?)
    }

    /// A replica's first guest becomes the active one if the registry has none yet, so that a
    /// later rollback has something to return to.
    pub async fn bootstrap(&self, bytes: &[u8], runtime: &Runtime) -> Result<()> {
        self.store(bytes, runtime, None).await?;
        let mut conn = self.conn();
        let _: bool = conn
            .hset_nx(self.key("schemas"), runtime.schema_written, "live")
            .await?;
        let _: bool = conn.set_nx(self.key("active"), &runtime.hash).await?;
        Ok(())
    }

    /// Makes a checked guest the active one: refused if it cannot read what the store may
    /// hold. `rollback` pops the history instead of pushing the previous version onto it.
    /// Makes a guest checked by [`GuestCheck::check_owned`] the active one.
    pub async fn activate_checked(
        &self,
        bytes: &[u8],
        runtime: &Runtime,
        keep_ms: i64,
        signature: Option<&str>,
    ) -> Result<()> {
        self.activate(bytes, runtime, keep_ms, false, signature)
            .await
    }

    async fn activate(
        &self,
        bytes: &[u8],
        runtime: &Runtime,
        keep_ms: i64,
        rollback: bool,
        signature: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        let mut ledger = self.ledger().await?;
        readable(&ledger, &runtime.schemas_read, now)
            .map_err(|e| anyhow!("guest {} refused: {e}", runtime.hash))?;
        let previous = self.active().await?;
        self.store(bytes, runtime, signature).await?;
        let mut conn = self.conn();
        let old = match &previous {
            Some(p) => self.writes(p).await?,
            None => None,
        };
        retire(&mut ledger, old, runtime.schema_written, now, keep_ms);
        self.write_ledger(&ledger).await?;
        if rollback {
            let _: Option<String> = conn.lpop(self.key("history"), None).await?;
        } else if let Some(p) = previous.as_ref().filter(|p| **p != runtime.hash) {
            let _: () = conn.lpush(self.key("history"), p).await?;
        }
        let _: () = conn.set(self.key("active"), &runtime.hash).await?;
        let _: i64 = conn
            .publish(format!("{}guests", self.prefix), &runtime.hash)
            .await?;
        Ok(())
    }

    /// `guest publish`: checks `bytes` (and its signature) with this process's host and
    /// makes it active.
    pub async fn publish(
        &self,
        guests_host: &GuestCheck,
        bytes: &[u8],
        signature: Option<&str>,
    ) -> Result<String> {
        let runtime = tokio::task::block_in_place(|| guests_host.check(bytes, signature))?;
        self.activate(bytes, &runtime, guests_host.keep_ms, false, signature)
            .await?;
        Ok(runtime.hash.clone())
    }

    /// `guest rollback`: makes the previously active version active again, if it is still
    /// safe (it must read every record schema the store may hold).
    pub async fn rollback(&self, guests_host: &GuestCheck) -> Result<String> {
        let mut conn = self.conn();
        let previous: Option<String> = conn.lindex(self.key("history"), 0).await?;
        let Some(previous) = previous else {
            bail!("no earlier guest version to roll back to");
        };
        let bytes = self
            .blob(&previous)
            .await?
            .ok_or_else(|| anyhow!("guest {previous} is no longer in the registry"))?;
        let signature = self.signature(&previous).await?;
        let runtime =
            tokio::task::block_in_place(|| guests_host.check(&bytes, signature.as_deref()))?;
        self.activate(
            &bytes,
            &runtime,
            guests_host.keep_ms,
            true,
            signature.as_deref(),
        )
        .await?;
        Ok(previous)
    }

    /// Publishes what this replica runs, for `guest status`.
    pub async fn report(&self, status: &ReplicaStatus) -> Result<()> {
        let _: () = self
            .conn()
            .hset(
                self.key("replicas"),
                &status.replica,
                serde_json::to_string(status)?,
            )
            .await?;
        Ok(())
    }

    /// `guest status`: the active version, the history, the ledger and every live replica.
    pub async fn status(&self) -> Result<Value> {
        let mut conn = self.conn();
        let history: Vec<String> = conn.lrange(self.key("history"), 0, -1).await?;
        let reports: Vec<(String, String)> = conn.hgetall(self.key("replicas")).await?;
        let mut replicas = Vec::new();
        for (replica, v) in reports {
            let report = serde_json::from_str::<Value>(&v)?;
            // A replica that stopped reporting is gone: forget it.
            if report["at_ms"].as_i64().unwrap_or(0) < now_ms() - REPORT_SECS as i64 * 1000 {
                let _: i64 = conn.hdel(self.key("replicas"), &replica).await?;
            } else {
                replicas.push(report);
            }
        }
        replicas.sort_by_key(|r| r["replica"].as_str().unwrap_or("").to_owned());
        let ledger: BTreeMapJson = self
            .ledger()
            .await?
            .into_iter()
            .map(|(s, u)| (s.to_string(), u.map_or(json!("live"), |t| json!(t))))
            .collect();
        Ok(json!({
            "active": self.active().await?,
            "history": history,
            "schemas": ledger,
            "replicas": replicas,
        }))
    }
}

type BTreeMapJson = std::collections::BTreeMap<String, Value>;

/// Checks a guest as a replica would, for the publishing side.
pub struct GuestCheck {
    pub host: Arc<crate::runtime::GuestHost>,
    pub config: crate::runtime::types::Config,
    pub keep_ms: i64,
    /// `--guest-trusted-keys`: the signature is checked first.
    pub trust: Option<Arc<Trust>>,
}

impl GuestCheck {
    /// Compiles and checks; blocks (call from a blocking thread or in `block_in_place`: a
    /// failing guest built with Rust's std writes its panic through WASI, which blocks on the
    /// runtime; ours traps).
    fn check(&self, bytes: &[u8], signature: Option<&str>) -> Result<Runtime> {
        let hash = guest_hash(bytes);
        guest_signing::check(self.trust.as_deref(), &hash, signature)
            .map_err(|e| anyhow!("guest {hash} refused: {e}"))?;
        self.host
            .load(bytes, &self.config)
            .with_context(|| format!("guest {} refused", guest_hash(bytes)))
    }

    /// [`GuestCheck::check`] for a blocking thread.
    pub fn check_owned(
        self,
        bytes: Vec<u8>,
        signature: Option<String>,
    ) -> Result<(Vec<u8>, Runtime)> {
        let runtime = self.check(&bytes, signature.as_deref())?;
        Ok((bytes, runtime))
    }
}

/// A replica's part: follow the registry (announcements, and a check every second), swap in
/// what becomes active, and report what runs.
pub fn follow(registry: Registry, store: &RedisStore, guests: Arc<Guests>) {
    let mut announcements = store.guest_announcements();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = announcements.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = sync(&registry, &guests).await {
                tracing::warn!("guest registry: {e:#}");
            }
            if let Err(e) = registry.report(&guests.status()).await {
                tracing::debug!("cannot report guest status: {e:#}");
            }
        }
    });
}

/// Activates the registry's active guest if it is not the one running (and was not refused).
async fn sync(registry: &Registry, guests: &Arc<Guests>) -> Result<()> {
    let Some(active) = registry.active().await? else {
        return Ok(());
    };
    if active == guests.current().hash || guests.was_refused(&active) {
        return Ok(());
    }
    let Some(bytes) = registry.blob(&active).await? else {
        bail!("active guest {active} has no bytes in the registry");
    };
    let ledger = registry.ledger().await?;
    let signature = registry.signature(&active).await?;
    let g = guests.clone();
    // Compiling takes a while: off the async workers. A refusal is logged and counted there.
    let _ = tokio::task::spawn_blocking(move || {
        g.try_activate(&bytes, signature.as_deref(), Some(&ledger))
    })
    .await;
    Ok(())
}
