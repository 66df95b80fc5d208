//! Kill-during-load with Redis Sentinel, round after round: three server replicas behind nginx
//! on a master with two replicas and three sentinels. Each round leaves sessions waiting at
//! INITIALIZED and CONNECTED, runs requestors starting and polling sessions, SIGKILLs the
//! master, completes every session, checks that every session a requestor was told about still
//! exists, and brings the old master back as a replica. Prints per round and in total: seconds
//! from the kill to the first success, failed requests, sessions lost.
//!
//! Usage: `failover-soak [rounds] [--accept-risk]` (`--accept-risk`: no WAIT, as `irma server`).

use std::time::{Duration, Instant};

use irma_tests::Session;
use irma_tests::cluster::Cluster;
use irma_tests::load::Load;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::sentinel::Sentinels;
use irma_tests::wallet::App;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(20);
    let risky = args.iter().any(|a| a == "--accept-risk");
    let flags: &[&str] = if risky {
        &["--redis-accept-inconsistency-risk"]
    } else {
        &[]
    };
    let mut c = Cluster::start(3, Sentinels::start(2), flags);
    let mut app = App::new(demo_conf(), 77);
    assert_eq!(
        app.run(&Session::start(&c.front, &student_card("soak")).u)
            .status,
        200
    );
    let (mut failed, mut lost, mut started, mut broken) = (0, 0, 0, 0);
    let mut recoveries = Vec::new();
    for round in 1..=rounds {
        let waiting: Vec<Session> = (0..2)
            .map(|_| Session::start(&c.front, &disclosure()))
            .collect();
        let connected: Vec<_> = (0..2)
            .map(|_| {
                let s = Session::start(&c.front, &disclosure());
                let request = app.connect(&s.u).json()["request"].clone();
                (s, request)
            })
            .collect();
        let load = Load::start(&c.front);
        std::thread::sleep(Duration::from_millis(300));
        let old = c.redis.master_port();
        let killed = c.redis.kill_master();
        let killed_at = Instant::now();
        for (s, request) in &connected {
            let a = app.respond(&s.u, request);
            if a.status != 200 || s.status() != "DONE" {
                broken += 1;
                eprintln!("round {round}: proofs answered {} {}", a.status, a.body);
            }
        }
        c.redis.wait_for_failover(old);
        std::thread::sleep(Duration::from_millis(300));
        let report = load.finish(killed_at);
        for s in &waiting {
            if app.run(&s.u).status != 200 || s.status() != "DONE" {
                broken += 1;
            }
        }
        let first = report.first_success.unwrap_or(Duration::MAX);
        println!(
            "round {round:2}: first success {:.2} s after the kill, {} of {} requests failed, {} of {} sessions lost, in-flight sessions broken so far {broken}",
            first.as_secs_f64(),
            report.failed,
            report.requests,
            report.lost,
            report.started
        );
        recoveries.push(first.as_secs_f64());
        failed += report.failed;
        lost += report.lost;
        started += report.started;
        c.redis.rejoin(killed);
    }
    recoveries.sort_by(f64::total_cmp);
    println!(
        "{rounds} failovers ({}): median {:.2} s and worst {:.2} s from kill to first success; {failed} failed requests; {lost} of {started} sessions lost; {broken} of {} in-flight sessions broken",
        if risky {
            "no WAIT, risk accepted"
        } else {
            "WAIT 1"
        },
        recoveries[recoveries.len() / 2],
        recoveries[recoveries.len() - 1],
        rounds * 4
    );
    if lost > 0 || broken > 0 {
        std::process::exit(1);
    }
}
