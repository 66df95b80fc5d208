//! The state machine natively, with the clock pinned: lifetimes, the response cache's 10 s
//! window, and what the store is told to keep.

use irma_guest::permissions::AllowAll;
use irma_guest::session::{self, Ctx};
use irma_guest::{AppRequest, Config, ConnectRequest, Event, Outcome, Status};
use irma_idemix::{Configuration, LoadOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const T0: i64 = 1_795_813_034_000;

fn conf() -> Configuration {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../host/demo");
    Configuration::load(&root.join("irma_configuration"), LoadOptions::default()).unwrap()
}

fn ctx<'a>(now_ms: i64, config: &'a Config, keys: &'a Configuration) -> Ctx<'a> {
    Ctx {
        now_ms,
        rng: ChaCha20Rng::seed_from_u64(now_ms as u64),
        config,
        keys,
        requestors: &AllowAll,
    }
}

/// Starts a session; returns its record and how long the store must keep it.
fn start_keep(request: &str, config: &Config, keys: &Configuration) -> (Vec<u8>, u32) {
    let started = session::start(request.as_bytes(), "", &mut ctx(T0, config, keys)).unwrap();
    (started.outcome.record.unwrap(), started.outcome.keep_secs)
}

fn start(request: &str, config: &Config, keys: &Configuration) -> Vec<u8> {
    start_keep(request, config, keys).0
}

fn status(o: &Outcome) -> Value {
    serde_json::from_slice(&o.response.body).unwrap()
}

const DISCLOSURE: &str = r#"{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}"#;

fn connect() -> Event {
    Event::AppConnect(ConnectRequest {
        path: "/irma/session/x/".into(),
        authorization: Some("AppAuthorization0001".into()),
        min_protocol_version: Some("2.4".into()),
        max_protocol_version: Some("2.8".into()),
    })
}

#[test]
fn a_session_times_out_at_its_deadline_and_is_kept_for_the_result_lifetime() {
    let (config, keys) = (Config::default(), conf());
    let (record, keep) = start_keep(DISCLOSURE, &config, &keys);
    assert_eq!(
        keep,
        config.max_session_lifetime_secs + config.session_result_lifetime_secs
    );
    let deadline = T0 + config.max_session_lifetime_secs as i64 * 1000;
    let o = session::transition(
        &record,
        Event::RequestorStatus,
        &mut ctx(deadline, &config, &keys),
    );
    assert_eq!(status(&o), "INITIALIZED");
    assert!(o.record.is_none(), "a read writes nothing");
    // The host's status index turns INITIALIZED into TIMEOUT after exactly this instant.
    assert_eq!(o.lapses_at_ms, Some(deadline));
    let o = session::transition(
        &record,
        Event::RequestorStatus,
        &mut ctx(deadline + 1, &config, &keys),
    );
    assert_eq!(
        (status(&o), o.status),
        (Value::from("TIMEOUT"), Status::Timeout)
    );
    assert!(o.record.is_some(), "the timeout is persisted once");
    assert_eq!(o.keep_secs, config.session_result_lifetime_secs);
    assert_eq!(o.lapses_at_ms, None, "a finished status never lapses");
    // Timed out, the app cannot connect.
    let after = o.record.unwrap();
    let o = session::transition(&after, connect(), &mut ctx(deadline + 2, &config, &keys));
    assert_eq!(o.response.status, 403);
}

#[test]
fn the_requestor_timeout_applies_only_before_the_app_connects() {
    let (config, keys) = (Config::default(), conf());
    let (record, keep) = start_keep(
        &format!(r#"{{"timeout": 30, "request": {DISCLOSURE}}}"#),
        &config,
        &keys,
    );
    assert_eq!(keep, 30 + config.session_result_lifetime_secs);
    let o = session::transition(
        &record,
        Event::RequestorStatus,
        &mut ctx(T0 + 30_001, &config, &keys),
    );
    assert_eq!(status(&o), "TIMEOUT");
    let o = session::transition(&record, connect(), &mut ctx(T0 + 29_000, &config, &keys));
    assert_eq!(
        o.lapses_at_ms,
        Some(T0 + 29_000 + config.max_session_lifetime_secs as i64 * 1000)
    );
    let connected = o.record.unwrap();
    let o = session::transition(
        &connected,
        Event::RequestorStatus,
        &mut ctx(T0 + 120_000, &config, &keys),
    );
    assert_eq!(
        status(&o),
        "CONNECTED",
        "once connected, the session lifetime counts"
    );
}

#[test]
fn the_response_cache_replays_within_ten_seconds_only() {
    let (config, keys) = (Config::default(), conf());
    let record = start(DISCLOSURE, &config, &keys);
    let o = session::transition(&record, connect(), &mut ctx(T0, &config, &keys));
    let connected = o.record.unwrap();
    let replay = session::transition(&connected, connect(), &mut ctx(T0 + 9_999, &config, &keys));
    assert_eq!(
        (replay.response.status, &replay.response.body),
        (200, &o.response.body)
    );
    assert!(replay.record.is_none(), "a replay changes nothing");
    let late = session::transition(&connected, connect(), &mut ctx(T0 + 10_000, &config, &keys));
    assert_eq!(
        late.response.status, 403,
        "after 10 s the handler runs again"
    );
    // A different body is never a replay.
    let proofs = |body: &[u8]| {
        Event::AppProofs(AppRequest {
            path: "/irma/session/x/proofs".into(),
            authorization: Some("AppAuthorization0001".into()),
            body: body.to_vec(),
        })
    };
    let a = session::transition(&connected, proofs(b"{"), &mut ctx(T0 + 1, &config, &keys));
    assert_eq!(a.response.status, 400);
    let cached = a.record.unwrap();
    let b = session::transition(&cached, proofs(b"[]"), &mut ctx(T0 + 2, &config, &keys));
    assert_eq!(b.response.status, 400);
    assert_ne!(a.response.body, b.response.body);
}

#[test]
fn an_unreadable_record_is_left_alone() {
    let (config, keys) = (Config::default(), conf());
    let o = session::transition(
        b"{\"schema\": 99}",
        Event::RequestorStatus,
        &mut ctx(T0, &config, &keys),
    );
    assert_eq!(o.response.status, 500);
    assert!(o.record.is_none());
    let o = session::transition(b"garbage", Event::AppCancel, &mut ctx(T0, &config, &keys));
    assert_eq!(o.response.status, 500);
    assert!(o.record.is_none());
}
