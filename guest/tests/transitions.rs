//! The state machine natively, with the clock pinned: lifetimes, the response cache's 10 s
//! window, and what the store is told to keep.

mod common;

use irma_guest::session;
use irma_guest::{AppRequest, Config, ConnectRequest, Event, Outcome, Status};
use irma_idemix::{Configuration, LoadOptions};

use common::{conf, ctx};
use serde_json::Value;

const T0: i64 = 1_795_813_034_000;

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

#[test]
fn a_signatures_timestamp_names_the_schemes_timestamp_server() {
    // The real app's recorded signature (../shared), its timestamp's server changed: the
    // result names the scheme's server, as the reference's does.
    let testdata =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if !testdata.is_dir() {
        assert!(
            std::env::var_os("IRMA_TESTDATA_REQUIRED").is_none(),
            "IRMA_TESTDATA_REQUIRED is set, but {} is missing",
            testdata.display()
        );
        return;
    }
    let t: Value = serde_json::from_slice(
        &std::fs::read(testdata.join("transcripts/sign-message.json")).unwrap(),
    )
    .unwrap();
    let exchange = |path_end: &str| {
        t["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["request"]["path"].as_str().unwrap().ends_with(path_end))
            .unwrap()
            .clone()
    };
    let keys =
        Configuration::load(&testdata.join("irma_configuration"), LoadOptions::default()).unwrap();
    let atum: Value =
        serde_json::from_slice(&std::fs::read(testdata.join("atum/atumlite.json")).unwrap())
            .unwrap();
    let hex = atum["public_key_hex"].as_str().unwrap();
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let config = Config {
        timestamp_keys: vec![key],
        ..Config::default()
    };
    let now = t["recorded_at_unix"].as_i64().unwrap() * 1000;
    let request = serde_json::to_string(&t["session_request"]).unwrap();
    let started = session::start(request.as_bytes(), "", &mut ctx(now, &config, &keys)).unwrap();
    let o = session::transition(
        &started.outcome.record.unwrap(),
        connect(),
        &mut ctx(now, &config, &keys),
    );
    // The recorded session's nonce and context, so the recorded proofs fit.
    let mut rec = irma_guest::record::SessionRecord::decode(&o.record.unwrap()).unwrap();
    let recorded: Value = serde_json::from_str(
        exchange("/").get("response").unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    rec.request
        .insert("nonce".into(), recorded["request"]["nonce"].clone());
    rec.request
        .insert("context".into(), recorded["request"]["context"].clone());
    let mut body: Value =
        serde_json::from_str(exchange("/proofs")["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["timestamp"]["ServerUrl"], "http://127.0.0.1:8091/");
    body["timestamp"]["ServerUrl"] = "https://elsewhere.example/".into();
    let o = session::transition(
        &rec.encode(),
        Event::AppProofs(AppRequest {
            path: "/irma/session/x/proofs".into(),
            authorization: Some("AppAuthorization0001".into()),
            body: body.to_string().into_bytes(),
        }),
        &mut ctx(now, &config, &keys),
    );
    assert_eq!(
        status(&o)["proofStatus"],
        "VALID",
        "{:?}",
        String::from_utf8_lossy(&o.response.body)
    );
    let done = irma_guest::record::SessionRecord::decode(&o.record.unwrap()).unwrap();
    assert_eq!(
        done.result.signature.unwrap()["timestamp"]["ServerUrl"],
        "http://127.0.0.1:8091/"
    );
}
