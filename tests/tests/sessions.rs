//! Whole sessions through the real binary: the test wallet issues, discloses and signs against
//! irma-server with the project's demo scheme and with irma-demo from ../shared.

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::requests::{demo_conf, student_card};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, testdata};
use serde_json::json;

fn testdata_conf() -> Configuration {
    Configuration::load(
        &testdata().join("irma_configuration"),
        LoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn issue_then_disclose_then_sign_with_the_demo_scheme() {
    let server = Server::start(Schemes::Demo, &[]);
    let mut app = App::new(demo_conf(), 1);

    let s = Session::start(&server, &student_card("s1234567"));
    assert_eq!(s.start["sessionPtr"]["irmaqr"], "issuing");
    assert_eq!(s.status(), "INITIALIZED");
    let a = app.run(&s.u);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["proofStatus"], "VALID");
    assert_eq!(s.status(), "DONE");
    assert_eq!(
        s.result(),
        json!({"token": s.token, "status": "DONE", "type": "issuing", "proofStatus": "VALID"})
    );
    assert_eq!(app.wallet.credentials.len(), 1);

    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/disclosure/v2",
            "disclose": [[["stateless-demo.University.studentCard.studentID"]]]
        }),
    );
    let a = app.run(&s.u);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json(), json!({"proofStatus": "VALID"}));
    let r = s.result();
    assert_eq!(r["status"], "DONE");
    assert_eq!(r["type"], "disclosing");
    assert_eq!(r["proofStatus"], "VALID");
    assert_eq!(
        r["disclosed"][0][0]["id"],
        "stateless-demo.University.studentCard.studentID"
    );
    assert_eq!(r["disclosed"][0][0]["rawvalue"], "s1234567");
    assert_eq!(r["disclosed"][0][0]["status"], "PRESENT");

    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/signature/v2",
            "message": "I owe you EUR 10",
            "disclose": [[["stateless-demo.University.studentCard.level"]]]
        }),
    );
    let a = app.run(&s.u);
    assert_eq!(a.status, 200, "{}", a.body);
    let r = s.result();
    assert_eq!(r["proofStatus"], "VALID");
    assert_eq!(r["type"], "signing");
    assert_eq!(r["signature"]["message"], "I owe you EUR 10");
    assert_eq!(r["disclosed"][0][0]["rawvalue"], "PhD");
}

#[test]
fn irma_demo_issuance_with_disclosure_and_a_2048_bit_random_blind_credential() {
    if !irma_tests::have_testdata() {
        return;
    }
    let server = Server::start(Schemes::Testdata, &[]);
    let mut app = App::new(testdata_conf(), 2);
    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/issuance/v2",
            "credentials": [{"credential": "irma-demo.RU.studentCard", "attributes": {"university": "Radboud", "studentCardNumber": "1", "studentID": "s7654321", "level": "42"}}]
        }),
    );
    assert_eq!(app.run(&s.u).status, 200);
    // Issuance that asks a disclosure of what was just issued.
    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/issuance/v2",
            "disclose": [[[{"type": "irma-demo.RU.studentCard.studentID", "value": "s7654321"}]]],
            "credentials": [{"credential": "irma-demo.stemmen.stempas", "attributes": {"election": "Demo election"}}]
        }),
    );
    assert_eq!(s.start["frontendRequest"]["pairingHint"], true);
    let a = app.run(&s.u);
    assert_eq!(a.status, 200, "{}", a.body);
    let r = s.result();
    assert_eq!(r["disclosed"][0][0]["rawvalue"], "s7654321");
    assert_eq!(app.wallet.credentials.len(), 2);
    assert_eq!(app.wallet.credentials[1].pk.params.ln, 2048);
    // An attribute-based signature with the irma-demo card.
    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/signature/v2",
            "message": "irma-demo signs",
            "disclose": [[["irma-demo.RU.studentCard.studentID"]]]
        }),
    );
    assert_eq!(app.run(&s.u).status, 200);
    let r = s.result();
    assert_eq!(
        (
            r["proofStatus"].as_str(),
            r["signature"]["message"].as_str()
        ),
        (Some("VALID"), Some("irma-demo signs"))
    );
    // And the random-blind credential discloses.
    let s = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/disclosure/v2",
            "disclose": [[["irma-demo.stemmen.stempas.votingnumber"]]]
        }),
    );
    assert_eq!(app.run(&s.u).status, 200);
    let r = s.result();
    assert_eq!(r["proofStatus"], "VALID");
    assert!(r["disclosed"][0][0]["rawvalue"].as_str().unwrap().len() > 20);
}

#[test]
fn a_declined_session_ends_cancelled_and_an_idle_one_times_out() {
    let server = Server::start(Schemes::Demo, &[]);
    let app = App::new(demo_conf(), 3);
    let s = Session::start(&server, &student_card("x"));
    assert_eq!(app.connect(&s.u).status, 200);
    assert_eq!(s.status(), "CONNECTED");
    assert_eq!(app.decline(&s.u).status, 200);
    assert_eq!(s.status(), "CANCELLED");
    assert_eq!(
        s.result(),
        json!({"token": s.token, "status": "CANCELLED", "type": "issuing"})
    );

    let s = Session::start(
        &server,
        &json!({"timeout": 1, "request": student_card("y")}),
    );
    assert_eq!(s.wait_for("TIMEOUT"), "TIMEOUT");
    let c = app.connect(&s.u);
    assert_eq!(
        (c.status, c.error()),
        (403, "UNEXPECTED_REQUEST".to_owned())
    );
}
