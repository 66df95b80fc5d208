//! The session state machine (irma-server.md §2): one pure function per event, applied to a
//! decoded record, producing the new record, the HTTP response and the effects.

use alloc::{
    borrow::ToOwned,
    string::{String, ToString},
    vec::Vec,
};
use irma_idemix::disclosure::{self, Check, ConDisCon, Disclosure};
use irma_idemix::issuance::{self, IssuanceRequest, IssueCommitmentMessage};
use irma_idemix::proofs::Proof;
use irma_idemix::signature::{self, SignatureRequest, SignedMessage, TimestampPolicy};
use irma_idemix::{Error as IdemixError, ProofStatus};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::errors::{ErrorKind::*, IrmaError, err};
use crate::keys::{KeySource, Loader};
use crate::permissions::{self, Requestors};
use crate::record::{CachedResponse, Kind, SessionRecord, SessionResult, Status};
use crate::request::{self, Policy};
use crate::{Config, Effect, Event, Outcome, Outgoing, Response, Started};
use crate::{chain, outputs};

/// The one protocol version the server speaks to apps (irma-server.md §1.9).
const PROTOCOL: (u32, u32) = (2, 8);
/// How long a cached app response may be replayed (§1.11).
const CACHE_MS: i64 = 10_000;

/// Everything a transition may use besides the record.
pub struct Ctx<'a> {
    pub now_ms: i64,
    pub rng: ChaCha20Rng,
    pub config: &'a Config,
    pub keys: &'a dyn KeySource,
    pub requestors: &'a dyn Requestors,
}

impl Ctx<'_> {
    pub(crate) fn now(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    pub(crate) fn token(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut out = String::with_capacity(20);
        while out.len() < 20 {
            let b = (self.rng.next_u32() & 0xff) as usize;
            if b < 248 {
                out.push(ALPHABET[b % 62] as char);
            }
        }
        out
    }
}

/// `POST /session`: `requestor` is who the host authenticated (`""` without authentication).
pub fn start(body: &[u8], requestor: &str, ctx: &mut Ctx) -> Result<Started, Response> {
    let parsed = request::parse(body).map_err(|e| e.response())?;
    let (record, pointer) =
        new_session(parsed, requestor, None, Vec::new(), ctx).map_err(|e| e.response())?;
    let keep_secs = keep_secs(&record, ctx);
    Ok(Started {
        requestor_token: record.rt.clone(),
        client_token: record.ct.clone(),
        outcome: Outcome {
            record: Some(record.encode()),
            response: Response::json(200, &pointer),
            status: Status::Initialized,
            kind: Some(record.kind),
            lapses_at_ms: lapses_at_ms(&record, ctx.config),
            wake_at_ms: wake_at_ms(&record, ctx.config),
            keep_secs,
            effects: vec![Effect::StatusChanged(Status::Initialized)],
            fetch: None,
            created: None,
        },
    })
}

