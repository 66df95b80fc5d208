//! The record as the store keeps it since schema 3: CBOR (RFC 8949), a map with short keys,
//! leaving out what is at its default or follows from other fields. A waiting session is about
//! a third of its JSON (schema 1), which decides how many sessions one Redis holds.
//!
//! CBOR describes itself, so `irma-server session show` prints any stored record as JSON
//! without knowing this schema; the keys are listed on [`Stored`].
//!
//! The codec is minicbor's serde bridge, which reads from the slice in place: ciborium, the
//! first one, spent half of a status poll's guest time decoding the record.
//!
//! Left out, and restored on reading: the request's `@context` (it follows from the kind), and
//! the result when it says no more than the session does (token, status and kind).

use alloc::{string::String, vec::Vec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CachedResponse, Kind, SessionRecord, SessionResult, Status};
use crate::errors::ErrorBody;
use crate::request::{DISCLOSURE_V2, ISSUANCE_V2, SIGNATURE_V2};

/// A schema-3 record. Keys: `v` schema, `rt`/`ct`/`fa`/`ca` the tokens, `s` status and `k`
/// kind (numbers, in declaration order), `rq` the request, `cx` a non-standard `@context`
/// (`""`: none),
/// `va` result-JWT validity, `to` connect timeout, `cb` callback URL, `pm`/`pc` pairing
/// method and code, `pv` protocol version, `t` last activity (Unix ms; `a` in the test
/// schema 4), `r` the result, `c` the cached answer, `q` the requestor, `nu` the next-session
/// URL, `id` implicit disclosures, `nx` the next session's pointer, `aw` awaiting it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Stored {
    v: u32,
    rt: String,
    ct: String,
    fa: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    s: u8,
    k: u8,
    rq: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cx: Option<Value>,
    va: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    to: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pv: Option<String>,
    // Schema 4 reads schema 3's key as well: its migration.
    #[cfg_attr(feature = "next-schema", serde(rename = "a", alias = "t"))]
    t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<StoredResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<CachedResponse>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nu: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    id: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nx: Option<Value>,
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    aw: bool,
}

/// A result that says more than the session: `tk` its token when not the requestor token,
/// `s`/`k` as above, `ps` proof status, `d` disclosed, `sg` signature, `e` error, `n` the next
/// session's requestor token.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tk: Option<String>,
    s: u8,
    k: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ps: Option<irma_idemix::ProofStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sg: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<ErrorBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

const STATUSES: [Status; 6] = [
    Status::Initialized,
    Status::Pairing,
    Status::Connected,
    Status::Done,
    Status::Cancelled,
    Status::Timeout,
];
const KINDS: [Kind; 3] = [Kind::Disclosing, Kind::Signing, Kind::Issuing];

fn status_number(s: Status) -> u8 {
    STATUSES.iter().position(|x| *x == s).expect("listed") as u8
}

fn kind_number(k: Kind) -> u8 {
    KINDS.iter().position(|x| *x == k).expect("listed") as u8
}

fn status_from(n: u8) -> Result<Status, String> {
    STATUSES
        .get(n as usize)
        .copied()
        .ok_or_else(|| format!("record: status {n}"))
}

fn kind_from(n: u8) -> Result<Kind, String> {
    KINDS
        .get(n as usize)
        .copied()
        .ok_or_else(|| format!("record: kind {n}"))
}

/// The `@context` of a session request of this kind.
fn standard_context(kind: Kind) -> &'static str {
    match kind {
        Kind::Disclosing => DISCLOSURE_V2,
        Kind::Signing => SIGNATURE_V2,
        Kind::Issuing => ISSUANCE_V2,
    }
}

/// The result as a session that says nothing more would have it.
fn bare_result(rec: &SessionRecord) -> SessionResult {
    SessionResult::new(rec.rt.clone(), rec.status, rec.kind)
}

