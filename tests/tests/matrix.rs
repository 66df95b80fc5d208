//! Every endpoint in every status (irma-server.md §2.4), and the errors around them: malformed
//! bodies, unknown tokens, wrong Authorization, oversized bodies. Each gives the right IRMA
//! error and leaves the session as it was.

use std::sync::OnceLock;

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::{APP_AUTH, App};
use irma_tests::{Answer, PATIENCE, Schemes, Server, Session, get, http, post_json, root};
use serde_json::{Value, json};

fn conf() -> Configuration {
    Configuration::load(
        &root().join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .unwrap()
}

/// One server for this file, and a wallet holding a student card issued by it.
fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(Schemes::Demo, &[]))
}

fn app() -> App {
    let mut app = App::new(conf(), 7);
    let s = Session::start(
        server(),
        &json!({
            "@context": "https://irma.app/ld/request/issuance/v2",
            "credentials": [{"credential": "stateless-demo.University.studentCard",
                             "attributes": {"university": "RU", "studentCardNumber": "1", "studentID": "s1", "level": "BSc"}}]
        }),
    );
    assert_eq!(app.run(&s.u).status, 200);
    app
}

fn disclosure() -> Value {
    json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[["stateless-demo.University.studentCard.studentID"]]]})
}

fn new_session() -> Session {
    Session::start(server(), &disclosure())
}

fn pairing_session(app: &App) -> Session {
    let s = new_session();
    let o = s.frontend_options("pin");
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.json()["pairingMethod"], "pin");
    let code = o.json()["pairingCode"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 4);
    let c = app.connect(&s.u);
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["options"]["pairingCode"], code);
    assert!(
        c.json().get("request").is_none(),
        "no request before pairing"
    );
    assert_eq!(s.status(), "PAIRING");
    s
}

fn connected_session(app: &App) -> (Session, Value) {
    let s = new_session();
    let c = app.connect(&s.u);
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(s.status(), "CONNECTED");
    (s, c.json()["request"].clone())
}

fn app_get(s: &Session, path: &str) -> Answer {
    http(
        "GET",
        &format!("{}/{path}", s.u),
        &[("Authorization", APP_AUTH)],
        None,
    )
}

fn post_proofs(s: &Session, body: &str, auth: &str) -> Answer {
    http(
        "POST",
        &format!("{}/proofs", s.u),
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        Some(body),
    )
}

fn frontend_status(s: &Session, auth: &str) -> Answer {
    http(
        "GET",
        &format!("{}/frontend/status", s.u),
        &[("Authorization", auth)],
        None,
    )
}