/// A new session from a parsed request (§1.4): the requestor's permissions (§3.3), validation
/// against the schemes and the server's enrichment, then the record and the requestor's answer
/// (`sessionPtr`, `token`, `frontendRequest`). A chained session passes the frontend
/// authorization it keeps and what earlier sessions disclosed.
pub(crate) fn new_session(
    mut parsed: request::Parsed,
    requestor: &str,
    fa: Option<String>,
    implicit_disclosure: Vec<Value>,
    ctx: &mut Ctx,
) -> Result<(SessionRecord, Value), IrmaError> {
    let perms = ctx.requestors.permissions(requestor);
    let cdc = request::disclose(&parsed.request)?;
    let creds = match parsed.kind {
        Kind::Issuing => request::credentials(&parsed.request)?,
        _ => Vec::new(),
    };
    permissions::authorize(&perms, parsed.kind, &cdc, &creds)?;
    let host = parsed
        .request
        .get("host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    if let Some(h) = &host {
        permissions::authorize_host(&perms, h, url_host(&ctx.config.url))?;
    }
    let rt = ctx.token();
    let ct = ctx.token();
    let fa = fa.unwrap_or_else(|| ctx.token());
    let mut loader = Loader::new(ctx.keys);
    let policy = Policy {
        production: ctx.config.production,
        augment_client_return_url: ctx.config.augment_client_return_url,
        allow_unsigned_callbacks: ctx.config.allow_unsigned_callbacks,
        jwt_key: ctx.config.jwt_key,
    };
    let now = ctx.now();
    request::validate_and_enrich(&mut parsed, &mut loader, &policy, now, &rt, &mut ctx.rng)?;
    let kind = parsed.kind;
    let pairing_hint = kind != Kind::Disclosing
        || parsed.next_session_url.is_some()
        || cdc.iter().flatten().flatten().any(|a| {
            matches!(
                a,
                irma_idemix::disclosure::AttributeRequest::Full { value: Some(_), .. }
            )
        });
    let record = SessionRecord {
        schema: crate::record::SCHEMA,
        rt: rt.clone(),
        ct: ct.clone(),
        fa: fa.clone(),
        ca: None,
        status: Status::Initialized,
        kind,
        request: parsed.request,
        validity: parsed.validity,
        timeout: parsed.timeout,
        callback_url: parsed.callback_url,
        pairing_method: "none".into(),
        pairing_code: None,
        protocol_version: None,
        last_active_ms: ctx.now_ms,
        result: SessionResult::new(rt.clone(), Status::Initialized, kind),
        cache: None,
        requestor: requestor.into(),
        next_session_url: parsed.next_session_url,
        implicit_disclosure,
        next: None,
        awaiting_next: false,
    };
    let mut u = format!("{}session/{ct}", ctx.config.url);
    if let Some(h) = host {
        u = u.replacen(url_host(&ctx.config.url), &h, 1);
    }
    let mut pointer = json!({
        "sessionPtr": {"u": u, "irmaqr": kind.name()},
        "token": rt,
        "frontendRequest": {"authorization": fa, "minProtocolVersion": "1.0", "maxProtocolVersion": "1.1"},
    });
    if pairing_hint {
        pointer["frontendRequest"]["pairingHint"] = Value::Bool(true);
    }
    Ok((record, pointer))
}

/// The host (and port) part of a URL.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// The self-check the host runs before a guest may serve: a synthetic session (no key material
/// needed) is written, read back, polled, cancelled and its result read.
pub fn self_check(ctx: &mut Ctx) -> Result<(), String> {
    let rt = "SelfCheckRequestor00".to_owned();
    let rec = SessionRecord {
        schema: crate::record::SCHEMA,
        rt: rt.clone(),
        ct: "SelfCheckClient00000".into(),
        fa: "SelfCheckFrontend000".into(),
        ca: None,
        status: Status::Initialized,
        kind: Kind::Disclosing,
        request: serde_json::Map::new(),
        validity: 120,
        timeout: 0,
        callback_url: None,
        pairing_method: "none".into(),
        pairing_code: None,
        protocol_version: None,
        last_active_ms: ctx.now_ms,
        result: SessionResult::new(rt, Status::Initialized, Kind::Disclosing),
        cache: None,
        requestor: String::new(),
        next_session_url: None,
        implicit_disclosure: Vec::new(),
        next: None,
        awaiting_next: false,
    };
    let bytes = rec.encode();
    if SessionRecord::decode(&bytes)? != rec {
        return Err("a record does not read back as written".into());
    }
    let polled = transition(&bytes, Event::RequestorStatus, ctx);
    if (
        polled.response.status,
        polled.response.body.as_slice(),
        &polled.record,
    ) != (200, &b"\"INITIALIZED\""[..], &None)
    {
        return Err("a status poll does not answer INITIALIZED without a write".into());
    }
    let cancelled = transition(&bytes, Event::RequestorCancel, ctx);
    let Some(after) = cancelled
        .record
        .filter(|_| cancelled.status == Status::Cancelled)
    else {
        return Err("a cancel does not end the session".into());
    };
    let result = transition(&after, Event::RequestorResult, ctx);
    let body: serde_json::Value =
        serde_json::from_slice(&result.response.body).map_err(|e| e.to_string())?;
    if body["status"] != "CANCELLED" {
        return Err(format!("the result of a cancelled session reads {body}"));
    }
    Ok(())
}

