//! Redis Sentinel: three replicas of the real binary behind nginx keep their sessions in a
//! master that Debian's `redis-server --sentinel` watches. The master is SIGKILLed with sessions
//! waiting at INITIALIZED and CONNECTED and requests arriving; the sentinels promote a replica,
//! every server replica finds it by itself, and every session completes. Requests that arrive
//! during the switch wait for the new master or get a 5xx IRMA error, never a wrong answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::sentinel::Sentinels;
use irma_tests::wallet::App;
use irma_tests::{Answer, Server, Session, post_json};
use serde_json::{Value, json};

/// Requestors starting sessions and polling them through the balancer, until stopped: what
/// each request got, and when.
struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, Answer)>>,
}

impl Load {
    fn start(front: &Server) -> Load {
        let url = front.url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let a = post_json(&format!("{url}/session"), &disclosure());
                let token = (a.status == 200).then(|| a.json()["token"].clone());
                seen.push((Instant::now(), a));
                if let Some(Value::String(t)) = token {
                    let s = irma_tests::get(&format!("{url}/session/{t}/status"));
                    if s.status == 200 {
                        assert_eq!(s.json(), "INITIALIZED", "a new session reads as new");
                    }
                    seen.push((Instant::now(), s));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        Load { stop, thread }
    }

    /// Stops; says how many requests failed after `since` and when the first succeeded.
    fn finish(self, since: Instant) -> (usize, usize, Option<Duration>) {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.thread.join().expect("the load ran");
        let after: Vec<_> = seen.iter().filter(|(t, _)| *t >= since).collect();
        let failed: Vec<_> = after.iter().filter(|(_, a)| a.status != 200).collect();
        for (_, a) in &failed {
            assert!(
                a.status >= 500 && !a.error().is_empty(),
                "a failure is a 5xx IRMA error: {} {}",
                a.status,
                a.body
            );
        }
        let first_success = after
            .iter()
            .find(|(_, a)| a.status == 200)
            .map(|(t, _)| t.duration_since(since));
        (after.len(), failed.len(), first_success)
    }
}

/// The student ID a disclosure session's result holds.
fn disclosed(s: &Session) -> Value {
    s.result()["disclosed"][0][0]["rawvalue"].clone()
}

#[test]
fn sessions_in_flight_survive_a_sentinel_failover() {
    // Two replicas: after the failover the new master still has one to wait for.
    let mut c = Cluster::start(3, Sentinels::start(2), &[]);
    let mut app = App::new(demo_conf(), 51);
    let a = app.run(&Session::start(&c.front, &student_card("ha-1")).u);
    assert_eq!(a.status, 200, "{}", a.body);
    let waiting = Session::start(&c.front, &disclosure());
    let issuing = Session::start(&c.front, &student_card("ha-2"));
    let connected = Session::start(&c.front, &disclosure());
    let conn = app.connect(&connected.u);
    assert_eq!(conn.status, 200, "{}", conn.body);
    assert_eq!(connected.status(), "CONNECTED");

    let load = Load::start(&c.front);
    std::thread::sleep(Duration::from_millis(300));
    let old = c.redis.master_port();
    let killed_at = Instant::now();
    let killed = c.redis.kill_master();
    // The app goes on at once, while the sentinels are still deciding.
    let a = app.respond(&connected.u, &conn.json()["request"]);
    eprintln!(
        "proofs sent right after the kill: {} after {:?}",
        a.status,
        killed_at.elapsed()
    );
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID")),
        "{}",
        a.body
    );
    let new = c.redis.wait_for_failover(old);
    eprintln!(
        "sentinels promoted {new} within {:?} of the kill",
        killed_at.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (requests, failed, first) = load.finish(killed_at);
    eprintln!(
        "load during the failover: {requests} requests, {failed} failed, first success {:?} after the kill",
        first
    );
    assert!(first.is_some(), "requests succeed again");

    // Everything in flight completes, and holds what it should.
    assert_eq!(connected.status(), "DONE");
    assert_eq!(disclosed(&connected), json!("ha-1"));
    let a = app.run(&waiting.u);
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID"))
    );
    assert_eq!(disclosed(&waiting), json!("ha-1"));
    assert_eq!(app.run(&issuing.u).status, 200);
    assert_eq!(issuing.status(), "DONE");
    let fresh = Session::start(&c.front, &disclosure());
    app.run(&fresh.u);
    assert_eq!(disclosed(&fresh), json!("ha-1"));

    // The old master comes back as a replica; a second failover (back) works as well.
    c.redis.rejoin(killed);
    let again = Session::start(&c.front, &disclosure());
    let conn = app.connect(&again.u);
    let old = c.redis.master_port();
    c.redis.kill_master();
    let a = app.respond(&again.u, &conn.json()["request"]);
    assert_eq!(a.status, 200, "{}", a.body);
    c.redis.wait_for_failover(old);
    assert_eq!(disclosed(&again), json!("ha-1"));
}

#[test]
fn with_one_replica_and_the_inconsistency_risk_accepted_sessions_go_on() {
    // As the reference server: no WAIT, so the single replica alone carries on as master.
    let mut c = Cluster::start(
        3,
        Sentinels::start(1),
        &["--redis-accept-inconsistency-risk"],
    );
    let mut app = App::new(demo_conf(), 52);
    assert_eq!(
        app.run(&Session::start(&c.front, &student_card("ha-3")).u)
            .status,
        200
    );
    let waiting = Session::start(&c.front, &disclosure());
    let old = c.redis.master_port();
    c.redis.kill_master();
    let a = app.run(&waiting.u);
    assert_eq!(a.status, 200, "{}", a.body);
    c.redis.wait_for_failover(old);
    assert_eq!(disclosed(&waiting), json!("ha-3"));
    let fresh = Session::start(&c.front, &disclosure());
    assert_eq!(app.run(&fresh.u).status, 200);
}