fn assert_error(a: &Answer, status: u16, error: &str) {
    assert_eq!(
        (a.status, a.error().as_str()),
        (status, error),
        "{}",
        a.body
    );
    let j = a.json();
    assert_eq!(j["status"], status);
    assert!(j["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[test]
fn initialized() {
    let s = new_session();
    assert_error(&app_get(&s, "request"), 403, "UNEXPECTED_REQUEST");
    assert_error(&post_proofs(&s, "{}", APP_AUTH), 403, "UNEXPECTED_REQUEST");
    assert_error(&s.pairing_completed(), 403, "UNEXPECTED_REQUEST");
    assert_eq!(get(&format!("{}/status", s.u)).json(), json!("INITIALIZED"));
    assert_eq!(
        frontend_status(&s, &s.frontend_auth).json(),
        json!({"status": "INITIALIZED"})
    );
    assert_eq!(
        s.result(),
        json!({"token": s.token, "status": "INITIALIZED", "type": "disclosing"})
    );
    assert_eq!(s.status(), "INITIALIZED");
    // options: pin, then none again.
    assert_eq!(s.frontend_options("pin").status, 200);
    let none = s.frontend_options("none");
    assert_eq!(
        none.json(),
        json!({"@context": "https://irma.app/ld/options/v1", "pairingMethod": "none"})
    );
    assert_error(
        &s.frontend_options("carrier-pigeon"),
        403,
        "UNEXPECTED_REQUEST",
    );
    // DELETE from the frontend (no authorization needed) cancels.
    assert_eq!(http("DELETE", &s.u, &[], None).status, 200);
    assert_eq!(s.status(), "CANCELLED");
}

#[test]
fn pairing() {
    let app = app();
    let s = pairing_session(&app);
    assert_error(&app_get(&s, "request"), 403, "PAIRING_REQUIRED");
    assert_error(&post_proofs(&s, "{}", APP_AUTH), 403, "PAIRING_REQUIRED");
    assert_error(&s.frontend_options("pin"), 403, "UNEXPECTED_REQUEST");
    assert_eq!(s.status(), "PAIRING");
    let p = s.pairing_completed();
    assert_eq!(p.status, 204);
    assert_eq!(s.status(), "CONNECTED");
    assert_error(&s.pairing_completed(), 403, "UNEXPECTED_REQUEST");
    // After pairing the app fetches the request and completes the session.
    let r = app_get(&s, "request");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut app = app;
    let a = app.respond(&s.u, &r.json());
    assert_eq!(a.json()["proofStatus"], "VALID");
    assert_eq!(s.status(), "DONE");

    let s = pairing_session(&app);
    assert_eq!(s.cancel().status, 200);
    assert_eq!(s.status(), "CANCELLED");
}

#[test]
fn connected() {
    let mut app = app();
    let (s, request) = connected_session(&app);
    // A retried connect within 10 s is answered from the cache, identically.
    let again = app.connect(&s.u);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["request"], request);
    assert_error(&s.frontend_options("pin"), 403, "UNEXPECTED_REQUEST");
    assert_error(&s.pairing_completed(), 403, "UNEXPECTED_REQUEST");
    assert_eq!(app_get(&s, "request").json(), request);
    // Wrong or missing app authorization, and malformed proofs, change nothing.
    assert_error(
        &post_proofs(&s, "{}", "SomeoneElse000000000"),
        403,
        "UNAUTHORIZED",
    );
    assert_error(
        &post_proofs(&s, "{not json", APP_AUTH),
        400,
        "MALFORMED_INPUT",
    );
    assert_error(
        &post_proofs(&s, r#"{"proofs": [{"A": 5}]}"#, APP_AUTH),
        400,
        "MALFORMED_INPUT",
    );
    assert_error(
        &http(
            "POST",
            &format!("{}/commitments", s.u),
            &[("Authorization", APP_AUTH)],
            Some("{}"),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_eq!(s.status(), "CONNECTED");
    let (body, _) = app.answer(&request);
    let first = post_proofs(&s, &body, APP_AUTH);
    assert_eq!(first.status, 200);
    assert_eq!(s.status(), "DONE");
    // The identical retry is replayed from the cache; the record is not rewritten.
    let result = s.result();
    let retry = post_proofs(&s, &body, APP_AUTH);
    assert_eq!(
        (retry.status, retry.body.clone()),
        (first.status, first.body.clone())
    );
    assert_eq!(s.result(), result);

    let (s, _) = connected_session(&app);
    assert_eq!(app.decline(&s.u).status, 200);
    assert_eq!(s.result()["status"], "CANCELLED");
}

#[test]
fn finished() {
    let mut app = app();
    let (s, request) = connected_session(&app);
    let (body, _) = app.answer(&request);
    assert_eq!(post_proofs(&s, &body, APP_AUTH).status, 200);
    let result = s.result();
    assert_error(&app.connect(&s.u), 403, "UNEXPECTED_REQUEST");
    assert_error(&app_get(&s, "request"), 403, "UNEXPECTED_REQUEST");
    assert_error(&post_proofs(&s, "{}", APP_AUTH), 403, "UNEXPECTED_REQUEST");
    assert_error(&s.frontend_options("pin"), 403, "UNEXPECTED_REQUEST");
    assert_error(&s.pairing_completed(), 403, "UNEXPECTED_REQUEST");
    // DELETE on a finished session is a silent no-op.
    assert_eq!(s.cancel().status, 200);
    assert_eq!(app.decline(&s.u).status, 200);
    assert_eq!(s.status(), "DONE");
    assert_eq!(s.result(), result);
    assert_eq!(
        frontend_status(&s, &s.frontend_auth).json(),
        json!({"status": "DONE"})
    );
}

#[test]
fn proofs_against_another_nonce_end_done_with_invalid() {
    let mut app = app();
    let (s, mut request) = connected_session(&app);
    request["nonce"] = json!("AQID");
    let (body, _) = app.answer(&request);
    let a = post_proofs(&s, &body, APP_AUTH);
    assert_eq!(a.json(), json!({"proofStatus": "INVALID"}));
    let r = s.result();
    assert_eq!(
        (r["status"].as_str(), r["proofStatus"].as_str()),
        (Some("DONE"), Some("INVALID"))
    );
}

#[test]
fn connect_negotiation_and_authorization() {
    let s = new_session();
    let base = format!("{}/", s.u);
    assert_error(
        &http("GET", &base, &[("Authorization", APP_AUTH)], None),
        400,
        "MALFORMED_INPUT",
    );
    assert_eq!(s.status(), "INITIALIZED");
    // Error answers are cached like any other (the cache key ignores headers, as the
    // reference's), so an immediate retry with headers replays the error.
    let retry = http(
        "GET",
        &base,
        &[
            ("X-IRMA-MinProtocolVersion", "2.4"),
            ("X-IRMA-MaxProtocolVersion", "2.8"),
            ("Authorization", APP_AUTH),
        ],
        None,
    );
    assert_error(&retry, 400, "MALFORMED_INPUT");
    let s = new_session();
    let base = format!("{}/", s.u);
    let old = [
        ("X-IRMA-MinProtocolVersion", "2.4"),
        ("X-IRMA-MaxProtocolVersion", "2.7"),
        ("Authorization", APP_AUTH),
    ];
    assert_error(&http("GET", &base, &old, None), 400, "PROTOCOL_VERSION");
    assert_eq!(s.status(), "CANCELLED");
    assert_eq!(s.result()["error"]["error"], "PROTOCOL_VERSION");

    let s = new_session();
    let no_auth = [
        ("X-IRMA-MinProtocolVersion", "2.4"),
        ("X-IRMA-MaxProtocolVersion", "\"2.8\""),
    ];
    assert_error(
        &http("GET", &format!("{}/", s.u), &no_auth, None),
        403,
        "UNAUTHORIZED",
    );
    assert_eq!(s.status(), "CANCELLED");
}

#[test]
fn tokens_paths_and_frontend_authorization() {
    let srv = server();
    let unknown = "AAAAAAAAAAAAAAAAAAAA";
    let cases = [
        (format!("/session/{unknown}/status"), "SESSION_UNKNOWN"),
        (format!("/session/{unknown}/result"), "SESSION_UNKNOWN"),
        (format!("/irma/session/{unknown}/status"), "SESSION_UNKNOWN"),
        // The session is looked up before the sub-path is routed, as the reference does.
        (
            format!("/irma/session/{unknown}/nonsense"),
            "SESSION_UNKNOWN",
        ),
        ("/session/short/status".to_owned(), "INVALID_REQUEST"),
        (format!("/session/{unknown}x/status"), "INVALID_REQUEST"),
        (
            "/irma/session/bad-token-!!!!!!!!!!/status".to_owned(),
            "INVALID_REQUEST",
        ),
    ];
    for (path, error) in cases {
        assert_error(&get(&format!("{}{path}", srv.url)), 400, error);
    }
    let s = new_session();
    let a = get(&format!("{}/nonsense", s.u));
    assert_eq!(
        (a.status, a.json()),
        (404, json!({"status": 404, "error": "INVALID_REQUEST"}))
    );
    let a = http("PUT", &format!("{}/status", s.u), &[], None);
    assert_eq!(
        (a.status, a.json()),
        (405, json!({"status": 405, "error": "INVALID_REQUEST"}))
    );
    assert_error(&frontend_status(&s, "wrong"), 403, "UNAUTHORIZED");
    assert_error(
        &http("GET", &format!("{}/frontend/status", s.u), &[], None),
        403,
        "UNAUTHORIZED",
    );
    assert_error(
        &http(
            "POST",
            &format!("{}/frontend/options", s.u),
            &[("Authorization", &s.frontend_auth)],
            Some("{}"),
        ),
        400,
        "MALFORMED_INPUT",
    );
    assert_eq!(s.status(), "INITIALIZED");
}

#[test]
fn bad_session_requests() {
    let url = format!("{}/session", server().url);
    let bad = |body: Value| post_json(&url, &body);
    assert_error(
        &http(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some("{"),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(json!({"@context": "https://irma.app/ld/request/nonsense/v1"})),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(
            json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[["stateless-demo.University.studentCard.shoesize"]]]}),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[[]]]})),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(
            json!({"@context": "https://irma.app/ld/request/signature/v2", "disclose": [[["stateless-demo.University.studentCard.level"]]]}),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(
            json!({"@context": "https://irma.app/ld/request/issuance/v2", "credentials": [{"credential": "stateless-demo.University.studentCard", "attributes": {"university": "x"}}]}),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &bad(json!({"callbackUrl": "http://127.0.0.1:9/cb", "request": disclosure()})),
        501,
        "UNSUPPORTED",
    );
    assert_error(
        &bad(json!({"nextSession": {"url": ""}, "request": disclosure()})),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &http(
            "POST",
            &url,
            &[("Content-Type", "text/plain")],
            Some("eyJ..."),
        ),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &http("POST", &url, &[], Some(&disclosure().to_string())),
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &http(
            "POST",
            &url,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "token"),
            ],
            Some(&disclosure().to_string()),
        ),
        400,
        "INVALID_REQUEST",
    );
    // Bodies over 10 MiB are refused on their announced length, before anything is read.
    let (status, body) = oversized_post(server().port, "/session");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"INVALID_REQUEST\""), "{body}");
    let s = new_session();
    let path =
        s.u.split_once("/irma/")
            .map(|(_, p)| format!("/irma/{p}/proofs"))
            .unwrap();
    let (status, body) = oversized_post(server().port, &path);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"INVALID_REQUEST\""), "{body}");
    assert_eq!(s.status(), "INITIALIZED");
}

