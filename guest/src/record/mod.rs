//! The session record: everything a session is, serialized into the store. The host treats it
//! as opaque bytes; only the guest reads and writes it.
//!
//! Schema 1 was JSON (this struct's serde form); schema 3 is compact CBOR ([`compact`]). A
//! record's first byte tells them apart (`{` for JSON). Schema-1 records are read as they come
//! and written back as schema 3.

use alloc::{string::String, vec::Vec};

mod compact;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errors::ErrorBody;

/// The schema this guest writes. Every schema in [`SCHEMAS_READ`] must stay readable.
#[cfg(not(feature = "next-schema"))]
pub const SCHEMA: u32 = 3;
#[cfg(not(feature = "next-schema"))]
pub const SCHEMAS_READ: &[u32] = &[1, 3];

/// Schema 4 (the `next-schema` test build, the second guest version of the hot-swap tests):
/// schema 3 with the activity key renamed, migrated as schema-3 records are read. A schema-3
/// guest cannot read schema 4, so the host refuses to roll back to it while schema-4 records
/// may exist.
#[cfg(feature = "next-schema")]
pub const SCHEMA: u32 = 4;
#[cfg(feature = "next-schema")]
pub const SCHEMAS_READ: &[u32] = &[1, 3, 4];

/// The compact (CBOR) schemas [`compact::read`] takes: this guest's, and in the `next-schema`
/// build schema 3 too (its activity key is an alias of schema 4's).
const COMPACT_READ: &[u32] = if cfg!(feature = "next-schema") {
    &[3, 4]
} else {
    &[3]
};

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

impl SessionResult {
    /// A result that says no more than its session: token, status and kind.
    pub fn new(token: String, status: Status, kind: Kind) -> SessionResult {
        SessionResult {
            token,
            status,
            kind,
            proof_status: None,
            disclosed: None,
            signature: None,
            error: None,
            next_session: None,
        }
    }
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
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub awaiting_next: bool,
}

impl SessionRecord {
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, String> {
        if bytes.first() == Some(&b'{') {
            return Self::decode_json(bytes);
        }
        // One parse in the usual case (the record is of a compact schema this guest reads); the
        // schema alone is read only to say why a record is not readable.
        match compact::read(bytes) {
            Ok(stored) if COMPACT_READ.contains(&stored.schema()) => {
                return compact::decode(stored);
            }
            Err(e) if compact::schema_of(bytes).is_ok_and(|s| COMPACT_READ.contains(&s)) => {
                return Err(e);
            }
            _ => {}
        }
        let schema = compact::schema_of(bytes)?;
        if !SCHEMAS_READ.contains(&schema) {
            return Err(format!(
                "record schema {schema} is not readable by this guest"
            ));
        }
        Err(format!("a schema-{schema} record that does not read"))
    }

    /// Schema 1: this struct as JSON.
    fn decode_json(bytes: &[u8]) -> Result<SessionRecord, String> {
        let mut rec: SessionRecord =
            serde_json::from_slice(bytes).map_err(|e| format!("record: {e}"))?;
        if rec.schema != 1 {
            return Err(format!(
                "record schema {} is not readable by this guest",
                rec.schema
            ));
        }
        rec.schema = SCHEMA;
        Ok(rec)
    }

    pub fn encode(&self) -> Vec<u8> {
        compact::encode(self, SCHEMA)
    }

    /// Schema 1, as guests before schema 3 wrote it (for tests of the migration).
    pub fn encode_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).expect("records serialize");
        v["schema"] = Value::from(1);
        serde_json::to_vec(&v).expect("records serialize")
    }
}
