//! `/metrics`: valid Prometheus text (checked by Debian's `promtool check metrics`), and every
//! family moves as sessions run: sessions by type and ending, requests by route and status,
//! guest calls by event, store operations and compare-and-swap conflicts, guest instance
//! waits, open event streams, callbacks pending, delivered and failed. (Store retries after a
//! failover are checked in `sentinel.rs`.)

use std::process::{Command, Stdio};
use std::time::Duration;

use irma_tests::metrics::Scrape;
use irma_tests::receiver::{Receiver, Reply};
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Events, Server, Session, eventually, get, http, post_json};
use serde_json::json;

/// `promtool check metrics` on what the server serves: the format and Prometheus' naming
/// rules (help texts, `_total` counters, units in names).
fn promtool_accepts(server: &Server) {
    let body = get(&format!("{}/metrics", server.url)).body;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; `just prerequisites` says so)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_family_moves_as_sessions_run_and_promtool_accepts_the_text() {
    let redis = Redis::start();
    // One guest instance at a time, so concurrent proofs must wait for it.
    let server = Server::on_redis(
        &redis,
        &[
            "--sse",
            "--allow-unsigned-callbacks",
            "--guest-concurrency",
            "1",
        ],
    );
    let before = Scrape::of(&server);
    promtool_accepts(&server);
    for family in [
        "irma_build_info",
        "irma_guest_info",
        "irma_guest_activations_total",
        "irma_guest_refusals_total",
        "irma_store_cas_conflicts_total",
        "irma_store_retries_total",
        "irma_guest_instance_waits_total",
        "irma_guest_instances_in_use",
        "irma_sse_streams_open",
        "irma_callbacks_pending",
        "irma_callbacks_delivered_total",
    ] {
        assert!(before.has(family), "{family} from the start");
    }
    assert_eq!(before.sum("irma_sessions_started_total", &[]), 0.0);

    // Issuance with a callback whose receiver fails once, then a disclosure.
    let receiver = Receiver::start(vec![Reply::status(503), Reply::status(200)]);
    let mut app = App::new(demo_conf(), 5);
    let start = post_json(
        &format!("{}/session", server.url),
        &json!({"callbackUrl": format!("{}/cb", receiver.url), "request": student_card("m1")}),
    );
    assert_eq!(start.status, 200, "{}", start.body);
    let issuance = Session::from_start(&server, start.json());
    assert_eq!(app.run(&issuance.u).status, 200);
    let pending = eventually(
        || Scrape::of(&server).sum("irma_callbacks_pending", &[]) >= 1.0,
        || "a callback pending while its receiver fails".into(),
    );
    println!("callback pending after {pending:?}");
    receiver.wait_for(2);
    eventually(
        || {
            let m = Scrape::of(&server);
            m.sum("irma_callbacks_delivered_total", &[]) == 1.0
                && m.sum("irma_callbacks_pending", &[]) == 0.0
        },
        || "the callback delivered, nothing pending".into(),
    );
    let disclosed = Session::start(&server, &disclosure());
    assert_eq!(app.run(&disclosed.u).status, 200);

    // An open event stream, ended by the session's end.
    let watched = Session::start(&server, &disclosure());
    let events = Events::open(
        &format!("{}/session/{}/statusevents", server.url, watched.token),
        &[],
    );
    eventually(
        || Scrape::of(&server).sum("irma_sse_streams_open", &[]) == 1.0,
        || "one stream open".into(),
    );
    assert_eq!(watched.cancel().status, 200);
    while events.next(Duration::from_secs(30)).is_some() {}
    eventually(
        || Scrape::of(&server).sum("irma_sse_streams_open", &[]) == 0.0,
        || "the stream counted as closed".into(),
    );

    // Concurrent cancels of one session: all load version 1, one commits, the rest conflict.
    let conflicts = eventually(
        || {
            let s = Session::start(&server, &disclosure());
            let url = format!("{}/session/{}", server.url, s.token);
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let url = url.clone();
                    std::thread::spawn(move || http("DELETE", &url, &[], None).status)
                })
                .collect();
            for t in threads {
                assert_eq!(t.join().unwrap(), 200);
            }
            Scrape::of(&server).sum("irma_store_cas_conflicts_total", &[]) > 0.0
        },
        || "a compare-and-swap conflict".into(),
    );
    println!("conflict seen after {conflicts:?}");

    // Commitments of four apps at once on one guest instance: some wait for it.
    let waits = eventually(
        || {
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let s = Session::start(&server, &student_card(&format!("w{i}")));
                    std::thread::spawn(move || {
                        let mut app = App::new(demo_conf(), 10 + i);
                        assert_eq!(app.run(&s.u).status, 200);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            Scrape::of(&server).sum("irma_guest_instance_waits_total", &[]) > 0.0
        },
        || "a guest call waited for the instance".into(),
    );
    println!("instance wait seen after {waits:?}");

    // A method the client makes up is counted as `other`: no client can add series.
    let odd = http(
        "FROBNICATE",
        &format!("{}/session/{}/status", server.url, disclosed.token),
        &[],
        None,
    );
    assert_eq!(odd.status, 405);

    let after = Scrape::of(&server);
    promtool_accepts(&server);
    assert!(after.sum("irma_http_requests_total", &[("method", "other")]) >= 1.0);
    let grew =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert!(grew("irma_sessions_started_total", &[("type", "issuing")]) >= 5.0);
    // The one disclosed, the one watched, at least one cancelled concurrently.
    assert!(grew("irma_sessions_started_total", &[("type", "disclosing")]) >= 3.0);
    assert!(
        grew(
            "irma_sessions_ended_total",
            &[("type", "issuing"), ("status", "DONE")]
        ) >= 5.0
    );
    assert!(
        grew(
            "irma_sessions_ended_total",
            &[("type", "disclosing"), ("status", "DONE")]
        ) >= 1.0
    );
    assert!(
        grew(
            "irma_sessions_ended_total",
            &[("type", "disclosing"), ("status", "CANCELLED")]
        ) >= 2.0
    );
    let session_posts = [("route", "/session"), ("method", "POST"), ("status", "200")];
    assert_eq!(
        grew("irma_http_requests_total", &session_posts),
        after.sum("irma_sessions_started_total", &[])
    );
    assert!(grew("irma_http_request_duration_seconds_count", &session_posts) >= 1.0);
    assert!(
        grew(
            "irma_http_request_duration_seconds_bucket",
            &[("route", "/session"), ("le", "+Inf")]
        ) >= 1.0
    );
    for event in ["start", "app-connect", "app-commitments", "app-proofs"] {
        assert!(
            grew(
                "irma_guest_call_duration_seconds_count",
                &[("event", event)]
            ) >= 1.0,
            "{event}"
        );
    }
    for op in ["create", "load", "save", "summary", "pending_deliveries"] {
        assert!(
            grew("irma_store_operation_duration_seconds_count", &[("op", op)]) >= 1.0,
            "{op}"
        );
    }
    assert!(grew("irma_callbacks_failed_total", &[("outcome", "retried")]) >= 1.0);
    assert_eq!(after.sum("irma_guest_instances_in_use", &[]), 0.0);
    assert_eq!(after.sum("irma_build_info", &[]), 1.0);
    assert_eq!(after.sum("irma_guest_info", &[]), 1.0);
    // The text names no token of any session.
    let text = get(&format!("{}/metrics", server.url)).body;
    for s in [&issuance, &disclosed, &watched] {
        assert!(!text.contains(&s.token));
    }
    assert!(!text.contains("FROBNICATE"));
}
