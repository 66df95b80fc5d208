//! Hot swap: which guest version serves, and how another takes over without a request noticing.
//!
//! [`Guests`] holds the active [`Runtime`] behind a lock that is only taken to clone an `Arc`:
//! a request takes the version that is active when it starts and finishes on it, whatever is
//! swapped in meanwhile. A candidate is compiled, linked against the WIT world and
//! self-checked *before* the swap, and must read every record schema the store may still hold
//! (the [`Ledger`]); otherwise it is refused, the old version keeps serving, and the refusal
//! shows in the logs, in `/metrics` and in `irma-server guest status`.
//!
//! Where candidates come from: in Redis mode the [`registry`](crate::registry) (published with
//! `irma-server guest publish`, announced through pub/sub, checked every second as well); in
//! memory mode the `--guest` file, watched for changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::guest_signing::{self, Trust};
use crate::runtime::{GuestHost, Runtime, guest_hash, types};
use crate::session::now_ms;

/// Which record schemas the store may hold: `schema → None` while the active guest writes it,
/// else the Unix millisecond after which no record of it can remain (its last writer was
/// replaced then plus the longest a record is kept).
pub type Ledger = BTreeMap<u32, Option<i64>>;

/// Whether a guest reading `reads` can serve a store described by `ledger` at `now`.
pub fn readable(ledger: &Ledger, reads: &[u32], now: i64) -> Result<(), String> {
    for (schema, until) in ledger {
        let present = until.is_none_or(|t| t > now);
        if present && !reads.contains(schema) {
            return Err(match until {
                None => format!("it cannot read record schema {schema}, which the store holds"),
                Some(t) => format!(
                    "it cannot read record schema {schema}, which the store may hold for {} s more",
                    (t - now) / 1000 + 1
                ),
            });
        }
    }
    Ok(())
}

/// The ledger after a guest writing `new` replaced one writing `old`.
pub fn retire(ledger: &mut Ledger, old: Option<u32>, new: u32, now: i64, keep_ms: i64) {
    if let Some(old) = old.filter(|o| *o != new) {
        ledger.insert(old, Some(now + keep_ms));
    }
    ledger.insert(new, None);
    // Schemas that can no longer be in the store are forgotten.
    ledger.retain(|_, until| until.is_none_or(|t| t > now));
}

/// A guest that was refused, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub hash: String,
    pub error: String,
    pub at_ms: i64,
}

/// What a replica reports about its guests.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub replica: String,
    pub hash: String,
    pub schemas_read: Vec<u32>,
    pub schema_written: u32,
    pub activations: u64,
    pub refusals: u64,
    pub refused: Option<Refusal>,
    pub at_ms: i64,
}

pub struct Guests {
    host: Arc<GuestHost>,
    config: types::Config,
    current: RwLock<Arc<Runtime>>,
    /// The schemas this process's store may hold (memory mode; Redis mode keeps it in Redis).
    ledger: Mutex<Ledger>,
    refused: Mutex<Option<Refusal>>,
    /// One activation at a time (a pub/sub message and the periodic check may coincide).
    activating: Mutex<()>,
    activations: AtomicU64,
    refusals: AtomicU64,
    /// Names this process in `guest status`.
    pub replica: String,
    /// `--guest-trusted-keys`: only guests signed by one of them run.
    trust: Option<Arc<Trust>>,
}

