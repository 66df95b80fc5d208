//! Server-sent events: with `--sse`, requestor, app and frontend channels see every status
//! change, and never the status their client already knows as a change (the real app reads
//! the first event after PAIRING as the outcome of pairing); a client that subscribes late
//! learns the change it missed. Without the flag, `SSE_DISABLED`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::{App, PairingWait, Via};
use irma_tests::{Events, PATIENCE, Schemes, Server, Session, get, http, subscribe};
use serde_json::json;

const WAIT: Duration = PATIENCE;

#[test]
fn every_channel_sees_connected_and_done() {
    // INITIALIZED, where every subscriber starts, is not sent; every change after it is.
    let server = Server::start(Schemes::Demo, &["--sse"]);
    let mut app = App::new(demo_conf(), 5);
    let s = Session::start(&server, &student_card("s1"));
    let requestor = subscribe(
        format!("{}/session/{}/statusevents", server.url, s.token),
        None,
        2,
    );
    let frontend = subscribe(
        format!("{}/frontend/statusevents", s.u),
        Some(s.frontend_auth.clone()),
        2,
    );
    let app_channel = subscribe(format!("{}/statusevents", s.u), None, 2);
    assert_eq!(app.run(&s.u).status, 200);
    assert_eq!(
        requestor.recv_timeout(WAIT).unwrap(),
        vec!["\"CONNECTED\"", "\"DONE\""]
    );
    assert_eq!(
        app_channel.recv_timeout(WAIT).unwrap(),
        vec!["\"CONNECTED\"", "\"DONE\""]
    );
    assert_eq!(
        frontend.recv_timeout(WAIT).unwrap(),
        vec![r#"{"status":"CONNECTED"}"#, r#"{"status":"DONE"}"#]
    );
    // A finished session has nothing to stream.
    let a = get(&format!("{}/session/{}/statusevents", server.url, s.token));
    assert_eq!((a.status, a.error().as_str()), (501, "UNSUPPORTED"));
    let a = http(
        "GET",
        &format!("{}/frontend/statusevents", s.u),
        &[("Authorization", "wrong")],
        None,
    );
    assert_eq!((a.status, a.error().as_str()), (403, "UNAUTHORIZED"));
}

/// What the app reads when the pairing completed: it goes on.
fn connected(via: Via) -> PairingWait {
    PairingWait {
        status: "CONNECTED".into(),
        via,
    }
}

/// A session whose frontend turned pairing on, and whose app has connected: PAIRING.
fn pairing_session(front: &Server, app: &App) -> Session {
    let s = Session::start(front, &student_card("s2"));
    assert_eq!(s.frontend_options("pin").status, 200);
    let c = app.connect(&s.u);
    assert_eq!(c.status, 200, "{}", c.body);
    assert!(c.json()["options"]["pairingCode"].is_string(), "{}", c.body);
    assert_eq!(s.status(), "PAIRING");
    s
}

/// The app waits for pairing on a thread, as the real app does; returns once it listens.
fn app_waits(app: App, s: &Session) -> mpsc::Receiver<PairingWait> {
    let (tx, rx) = mpsc::channel();
    let (listening_tx, listening) = mpsc::channel();
    let u = s.u.clone();
    std::thread::spawn(move || {
        let wait = app.wait_for_pairing(&u, move || listening_tx.send(()).unwrap());
        let _ = tx.send(wait);
    });
    listening.recv_timeout(WAIT).expect("the app listens");
    rx
}

fn the_app_waiting_for_pairing_reads_connected(front: &Server) {
    let app = App::new(demo_conf(), 6);
    let s = pairing_session(front, &app);
    let outcome = app_waits(app, &s);
    // Nothing is news to the app until the pairing completes: not its own PAIRING, also not
    // after the streams re-read the status (every second).
    let early = outcome.recv_timeout(Duration::from_millis(2500));
    assert!(
        matches!(early, Err(mpsc::RecvTimeoutError::Timeout)),
        "the app read {early:?} before pairing"
    );
    assert_eq!(s.pairing_completed().status, 204);
    let started = Instant::now();
    let wait = outcome
        .recv_timeout(WAIT)
        .expect("the app learnt the pairing");
    println!("the app learnt the pairing after {:?}", started.elapsed());
    assert_eq!(wait, connected(Via::Stream));
}

fn a_late_app_learns_the_pairing_it_missed(front: &Server) {
    let app = App::new(demo_conf(), 7);
    let s = pairing_session(front, &app);
    assert_eq!(s.pairing_completed().status, 204);
    // The app fetches the request (a write that keeps CONNECTED) only after pairing, but a
    // slow app may subscribe after the page completed it: CONNECTED comes first.
    let wait = app.wait_for_pairing(&s.u, || {});
    assert_eq!(wait, connected(Via::Stream));
}

fn a_cancelled_pairing_is_rejected(front: &Server) {
    let app = App::new(demo_conf(), 8);
    let s = pairing_session(front, &app);
    let outcome = app_waits(app, &s);
    assert_eq!(s.cancel().status, 200);
    let wait = outcome.recv_timeout(WAIT).expect("the app learnt it");
    assert_eq!(wait.status, "CANCELLED", "{wait:?}");
}

#[test]
fn the_app_waits_for_pairing_as_the_real_app_does() {
    let server = Server::start(Schemes::Demo, &["--sse"]);
    the_app_waiting_for_pairing_reads_connected(&server);
    a_late_app_learns_the_pairing_it_missed(&server);
    a_cancelled_pairing_is_rejected(&server);
}

#[test]
fn the_app_waits_for_pairing_across_replicas() {
    let c = Cluster::start(3, Redis::start(), &["--sse"]);
    the_app_waiting_for_pairing_reads_connected(&c.front);
    a_late_app_learns_the_pairing_it_missed(&c.front);
    a_cancelled_pairing_is_rejected(&c.front);
}

#[test]
fn without_sse_the_app_polls_for_pairing() {
    let server = Server::start(Schemes::Demo, &[]);
    let app = App::new(demo_conf(), 9);
    let s = pairing_session(&server, &app);
    let outcome = app_waits(app, &s);
    assert_eq!(s.pairing_completed().status, 204);
    assert_eq!(outcome.recv_timeout(WAIT).unwrap(), connected(Via::Polling));
}

#[test]
fn no_channel_sends_the_status_its_client_knows() {
    let server = Server::start(Schemes::Demo, &["--sse"]);
    let mut app = App::new(demo_conf(), 10);
    assert_eq!(
        app.run(&Session::start(&server, &student_card("s3")).u)
            .status,
        200
    );
    let s = Session::start(&server, &disclosure());
    let requestor_url = format!("{}/session/{}/statusevents", server.url, s.token);
    let frontend_url = format!("{}/frontend/statusevents", s.u);
    let frontend_auth = ("Authorization", s.frontend_auth.as_str());
    let quiet = Duration::from_millis(1500);

    // At INITIALIZED nobody has anything to learn.
    let r0 = Events::open(&requestor_url, &[]);
    let f0 = Events::open(&frontend_url, &[frontend_auth]);
    assert_eq!(r0.next(quiet), None);
    assert_eq!(f0.next(quiet), None);

    // The app connects without pairing: its connect said CONNECTED, so its stream does not.
    let c = app.connect(&s.u);
    assert_eq!(c.status, 200);
    let a1 = Events::open(&format!("{}/statusevents", s.u), &[]);
    assert_eq!(
        a1.next(quiet),
        None,
        "the app's own connect told it CONNECTED"
    );
    // Requestor and frontend learnt only INITIALIZED: CONNECTED is news to a late subscriber,
    // unless it says it has it (`Last-Event-ID`, as an EventSource does when it reconnects).
    let r1 = Events::open(&requestor_url, &[]);
    let f1 = Events::open(&frontend_url, &[frontend_auth]);
    let f1_reconnected = Events::open(
        &frontend_url,
        &[frontend_auth, ("Last-Event-ID", "CONNECTED")],
    );
    let r1_reconnected = Events::open(&requestor_url, &[("Last-Event-ID", "CONNECTED")]);
    assert_eq!(r1.next(WAIT).as_deref(), Some("\"CONNECTED\""));
    assert_eq!(f1.next(WAIT).as_deref(), Some(r#"{"status":"CONNECTED"}"#));
    assert_eq!(r1_reconnected.next(quiet), None);
    assert_eq!(f1_reconnected.next(quiet), None);

    // Every open stream gets each change once, and only changes.
    let a = app.respond(&s.u, &c.json()["request"]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(r0.take(3, WAIT), vec!["\"CONNECTED\"", "\"DONE\""]);
    assert_eq!(
        f0.take(3, WAIT),
        vec![r#"{"status":"CONNECTED"}"#, r#"{"status":"DONE"}"#]
    );
    assert_eq!(a1.take(2, WAIT), vec!["\"DONE\""]);
    assert_eq!(r1.take(2, WAIT), vec!["\"DONE\""]);
    assert_eq!(f1.take(2, WAIT), vec![r#"{"status":"DONE"}"#]);
    assert_eq!(r1_reconnected.take(2, WAIT), vec!["\"DONE\""]);
    assert_eq!(f1_reconnected.take(2, WAIT), vec![r#"{"status":"DONE"}"#]);

    // After the end: a page that missed it learns the outcome; one that has it is told to
    // stop reconnecting (204 ends an EventSource).
    let late = Events::open(&frontend_url, &[frontend_auth]);
    assert_eq!(late.take(2, WAIT), vec![r#"{"status":"DONE"}"#]);
    let done = http(
        "GET",
        &frontend_url,
        &[frontend_auth, ("Last-Event-ID", "DONE")],
        None,
    );
    assert_eq!((done.status, done.body.as_str()), (204, ""));
}

#[test]
fn a_stream_learns_of_a_timeout_while_other_sessions_keep_changing() {
    // A lapse into TIMEOUT is written nowhere, so no one announces it: streams find it by
    // re-reading the status every second, however many other sessions they hear of meanwhile.
    let server = Server::start(Schemes::Demo, &["--sse"]);
    let s = Session::start(&server, &json!({"timeout": 1, "request": disclosure()}));
    let frontend = Events::open(
        &format!("{}/frontend/statusevents", s.u),
        &[("Authorization", &s.frontend_auth)],
    );
    let requestor = Events::open(
        &format!("{}/session/{}/statusevents", server.url, s.token),
        &[],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (stop, front) = (stop.clone(), Server::external(&server.url));
        std::thread::spawn(move || {
            let mut announced = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(Session::start(&front, &disclosure()).cancel().status, 200);
                announced += 1;
            }
            announced
        })
    };
    let started = Instant::now();
    let got = (frontend.take(2, WAIT), requestor.take(2, WAIT));
    stop.store(true, Ordering::Relaxed);
    let announced = busy.join().unwrap();
    println!(
        "TIMEOUT streamed {:?} after subscribing, among {announced} other announcements",
        started.elapsed()
    );
    assert_eq!(
        got,
        (
            vec![r#"{"status":"TIMEOUT"}"#.to_owned()],
            vec!["\"TIMEOUT\"".to_owned()]
        )
    );
}

#[test]
fn without_the_flag_sse_is_disabled() {
    let server = Server::start(Schemes::Demo, &[]);
    let s = Session::start(&server, &disclosure());
    for url in [
        format!("{}/session/{}/statusevents", server.url, s.token),
        format!("{}/statusevents", s.u),
    ] {
        let a = get(&url);
        assert_eq!(
            (a.status, a.error().as_str()),
            (500, "SSE_DISABLED"),
            "{url}"
        );
    }
}
