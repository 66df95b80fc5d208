//! The HTTP surface: requestor routes (`/session...`) and app/frontend routes
//! (`/irma/session/{ct}/...`), with CORS as the reference server has it and a 10 MiB body cap.

pub mod app;
pub mod errors;
pub mod requestor;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use tower_http::cors::{Any, CorsLayer};

use crate::session::Sessions;
use crate::store::memory::MemoryStore;
use errors::{HttpError, Kind};

/// Shared state of all handlers.
pub struct AppState {
    pub sessions: Sessions<MemoryStore>,
    /// `None` with `--no-auth`; else the token of each requestor.
    pub requestors: Option<Vec<(String, String)>>,
}

pub type Shared = Arc<AppState>;

/// Request bodies above this are refused (`irma server` does the same).
pub const MAX_BODY: usize = 10 << 20;

pub fn router(state: Shared) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            HeaderName::from_static("x-irma-minprotocolversion"),
            HeaderName::from_static("x-irma-maxprotocolversion"),
        ]);
    Router::new()
        .merge(requestor::routes())
        .merge(app::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
        .with_state(state)
}

/// Tokens are exactly 20 characters of `[a-zA-Z0-9]` (anchored, unlike the reference).
pub fn check_token(token: &str, what: &str) -> Result<(), HttpError> {
    if token.len() == 20 && token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(HttpError::new(
            Kind::InvalidRequest,
            format!("string did not pass input validation for {what}"),
        ))
    }
}
