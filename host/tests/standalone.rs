//! The binary needs nothing from its source tree: copied alone into an empty folder (and with
//! an empty home, so no cached compilation helps), it starts with its built-in guest and runs
//! a session. Schemes and keys are configuration, passed by flag as to `irma server`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A folder of our own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("irma-standalone-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server process, killed on drop (also when an assertion fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: `(status, body)`.
fn http(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// The value of `"key":"value"` in a JSON text (enough for the few fields read here).
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + key.len()
        + 4;
    &json[start..start + json[start..].find('"').unwrap()]
}

#[test]
fn the_binary_alone_serves_a_session_with_its_built_in_guest() {
    let dir = TempDir::new();
    let binary = dir.0.join("irma-server");
    std::fs::copy(env!("CARGO_BIN_EXE_irma-server"), &binary).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(&binary);
    // SAFETY: prctl is async-signal-safe. The server dies with this test process, however it
    // ends (this thread outlives the server: it kills it before returning).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .current_dir(&dir.0)
        .env_clear()
        .env("HOME", &dir.0)
        .args(["-l", "127.0.0.1", "-p", &port.to_string(), "--no-auth"])
        .arg("-s")
        .arg(demo.join("irma_configuration"))
        .arg("-k")
        .arg(demo.join("privatekeys"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    while !said.iter().any(|l: &String| l.contains("listening")) {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => said.push(line),
            Err(_) => panic!("the server did not start:\n{}", said.join("\n")),
        }
    }
    assert!(
        said.iter().any(|l| l.contains("guest loaded")),
        "{}",
        said.join("\n")
    );

    let request = r#"{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}"#;
    let (status, body) = http(
        port,
        "POST",
        "/session",
        &["Content-Type: application/json"],
        request,
    );
    assert_eq!(status, 200, "{body}");
    let token = field(&body, "token").to_owned();
    let u = field(&body, "u");
    let path = &u[u.find("/irma/").unwrap()..];
    // The app's first request runs the guest's transition.
    let (status, body) = http(
        port,
        "GET",
        &format!("{path}/"),
        &[
            "X-IRMA-MinProtocolVersion: 2.4",
            "X-IRMA-MaxProtocolVersion: 2.8",
            "Authorization: AppAuthorization0001",
        ],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("studentID"), "{body}");
    let (status, body) = http(port, "GET", &format!("/session/{token}/status"), &[], "");
    assert_eq!((status, body.as_str()), (200, "\"CONNECTED\""));
    drop(server);
}
