//! Session results as requestors receive them (irma-server.md §3.4): the result object, the
//! result JWT of `/result-jwt`, callbacks and next-session POSTs, and the legacy `/getproof`
//! JWT. JWTs are signed by the host with the server's key (`Requestors::sign_jwt`).

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use serde_json::{Map, Value, json};

use crate::errors::{ErrorKind::*, IrmaError, err};
use crate::permissions::Requestors;
use crate::record::{Kind, SessionRecord};
use crate::{Config, Response};

/// The result object with `iss`, `iat`, `exp` (= `iat` + the request's validity) and `sub`
/// (`disclosing_result`, ...), as claims.
pub fn result_claims(rec: &SessionRecord, config: &Config, now: i64) -> Map<String, Value> {
    let Value::Object(mut claims) = serde_json::to_value(&rec.result).expect("serializes") else {
        unreachable!("a result is an object")
    };
    if !config.jwt_issuer.is_empty() {
        claims.insert("iss".into(), json!(config.jwt_issuer));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + rec.validity as i64));
    claims.insert("sub".into(), json!(format!("{}_result", rec.kind.name())));
    claims
}

/// The claims of `/getproof`, as the `irma_api_server` had them.
pub fn getproof_claims(rec: &SessionRecord, config: &Config, now: i64) -> Map<String, Value> {
    let sub = match rec.kind {
        Kind::Disclosing => "disclosure_result",
        Kind::Signing => "abs_result",
        Kind::Issuing => "issue_result",
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(sub));
    claims.insert("iat".into(), json!(now));
    if !config.jwt_issuer.is_empty() {
        claims.insert("iss".into(), json!(config.jwt_issuer));
    }
    if rec.validity != 0 {
        claims.insert("exp".into(), json!(now + rec.validity as i64));
    }
    let status = rec
        .result
        .proof_status
        .map(|s| serde_json::to_value(s).expect("serializes"))
        .unwrap_or(json!(""));
    claims.insert("status".into(), status);
    let mut attributes = Map::new();
    for attr in rec
        .result
        .disclosed
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
    {
        if let Some(id) = attr.get("id").and_then(Value::as_str) {
            attributes.insert(
                id.to_owned(),
                attr.get("rawvalue").cloned().unwrap_or(Value::Null),
            );
        }
    }
    claims.insert("attributes".into(), Value::Object(attributes));
    if let Some(sig) = &rec.result.signature {
        claims.insert("signature".into(), sig.clone());
    }
    claims
}

/// `claims` signed by the host, as a `text/plain` answer.
pub fn signed(
    claims: &Map<String, Value>,
    requestors: &dyn Requestors,
) -> Result<Response, IrmaError> {
    let claims = serde_json::to_string(claims).expect("serializes");
    let jwt = requestors
        .sign_jwt(&claims)
        .ok_or_else(|| err(Exception, "JWT signing not supported"))?;
    Ok(Response {
        status: 200,
        content_type: "text/plain".into(),
        body: jwt.into_bytes(),
    })
}

/// What a callback or next-session POST carries: the result JWT (`text/plain`) when the
/// server has a JWT key, else the result object (`application/json`).
pub fn result_body(
    rec: &SessionRecord,
    config: &Config,
    requestors: &dyn Requestors,
    now: i64,
) -> (String, Vec<u8>) {
    if config.jwt_key
        && let Some(jwt) = requestors
            .sign_jwt(&serde_json::to_string(&result_claims(rec, config, now)).expect("serializes"))
    {
        return ("text/plain".into(), jwt.into_bytes());
    }
    (
        "application/json".into(),
        serde_json::to_vec(&rec.result).expect("serializes"),
    )
}
