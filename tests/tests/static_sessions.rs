//! Static sessions (irma-server.md §1.15): a printed QR (`irmaqr: redirect`) names a configured
//! request; every scan starts a fresh session of it, whose result reaches the requestor by
//! callback.

use irma_tests::receiver::{Receiver, Reply};
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, fails_to_start, http};
use serde_json::{Value, json};

fn scan(server: &Server, name: &str) -> irma_tests::Answer {
    http(
        "POST",
        &format!("{}/irma/session/{name}", server.url),
        &[("Content-Type", "application/json")],
        Some("{}"),
    )
}

#[test]
fn every_scan_starts_a_fresh_session_with_its_own_callback() {
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let statics =
        json!({"login": {"callbackUrl": receiver.url, "request": disclosure()}}).to_string();
    let server = Server::start(
        Schemes::Demo,
        &["--static-sessions", &statics, "--allow-unsigned-callbacks"],
    );
    let mut app = App::new(demo_conf(), 81);
    assert_eq!(
        app.run(&Session::start(&server, &student_card("s81")).u)
            .status,
        200
    );
    let mut seen = Vec::new();
    for _ in 0..2 {
        let a = scan(&server, "login");
        assert_eq!(a.status, 200, "{}", a.body);
        let ptr = a.json();
        assert_eq!(ptr["irmaqr"], "disclosing");
        let u = ptr["u"].as_str().unwrap().to_owned();
        assert!(
            u.starts_with(&format!("{}/irma/session/", server.url)),
            "{u}"
        );
        assert!(!seen.contains(&u), "a fresh session each time");
        assert_eq!(app.run(&u).json(), json!({"proofStatus": "VALID"}));
        seen.push(u);
    }
    let calls = receiver.wait_for(2);
    let tokens: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str::<Value>(&c.body).unwrap())
        .inspect(|b| {
            assert_eq!(
                (&b["status"], &b["proofStatus"]),
                (&json!("DONE"), &json!("VALID"))
            )
        })
        .map(|b| b["token"].clone())
        .collect();
    assert_ne!(tokens[0], tokens[1]);
    let a = scan(&server, "nothing");
    assert_eq!(
        (a.status, a.error().as_str(), a.json()["message"].as_str()),
        (400, "INVALID_REQUEST", Some("unknown static session"))
    );
}

#[test]
fn static_sessions_are_checked_at_start_up() {
    let cb = "http://127.0.0.1:9/cb";
    let cases = [
        (
            json!({"log-in": {"callbackUrl": cb, "request": disclosure()}}),
            "letters, digits and _",
        ),
        (
            json!({"x": {"callbackUrl": cb, "request": student_card("s")}}),
            "disclosure or signature",
        ),
        (
            json!({"x": {"request": disclosure()}}),
            "callbackUrl or nextSession",
        ),
    ];
    for (statics, want) in cases {
        let s = statics.to_string();
        let err = fails_to_start(
            Schemes::Demo,
            &["--static-sessions", &s, "--allow-unsigned-callbacks"],
        );
        assert!(err.contains(want), "{statics}: {err}");
    }
    let s = json!({"x": {"callbackUrl": cb, "request": disclosure()}}).to_string();
    let err = fails_to_start(Schemes::Demo, &["--static-sessions", &s]);
    assert!(
        err.contains("--jwt-privkey or --allow-unsigned-callbacks"),
        "{err}"
    );
}
