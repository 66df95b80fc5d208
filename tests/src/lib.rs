//! Test harness: starts the real `irma-server` binary on a free loopback port, and plays
//! requestor and app (the Idemix test wallet) against it over HTTP.

pub mod balancer;
pub mod cluster;
pub mod keys;
pub mod load;
pub mod metrics;
pub mod process;
pub mod receiver;
pub mod redis;
pub mod redis_cluster;
pub mod requests;
pub mod sentinel;
pub mod wallet;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/testdata` beside the project.
pub fn testdata() -> PathBuf {
    root().join("../shared/testdata")
}

/// Whether the test data of `../shared` is beside the project. A clone without it skips the
/// tests that need it (`just test` says so); with `IRMA_TESTDATA_REQUIRED` set (CI) its
/// absence fails instead.
pub fn have_testdata() -> bool {
    let present = testdata().join("irma_configuration").is_dir();
    assert!(
        present || std::env::var_os("IRMA_TESTDATA_REQUIRED").is_none(),
        "IRMA_TESTDATA_REQUIRED is set, but {} is missing",
        testdata().display()
    );
    present
}

/// `target/<profile>`, where this test binary's build put the server binary (tests live in
/// `target/<profile>/deps`, the tools of `src/bin` beside the server).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("target/<profile>");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_owned()
    } else {
        dir.to_owned()
    }
}

/// The server binary of the same build as this test (`cargo test` builds it).
pub fn server_binary() -> PathBuf {
    profile_dir().join("irma-server")
}

/// `target/`, where this test's build put everything.
fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target/").to_owned()
}

/// The guest component the server's build script built (and, unless `IRMA_GUEST_WASM` named
/// another, built into the server).
pub fn guest() -> PathBuf {
    target_dir().join("guest/wasm32-wasip2/release/irma_guest.wasm")
}

/// A test build of the guest (`chaos`, `next-schema`, `broken`), made by `just guest-variants`.
pub fn guest_variant(name: &str) -> PathBuf {
    let p = target_dir().join(format!("guest-variants/irma_guest_{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: `just guest-variants` builds it",
        p.display()
    );
    p
}

/// How long a test waits for an outcome before it gives up. Generous on purpose: builds, guest
/// compilations and other tests share two busy cores. Tests wait for outcomes and print how
/// long they took; they never assert how fast something is (that is `just bench`'s job).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `done()` holds, checking every 20 ms for at most [`PATIENCE`], and returns how
/// long it took; panics with `what()` (the state it is still in) otherwise.
pub fn eventually(mut done: impl FnMut() -> bool, what: impl Fn() -> String) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PATIENCE,
            "still not done after {PATIENCE:?}: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server, killed on drop (unless it was started elsewhere).
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
}

/// Which schemes a server serves.
pub enum Schemes {
    /// The project's own demo scheme.
    Demo,
    /// irma-demo, test and test2 from ../shared/testdata.
    Testdata,
}

impl Server {
    pub fn start(schemes: Schemes, extra: &[&str]) -> Server {
        Server::start_at(free_port(), schemes, extra)
    }

    /// A server of the demo scheme storing its sessions in `redis`, with `extra` flags.
    pub fn on_redis(redis: &redis::Redis, extra: &[&str]) -> Server {
        let mut flags = redis.server_flags();
        flags.extend(extra.iter().map(|f| f.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start(Schemes::Demo, &flags)
    }

    /// A server on `port` (a replica restarted where the balancer expects it).
    pub fn start_at(port: u16, schemes: Schemes, extra: &[&str]) -> Server {
        let (s, k) = match schemes {
            Schemes::Demo => (
                root().join("host/demo/irma_configuration"),
                root().join("host/demo/privatekeys"),
            ),
            Schemes::Testdata => (
                testdata().join("irma_configuration"),
                testdata().join("privatekeys"),
            ),
        };
        let mut cmd = Command::new(server_binary());
        // Flags may repeat (the last wins, as with `irma server`), so `extra` can override these.
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "--no-auth"])
            .arg("-s")
            .arg(&s)
            .arg("-k")
            .arg(&k);
        cmd.args(extra);
        Server::run(cmd, port)
    }

    /// Runs `cmd`, an `irma-server` that listens on 127.0.0.1:`port`, and waits until it does.
    pub fn run(mut cmd: Command, port: u16) -> Server {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = process::spawn(cmd).expect("irma-server starts");
        // Wait for "listening"; a server that exits or hangs first explains itself.
        let stderr = child.stderr.take().unwrap();
        wait_for_line(&mut child, stderr, "listening", Some("irma-server"));
        Server {
            child: Some(child),
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A server someone else runs, at `url`.
    pub fn external(url: &str) -> Server {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(80);
        Server {
            child: None,
            port,
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, as an orchestrator stopping it sends.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Waits (up to [`PATIENCE`]) until the process exits; how it exited.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a process of ours");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, no shutdown of any kind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Follows `out`, a child's output, on a thread until a line contains `ready`. A child that
/// says nothing of the kind within [`PATIENCE`] is killed, and what it did say is shown. With a
/// `name`, its error lines (all lines with `IRMA_TEST_LOG` set) are echoed, prefixed by it.
pub fn wait_for_line(
    child: &mut Child,
    out: impl std::io::Read + Send + 'static,
    ready: &str,
    name: Option<&'static str>,
) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(name) = name
                && (std::env::var_os("IRMA_TEST_LOG").is_some() || line.contains("ERROR"))
            {
                eprintln!("[{name}] {line}");
            }
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(ready) => return,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no {ready:?} from the child:\n{}", seen.join("\n"));
            }
        }
    }
}

/// Runs the server with `extra` flags (and `--no-auth` unless they say otherwise) expecting it
/// to refuse to start; returns what it said.
pub fn fails_to_start(schemes: Schemes, extra: &[&str]) -> String {
    let s = match schemes {
        Schemes::Demo => root().join("host/demo/irma_configuration"),
        Schemes::Testdata => testdata().join("irma_configuration"),
    };
    let mut cmd = Command::new(server_binary());
    cmd.args(["-l", "127.0.0.1", "-p", &free_port().to_string(), "-s"])
        .arg(s);
    if !extra
        .iter()
        .any(|a| a.starts_with("--no-auth") || *a == "--production")
    {
        cmd.arg("--no-auth");
    }
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = process::spawn(cmd).expect("irma-server runs");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "irma-server exited successfully");
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("irma-server started with {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `irma-server <flags> -q guest <args>` (the guest registry's commands, `keygen`, `sign`):
/// whether it succeeded, and its standard output then standard error.
pub fn guest_command(flags: &[String], args: &[&str]) -> (bool, String) {
    let (ok, out, err) = server_command(flags, &[&["guest"], args].concat());
    (ok, format!("{out}{err}"))
}

/// `irma-server <flags> session show <token>`: the stored session as the tool prints it.
pub fn session_show(flags: &[String], token: &str) -> Value {
    let (ok, out, err) = server_command(flags, &["session", "show", token]);
    assert!(ok, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

/// Runs `irma-server <flags> -q <args>`; whether it succeeded, its stdout and its stderr.
fn server_command(flags: &[String], args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(server_binary());
    cmd.args(flags)
        .arg("-q")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = process::spawn(cmd).unwrap().wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Which replica answered, when the test balancer says so (`X-Upstream`).
    pub upstream: Option<String>,
}

impl Answer {
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json_or_text(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| Value::String(self.body.clone()))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The IRMA error name of an error answer.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    match r {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => Answer {
            status: resp.status(),
            upstream: resp.header("x-upstream").map(str::to_owned),
            body: resp.into_string().unwrap_or_default(),
        },
        Err(e) => panic!("transport error: {e}"),
    }
}

/// CAs the test HTTP client trusts besides nothing: those of servers a test made ([`trust`]).
static TRUSTED: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Makes the test HTTP client trust `ca_pem` (a CA made for a TLS test) from now on.
pub fn trust(ca_pem: &[u8]) {
    TRUSTED.lock().unwrap().push(ca_pem.to_vec());
}

/// An HTTP client that speaks TLS to the servers of [`trust`]ed CAs.
pub fn agent() -> ureq::AgentBuilder {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in TRUSTED.lock().unwrap().iter() {
        for cert in CertificateDer::pem_slice_iter(pem).map_while(Result::ok) {
            let _ = roots.add(cert);
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(std::sync::Arc::new(tls))
}

/// Sends a request with optional headers and body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let agent = agent().timeout(PATIENCE).build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    })
}

/// `POST /session` as a requestor: `auth` in `Authorization`, the body of `content_type`
/// (`application/json`, or `text/plain` for a JWT).
pub fn post_session(server: &Server, content_type: &str, auth: Option<&str>, body: &str) -> Answer {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    http(
        "POST",
        &format!("{}/session", server.url),
        &headers,
        Some(body),
    )
}

/// The claims of an RS256 JWT the server signed, checked with its public key (PEM).
pub fn verify_rs256(jwt: &str, public_pem: &[u8]) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = DecodingKey::from_rsa_pem(public_pem).expect("an RSA public key");
    let mut v = Validation::new(Algorithm::RS256);
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .unwrap_or_else(|e| panic!("not a JWT of that key ({e}): {jwt}"))
        .claims
}

pub fn get(url: &str) -> Answer {
    http("GET", url, &[], None)
}

pub fn post_json(url: &str, body: &Value) -> Answer {
    http(
        "POST",
        url,
        &[("Content-Type", "application/json")],
        Some(&body.to_string()),
    )
}

/// A session started by the requestor.
#[derive(Debug, Clone)]
pub struct Session {
    pub server: String,
    pub token: String,
    /// The app URL of the session (`sessionPtr.u`).
    pub u: String,
    pub frontend_auth: String,
    pub start: Value,
}

impl Session {
    pub fn start(server: &Server, request: &Value) -> Session {
        let a = post_json(&format!("{}/session", server.url), request);
        assert_eq!(a.status, 200, "POST /session: {}", a.body);
        Session::from_start(server, a.json())
    }

    /// The session of a `POST /session` answer.
    pub fn from_start(server: &Server, v: Value) -> Session {
        Session {
            server: server.url.clone(),
            token: v["token"].as_str().unwrap().to_owned(),
            u: v["sessionPtr"]["u"].as_str().unwrap().to_owned(),
            frontend_auth: v["frontendRequest"]["authorization"]
                .as_str()
                .unwrap()
                .to_owned(),
            start: v,
        }
    }

    pub fn status(&self) -> String {
        let a = get(&format!("{}/session/{}/status", self.server, self.token));
        assert_eq!(a.status, 200, "{}", a.body);
        a.json().as_str().unwrap().to_owned()
    }

    pub fn result(&self) -> Value {
        let a = get(&format!("{}/session/{}/result", self.server, self.token));
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    }

    /// The raw value of the first attribute the result says was disclosed.
    pub fn disclosed(&self) -> Value {
        self.result()["disclosed"][0][0]["rawvalue"].clone()
    }

    /// The requestor's `DELETE /session/{rt}`.
    pub fn cancel(&self) -> Answer {
        http(
            "DELETE",
            &format!("{}/session/{}", self.server, self.token),
            &[],
            None,
        )
    }

    /// The frontend's `POST .../frontend/options`: `pairingMethod` `pin` or `none`.
    pub fn frontend_options(&self, method: &str) -> Answer {
        let body = serde_json::json!({
            "@context": "https://irma.app/ld/request/frontendoptions/v1",
            "pairingMethod": method,
        });
        http(
            "POST",
            &format!("{}/frontend/options", self.u),
            &[
                ("Authorization", &self.frontend_auth),
                ("Content-Type", "application/json"),
            ],
            Some(&body.to_string()),
        )
    }

    /// The frontend's `POST .../frontend/pairingcompleted`.
    pub fn pairing_completed(&self) -> Answer {
        http(
            "POST",
            &format!("{}/frontend/pairingcompleted", self.u),
            &[("Authorization", &self.frontend_auth)],
            None,
        )
    }

    /// Waits until the status is `want` (at most [`PATIENCE`]); returns the last one read.
    pub fn wait_for(&self, want: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.status();
            if s == want || start.elapsed() > PATIENCE {
                eprintln!("{want} after {:?}", start.elapsed());
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A status stream (server-sent events), read on a thread: each event's `data` as it arrives.
pub struct Events {
    rx: mpsc::Receiver<String>,
    /// Set when the stream ended as HTTP ends a response (not cut off by a closed connection).
    clean_end: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Events {
    /// Opens `url` with `headers`; returns once the server answered 200, panics otherwise.
    pub fn open(url: &str, headers: &[(&str, &str)]) -> Events {
        let (tx, rx) = mpsc::channel();
        let (opened_tx, opened) = mpsc::channel();
        let clean_end = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clean = clean_end.clone();
        let agent = agent().timeout_read(PATIENCE * 2).build();
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        std::thread::spawn(move || {
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) => {
                    let _ = opened_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = opened_tx.send(Ok(resp.status()));
            for line in BufReader::new(resp.into_reader()).lines() {
                // An error: the connection closed before the response ended.
                let Ok(line) = line else { return };
                if let Some(d) = line.strip_prefix("data:")
                    && tx.send(d.trim().to_owned()).is_err()
                {
                    return;
                }
            }
            clean.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        match opened.recv_timeout(PATIENCE) {
            Ok(Ok(200)) => Events { rx, clean_end },
            other => panic!("{url}: no stream: {other:?}"),
        }
    }

    /// The next event, if one arrives within `within` (and the stream has not ended).
    pub fn next(&self, within: Duration) -> Option<String> {
        self.rx.recv_timeout(within).ok()
    }

    /// Whether the stream ends within `within` (events that arrive meanwhile are skipped).
    pub fn ended(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Whether the stream ended within `within` as an HTTP response ends (its last chunk), not
    /// cut off by a closed connection.
    pub fn ended_cleanly(&self, within: Duration) -> bool {
        self.ended(within) && self.clean_end.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next `n` events, each waited for at most `within`; fewer if the stream ends.
    pub fn take(&self, n: usize, within: Duration) -> Vec<String> {
        (0..n).map_while(|_| self.next(within)).collect()
    }
}

/// Reads `data:` lines of an SSE stream on a thread, until `n` arrived or the stream ends.
pub fn subscribe(url: String, auth: Option<String>, n: usize) -> mpsc::Receiver<Vec<String>> {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let events = Events::open(&url, &headers);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(events.take(n, PATIENCE));
    });
    rx
}
