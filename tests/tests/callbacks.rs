//! Result callbacks (irma-server.md §1.13), delivered from an outbox committed with the record:
//! every session that ends gets its callback (DONE, CANCELLED, and TIMEOUT with no traffic at
//! all), signed with the JWT key when there is one, with an `Idempotency-Key`; a receiver that
//! fails gets the same callback again; a replica that dies holding a callback loses nothing;
//! across three replicas each callback arrives once. The receiver is a real HTTP server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::keys::RsaKeys;
use irma_tests::receiver::{Received, Receiver, Reply};
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, post_json};
use serde_json::{Value, json};

/// A session whose result goes to `receiver` (the URL without a trailing slash: the server
/// adds one, as the reference).
fn with_callback(server: &Server, receiver: &Receiver, extra: Value) -> Session {
    let mut request =
        json!({"callbackUrl": format!("{}/irma-result", receiver.url), "request": disclosure()});
    for (k, v) in extra.as_object().into_iter().flatten() {
        request[k] = v.clone();
    }
    let a = post_json(&format!("{}/session", server.url), &request);
    assert_eq!(a.status, 200, "{}", a.body);
    Session::from_start(server, a.json())
}

/// The callbacks received, by requestor token (their `Idempotency-Key`).
fn by_session(received: &[Received]) -> BTreeMap<String, Vec<Received>> {
    let mut map: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for r in received {
        let key = r
            .header("idempotency-key")
            .expect("an Idempotency-Key")
            .to_owned();
        map.entry(key).or_default().push(r.clone());
    }
    map
}

/// One of each ending: DONE (the app answers), CANCELLED (the requestor), TIMEOUT (no one
/// does anything). Returns the sessions and what each must end as.
fn end_three_ways(
    front: &Server,
    receiver: &Receiver,
    app: &mut App,
) -> Vec<(Session, &'static str)> {
    let done = with_callback(front, receiver, json!({}));
    assert_eq!(app.run(&done.u).status, 200);
    let cancelled = with_callback(front, receiver, json!({}));
    assert_eq!(cancelled.cancel().status, 200);
    // Times out one second after it starts, with no request from anyone.
    let timeout = with_callback(front, receiver, json!({"timeout": 1}));
    vec![
        (done, "DONE"),
        (cancelled, "CANCELLED"),
        (timeout, "TIMEOUT"),
    ]
}

fn check_json_callbacks(receiver: &Receiver, ended: &[(Session, &str)]) {
    let started = Instant::now();
    let got = by_session(&receiver.wait_for(ended.len()));
    eprintln!("{} callbacks within {:?}", ended.len(), started.elapsed());
    for (s, status) in ended {
        let calls = &got[&s.token];
        assert_eq!(calls.len(), 1, "{status}: {calls:?}");
        let c = &calls[0];
        assert_eq!(
            (c.method.as_str(), c.path.as_str()),
            ("POST", "/irma-result/")
        );
        assert_eq!(c.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_str(&c.body).unwrap();
        assert_eq!(
            (&body["token"], &body["status"]),
            (&json!(s.token), &json!(status)),
            "{body}"
        );
    }
}

fn wallet(front: &Server, seed: u64) -> App {
    let mut app = App::new(demo_conf(), seed);
    assert_eq!(
        app.run(&Session::start(front, &student_card("s9")).u)
            .status,
        200
    );
    app
}

#[test]
fn every_ending_gets_its_callback_in_memory() {
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let server = Server::start(Schemes::Demo, &["--allow-unsigned-callbacks"]);
    let mut app = wallet(&server, 61);
    let ended = end_three_ways(&server, &receiver, &mut app);
    check_json_callbacks(&receiver, &ended);
}

#[test]
fn every_ending_gets_its_callback_once_across_replicas() {
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let c = Cluster::start(3, Redis::start(), &["--allow-unsigned-callbacks"]);
    let mut app = wallet(&c.front, 62);
    let mut ended = end_three_ways(&c.front, &receiver, &mut app);
    // And many more, ended on whichever replica the balancer picks.
    for _ in 0..20 {
        let s = with_callback(&c.front, &receiver, json!({}));
        assert_eq!(s.cancel().status, 200);
        ended.push((s, "CANCELLED"));
    }
    check_json_callbacks(&receiver, &ended);
    // Nothing arrives twice, also not a little later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.received().len(), ended.len());
}

#[test]
fn callbacks_are_signed_with_the_jwt_key() {
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let key = RsaKeys::new();
    let server = Server::start(
        Schemes::Demo,
        &["--jwt-privkey-file", key.private_pem.to_str().unwrap()],
    );
    let mut app = wallet(&server, 63);
    let s = with_callback(&server, &receiver, json!({"validity": 60}));
    assert_eq!(app.run(&s.u).status, 200);
    let c = &receiver.wait_for(1)[0];
    assert_eq!(c.header("content-type"), Some("text/plain"));
    let claims = irma_tests::verify_rs256(&c.body, &key.public());
    assert_eq!(
        (
            &claims["sub"],
            &claims["iss"],
            &claims["status"],
            &claims["proofStatus"]
        ),
        (
            &json!("disclosing_result"),
            &json!("irmaserver"),
            &json!("DONE"),
            &json!("VALID")
        )
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
}

#[test]
fn a_receiver_that_fails_gets_the_same_callback_again() {
    let receiver = Receiver::start(vec![
        Reply::status(500),
        Reply::status(503),
        Reply::status(500),
        Reply::status(200),
    ]);
    let server = Server::start(Schemes::Demo, &["--allow-unsigned-callbacks"]);
    let s = with_callback(&server, &receiver, json!({}));
    assert_eq!(s.cancel().status, 200);
    let calls = receiver.wait_for(4);
    assert!(
        calls
            .iter()
            .all(|c| c.body == calls[0].body
                && c.header("idempotency-key") == Some(s.token.as_str())),
        "{calls:?}"
    );
    // Accepted the fourth time: no fifth.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.received().len(), 4);
}

#[test]
fn a_replica_that_dies_holding_a_callback_loses_nothing() {
    // The first delivery hangs; the replica attempting it is killed; another replica delivers
    // once the dead one's lease has run out.
    let receiver = Receiver::start(vec![
        Reply::after(Duration::from_secs(120), 200),
        Reply::status(200),
    ]);
    let redis = Redis::start();
    let mut flags = vec!["--allow-unsigned-callbacks".to_owned()];
    flags.extend(redis.server_flags());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut first = Server::start(Schemes::Demo, &flags);
    let s = with_callback(&first, &receiver, json!({}));
    assert_eq!(s.cancel().status, 200);
    receiver.wait_for(1);
    first.kill();
    let started = Instant::now();
    let second = Server::start(Schemes::Demo, &flags);
    let calls = receiver.wait_for(2);
    eprintln!(
        "delivered by the second replica {:?} after the first died",
        started.elapsed()
    );
    assert_eq!(calls[1].header("idempotency-key"), Some(s.token.as_str()));
    assert_eq!(calls[1].body, calls[0].body);
    drop(second);
}
