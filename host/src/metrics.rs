//! Prometheus metrics: every family's name, help and buckets are here, and the rest of the
//! host records through the small functions below (the `metrics` facade), so a reader finds
//! what `/metrics` shows in one place. Label values come from fixed lists (route templates,
//! methods, events, statuses, store operations) or from the operator (guest hashes): never
//! from a client, so no request can add series, and never a token or an attribute.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, in seconds: from a status poll (tens of µs) to a slow proof or a store
/// failover (seconds).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub const SESSIONS_STARTED: &str = "irma_sessions_started_total";
pub const SESSIONS_ENDED: &str = "irma_sessions_ended_total";
pub const HTTP_REQUESTS: &str = "irma_http_requests_total";
pub const HTTP_DURATION: &str = "irma_http_request_duration_seconds";
pub const GUEST_CALL_DURATION: &str = "irma_guest_call_duration_seconds";
pub const GUEST_INSTANCES_IN_USE: &str = "irma_guest_instances_in_use";
pub const GUEST_INSTANCE_WAITS: &str = "irma_guest_instance_waits_total";
pub const STORE_DURATION: &str = "irma_store_operation_duration_seconds";
pub const STORE_CONFLICTS: &str = "irma_store_cas_conflicts_total";
pub const STORE_RETRIES: &str = "irma_store_retries_total";
pub const SSE_OPEN: &str = "irma_sse_streams_open";
pub const CALLBACKS_PENDING: &str = "irma_callbacks_pending";
pub const CALLBACKS_DELIVERED: &str = "irma_callbacks_delivered_total";
pub const CALLBACKS_FAILED: &str = "irma_callbacks_failed_total";
pub const BUILD_INFO: &str = "irma_build_info";
pub const GUEST_INFO: &str = "irma_guest_info";
pub const GUEST_ACTIVATIONS: &str = "irma_guest_activations_total";
pub const GUEST_REFUSALS: &str = "irma_guest_refusals_total";
pub const GUEST_REFUSED_INFO: &str = "irma_guest_refused_info";

/// Installs the process's recorder (once; later calls do nothing) and describes every family.
pub fn install() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        // The first guest counts as an activation, as `guest status` has it; refusals start
        // at 0 rather than appearing with the first.
        counter!(GUEST_ACTIVATIONS).absolute(1);
        counter!(GUEST_REFUSALS).absolute(0);
        // Families without labels show 0 from the start, not only after their first event.
        for c in [
            STORE_CONFLICTS,
            STORE_RETRIES,
            GUEST_INSTANCE_WAITS,
            CALLBACKS_DELIVERED,
        ] {
            counter!(c).absolute(0);
        }
        for g in [SSE_OPEN, GUEST_INSTANCES_IN_USE, CALLBACKS_PENDING] {
            gauge!(g).set(0.0);
        }
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    });
}

fn describe() {
    describe_counter!(SESSIONS_STARTED, "Sessions started, by type.");
    describe_counter!(
        SESSIONS_ENDED,
        "Sessions ended by this replica, by type and final status."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered by a route (not 404s for unknown paths), by route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer (to the headers, for event streams), by route, method and status."
    );
    describe_histogram!(
        GUEST_CALL_DURATION,
        Unit::Seconds,
        "Time of one guest call (instantiation included), by event."
    );
    describe_gauge!(GUEST_INSTANCES_IN_USE, "Guest instances running now.");
    describe_counter!(
        GUEST_INSTANCE_WAITS,
        "Guest calls that waited for a free instance (--guest-concurrency)."
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Time of one session store operation (retries included), by operation."
    );
    describe_counter!(
        STORE_CONFLICTS,
        "Session writes that lost a compare-and-swap and were recomputed."
    );
    describe_counter!(
        STORE_RETRIES,
        "Store operations retried after a failover error (Sentinel, cluster)."
    );
    describe_gauge!(SSE_OPEN, "Server-sent event streams open now.");
    describe_gauge!(
        CALLBACKS_PENDING,
        "Callbacks in the outbox not yet delivered (all replicas), as of the last scrape."
    );
    describe_counter!(CALLBACKS_DELIVERED, "Callbacks delivered by this replica.");
    describe_counter!(
        CALLBACKS_FAILED,
        "Callback attempts that failed: retried later, or given up."
    );
    describe_gauge!(BUILD_INFO, "The server's version.");
    describe_gauge!(
        GUEST_INFO,
        "The active guest version (SHA-256 of the component): 1, earlier ones 0."
    );
    describe_counter!(GUEST_ACTIVATIONS, "Guest versions activated since start.");
    describe_counter!(GUEST_REFUSALS, "Guest versions refused since start.");
    describe_gauge!(GUEST_REFUSED_INFO, "The last refused guest version.");
}

