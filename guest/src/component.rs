//! WIT export glue: converts between the generated bindings and the crate's own types, and
//! answers the crate's key and arithmetic needs with the host's imports. No logic lives here.

use alloc::{borrow::ToOwned, boxed::Box, string::String, vec::Vec};
use irma_idemix::bigint::{Int, MultiExp, from_be, to_be};
use irma_idemix::issuance::{ClSigning, IssuerSigner};
use irma_idemix::keys::{PrivateKey, PublicKey};
use irma_idemix::scheme::{AttributeType, CredentialType, Scheme};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::keys::KeySource;
use crate::permissions::{Permissions, Requestors};
use crate::record::Kind;
use crate::session::{self, Ctx};
use crate::{
    AppRequest, Config, ConnectRequest, CreatedSession, Effect, Event, HttpAnswer, Outcome,
    Outgoing, Response, Started, Status,
};

// `std_feature`: the bindings use `alloc` only (the crate is `no_std` in wasm).
wit_bindgen::generate!({ world: "irma-session", path: "../wit", std_feature });

use exports::irma::session::session::Guest;
use irma::session::{arith, keys, requestors, types as wit};

struct Component;

export!(Component);

// wasi-libc, for `memcmp` alone: the crate is `no_std`, so nothing else links it, and the
// compiled code calls `memcmp` (a plain function there, with no imports). Here rather than in
// a linker flag, which `RUSTFLAGS` would replace.
#[link(name = "c")]
unsafe extern "C" {}

/// The canonical ABI's allocator, which the host calls to pass lists and strings in. With std,
/// wasi-libc exports it; without, it is here, on the global allocator.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};
    if new_len == 0 {
        // A dangling, aligned pointer: nothing is read or written through it.
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_len, align) else {
        core::arch::wasm32::unreachable()
    };
    // SAFETY: a non-zero size; `old` was made by this function with `old_len` and `align`.
    let new = unsafe {
        if old_len == 0 {
            alloc(layout)
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if new.is_null() {
        handle_alloc_error(layout);
    }
    new
}

impl Guest for Component {
    fn schemas_read() -> Vec<u32> {
        crate::record::SCHEMAS_READ.to_vec()
    }

    fn schema_written() -> u32 {
        crate::record::SCHEMA
    }

    fn self_check(ctx: wit::Context) -> Result<(), String> {
        if cfg!(feature = "broken-self-check") {
            panic!("a guest built to fail its self-check");
        }
        with_ctx(&ctx, session::self_check)
    }

    fn start(
        body: Vec<u8>,
        requestor: String,
        ctx: wit::Context,
    ) -> Result<wit::Started, wit::Response> {
        with_ctx(&ctx, |c| session::start(&body, &requestor, c))
            .map(started)
            .map_err(response)
    }

    fn transition(record: Vec<u8>, event: wit::Event, ctx: wit::Context) -> wit::Outcome {
        #[cfg(feature = "chaos")]
        chaos(&event);
        outcome(with_ctx(&ctx, |c| {
            session::transition(&record, event_from(event), c)
        }))
    }
}

/// Runs `f` with the session context built from the host's: its clock, a generator seeded
/// from its randomness, its configuration, and the imported keys and arithmetic.
fn with_ctx<T>(ctx: &wit::Context, f: impl FnOnce(&mut Ctx) -> T) -> T {
    install_arith();
    let config = config(&ctx.config);
    let mut c = Ctx {
        now_ms: ctx.now_ms,
        rng: rng(&ctx.random),
        config: &config,
        keys: &HostKeys,
        requestors: &HostRequestors,
    };
    f(&mut c)
}

/// Requestor permissions and JWT signing, answered by the host.
struct HostRequestors;

impl Requestors for HostRequestors {
    fn permissions(&self, name: &str) -> Permissions {
        let p = requestors::get_permissions(name);
        Permissions {
            disclose: p.disclose,
            sign: p.sign,
            issue: p.issue,
            hosts: p.hosts,
        }
    }

    fn sign_jwt(&self, claims: &str) -> Option<String> {
        requestors::sign_jwt(claims)
    }
}

/// The host's native multi-exponentiation, installed on first use in this instance.
struct HostArith;

impl MultiExp for HostArith {
    fn multi_exp(&self, modulus: &Int, bases: &[&Int], exps: &[&Int]) -> Int {
        let bases: Vec<Vec<u8>> = bases.iter().map(|b| to_be(b)).collect();
        let exps: Vec<Vec<u8>> = exps.iter().map(|e| to_be(e)).collect();
        from_be(&arith::multi_exp(&to_be(modulus), &bases, &exps))
    }
}

/// The host signs with issuer private keys: it keeps them with their constant-time
/// precomputation, which a guest instance (new for every call) would rebuild every time.
struct HostSigner;

impl IssuerSigner for HostSigner {
    fn sign(&self, issuer: &str, counter: u32, q: &Int, e: &Int, n2: &Int) -> Option<ClSigning> {
        let s = keys::issuer_sign(issuer, counter, &to_be(q), &to_be(e), &to_be(n2))?;
        Some(ClSigning {
            a: from_be(&s.a),
            c: from_be(&s.c),
            e_response: from_be(&s.e_response),
        })
    }
}

fn install_arith() {
    irma_idemix::bigint::set_multi_exp_backend(Box::new(HostArith));
    irma_idemix::issuance::set_issuer_signer(Box::new(HostSigner));
}

fn rng(random: &[u8]) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    for (s, r) in seed.iter_mut().zip(random) {
        *s = *r;
    }
    ChaCha20Rng::from_seed(seed)
}

