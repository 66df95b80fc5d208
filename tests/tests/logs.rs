//! Logs: with `--log-json -vv` (the most verbose), a full run of issuance, disclosure and a
//! signature writes only JSON lines; every request's lines carry its id, which the response
//! names in `X-Request-Id`; and no line holds an attribute value, a message, a nonce, a
//! session token or the admin token.

use std::process::{Command, Stdio};

use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Server, Session, eventually, free_port, get, http, process, root, server_binary};
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret-for-the-log-scan";

#[test]
fn json_logs_carry_request_ids_and_no_secrets_at_the_highest_verbosity() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    let mut cmd = Command::new(server_binary());
    cmd.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--no-auth",
        "-s",
    ])
    .arg(root().join("host/demo/irma_configuration"))
    .arg("-k")
    .arg(root().join("host/demo/privatekeys"))
    .args(["--log-json", "-vv", "--admin-token", ADMIN])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut child = process::spawn(cmd).unwrap();
    let server = Server::external(&format!("http://127.0.0.1:{port}"));
    eventually(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        || "the server does not listen".into(),
    );

    // Secrets the run creates.
    let mut secrets = vec![ADMIN.to_owned()];
    let mut app = App::new(demo_conf(), 17);
    let issue = Session::start(&server, &student_card("log-scan-7731"));
    secrets.extend(["log-scan-7731".into(), issue.token.clone(), ct(&issue)]);
    assert_eq!(app.run(&issue.u).status, 200);
    let mut sign = disclosure();
    sign["@context"] = json!("https://irma.app/ld/request/signature/v2");
    sign["message"] = json!("log scan: I owe you EUR 4410");
    secrets.push("I owe you EUR 4410".into());
    for request in [disclosure(), sign] {
        let s = Session::start(&server, &request);
        secrets.extend([s.token.clone(), ct(&s)]);
        let c = app.connect(&s.u);
        let r = c.json()["request"].clone();
        secrets.push(r["nonce"].to_string().trim_matches('"').to_owned());
        assert_eq!(app.respond(&s.u, &r).status, 200);
        assert_eq!(
            s.result()["disclosed"][0][0]["rawvalue"],
            json!("log-scan-7731")
        );
    }
    // A caller's request id is kept; the admin endpoint is used once.
    let a = http(
        "GET",
        &format!("{}/session/{}/status", server.url, issue.token),
        &[("X-Request-Id", "trace-me-42")],
        None,
    );
    assert_eq!(a.status, 200);
    let a = http(
        "GET",
        &format!("{}/admin/guest", server.url),
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        None,
    );
    assert!(a.status >= 400, "memory mode has no registry: {}", a.body);
    assert_eq!(get(&format!("{}/health", server.url)).status, 200);
    // Every answer names its request's id: the caller's, or a fresh one.
    let named = |id: Option<&str>| {
        let mut req = irma_tests::agent()
            .build()
            .get(&format!("{}/session/{}/status", server.url, issue.token));
        if let Some(id) = id {
            req = req.set("X-Request-Id", id);
        }
        req.call()
            .unwrap()
            .header("x-request-id")
            .map(str::to_owned)
    };
    assert_eq!(named(Some("trace-me-43")).as_deref(), Some("trace-me-43"));
    let fresh = named(None).expect("an id");
    assert_eq!(fresh.len(), 16, "{fresh}");
    assert_ne!(
        named(Some("not sane at all")).as_deref(),
        Some("not sane at all")
    );
    let _ = child.kill();
    let _ = child.wait();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 20, "{} lines", lines.len());
    let mut ids = Vec::new();
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(id) = v["span"]["id"].as_str() {
            ids.push(id.to_owned());
        }
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "a log line holds {s:?}: {line}");
        }
    }
    assert!(
        ids.iter().any(|i| i == "trace-me-42"),
        "the caller's id is in the log"
    );
    eprintln!(
        "{} log lines, {} with a request id, none with a secret",
        lines.len(),
        ids.len()
    );
}

/// The client token of a session (the last part of its `u`).
fn ct(s: &Session) -> String {
    s.u.rsplit('/').next().unwrap().to_owned()
}
