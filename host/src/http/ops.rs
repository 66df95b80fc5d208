//! Operations endpoints: `/health` (the process is alive), `/ready` (it should get traffic:
//! the session store answers, not draining), `/metrics` (Prometheus text, see
//! [`crate::metrics`]), and with
//! `--admin-token` the guest registry (Redis mode): `GET /admin/guest` (status),
//! `POST /admin/guest` (body: a component, its signature in `X-Guest-Signature`; publishes
//! it), `POST /admin/guest/rollback`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::Shared;
use super::errors::{HttpError, Kind};
use crate::registry::{GuestCheck, Registry};
use crate::store::SessionStore;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "OK" }))
        .route("/ready", get(ready))
        .route("/admin/guest", get(status).post(publish))
        .route("/admin/guest/rollback", post(rollback))
}

/// `200` when this replica should get requests; `503` with the reason when not: draining
/// after SIGTERM, or the session store does not answer.
async fn ready(State(state): State<Shared>) -> Response {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "reason": reason})),
        )
            .into_response()
    };
    if state.drain.is_draining() {
        return not_ready("draining".into());
    }
    if let Err(e) = state.sessions.store.ping().await {
        return not_ready(e.to_string());
    }
    axum::Json(json!({"ready": true, "guest": state.sessions.guests.current().hash}))
        .into_response()
}

async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    // Read at scrape time: the outbox is shared by every replica. A store in failover would
    // hold the scrape past Prometheus' timeout: after a second the last count stands.
    let count = state.sessions.store.pending_deliveries();
    match tokio::time::timeout(std::time::Duration::from_secs(1), count).await {
        Ok(Ok(n)) => crate::metrics::callbacks_pending(n),
        Ok(Err(e)) => tracing::warn!("cannot count the callback outbox: {e}"),
        Err(_) => tracing::warn!("the callback outbox count took over a second; skipped"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// The registry, if the caller holds the admin token (`Authorization: Bearer <token>`).
fn admin(state: &Shared, headers: &HeaderMap) -> Result<Registry, HttpError> {
    let Some(token) = &state.admin_token else {
        return Err(HttpError::new(
            Kind::Unsupported,
            "no --admin-token configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared in full whatever the input, so timing tells nothing about the token.
    let equal = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0, |d, (a, b)| d | (a ^ b))
                == 0
    });
    if !equal {
        return Err(HttpError::new(Kind::Unauthorized, "admin token"));
    }
    state.registry.clone().ok_or_else(|| {
        HttpError::new(
            Kind::Unsupported,
            "guest versions are kept in Redis (--store-type redis); in memory mode replace the --guest file",
        )
    })
}

fn check(state: &Shared) -> GuestCheck {
    let g = &state.sessions.guests;
    GuestCheck {
        host: g.host().clone(),
        config: g.config().clone(),
        keep_ms: g.keep_ms(),
        trust: g.trust(),
    }
}

fn refused(e: anyhow::Error) -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(json!({"status": 409, "error": "GUEST_REFUSED", "description": "The guest was refused", "message": format!("{e:#}")})),
    )
        .into_response()
}

async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match admin(&state, &headers) {
        Ok(r) => match r.status().await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => HttpError::new(Kind::InternalError, format!("{e:#}")).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn publish(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let registry = match admin(&state, &headers) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let check = check(&state);
    // Signed by the publisher: `X-Guest-Signature: <base64>`.
    let signature = headers
        .get("x-guest-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sig = signature.clone();
    // Compiling takes a while: the checks run off the async workers.
    let checked = tokio::task::spawn_blocking(move || check.check_owned(body.to_vec(), sig)).await;
    match checked {
        Ok(Ok((bytes, runtime))) => match registry
            .activate_checked(
                &bytes,
                &runtime,
                state.sessions.guests.keep_ms(),
                signature.as_deref(),
            )
            .await
        {
            Ok(()) => axum::Json(json!({"published": runtime.hash})).into_response(),
            Err(e) => refused(e),
        },
        Ok(Err(e)) => refused(e),
        Err(e) => HttpError::new(Kind::InternalError, e.to_string()).into_response(),
    }
}

async fn rollback(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let registry = match admin(&state, &headers) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match registry.rollback(&check(&state)).await {
        Ok(hash) => axum::Json(json!({"active": hash})).into_response(),
        Err(e) => refused(e),
    }
}
