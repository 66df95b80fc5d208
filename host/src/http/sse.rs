//! Server-sent events of a session's status (`--sse`). The stream starts with the current
//! status and follows every change until the session is finished. Changes come from the
//! store's announcements: this process's in memory mode, every replica's through Redis pub/sub.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;

use super::Shared;
use super::errors::{HttpError, Kind};
use crate::runtime::types::SessionStatus;
use crate::store::{SessionStore, StatusEvent, Token, status_name};

/// How a status is written in an event.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// `"CONNECTED"` (requestor and app channels).
    Bare,
    /// `{"status":"CONNECTED"}` (frontend channel).
    Frontend,
}

fn is_final(s: SessionStatus) -> bool {
    matches!(
        s,
        SessionStatus::Done | SessionStatus::Cancelled | SessionStatus::Timeout
    )
}

fn event(s: SessionStatus, format: Format) -> SseEvent {
    let data = match format {
        Format::Bare => format!("\"{}\"", status_name(s)),
        Format::Frontend => format!("{{\"status\":\"{}\"}}", status_name(s)),
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
    let rx = state.sessions.store.subscribe();
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
    let changes = follow(state.clone(), rx, ct, status, format);
    Sse::new(first.chain(changes))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// How often a stream re-reads the session's summary: a status event can be missed (a replica
/// died between its commit and its publish, or the subscription was reconnecting), and a lapse
/// into TIMEOUT is never announced because nothing is written.
const RECHECK: Duration = Duration::from_secs(1);

/// The changes of session `ct` after `last`, ending after its final status.
fn follow(
    state: Shared,
    rx: broadcast::Receiver<StatusEvent>,
    ct: String,
    last: SessionStatus,
    format: Format,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((rx, Some(last)), move |(mut rx, last)| {
        let (state, ct) = (state.clone(), ct.clone());
        async move {
            let last = last?;
            loop {
                let next = tokio::select! {
                    received = rx.recv() => match received {
                        Ok(e) if e.ct == ct => Some(e.status),
                        Ok(_) => None,
                        Err(broadcast::error::RecvError::Lagged(_)) => None,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep(RECHECK) => {
                        match state.sessions.current_status(Token::Client(&ct)).await {
                            Ok(Some((_, s))) => Some(s),
                            // Expired: nothing more will happen.
                            Ok(None) => return None,
                            Err(_) => None,
                        }
                    }
                };
                match next {
                    Some(status) if status != last => {
                        let more = (!is_final(status)).then_some(status);
                        return Some((Ok(event(status, format)), (rx, more)));
                    }
                    _ => continue,
                }
            }
        }
    })
}
