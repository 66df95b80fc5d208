//! Flags and environment as `irma server` has them: requestor token authentication,
//! `IRMASERVER_*` variables, `--url` normalization, refusal of bad combinations.

use std::process::Command;

use irma_tests::{Schemes, Server, free_port, guest, http, root, server_binary};
use serde_json::json;

fn disclosure() -> String {
    json!({"@context": "https://irma.app/ld/request/disclosure/v2", "disclose": [[["stateless-demo.University.studentCard.studentID"]]]}).to_string()
}

#[test]
fn token_requestors() {
    let server = Server::start(
        Schemes::Demo,
        &[
            "--no-auth=false",
            "--requestors",
            r#"{"shop": {"auth_method": "token", "key": "s3cr3t-t0ken"}}"#,
        ],
    );
    let url = format!("{}/session", server.url);
    let json_ct = ("Content-Type", "application/json");
    let a = http("POST", &url, &[json_ct], Some(&disclosure()));
    assert_eq!(
        (a.status, a.error().as_str()),
        (400, "INVALID_REQUEST"),
        "no token"
    );
    let a = http(
        "POST",
        &url,
        &[json_ct, ("Authorization", "wrong")],
        Some(&disclosure()),
    );
    assert_eq!(
        (a.status, a.error().as_str()),
        (403, "UNAUTHORIZED"),
        "wrong token"
    );
    let a = http(
        "POST",
        &url,
        &[json_ct, ("Authorization", "s3cr3t-t0ken")],
        Some(&disclosure()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.json()["sessionPtr"]["u"].is_string());
}

#[test]
fn environment_variables_and_url_normalization() {
    let port = free_port();
    let mut cmd = Command::new(server_binary());
    cmd.env("IRMASERVER_LISTEN_ADDR", "127.0.0.1")
        .env("IRMASERVER_PORT", port.to_string())
        .env("IRMASERVER_URL", "http://127.0.0.1:port")
        .env(
            "IRMASERVER_SCHEMES_PATH",
            root().join("host/demo/irma_configuration"),
        )
        .env("IRMASERVER_PRIVKEYS", root().join("host/demo/privatekeys"))
        .env("IRMASERVER_NO_AUTH", "true")
        .env("IRMASERVER_GUEST", guest());
    let server = Server::run(cmd, port);
    let a = http(
        "POST",
        &format!("{}/session", server.url),
        &[("Content-Type", "application/json")],
        Some(&disclosure()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let u = a.json()["sessionPtr"]["u"].as_str().unwrap().to_owned();
    assert!(
        u.starts_with(&format!("http://127.0.0.1:{port}/irma/session/")),
        "{u}"
    );
}

#[test]
fn bad_combinations_are_refused_at_start() {
    let run = |args: &[&str]| {
        let err = irma_tests::fails_to_start(Schemes::Demo, args);
        (false, err)
    };
    let (ok, err) = run(&[
        "--no-auth",
        "--requestors",
        r#"{"a": {"auth_method": "token", "key": "k"}}"#,
    ]);
    assert!(!ok && err.contains("--no-auth"), "{err}");
    let (ok, err) = run(&["--production"]);
    assert!(!ok && err.contains("no requestors"), "{err}");
    let (ok, err) = run(&["--no-auth", "--store-type", "postgres"]);
    assert!(!ok && err.contains("storeType not known"), "{err}");
    let (ok, err) = run(&["--no-auth", "--guest", "/nonexistent.wasm"]);
    assert!(!ok && err.contains("nonexistent"), "{err}");
    // A repeated flag overrides the earlier one, as pflag does for `irma server`.
    let (ok, err) = run(&["--no-auth", "--port", "0"]);
    assert!(!ok && err.contains("--port"), "{err}");
}
