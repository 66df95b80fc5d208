//! Requestors at work while something breaks: a thread starts sessions and polls them through
//! a server (a balancer) until stopped. It keeps what each request got and when, and at the end
//! checks that every session whose start was answered still exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::requests::disclosure;
use crate::{Answer, Server, get, post_json};

pub struct Load {
    url: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

/// Every answer with the times its request was sent and answered, and the requestor tokens of
/// the sessions started.
type Seen = (Vec<(Instant, Instant, Answer)>, Vec<String>);

/// What the requestors saw after some moment.
#[derive(Debug)]
pub struct Report {
    pub requests: usize,
    /// Answers that were not 200 (each a 5xx IRMA error, or `finish` panics).
    pub failed: usize,
    /// From the moment to the first 200 (to a request sent after it; requests that meet a
    /// dead master wait for the new one, so this is when service was back).
    pub first_success: Option<Duration>,
    /// Sessions started (and answered 200), over the whole run.
    pub started: usize,
    /// Of those, how many the server no longer knows.
    pub lost: usize,
}

impl Load {
    pub fn start(front: &Server) -> Load {
        let url = front.url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, u) = (stop.clone(), url.clone());
        let thread = std::thread::spawn(move || {
            let (mut seen, mut started) = (Vec::new(), Vec::new());
            while !stopped.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let a = post_json(&format!("{u}/session"), &disclosure());
                let token = (a.status == 200).then(|| a.json()["token"].clone());
                seen.push((sent, Instant::now(), a));
                if let Some(Value::String(t)) = token {
                    let sent = Instant::now();
                    let s = get(&format!("{u}/session/{t}/status"));
                    if s.status == 200 {
                        assert_eq!(s.json(), "INITIALIZED", "a new session reads as new");
                    }
                    seen.push((sent, Instant::now(), s));
                    started.push(t);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (seen, started)
        });
        Load { url, stop, thread }
    }

    /// Stops, and reports on the requests sent from `since` on.
    pub fn finish(self, since: Instant) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let (seen, started) = self.thread.join().expect("the load ran");
        let after: Vec<_> = seen.iter().filter(|(sent, _, _)| *sent >= since).collect();
        let failed: Vec<_> = after.iter().filter(|(_, _, a)| a.status != 200).collect();
        for (_, _, a) in &failed {
            assert!(
                a.status >= 500 && !a.error().is_empty(),
                "a failure is a 5xx IRMA error: {} {}",
                a.status,
                a.body
            );
        }
        let lost = started
            .iter()
            .filter(|t| {
                let s = get(&format!("{}/session/{t}/status", self.url));
                s.status != 200
            })
            .count();
        Report {
            requests: after.len(),
            failed: failed.len(),
            first_success: after
                .iter()
                .filter(|(_, _, a)| a.status == 200)
                .map(|(_, answered, _)| answered.duration_since(since))
                .min(),
            started: started.len(),
            lost,
        }
    }
}
