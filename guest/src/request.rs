//! Session requests from requestors (irma-server.md §1.4–§1.6): parsing the plain and extended
//! forms, validating against the schemes, and the server's enrichment (nonce, context, ...).

use alloc::{
    borrow::ToOwned,
    string::{String, ToString},
    vec::Vec,
};
use irma_idemix::bigint::{Int, random_bits};
use irma_idemix::bigjson::Big;
use irma_idemix::disclosure::ConDisCon;
use irma_idemix::issuance::CredentialRequest;
use rand_core::RngCore;
use serde_json::{Map, Value};

use crate::errors::{ErrorKind::*, IrmaError, err};
use crate::keys::Loader;
use crate::record::Kind;

pub const DISCLOSURE_V2: &str = "https://irma.app/ld/request/disclosure/v2";
pub const SIGNATURE_V2: &str = "https://irma.app/ld/request/signature/v2";
pub const ISSUANCE_V2: &str = "https://irma.app/ld/request/issuance/v2";

/// A requestor's request, before validation.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub kind: Kind,
    pub request: Map<String, Value>,
    /// Result-JWT lifetime in seconds (default 120).
    pub validity: u64,
    pub timeout: u64,
    pub callback_url: Option<String>,
    /// `nextSession` as given (its `url` is checked in validation).
    pub next_session: Option<Value>,
    /// `nextSession.url`, once validated.
    pub next_session_url: Option<String>,
}

/// Reads a plain session request (top-level `@context`) or an extended one (`request.@context`).
pub fn parse(body: &[u8]) -> Result<Parsed, IrmaError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        err(
            InvalidRequest,
            format!("could not parse session request: {e}"),
        )
    })?;
    let Value::Object(mut outer) = value else {
        return Err(err(InvalidRequest, "session request is not a JSON object"));
    };
    let (request, extended) = if outer.contains_key("@context") {
        (outer, Map::new())
    } else {
        match outer.remove("request") {
            Some(Value::Object(r)) if r.contains_key("@context") => (r, outer),
            _ => return Err(err(InvalidRequest, "not a session request: no @context")),
        }
    };
    let kind = match request.get("@context").and_then(Value::as_str) {
        Some(DISCLOSURE_V2) => Kind::Disclosing,
        Some(SIGNATURE_V2) => Kind::Signing,
        Some(ISSUANCE_V2) => Kind::Issuing,
        other => return Err(err(InvalidRequest, format!("unknown @context {other:?}"))),
    };
    let uint = |k: &str, default: u64| -> Result<u64, IrmaError> {
        match extended.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                err(
                    InvalidRequest,
                    format!("{k} must be a non-negative integer"),
                )
            }),
        }
    };
    let callback_url = match extended.get("callbackUrl") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(err(InvalidRequest, "callbackUrl must be a string")),
    };
    let next_session = extended
        .get("nextSession")
        .filter(|v| !v.is_null())
        .cloned();
    Ok(Parsed {
        kind,
        validity: uint("validity", 120)?,
        timeout: uint("timeout", 0)?,
        callback_url,
        next_session,
        next_session_url: None,
        request,
    })
}

/// The `disclose` member as a condiscon (empty when absent).
pub fn disclose(request: &Map<String, Value>) -> Result<ConDisCon, IrmaError> {
    match request.get("disclose") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| err(InvalidRequest, format!("disclose: {e}"))),
    }
}

pub fn credentials(request: &Map<String, Value>) -> Result<Vec<CredentialRequest>, IrmaError> {
    match request.get("credentials") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| err(InvalidRequest, format!("credentials: {e}"))),
    }
}

pub fn big_field(request: &Map<String, Value>, key: &str) -> Int {
    request
        .get(key)
        .and_then(|v| serde_json::from_value::<Big>(v.clone()).ok())
        .map(|b| b.0)
        .unwrap_or(Int::ZERO)
}

/// Settings of the server that validation depends on.
pub struct Policy {
    pub production: bool,
    pub augment_client_return_url: bool,
    pub allow_unsigned_callbacks: bool,
    /// The server signs results (callbacks and next-session POSTs may then go out).
    pub jwt_key: bool,
}