/// Applies `event` to the encoded record.
pub fn transition(bytes: &[u8], event: Event, ctx: &mut Ctx) -> Outcome {
    let mut rec = match SessionRecord::decode(bytes) {
        Ok(r) => r,
        Err(e) => {
            // A record we cannot read: leave it as it is, and say so.
            return Outcome {
                record: None,
                response: err(InternalError, e).response(),
                status: Status::Cancelled,
                kind: None,
                lapses_at_ms: None,
                wake_at_ms: None,
                keep_secs: 0,
                effects: vec![],
                fetch: None,
                created: None,
            };
        }
    };
    let status_before = rec.status;
    let mut effects = Vec::new();
    // The lazy timeout, applied on every load (§2.3).
    let timed_out = !rec.status.is_final() && ctx.now_ms > deadline_ms(&rec, ctx.config);
    if timed_out {
        rec.status = Status::Timeout;
        rec.result.status = Status::Timeout;
        rec.last_active_ms = ctx.now_ms;
    }
    let mut created = None;
    // Events that only read the record answer from a shared borrow, so they cannot change it
    // and need no copy to compare with; the others are compared with a snapshot.
    let (response, changed) = match read_only(&rec, &event, ctx) {
        Some(response) => (response, timed_out),
        None => {
            let before = rec.clone();
            let response = change(&mut rec, event, ctx, &mut created);
            let changed = timed_out || rec != before;
            (response, changed)
        }
    };
    if rec.status != status_before {
        effects.push(Effect::StatusChanged(rec.status));
        if rec.status.is_final()
            && let Some(url) = &rec.callback_url
        {
            // As the reference: the callback URL always ends in a slash.
            let url = if url.ends_with('/') {
                url.clone()
            } else {
                format!("{url}/")
            };
            let (content_type, body) =
                outputs::result_body(&rec, ctx.config, ctx.requestors, ctx.now());
            effects.push(Effect::Callback(Outgoing {
                url,
                content_type,
                body,
            }));
        }
    }
    // Valid proofs of a chained session: ask for the next session before anything is
    // committed (the POST goes to the exact URL, with the result still CONNECTED).
    let fetch = match (&rec.next_session_url, rec.awaiting_next) {
        (Some(url), true) => {
            let (content_type, body) =
                outputs::result_body(&rec, ctx.config, ctx.requestors, ctx.now());
            Some(Outgoing {
                url: url.clone(),
                content_type,
                body,
            })
        }
        _ => None,
    };
    let keep_secs = keep_secs(&rec, ctx);
    Outcome {
        record: changed.then(|| rec.encode()),
        response,
        status: rec.status,
        kind: Some(rec.kind),
        lapses_at_ms: lapses_at_ms(&rec, ctx.config),
        wake_at_ms: wake_at_ms(&rec, ctx.config),
        keep_secs,
        effects,
        fetch,
        created,
    }
}

/// The answer to an event that only reads the record; `None` for the others.
fn read_only(rec: &SessionRecord, event: &Event, ctx: &Ctx) -> Option<Response> {
    Some(match event {
        Event::RequestorStatus | Event::AppStatus => Response::json(200, &rec.status.name()),
        Event::RequestorResult => Response::json(200, &rec.result),
        Event::RequestorResultJwt => {
            let claims = outputs::result_claims(rec, ctx.config, ctx.now());
            outputs::signed(&claims, ctx.requestors).unwrap_or_else(|e| e.response())
        }
        Event::RequestorGetproof => {
            let claims = outputs::getproof_claims(rec, ctx.config, ctx.now());
            outputs::signed(&claims, ctx.requestors).unwrap_or_else(|e| e.response())
        }
        Event::FrontendStatus(auth) => frontend(rec, auth.as_deref())
            .map(|()| {
                let mut status = json!({"status": rec.status.name()});
                if let Some(next) = &rec.next {
                    status["nextSession"] = next.clone();
                }
                Response::json(200, &status)
            })
            .unwrap_or_else(|e| e.response()),
        Event::Tick => Response::empty(204),
        _ => return None,
    })
}