fn config(c: &wit::Config) -> Config {
    Config {
        url: c.url.clone(),
        max_session_lifetime_secs: c.max_session_lifetime_secs,
        session_result_lifetime_secs: c.session_result_lifetime_secs,
        production: c.production,
        augment_client_return_url: c.augment_client_return_url,
        allow_unsigned_callbacks: c.allow_unsigned_callbacks,
        timestamp_keys: c
            .timestamp_keys
            .iter()
            .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .collect(),
        jwt_key: c.jwt_key,
        jwt_issuer: c.jwt_issuer.clone(),
    }
}

struct HostKeys;

impl KeySource for HostKeys {
    fn credential_type(&self, id: &str) -> Option<CredentialType> {
        let ct = keys::get_credential_type(id)?;
        let mut parts = ct.id.splitn(3, '.');
        let (scheme, issuer) = (parts.next()?.to_owned(), parts.next()?.to_owned());
        Some(CredentialType {
            id: ct.id,
            scheme,
            issuer,
            attributes: ct
                .attributes
                .into_iter()
                .map(|a| AttributeType {
                    id: a.id,
                    optional: a.optional,
                    random_blind: a.random_blind,
                    revocation: a.revocation,
                })
                .collect(),
            singleton: ct.singleton,
            supports_revocation: ct.supports_revocation,
        })
    }

    fn credential_type_by_hash(&self, hash: &[u8; 16]) -> Option<String> {
        keys::find_credential_type(hash)
    }

    fn public_key(&self, issuer: &str, counter: u32) -> Option<PublicKey> {
        let k = keys::get_public_key(issuer, counter)?;
        PublicKey::new(
            &k.issuer,
            k.counter,
            k.expiry,
            from_be(&k.n),
            from_be(&k.z),
            from_be(&k.s),
            k.r.iter().map(|r| from_be(r)).collect(),
        )
        .ok()
    }

    fn latest_private_key(&self, issuer: &str) -> Option<PrivateKey> {
        let k = keys::get_latest_private_key(issuer)?;
        // The host keeps the primes and signs with them (`issuer-sign`).
        Some(PrivateKey::held_elsewhere(k.counter, k.expiry))
    }

    fn scheme(&self, id: &str) -> Option<Scheme> {
        let s = keys::get_scheme(id)?;
        Some(Scheme {
            id: s.id,
            demo: false,
            distributed: s.distributed,
            timestamp_server: s.timestamp_server,
        })
    }
}

