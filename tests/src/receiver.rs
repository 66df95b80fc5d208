//! A real HTTP server for one test, standing in for a requestor's backend (its callback URL or
//! next-session endpoint): on a free loopback port, it records every request and answers each
//! with the next of a scripted list of replies (the last one again once the list is used up).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::eventually;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer, and how long to keep the sender waiting first.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            content_type: "text/plain".into(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(body: &serde_json::Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json".into(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// Accepts the request and answers only after `delay` (the sender waits, or gives up).
    pub fn after(delay: Duration, status: u16) -> Reply {
        Reply {
            delay,
            ..Reply::status(status)
        }
    }
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(replies: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(replies));
        let seen = received.clone();
        // Lives as long as the test process; a request after the test is answered all the same.
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let (seen, replies) = (seen.clone(), replies.clone());
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let Some(req) = read_request(&mut conn) else {
                        return;
                    };
                    let reply = {
                        let mut r = replies.lock().unwrap();
                        if r.len() > 1 {
                            r.remove(0)
                        } else {
                            r.first().cloned().unwrap_or(Reply::status(200))
                        }
                    };
                    seen.lock().unwrap().push(req);
                    std::thread::sleep(reply.delay);
                    let head = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        reply.content_type,
                        reply.body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(reply.body.as_bytes());
                });
            }
        });
        Receiver { url, received }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived; returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(
            || self.received().len() >= n,
            || format!("{} of {n} requests arrived", self.received().len()),
        );
        self.received()
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