/// The answer to an event that may change the record, which it changes.
fn change(
    rec: &mut SessionRecord,
    event: Event,
    ctx: &mut Ctx,
    created: &mut Option<crate::CreatedSession>,
) -> Response {
    match event {
        Event::NextSessionAnswer(a) => {
            let (response, next) = chain::answer(rec, ctx, a);
            *created = next;
            response
        }
        Event::RequestorCancel | Event::AppCancel => {
            cancel(rec, ctx, None);
            Response::empty(200)
        }
        Event::FrontendOptions(req) => frontend(rec, req.authorization.as_deref())
            .and_then(|()| frontend_options(rec, &req.body, ctx))
            .unwrap_or_else(|e| e.response()),
        Event::FrontendPairingCompleted(auth) => frontend(rec, auth.as_deref())
            .and_then(|()| pairing_completed(rec))
            .unwrap_or_else(|e| e.response()),
        Event::AppConnect(c) => cached(rec, ctx, &c.path, &[], |rec, ctx| connect(rec, ctx, &c)),
        Event::AppRequest(r) => cached(rec, ctx, &r.path, &r.body, |rec, _| {
            gate(rec, r.authorization.as_deref())?;
            Ok(Response::json(200, &rec.request))
        }),
        Event::AppProofs(r) => cached(rec, ctx, &r.path, &r.body, |rec, ctx| {
            if rec.kind == Kind::Issuing {
                return Err(err(InvalidRequest, "proofs posted to an issuance session"));
            }
            gate(rec, r.authorization.as_deref())?;
            proofs(rec, ctx, &r.body)
        }),
        Event::AppCommitments(r) => cached(rec, ctx, &r.path, &r.body, |rec, ctx| {
            if rec.kind != Kind::Issuing {
                return Err(err(
                    InvalidRequest,
                    "commitments posted to a session that is not an issuance",
                ));
            }
            gate(rec, r.authorization.as_deref())?;
            commitments(rec, ctx, &r.body)
        }),
        Event::RequestorStatus
        | Event::AppStatus
        | Event::RequestorResult
        | Event::RequestorResultJwt
        | Event::RequestorGetproof
        | Event::FrontendStatus(_)
        | Event::Tick => unreachable!("answered by read_only"),
    }
}

/// When a session that is not finished times out.
fn deadline_ms(rec: &SessionRecord, config: &Config) -> i64 {
    let secs = if rec.status == Status::Initialized && rec.timeout != 0 {
        rec.timeout
    } else {
        config.max_session_lifetime_secs as u64
    };
    rec.last_active_ms + secs as i64 * 1000
}

/// The instant after which the lazy timeout turns the status into TIMEOUT (`now > deadline`).
pub(crate) fn lapses_at_ms(rec: &SessionRecord, config: &Config) -> Option<i64> {
    (!rec.status.is_final()).then(|| deadline_ms(rec, config))
}

/// When the host must tick the session unasked: at its timeout, if a callback must then go out.
pub(crate) fn wake_at_ms(rec: &SessionRecord, config: &Config) -> Option<i64> {
    rec.callback_url.as_ref().and(lapses_at_ms(rec, config))
}

/// How long the store must keep the record: the remaining deadline plus the result lifetime, or
/// for a finished session what is left of its result lifetime.
pub(crate) fn keep_secs(rec: &SessionRecord, ctx: &Ctx) -> u32 {
    let result_ms = ctx.config.session_result_lifetime_secs as i64 * 1000;
    let until = if rec.status.is_final() {
        rec.last_active_ms + result_ms
    } else {
        deadline_ms(rec, ctx.config) + result_ms
    };
    ((until - ctx.now_ms).max(1000) / 1000).min(u32::MAX as i64) as u32
}

/// Ends the session as CANCELLED; `error` set for a failure, none for a DELETE.
fn cancel(rec: &mut SessionRecord, ctx: &Ctx, error: Option<&IrmaError>) {
    if rec.status.is_final() {
        return;
    }
    rec.status = Status::Cancelled;
    rec.last_active_ms = ctx.now_ms;
    rec.result = SessionResult {
        error: error.map(IrmaError::body),
        ..SessionResult::new(rec.rt.clone(), Status::Cancelled, rec.kind)
    };
}

/// Fails the session with `e` and answers with it.
fn fail(rec: &mut SessionRecord, ctx: &Ctx, e: IrmaError) -> Result<Response, IrmaError> {
    cancel(rec, ctx, Some(&e));
    Err(e)
}

fn frontend(rec: &SessionRecord, auth: Option<&str>) -> Result<(), IrmaError> {
    if auth == Some(rec.fa.as_str()) {
        Ok(())
    } else {
        Err(err(UnauthorizedSession, ""))
    }
}

