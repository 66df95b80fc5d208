//! The session record: everything a session is, serialized as JSON into the store. The host
//! treats it as opaque bytes; only the guest reads and writes it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errors::ErrorBody;

/// The schema this guest writes. Every schema in [`SCHEMAS_READ`] must stay readable.
#[cfg(not(feature = "schema2"))]
pub const SCHEMA: u32 = 1;
#[cfg(not(feature = "schema2"))]
pub const SCHEMAS_READ: &[u32] = &[1];

/// Schema 2 names the last-activity instant `activeMs`; schema-1 records are migrated as they
/// are read, and written back as schema 2. A schema-1 guest cannot read schema 2, so the host
/// refuses to roll back to it while schema-2 records may exist.
#[cfg(feature = "schema2")]
pub const SCHEMA: u32 = 2;
#[cfg(feature = "schema2")]
pub const SCHEMAS_READ: &[u32] = &[1, 2];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Initialized,
    Pairing,
    Connected,
    Done,
    Cancelled,
    Timeout,
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Cancelled | Status::Timeout)
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Initialized => "INITIALIZED",
            Status::Pairing => "PAIRING",
            Status::Connected => "CONNECTED",
            Status::Done => "DONE",
            Status::Cancelled => "CANCELLED",
            Status::Timeout => "TIMEOUT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Disclosing,
    Signing,
    Issuing,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Disclosing => "disclosing",
            Kind::Signing => "signing",
            Kind::Issuing => "issuing",
        }
    }
}

/// The session result object of `GET /session/{rt}/result` (irma-server.md §1.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResult {
    pub token: String,
    pub status: Status,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(
        rename = "proofStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proof_status: Option<irma_idemix::ProofStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosed: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// The requestor token of the chained session that followed this one.
    #[serde(
        rename = "nextSession",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_session: Option<String>,
}

/// The last answer to an app request, replayed when the app retries (§1.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    pub path: String,
    /// SHA-256 of the request body, hex.
    pub body_hash: String,
    pub status_code: u16,
    pub content_type: String,
    pub body: String,
    /// The session status right after the answer.
    pub session_status: Status,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub schema: u32,
    /// Requestor token.
    pub rt: String,
    /// Client (app) token.
    pub ct: String,
    /// Frontend authorization.
    pub fa: String,
    /// Client authorization, chosen by the app when it connects.
    #[serde(default)]
    pub ca: Option<String>,
    pub status: Status,
    pub kind: Kind,
    /// The session request as the app sees it, enriched by the server (nonce, context, ...).
    pub request: Map<String, Value>,
    /// Result-JWT lifetime (s), from the extended request.
    pub validity: u64,
    /// Seconds the app has to connect; 0 means the server's session lifetime.
    pub timeout: u64,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// `none` or `pin`.
    pub pairing_method: String,
    #[serde(default)]
    pub pairing_code: Option<String>,
    #[serde(default)]
    pub protocol_version: Option<String>,
    #[cfg_attr(feature = "schema2", serde(rename = "activeMs"))]
    pub last_active_ms: i64,
    pub result: SessionResult,
    #[serde(default)]
    pub cache: Option<CachedResponse>,
    /// The requestor that started the session (empty without authentication).
    #[serde(default)]
    pub requestor: String,
    /// Where to fetch the next session of a chain (`nextSession.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_session_url: Option<String>,
    /// What earlier sessions of a chain disclosed, to be disclosed again (a condiscon).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implicit_disclosure: Vec<Value>,
    /// The session pointer of the next session, once started (frontend status shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Value>,
    /// Proofs are verified and the next-session endpoint is being asked (never committed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_next: bool,
}

impl SessionRecord {
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, String> {
        #[derive(Deserialize)]
        struct Probe {
            schema: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("record: {e}"))?;
        if !SCHEMAS_READ.contains(&probe.schema) {
            return Err(format!(
                "record schema {} is not readable by this guest",
                probe.schema
            ));
        }
        #[cfg(feature = "schema2")]
        if probe.schema == 1 {
            let mut v: Value = serde_json::from_slice(bytes).map_err(|e| format!("record: {e}"))?;
            migrate_1_to_2(&mut v)?;
            return serde_json::from_value(v).map_err(|e| format!("record: {e}"));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("record: {e}"))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }
}

/// Schema 1 → 2: `last_active_ms` becomes `activeMs`.
#[cfg(feature = "schema2")]
fn migrate_1_to_2(v: &mut Value) -> Result<(), String> {
    let o = v.as_object_mut().ok_or("record: not an object")?;
    let t = o
        .remove("last_active_ms")
        .ok_or("record: schema 1 without last_active_ms")?;
    o.insert("activeMs".into(), t);
    o.insert("schema".into(), Value::from(2));
    Ok(())
}
