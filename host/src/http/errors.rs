//! Errors the host itself answers (before or around the guest), as IRMA error JSON.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidRequest,
    MalformedInput,
    SessionUnknown,
    Unauthorized,
    UnauthorizedSession,
    InternalError,
    Exception,
    SseDisabled,
    Unsupported,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::InvalidRequest | Kind::MalformedInput | Kind::SessionUnknown => 400,
            Kind::Unauthorized | Kind::UnauthorizedSession => 403,
            Kind::InternalError | Kind::Exception | Kind::SseDisabled => 500,
            Kind::Unsupported => 501,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::InvalidRequest => "INVALID_REQUEST",
            Kind::MalformedInput => "MALFORMED_INPUT",
            Kind::SessionUnknown => "SESSION_UNKNOWN",
            Kind::Unauthorized | Kind::UnauthorizedSession => "UNAUTHORIZED",
            Kind::InternalError => "INTERNAL_ERROR",
            Kind::Exception => "EXCEPTION",
            Kind::SseDisabled => "SSE_DISABLED",
            Kind::Unsupported => "UNSUPPORTED",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::InvalidRequest => "Invalid HTTP request",
            Kind::MalformedInput => "Input could not be parsed",
            Kind::SessionUnknown => "Unknown or expired session",
            Kind::Unauthorized => "You are not authorized to issue or verify this attribute",
            Kind::UnauthorizedSession => "You are not authorized to access the session",
            Kind::InternalError => "Internal server error",
            Kind::Exception => "Encountered unexpected problem",
            Kind::SseDisabled => "Server sent events disabled",
            Kind::Unsupported => "Unsupported by this server",
        }
    }
}

/// An IRMA error answered by the host. Details of internal failures are logged, never sent.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub kind: Kind,
    pub message: String,
}

impl HttpError {
    pub fn new(kind: Kind, message: impl Into<String>) -> HttpError {
        HttpError {
            kind,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        let mut v = json!({"status": self.kind.status(), "error": self.kind.name(), "description": self.kind.description()});
        if !self.message.is_empty() {
            v["message"] = json!(self.message);
        }
        serde_json::to_vec(&v).expect("serializes")
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut r = (
            StatusCode::from_u16(self.kind.status()).expect("valid"),
            self.body(),
        )
            .into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        r
    }
}

impl IntoResponse for crate::session::Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, self.body).into_response();
        if !self.content_type.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.content_type)
        {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    }
}
