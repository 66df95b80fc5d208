//! Stateless mode: replicas of the real binary share a real `redis-server` and sit behind a real
//! `nginx` round-robin balancer, all on 127.0.0.1. Sessions complete across replicas, survive
//! crashes and restarts of replicas and of Redis, and racing requests take effect once.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use irma_tests::cluster::Cluster;
use irma_tests::redis::{self, Redis};
use irma_tests::requests::{demo_conf, disclosure, signature, student_card};
use irma_tests::wallet::{APP_AUTH, App};
use irma_tests::{Answer, PATIENCE, Schemes, Server, Session, eventually, get, http, subscribe};
use serde_json::{Value, json};

/// The Redis keys of a session: `(token:<rt> value, session:<ct> summary line)`.
fn redis_entries(redis: &Redis, s: &Session) -> (String, String) {
    let ct = s.u.rsplit('/').next().unwrap().to_owned();
    let token = redis.cli(&["GET", &format!("token:{}", s.token)]);
    assert_eq!(token, ct, "token:<rt> holds the client token");
    (token, redis.summary(&format!("session:{ct}")))
}

#[test]
fn every_session_type_completes_across_replicas() {
    let c = Cluster::start(3, Redis::start(), &[]);
    let mut app = App::new(demo_conf(), 41);

    let s = Session::start(&c.front, &student_card("s7"));
    let (ct, status) = redis_entries(&c.redis, &s);
    assert!(status.starts_with("1 INITIALIZED "), "{status}");
    assert!(status.ends_with(&s.token), "{status}");
    let ttl: i64 = c
        .redis
        .cli(&["TTL", &format!("session:{ct}")])
        .parse()
        .unwrap();
    assert!((1..=(15 + 5) * 60).contains(&ttl), "TTL {ttl}");
    assert!(!c.redis.cli(&["GET", &format!("session:{ct}")]).is_empty());

    // Every replica serves the session. (Round robin, unless nginx set a replica aside for a
    // moment after a failed connection, so ask until each has answered.)
    let (mut upstreams, mut asked) = (BTreeSet::new(), 0);
    eventually(
        || {
            let a = get(&format!("{}/session/{}/status", c.front.url, s.token));
            assert_eq!(a.json(), "INITIALIZED");
            upstreams.insert(a.upstream.expect("the balancer names the replica"));
            asked += 1;
            upstreams.len() == 3
        },
        || "not every replica answered".into(),
    );
    eprintln!("every replica answered within {asked} requests");

    let a = app.run(&s.u);
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID"))
    );
    assert_eq!(s.status(), "DONE");
    let (_, status) = redis_entries(&c.redis, &s);
    assert!(
        status.starts_with("3 CONNECTED>DONE - "),
        "connect and commitments wrote: {status}"
    );

    let s = Session::start(&c.front, &disclosure());
    let a = app.run(&s.u);
    assert_eq!(a.json(), json!({"proofStatus": "VALID"}));
    let r = s.result();
    assert_eq!(
        (
            r["status"].clone(),
            r["disclosed"][0][0]["rawvalue"].clone()
        ),
        (json!("DONE"), json!("s7"))
    );

    let s = Session::start(&c.front, &signature());
    let a = app.run(&s.u);
    assert_eq!(a.json(), json!({"proofStatus": "VALID"}));
    let r = s.result();
    assert_eq!(r["type"], "signing");
    assert_eq!(r["signature"]["message"], "I owe you EUR 10");

    // Cancelled by the requestor, through any replica.
    let s = Session::start(&c.front, &disclosure());
    assert_eq!(s.cancel().status, 200);
    assert_eq!(s.status(), "CANCELLED");
}

#[test]
fn a_killed_replica_loses_no_session() {
    let mut c = Cluster::start(3, Redis::start(), &[]);
    let mut app = App::new(demo_conf(), 42);
    let s = Session::start(&c.front, &student_card("s8"));
    assert_eq!(app.run(&s.u).status, 200);

    // Sessions waiting at INITIALIZED and at CONNECTED.
    let waiting: Vec<Session> = (0..3)
        .map(|_| Session::start(&c.front, &disclosure()))
        .collect();
    let connected: Vec<(Session, Value)> = (0..3)
        .map(|_| {
            let s = Session::start(&c.front, &disclosure());
            let a = app.connect(&s.u);
            assert_eq!(a.status, 200);
            let request = a.json()["request"].clone();
            (s, request)
        })
        .collect();
    c.replicas[1].kill();

    for (s, request) in &connected {
        assert_eq!(s.status(), "CONNECTED");
        let a = app.respond(&s.u, request);
        assert_eq!(a.json(), json!({"proofStatus": "VALID"}), "{}", a.body);
        assert_eq!(s.status(), "DONE");
    }
    for s in &waiting {
        let a = app.run(&s.u);
        assert_eq!(a.json(), json!({"proofStatus": "VALID"}), "{}", a.body);
        assert_eq!(s.result()["disclosed"][0][0]["rawvalue"], "s8");
    }
}

