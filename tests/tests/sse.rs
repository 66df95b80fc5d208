//! Server-sent events: with `--sse`, requestor, app and frontend channels see every status
//! change; without it, `SSE_DISABLED`.

use std::time::Duration;

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, get, root, subscribe};
use serde_json::json;

#[test]
fn every_channel_sees_connected_and_done() {
    // INITIALIZED, where every subscriber starts, is not sent; every change after it is.
    let server = Server::start(Schemes::Demo, &["--sse"]);
    let conf = Configuration::load(
        &root().join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .unwrap();
    let mut app = App::new(conf, 5);
    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/issuance/v2",
            "credentials": [{"credential": "stateless-demo.University.studentCard",
                             "attributes": {"university": "RU", "studentCardNumber": "1", "studentID": "s1", "level": "BSc"}}]
        }),
    );
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
    let wait = Duration::from_secs(15);
    assert_eq!(
        requestor.recv_timeout(wait).unwrap(),
        vec!["\"CONNECTED\"", "\"DONE\""]
    );
    assert_eq!(
        app_channel.recv_timeout(wait).unwrap(),
        vec!["\"CONNECTED\"", "\"DONE\""]
    );
    assert_eq!(
        frontend.recv_timeout(wait).unwrap(),
        vec![r#"{"status":"CONNECTED"}"#, r#"{"status":"DONE"}"#]
    );
    // A finished session has nothing to stream.
    let a = get(&format!("{}/session/{}/statusevents", server.url, s.token));
    assert_eq!((a.status, a.error().as_str()), (501, "UNSUPPORTED"));
    let a = irma_tests::http(
        "GET",
        &format!("{}/frontend/statusevents", s.u),
        &[("Authorization", "wrong")],
        None,
    );
    assert_eq!((a.status, a.error().as_str()), (403, "UNAUTHORIZED"));
}

#[test]
fn without_the_flag_sse_is_disabled() {
    let server = Server::start(Schemes::Demo, &[]);
    let s = Session::start(
        &server,
        &json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[["stateless-demo.University.studentCard.studentID"]]]}),
    );
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
