//! Hot swap: new guest versions published to running replicas (Redis registry, or the watched
//! `--guest` file in memory mode) take over without a failed request; broken ones and unsafe
//! rollbacks are refused; a schema-4 guest serves records written by schema 3.
//!
//! Guest versions: the default build (v1, schema 3); v1 with an extra custom section (same
//! logic, another hash); `--features next-schema` (v2, schema 4); `--features
//! broken-self-check`; garbage.
//! `just guest-variants` (part of `just test`) builds the variants into `target/guest-variants/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, signature, student_card};
use irma_tests::wallet::App;
use irma_tests::{
    Schemes, Server, Session, eventually, get, guest, guest_command, guest_variant, session_show,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn variant(name: &str) -> Vec<u8> {
    std::fs::read(guest_variant(name)).unwrap()
}

/// The component with a custom section appended: the same guest under another hash.
fn relabelled(bytes: &[u8], label: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
    }
    let name = b"irma-test-label";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(label.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The active guest hash a server reports in `/metrics`.
fn active_hash(server_url: &str) -> String {
    let m = get(&format!("{server_url}/metrics")).body;
    // Earlier versions stay listed, at 0.
    m.lines()
        .filter(|l| l.ends_with(" 1"))
        .find_map(|l| l.strip_prefix("irma_guest_info{hash=\""))
        .and_then(|l| l.split('"').next())
        .unwrap_or("")
        .to_owned()
}

fn metric(server_url: &str, name: &str) -> String {
    let m = get(&format!("{server_url}/metrics")).body;
    // An `_info` family lists earlier values at 0: the current one is at 1.
    m.lines()
        .find(|l| l.starts_with(name) && !(name.contains("_info") && l.ends_with(" 0")))
        .unwrap_or("")
        .to_owned()
}

/// Waits until every server reports `want`; returns how long that took.
fn until_all_run(servers: &[String], want: &str) -> Duration {
    eventually(
        || servers.iter().all(|s| active_hash(s) == want),
        || {
            let running: Vec<String> = servers.iter().map(|s| active_hash(s)).collect();
            format!("replicas run {running:?}, not {want}")
        },
    )
}

const ADMIN: &str = "admin-token-of-the-test";

/// `n` replicas on one Redis behind nginx, with the admin endpoints on and one compile cache in
/// `cache` (which must live as long as they do). Their first guest is [`guest`], named
/// explicitly so that the hashes the tests expect hold whatever guest is built in.
fn cluster(n: usize, cache: &tempfile::TempDir) -> Cluster {
    let cache = cache.path().join("cache").display().to_string();
    let v1 = guest().display().to_string();
    Cluster::start(
        n,
        Redis::start(),
        &[
            "--admin-token",
            ADMIN,
            "--guest-cache",
            &cache,
            "--guest",
            &v1,
        ],
    )
}

/// `irma-server <flags> guest <args>` with the cluster's flags: (success, stdout + stderr).
fn guest_cli(c: &Cluster, args: &[&str]) -> (bool, String) {
    guest_command(&c.flags, args)
}

/// Sessions and polls run against `front` until stopped; every failure is kept.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    sessions: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    /// (start instant, latency) of every status poll.
    polls: Arc<Mutex<Vec<(Instant, Duration)>>>,
}

impl Load {
    fn start(front: &Server, wallets: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for w in 0..wallets {
            let (stop, sessions, failures) = (stop.clone(), sessions.clone(), failures.clone());
            let front = Server::external(&front.url);
            threads.push(std::thread::spawn(move || {
                let mut app = App::new(demo_conf(), 500 + w as u64);
                let s = Session::start(&front, &student_card("s1"));
                assert_eq!(app.run(&s.u).status, 200);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let request = match i % 3 {
                        0 => student_card("s1"),
                        1 => disclosure(),
                        _ => signature(),
                    };
                    let a = irma_tests::post_json(&format!("{}/session", front.url), &request);
                    if a.status != 200 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("start: {} {}", a.status, a.body));
                        continue;
                    }
                    let s = Session::from_start(&front, a.json());
                    let a = app.run(&s.u);
                    let r = get(&format!("{}/session/{}/result", front.url, s.token));
                    if a.status != 200 || r.json()["proofStatus"] != "VALID" {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("session: {} {} / {}", a.status, a.body, r.body));
                    } else {
                        sessions.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        {
            let (stop, failures, polls) = (stop.clone(), failures.clone(), polls.clone());
            let front = Server::external(&front.url);
            threads.push(std::thread::spawn(move || {
                let s = Session::start(&front, &disclosure());
                let url = format!("{}/session/{}/status", front.url, s.token);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let a = get(&url);
                    polls.lock().unwrap().push((t, t.elapsed()));
                    if a.status != 200 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("poll: {} {}", a.status, a.body));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }));
        }
        Load {
            stop,
            threads,
            sessions,
            failures,
            polls,
        }
    }

    /// Waits until the load completed `n` sessions (however slow the machine is).
    fn until_sessions(&self, n: u64) {
        eventually(
            || self.sessions.load(Ordering::Relaxed) >= n,
            || format!("the load completed {:?}", self.sessions),
        );
    }

    /// Stops once the load completed `n` sessions in all.
    fn stop_after(self, n: u64) -> (u64, Vec<String>, Vec<(Instant, Duration)>) {
        self.until_sessions(n);
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        let polls = self.polls.lock().unwrap().clone();
        (self.sessions.load(Ordering::Relaxed), failures, polls)
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() * 99 / 100).copied().unwrap_or_default()
}

#[test]
fn publish_and_roll_back_under_load_without_a_failed_request() {
    let cache = tempfile::tempdir().unwrap();
    let c = cluster(3, &cache);
    let dir = tempfile::tempdir().unwrap();
    let v1 = std::fs::read(guest()).unwrap();
    let v1b = relabelled(&v1, "b");
    let v1b_file = write(dir.path(), "v1b.wasm", &v1b);
    let urls = c.urls();
    until_all_run(&urls, &hash(&v1));

    let load = Load::start(&c.front, 3);
    load.until_sessions(3);
    let mut swaps = Vec::new(); // (from, to) instants of each swap
    let mut visible = Vec::new();
    // Windows: the publishing command (it compiles and checks the guest on these same two
    // cores), and the swap itself (from the command's return until every replica runs it).
    let mut commands = Vec::new();
    for _ in 0..3 {
        for (args, want) in [
            (vec!["publish", v1b_file.to_str().unwrap()], hash(&v1b)),
            (vec!["rollback"], hash(&v1)),
        ] {
            let t = Instant::now();
            let (ok, out) = guest_cli(&c, &args);
            assert!(ok, "{out}");
            let published = Instant::now();
            commands.push((t, published));
            visible.push(until_all_run(&urls, &want));
            swaps.push((published, Instant::now()));
            // Sessions run on this version before the next swap.
            load.until_sessions(load.sessions.load(Ordering::Relaxed) + 2);
        }
    }
    let (sessions, failures, polls) = load.stop_after(10);
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
    let within = |w: &[(Instant, Instant)], t: &Instant| w.iter().any(|(a, b)| t >= a && t <= b);
    let swap_p99 = p99(polls
        .iter()
        .filter(|(t, _)| within(&swaps, t))
        .map(|p| p.1)
        .collect());
    let command_p99 = p99(polls
        .iter()
        .filter(|(t, _)| within(&commands, t))
        .map(|p| p.1)
        .collect());
    let steady_p99 = p99(polls
        .iter()
        .filter(|(t, _)| !within(&swaps, t) && !within(&commands, t))
        .map(|p| p.1)
        .collect());
    eprintln!(
        "hot swap: {sessions} sessions, 0 failed, {} polls; every replica on the new version {:?} \
         after the command returned; poll p99 steady {steady_p99:?}, during swaps {swap_p99:?}, \
         while the publishing command compiled {command_p99:?}",
        polls.len(),
        visible
    );
    // The status shows every replica on the active version.
    let (ok, out) = guest_cli(&c, &["status"]);
    assert!(ok, "{out}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["active"], hash(&v1));
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3, "{status}");
    assert!(replicas.iter().all(|r| r["hash"] == hash(&v1)), "{status}");
}

#[test]
fn broken_guests_are_refused_by_the_publisher_and_by_every_replica() {
    let cache = tempfile::tempdir().unwrap();
    let c = cluster(3, &cache);
    let dir = tempfile::tempdir().unwrap();
    let v1 = std::fs::read(guest()).unwrap();
    let urls = c.urls();
    until_all_run(&urls, &hash(&v1));
    let broken = variant("broken");
    let garbage = b"not a component at all".to_vec();

    // The publisher checks first.
    let (ok, out) = guest_cli(
        &c,
        &[
            "publish",
            write(dir.path(), "b.wasm", &broken).to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("self-check"), "{out}");
    let (ok, out) = guest_cli(
        &c,
        &[
            "publish",
            write(dir.path(), "g.wasm", &garbage).to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("does not compile"), "{out}");

    // The admin endpoint checks the same way, and wants its token.
    let admin = format!("{}/admin/guest", c.front.url);
    let bearer = format!("Bearer {ADMIN}");
    assert_eq!(get(&admin).status, 403);
    let a = irma_tests::http("GET", &admin, &[("Authorization", &bearer)], None);
    assert_eq!(
        (a.status, a.json()["active"].clone()),
        (200, json!(hash(&v1)))
    );
    let a = irma_tests::http(
        "POST",
        &admin,
        &[("Authorization", &bearer)],
        Some("not a component"),
    );
    assert_eq!(
        (a.status, a.error().as_str()),
        (409, "GUEST_REFUSED"),
        "{}",
        a.body
    );

    // Put into the registry behind the publisher's back: every replica refuses, keeps serving.
    let load = Load::start(&c.front, 2);
    for bad in [&broken, &garbage] {
        let h = hash(bad);
        let f = write(dir.path(), "bad.wasm", bad);
        c.redis
            .cli_stdin(&["-x", "SET", &format!("guest:blob:{h}")], &f);
        c.redis.cli(&["SET", "guest:active", &h]);
        c.redis.cli(&["PUBLISH", "guests", &h]);
        eventually(
            || {
                urls.iter()
                    .all(|u| metric(u, "irma_guest_refused_info").contains(&h))
            },
            || format!("{h} not refused by every replica"),
        );
        for u in &urls {
            assert_eq!(active_hash(u), hash(&v1));
        }
    }
    let (_, out) = guest_cli(&c, &["status"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    for r in status["replicas"].as_array().unwrap() {
        assert_eq!(r["hash"], hash(&v1));
        assert_eq!(r["refused"]["hash"], hash(&garbage), "{r}");
        assert_eq!(r["refusals"], 2);
    }
    // A replica that starts now cannot load the registry's active guest: it serves its local
    // one and says so.
    let f: Vec<&str> = c.flags.iter().map(String::as_str).collect();
    let late = Server::start(Schemes::Demo, &f);
    assert_eq!(active_hash(&late.url), hash(&v1));
    assert!(metric(&late.url, "irma_guest_refused_info").contains(&hash(&garbage)));
    let (_, failures, _) = load.stop_after(1);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_next_schema_guest_serves_older_records_and_rollback_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let c = cluster(2, &cache);
    let dir = tempfile::tempdir().unwrap();
    let v1 = std::fs::read(guest()).unwrap();
    let v2 = variant("next-schema");
    let urls = c.urls();
    until_all_run(&urls, &hash(&v1));
    let mut app = App::new(demo_conf(), 77);
    let s = Session::start(&c.front, &student_card("s1"));
    assert_eq!(app.run(&s.u).status, 200);

    // Written by v1, waiting at CONNECTED.
    let s = Session::start(&c.front, &disclosure());
    let request = app.connect(&s.u).json()["request"].clone();
    let ct = s.u.rsplit('/').next().unwrap().to_owned();
    let shown = session_show(&c.flags, &s.token);
    assert_eq!(shown["clientToken"], ct.as_str());
    assert_eq!(shown["status"], "CONNECTED");
    let record = &shown["record"];
    assert!(record["v"] == 3 && record["t"].is_number(), "{shown}");

    let (ok, out) = guest_cli(
        &c,
        &[
            "publish",
            write(dir.path(), "v2.wasm", &v2).to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    until_all_run(&urls, &hash(&v2));

    // v2 reads the schema-3 record, finishes the session and writes schema 4.
    let a = app.respond(&s.u, &request);
    assert_eq!(a.json(), json!({"proofStatus": "VALID"}), "{}", a.body);
    let shown = session_show(&c.flags, &ct);
    let record = &shown["record"];
    assert!(
        record["v"] == 4 && record["a"].is_number() && record.get("t").is_none(),
        "{shown}"
    );
    assert_eq!(shown["status"], "DONE");
    assert_eq!(s.result()["disclosed"][0][0]["rawvalue"], "s1");
    let s2 = Session::start(&c.front, &disclosure());
    assert_eq!(app.run(&s2.u).json(), json!({"proofStatus": "VALID"}));

    // Back to v1 would strand schema-4 records: refused, and v2 keeps serving.
    let (ok, out) = guest_cli(&c, &["rollback"]);
    assert!(!ok && out.contains("cannot read record schema 4"), "{out}");
    let (_, out) = guest_cli(&c, &["status"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["active"], hash(&v2));
    assert_eq!(status["schemas"]["4"], "live");
    assert!(
        status["schemas"]["3"].is_number(),
        "schema 3 kept until its records expire: {status}"
    );
    for u in &urls {
        assert_eq!(active_hash(u), hash(&v2));
    }
}

#[test]
fn memory_mode_follows_the_guest_file() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = std::fs::read(guest()).unwrap();
    let v2 = variant("next-schema");
    let file = write(dir.path(), "guest.wasm", &v1);
    let cache = dir.path().join("cache");
    // The same server, started again later.
    let boot = || {
        Server::start(
            Schemes::Demo,
            &[
                "--guest",
                file.to_str().unwrap(),
                "--guest-cache",
                cache.to_str().unwrap(),
            ],
        )
    };
    let server = boot();
    assert_eq!(active_hash(&server.url), hash(&v1));
    assert!(
        cache.join(format!("{}.cwasm", hash(&v1))).exists(),
        "compiled once, cached"
    );
    let mut app = App::new(demo_conf(), 78);
    let s = Session::start(&server, &student_card("s1"));
    assert_eq!(app.run(&s.u).status, 200);
    let s = Session::start(&server, &disclosure());
    let request = app.connect(&s.u).json()["request"].clone();

    // Replace the file (written aside, renamed in, as a deployment would).
    let swap_in = |bytes: &[u8]| {
        let tmp = write(dir.path(), "next.wasm", bytes);
        std::fs::rename(tmp, &file).unwrap();
    };
    swap_in(&v2);
    let took = until_all_run(std::slice::from_ref(&server.url), &hash(&v2));
    eprintln!("memory mode: new guest serving {took:?} after the file changed");
    assert_eq!(
        app.respond(&s.u, &request).json(),
        json!({"proofStatus": "VALID"})
    );

    // A broken file and an unsafe downgrade are refused; v2 goes on serving.
    let refusals = || metric(&server.url, "irma_guest_refusals_total");
    swap_in(&variant("broken"));
    let took = eventually(|| refusals().ends_with(" 1"), refusals);
    eprintln!("memory mode: broken guest refused {took:?} after the file changed");
    swap_in(&v1);
    let took = eventually(|| refusals().ends_with(" 2"), refusals);
    eprintln!("memory mode: downgrade refused {took:?} after the file changed");
    assert_eq!(active_hash(&server.url), hash(&v2));
    let s = Session::start(&server, &disclosure());
    assert_eq!(app.run(&s.u).json(), json!({"proofStatus": "VALID"}));

    // A restarted server takes its compilation from the cache instead of recompiling.
    let cached = cache.join(format!("{}.cwasm", hash(&v1)));
    let before = std::fs::metadata(&cached).unwrap().modified().unwrap();
    drop(server);
    swap_in(&v1);
    let server = boot();
    assert_eq!(active_hash(&server.url), hash(&v1));
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        before
    );
}

/// `irma-server guest <args>` needing no Redis (keygen, sign): (success, stdout + stderr).
fn guest_tool(args: &[&str]) -> (bool, String) {
    guest_command(&[], args)
}

/// A signing key made by `guest keygen` in `dir`: (its file, the public key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let (ok, out) = guest_tool(&["keygen", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    (file, out.lines().next().unwrap().to_owned())
}

/// `guest sign`: the signature of the component in `file`.
fn sign(file: &Path, key: &Path) -> String {
    let (ok, out) = guest_tool(&[
        "sign",
        file.to_str().unwrap(),
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    out.lines().next().unwrap().to_owned()
}

/// The hash a server last refused, from `/metrics`.
fn refused_hash(server_url: &str) -> String {
    metric(server_url, "irma_guest_refused_info{hash=\"")
        .trim_start_matches("irma_guest_refused_info{hash=\"")
        .split('"')
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn with_trusted_keys_only_signed_guests_run_however_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, public) = keygen(dir.path(), "trusted.key");
    let (untrusted, _) = keygen(dir.path(), "other.key");
    let cache = dir.path().join("cache").display().to_string();
    let c = Cluster::start(
        2,
        Redis::start(),
        &[
            "--admin-token",
            ADMIN,
            "--guest-cache",
            &cache,
            "--guest-trusted-keys",
            &public,
        ],
    );
    let urls = c.urls();
    let built_in = active_hash(&urls[0]);
    let v1 = std::fs::read(guest()).unwrap();
    // Distinct versions (same logic), one per way in.
    let [by_cli, by_cli_untrusted, by_admin, by_redis, good] =
        ["cli", "cli-untrusted", "admin", "redis", "good"].map(|l| relabelled(&v1, l));

    // `guest publish`: unsigned, or signed by a key the replicas do not trust: refused.
    let f = write(dir.path(), "cli.wasm", &by_cli);
    let (ok, out) = guest_cli(&c, &["publish", f.to_str().unwrap()]);
    assert!(!ok && out.contains("unsigned"), "{out}");
    let f = write(dir.path(), "cli-untrusted.wasm", &by_cli_untrusted);
    let (ok, out) = guest_cli(
        &c,
        &[
            "publish",
            f.to_str().unwrap(),
            "--signing-key",
            untrusted.to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("no trusted key"), "{out}");

    // `/admin/guest` without a signature, and with another guest's: refused.
    let admin_url = format!("{}/admin/guest", urls[0]);
    let auth = format!("Bearer {ADMIN}");
    let post = |body: &[u8], sig: Option<&str>| {
        let mut req = irma_tests::agent()
            .build()
            .post(&admin_url)
            .set("Authorization", &auth);
        if let Some(s) = sig {
            req = req.set("X-Guest-Signature", s);
        }
        match req.send_bytes(body) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (status, body) = post(&by_admin, None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("unsigned"), "{body}");
    let good_file = write(dir.path(), "good.wasm", &good);
    let (status, body) = post(&by_admin, Some(&sign(&good_file, &trusted)));
    assert!(status == 409 && body.contains("no trusted key"), "{body}");

    // Written into Redis behind the publisher's back: every replica refuses it, and says so
    // in `/metrics` and `guest status`.
    let f = write(dir.path(), "redis.wasm", &by_redis);
    let h = hash(&by_redis);
    c.redis
        .cli_stdin(&["-x", "SET", &format!("guest:blob:{h}")], &f);
    c.redis.cli(&["SET", "guest:active", &h]);
    c.redis.cli(&["PUBLISH", "guests", &h]);
    eventually(
        || urls.iter().all(|u| refused_hash(u) == h),
        || {
            format!(
                "refused: {:?}",
                urls.iter().map(|u| refused_hash(u)).collect::<Vec<_>>()
            )
        },
    );
    assert!(urls.iter().all(|u| active_hash(u) == built_in));
    let (ok, out) = guest_cli(&c, &["status"]);
    assert!(ok, "{out}");
    let status: Value = serde_json::from_str(&out).unwrap();
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{status}");
    for r in replicas {
        assert_eq!(r["refused"]["hash"], json!(h), "{r}");
        let why = r["refused"]["error"].as_str().unwrap_or("");
        assert!(why.contains("unsigned"), "{why}");
    }

    // Signed with the trusted key: published, and every replica runs it.
    let (ok, out) = guest_cli(
        &c,
        &[
            "publish",
            good_file.to_str().unwrap(),
            "--signing-key",
            trusted.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    until_all_run(&urls, &hash(&good));
    let mut app = App::new(demo_conf(), 91);
    let s = Session::start(&c.front, &student_card("signed"));
    assert_eq!(app.run(&s.u).status, 200);
}

#[test]
fn with_trusted_keys_the_watched_guest_file_needs_its_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (trusted, public) = keygen(dir.path(), "trusted.key");
    // Not the built-in guest (which is trusted as the binary is): the same logic relabelled.
    let v1 = relabelled(&std::fs::read(guest()).unwrap(), "start");
    let file = write(dir.path(), "guest.wasm", &v1);
    let cache = dir.path().join("cache");
    // Unsigned at start-up: refused; the built-in guest serves.
    let server = Server::start(
        Schemes::Demo,
        &[
            "--guest",
            file.to_str().unwrap(),
            "--guest-cache",
            cache.to_str().unwrap(),
            "--guest-trusted-keys",
            &public,
        ],
    );
    assert_eq!(refused_hash(&server.url), hash(&v1));
    // A new version without its signature: refused, the running one goes on.
    let v2 = relabelled(&v1, "file");
    let next = write(dir.path(), "next.wasm", &v2);
    std::fs::rename(&next, &file).unwrap();
    eventually(
        || refused_hash(&server.url) == hash(&v2),
        || format!("refused {}", refused_hash(&server.url)),
    );
    assert_ne!(active_hash(&server.url), hash(&v2));
    // Its signature arrives beside it: it runs.
    let sig = sign(&file, &trusted);
    std::fs::write(dir.path().join("guest.wasm.sig"), sig).unwrap();
    until_all_run(std::slice::from_ref(&server.url), &hash(&v2));
    let mut app = App::new(demo_conf(), 92);
    let s = Session::start(&server, &student_card("signed-file"));
    assert_eq!(app.run(&s.u).status, 200);
}
