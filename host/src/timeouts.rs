//! Wakes sessions whose timeout must be noticed even if no request comes: those with a
//! callback, which must go out when they time out. Every replica runs this loop; it leases due
//! sessions from the store and runs the guest's `tick` on each, which persists the TIMEOUT (once:
//! compare-and-swap) and puts the callback in the outbox.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::types::Event;
use crate::session::{Sessions, now_ms};
use crate::store::{SessionStore, Token};

/// How often the store is asked for due sessions.
const EVERY: Duration = Duration::from_secs(1);
/// How long a claimed session is this replica's to wake.
const LEASE_MS: i64 = 30_000;
const BATCH: usize = 64;

/// Runs the wake-up loop of this replica for as long as the process lives.
pub fn wake<S: SessionStore>(sessions: Arc<Sessions<S>>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            let now = now_ms();
            let due = match sessions
                .store
                .claim_wakeups(now, now + LEASE_MS, BATCH)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("cannot read the session wake-ups: {e}");
                    continue;
                }
            };
            for ct in due {
                let reply = sessions.handle(Token::Client(&ct), Event::Tick).await;
                // Gone (its result lifetime is over): nothing left to wake.
                if reply.status == 400 {
                    let _ = sessions.store.drop_wakeup(&ct).await;
                }
            }
        }
    });
}
