//! The embedded store: a map in this process. Same semantics as the shared stores (versions,
//! compare-and-swap, expiry), so the driver cannot tell them apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Loaded, Saved, SessionStore, StoreError, Token};

struct Entry {
    rt: String,
    record: Vec<u8>,
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
#[derive(Default)]
pub struct MemoryStore {
    maps: Mutex<Maps>,
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
}

fn expiry(keep_secs: u32) -> Instant {
    Instant::now() + Duration::from_secs(keep_secs as u64)
}

impl SessionStore for MemoryStore {
    async fn create(
        &self,
        rt: &str,
        ct: &str,
        record: Vec<u8>,
        keep_secs: u32,
    ) -> Result<(), StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        m.rt_to_ct.insert(rt.to_owned(), ct.to_owned());
        m.by_ct.insert(
            ct.to_owned(),
            Entry {
                rt: rt.to_owned(),
                record,
                version: 1,
                expires: expiry(keep_secs),
            },
        );
        Ok(())
    }

    async fn load(&self, token: Token<'_>) -> Result<Option<Loaded>, StoreError> {
        let m = self.maps.lock().expect("not poisoned");
        let ct = match token {
            Token::Client(ct) => ct,
            Token::Requestor(rt) => match m.rt_to_ct.get(rt) {
                Some(ct) => ct.as_str(),
                None => return Ok(None),
            },
        };
        Ok(m.by_ct
            .get(ct)
            .filter(|e| e.expires > Instant::now())
            .map(|e| Loaded {
                ct: ct.to_owned(),
                record: e.record.clone(),
                version: e.version,
            }))
    }

    async fn save(
        &self,
        ct: &str,
        version: u64,
        record: Vec<u8>,
        keep_secs: u32,
    ) -> Result<Saved, StoreError> {
        let mut m = self.maps.lock().expect("not poisoned");
        match m.by_ct.get_mut(ct) {
            Some(e) if e.version == version && e.expires > Instant::now() => {
                e.record = record;
                e.version += 1;
                e.expires = expiry(keep_secs);
                Ok(Saved::Ok)
            }
            _ => Ok(Saved::Conflict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compare_and_swap_takes_one_writer_per_version() {
        let s = MemoryStore::new();
        s.create(
            "R".repeat(20).as_str(),
            "C".repeat(20).as_str(),
            b"v1".to_vec(),
            60,
        )
        .await
        .unwrap();
        let ct = "C".repeat(20);
        let l = s
            .load(Token::Requestor(&"R".repeat(20)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.ct.as_str(), l.record.as_slice(), l.version),
            (ct.as_str(), &b"v1"[..], 1)
        );
        assert_eq!(s.save(&ct, 1, b"v2".to_vec(), 60).await.unwrap(), Saved::Ok);
        // A second writer that loaded version 1 loses, and the record is the winner's.
        assert_eq!(
            s.save(&ct, 1, b"v2-other".to_vec(), 60).await.unwrap(),
            Saved::Conflict
        );
        let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
        assert_eq!((l.record.as_slice(), l.version), (&b"v2"[..], 2));
        assert!(s.load(Token::Client("nope")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn records_expire_after_their_keep_time() {
        let s = MemoryStore::new();
        s.create("r", "c", b"x".to_vec(), 0).await.unwrap();
        assert!(s.load(Token::Client("c")).await.unwrap().is_none());
        assert_eq!(
            s.save("c", 1, b"y".to_vec(), 60).await.unwrap(),
            Saved::Conflict
        );
        s.sweep();
        assert!(s.is_empty());
    }
}
