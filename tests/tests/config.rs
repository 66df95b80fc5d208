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

/// A configuration file in `dir` (found there without --config) with `port`, and a server
/// started in `dir` with `env` and `flags`; returns the port it listens on.
fn port_chosen(dir: &std::path::Path, env: Option<u16>, flag: Option<u16>) -> u16 {
    let file_port = free_port();
    let yaml = format!(
        "listen_addr: 127.0.0.1\nport: {file_port}\nno_auth: true\nschemes_path: {}\nprivkeys: {}\n",
        root().join("host/demo/irma_configuration").display(),
        root().join("host/demo/privatekeys").display(),
    );
    std::fs::write(dir.join("irmaserver.yaml"), yaml).unwrap();
    let mut cmd = Command::new(server_binary());
    cmd.current_dir(dir).env_remove("IRMASERVER_PORT");
    let mut port = file_port;
    if let Some(p) = env {
        cmd.env("IRMASERVER_PORT", p.to_string());
        port = p;
    }
    if let Some(p) = flag {
        cmd.args(["-p", &p.to_string()]);
        port = p;
    }
    let server = Server::run(cmd, port);
    assert_eq!(
        irma_tests::get(&format!("{}/health", server.url)).body,
        "OK"
    );
    port
}

#[test]
fn the_configuration_file_is_beneath_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    port_chosen(dir.path(), None, None);
    port_chosen(dir.path(), Some(free_port()), None);
    port_chosen(dir.path(), Some(free_port()), Some(free_port()));
}

#[test]
fn settings_this_server_cannot_honour_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("prot: 8088\n", "unknown setting \"prot\""),
        (
            "revocation_settings:\n  irma-demo.MijnOverheid.root:\n    server: true\n",
            "--revocation-settings: revocation is not supported",
        ),
        ("email: admin@example.com\n", "--email"),
        ("schemes_assets_path: /x\n", "--schemes-assets-path"),
    ];
    for (yaml, want) in cases {
        let file = dir.path().join("irmaserver.yml");
        std::fs::write(&file, yaml).unwrap();
        let err = irma_tests::fails_to_start(Schemes::Demo, &["--config", file.to_str().unwrap()]);
        assert!(err.contains(want), "{yaml}: {err}");
    }
    let err = irma_tests::fails_to_start(
        Schemes::Demo,
        &[
            "--production",
            "--no-auth",
            "--url",
            "http://irma.example.com",
        ],
    );
    assert!(err.contains("must be https"), "{err}");
    let err = irma_tests::fails_to_start(Schemes::Demo, &["--client-port", "1", "-p", "1"]);
    assert!(err.contains("--client-port must differ"), "{err}");
    let err = irma_tests::fails_to_start(Schemes::Demo, &["--api-prefix", "api"]);
    assert!(err.contains("--api-prefix must start with /"), "{err}");
}

#[test]
fn routes_under_an_api_prefix() {
    let server = Server::start(Schemes::Demo, &["--api-prefix", "/irma-api"]);
    let a = http(
        "POST",
        &format!("{}/irma-api/session", server.url),
        &[("Content-Type", "application/json")],
        Some(&disclosure()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    // Without --url, apps are sent where the server mounts the app endpoints.
    let u = a.json()["sessionPtr"]["u"].as_str().unwrap().to_owned();
    assert!(
        u.starts_with(&format!("{}/irma-api/irma/session/", server.url)),
        "{u}"
    );
    assert_eq!(
        irma_tests::get(&format!("{u}/status")).json(),
        "INITIALIZED"
    );
    assert_eq!(
        irma_tests::get(&format!(
            "{}/irma/session/{}/status",
            server.url,
            u.rsplit('/').next().unwrap()
        ))
        .status,
        404
    );
    // Nothing is served outside the prefix.
    assert_eq!(
        irma_tests::get(&format!("{}/health", server.url)).status,
        404
    );
}

#[test]
fn static_files_beside_the_app_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from a file").unwrap();
    let server = Server::start(
        Schemes::Demo,
        &[
            "--static-path",
            dir.path().to_str().unwrap(),
            "--static-prefix",
            "/assets/",
        ],
    );
    let a = irma_tests::get(&format!("{}/assets/hello.txt", server.url));
    assert_eq!((a.status, a.body.as_str()), (200, "hello from a file"));
    assert_eq!(
        irma_tests::get(&format!("{}/assets/nothing.txt", server.url)).status,
        404
    );
    // The API is still there.
    assert_eq!(
        irma_tests::get(&format!("{}/health", server.url)).body,
        "OK"
    );
}
