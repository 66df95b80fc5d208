//! Session storage. Records are opaque bytes written by the guest; the store adds a version
//! number per session so that every write is a compare-and-swap, keeps records only as long
//! as the guest says (`keep_secs`), and keeps beside each record a small [`Summary`] (status
//! and when it lapses) so that status polls never load the record nor call the guest.
//!
//! Two stores: [`memory`] (one process) and [`redis`] (shared by any number of replicas).
//! [`Store`] is whichever the configuration picked.

pub mod contract;
pub mod memory;
pub mod redis;
pub mod redis_link;
pub mod sealing;
pub mod shards;

use std::future::Future;

use tokio::sync::broadcast;

use crate::runtime::types::SessionStatus;

/// A session as loaded: its tokens, record, summary and the version to compare against.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub ct: String,
    pub rt: String,
    pub record: Vec<u8>,
    pub summary: Summary,
    pub version: u64,
}

/// What status polls and status streams need to know of a session, as the guest last
/// declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub status: SessionStatus,
    /// The status before `status` (none at the first): what a client that learnt the status
    /// earlier may still believe. A stream tells the app the change from PAIRING to CONNECTED
    /// that it missed, but not the CONNECTED its own connect already answered.
    pub previous: Option<SessionStatus>,
    /// Unix milliseconds after which a status that is not final reads as TIMEOUT.
    pub lapses_at_ms: Option<i64>,
}

impl Summary {
    /// A new session's summary.
    pub fn first(status: SessionStatus, lapses_at_ms: Option<i64>) -> Summary {
        Summary {
            status,
            previous: None,
            lapses_at_ms,
        }
    }

    /// The summary that replaces this one when the guest declares `status`: a write that
    /// keeps the status (a cached response, say) keeps the previous one too.
    pub fn then(&self, status: SessionStatus, lapses_at_ms: Option<i64>) -> Summary {
        Summary {
            status,
            previous: if status == self.status {
                self.previous
            } else {
                Some(self.status)
            },
            lapses_at_ms,
        }
    }

    /// The status at `now_ms`: the guest's lazy timeout rule (`now > deadline`), applied
    /// without the guest. Nothing is written; the next write persists the TIMEOUT.
    pub fn status_at(&self, now_ms: i64) -> SessionStatus {
        match self.lapses_at_ms {
            Some(t) if now_ms > t => SessionStatus::Timeout,
            _ => self.status,
        }
    }
}

/// One write of a session: the record, its summary and how long to keep both, when the
/// session must be woken unasked, and the callbacks this write owes (committed with it).
#[derive(Debug, Clone)]
pub struct Write {
    pub record: Vec<u8>,
    pub summary: Summary,
    pub keep_secs: u32,
    /// Unix ms at which to run `tick` on the session even if no one asks; none: never.
    pub wake_at_ms: Option<i64>,
    pub outbox: Vec<Delivery>,
}

/// A callback to deliver (an outbox entry): committed atomically with the write that ended its
/// session, delivered after the commit by whichever replica leases it, retried until accepted
/// or given up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// Stable across retries and replicas: the receiver's `Idempotency-Key`.
    pub id: String,
    /// The session's client token: in a Redis cluster, its entry lives beside the session.
    #[serde(default)]
    pub ct: String,
    pub url: String,
    pub content_type: String,
    /// A result object or a JWT: text.
    pub body: String,
    pub created_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Which token a request names a session by.
#[derive(Debug, Clone, Copy)]
pub enum Token<'a> {
    Requestor(&'a str),
    Client(&'a str),
}

/// Whether a compare-and-swap took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Ok,
    /// Someone else wrote the session since it was loaded (or it expired): reload and run the
    /// transition again.
    Conflict,
}

/// A status change of one session, announced to every replica (for server-sent events).
#[derive(Debug, Clone)]
pub struct StatusEvent {
    pub ct: String,
    pub status: SessionStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("session store holds an unreadable entry: {0}")]
    Corrupt(String),
}