/// The pairing gate of `/request`, `/proofs` and `/commitments`.
fn gate(rec: &SessionRecord, auth: Option<&str>) -> Result<(), IrmaError> {
    match rec.status {
        Status::Pairing => Err(err(PairingRequired, "")),
        Status::Connected if auth.is_some() && auth == rec.ca.as_deref() => Ok(()),
        Status::Connected => Err(err(UnauthorizedSession, "")),
        _ => Err(err(
            UnexpectedRequest,
            "Session not yet started or already finished",
        )),
    }
}

/// Replays the cached answer to an identical retry, or runs `handle` and caches its answer.
fn cached(
    rec: &mut SessionRecord,
    ctx: &mut Ctx,
    path: &str,
    body: &[u8],
    handle: impl FnOnce(&mut SessionRecord, &mut Ctx) -> Result<Response, IrmaError>,
) -> Response {
    let hash = hex(&Sha256::digest(body));
    if let Some(c) = &rec.cache
        && c.path == path
        && c.body_hash == hash
        && !c.body.is_empty()
        && c.session_status == rec.status
        && ctx.now_ms - rec.last_active_ms < CACHE_MS
    {
        return Response {
            status: c.status_code,
            content_type: c.content_type.clone(),
            body: c.body.clone().into_bytes(),
        };
    }
    rec.cache = None;
    let response = handle(rec, ctx).unwrap_or_else(|e| e.response());
    rec.cache = Some(CachedResponse {
        path: path.into(),
        body_hash: hash,
        status_code: response.status,
        content_type: response.content_type.clone(),
        body: String::from_utf8_lossy(&response.body).into_owned(),
        session_status: rec.status,
    });
    response
}

fn parse_version(v: Option<&str>) -> Option<(u32, u32)> {
    let v = v?.trim().trim_matches('"');
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// App `GET /`: negotiate the protocol version and hand out the request (§1.9).
fn connect(
    rec: &mut SessionRecord,
    ctx: &mut Ctx,
    c: &crate::ConnectRequest,
) -> Result<Response, IrmaError> {
    let (Some(min), Some(max)) = (
        parse_version(c.min_protocol_version.as_deref()),
        parse_version(c.max_protocol_version.as_deref()),
    ) else {
        return Err(err(
            MalformedInput,
            "missing or malformed protocol version headers",
        ));
    };
    if rec.status != Status::Initialized {
        return Err(err(UnexpectedRequest, "Session already started"));
    }
    rec.last_active_ms = ctx.now_ms;
    if min > PROTOCOL || max < PROTOCOL || max < min {
        return fail(
            rec,
            ctx,
            err(
                ProtocolVersion,
                format!(
                    "protocol version range {}.{}-{}.{} not supported",
                    min.0, min.1, max.0, max.1
                ),
            ),
        );
    }
    let Some(auth) = c.authorization.clone().filter(|a| !a.is_empty()) else {
        return fail(
            rec,
            ctx,
            err(UnauthorizedSession, "No authorization header provided"),
        );
    };
    rec.ca = Some(auth);
    let version = format!("{}.{}", PROTOCOL.0, PROTOCOL.1);
    rec.protocol_version = Some(version.clone());
    rec.request
        .insert("protocolVersion".into(), Value::String(version.clone()));
    let mut options =
        json!({"@context": "https://irma.app/ld/options/v1", "pairingMethod": rec.pairing_method});
    let mut body =
        json!({"@context": "https://irma.app/ld/request/client/v1", "protocolVersion": version});
    if rec.pairing_method == "pin" {
        options["pairingCode"] = json!(rec.pairing_code);
        rec.status = Status::Pairing;
    } else {
        body["request"] = Value::Object(rec.request.clone());
        rec.status = Status::Connected;
    }
    rec.result.status = rec.status;
    body["options"] = options;
    Ok(Response::json(200, &body))
}

fn frontend_options(
    rec: &mut SessionRecord,
    body: &[u8],
    ctx: &mut Ctx,
) -> Result<Response, IrmaError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| err(MalformedInput, e.to_string()))?;
    if v.get("@context").and_then(Value::as_str)
        != Some("https://irma.app/ld/request/frontendoptions/v1")
    {
        return Err(err(MalformedInput, "wrong or missing @context"));
    }
    if rec.status != Status::Initialized {
        return Err(err(UnexpectedRequest, "session already started"));
    }
    match v.get("pairingMethod").and_then(Value::as_str).unwrap_or("") {
        "" => {}
        "none" => {
            rec.pairing_method = "none".into();
            rec.pairing_code = None;
        }
        "pin" => {
            rec.pairing_method = "pin".into();
            rec.pairing_code = Some(format!("{:04}", ctx.rng.next_u32() % 10_000));
        }
        other => {
            return Err(err(
                UnexpectedRequest,
                format!("unsupported pairing method {other}"),
            ));
        }
    }
    let mut out =
        json!({"@context": "https://irma.app/ld/options/v1", "pairingMethod": rec.pairing_method});
    if let Some(code) = &rec.pairing_code {
        out["pairingCode"] = json!(code);
    }
    Ok(Response::json(200, &out))
}

