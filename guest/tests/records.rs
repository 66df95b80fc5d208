//! The stored record: compact CBOR (schema 3) that reads back as written in every state, the
//! JSON records of schema 1 still read, and what no guest wrote refused.

mod common;

use irma_guest::record::{SCHEMA, SessionRecord};
use irma_guest::session;
use irma_guest::{Config, ConnectRequest, Event, Status};

use common::{conf, ctx};

const T0: i64 = 1_795_813_034_000;

const DISCLOSURE: &str = r#"{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}"#;
const EXTENDED: &str = r#"{"request":{"@context":"https://irma.app/ld/request/signature/v2","message":"hi","disclose":[[["stateless-demo.University.studentCard.studentID"]]]},"callbackUrl":"http://127.0.0.1:1/cb","validity":60,"timeout":30}"#;

fn reads_back(bytes: &[u8]) -> SessionRecord {
    let rec = SessionRecord::decode(bytes).unwrap();
    assert_eq!(rec.encode(), bytes, "encoding is stable");
    assert_eq!(SessionRecord::decode(&rec.encode()).unwrap(), rec);
    // The same record as another encoder writes it (ciborium, the codec of the first schema-3
    // guests, whose records the store may still hold; it writes floats in their shortest
    // form): read as the same.
    let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    let mut theirs = Vec::new();
    ciborium::into_writer(&value, &mut theirs).unwrap();
    assert_eq!(SessionRecord::decode(&theirs).unwrap(), rec);
    rec
}

#[test]
fn records_are_compact_cbor_and_read_back_in_every_state() {
    let config = Config {
        allow_unsigned_callbacks: true,
        ..Config::default()
    };
    let keys = conf();
    for request in [DISCLOSURE, EXTENDED] {
        let started =
            session::start(request.as_bytes(), "req", &mut ctx(T0, &config, &keys)).unwrap();
        let bytes = started.outcome.record.unwrap();
        assert_ne!(bytes[0], b'{', "not JSON");
        let rec = reads_back(&bytes);
        assert_eq!((rec.schema, rec.status), (SCHEMA, Status::Initialized));
        assert_eq!(rec.requestor, "req");
        assert!(rec.request.contains_key("@context"), "restored on reading");
        let json = rec.encode_json();
        println!(
            "a waiting session's record: {} bytes, {} as JSON",
            bytes.len(),
            json.len()
        );
        // What one Redis holds depends on it (the key and its header add about 120 bytes).
        assert!(bytes.len() * 2 < json.len(), "{} bytes", bytes.len());

        // Connected (a client authorization, a cached answer), then cancelled with an error
        // in the result (the result no longer says only what the session does).
        let connect = Event::AppConnect(ConnectRequest {
            path: "/irma/session/x/".into(),
            authorization: Some("AppAuthorization0001".into()),
            min_protocol_version: Some("2.4".into()),
            max_protocol_version: Some("2.8".into()),
        });
        let o = session::transition(&bytes, connect, &mut ctx(T0 + 5, &config, &keys));
        let connected = reads_back(&o.record.unwrap());
        assert_eq!(connected.status, Status::Connected);
        assert!(connected.cache.is_some() && connected.ca.is_some());
        let o = session::transition(
            &connected.encode(),
            Event::AppCancel,
            &mut ctx(T0 + 9, &config, &keys),
        );
        let mut cancelled = reads_back(&o.record.unwrap());
        assert_eq!(cancelled.status, Status::Cancelled);
        // A result that says more than the session: every field of it kept.
        cancelled.result.proof_status = Some(irma_idemix::ProofStatus::Expired);
        cancelled.result.disclosed = Some(serde_json::json!([[{"id": "x", "rawvalue": "1"}]]));
        cancelled.result.next_session = Some("NextSessionToken0001".into());
        cancelled.result.token = "AnotherToken00000001".into();
        cancelled.pairing_method = "pin".into();
        cancelled.pairing_code = Some("1234".into());
        cancelled
            .request
            .insert("@context".into(), "urn:other".into());
        cancelled.request.insert("x".into(), 1.5.into());
        assert_eq!(reads_back(&cancelled.encode()), cancelled);
        cancelled.request.remove("@context");
        assert_eq!(reads_back(&cancelled.encode()), cancelled);
    }
}

#[test]
fn schema_1_json_records_are_read_and_written_back_compact() {
    let (config, keys) = (Config::default(), conf());
    let started = session::start(DISCLOSURE.as_bytes(), "", &mut ctx(T0, &config, &keys)).unwrap();
    let rec = SessionRecord::decode(&started.outcome.record.unwrap()).unwrap();
    let old = rec.encode_json();
    assert!(String::from_utf8_lossy(&old).contains(r#""schema":1"#));
    assert_eq!(SessionRecord::decode(&old).unwrap(), rec);
    // A read leaves it as it is; a change writes the current schema.
    let o = session::transition(&old, Event::RequestorStatus, &mut ctx(T0, &config, &keys));
    assert!(o.record.is_none());
    let o = session::transition(&old, Event::RequestorCancel, &mut ctx(T0, &config, &keys));
    let written = o.record.unwrap();
    assert_ne!(written[0], b'{');
    assert_eq!(
        SessionRecord::decode(&written).unwrap().status,
        Status::Cancelled
    );
}

#[test]
fn records_of_unknown_schemas_and_garbage_are_refused() {
    let (config, keys) = (Config::default(), conf());
    let started = session::start(DISCLOSURE.as_bytes(), "", &mut ctx(T0, &config, &keys)).unwrap();
    let rec = SessionRecord::decode(&started.outcome.record.unwrap()).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&rec.encode_json()).unwrap();
    json["schema"] = 9.into();
    let e = SessionRecord::decode(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert!(e.contains("schema 9"), "{e}");
    let mut cbor = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![("v".into(), 9.into())]),
        &mut cbor,
    )
    .unwrap();
    let e = SessionRecord::decode(&cbor).unwrap_err();
    assert!(e.contains("schema 9"), "{e}");
    for garbage in [&b""[..], b"\xff\x00", b"{not json", b"\xa1\x61v\x03"] {
        assert!(SessionRecord::decode(garbage).is_err(), "{garbage:?}");
    }
    // A record of this schema cut short, with a byte after its end, or with a key this guest
    // does not know (it would drop it on the next write): refused, never half read.
    let good = rec.encode();
    for cut in [1, good.len() / 2, good.len() - 1] {
        assert!(SessionRecord::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(SessionRecord::decode(&longer).is_err());
    let mut value: ciborium::Value = ciborium::from_reader(&good[..]).unwrap();
    value.as_map_mut().unwrap().push(("zz".into(), 1.into()));
    let mut extra = Vec::new();
    ciborium::into_writer(&value, &mut extra).unwrap();
    let e = SessionRecord::decode(&extra).unwrap_err();
    assert!(e.contains("zz"), "{e}");
}
