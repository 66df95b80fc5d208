//! The embedded store: a map in this process. Same semantics as the shared stores (versions,
//! compare-and-swap, expiry), so the driver cannot tell them apart.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{
    Delivery, Loaded, Saved, SessionStore, StatusEvent, StoreError, Summary, Token, Write,
};

struct Entry {
    rt: String,
    record: Vec<u8>,
    summary: Summary,
    version: u64,
    expires: Instant,
}

#[derive(Default)]
struct Maps {
    by_ct: HashMap<String, Entry>,
    rt_to_ct: HashMap<String, String>,
    /// Sessions to wake unasked, by client token.
    wakeups: Schedule,
    /// Callbacks to deliver, by id, and when each is due.
    deliveries: HashMap<String, Delivery>,
    outbox: Schedule,
}

/// Due times of work that is leased when claimed (wake-ups, deliveries), by id.
#[derive(Default)]
struct Schedule {
    due: BTreeSet<(i64, String)>,
    at: HashMap<String, i64>,
}

impl Schedule {
    fn set(&mut self, id: &str, at_ms: i64) {
        self.remove(id);
        self.due.insert((at_ms, id.to_owned()));
        self.at.insert(id.to_owned(), at_ms);
    }

    fn remove(&mut self, id: &str) {
        if let Some(t) = self.at.remove(id) {
            self.due.remove(&(t, id.to_owned()));
        }
    }

    /// The ids due at `now_ms` (at most `max`), each now due again only at `until_ms`.
    fn claim(&mut self, now_ms: i64, until_ms: i64, max: usize) -> Vec<String> {
        let ids: Vec<String> = self
            .due
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .take(max)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &ids {
            self.set(id, until_ms);
        }
        ids
    }
}

/// Sessions in memory. A std mutex is right here: every critical section is a map lookup or
/// insert, never held across an await.
pub struct MemoryStore {
    maps: Mutex<Maps>,
    events: broadcast::Sender<StatusEvent>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore {
            maps: Mutex::default(),
            events: broadcast::channel(1024).0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Drops expired sessions; run periodically.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut m = self.maps.lock().expect("not poisoned");
        let expired: Vec<(String, String)> = m
            .by_ct
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(ct, e)| (ct.clone(), e.rt.clone()))
            .collect();
        for (ct, rt) in expired {
            m.by_ct.remove(&ct);
            m.rt_to_ct.remove(&rt);
            m.wakeups.remove(&ct);
        }
    }

    pub fn len(&self) -> usize {
        self.maps.lock().expect("not poisoned").by_ct.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entry named by `token`, with its client token.
    fn find<'m>(m: &'m Maps, token: Token<'_>) -> Option<(&'m str, &'m Entry)> {
        let ct = match token {
            Token::Client(ct) => ct,
            Token::Requestor(rt) => m.rt_to_ct.get(rt)?.as_str(),
        };
        let (ct, e) = m.by_ct.get_key_value(ct)?;
        (e.expires > Instant::now()).then_some((ct.as_str(), e))
    }
}

fn expiry(keep_secs: u32) -> Instant {
    Instant::now() + Duration::from_secs(keep_secs as u64)
}

