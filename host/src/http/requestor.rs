//! Requestor endpoints: start a session, read its status and result, cancel it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::errors::{HttpError, Kind};
use super::{Shared, check_token};
use crate::runtime::types::Event;
use crate::store::Token;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/session", post(start))
        .route("/session/{rt}", axum::routing::delete(cancel))
        .route("/session/{rt}/status", get(status))
        .route("/session/{rt}/result", get(result))
        .route("/session/{rt}/statusevents", get(statusevents))
        .route("/session/{rt}/result-jwt", get(no_jwt_key))
        .route("/session/{rt}/getproof", get(no_jwt_key))
        .route("/publickey", get(no_public_key))
        .route("/health", get(|| async { "OK" }))
}

/// Which requestor sent this, by the authenticator rules of irma-server.md §3.1 (none and
/// token for now; hmac and publickey JWTs slot in here).
fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<String, HttpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !content_type.starts_with("application/json") {
        if content_type.starts_with("text/plain") {
            return Err(HttpError::new(
                Kind::InvalidRequest,
                "request could not be authenticated",
            ));
        }
        return Err(HttpError::new(
            Kind::InvalidRequest,
            format!("Unsupported Content-Type: {content_type}"),
        ));
    }
    match (&state.requestors, authorization) {
        (None, None) => Ok(String::new()),
        (Some(requestors), Some(token)) => requestors
            .iter()
            .find(|(_, key)| key == token)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| HttpError::new(Kind::Unauthorized, "")),
        _ => Err(HttpError::new(
            Kind::InvalidRequest,
            "request could not be authenticated",
        )),
    }
}

async fn start(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return super::body_error(e).into_response(),
    };
    let requestor = match authenticate(&state, &headers) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    state
        .sessions
        .start(body.to_vec(), requestor)
        .await
        .into_response()
}

async fn on_session(state: Shared, rt: String, event: Event) -> Response {
    if let Err(e) = check_token(&rt, "requestorToken") {
        return e.into_response();
    }
    state
        .sessions
        .handle(Token::Requestor(&rt), event)
        .await
        .into_response()
}

/// The hottest path: answered from the session's summary, without the guest.
async fn status(State(state): State<Shared>, Path(rt): Path<String>) -> Response {
    if let Err(e) = check_token(&rt, "requestorToken") {
        return e.into_response();
    }
    state
        .sessions
        .poll_status(Token::Requestor(&rt))
        .await
        .into_response()
}

async fn result(State(state): State<Shared>, Path(rt): Path<String>) -> Response {
    on_session(state, rt, Event::RequestorResult).await
}

async fn cancel(State(state): State<Shared>, Path(rt): Path<String>) -> Response {
    on_session(state, rt, Event::RequestorCancel).await
}

async fn statusevents(
    State(state): State<Shared>,
    Path(rt): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.sse {
        return HttpError::new(Kind::SseDisabled, "").into_response();
    }
    if let Err(e) = check_token(&rt, "requestorToken") {
        return e.into_response();
    }
    super::sse::stream(
        state.clone(),
        Token::Requestor(&rt),
        super::sse::Channel::Requestor,
        &headers,
    )
    .await
}

/// JWT outputs need `--jwt-privkey`, which this server does not support yet; like the
/// reference without a key, the answer comes before any session lookup.
async fn no_jwt_key() -> Response {
    HttpError::new(Kind::Exception, "JWT signing not supported").into_response()
}

async fn no_public_key() -> Response {
    HttpError::new(Kind::Unsupported, "no JWT private key configured").into_response()
}
