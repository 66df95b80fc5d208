//! One id per request, in every log line the request causes (a `request` span) and in the
//! `X-Request-Id` response header, so an operator can find a client's request in the logs. A
//! sane `X-Request-Id` from the caller (a balancer's) is kept; otherwise one is made. The span
//! names the route template (`/session/{rt}/status`), never the path, which holds tokens.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// Up to 64 characters of `[A-Za-z0-9._-]`: safe to log and to send back.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// 16 hex digits: a random prefix drawn once per process, then a counter. Unique across
/// replicas in practice, and no system call per request (a poll is a few microseconds).
fn fresh() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        getrandom::getrandom(&mut b).expect("the operating system provides randomness");
        u32::from_ne_bytes(b)
    });
    format!("{prefix:08x}{:08x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub async fn tag(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(fresh, str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| tracing::debug!(status, micros = took.as_micros() as u64, "answered"));
    crate::metrics::request(route, &method, status, took);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(sane("abc-123_X.y"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane("a b"));
        assert!(!sane("a\nb"));
        assert_eq!(fresh().len(), 16);
        assert_ne!(fresh(), fresh());
    }
}
