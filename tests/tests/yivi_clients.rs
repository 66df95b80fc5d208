//! Real third-party clients: the npm packages `@privacybydesign/yivi-core` and
//! `@privacybydesign/yivi-client` run a session as a web page would (in plain Node 20, polling
//! or streaming with an EventSource polyfill), while the test wallet plays the app and waits
//! for pairing as the real app does; with and without `--sse`, in memory and across replicas.
//! Needs `npm ci` in tests/clients (`just test` does it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::cluster::Cluster;
use irma_tests::redis::Redis;
use irma_tests::wallet::{APP_AUTH, App, Via};
use irma_tests::{PATIENCE, Schemes, Server, http, process, root};
use serde_json::{Value, json};

/// Runs the page script; `on_qr` plays the app once the QR is shown and may return a pairing
/// code to type into the page. Returns the page's events.
fn page(
    server: &Server,
    request: &Value,
    mode: &str,
    mut on_qr: impl FnMut(&Value) -> Option<String>,
) -> Vec<Value> {
    let dir = root().join("tests/clients");
    assert!(
        dir.join("node_modules/@privacybydesign/yivi-core").exists(),
        "run `npm ci` in tests/clients (just test does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg("yivi-session.mjs")
        .arg(&server.url)
        .arg(mode)
        .current_dir(&dir)
        .env("IRMA_REQUEST", request.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = process::spawn(cmd).expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let deadline = Instant::now() + PATIENCE * 2;
    let mut events = Vec::new();
    while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if e["event"] == "qr"
            && let Some(code) = on_qr(&e["sessionPtr"])
        {
            writeln!(stdin, "{code}").unwrap();
        }
        if std::env::var_os("IRMA_TEST_LOG").is_some() {
            eprintln!("[page] {e}");
        }
        let done = e["event"] == "result" || e["event"] == "error";
        events.push(e);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    events
}

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "state")
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect()
}

fn result(events: &[Value]) -> Value {
    events
        .iter()
        .find(|e| e["event"] == "result")
        .map(|e| e["result"].clone())
        .unwrap_or_else(|| panic!("no result: {events:?}"))
}

fn wallet() -> App {
    App::new(
        Configuration::load(
            &root().join("host/demo/irma_configuration"),
            LoadOptions::default(),
        )
        .unwrap(),
        21,
    )
}

/// How the app's part of a session ended: the status of its final POST, or why it stopped.
type AppOutcome = Result<u16, String>;

/// Plays the app: connect; without pairing, answer at once. With pairing, wait for it as the
/// real app does (it listens before the user can type the code, which is returned for the
/// page), then fetch the request and answer it on a thread. `via` is how the app must learn
/// that pairing completed: a status stream when the server runs with `--sse`, else polling.
fn app_with_pairing(
    app: &mut App,
    u: &str,
    via: Via,
    answered: &mpsc::Sender<AppOutcome>,
) -> Option<String> {
    let c = app.connect(u);
    assert_eq!(c.status, 200, "{}", c.body);
    let code = c.json()["options"]["pairingCode"]
        .as_str()
        .map(str::to_owned);
    if code.is_none() {
        let a = app.respond(u, &c.json()["request"]);
        answered.send(Ok(a.status)).unwrap();
        return None;
    }
    let (u, mut app) = (u.to_owned(), std::mem::replace(app, wallet()));
    let answered = answered.clone();
    let (listening_tx, listening) = mpsc::channel();
    std::thread::spawn(move || {
        let wait = app.wait_for_pairing(&u, move || listening_tx.send(()).unwrap());
        let outcome = if wait.via != via {
            Err(format!(
                "the app learnt the pairing by {:?}, not {via:?}",
                wait.via
            ))
        } else if wait.status != "CONNECTED" {
            Err(format!("pairingRejected: the app read {:?}", wait.status))
        } else {
            let r = http(
                "GET",
                &format!("{u}/request"),
                &[("Authorization", APP_AUTH)],
                None,
            );
            assert_eq!(r.status, 200, "{}", r.body);
            Ok(app.respond(&u, &r.json()).status)
        };
        answered.send(outcome).unwrap();
    });
    listening
        .recv_timeout(PATIENCE)
        .expect("the app listens for the pairing");
    code
}

fn issuance() -> Value {
    json!({"@context": "https://irma.app/ld/request/issuance/v2",
           "credentials": [{"credential": "stateless-demo.University.studentCard",
                            "attributes": {"university": "RU", "studentCardNumber": "7", "studentID": "s7", "level": "MSc"}}]})
}

fn disclosure() -> Value {
    json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[["stateless-demo.University.studentCard.studentID"]]]})
}

/// A page in `mode` (`poll` or `sse`) runs an issuance with pairing and then a disclosure
/// against `server`, with the test wallet as the app; `via` is how the app must learn of the
/// pairing.
fn run(server: &Server, mode: &str, via: Via) {
    let mut app = wallet();
    // Issuance: the page enables pairing (issuance has pairingHint); the user types the code.
    let (tx, rx) = mpsc::channel();
    let events = page(server, &issuance(), mode, |ptr| {
        app_with_pairing(&mut app, ptr["u"].as_str().unwrap(), via, &tx)
    });
    let st = states(&events);
    assert_eq!(
        rx.recv_timeout(PATIENCE).unwrap(),
        Ok(200),
        "page states {st:?}"
    );
    assert!(
        st.contains(&"EnterPairingCode".to_owned()) && st.contains(&"Pairing".to_owned()),
        "{st:?}"
    );
    assert_eq!(st.last().map(String::as_str), Some("Success"), "{st:?}");
    assert_eq!(result(&events)["status"], "DONE");
    assert_eq!(result(&events)["type"], "issuing");

    // Disclosure of what was issued: no pairing.
    let mut app = wallet_with_card(server);
    let (tx, rx) = mpsc::channel();
    let events = page(server, &disclosure(), mode, |ptr| {
        app_with_pairing(&mut app, ptr["u"].as_str().unwrap(), via, &tx)
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Ok(200));
    let st = states(&events);
    assert!(!st.contains(&"EnterPairingCode".to_owned()), "{st:?}");
    let r = result(&events);
    assert_eq!(
        (r["status"].as_str(), r["proofStatus"].as_str()),
        (Some("DONE"), Some("VALID"))
    );
    assert_eq!(r["disclosed"][0][0]["rawvalue"], "s7");
}

/// A wallet that holds a student card issued by `server` (outside the page).
fn wallet_with_card(server: &Server) -> App {
    let mut app = wallet();
    let s = irma_tests::Session::start(server, &issuance());
    assert_eq!(app.run(&s.u).status, 200);
    app
}

#[test]
fn polling_page_without_sse() {
    run(&Server::start(Schemes::Demo, &[]), "poll", Via::Polling);
}

// With `--sse` the app learns of the pairing from its status stream, which must not hand it
// PAIRING, the status it has (the real app then gives up: `pairingRejected`).

#[test]
fn polling_page_with_sse() {
    run(
        &Server::start(Schemes::Demo, &["--sse"]),
        "poll",
        Via::Stream,
    );
}

#[test]
fn streaming_page_with_sse() {
    run(
        &Server::start(Schemes::Demo, &["--sse"]),
        "sse",
        Via::Stream,
    );
}

#[test]
fn polling_page_with_sse_across_replicas() {
    let c = Cluster::start(3, Redis::start(), &["--sse"]);
    run(&c.front, "poll", Via::Stream);
}

#[test]
fn streaming_page_with_sse_across_replicas() {
    let c = Cluster::start(3, Redis::start(), &["--sse"]);
    run(&c.front, "sse", Via::Stream);
}
