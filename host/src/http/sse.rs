//! Server-sent events of a session's status (`--sse`) on three channels: the requestor's, the
//! app's and the frontend's. A stream sends every status after the one its client knows, and
//! ends after the final one (or when the replica closes at SIGTERM: the client reconnects to
//! another replica, or polls). Changes come from the store's announcements (this process's in
//! memory mode, every replica's through Redis pub/sub), and each stream re-reads the summary
//! every second for announcements it missed and for the lapse into TIMEOUT.
//!
//! **What the client knows decides the first event.** Clients read the first event as a
//! change: the app, waiting for pairing, takes the first event after PAIRING as the outcome
//! and gives up (`pairingRejected`) unless it says CONNECTED. So no stream may send the status
//! its client already has; yet a client that subscribes late must learn the change it missed.
//! What a client knows when it subscribes:
//! - a client that reconnects says so itself: `Last-Event-ID` (every event's id is its status);
//! - the requestor and the frontend learnt INITIALIZED when the session started;
//! - the app learnt what its connect answered: PAIRING when pairing is on, else CONNECTED. So
//!   CONNECTED reached from PAIRING is news to it, CONNECTED reached directly is not.
//!
//! The stream sends the current status first if it comes after that, then every later one.
//! Statuses only move forward (INITIALIZED, PAIRING, CONNECTED, then a final one), so a late
//! announcement of an earlier status is never sent.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::Shared;
use super::errors::{HttpError, Kind};
use crate::runtime::types::SessionStatus;
use crate::session::now_ms;
use crate::store::{
    SessionStore, StatusEvent, Summary, Token, is_final, status_from_name, status_name,
};

/// Who is listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `GET /session/{rt}/statusevents`: events are `"CONNECTED"`.
    Requestor,
    /// `GET /irma/session/{ct}/statusevents`: events are `"CONNECTED"`.
    App,
    /// `GET /irma/session/{ct}/frontend/statusevents`: events are `{"status":"CONNECTED"}`.
    Frontend,
}

impl Channel {
    fn event(self, s: SessionStatus) -> SseEvent {
        let data = match self {
            Channel::Requestor | Channel::App => format!("\"{}\"", status_name(s)),
            Channel::Frontend => format!("{{\"status\":\"{}\"}}", status_name(s)),
        };
        SseEvent::default().id(status_name(s)).data(data)
    }

    /// The status this channel's client knows when it subscribes without `Last-Event-ID`.
    fn known(self, summary: &Summary) -> SessionStatus {
        match self {
            Channel::Requestor | Channel::Frontend => SessionStatus::Initialized,
            Channel::App => match (summary.status, summary.previous) {
                (SessionStatus::Connected, Some(SessionStatus::Pairing)) => SessionStatus::Pairing,
                (status, _) => status,
            },
        }
    }
}

/// How far a session has come; statuses never go back.
fn stage(s: SessionStatus) -> u8 {
    match s {
        SessionStatus::Initialized => 0,
        SessionStatus::Pairing => 1,
        SessionStatus::Connected => 2,
        SessionStatus::Done | SessionStatus::Cancelled | SessionStatus::Timeout => 3,
    }
}

/// The status a reconnecting client last received, if it says so.
fn last_event(headers: &HeaderMap) -> Option<SessionStatus> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| status_from_name(v.trim()))
}

