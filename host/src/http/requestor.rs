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
        .route("/session/{rt}/result-jwt", get(result_jwt))
        .route("/session/{rt}/getproof", get(getproof))
        .route("/publickey", get(publickey))
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
    let now = crate::session::now_ms() / 1000;
    let authenticated = match state.requestors.authenticate(&headers, &body, now) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    state
        .sessions
        .start(authenticated.request, authenticated.requestor)
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

/// The result as a JWT signed with the server's key. Without a key the answer comes before
/// any session lookup, as the reference's.
async fn result_jwt(State(state): State<Shared>, Path(rt): Path<String>) -> Response {
    if state.jwt.is_none() {
        return no_jwt_key();
    }
    on_session(state, rt, Event::RequestorResultJwt).await
}

/// The legacy `irma_api_server` proof JWT.
async fn getproof(State(state): State<Shared>, Path(rt): Path<String>) -> Response {
    if state.jwt.is_none() {
        return no_jwt_key();
    }
    on_session(state, rt, Event::RequestorGetproof).await
}

fn no_jwt_key() -> Response {
    HttpError::new(Kind::Exception, "JWT signing not supported").into_response()
}

/// The public half of the JWT key, as a PEM `PUBLIC KEY` block.
async fn publickey(State(state): State<Shared>) -> Response {
    match &state.jwt {
        Some(key) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            key.public_pem().to_owned(),
        )
            .into_response(),
        None => HttpError::new(Kind::Unsupported, "no JWT private key configured").into_response(),
    }
}
