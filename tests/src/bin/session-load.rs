//! Load generator for whole sessions: threads of test wallets run disclosure or issuance
//! sessions (start, connect, proofs/commitments, result) against a server for a while, then it
//! prints sessions per second and, given the server's pids, the server CPU per session (from
//! `/proc/<pid>/stat`, so the wallets' own cryptography is not counted).
//!
//! Usage: `session-load <url> <disclosure|signature|issuance> <seconds> <threads> [pid...]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use irma_idemix::{Configuration, LoadOptions};
use irma_tests::requests::{disclosure, signature};
use irma_tests::wallet::App;
use irma_tests::{Server, Session, root};
use serde_json::{Value, json};

fn issuance() -> Value {
    json!({
        "@context": "https://irma.app/ld/request/issuance/v2",
        "credentials": [{"credential": "stateless-demo.University.studentCard",
                         "attributes": {"university": "Radboud", "studentCardNumber": "2300", "studentID": "s1", "level": "PhD"}}]
    })
}

/// User plus system CPU seconds the processes used so far.
fn cpu_secs(pids: &[u32]) -> f64 {
    // clock ticks per second; 100 on Linux.
    const HZ: f64 = 100.0;
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (ticks(11) + ticks(12)) / HZ
        })
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!(
            "usage: session-load <url> <disclosure|signature|issuance> <seconds> <threads> [pid...]"
        );
        std::process::exit(2);
    }
    let url = args[1].clone();
    let kind = args[2].clone();
    let secs: u64 = args[3].parse().expect("seconds");
    let threads: usize = args[4].parse().expect("threads");
    let pids: Vec<u32> = args[5..].iter().map(|p| p.parse().expect("pid")).collect();
    let conf = Configuration::load(
        &root().join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .expect("demo scheme");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // Every wallet warms up (an issuance), then the clock starts for all at once.
    let ready = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let until = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (url, kind, conf) = (url.clone(), kind.clone(), conf.clone());
            let (done, failed, ready, go, until) = (
                done.clone(),
                failed.clone(),
                ready.clone(),
                go.clone(),
                until.clone(),
            );
            std::thread::spawn(move || {
                let server = Server::external(&url);
                let mut app = App::new(conf, 1000 + t as u64);
                // Every wallet holds the credential the disclosures ask for.
                let s = Session::start(&server, &issuance());
                assert_eq!(app.run(&s.u).status, 200, "warm-up issuance");
                ready.wait();
                go.wait();
                let end = until.lock().unwrap().expect("set before the start");
                while Instant::now() < end {
                    let request = match kind.as_str() {
                        "issuance" => issuance(),
                        "signature" => signature(),
                        _ => disclosure(),
                    };
                    let a = irma_tests::post_json(&format!("{url}/session"), &request);
                    if a.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let s = Session::from_start(&server, a.json());
                    let answer = app.run(&s.u);
                    let result =
                        irma_tests::get(&format!("{url}/session/{}/result", s.token)).json();
                    if answer.status == 200 && result["proofStatus"] == "VALID" {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    ready.wait();
    let cpu0 = cpu_secs(&pids);
    let start = Instant::now();
    *until.lock().unwrap() = Some(start + Duration::from_secs(secs));
    go.wait();
    for w in workers {
        w.join().expect("worker");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_secs(&pids) - cpu0;
    let n = done.load(Ordering::Relaxed);
    let f = failed.load(Ordering::Relaxed);
    print!(
        "{kind}: {n} sessions in {elapsed:.1} s = {:.0}/s, {f} failed",
        n as f64 / elapsed
    );
    if !pids.is_empty() && n > 0 {
        print!(", server CPU {:.2} ms/session", cpu * 1000.0 / n as f64);
    }
    println!();
}