fn event_from(e: wit::Event) -> Event {
    let app = |r: wit::AppRequest| AppRequest {
        path: r.path,
        authorization: r.authorization,
        body: r.body,
    };
    match e {
        wit::Event::RequestorStatus => Event::RequestorStatus,
        wit::Event::RequestorResult => Event::RequestorResult,
        wit::Event::RequestorResultJwt => Event::RequestorResultJwt,
        wit::Event::RequestorGetproof => Event::RequestorGetproof,
        wit::Event::RequestorCancel => Event::RequestorCancel,
        wit::Event::AppConnect(c) => Event::AppConnect(ConnectRequest {
            path: c.path,
            authorization: c.authorization,
            min_protocol_version: c.min_protocol_version,
            max_protocol_version: c.max_protocol_version,
        }),
        wit::Event::AppRequest(r) => Event::AppRequest(app(r)),
        wit::Event::AppProofs(r) => Event::AppProofs(app(r)),
        wit::Event::AppCommitments(r) => Event::AppCommitments(app(r)),
        wit::Event::AppCancel => Event::AppCancel,
        wit::Event::AppStatus => Event::AppStatus,
        wit::Event::FrontendStatus(a) => Event::FrontendStatus(a),
        wit::Event::FrontendOptions(r) => Event::FrontendOptions(app(r)),
        wit::Event::FrontendPairingCompleted(a) => Event::FrontendPairingCompleted(a),
        wit::Event::Tick => Event::Tick,
        wit::Event::NextSessionAnswer(a) => Event::NextSessionAnswer(HttpAnswer {
            status: a.status,
            content_type: a.content_type,
            body: a.body,
        }),
    }
}

fn status(s: Status) -> wit::SessionStatus {
    match s {
        Status::Initialized => wit::SessionStatus::Initialized,
        Status::Pairing => wit::SessionStatus::Pairing,
        Status::Connected => wit::SessionStatus::Connected,
        Status::Done => wit::SessionStatus::Done,
        Status::Cancelled => wit::SessionStatus::Cancelled,
        Status::Timeout => wit::SessionStatus::Timeout,
    }
}

fn response(r: Response) -> wit::Response {
    wit::Response {
        status: r.status,
        content_type: r.content_type,
        body: r.body,
    }
}

fn outgoing(o: Outgoing) -> wit::Outgoing {
    wit::Outgoing {
        url: o.url,
        content_type: o.content_type,
        body: o.body,
    }
}

fn created(c: CreatedSession) -> wit::CreatedSession {
    wit::CreatedSession {
        requestor_token: c.requestor_token,
        client_token: c.client_token,
        record: c.record,
        status: status(c.status),
        lapses_at_ms: c.lapses_at_ms,
        wake_at_ms: c.wake_at_ms,
        keep_secs: c.keep_secs,
    }
}

fn outcome(o: Outcome) -> wit::Outcome {
    wit::Outcome {
        record: o.record,
        response: response(o.response),
        status: status(o.status),
        kind: o.kind.map(|k| match k {
            Kind::Disclosing => wit::SessionKind::Disclosing,
            Kind::Signing => wit::SessionKind::Signing,
            Kind::Issuing => wit::SessionKind::Issuing,
        }),
        lapses_at_ms: o.lapses_at_ms,
        wake_at_ms: o.wake_at_ms,
        keep_secs: o.keep_secs,
        effects: o
            .effects
            .into_iter()
            .map(|e| match e {
                Effect::StatusChanged(s) => wit::Effect::StatusChanged(status(s)),
                Effect::Callback(o) => wit::Effect::Callback(outgoing(o)),
            })
            .collect(),
        fetch: o.fetch.map(outgoing),
        created: o.created.map(created),
    }
}

fn started(s: Started) -> wit::Started {
    wit::Started {
        requestor_token: s.requestor_token,
        client_token: s.client_token,
        outcome: outcome(s.outcome),
    }
}

/// Misbehaviour on demand, for the host's containment tests (`--features chaos` only): an app
/// posting proofs `trap`, `loop` or `alloc` makes the guest panic, spin or grow without end.
#[cfg(feature = "chaos")]
fn chaos(event: &wit::Event) {
    if let wit::Event::AppProofs(r) = event {
        match r.body.as_slice() {
            b"trap" => panic!("chaos: trap"),
            b"loop" => loop {
                core::hint::black_box(0u64);
            },
            b"alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            _ => {}
        }
    }
}
