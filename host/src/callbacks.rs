//! Delivers the outbox: callbacks committed with the writes that ended their sessions. Every
//! replica runs this loop; a replica leases what is due (so each callback goes out once, bar
//! retries), POSTs it with an `Idempotency-Key` the receiver can deduplicate on, and retries
//! connection errors and 5xx with backoff for a bounded time. A replica that dies holding a
//! lease loses nothing: the callback falls due again when the lease ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::http_client::HttpClient;
use crate::session::now_ms;
use crate::store::{Delivery, SessionStore};

/// How long a claimed delivery is this replica's before another may take it over.
const LEASE_MS: i64 = 30_000;
/// How often the outbox is looked at when no commit of this replica pokes it.
const POLL: Duration = Duration::from_millis(500);
/// Claimed at once, at most.
const BATCH: usize = 32;
/// Retries stop this long after the callback was committed.
const GIVE_UP_AFTER_MS: i64 = 15 * 60 * 1000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 60_000;

/// What to do after an attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done,
    RetryAt(i64),
    GiveUp(String),
}

/// The decision after an attempt that answered `status` (Err: no answer), at `now`.
fn after(d: &Delivery, status: Result<u16, String>, now: i64) -> Next {
    let why = match status {
        Ok(s) if (200..300).contains(&s) => return Next::Done,
        // The receiver refuses it: sending it again will not help.
        Ok(s) if (400..500).contains(&s) => return Next::GiveUp(format!("answered {s}")),
        Ok(s) => format!("answered {s}"),
        Err(e) => e,
    };
    if now - d.created_ms >= GIVE_UP_AFTER_MS {
        return Next::GiveUp(format!(
            "{why}; still failing after {} min",
            GIVE_UP_AFTER_MS / 60_000
        ));
    }
    let backoff = (1000i64 << d.attempts.min(16)).min(MAX_BACKOFF_MS);
    Next::RetryAt(now + backoff)
}

/// Runs the delivery loop of this replica for as long as the process lives.
pub fn deliver<S: SessionStore>(store: Arc<S>, http: HttpClient, poked: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = poked.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            let now = now_ms();
            let due = match store.claim_deliveries(now, now + LEASE_MS, BATCH).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("cannot read the callback outbox: {e}");
                    continue;
                }
            };
            for d in due {
                let (store, http) = (store.clone(), http.clone());
                tokio::spawn(async move { attempt(&*store, &http, d).await });
            }
        }
    });
}

async fn attempt<S: SessionStore>(store: &S, http: &HttpClient, mut d: Delivery) {
    let answer = http.deliver(&d).await;
    let done = match after(&d, answer, now_ms()) {
        Next::Done => {
            tracing::info!(attempts = d.attempts + 1, "callback delivered");
            crate::metrics::callback_delivered();
            store.finish_delivery(&d).await
        }
        Next::GiveUp(why) => {
            tracing::error!(attempts = d.attempts + 1, "callback given up: {why}");
            crate::metrics::callback_failed("given_up");
            store.finish_delivery(&d).await
        }
        Next::RetryAt(at) => {
            d.attempts += 1;
            crate::metrics::callback_failed("retried");
            tracing::warn!(
                attempts = d.attempts,
                "callback not accepted; trying again later"
            );
            store.retry_delivery(&d, at).await
        }
    };
    if let Err(e) = done {
        // The lease runs out and the delivery is due again: at worst, sent once more.
        tracing::warn!("cannot update the callback outbox: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(attempts: u32) -> Delivery {
        Delivery {
            id: "rt".into(),
            ct: "ct".into(),
            url: "http://x/".into(),
            content_type: "application/json".into(),
            body: "{}".into(),
            created_ms: 0,
            attempts,
        }
    }

    #[test]
    fn success_ends_refusal_gives_up_failure_retries_with_backoff() {
        assert_eq!(after(&d(0), Ok(200), 10), Next::Done);
        assert_eq!(after(&d(0), Ok(204), 10), Next::Done);
        assert!(matches!(after(&d(0), Ok(404), 10), Next::GiveUp(_)));
        assert_eq!(after(&d(0), Ok(500), 10), Next::RetryAt(1010));
        assert_eq!(after(&d(1), Err("refused".into()), 10), Next::RetryAt(2010));
        assert_eq!(
            after(&d(30), Ok(503), 10),
            Next::RetryAt(10 + MAX_BACKOFF_MS)
        );
        assert!(matches!(
            after(&d(3), Ok(500), GIVE_UP_AFTER_MS),
            Next::GiveUp(_)
        ));
    }
}
