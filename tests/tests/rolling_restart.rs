//! A rolling restart under load: three replicas of the real binary behind nginx, each in turn
//! sent SIGTERM (it drains for `--shutdown-grace`, stops accepting, finishes what is in flight
//! and exits 0) and started again on its port, while requestors start and poll sessions and an
//! app completes disclosures, all through the balancer. No request fails, no session is lost,
//! every disclosure ends DONE with the right attribute.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use irma_tests::cluster::Cluster;
use irma_tests::load::Load;
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, student_card};
use irma_tests::wallet::App;
use irma_tests::{Server, Session};
use serde_json::json;

/// The student ID a disclosure session's result holds.
/// An app completing disclosures through `front` until `stop`: how many, and every one that
/// did not end answered 200, DONE, with the student ID.
fn app_at_work(
    front: &Server,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let front = Server::external(&front.url);
    std::thread::spawn(move || {
        let mut app = App::new(demo_conf(), 61);
        let issued = app.run(&Session::start(&front, &student_card("rolling")).u);
        assert_eq!(issued.status, 200, "{}", issued.body);
        let (mut done, mut wrong) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let s = Session::start(&front, &disclosure());
            let a = app.run(&s.u);
            let outcome = (a.status, s.status(), s.disclosed());
            if outcome != (200, "DONE".to_owned(), json!("rolling")) {
                wrong.push(format!("{outcome:?} {}", a.body));
            }
            done += 1;
        }
        (done, wrong)
    })
}

#[test]
fn a_rolling_restart_under_load_fails_no_request_and_loses_no_session() {
    let mut c = Cluster::start(3, Redis::start(), &["--shutdown-grace", "2"]);
    let began = Instant::now();
    let load = Load::start(&c.front);
    let stop = Arc::new(AtomicBool::new(false));
    let app = app_at_work(&c.front, stop.clone());
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let t = Instant::now();
        c.replicas[i].terminate();
        let exit = c.replicas[i].wait_exit();
        assert!(exit.success(), "replica {i} exited {exit:?}");
        c.replicas[i] = c.replica(i);
        eprintln!(
            "replica {i}: drained, exited 0 and started again in {:?}",
            t.elapsed()
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let (disclosures, wrong) = app.join().expect("the app ran");
    let report = load.finish(began);
    eprintln!("requestors: {report:?}; app: {disclosures} disclosures");
    assert!(wrong.is_empty(), "disclosures that went wrong: {wrong:?}");
    assert!(disclosures > 0);
    assert_eq!(report.failed, 0, "no request failed");
    assert!(report.started > 0);
    assert_eq!(report.lost, 0, "no session lost");
}
