//! Session data encrypted at rest in Redis (`--redis-encryption-key-file`): after issuance,
//! disclosure and signing sessions with callbacks still waiting in the outbox, no value in Redis
//! holds an attribute value, a nonce, a message or a request; keys rotate with a session in
//! flight; a record sealed with a key the server lacks is refused with a clear error and left
//! as it is. Real `redis-server` and real servers on 127.0.0.1.

use std::path::{Path, PathBuf};

use irma_tests::receiver::{Receiver, Reply};
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, fails_to_start, free_port, post_json};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

/// A key file holding `keys`, newest (sealing) first.
fn key_file(dir: &Path, name: &str, keys: &[[u8; 32]]) -> PathBuf {
    use base64::Engine as _;
    let path = dir.join(name);
    let text: String = keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k) + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn server(redis: &Redis, keys: Option<&Path>) -> Server {
    server_at(free_port(), redis, keys)
}

/// On `port`: a restart with other keys, where apps and requestors already look.
fn server_at(port: u16, redis: &Redis, keys: Option<&Path>) -> Server {
    let mut flags = redis.server_flags();
    flags.push("--allow-unsigned-callbacks".into());
    if let Some(k) = keys {
        flags.extend([
            "--redis-encryption-key-file".into(),
            k.display().to_string(),
        ]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_at(port, Schemes::Demo, &flags)
}

/// Starts a session for `request` whose result goes to `receiver`.
fn start(server: &Server, request: Value, receiver: &Receiver) -> Session {
    let a = post_json(
        &format!("{}/session", server.url),
        &json!({"request": request, "callbackUrl": format!("{}/cb", receiver.url)}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    Session::from_start(server, a.json())
}

/// Runs a session as the app does; returns the nonce the server chose.
fn run(app: &mut App, s: &Session) -> String {
    let c = app.connect(&s.u);
    assert_eq!(c.status, 200, "{}", c.body);
    let request = c.json()["request"].clone();
    let a = app.respond(&s.u, &request);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(s.status(), "DONE");
    request["nonce"].to_string().trim_matches('"').to_owned()
}

/// The first bytes of a sealed value, and the key id that follows (the first 8 bytes of the
/// key's SHA-256).
fn sealed_with(value: &[u8]) -> Option<[u8; 8]> {
    value
        .strip_prefix(b"\0SL1")
        .map(|rest| rest[..8].try_into().unwrap())
}

fn id(key: &[u8; 32]) -> [u8; 8] {
    Sha256::digest(key)[..8].try_into().unwrap()
}

/// Issues, discloses and signs (each with a callback the receiver refuses, so they stay in the
/// outbox); returns what must not be readable in Redis.
fn sessions(server: &Server, student_id: &str, message: &str) -> Vec<String> {
    // Refuses every callback: they wait in the outbox for another try.
    let receiver = Receiver::start(vec![Reply::status(500)]);
    let mut app = App::new(demo_conf(), 7);
    let mut secrets = vec![student_id.to_owned(), message.to_owned()];
    let issue = start(server, student_card(student_id), &receiver);
    secrets.push(run(&mut app, &issue));
    let disclose = start(server, disclosure(), &receiver);
    secrets.push(run(&mut app, &disclose));
    assert_eq!(
        disclose.result()["disclosed"][0][0]["rawvalue"],
        json!(student_id)
    );
    let mut signature = disclosure();
    signature["@context"] = json!("https://irma.app/ld/request/signature/v2");
    signature["message"] = json!(message);
    let sign = start(server, signature, &receiver);
    secrets.push(run(&mut app, &sign));
    receiver.wait_for(3);
    // The attribute type asked for, as any request or result names it.
    secrets.push("stateless-demo.University.studentCard".into());
    secrets
}

/// Which of `secrets` some value in Redis contains, and where.
fn readable(redis: &Redis, secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (key, value) in redis.dump() {
        for s in secrets {
            if value.windows(s.len()).any(|w| w == s.as_bytes()) {
                found.push(format!("{s:?} in {key}"));
            }
        }
    }
    found
}

#[test]
fn no_value_in_redis_holds_an_attribute_value_a_nonce_or_a_request() {
    let dir = tempfile::tempdir().unwrap();
    // Without keys, the same sessions leave all of it readable: the scan can find it.
    let redis = Redis::start();
    let plain = server(&redis, None);
    let secrets = sessions(&plain, "enc-plain-5521", "plain: I owe you EUR 5521");
    let found = readable(&redis, &secrets);
    for s in &secrets {
        assert!(
            found.iter().any(|f| f.starts_with(&format!("{s:?}"))),
            "{s:?} readable without keys; found {found:?}"
        );
    }
    drop(plain);

    let redis = Redis::start();
    let keys = key_file(dir.path(), "keys", &[K1]);
    let sealed = server(&redis, Some(&keys));
    let secrets = sessions(&sealed, "enc-sealed-7319", "sealed: I owe you EUR 7319");
    let dump = redis.dump();
    assert!(
        dump.iter().any(|(k, _)| k.starts_with("outbox:")),
        "callbacks wait in the outbox: {:?}",
        dump.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for (key, value) in &dump {
        if key.starts_with("session:") {
            let record = irma_tests::redis::record_of(value);
            assert_eq!(sealed_with(record), Some(id(&K1)), "{key} sealed with K1");
        } else if key.starts_with("outbox:") {
            assert_eq!(sealed_with(value), Some(id(&K1)), "{key} sealed with K1");
        }
    }
    eprintln!("scanned {} keys", dump.len());
    assert_eq!(readable(&redis, &secrets), Vec::<String>::new());
}

#[test]
fn keys_rotate_with_a_session_in_flight_and_an_unknown_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (only_k1, k2_then_k1, only_k2) = (
        key_file(dir.path(), "k1", &[K1]),
        key_file(dir.path(), "k2k1", &[K2, K1]),
        key_file(dir.path(), "k2", &[K2]),
    );
    let redis = Redis::start();
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let mut app = App::new(demo_conf(), 11);
    let record = |s: &Session| {
        let ct = s.u.rsplit('/').next().unwrap();
        let value = redis.get_bytes(&format!("session:{ct}")).expect("record");
        irma_tests::redis::record_of(&value).to_vec()
    };

    // With K1: a card issued; a disclosure connected (in flight); another only started.
    let port = free_port();
    let first = server_at(port, &redis, Some(&only_k1));
    run(&mut app, &start(&first, student_card("rot-1"), &receiver));
    let in_flight = start(&first, disclosure(), &receiver);
    let c = app.connect(&in_flight.u);
    assert_eq!(c.status, 200, "{}", c.body);
    let left_with_k1 = start(&first, disclosure(), &receiver);
    assert_eq!(sealed_with(&record(&in_flight)), Some(id(&K1)));
    drop(first);

    // K2 prepended: the session in flight completes, and is sealed with K2 from then on.
    let rotated = server_at(port, &redis, Some(&k2_then_k1));
    let a = app.respond(&in_flight.u, &c.json()["request"]);
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID"))
    );
    assert_eq!(
        in_flight.result()["disclosed"][0][0]["rawvalue"],
        json!("rot-1")
    );
    assert_eq!(sealed_with(&record(&in_flight)), Some(id(&K2)));
    let started_with_k2 = start(&rotated, disclosure(), &receiver);
    drop(rotated);

    // K1 removed: what K2 sealed still works; what only K1 sealed is refused, not overwritten.
    let last = server_at(port, &redis, Some(&only_k2));
    let mut app2 = App::new(demo_conf(), 12);
    run(&mut app2, &start(&last, student_card("rot-2"), &receiver));
    run(&mut app2, &started_with_k2);
    assert_eq!(started_with_k2.result()["proofStatus"], json!("VALID"));
    let before = record(&left_with_k1);
    let refused = app2.connect(&left_with_k1.u);
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!(refused.error(), "INTERNAL_ERROR");
    let message = refused.json()["message"].as_str().unwrap_or("").to_owned();
    assert!(
        message.contains("sealed with key") && message.contains("--redis-encryption-key-file"),
        "{message}"
    );
    assert_eq!(left_with_k1.cancel().status, 500);
    assert_eq!(record(&left_with_k1), before, "left as it was");
    // Its status needs no key (the summary is plain): polls still answer.
    assert_eq!(left_with_k1.status(), "INITIALIZED");
}

#[test]
fn a_bad_key_file_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "AAAA\n").unwrap();
    let redis = Redis::start();
    let mut flags = redis.server_flags();
    flags.extend([
        "--redis-encryption-key-file".into(),
        short.display().to_string(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let err = fails_to_start(Schemes::Demo, &flags);
    assert!(err.contains("a key has 32 bytes"), "{err}");
    let missing = dir.path().join("missing");
    let mut flags = redis.server_flags();
    flags.extend([
        "--redis-encryption-key-file".into(),
        missing.display().to_string(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let err = fails_to_start(Schemes::Demo, &flags);
    assert!(err.contains("Redis encryption key file"), "{err}");
}