fn pairing_completed(rec: &mut SessionRecord) -> Result<Response, IrmaError> {
    if rec.status != Status::Pairing {
        return Err(err(UnexpectedRequest, "Pairing was not enabled"));
    }
    rec.status = Status::Connected;
    rec.result.status = Status::Connected;
    Ok(Response::empty(204))
}

/// Records the verdict and marks the session DONE; a chained session with a valid verdict stays
/// CONNECTED, awaiting its next session (see [`chain`]), and with any other verdict it fails
/// with `NEXT_SESSION` and stays as it was.
fn finish(
    rec: &mut SessionRecord,
    ctx: &Ctx,
    status: ProofStatus,
    disclosed: Option<Value>,
    signature: Option<Value>,
) -> Result<(), IrmaError> {
    rec.last_active_ms = ctx.now_ms;
    let chained = rec.next_session_url.is_some();
    if chained && status != ProofStatus::Valid {
        return Err(err(
            NextSession,
            format!("no next session after proofs that are {status:?}"),
        ));
    }
    rec.result.proof_status = Some(status);
    // Go's `omitempty`: an empty list (issuance without disclosure) is left out.
    rec.result.disclosed = disclosed.filter(|d| !d.as_array().is_some_and(Vec::is_empty));
    rec.result.signature = signature;
    if chained {
        rec.awaiting_next = true;
    } else {
        rec.status = Status::Done;
        rec.result.status = Status::Done;
    }
    Ok(())
}

/// What the request asks to disclose, with what earlier sessions of a chain disclosed.
fn disclose_with_implicit(rec: &SessionRecord) -> Result<ConDisCon, IrmaError> {
    let mut cdc = request::disclose(&rec.request)?;
    for d in &rec.implicit_disclosure {
        cdc.push(
            serde_json::from_value(d.clone())
                .map_err(|e| err(InternalError, format!("implicit disclosure: {e}")))?,
        );
    }
    Ok(cdc)
}

fn disclosed_json(v: &irma_idemix::Verdict) -> Option<Value> {
    v.disclosed
        .as_ref()
        .map(|d| serde_json::to_value(d).expect("serializes"))
}

/// App `POST /proofs` in a disclosure or signing session.
fn proofs(rec: &mut SessionRecord, ctx: &mut Ctx, body: &[u8]) -> Result<Response, IrmaError> {
    let cdc = disclose_with_implicit(rec)?;
    let context = request::big_field(&rec.request, "context");
    let nonce = request::big_field(&rec.request, "nonce");
    let now = ctx.now();
    let mut loader = Loader::new(ctx.keys);
    let (verdict, signature) = if rec.kind == Kind::Signing {
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| err(MalformedInput, e.to_string()))?;
        let sm: SignedMessage =
            serde_json::from_value(raw.clone()).map_err(|e| err(MalformedInput, e.to_string()))?;
        rec.last_active_ms = ctx.now_ms;
        loader.for_proofs(&sm.signature);
        let message = rec
            .request
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let req = SignatureRequest {
            context: &context,
            nonce: &nonce,
            message: &message,
            disclose: &cdc,
            revocation: &[],
        };
        let policy = TimestampPolicy {
            trusted_keys: ctx.config.timestamp_keys.clone(),
        };
        (
            signature::verify(&loader.conf, &sm, &req, &policy, now),
            Some(raw),
        )
    } else {
        let d: Disclosure =
            serde_json::from_slice(body).map_err(|e| err(MalformedInput, e.to_string()))?;
        rec.last_active_ms = ctx.now_ms;
        loader.for_proofs(&d.proofs);
        let check = Check {
            context: &context,
            nonce: &nonce,
            issig: false,
            disclose: &cdc,
            revocation: &[],
            valid_at: now,
        };
        (
            disclosure::verify(&loader.conf, &d.proofs, &d.indices, &check),
            None,
        )
    };
    let verdict = match verdict {
        Ok(v) => v,
        Err(IdemixError::UnknownPublicKey { .. } | IdemixError::UnknownCredentialType(_)) => {
            return fail(
                rec,
                ctx,
                err(UnknownPublicKey, "proof uses an unknown public key"),
            );
        }
        Err(IdemixError::Malformed(m)) => return fail(rec, ctx, err(MalformedInput, m)),
        Err(e) => return fail(rec, ctx, err(Exception, e.to_string())),
    };
    // As the reference: the timestamp's server is the scheme's, not what the app says.
    let signature = signature.map(|mut sig| {
        let scheme = verdict
            .disclosed
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .next()
            .and_then(|a| a.id.split('.').next())
            .and_then(|s| ctx.keys.scheme(s));
        if let (Some(ts), Some(url)) = (
            sig.get_mut("timestamp").filter(|t| t.is_object()),
            scheme.and_then(|s| s.timestamp_server),
        ) {
            ts["ServerUrl"] = Value::String(url);
        }
        sig
    });
    finish(
        rec,
        ctx,
        verdict.status,
        disclosed_json(&verdict),
        signature,
    )?;
    Ok(Response::json(200, &json!({"proofStatus": verdict.status})))
}