impl SessionStore for MemoryStore {
    async fn create(&self, rt: &str, ct: &str, write: Write) -> Result<(), StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        Self::schedule(&mut m, ct, write.wake_at_ms, &write.outbox);
        m.rt_to_ct.insert(rt.to_owned(), ct.to_owned());
        m.by_ct.insert(
            ct.to_owned(),
            Entry {
                rt: rt.to_owned(),
                record: write.record,
                summary: write.summary,
                version: 1,
                expires: expiry(write.keep_secs),
            },
        );
        Ok(())
    }

    async fn load(&self, token: Token<'_>) -> Result<Option<Loaded>, StoreError> {
        let m = self.maps.lock().expect("not poisoned");
        Ok(Self::find(&m, token).map(|(ct, e)| Loaded {
            ct: ct.to_owned(),
            rt: e.rt.clone(),
            record: e.record.clone(),
            summary: e.summary,
            version: e.version,
        }))
    }

    async fn save(&self, loaded: &Loaded, write: Write) -> Result<Saved, StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        let outbox = write.outbox.clone();
        let saved =
            Self::schedule_after(&mut m, &loaded.ct, write.wake_at_ms, &outbox, |m| {
                match m.by_ct.get_mut(&loaded.ct) {
                    Some(e) if e.version == loaded.version && e.expires > Instant::now() => {
                        e.summary = write.summary;
                        e.version += 1;
                        e.expires = expiry(write.keep_secs);
                        e.record = write.record;
                        Saved::Ok
                    }
                    _ => Saved::Conflict,
                }
            });
        Ok(saved)
    }

    async fn summary(&self, token: Token<'_>) -> Result<Option<(String, Summary)>, StoreError> {
        let m = self.maps.lock().expect("not poisoned");
        Ok(Self::find(&m, token).map(|(ct, e)| (ct.to_owned(), e.summary)))
    }

    async fn announce(&self, event: StatusEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
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
        let mut m = self.maps.lock().expect("not poisoned");
        let ids = m.outbox.claim(now_ms, lease_until_ms, max);
        Ok(ids
            .iter()
            .filter_map(|id| m.deliveries.get(id).cloned())
            .collect())
    }

    async fn finish_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        m.outbox.remove(&delivery.id);
        m.deliveries.remove(&delivery.id);
        Ok(())
    }

    async fn retry_delivery(&self, delivery: &Delivery, at_ms: i64) -> Result<(), StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        m.outbox.set(&delivery.id, at_ms);
        m.deliveries.insert(delivery.id.clone(), delivery.clone());
        Ok(())
    }

    async fn claim_wakeups(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        Ok(m.wakeups.claim(now_ms, lease_until_ms, max))
    }

    async fn drop_wakeup(&self, ct: &str) -> Result<(), StoreError> {
        self.maps.lock().expect("not poisoned").wakeups.remove(ct);
        Ok(())
    }

    async fn pending_deliveries(&self) -> Result<usize, StoreError> {
        Ok(self.maps.lock().expect("not poisoned").outbox.at.len())
    }
}

impl MemoryStore {
    /// What a write asks for besides the record: its wake-up time, its callbacks (due now).
    fn schedule(m: &mut Maps, ct: &str, wake_at_ms: Option<i64>, outbox: &[Delivery]) {
        match wake_at_ms {
            Some(t) => m.wakeups.set(ct, t),
            None => m.wakeups.remove(ct),
        }
        for d in outbox {
            m.outbox.set(&d.id, d.created_ms);
            m.deliveries.insert(d.id.clone(), d.clone());
        }
    }

    /// Runs `write` and, if it took effect, [`MemoryStore::schedule`], under one lock.
    fn schedule_after(
        m: &mut Maps,
        ct: &str,
        wake_at_ms: Option<i64>,
        outbox: &[Delivery],
        write: impl FnOnce(&mut Maps) -> Saved,
    ) -> Saved {
        let saved = write(m);
        if saved == Saved::Ok {
            Self::schedule(m, ct, wake_at_ms, outbox);
        }
        saved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::SessionStatus;

    #[tokio::test]
    async fn keeps_the_store_contract() {
        crate::store::contract::check(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn the_sweep_drops_expired_sessions() {
        let s = MemoryStore::new();
        let summary = Summary::first(SessionStatus::Done, None);
        let w = |keep_secs| Write {
            record: b"x".to_vec(),
            summary,
            keep_secs,
            wake_at_ms: None,
            outbox: Vec::new(),
        };
        s.create("r0", "c0", w(0)).await.unwrap();
        s.create("r1", "c1", w(60)).await.unwrap();
        s.sweep();
        assert_eq!(s.len(), 1);
        assert!(s.load(Token::Requestor("r1")).await.unwrap().is_some());
    }
}
