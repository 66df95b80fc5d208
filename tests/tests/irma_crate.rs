//! The `irma` crate (a third-party Rust requestor client) starts, polls, reads the result of
//! and cancels sessions on our server, with the test wallet as the app.

use irma::{AttributeRequest, DisclosureRequestBuilder, IrmaClient, SessionStatus, SessionType};
use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::App;
use irma_tests::{Schemes, Server, Session, root};
use serde_json::json;

#[tokio::test(flavor = "current_thread")]
async fn start_poll_result_and_cancel() {
    let server = Server::start(Schemes::Demo, &[]);
    let client = IrmaClient::new(&format!("{}/", server.url)).unwrap();
    let mut app = App::new(
        Configuration::load(
            &root().join("host/demo/irma_configuration"),
            LoadOptions::default(),
        )
        .unwrap(),
        31,
    );
    let issued = Session::start(
        &server,
        &json!({
            "@context": "https://irma.app/ld/request/issuance/v2",
            "credentials": [{"credential": "stateless-demo.University.studentCard",
                             "attributes": {"university": "RU", "studentCardNumber": "9", "studentID": "s9", "level": "PhD"}}]
        }),
    );
    let u = issued.u.clone();
    let mut app = tokio::task::spawn_blocking(move || {
        assert_eq!(app.run(&u).status, 200);
        app
    })
    .await
    .unwrap();

    let request = DisclosureRequestBuilder::new()
        .add_discon(vec![vec![AttributeRequest::Simple(
            "stateless-demo.University.studentCard.studentID".into(),
        )]])
        .build();
    let session = client
        .request(&request)
        .await
        .expect("the irma crate starts a session");
    assert!(matches!(
        session.session_ptr.irmaqr,
        SessionType::Disclosing
    ));
    assert!(matches!(
        client.status(&session.token).await.unwrap(),
        SessionStatus::Initialized
    ));
    let u = session.session_ptr.u.clone();
    tokio::task::spawn_blocking(move || assert_eq!(app.run(&u).status, 200))
        .await
        .unwrap();
    assert!(matches!(
        client.status(&session.token).await.unwrap(),
        SessionStatus::Done
    ));
    let result = client.result(&session.token).await.expect("result parses");
    assert_eq!(result.disclosed[0][0].raw_value.as_deref(), Some("s9"));
    assert_eq!(
        result.disclosed[0][0].identifier,
        "stateless-demo.University.studentCard.studentID"
    );

    let other = client.request(&request).await.unwrap();
    client
        .cancel(&other.token)
        .await
        .expect("the irma crate cancels");
    assert!(matches!(
        client.status(&other.token).await.unwrap(),
        SessionStatus::Cancelled
    ));
    assert!(
        client.result(&other.token).await.is_err(),
        "a cancelled session has no result"
    );
}
