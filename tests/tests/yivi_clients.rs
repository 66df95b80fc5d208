//! Real third-party clients: the npm packages `@privacybydesign/yivi-core` and
//! `@privacybydesign/yivi-client` run a session as a web page would (in plain Node 20, with and
//! without an EventSource polyfill), while the test wallet plays the app, pairing included.
//! Needs `npm ci` in tests/clients (`just test` does it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::{APP_AUTH, App};
use irma_tests::{Schemes, Server, http, root};
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
    let mut child = Command::new("node")
        .arg("yivi-session.mjs")
        .arg(&server.url)
        .arg(mode)
        .current_dir(&dir)
        .env("IRMA_REQUEST", request.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
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
    let deadline = Instant::now() + Duration::from_secs(60);
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

/// Plays the app with pairing: connect, hand the code to the page, wait for the page to
/// complete pairing, then fetch the request and answer it.
fn app_with_pairing(app: &mut App, u: &str, answered: &mpsc::Sender<u16>) -> Option<String> {
    let c = app.connect(u);
    assert_eq!(c.status, 200, "{}", c.body);
    let code = c.json()["options"]["pairingCode"]
        .as_str()
        .map(str::to_owned);
    if code.is_none() {
        let a = app.respond(u, &c.json()["request"]);
        answered.send(a.status).unwrap();
        return None;
    }
    // The page completes pairing once it has the code; the app waits for CONNECTED.
    let (u, mut app_clone) = (u.to_owned(), std::mem::replace(app, wallet()));
    let answered = answered.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let s = http("GET", &format!("{u}/status"), &[], None);
            if s.json() == json!("CONNECTED") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = http(
            "GET",
            &format!("{u}/request"),
            &[("Authorization", APP_AUTH)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let a = app_clone.respond(&u, &r.json());
        answered.send(a.status).unwrap();
    });
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

fn run(mode: &str, server_flags: &[&str]) {
    let server = Server::start(Schemes::Demo, server_flags);
    let mut app = wallet();
    // Issuance: the page enables pairing (issuance has pairingHint); the user types the code.
    let (tx, rx) = mpsc::channel();
    let events = page(&server, &issuance(), mode, |ptr| {
        app_with_pairing(&mut app, ptr["u"].as_str().unwrap(), &tx)
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 200);
    let st = states(&events);
    assert!(
        st.contains(&"EnterPairingCode".to_owned()) && st.contains(&"Pairing".to_owned()),
        "{st:?}"
    );
    assert_eq!(st.last().map(String::as_str), Some("Success"), "{st:?}");
    assert_eq!(result(&events)["status"], "DONE");
    assert_eq!(result(&events)["type"], "issuing");

    // Disclosure of what was issued: no pairing.
    let mut app = wallet_with_card(&server);
    let (tx, rx) = mpsc::channel();
    let events = page(&server, &disclosure(), mode, |ptr| {
        app_with_pairing(&mut app, ptr["u"].as_str().unwrap(), &tx)
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 200);
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
fn yivi_client_polling() {
    run("poll", &[]);
}

#[test]
fn yivi_client_with_an_eventsource_polyfill_and_sse() {
    run("sse", &["--sse"]);
}
