//! The HTTP surface: requestor routes (`/session...`) and app/frontend routes
//! (`/irma/session/{ct}/...`), with CORS as the reference server has it and a 10 MiB body cap.

pub mod app;
pub mod errors;
pub mod ops;
pub mod request_id;
pub mod requestor;
pub mod sse;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, header};
use tower_http::cors::{Any, CorsLayer};

use crate::session::Sessions;
use crate::store::Store;
use errors::{HttpError, Kind};

/// Shared state of all handlers.
pub struct AppState {
    pub sessions: Arc<Sessions<Store>>,
    /// Who may start sessions, and how they authenticate.
    pub requestors: Arc<crate::requestors::Requestors>,
    /// The key that signs result JWTs (`--jwt-privkey`), if any.
    pub jwt: Option<Arc<crate::jwt::JwtKey>>,
    /// Serve `statusevents` (`--sse`).
    pub sse: bool,
    /// The guest registry (Redis mode).
    pub registry: Option<crate::registry::Registry>,
    /// Bearer token of the `/admin` endpoints; none disables them.
    pub admin_token: Option<String>,
    /// Static sessions (`--static-sessions`): name → the extended request each scan starts.
    pub static_sessions: std::collections::BTreeMap<String, Vec<u8>>,
    /// Set at SIGTERM: `/ready` fails from then on, so balancers stop sending requests here;
    /// event streams end when the listeners close.
    pub drain: Arc<crate::drain::Drain>,
}

pub type Shared = Arc<AppState>;

/// Request bodies above this are refused (`irma server` does the same).
pub const MAX_BODY: usize = 10 << 20;

/// Which routes a listener serves. Operations (`/metrics`, `/health`, `/ready`, `/admin`) go
/// with the requestor API unless `--ops-port` gives them a listener of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Requestor API, app endpoints and operations: one listener for everything.
    All,
    /// Requestor API and operations (the app endpoints have a listener of their own).
    Requestor,
    /// The app endpoints (`/irma`) alone, on `--client-port`.
    App,
    /// Operations alone, on `--ops-port`.
    Ops,
}

/// The routes of `which`, under `prefix` (`--api-prefix`), with static files from `statics`
/// (`(folder, URL prefix)`) beside the app endpoints.
pub fn router(
    state: Shared,
    which: Routes,
    ops_apart: bool,
    prefix: &str,
    statics: Option<(&std::path::Path, &str)>,
) -> Router {
    let mut routes = Router::new();
    let requestors = matches!(which, Routes::All | Routes::Requestor);
    if requestors {
        routes = routes.merge(requestor::routes());
    }
    if which == Routes::Ops || (requestors && !ops_apart) {
        routes = routes.merge(ops::routes());
    }
    if matches!(which, Routes::All | Routes::App) {
        routes = routes.merge(app::routes());
        if let Some((dir, at)) = statics {
            let files = tower_http::services::ServeDir::new(dir);
            routes = if at == "/" {
                routes.fallback_service(files)
            } else {
                routes.nest_service(at.trim_end_matches('/'), files)
            };
        }
    }
    let routes = layered(routes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            close_when_draining,
        ))
        .with_state(state);
    match prefix.trim_end_matches('/') {
        "" => routes,
        p => Router::new().nest(p, routes),
    }
}

/// CORS as the reference has it, and the body cap.
fn layered(routes: Router<Shared>) -> Router<Shared> {
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
    routes
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_announced_oversize))
        .layer(cors)
        .route_layer(axum::middleware::from_fn(request_id::tag))
}

/// While draining, every answer closes its connection: a balancer's kept-alive connections to
/// this replica are gone by the time it stops accepting, so none is reused just as it closes
/// (a request sent on a connection that then closes is not retried by nginx if it is a POST).
async fn close_when_draining(
    axum::extract::State(state): axum::extract::State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(req).await;
    if state.drain.is_draining() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
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

/// A body that could not be read (too large, broken): `400 INVALID_REQUEST`, as the reference.
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> HttpError {
    HttpError::new(Kind::InvalidRequest, format!("http: {}", e.body_text()))
}

/// Refuses a body whose announced length is over the cap at once, without reading it; bodies
/// without a length are cut off at the cap by `DefaultBodyLimit` while they are read.
async fn refuse_announced_oversize(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return HttpError::new(Kind::InvalidRequest, "http: request body too large")
            .into_response();
    }
    next.run(req).await
}