#[test]
fn an_extended_request_with_return_url_and_labels_reaches_the_app() {
    let app = app();
    let s = Session::start(
        server(),
        &json!({
            "validity": 60, "timeout": 30,
            "request": {
                "@context": "https://irma.app/ld/request/disclosure/v2",
                "disclose": [[[{"type": "stateless-demo.University.studentCard.studentID", "value": "s1"}]]],
                "labels": {"0": {"en": "Student", "nl": "Student"}},
                "clientReturnUrl": "https://example.com/back"
            }
        }),
    );
    assert_eq!(s.start["frontendRequest"]["pairingHint"], true);
    let c = app.connect(&s.u);
    let r = &c.json()["request"];
    assert_eq!(r["clientReturnUrl"], "https://example.com/back");
    assert_eq!(r["labels"]["0"]["en"], "Student");
    assert_eq!(r["protocolVersion"], "2.8");
    assert_eq!(r["context"], "AQ==");
    assert_eq!(r["devMode"], true);
    assert!(r["nonce"].as_str().is_some_and(|n| n.len() >= 20));
}

#[test]
fn the_session_pointer_and_cors() {
    let s = new_session();
    assert!(
        s.u.starts_with(&format!("{}/irma/session/", server().url)),
        "{}",
        s.u
    );
    assert_eq!(s.start["sessionPtr"]["irmaqr"], "disclosing");
    assert_eq!(s.start["frontendRequest"]["minProtocolVersion"], "1.0");
    assert_eq!(s.start["frontendRequest"]["maxProtocolVersion"], "1.1");
    assert!(s.start["frontendRequest"].get("pairingHint").is_none());
    let agent = irma_tests::agent().timeout(PATIENCE).build();
    let r = agent
        .request("OPTIONS", &format!("{}/status", s.u))
        .set("Origin", "https://example.com")
        .set("Access-Control-Request-Method", "GET")
        .call()
        .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

/// POSTs headers announcing an 11 MiB body (and sends none of it), returning status and body.
fn oversized_post(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: {APP_AUTH}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        11 << 20
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn jwt_outputs_without_a_key_and_health() {
    let s = new_session();
    for path in ["result-jwt", "getproof"] {
        assert_error(
            &get(&format!("{}/session/{}/{path}", s.server, s.token)),
            500,
            "EXCEPTION",
        );
    }
    assert_error(&get(&format!("{}/publickey", s.server)), 501, "UNSUPPORTED");
    let h = get(&format!("{}/health", s.server));
    assert_eq!((h.status, h.body.as_str()), (200, "OK"));
}

#[test]
fn augment_return_url_needs_the_flag() {
    let req = json!({"@context": "https://irma.app/ld/request/disclosure/v2",
                     "disclose": [[["stateless-demo.University.studentCard.studentID"]]],
                     "clientReturnUrl": "https://example.com/back?x=1", "augmentReturnUrl": true});
    assert_error(
        &post_json(&format!("{}/session", server().url), &req),
        400,
        "INVALID_REQUEST",
    );
    let other = Server::start(Schemes::Demo, &["--augment-client-return-url"]);
    let s = Session::start(&other, &req);
    let app = App::new(conf(), 9);
    let c = app.connect(&s.u);
    assert_eq!(
        c.json()["request"]["clientReturnUrl"],
        format!("https://example.com/back?x=1&token={}", s.token)
    );
}