#[test]
fn sessions_survive_a_restart_of_every_replica() {
    let mut c = Cluster::start(3, Redis::start(), &[]);
    let mut app = App::new(demo_conf(), 43);
    let s = Session::start(&c.front, &student_card("s9"));
    for i in 0..3 {
        c.replicas[i].kill();
    }
    for i in 0..3 {
        c.restart(i);
    }
    let a = app.run(&s.u);
    assert_eq!(a.json()["proofStatus"], "VALID", "{}", a.body);
    assert_eq!(s.status(), "DONE");
}

#[test]
fn sessions_survive_a_redis_restart_and_service_resumes_after_an_outage() {
    let mut c = Cluster::start(
        2,
        Redis::start_with(redis::Options {
            aof: true,
            ..Default::default()
        }),
        &[],
    );
    let mut app = App::new(demo_conf(), 44);
    let s = Session::start(&c.front, &student_card("s10"));
    let connected = app.connect(&s.u);
    assert_eq!(connected.status, 200);
    c.redis.restart();
    // The app's answer goes through after Redis came back with its append-only file.
    let request = connected.json()["request"].clone();
    let a = retry_until_ok(|| app.respond(&s.u, &request));
    assert_eq!(a.json()["proofStatus"], "VALID", "{}", a.body);
    assert_eq!(s.status(), "DONE");

    // Redis gone: IRMA errors with a 5xx status from every kind of endpoint, no hang.
    let s = Session::start(&c.front, &disclosure());
    c.redis.kill();
    let answers = [
        http(
            "POST",
            &format!("{}/session", c.front.url),
            &[("Content-Type", "application/json")],
            Some(&disclosure().to_string()),
        ),
        get(&format!("{}/session/{}/status", c.front.url, s.token)),
        get(&format!("{}/session/{}/result", c.front.url, s.token)),
        app.connect(&s.u),
        get(&format!("{}/status", s.u)),
    ];
    for a in &answers {
        assert_eq!(
            (a.status, a.error().as_str()),
            (500, "INTERNAL_ERROR"),
            "{}",
            a.body
        );
    }
    // Back: full service, by itself. (Without AOF the outage lost the session; a new one
    // is started.)
    c.redis.restart();
    let back = Instant::now();
    let s = retry_until_ok_post(&c.front);
    eprintln!(
        "service resumed {} ms after Redis returned",
        back.elapsed().as_millis()
    );
    let a = app.run(&s.u);
    assert_eq!(a.json(), json!({"proofStatus": "VALID"}));
}

/// Repeats `f` while it answers 500 (Redis still coming back), as long as a test waits.
fn retry_until_ok(mut f: impl FnMut() -> Answer) -> Answer {
    let mut last = None;
    eventually(
        || {
            let a = f();
            let ok = a.status != 500;
            last = Some(a);
            ok
        },
        || "Redis is back, but the replicas still answer 500".into(),
    );
    last.expect("tried")
}

fn retry_until_ok_post(front: &Server) -> Session {
    let a = retry_until_ok(|| {
        http(
            "POST",
            &format!("{}/session", front.url),
            &[("Content-Type", "application/json")],
            Some(&disclosure().to_string()),
        )
    });
    assert_eq!(a.status, 200, "{}", a.body);
    Session::from_start(front, a.json())
}

/// Runs `requests` at once (released together by a barrier) and returns their answers.
fn all_at_once(requests: Vec<Box<dyn FnOnce() -> Answer + Send>>) -> Vec<Answer> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                r()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn connect_as(u: &str, auth: &str) -> Answer {
    http(
        "GET",
        &format!("{u}/"),
        &[
            ("X-IRMA-MinProtocolVersion", "2.4"),
            ("X-IRMA-MaxProtocolVersion", "2.8"),
            ("Authorization", auth),
        ],
        None,
    )
}