/// Validates against the schemes and fills in what the server decides (§1.4 steps 4–7).
/// `requestor_token` is used for `augmentReturnUrl`.
pub fn validate_and_enrich(
    p: &mut Parsed,
    loader: &mut Loader,
    policy: &Policy,
    now: i64,
    requestor_token: &str,
    rng: &mut dyn RngCore,
) -> Result<(), IrmaError> {
    if let Some(next) = &p.next_session {
        let url = next.get("url").and_then(Value::as_str).unwrap_or("");
        if url.is_empty() {
            return Err(err(InvalidRequest, "nextSession.url is empty"));
        }
        p.next_session_url = Some(url.to_owned());
    }
    // Results leave the server unsigned only where the configuration says so.
    if !policy.jwt_key && !policy.allow_unsigned_callbacks {
        for (present, field) in [
            (p.callback_url.is_some(), "callbackUrl"),
            (p.next_session_url.is_some(), "nextSession"),
        ] {
            if present {
                return Err(err(
                    Unsupported,
                    format!(
                        "{field} needs a JWT private key (jwt_privkey) to sign results, or allow_unsigned_callbacks"
                    ),
                ));
            }
        }
    }
    match p.request.get("revocation") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Object(o)) if o.is_empty() => {}
        Some(_) => {
            return Err(err(
                InvalidRequest,
                "revocation is not supported by this server",
            ));
        }
    }
    let cdc = disclose(&p.request)?;
    for id in cdc.iter().flatten().flatten().map(|a| a.id()) {
        check_identifier(loader, id)?;
    }
    match p.kind {
        Kind::Disclosing if cdc.iter().flatten().all(|con| con.is_empty()) => {
            return Err(err(
                InvalidRequest,
                "disclosure request asks for no attributes",
            ));
        }
        Kind::Signing => {
            if cdc.is_empty() {
                return Err(err(
                    InvalidRequest,
                    "signature request asks for no attributes",
                ));
            }
            if !p.request.get("message").is_some_and(Value::is_string) {
                return Err(err(InvalidRequest, "signature request has no message"));
            }
        }
        Kind::Issuing => {
            let mut creds = credentials(&p.request)?;
            if creds.is_empty() {
                return Err(err(InvalidRequest, "issuance request has no credentials"));
            }
            for c in &mut creds {
                if !loader.credential_type(&c.credential_type) {
                    return Err(err(
                        InvalidRequest,
                        format!("unknown credential type {}", c.credential_type),
                    ));
                }
                let issuer = loader.conf.credential_types[&c.credential_type].issuer_id();
                if loader.latest_private_key(&issuer).is_none() {
                    return Err(err(
                        InvalidRequest,
                        format!("missing private key of issuer {issuer}"),
                    ));
                }
                c.key_counter = None;
                c.prepare(&loader.conf, now)
                    .map_err(|e| err(InvalidRequest, e.to_string()))?;
            }
            p.request.insert(
                "credentials".into(),
                serde_json::to_value(creds).expect("serializes"),
            );
        }
        _ => {}
    }
    if p.request.get("augmentReturnUrl").and_then(Value::as_bool) == Some(true) {
        let Some(url) = p
            .request
            .get("clientReturnUrl")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        else {
            return Err(err(
                InvalidRequest,
                "augmentReturnUrl needs a clientReturnUrl",
            ));
        };
        if !policy.augment_client_return_url {
            return Err(err(
                InvalidRequest,
                "augmentReturnUrl is not enabled on this server",
            ));
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let augmented = format!("{url}{sep}token={requestor_token}");
        p.request
            .insert("clientReturnUrl".into(), Value::String(augmented));
    }
    let nonce = random_bits(rng, irma_idemix::params::NONCE_BITS);
    p.request.insert(
        "context".into(),
        serde_json::to_value(Big(Int::ONE)).expect("serializes"),
    );
    p.request.insert(
        "nonce".into(),
        serde_json::to_value(Big(nonce)).expect("serializes"),
    );
    p.request
        .insert("devMode".into(), Value::Bool(!policy.production));
    Ok(())
}

/// An attribute (`s.i.c.a`) or credential (`s.i.c`) identifier must name something that exists.
fn check_identifier(loader: &mut Loader, id: &str) -> Result<(), IrmaError> {
    let parts: Vec<&str> = id.split('.').collect();
    let ok = match parts.as_slice() {
        [s, i, c] => loader.credential_type(&format!("{s}.{i}.{c}")),
        [s, i, c, a] => {
            let ct = format!("{s}.{i}.{c}");
            loader.credential_type(&ct) && loader.conf.credential_types[&ct].base_index(a).is_some()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            InvalidRequest,
            format!("unknown attribute or credential type {id}"),
        ))
    }
}
