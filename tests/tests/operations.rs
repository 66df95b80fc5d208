//! Operating a replica: `/health` and `/ready` for probes and balancers, `--ops-port` for the
//! operations endpoints, and the drain at SIGTERM: `/ready` fails at once while requests are
//! still served (each answer closing its connection, so a balancer keeps none), then the
//! process stops accepting, ends its event streams, finishes what is in flight and exits 0.

use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use std::io::{Read, Write};
use std::time::Duration;

use irma_tests::{Events, Schemes, Server, Session, eventually, free_port, get};

#[test]
fn ready_follows_the_store_and_fails_at_once_when_draining() {
    let mut redis = Redis::start();
    // A long grace, ended by a second SIGTERM: the test sees the drain, whatever the load.
    let mut server = Server::on_redis(&redis, &["--shutdown-grace", "600"]);
    let ready = || get(&format!("{}/ready", server.url));
    let a = ready();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["ready"], true);
    assert!(a.json()["guest"].is_string());

    // Redis gone: not ready (but alive); back: ready again.
    redis.kill();
    eventually(|| ready().status == 503, || format!("{:?}", ready()));
    assert!(
        ready().json()["reason"]
            .as_str()
            .unwrap()
            .contains("session store")
    );
    assert_eq!(get(&format!("{}/health", server.url)).status, 200);
    redis.restart();
    eventually(|| ready().status == 200, || format!("{:?}", ready()));

    // A session under way when SIGTERM comes.
    let mut app = App::new(demo_conf(), 5);
    assert_eq!(
        app.run(&Session::start(&server, &student_card("d1")).u)
            .status,
        200
    );
    let s = Session::start(&server, &disclosure());
    let request = app.connect(&s.u).json()["request"].clone();
    server.terminate();
    eventually(|| ready().status == 503, || format!("{:?}", ready()));
    assert_eq!(ready().json()["reason"], "draining");
    // Draining still serves: the session completes.
    assert_eq!(app.respond(&s.u, &request).status, 200);
    assert_eq!(s.status(), "DONE");
    // A second SIGTERM ends the grace: it stops and exits 0.
    server.terminate();
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_ops_port_takes_metrics_health_ready_and_admin() {
    let ops = free_port();
    let server = Server::start(Schemes::Demo, &["--ops-port", &ops.to_string()]);
    let ops_url = format!("http://127.0.0.1:{ops}");
    for path in ["/metrics", "/health", "/ready"] {
        assert_eq!(get(&format!("{ops_url}{path}")).status, 200, "{path}");
        assert_eq!(get(&format!("{}{path}", server.url)).status, 404, "{path}");
    }
    assert!(
        get(&format!("{ops_url}/metrics"))
            .body
            .contains("irma_guest_info")
    );
    // The requestor API stays where it was, and is not on the ops port.
    let s = Session::start(&server, &disclosure());
    assert_eq!(s.status(), "INITIALIZED");
    assert_eq!(
        get(&format!("{ops_url}/session/{}/status", s.token)).status,
        404
    );
}

/// One `GET path` on a fresh connection, read until the server closes it: the raw answer.
fn get_raw_until_closed(port: u16, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer)
        .expect("the server closes the connection after answering");
    answer
}

#[test]
fn event_streams_end_when_the_replica_closes_and_draining_answers_close_their_connection() {
    let mut server = Server::start(Schemes::Demo, &["--sse", "--shutdown-grace", "600"]);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let s = Session::start(&server, &disclosure());
    let events = Events::open(
        &format!("{}/session/{}/statusevents", server.url, s.token),
        &[],
    );
    server.terminate();
    eventually(
        || get(&format!("{}/ready", server.url)).status == 503,
        || "draining".into(),
    );
    // Draining: the stream goes on, and every answer says the connection closes.
    assert!(!events.ended(Duration::from_millis(500)), "still streaming");
    let answer = get_raw_until_closed(port, "/health");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    // The grace ends (a second SIGTERM): the stream ends, so its client goes elsewhere.
    server.terminate();
    // Ended by the server (its last chunk), not cut off when in-flight requests run out of time.
    assert!(
        events.ended_cleanly(Duration::from_secs(30)),
        "the stream ended"
    );
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
}
