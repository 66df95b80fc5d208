//! Redis Sentinel: three replicas of the real binary behind nginx keep their sessions in a
//! master that Debian's `redis-server --sentinel` watches. The master is SIGKILLed with sessions
//! waiting at INITIALIZED and CONNECTED and requests arriving; the sentinels promote a replica,
//! every server replica finds it by itself, and every session completes. Requests that arrive
//! during the switch wait for the new master or get a 5xx IRMA error, never a wrong answer.

use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::load::Load;
use irma_tests::metrics::Scrape;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::sentinel::Sentinels;
use irma_tests::wallet::App;
use irma_tests::{Session, eventually};
use serde_json::json;

/// The student ID a disclosure session's result holds.
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
    let killed = c.redis.kill_master();
    let killed_at = Instant::now();
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
    // Every server replica follows status events and guest announcements on the new master.
    eventually(
        || {
            c.redis
                .master()
                .cli(&["PUBSUB", "NUMSUB", "statusevents", "guests"])
                == "statusevents\n3\nguests\n3"
        },
        || {
            format!(
                "subscribers on the new master: {:?}",
                c.redis
                    .master()
                    .cli(&["PUBSUB", "NUMSUB", "statusevents", "guests"])
            )
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish(killed_at);
    eprintln!("load during the failover: {report:?}");
    assert!(report.first_success.is_some(), "requests succeed again");
    assert_eq!(report.lost, 0, "every session started is still there");
    // The replicas counted the operations they retried on the new master.
    let retries: f64 = c
        .replicas
        .iter()
        .map(|r| Scrape::of(r).sum("irma_store_retries_total", &[]))
        .sum();
    assert!(retries > 0.0, "store retries in /metrics");

    // Everything in flight completes, and holds what it should.
    assert_eq!(connected.status(), "DONE");
    assert_eq!(connected.disclosed(), json!("ha-1"));
    let a = app.run(&waiting.u);
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID"))
    );
    assert_eq!(waiting.disclosed(), json!("ha-1"));
    assert_eq!(app.run(&issuing.u).status, 200);
    assert_eq!(issuing.status(), "DONE");
    let fresh = Session::start(&c.front, &disclosure());
    app.run(&fresh.u);
    assert_eq!(fresh.disclosed(), json!("ha-1"));

    // The old master comes back as a replica; a second failover (back) works as well.
    c.redis.rejoin(killed);
    let again = Session::start(&c.front, &disclosure());
    let conn = app.connect(&again.u);
    let old = c.redis.master_port();
    c.redis.kill_master();
    let a = app.respond(&again.u, &conn.json()["request"]);
    assert_eq!(a.status, 200, "{}", a.body);
    c.redis.wait_for_failover(old);
    assert_eq!(again.disclosed(), json!("ha-1"));
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
    assert_eq!(waiting.disclosed(), json!("ha-3"));
    let fresh = Session::start(&c.front, &disclosure());
    assert_eq!(app.run(&fresh.u).status, 200);
}