/// Streams the status of the session named by `token` to a client of `channel`.
pub async fn stream(
    state: Shared,
    token: Token<'_>,
    channel: Channel,
    headers: &HeaderMap,
) -> Response {
    if !state.sse {
        return HttpError::new(Kind::SseDisabled, "").into_response();
    }
    // Subscribe first, so no change between reading the status and listening is lost.
    let rx = state.sessions.store.subscribe();
    let (ct, summary) = match state.sessions.current_summary(token).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return match channel {
                Channel::Requestor => {
                    HttpError::new(Kind::Unsupported, "unknown session").into_response()
                }
                Channel::App | Channel::Frontend => {
                    HttpError::new(Kind::SessionUnknown, "").into_response()
                }
            };
        }
        Err(e) => return e.into_response(),
    };
    let status = summary.status_at(now_ms());
    let known = last_event(headers).unwrap_or_else(|| channel.known(&summary));
    let first = (stage(status) > stage(known)).then(|| channel.event(status));
    if is_final(known) && !is_final(status) {
        // The client has a final status already (from a replica whose clock ran ahead, say):
        // there is nothing more to tell it, and 204 stops an EventSource from reconnecting.
        return StatusCode::NO_CONTENT.into_response();
    }
    if is_final(status) {
        return match channel {
            // A frontend that subscribes after the session ended (the app was quicker than the
            // page) learns the outcome instead of an error, which would leave it stuck; one
            // that has it already is told not to reconnect (204 ends an EventSource).
            Channel::Frontend => match first {
                Some(e) => {
                    Sse::new(stream::once(async move { Ok::<_, Infallible>(e) })).into_response()
                }
                None => StatusCode::NO_CONTENT.into_response(),
            },
            // Requestor and app channels answer as the reference does.
            Channel::Requestor => {
                HttpError::new(Kind::Unsupported, "session is finished").into_response()
            }
            Channel::App => HttpError::new(Kind::Exception, "session is finished").into_response(),
        };
    }
    let first = stream::iter(first.map(Ok::<_, Infallible>));
    // What the client has by now: the status just sent, or a later one it says it has.
    let has = if stage(known) > stage(status) {
        known
    } else {
        status
    };
    let changes = follow(state.clone(), rx, ct, has, channel);
    // Counted as open until the stream ends or its client goes away (the body is dropped).
    let open = crate::metrics::SseOpen::new();
    let events = first.chain(changes).map(move |e| {
        let _ = &open;
        e
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// How often a stream re-reads the session's summary: a status event can be missed (a replica
/// died between its commit and its publish, or the subscription was reconnecting), and a lapse
/// into TIMEOUT is never announced because nothing is written.
const RECHECK: Duration = Duration::from_secs(1);

/// Where a stream is: the status its client has, and when it reads the summary next.
struct Following {
    rx: broadcast::Receiver<StatusEvent>,
    last: SessionStatus,
    /// A deadline, not a fresh timer per wait: every stream hears every session's
    /// announcements, and a busy server would otherwise never get round to re-reading.
    recheck_at: Instant,
}

/// The statuses of session `ct` after `last`, ending after its final status.
fn follow(
    state: Shared,
    rx: broadcast::Receiver<StatusEvent>,
    ct: String,
    last: SessionStatus,
    channel: Channel,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let start = Following {
        rx,
        last,
        recheck_at: Instant::now() + RECHECK,
    };
    stream::unfold(Some(start), move |following| {
        let (state, ct) = (state.clone(), ct.clone());
        async move {
            let mut f = following?;
            loop {
                let next = tokio::select! {
                    // The replica is closing: the client reconnects to another, or polls.
                    _ = state.drain.closed() => return None,
                    received = f.rx.recv() => match received {
                        Ok(e) if e.ct == ct => Some(e.status),
                        Ok(_) => None,
                        // Announcements were dropped: read the summary at once instead.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            f.recheck_at = Instant::now();
                            None
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep_until(f.recheck_at) => {
                        f.recheck_at = Instant::now() + RECHECK;
                        match state.sessions.current_status(Token::Client(&ct)).await {
                            Ok(Some((_, s))) => Some(s),
                            // Expired: nothing more will happen.
                            Ok(None) => return None,
                            Err(_) => None,
                        }
                    }
                };
                if let Some(status) = next
                    && stage(status) > stage(f.last)
                {
                    f.last = status;
                    let event = channel.event(status);
                    return Some((Ok(event), (!is_final(status)).then_some(f)));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus::*;

    #[test]
    fn the_app_knows_what_its_connect_answered() {
        let started = Summary::first(Initialized, None);
        let pairing = started.then(Pairing, None);
        let paired = pairing.then(Connected, None);
        let direct = started.then(Connected, None);
        assert_eq!(Channel::App.known(&started), Initialized);
        assert_eq!(Channel::App.known(&pairing), Pairing);
        assert_eq!(Channel::App.known(&paired), Pairing, "CONNECTED is news");
        assert_eq!(
            Channel::App.known(&paired.then(Connected, None)),
            Pairing,
            "also after the app fetched the request"
        );
        assert_eq!(Channel::App.known(&direct), Connected);
        for s in [started, pairing, paired, direct] {
            assert_eq!(Channel::Requestor.known(&s), Initialized);
            assert_eq!(Channel::Frontend.known(&s), Initialized);
        }
    }

    #[test]
    fn a_reconnecting_client_says_what_it_has() {
        let mut h = HeaderMap::new();
        assert_eq!(last_event(&h), None);
        h.insert("last-event-id", "PAIRING".parse().unwrap());
        assert_eq!(last_event(&h), Some(Pairing));
        h.insert("last-event-id", "nonsense".parse().unwrap());
        assert_eq!(last_event(&h), None);
    }

    #[test]
    fn statuses_only_move_forward() {
        let order = [Initialized, Pairing, Connected, Done];
        assert!(order.windows(2).all(|w| stage(w[0]) < stage(w[1])));
        assert!(is_final(Cancelled) && is_final(Timeout) && !is_final(Connected));
    }
}