/// The text format (0.0.4) of everything recorded so far.
pub fn render() -> String {
    match HANDLE.get() {
        // Rendering folds recorded histogram samples into their buckets itself.
        Some(h) => h.render(),
        None => String::new(),
    }
}

/// Keeps histogram memory bounded between scrapes.
pub fn spawn_upkeep() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Some(h) = HANDLE.get() {
                h.run_upkeep();
            }
        }
    });
}

/// A request answered by one of the routes (`route` is its template). Any other method than
/// the usual ones counts as `other`: a client picks the method, and each label value is a new
/// series kept for the life of the process.
pub fn request(route: String, method: &axum::http::Method, status: u16, took: Duration) {
    use axum::http::Method;
    let method = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let labels = [
        ("route", metrics::SharedString::from(route)),
        ("method", metrics::SharedString::const_str(method)),
        ("status", metrics::SharedString::from(status.to_string())),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(took.as_secs_f64());
}

pub fn session_started(kind: &'static str) {
    counter!(SESSIONS_STARTED, "type" => kind).increment(1);
}

pub fn session_ended(kind: &'static str, status: &'static str) {
    counter!(SESSIONS_ENDED, "type" => kind, "status" => status).increment(1);
}

pub fn guest_call(event: &'static str, took: Duration) {
    metrics::histogram!(GUEST_CALL_DURATION, "event" => event).record(took.as_secs_f64());
}

pub fn guest_instances(in_use: usize) {
    gauge!(GUEST_INSTANCES_IN_USE).set(in_use as f64);
}

pub fn guest_instance_wait() {
    counter!(GUEST_INSTANCE_WAITS).increment(1);
}

pub fn store_operation(op: &'static str, took: Duration) {
    metrics::histogram!(STORE_DURATION, "op" => op).record(took.as_secs_f64());
}

pub fn store_conflict() {
    counter!(STORE_CONFLICTS).increment(1);
}

pub fn store_retry() {
    counter!(STORE_RETRIES).increment(1);
}

/// Counts an open event stream until the guard is dropped (the stream ends or its client
/// goes away).
pub struct SseOpen(());

impl SseOpen {
    #[allow(clippy::new_without_default)] // counting one in is not a default
    pub fn new() -> SseOpen {
        gauge!(SSE_OPEN).increment(1.0);
        SseOpen(())
    }
}

impl Drop for SseOpen {
    fn drop(&mut self) {
        gauge!(SSE_OPEN).decrement(1.0);
    }
}

pub fn callbacks_pending(n: usize) {
    gauge!(CALLBACKS_PENDING).set(n as f64);
}

pub fn callback_delivered() {
    counter!(CALLBACKS_DELIVERED).increment(1);
}

pub fn callback_failed(outcome: &'static str) {
    counter!(CALLBACKS_FAILED, "outcome" => outcome).increment(1);
}

/// `now` (hash, schema written) is the active guest; `before`, if any, no longer is.
pub fn guest_active(before: Option<(&str, u32)>, now: (&str, u32)) {
    let info = |(hash, schema): (&str, u32)| gauge!(GUEST_INFO, "hash" => hash.to_owned(), "schema_written" => schema.to_string());
    if let Some(b) = before {
        info(b).set(0.0);
    }
    info(now).set(1.0);
}

pub fn guest_activated() {
    counter!(GUEST_ACTIVATIONS).increment(1);
}

/// `hash` was refused; `before` was the last refused one, if any.
pub fn guest_refused(before: Option<&str>, hash: &str) {
    counter!(GUEST_REFUSALS).increment(1);
    if let Some(b) = before.filter(|b| *b != hash) {
        gauge!(GUEST_REFUSED_INFO, "hash" => b.to_owned()).set(0.0);
    }
    gauge!(GUEST_REFUSED_INFO, "hash" => hash.to_owned()).set(1.0);
}