impl Guests {
    pub fn new(
        host: Arc<GuestHost>,
        config: types::Config,
        first: Runtime,
        trust: Option<Arc<Trust>>,
    ) -> Guests {
        let mut ledger = Ledger::new();
        ledger.insert(first.schema_written, None);
        let replica = format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "irma-server".into()),
            std::process::id()
        );
        crate::metrics::guest_active(None, (&first.hash, first.schema_written));
        Guests {
            host,
            config,
            current: RwLock::new(Arc::new(first)),
            ledger: Mutex::new(ledger),
            refused: Mutex::new(None),
            activating: Mutex::new(()),
            activations: AtomicU64::new(1),
            refusals: AtomicU64::new(0),
            replica,
            trust,
        }
    }

    /// The version new requests run on.
    pub fn current(&self) -> Arc<Runtime> {
        self.current.read().expect("not poisoned").clone()
    }

    pub fn host(&self) -> &Arc<GuestHost> {
        &self.host
    }

    pub fn config(&self) -> &types::Config {
        &self.config
    }

    /// How long a record may stay in the store: session lifetime plus result lifetime.
    pub fn keep_ms(&self) -> i64 {
        (self.config.max_session_lifetime_secs as i64
            + self.config.session_result_lifetime_secs as i64)
            * 1000
    }

    /// Whether `hash` was refused last (so it is not retried every second).
    pub fn was_refused(&self, hash: &str) -> bool {
        self.refused
            .lock()
            .expect("not poisoned")
            .as_ref()
            .is_some_and(|r| r.hash == hash)
    }

    /// The trusted guest keys, if any.
    pub fn trust(&self) -> Option<Arc<Trust>> {
        self.trust.clone()
    }

    /// Loads, checks and, if it passes, activates the guest in `bytes`, signed by `signature`
    /// (base64; needed with `--guest-trusted-keys`). `ledger` is what the store may hold (this
    /// process's own ledger when `None`). Blocking: it may compile.
    pub fn try_activate(
        &self,
        bytes: &[u8],
        signature: Option<&str>,
        ledger: Option<&Ledger>,
    ) -> Result<String, String> {
        let hash = guest_hash(bytes);
        let _one_at_a_time = self.activating.lock().expect("not poisoned");
        let current = self.current();
        if current.hash == hash {
            return Ok(hash);
        }
        if let Err(e) = guest_signing::check(self.trust.as_deref(), &hash, signature) {
            return Err(self.refuse(&hash, e));
        }
        let candidate = match self.host.load_hashed(bytes, hash.clone(), &self.config) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(&hash, format!("{e:#}"))),
        };
        let now = now_ms();
        let mut own = self.ledger.lock().expect("not poisoned");
        let check = readable(ledger.unwrap_or(&own), &candidate.schemas_read, now);
        if let Err(e) = check {
            return Err(self.refuse(&hash, e));
        }
        retire(
            &mut own,
            Some(current.schema_written),
            candidate.schema_written,
            now,
            self.keep_ms(),
        );
        drop(own);
        tracing::info!(
            from = %current.hash,
            to = %hash,
            schemas_read = ?candidate.schemas_read,
            schema_written = candidate.schema_written,
            "guest swapped in"
        );
        crate::metrics::guest_active(
            Some((&current.hash, current.schema_written)),
            (&candidate.hash, candidate.schema_written),
        );
        *self.current.write().expect("not poisoned") = Arc::new(candidate);
        self.activations.fetch_add(1, Ordering::Relaxed);
        crate::metrics::guest_activated();
        Ok(hash)
    }

    /// Records a refusal decided elsewhere (a registry guest that did not load at start-up).
    pub fn refuse(&self, hash: &str, error: String) -> String {
        tracing::error!(guest = %hash, "guest refused: {error}; the active guest keeps serving");
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let mut refused = self.refused.lock().expect("not poisoned");
        crate::metrics::guest_refused(refused.as_ref().map(|r| r.hash.as_str()), hash);
        *refused = Some(Refusal {
            hash: hash.to_owned(),
            error: error.clone(),
            at_ms: now_ms(),
        });
        error
    }

    pub fn status(&self) -> ReplicaStatus {
        let current = self.current();
        ReplicaStatus {
            replica: self.replica.clone(),
            hash: current.hash.clone(),
            schemas_read: current.schemas_read.clone(),
            schema_written: current.schema_written,
            activations: self.activations.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
            refused: self.refused.lock().expect("not poisoned").clone(),
            at_ms: now_ms(),
        }
    }
}

/// The signature of a guest file: `<file>.sig`, if there is one.
pub fn file_signature(path: &std::path::Path) -> Option<String> {
    let mut sig = path.as_os_str().to_owned();
    sig.push(".sig");
    std::fs::read_to_string(sig).ok()
}

/// Memory mode: watches the `--guest` file and offers every new content to `guests` within a
/// quarter of a second of its change.
pub fn watch_file(guests: Arc<Guests>, path: PathBuf) {
    tokio::spawn(async move {
        // The file and its signature: a signature written after the guest counts too.
        let stamp = |p: &PathBuf| {
            let one = |p: &std::path::Path| {
                std::fs::metadata(p)
                    .ok()
                    .map(|m| (m.modified().ok(), m.len()))
            };
            let mut sig = p.as_os_str().to_owned();
            sig.push(".sig");
            (one(p), one(std::path::Path::new(&sig)))
        };
        let mut last = stamp(&path);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = stamp(&path);
            if now == last {
                continue;
            }
            last = now;
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let signature = file_signature(&path);
            let g = guests.clone();
            // Compiling takes a while: off the async workers. Errors are logged and counted.
            let _ = tokio::task::spawn_blocking(move || {
                g.try_activate(&bytes, signature.as_deref(), None)
            })
            .await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_must_read_every_schema_the_store_may_hold() {
        let mut ledger = Ledger::new();
        retire(&mut ledger, None, 1, 0, 1000);
        assert!(readable(&ledger, &[1], 0).is_ok());
        assert!(readable(&ledger, &[2], 0).is_err());
        // v2 (reads 1 and 2, writes 2) replaces v1 at t=10: schema-1 records stay for 1 s.
        assert!(readable(&ledger, &[1, 2], 10).is_ok());
        retire(&mut ledger, Some(1), 2, 10, 1000);
        assert_eq!(ledger, Ledger::from([(1, Some(1010)), (2, None)]));
        // Rolling back to v1 (reads 1 only) is refused while schema 2 is written or kept.
        let e = readable(&ledger, &[1], 20).unwrap_err();
        assert!(e.contains("schema 2"), "{e}");
        // A guest that reads only 2 must wait until no schema-1 record can remain.
        assert!(readable(&ledger, &[2], 1010).is_ok());
        assert!(readable(&ledger, &[2], 1009).is_err());
        // Replacing v2 by a v2 build writing the same schema changes nothing.
        retire(&mut ledger, Some(2), 2, 2000, 1000);
        assert_eq!(ledger, Ledger::from([(2, None)]));
    }
}
