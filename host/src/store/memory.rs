//! The embedded store: a map in this process. Same semantics as the shared stores (versions,
//! compare-and-swap, expiry), so the driver cannot tell them apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{Loaded, Saved, SessionStore, StatusEvent, StoreError, Summary, Token, Write};

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
        match m.by_ct.get_mut(&loaded.ct) {
            Some(e) if e.version == loaded.version && e.expires > Instant::now() => {
                e.record = write.record;
                e.summary = write.summary;
                e.version += 1;
                e.expires = expiry(write.keep_secs);
                Ok(Saved::Ok)
            }
            _ => Ok(Saved::Conflict),
        }
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
        };
        s.create("r0", "c0", w(0)).await.unwrap();
        s.create("r1", "c1", w(60)).await.unwrap();
        s.sweep();
        assert_eq!(s.len(), 1);
        assert!(s.load(Token::Requestor("r1")).await.unwrap().is_some());
    }
}
