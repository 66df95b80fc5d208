//! Chained sessions (irma-server.md §1.12): a disclosure whose result, sent to the requestor's
//! next-session endpoint (a real HTTP server here), brings an issuance, which the app starts at
//! once and completes, disclosing again what it disclosed before. The next session is allowed
//! with the first requestor's permissions only (GHSA-pv8v-c99h-c5q4).

use irma_tests::cluster::Cluster;
use irma_tests::keys::RsaKeys;
use irma_tests::receiver::{Receiver, Reply};
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Server, Session, get, http, post_session, verify_rs256};
use serde_json::{Value, json};

const ISSUER_TOKEN: &str = "token-of-the-university";
const VIEWER_TOKEN: &str = "token-of-a-viewer";

fn requestors() -> String {
    json!({
        "university": {"auth_method": "token", "key": ISSUER_TOKEN,
                       "issue_perms": ["stateless-demo.University.studentCard"]},
        "viewer": {"auth_method": "token", "key": VIEWER_TOKEN}
    })
    .to_string()
}

fn start(front: &Server, token: &str, request: &Value) -> Session {
    let a = post_session(front, "application/json", Some(token), &request.to_string());
    assert_eq!(a.status, 200, "{}", a.body);
    Session::from_start(front, a.json())
}

#[test]
fn a_disclosure_chains_into_an_issuance_across_replicas() {
    let key = RsaKeys::new();
    // The next session: a new student card, for whoever showed their student ID.
    let next = Receiver::start(vec![Reply::json(&student_card("s77-renewed"))]);
    let requestors = requestors();
    let c = Cluster::start(
        3,
        Redis::start(),
        &[
            "--no-auth=false",
            "--requestors",
            &requestors,
            "--issue-perms=",
            "--jwt-privkey-file",
            key.private_pem.to_str().unwrap(),
        ],
    );
    let mut app = App::new(demo_conf(), 71);
    let card = start(&c.front, ISSUER_TOKEN, &student_card("s77"));
    assert_eq!(app.run(&card.u).status, 200);

    let first = start(
        &c.front,
        ISSUER_TOKEN,
        &json!({"nextSession": {"url": format!("{}/next", next.url)}, "request": disclosure()}),
    );
    assert_eq!(first.start["frontendRequest"]["pairingHint"], true);
    let answers = app.run_chain(&first.u);
    assert_eq!(answers.len(), 2, "{answers:?}");
    let (a1, a2) = (&answers[0].json(), &answers[1].json());
    assert_eq!(a1["proofStatus"], "VALID");
    assert_eq!(a1["nextSession"]["irmaqr"], "issuing");
    assert_eq!(
        (&a2["proofStatus"], a2["sigs"].as_array().map(Vec::len)),
        (&json!("VALID"), Some(1))
    );
    assert_eq!(
        app.wallet.credentials.len(),
        2,
        "the renewed card was issued"
    );

    // What the endpoint got: the first result, signed, still CONNECTED, at the exact URL.
    let got = next.received();
    assert_eq!((got.len(), got[0].path.as_str()), (1, "/next"));
    assert_eq!(got[0].header("content-type"), Some("text/plain"));
    let sent = verify_rs256(&got[0].body, &key.public());
    assert_eq!(
        (&sent["status"], &sent["proofStatus"]),
        (&json!("CONNECTED"), &json!("VALID"))
    );
    assert_eq!(sent["disclosed"][0][0]["rawvalue"], "s77");

    // The first session names the next; the next one's result has both disclosures.
    let r1 = first.result();
    assert_eq!(r1["status"], "DONE");
    let next_rt = r1["nextSession"].as_str().expect("nextSession").to_owned();
    let r2 = get(&format!("{}/session/{next_rt}/result", c.front.url)).json();
    assert_eq!(
        (&r2["status"], &r2["type"]),
        (&json!("DONE"), &json!("issuing"))
    );
    assert_eq!(r2["disclosed"][0][0]["rawvalue"], "s77", "{r2}");
    // The frontend keeps its authorization and learns of the next session.
    let f = http(
        "GET",
        &format!("{}/frontend/status", first.u),
        &[("Authorization", &first.frontend_auth)],
        None,
    );
    assert_eq!(f.json()["nextSession"], a1["nextSession"]);
}

#[test]
fn the_next_session_has_the_first_requestors_permissions_only() {
    // The viewer may not issue; its next-session endpoint asks for an issuance anyway.
    let next = Receiver::start(vec![Reply::json(&student_card("sneaky"))]);
    let requestors = requestors();
    let server = Server::start(
        irma_tests::Schemes::Demo,
        &[
            "--no-auth=false",
            "--requestors",
            &requestors,
            "--issue-perms=",
            "--allow-unsigned-callbacks",
        ],
    );
    let mut app = App::new(demo_conf(), 72);
    assert_eq!(
        app.run(&start(&server, ISSUER_TOKEN, &student_card("s72")).u)
            .status,
        200
    );
    let first = start(
        &server,
        VIEWER_TOKEN,
        &json!({"nextSession": {"url": format!("{}/next", next.url)}, "request": disclosure()}),
    );
    let a = app.run(&first.u);
    assert_eq!(
        (a.status, a.error().as_str()),
        (500, "NEXT_SESSION"),
        "{}",
        a.body
    );
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("UNAUTHORIZED"),
        "{}",
        a.body
    );
    // Unsigned: the endpoint got the result as JSON. The session did not end.
    assert_eq!(
        next.received()[0].header("content-type"),
        Some("application/json")
    );
    assert_eq!(first.status(), "CONNECTED");
    assert_eq!(app.wallet.credentials.len(), 1);

    // An endpoint that answers 204 ends the chain: the session is simply DONE.
    let none = Receiver::start(vec![Reply::status(204)]);
    let s = start(
        &server,
        VIEWER_TOKEN,
        &json!({"nextSession": {"url": none.url}, "request": disclosure()}),
    );
    let answers = app.run_chain(&s.u);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].json(), json!({"proofStatus": "VALID"}));
    assert_eq!(s.status(), "DONE");
}
