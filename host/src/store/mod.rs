//! Session storage. Records are opaque bytes written by the guest; the store adds a version
//! number per session so that every write is a compare-and-swap, and keeps records only as
//! long as the guest says (`keep_secs`).

pub mod memory;

use std::future::Future;

/// A session as loaded: its client token, record and the version to compare against.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub ct: String,
    pub record: Vec<u8>,
    pub version: u64,
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
    /// Someone else wrote the session since it was loaded: reload and run the transition again.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

/// What a session store does. Implementations must make `save` atomic per session.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session under both tokens.
    fn create(
        &self,
        rt: &str,
        ct: &str,
        record: Vec<u8>,
        keep_secs: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn load(
        &self,
        token: Token<'_>,
    ) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;
    /// Writes `record` if the session is still at `version`.
    fn save(
        &self,
        ct: &str,
        version: u64,
        record: Vec<u8>,
        keep_secs: u32,
    ) -> impl Future<Output = Result<Saved, StoreError>> + Send;
}
