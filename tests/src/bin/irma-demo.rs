//! `just demo`: against a running `just run` server, plays requestor and app (the Idemix test
//! wallet) through an issuance, a disclosure and an attribute-based signature, and prints what
//! each step sends and gets, so a newcomer sees the whole protocol work.
//!
//! Usage: `irma-demo [server-url]` (default http://127.0.0.1:8088).

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::wallet::App;
use irma_tests::{Session, post_json, root};
use serde_json::{Value, json};

fn show(title: &str, v: &Value) {
    println!("\n== {title}\n{}", serde_json::to_string_pretty(v).unwrap());
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8088".into());
    let conf = Configuration::load(
        &root().join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .expect("demo scheme");
    let mut app = App::new(conf, rand_seed());
    let server = irma_tests::Server::external(&url);
    let requests = [
        (
            "issuance",
            json!({
                "@context": "https://irma.app/ld/request/issuance/v2",
                "credentials": [{"credential": "stateless-demo.University.studentCard",
                                 "attributes": {"university": "Radboud", "studentCardNumber": "0812345673", "studentID": "s1234567", "level": "PhD"}}]
            }),
        ),
        (
            "disclosure",
            json!({
                "@context": "https://irma.app/ld/request/disclosure/v2",
                "disclose": [[["stateless-demo.University.studentCard.studentID", "stateless-demo.University.studentCard.level"]]]
            }),
        ),
        (
            "attribute-based signature",
            json!({
                "@context": "https://irma.app/ld/request/signature/v2",
                "message": "I, the student, owe the demo a coffee.",
                "disclose": [[["stateless-demo.University.studentCard.university"]]]
            }),
        ),
    ];
    for (name, request) in requests {
        println!("\n################ {name} ################");
        show("requestor: POST /session", &request);
        let probe = post_json(&format!("{url}/session"), &request);
        if probe.status != 200 {
            eprintln!(
                "the server answered {}: {}\nIs `just run` running at {url}?",
                probe.status, probe.body
            );
            std::process::exit(1);
        }
        let s = Session::from_start(&server, probe.json());
        show(
            "server: session pointer (what a QR code carries)",
            &s.start["sessionPtr"],
        );
        let answer = app.run(&s.u);
        show(
            "app: posted its proofs, the server answered",
            &answer.json_or_text(),
        );
        show("requestor: GET /session/{token}/result", &s.result());
    }
    println!(
        "\nThe wallet now holds {} credential(s).",
        app.wallet.credentials.len()
    );
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
