//! App and frontend endpoints under `/irma/session/{ct}/`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::json;

use super::errors::{HttpError, Kind};
use super::sse::{self, Channel};
use super::{Shared, check_token};
use crate::runtime::types::{AppRequest, ConnectRequest, Event};
use crate::store::Token;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/irma/session/{ct}",
            post(static_session).fallback(dispatch_root),
        )
        .route("/irma/session/{ct}/", any(dispatch_root))
        .route("/irma/session/{ct}/{*rest}", any(dispatch))
}

/// `POST /irma/session/{name}` (no trailing slash): the app scanned a static QR; a fresh
/// session of the configured request starts, and the app gets its pointer (§1.15).
async fn static_session(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let Some(request) = state.static_sessions.get(&name) else {
        return HttpError::new(Kind::InvalidRequest, "unknown static session").into_response();
    };
    let reply = state.sessions.start(request.clone(), String::new()).await;
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status == 200 {
        return axum::Json(body["sessionPtr"].clone()).into_response();
    }
    let why = format!(
        "{}: {}",
        body["error"].as_str().unwrap_or(""),
        body["message"].as_str().unwrap_or("")
    );
    HttpError::new(Kind::MalformedInput, why).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn dispatch_root(
    state: State<Shared>,
    Path(ct): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => route(state, ct, String::new(), method, headers, body).await,
        Err(e) => super::body_error(e).into_response(),
    }
}

async fn dispatch(
    state: State<Shared>,
    Path((ct, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => route(state, ct, rest, method, headers, body).await,
        Err(e) => super::body_error(e).into_response(),
    }
}

/// An error inside `/irma` for a path or method that does not exist.
fn not_routed(status: u16) -> Response {
    let code = axum::http::StatusCode::from_u16(status).expect("valid");
    let mut r = (
        code,
        serde_json::to_vec(&json!({"status": status, "error": "INVALID_REQUEST"}))
            .expect("serializes"),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

async fn route(
    State(state): State<Shared>,
    ct: String,
    rest: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = check_token(&ct, "clientToken") {
        return e.into_response();
    }
    let path = format!("/irma/session/{ct}/{rest}");
    let auth = header(&headers, "authorization");
    let app = |body: Bytes| AppRequest {
        path: path.clone(),
        authorization: auth.clone(),
        body: body.to_vec(),
    };
    let rest = rest.trim_end_matches('/');
    let event = match (rest, &method) {
        ("", &Method::GET) => Event::AppConnect(ConnectRequest {
            path: path.clone(),
            authorization: auth.clone(),
            min_protocol_version: header(&headers, "x-irma-minprotocolversion"),
            max_protocol_version: header(&headers, "x-irma-maxprotocolversion"),
        }),
        ("", &Method::DELETE) => Event::AppCancel,
        ("request", &Method::GET) => Event::AppRequest(app(Bytes::new())),
        ("proofs", &Method::POST) => Event::AppProofs(app(body)),
        ("commitments", &Method::POST) => Event::AppCommitments(app(body)),
        ("status", &Method::GET) => {
            // Polled every second by the app: answered from the summary, without the guest.
            return state
                .sessions
                .poll_status(Token::Client(&ct))
                .await
                .into_response();
        }
        ("statusevents", &Method::GET) => {
            return sse::stream(state.clone(), Token::Client(&ct), Channel::App, &headers).await;
        }
        ("frontend/statusevents", &Method::GET) => {
            // The frontend authorization is checked against the record through the guest.
            let check = state
                .sessions
                .handle(Token::Client(&ct), Event::FrontendStatus(auth.clone()))
                .await;
            if check.status != 200 {
                return check.into_response();
            }
            return sse::stream(
                state.clone(),
                Token::Client(&ct),
                Channel::Frontend,
                &headers,
            )
            .await;
        }
        ("frontend/status", &Method::GET) => Event::FrontendStatus(auth.clone()),
        ("frontend/options", &Method::POST) => Event::FrontendOptions(app(body)),
        ("frontend/pairingcompleted", &Method::POST) => {
            Event::FrontendPairingCompleted(auth.clone())
        }
        (
            ""
            | "request"
            | "proofs"
            | "commitments"
            | "status"
            | "frontend/status"
            | "frontend/options"
            | "frontend/pairingcompleted",
            _,
        ) => {
            return known_session(&state, &ct, 405).await;
        }
        _ => return known_session(&state, &ct, 404).await,
    };
    state
        .sessions
        .handle(Token::Client(&ct), event)
        .await
        .into_response()
}

/// An unknown sub-path or method of a session: SESSION_UNKNOWN if the session does not exist
/// (as the reference, which loads the session before routing), else 404/405.
async fn known_session(state: &Shared, ct: &str, status: u16) -> Response {
    match state.sessions.store_has(Token::Client(ct)).await {
        Ok(true) => not_routed(status),
        Ok(false) => {
            super::errors::HttpError::new(super::errors::Kind::SessionUnknown, "").into_response()
        }
        Err(e) => e.into_response(),
    }
}
