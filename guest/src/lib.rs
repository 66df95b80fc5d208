//! The session guest: the IRMA session state machine and protocol logic, compiled to a
//! `wasm32-wasip2` component that the irma-server host runs for every request (see
//! `wit/irma-session.wit`). It is also an ordinary library, so tests and benchmarks can call
//! the same logic natively.
//!
//! - [`session`]: the state machine, one function per event (start, connect, proofs, ...).
//! - [`request`]: session requests from requestors: parsing, validation, enrichment.
//! - [`permissions`]: what a requestor may ask for, and what the host signs for it.
//! - [`outputs`]: results as requestors receive them: JWTs, callbacks, next-session bodies.
//! - [`chain`]: chained sessions (`nextSession`).
//! - [`record`]: the stored session record and its schema version.
//! - [`keys`]: key material looked up on demand (WIT imports in the component).
//! - [`errors`]: IRMA error names, statuses and descriptions.
//! - `component` (wasm only): the WIT export glue.
//! - `arena` (wasm, and native unit tests): the allocator of a one-call instance.

// In wasm, no std: Rust's std links against WASI (stderr and the environment for panic
// messages, a seed for hash maps), and each of its twenty imports made every instantiation of
// the guest slower. Nothing here needs an operating system: clock, randomness, keys and
// requestors come from the host.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[macro_use]
extern crate alloc;

use alloc::{string::String, vec::Vec};

pub mod chain;
pub mod errors;
pub mod keys;
pub mod outputs;
pub mod permissions;
pub mod record;
pub mod request;
pub mod session;

#[cfg(any(target_arch = "wasm32", test))]
mod arena;
#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// A panic is a trap: the host reports the failed call (`guest trapped`) and throws the
/// instance away. There is nowhere to print the message to.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

use serde::Serialize;

pub use record::Status;

/// An HTTP response, as the host will send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    pub const JSON: &'static str = "application/json; charset=UTF-8";

    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        Response {
            status,
            content_type: Self::JSON.into(),
            body: serde_json::to_vec(value).expect("serializes"),
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: String::new(),
            body: Vec::new(),
        }
    }
}

/// The server configuration the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL of the app endpoints, ending in `/irma/`.
    pub url: String,
    pub max_session_lifetime_secs: u32,
    pub session_result_lifetime_secs: u32,
    pub production: bool,
    pub augment_client_return_url: bool,
    pub allow_unsigned_callbacks: bool,
    pub timestamp_keys: Vec<[u8; 32]>,
    /// The host can sign JWTs (`Requestors::sign_jwt`).
    pub jwt_key: bool,
    /// `iss` of the JWTs the server signs; empty: none.
    pub jwt_issuer: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            url: "http://127.0.0.1:8088/irma/".into(),
            max_session_lifetime_secs: 15 * 60,
            session_result_lifetime_secs: 5 * 60,
            production: false,
            augment_client_return_url: false,
            allow_unsigned_callbacks: false,
            timestamp_keys: Vec::new(),
            jwt_key: false,
            jwt_issuer: "irmaserver".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub min_protocol_version: Option<String>,
    pub max_protocol_version: Option<String>,
}

/// What happened to a session (mirrors the WIT `event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    RequestorStatus,
    RequestorResult,
    RequestorResultJwt,
    RequestorGetproof,
    RequestorCancel,
    AppConnect(ConnectRequest),
    AppRequest(AppRequest),
    AppProofs(AppRequest),
    AppCommitments(AppRequest),
    AppCancel,
    AppStatus,
    FrontendStatus(Option<String>),
    FrontendOptions(AppRequest),
    FrontendPairingCompleted(Option<String>),
    Tick,
    /// What the next-session endpoint answered to the outcome's `fetch`.
    NextSessionAnswer(HttpAnswer),
}

/// What a server the host POSTed to answered; `status` 0: no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A POST the host makes for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    StatusChanged(Status),
    /// Deliver the result to the requestor's callback URL (durably, after the commit).
    Callback(Outgoing),
}

/// A session a transition started (a chained session's next one), stored before the
/// transition's own record is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub requestor_token: String,
    pub client_token: String,
    pub record: Vec<u8>,
    pub status: Status,
    pub lapses_at_ms: Option<i64>,
    pub wake_at_ms: Option<i64>,
    pub keep_secs: u32,
}

/// The result of one transition (mirrors the WIT `outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub record: Option<Vec<u8>>,
    pub response: Response,
    pub status: Status,
    /// The session's kind; none when its record could not be read.
    pub kind: Option<record::Kind>,
    /// When `status` turns into TIMEOUT unless the record is written again (not final only).
    pub lapses_at_ms: Option<i64>,
    /// When the host must `Tick` the session unasked (a timeout with a callback).
    pub wake_at_ms: Option<i64>,
    pub keep_secs: u32,
    pub effects: Vec<Effect>,
    /// Not complete yet: POST this, then run `NextSessionAnswer` on `record` (uncommitted).
    pub fetch: Option<Outgoing>,
    pub created: Option<CreatedSession>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub requestor_token: String,
    pub client_token: String,
    pub outcome: Outcome,
}