/// App `POST /commitments` in an issuance session.
fn commitments(rec: &mut SessionRecord, ctx: &mut Ctx, body: &[u8]) -> Result<Response, IrmaError> {
    let msg: IssueCommitmentMessage =
        serde_json::from_slice(body).map_err(|e| err(MalformedInput, e.to_string()))?;
    rec.last_active_ms = ctx.now_ms;
    let cdc = disclose_with_implicit(rec)?;
    let creds = request::credentials(&rec.request)?;
    let context = request::big_field(&rec.request, "context");
    let nonce = request::big_field(&rec.request, "nonce");
    let now = ctx.now();
    let mut loader = Loader::new(ctx.keys);
    loader.for_proofs(&msg.combined_proofs);
    for c in &creds {
        if loader.credential_type(&c.credential_type) {
            let issuer = loader.conf.credential_types[&c.credential_type].issuer_id();
            loader.latest_private_key(&issuer);
        }
    }
    let req = IssuanceRequest {
        context: &context,
        nonce: &nonce,
        credentials: &creds,
        disclose: &cdc,
        revocation: &[],
    };
    let verdict = match issuance::verify_commitments(&loader.conf, &msg, &req, now) {
        Ok(v) => v,
        Err(IdemixError::Malformed(m)) => return fail(rec, ctx, err(MalformedInput, m)),
        Err(IdemixError::UnknownPublicKey { .. } | IdemixError::UnknownCredentialType(_)) => {
            return fail(
                rec,
                ctx,
                err(MalformedInput, "proof uses an unknown public key"),
            );
        }
        Err(IdemixError::Unsupported(m)) if m.contains("keyshare") => {
            return fail(rec, ctx, err(KeyshareProofMissing, m));
        }
        Err(e) => return fail(rec, ctx, err(Exception, e.to_string())),
    };
    match verdict.status {
        ProofStatus::Valid => {}
        ProofStatus::Expired => return fail(rec, ctx, err(AttributesExpired, "")),
        s => return fail(rec, ctx, err(InvalidProofs, format!("{s:?}"))),
    }
    let us = &msg.combined_proofs[msg.combined_proofs.len() - creds.len()..];
    let mut sigs = Vec::with_capacity(creds.len());
    for (cr, p) in creds.iter().zip(us) {
        let Proof::U(u) = p else {
            return fail(rec, ctx, err(MalformedInput, "expected a commitment proof"));
        };
        match issuance::sign(&loader.conf, cr, &u.u, &msg.n_2, now, &mut ctx.rng) {
            Ok(s) => sigs.push(s),
            Err(e) => return fail(rec, ctx, err(IssuanceFailed, e.to_string())),
        }
    }
    finish(rec, ctx, ProofStatus::Valid, disclosed_json(&verdict), None)?;
    Ok(Response::json(
        200,
        &json!({"proofStatus": "VALID", "sigs": sigs}),
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