#[test]
fn identical_racing_requests_take_effect_once() {
    let c = Cluster::start(3, Redis::start(), &[]);
    for round in 0..100 {
        let s = Session::start(&c.front, &disclosure());
        let requests: Vec<Box<dyn FnOnce() -> Answer + Send>> = (0..50)
            .map(|_| {
                let u = s.u.clone();
                Box::new(move || connect_as(&u, APP_AUTH)) as Box<dyn FnOnce() -> Answer + Send>
            })
            .collect();
        let answers = all_at_once(requests);
        for a in &answers {
            assert_eq!(a.status, 200, "round {round}: {}", a.body);
            assert_eq!(
                a.body, answers[0].body,
                "round {round}: one response, replayed"
            );
        }
        assert_eq!(s.status(), "CONNECTED");
        let (_, status) = redis_entries(&c.redis, &s);
        assert!(
            status.starts_with("2 INITIALIZED>CONNECTED "),
            "round {round}: exactly one write: {status}"
        );
    }
}

#[test]
fn conflicting_racing_requests_take_effect_once() {
    let c = Cluster::start(3, Redis::start(), &[]);
    let mut app = App::new(demo_conf(), 45);
    let s = Session::start(&c.front, &student_card("s11"));
    assert_eq!(app.run(&s.u).status, 200);
    let mut outcomes = BTreeSet::new();
    for round in 0..100 {
        let s = Session::start(&c.front, &disclosure());
        let request = app.connect(&s.u).json()["request"].clone();
        let (body, _) = app.answer(&request);
        // 25 apps posting the same proofs, and 25 requestors cancelling: DONE or CANCELLED.
        let requests: Vec<Box<dyn FnOnce() -> Answer + Send>> = (0..50)
            .map(|i| {
                let (u, body) = (s.u.clone(), body.clone());
                let cancel = format!("{}/session/{}", c.front.url, s.token);
                if i % 2 == 0 {
                    Box::new(move || {
                        http(
                            "POST",
                            &format!("{u}/proofs"),
                            &[
                                ("Authorization", APP_AUTH),
                                ("Content-Type", "application/json"),
                            ],
                            Some(&body),
                        )
                    }) as Box<dyn FnOnce() -> Answer + Send>
                } else {
                    Box::new(move || http("DELETE", &cancel, &[], None))
                }
            })
            .collect();
        let answers = all_at_once(requests);
        // One of the two took effect, and every answer agrees with which one. (The record may
        // be written again after that: a refused app request is recorded in the response
        // cache, as the reference does.)
        let final_status = s.status();
        let (_, status) = redis_entries(&c.redis, &s);
        assert!(
            status.contains(&format!(" CONNECTED>{final_status} - ")),
            "round {round}: {status}"
        );
        let result = s.result();
        assert_eq!(
            result["disclosed"].is_array(),
            final_status == "DONE",
            "round {round}: {result}"
        );
        for (i, a) in answers.iter().enumerate() {
            assert!(a.status < 500, "round {round}: {} {}", a.status, a.body);
            match (i % 2, final_status.as_str()) {
                (1, _) => assert_eq!(a.status, 200, "a cancel always answers 200"),
                (0, "DONE") => assert_eq!(a.json(), json!({"proofStatus": "VALID"})),
                (0, "CANCELLED") => assert_eq!(
                    (a.status, a.error().as_str()),
                    (403, "UNEXPECTED_REQUEST"),
                    "round {round}"
                ),
                other => panic!("round {round}: {other:?}"),
            }
        }
        outcomes.insert(final_status);
    }
    eprintln!("outcomes seen: {outcomes:?}");
}

