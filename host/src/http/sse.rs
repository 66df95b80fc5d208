//! Server-sent events of a session's status (`--sse`). The stream starts with the current
//! status and follows every change until the session is finished. In memory mode the changes
//! come from this process's broadcast channel.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;

use super::Shared;
use super::errors::{HttpError, Kind};
use crate::runtime::types::SessionStatus;
use crate::session::StatusEvent;
use crate::store::Token;

/// How a status is written in an event.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// `"CONNECTED"` (requestor and app channels).
    Bare,
    /// `{"status":"CONNECTED"}` (frontend channel).
    Frontend,
}

pub fn name(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Initialized => "INITIALIZED",
        SessionStatus::Pairing => "PAIRING",
        SessionStatus::Connected => "CONNECTED",
        SessionStatus::Done => "DONE",
        SessionStatus::Cancelled => "CANCELLED",
        SessionStatus::Timeout => "TIMEOUT",
    }
}

fn is_final(s: SessionStatus) -> bool {
    matches!(
        s,
        SessionStatus::Done | SessionStatus::Cancelled | SessionStatus::Timeout
    )
}

fn event(s: SessionStatus, format: Format) -> SseEvent {
    let data = match format {
        Format::Bare => format!("\"{}\"", name(s)),
        Format::Frontend => format!("{{\"status\":\"{}\"}}", name(s)),
    };
    SseEvent::default().data(data)
}

/// What to answer when the session is finished (or, for requestors, unknown).
pub enum Refusal {
    Requestor,
    App,
}

/// Streams the status of the session named by `token`.
pub async fn stream(state: Shared, token: Token<'_>, format: Format, refusal: Refusal) -> Response {
    if !state.sse {
        return HttpError::new(Kind::SseDisabled, "").into_response();
    }
    // Subscribe first, so no change between reading the status and listening is lost.
    let rx = state.sessions.events.subscribe();
    let current = match state.sessions.current_status(token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return match refusal {
                Refusal::Requestor => {
                    HttpError::new(Kind::Unsupported, "unknown session").into_response()
                }
                Refusal::App => HttpError::new(Kind::SessionUnknown, "").into_response(),
            };
        }
        Err(e) => return e.into_response(),
    };
    let (ct, status) = current;
    // A frontend that subscribes after the session ended (the app was quicker than the page)
    // learns the outcome instead of an error; the reference errors here, which leaves such a
    // page stuck. Requestor and app channels answer as the reference does.
    if is_final(status) && matches!(format, Format::Frontend) {
        return Sse::new(stream::once(async move {
            Ok::<_, Infallible>(event(status, format))
        }))
        .into_response();
    }
    if is_final(status) {
        return match refusal {
            Refusal::Requestor => {
                HttpError::new(Kind::Unsupported, "session is finished").into_response()
            }
            Refusal::App => HttpError::new(Kind::Exception, "session is finished").into_response(),
        };
    }
    // INITIALIZED is where every client starts (yivi-client even rejects it as an event), so
    // only a later status is worth sending first: it tells a late subscriber what it missed.
    let first =
        (status != SessionStatus::Initialized).then(|| Ok::<_, Infallible>(event(status, format)));
    let first = stream::iter(first);
    let changes = follow(rx, ct, format);
    Sse::new(first.chain(changes))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The changes of session `ct`, ending after its final status.
fn follow(
    rx: broadcast::Receiver<StatusEvent>,
    ct: String,
    format: Format,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((rx, false), move |(mut rx, done)| {
        let ct = ct.clone();
        async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(e) if e.ct == ct => {
                        return Some((Ok(event(e.status, format)), (rx, is_final(e.status))));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}