/// What a session store does. Implementations must make `save` atomic per session.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session under both tokens, at version 1.
    fn create(
        &self,
        rt: &str,
        ct: &str,
        write: Write,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn load(
        &self,
        token: Token<'_>,
    ) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;
    /// Writes if the session is still at `version`.
    fn save(
        &self,
        loaded: &Loaded,
        write: Write,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;
    /// The session's summary, without its record; returns its client token too.
    fn summary(
        &self,
        token: Token<'_>,
    ) -> impl Future<Output = Result<Option<(String, Summary)>, StoreError>> + Send;
    /// Tells every subscriber, in every replica sharing this store, of a committed change.
    fn announce(&self, event: StatusEvent) -> impl Future<Output = ()> + Send;
    /// Status changes as announced (by any replica).
    fn subscribe(&self) -> broadcast::Receiver<StatusEvent>;
    /// Deliveries whose time has come (at most `max`), leased to the caller: no one else
    /// gets them before `lease_until_ms`, after which they are due again (the caller died).
    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
    /// A delivery is done, or given up: it is forgotten.
    fn finish_delivery(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A delivery failed: it is due again at `at_ms`, as `delivery` says (its attempts).
    fn retry_delivery(
        &self,
        delivery: &Delivery,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sessions whose wake-up time has come (their client tokens, at most `max`), leased to
    /// the caller until `lease_until_ms` like deliveries. A write of the session replaces the
    /// lease with the wake-up time the write asks for, or removes it.
    fn claim_wakeups(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Forgets the wake-up of session `ct` (it is gone).
    fn drop_wakeup(&self, ct: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deliveries in the outbox (due, leased or waiting for a retry), for `/metrics`.
    fn pending_deliveries(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// DONE, CANCELLED or TIMEOUT: nothing follows.
pub fn is_final(s: SessionStatus) -> bool {
    use SessionStatus::*;
    matches!(s, Done | Cancelled | Timeout)
}

/// How a status is written in JSON, in events and in the store.
pub fn status_name(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Initialized => "INITIALIZED",
        SessionStatus::Pairing => "PAIRING",
        SessionStatus::Connected => "CONNECTED",
        SessionStatus::Done => "DONE",
        SessionStatus::Cancelled => "CANCELLED",
        SessionStatus::Timeout => "TIMEOUT",
    }
}

/// A status as [`status_name`] writes it.
pub fn status_from_name(s: &str) -> Option<SessionStatus> {
    Some(match s {
        "INITIALIZED" => SessionStatus::Initialized,
        "PAIRING" => SessionStatus::Pairing,
        "CONNECTED" => SessionStatus::Connected,
        "DONE" => SessionStatus::Done,
        "CANCELLED" => SessionStatus::Cancelled,
        "TIMEOUT" => SessionStatus::Timeout,
        _ => return None,
    })
}

/// The store the configuration picked.
pub enum Store {
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
}

impl Store {
    /// Whether the store answers now (one try, for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ping().await,
        }
    }
}

/// Calls the same method on whichever store this is, and times it for `/metrics` (as
/// operation `$op`).
macro_rules! either {
    ($self:ident, $op:literal, $s:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let result = match $self {
            Store::Memory($s) => $call,
            Store::Redis($s) => $call,
        };
        crate::metrics::store_operation($op, started.elapsed());
        result
    }};
}

impl SessionStore for Store {
    async fn create(&self, rt: &str, ct: &str, write: Write) -> Result<(), StoreError> {
        either!(self, "create", s => s.create(rt, ct, write).await)
    }

    async fn load(&self, token: Token<'_>) -> Result<Option<Loaded>, StoreError> {
        either!(self, "load", s => s.load(token).await)
    }

    async fn save(&self, loaded: &Loaded, write: Write) -> Result<Saved, StoreError> {
        either!(self, "save", s => s.save(loaded, write).await)
    }

    async fn summary(&self, token: Token<'_>) -> Result<Option<(String, Summary)>, StoreError> {
        either!(self, "summary", s => s.summary(token).await)
    }

    async fn announce(&self, event: StatusEvent) {
        either!(self, "announce", s => s.announce(event).await)
    }

    fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        match self {
            Store::Memory(s) => s.subscribe(),
            Store::Redis(s) => s.subscribe(),
        }
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        either!(self, "claim_deliveries", s => s.claim_deliveries(now_ms, lease_until_ms, max).await)
    }

    async fn finish_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        either!(self, "finish_delivery", s => s.finish_delivery(delivery).await)
    }

    async fn retry_delivery(&self, delivery: &Delivery, at_ms: i64) -> Result<(), StoreError> {
        either!(self, "retry_delivery", s => s.retry_delivery(delivery, at_ms).await)
    }

    async fn claim_wakeups(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        either!(self, "claim_wakeups", s => s.claim_wakeups(now_ms, lease_until_ms, max).await)
    }

    async fn drop_wakeup(&self, ct: &str) -> Result<(), StoreError> {
        either!(self, "drop_wakeup", s => s.drop_wakeup(ct).await)
    }

    async fn pending_deliveries(&self) -> Result<usize, StoreError> {
        either!(self, "pending_deliveries", s => s.pending_deliveries().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus::*;

    #[test]
    fn a_summary_remembers_the_status_before_the_current_one() {
        let s = Summary::first(Initialized, Some(10));
        assert_eq!(s.previous, None);
        let s = s.then(Pairing, Some(20));
        assert_eq!(
            (s.status, s.previous, s.lapses_at_ms),
            (Pairing, Some(Initialized), Some(20))
        );
        let s = s.then(Connected, Some(30));
        assert_eq!(s.previous, Some(Pairing));
        // A write that keeps the status (the app fetches the request) keeps what came before.
        let s = s.then(Connected, Some(40));
        assert_eq!((s.previous, s.lapses_at_ms), (Some(Pairing), Some(40)));
        assert_eq!(s.then(Done, None).previous, Some(Connected));
    }
}