#[test]
fn a_frontend_on_one_replica_sees_changes_made_on_another() {
    let redis = Redis::start();
    let a = Server::on_redis(&redis, &["--sse"]);
    let b = Server::on_redis(&redis, &["--sse"]);
    let mut app = App::new(demo_conf(), 46);
    let s = Session::start(&a, &student_card("s12"));
    let ct = s.u.rsplit('/').next().unwrap();
    let events = subscribe(
        format!("{}/irma/session/{ct}/frontend/statusevents", a.url),
        Some(s.frontend_auth.clone()),
        2,
    );
    let requestor = subscribe(
        format!("{}/session/{}/statusevents", a.url, s.token),
        None,
        2,
    );
    // The app talks to replica b only.
    let u_b = format!("{}/irma/session/{ct}", b.url);
    let done = app.run(&u_b);
    assert_eq!(done.status, 200, "{}", done.body);
    let got = events.recv_timeout(PATIENCE).unwrap();
    assert_eq!(got, [r#"{"status":"CONNECTED"}"#, r#"{"status":"DONE"}"#]);
    let got = requestor.recv_timeout(PATIENCE).unwrap();
    assert_eq!(got, [r#""CONNECTED""#, r#""DONE""#]);
}

#[test]
fn tls_towards_redis_with_a_ca_made_for_the_test() {
    let redis = Redis::start_with(redis::Options {
        tls: true,
        password: Some("pw-of-the-test"),
        ..Default::default()
    });
    let ca = redis.ca.clone().unwrap();
    let addr = redis.addr();
    let base = ["--store-type", "redis", "--redis-addr", addr.as_str()];
    let ca_file = ca.display().to_string();
    fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
        [base, more].concat()
    }

    // With the CA as the trusted root (from a file, or inline) and the password: sessions run.
    let server = Server::start(
        Schemes::Demo,
        &with(
            &base,
            &[
                "--redis-tls-cert-file",
                &ca_file,
                "--redis-pw",
                "pw-of-the-test",
            ],
        ),
    );
    let mut app = App::new(demo_conf(), 47);
    let s = Session::start(&server, &student_card("s13"));
    assert_eq!(app.run(&s.u).status, 200);
    assert_eq!(s.status(), "DONE");
    let pem = std::fs::read_to_string(&ca).unwrap();
    let server = Server::start(
        Schemes::Demo,
        &with(
            &base,
            &["--redis-tls-cert", &pem, "--redis-pw", "pw-of-the-test"],
        ),
    );
    assert_eq!(
        Session::start(&server, &disclosure()).status(),
        "INITIALIZED"
    );

    // Refused: without our CA (system roots do not know it), plain TCP, a wrong password, none.
    let refused = |flags: Vec<&str>| irma_tests::fails_to_start(Schemes::Demo, &flags);
    let e = refused(with(&base, &["--redis-pw", "pw-of-the-test"]));
    assert!(e.contains("failed to connect to Redis"), "{e}");
    let e = refused(with(
        &base,
        &["--redis-pw", "pw-of-the-test", "--redis-no-tls"],
    ));
    assert!(e.contains("failed to connect to Redis"), "{e}");
    let e = refused(with(
        &base,
        &["--redis-tls-cert-file", &ca_file, "--redis-pw", "wrong"],
    ));
    assert!(e.contains("failed to connect to Redis"), "{e}");
    let e = refused(with(&base, &["--redis-tls-cert-file", &ca_file]));
    assert!(
        e.contains("a non-empty Redis password must be specified"),
        "{e}"
    );
    let e = refused(with(
        &base,
        &[
            "--redis-tls-cert-file",
            &ca_file,
            "--redis-allow-empty-password",
        ],
    ));
    assert!(
        e.contains("failed to connect to Redis"),
        "needs the password: {e}"
    );
    let e = refused(with(
        &base,
        &[
            "--redis-tls-cert-file",
            &ca_file,
            "--redis-no-tls",
            "--redis-pw",
            "x",
        ],
    ));
    assert!(e.contains("Redis TLS cannot be disabled"), "{e}");
}

#[test]
fn key_prefixes_and_database() {
    let redis = Redis::start();
    let server = Server::on_redis(
        &redis,
        &[
            "--redis-username",
            "default",
            "--redis-acl-use-key-prefixes",
            "--redis-db",
            "2",
        ],
    );
    let s = Session::start(&server, &disclosure());
    let ct = s.u.rsplit('/').next().unwrap();
    assert_eq!(
        redis.cli(&["-n", "0", "DBSIZE"]),
        "0",
        "nothing in database 0"
    );
    let got = redis.cli(&["-n", "2", "GET", &format!("default:token:{}", s.token)]);
    assert_eq!(got, ct);
    let status = redis.cli(&[
        "-n",
        "2",
        "GETRANGE",
        &format!("default:session:{ct}"),
        "0",
        "40",
    ]);
    assert!(status.starts_with("1 INITIALIZED "), "{status}");
    assert_eq!(s.status(), "INITIALIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_redis_store_keeps_the_store_contract() {
    let redis = Redis::start();
    // Plain, and with records and outbox entries sealed.
    for (prefix, keys) in [("contract:", vec![]), ("sealed:", vec![[7u8; 32]])] {
        let options = irma_server::store::redis::RedisOptions {
            key_prefix: prefix.into(),
            encryption_keys: keys,
            ..irma_server::store::redis::RedisOptions::plain("127.0.0.1", redis.port)
        };
        let store = irma_server::store::redis::RedisStore::connect(&options)
            .await
            .unwrap();
        irma_server::store::contract::check(&store).await;
    }
}
