//! A guest that traps, loops or allocates without end costs the one request: a 500, the
//! session as it was, and the host goes on serving. Uses the guest built with `--features chaos`.

use std::time::Instant;

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::{APP_AUTH, App};
use irma_tests::{Schemes, Server, Session, guest_variant, http, root};
use serde_json::json;

#[test]
fn trapping_looping_and_hoarding_guests_are_contained() {
    let chaos = guest_variant("chaos");
    let server = Server::start(Schemes::Demo, &["--guest", chaos.to_str().unwrap()]);
    let conf = Configuration::load(
        &root().join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .unwrap();
    let mut app = App::new(conf, 11);
    let issue = json!({
        "@context": "https://irma.app/ld/request/issuance/v2",
        "credentials": [{"credential": "stateless-demo.University.studentCard",
                         "attributes": {"university": "RU", "studentCardNumber": "1", "studentID": "s1", "level": "BSc"}}]
    });
    let s = Session::start(&server, &issue);
    assert_eq!(app.connect(&s.u).status, 200);
    for misbehaviour in ["trap", "loop", "alloc"] {
        let started = Instant::now();
        let a = http(
            "POST",
            &format!("{}/proofs", s.u),
            &[("Authorization", APP_AUTH)],
            Some(misbehaviour),
        );
        assert_eq!(
            (a.status, a.error().as_str()),
            (500, "INTERNAL_ERROR"),
            "{misbehaviour}: {}",
            a.body
        );
        eprintln!("{misbehaviour}: contained in {:?}", started.elapsed());
        assert_eq!(
            s.status(),
            "CONNECTED",
            "after {misbehaviour} the session is as it was"
        );
    }
    // The same server still completes sessions, this one included.
    let r = http(
        "GET",
        &format!("{}/request", s.u),
        &[("Authorization", APP_AUTH)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(app.respond(&s.u, &r.json()).status, 200);
    assert_eq!(s.status(), "DONE");
}