pub(super) fn encode(rec: &SessionRecord, schema: u32) -> Vec<u8> {
    let mut rq = rec.request.clone();
    // Absent: the standard one; "": none at all (never so in a validated request; not null,
    // which reads back as absent).
    let cx = match rq.remove("@context") {
        Some(c) if c.as_str() == Some(standard_context(rec.kind)) => None,
        Some(c) => Some(c),
        None => Some(Value::from("")),
    };
    let r = (rec.result != bare_result(rec)).then(|| {
        let res = &rec.result;
        StoredResult {
            tk: (res.token != rec.rt).then(|| res.token.clone()),
            s: status_number(res.status),
            k: kind_number(res.kind),
            ps: res.proof_status,
            d: res.disclosed.clone(),
            sg: res.signature.clone(),
            e: res.error.clone(),
            n: res.next_session.clone(),
        }
    });
    let stored = Stored {
        v: schema,
        rt: rec.rt.clone(),
        ct: rec.ct.clone(),
        fa: rec.fa.clone(),
        ca: rec.ca.clone(),
        s: status_number(rec.status),
        k: kind_number(rec.kind),
        rq,
        cx,
        va: rec.validity,
        to: rec.timeout,
        cb: rec.callback_url.clone(),
        pm: (rec.pairing_method != "none").then(|| rec.pairing_method.clone()),
        pc: rec.pairing_code.clone(),
        pv: rec.protocol_version.clone(),
        t: rec.last_active_ms,
        r,
        c: rec.cache.clone(),
        q: rec.requestor.clone(),
        nu: rec.next_session_url.clone(),
        id: rec.implicit_disclosure.clone(),
        nx: rec.next.clone(),
        aw: rec.awaiting_next,
    };
    let mut out = Vec::with_capacity(320);
    stored
        .serialize(&mut minicbor_serde::Serializer::new(&mut out))
        .expect("records serialize");
    out
}

/// The schema a CBOR record says it has, without reading the rest.
pub(super) fn schema_of(bytes: &[u8]) -> Result<u32, String> {
    #[derive(Deserialize)]
    struct Probe {
        v: u32,
    }
    let probe: Probe = minicbor_serde::from_slice(bytes).map_err(|e| format!("record: {e}"))?;
    Ok(probe.v)
}

/// Reads a CBOR record (schema 3; schema 4 or 3 in the `next-schema` build): one item, with no
/// key it does not know (a key it would drop on the next write) and nothing after it.
pub(super) fn read(bytes: &[u8]) -> Result<Stored, String> {
    let mut de = minicbor_serde::Deserializer::new(bytes);
    let stored = Stored::deserialize(&mut de).map_err(|e| format!("record: {e}"))?;
    if de.decoder().position() != bytes.len() {
        return Err("record: bytes after its end".into());
    }
    Ok(stored)
}

impl Stored {
    pub(super) fn schema(&self) -> u32 {
        self.v
    }
}

pub(super) fn decode(stored: Stored) -> Result<SessionRecord, String> {
    let kind = kind_from(stored.k)?;
    let status = status_from(stored.s)?;
    let mut request = stored.rq;
    match stored.cx {
        None => {
            request.insert("@context".into(), standard_context(kind).into());
        }
        Some(Value::String(c)) if c.is_empty() => {}
        Some(c) => {
            request.insert("@context".into(), c);
        }
    }
    let mut rec = SessionRecord {
        schema: super::SCHEMA,
        rt: stored.rt,
        ct: stored.ct,
        fa: stored.fa,
        ca: stored.ca,
        status,
        kind,
        request,
        validity: stored.va,
        timeout: stored.to,
        callback_url: stored.cb,
        pairing_method: stored.pm.unwrap_or_else(|| "none".into()),
        pairing_code: stored.pc,
        protocol_version: stored.pv,
        last_active_ms: stored.t,
        // Set below, from the record's own fields.
        result: SessionResult::new(String::new(), status, kind),
        cache: stored.c,
        requestor: stored.q,
        next_session_url: stored.nu,
        implicit_disclosure: stored.id,
        next: stored.nx,
        awaiting_next: stored.aw,
    };
    rec.result = match stored.r {
        None => bare_result(&rec),
        Some(r) => SessionResult {
            token: r.tk.unwrap_or_else(|| rec.rt.clone()),
            status: status_from(r.s)?,
            kind: kind_from(r.k)?,
            proof_status: r.ps,
            disclosed: r.d,
            signature: r.sg,
            error: r.e,
            next_session: r.n,
        },
    };
    Ok(rec)
}
