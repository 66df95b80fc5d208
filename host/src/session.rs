//! The driver: every request that touches a session is load → guest transition →
//! compare-and-swap → respond → effects. No session state lives here between requests.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::guests::Guests;
use crate::http::errors::{HttpError, Kind};
use crate::http_client::HttpClient;
use crate::runtime::{Runtime, types};
use crate::store::{
    Delivery, Saved, SessionStore, StatusEvent, StoreError, Summary, Token, Write, is_final,
    status_name,
};

/// How often a transition is recomputed when other requests keep winning the race.
const MAX_ATTEMPTS: usize = 16;

/// A response as the guest (or the driver) decided it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl From<types::Response> for Reply {
    fn from(r: types::Response) -> Reply {
        Reply {
            status: r.status,
            content_type: r.content_type,
            body: r.body,
        }
    }
}

impl From<HttpError> for Reply {
    fn from(e: HttpError) -> Reply {
        Reply {
            status: e.kind.status(),
            content_type: "application/json; charset=UTF-8".into(),
            body: e.body(),
        }
    }
}

pub struct Sessions<S> {
    /// The guest versions; each request runs on the one active when it starts.
    pub guests: Arc<Guests>,
    pub store: Arc<S>,
    pub config: types::Config,
    /// Requests to requestors' servers (next sessions).
    pub http: HttpClient,
    /// Woken after a commit that put callbacks in the outbox, so they go out at once.
    pub callbacks_due: Arc<Notify>,
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A store failure, as the reference answers it: `500 INTERNAL_ERROR`, the cause in `message`.
fn store_error(e: StoreError) -> HttpError {
    tracing::error!("{e}");
    HttpError::new(Kind::InternalError, e.to_string())
}

/// What the store keeps of an outcome; `before` is the summary it replaces, if any. The
/// callbacks the outcome owes go into the outbox with the record (`rt` names them).
/// The write of a transition's outcome to session `(rt, ct)`.
fn write(
    record: Vec<u8>,
    outcome: &types::Outcome,
    before: Option<&Summary>,
    (rt, ct): (&str, &str),
) -> Write {
    let summary = match before {
        Some(b) => b.then(outcome.status, outcome.lapses_at_ms),
        None => Summary::first(outcome.status, outcome.lapses_at_ms),
    };
    let outbox = outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            types::Effect::Callback(cb) => Some(Delivery {
                id: rt.to_owned(),
                ct: ct.to_owned(),
                url: cb.url.clone(),
                content_type: cb.content_type.clone(),
                body: String::from_utf8_lossy(&cb.body).into_owned(),
                created_ms: now_ms(),
                attempts: 0,
            }),
            types::Effect::StatusChanged(_) => None,
        })
        .collect();
    Write {
        record,
        summary,
        keep_secs: outcome.keep_secs,
        wake_at_ms: outcome.wake_at_ms,
        outbox,
    }
}

/// How the store keeps a session a transition started (a chained session's next one).
fn created(c: &types::CreatedSession) -> Write {
    Write {
        record: c.record.clone(),
        summary: Summary::first(c.status, c.lapses_at_ms),
        keep_secs: c.keep_secs,
        wake_at_ms: c.wake_at_ms,
        outbox: Vec::new(),
    }
}

/// A session's kind as metrics label it.
fn kind_name(kind: Option<types::SessionKind>) -> &'static str {
    match kind {
        Some(types::SessionKind::Disclosing) => "disclosing",
        Some(types::SessionKind::Signing) => "signing",
        Some(types::SessionKind::Issuing) => "issuing",
        None => "unknown",
    }
}

fn context(config: &types::Config) -> types::Context {
    let now_ms = now_ms();
    let mut random = vec![0u8; 64];
    getrandom::getrandom(&mut random).expect("the operating system provides randomness");
    types::Context {
        now_ms,
        random,
        config: config.clone(),
    }
}

impl<S: SessionStore> Sessions<S> {
    pub fn new(
        guests: Arc<Guests>,
        store: Arc<S>,
        config: types::Config,
        http: HttpClient,
    ) -> Sessions<S> {
        Sessions {
            guests,
            store,
            config,
            http,
            callbacks_due: Arc::new(Notify::new()),
        }
    }

    /// Runs a guest call off the async workers: proofs take milliseconds.
    async fn blocking<T: Send + 'static>(
        &self,
        runtime: Arc<Runtime>,
        f: impl FnOnce(&Runtime) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HttpError> {
        let slot = runtime.slot().await;
        let call = move || {
            let _slot = slot;
            f(&runtime)
        };
        match tokio::task::spawn_blocking(call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!("guest call failed: {e:#}");
                Err(HttpError::new(Kind::InternalError, ""))
            }
            Err(e) => {
                tracing::error!("guest call panicked: {e}");
                Err(HttpError::new(Kind::InternalError, ""))
            }
        }
    }

    /// `POST /session`.
    pub async fn start(&self, body: Vec<u8>, requestor: String) -> Reply {
        let ctx = context(&self.config);
        let started = match self
            .blocking(self.guests.current(), move |rt| {
                rt.start(&body, &requestor, &ctx)
            })
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(response)) => return response.into(),
            Err(e) => return e.into(),
        };
        let Some(record) = started.outcome.record.clone() else {
            return HttpError::new(Kind::InternalError, "guest created no record").into();
        };
        if let Err(e) = self
            .store
            .create(
                &started.requestor_token,
                &started.client_token,
                write(
                    record,
                    &started.outcome,
                    None,
                    (&started.requestor_token, &started.client_token),
                ),
            )
            .await
        {
            return store_error(e).into();
        }
        tracing::info!(status = ?started.outcome.status, "session started");
        crate::metrics::session_started(kind_name(started.outcome.kind));
        started.outcome.response.into()
    }

    /// Runs the guest's transition: proofs and commitments off the async workers (they take
    /// milliseconds of cryptography), everything else inline (cheaper than a thread hand-off).
    async fn transition(
        &self,
        runtime: &Arc<Runtime>,
        record: &[u8],
        event: types::Event,
    ) -> Result<types::Outcome, HttpError> {
        let ctx = context(&self.config);
        if matches!(
            event,
            types::Event::AppProofs(_) | types::Event::AppCommitments(_)
        ) {
            let record = record.to_vec();
            return self
                .blocking(runtime.clone(), move |rt| {
                    rt.transition(&record, &event, &ctx)
                })
                .await;
        }
        let _slot = runtime.slot().await;
        runtime.transition(record, &event, &ctx).map_err(|e| {
            tracing::error!("guest call failed: {e:#}");
            HttpError::new(Kind::InternalError, "")
        })
    }

    /// Applies `event` to the session named by `token`.
    pub async fn handle(&self, token: Token<'_>, event: types::Event) -> Reply {
        // This request runs on this version to its end, whatever is swapped in meanwhile.
        let runtime = self.guests.current();
        for _ in 0..MAX_ATTEMPTS {
            let loaded = match self.store.load(token).await {
                Ok(Some(l)) => l,
                Ok(None) => return HttpError::new(Kind::SessionUnknown, "").into(),
                Err(e) => return store_error(e).into(),
            };
            let mut outcome = match self
                .transition(&runtime, &loaded.record, event.clone())
                .await
            {
                Ok(o) => o,
                Err(e) => return e.into(),
            };
            // Valid proofs of a chained session: what the next-session endpoint answers decides
            // how the transition ends; only that end is committed.
            if let Some(fetch) = outcome.fetch.take() {
                let Some(pending) = outcome.record.take() else {
                    return HttpError::new(
                        Kind::InternalError,
                        "guest asked for a next session without a record",
                    )
                    .into();
                };
                let answer = self.http.next_session(&fetch).await;
                let next = types::Event::NextSessionAnswer(answer);
                outcome = match self.transition(&runtime, &pending, next).await {
                    Ok(o) if o.fetch.is_none() => o,
                    Ok(_) => {
                        return HttpError::new(
                            Kind::InternalError,
                            "guest asked for a next session twice",
                        )
                        .into();
                    }
                    Err(e) => return e.into(),
                };
            }
            if let Some(c) = &outcome.created
                && let Err(e) = self
                    .store
                    .create(&c.requestor_token, &c.client_token, created(c))
                    .await
            {
                return store_error(e).into();
            }
            if let Some(new) = outcome.record.clone() {
                let w = write(
                    new,
                    &outcome,
                    Some(&loaded.summary),
                    (&loaded.rt, &loaded.ct),
                );
                let callbacks = !w.outbox.is_empty();
                match self.store.save(&loaded, w).await {
                    Ok(Saved::Ok) => {
                        if is_final(outcome.status) && !is_final(loaded.summary.status) {
                            crate::metrics::session_ended(
                                kind_name(outcome.kind),
                                status_name(outcome.status),
                            );
                        }
                    }
                    Ok(Saved::Conflict) => {
                        crate::metrics::store_conflict();
                        continue;
                    }
                    Err(e) => return store_error(e).into(),
                }
                if callbacks {
                    self.callbacks_due.notify_one();
                }
            }
            self.effects(&loaded.ct, outcome.effects).await;
            return outcome.response.into();
        }
        tracing::warn!("gave up after {MAX_ATTEMPTS} conflicting attempts");
        HttpError::new(Kind::InternalError, "too much contention on this session").into()
    }

    /// Runs what the guest asked for, after the commit.
    async fn effects(&self, ct: &str, effects: Vec<types::Effect>) {
        for e in effects {
            match e {
                types::Effect::StatusChanged(status) => {
                    tracing::info!(?status, "session status changed");
                    self.store
                        .announce(StatusEvent {
                            ct: ct.to_owned(),
                            status,
                        })
                        .await;
                }
                // Committed with the record; the outbox delivers it.
                types::Effect::Callback(_) => {}
            }
        }
    }
}

impl<S: SessionStore> Sessions<S> {
    /// Whether a session exists (for routing errors).
    pub async fn store_has(&self, token: Token<'_>) -> Result<bool, HttpError> {
        self.store
            .summary(token)
            .await
            .map(|s| s.is_some())
            .map_err(store_error)
    }

    /// The client token and summary of a session: no record is loaded, no guest runs,
    /// nothing is written.
    pub async fn current_summary(
        &self,
        token: Token<'_>,
    ) -> Result<Option<(String, Summary)>, HttpError> {
        self.store.summary(token).await.map_err(store_error)
    }

    /// The client token and current status of a session, from its summary.
    pub async fn current_status(
        &self,
        token: Token<'_>,
    ) -> Result<Option<(String, types::SessionStatus)>, HttpError> {
        let summary = self.current_summary(token).await?;
        Ok(summary.map(|(ct, s)| (ct, s.status_at(now_ms()))))
    }

    /// A status poll (requestor or app): the status as a JSON string.
    pub async fn poll_status(&self, token: Token<'_>) -> Reply {
        match self.current_status(token).await {
            Ok(Some((_, status))) => Reply {
                status: 200,
                content_type: "application/json; charset=UTF-8".into(),
                body: format!("\"{}\"", status_name(status)).into_bytes(),
            },
            Ok(None) => HttpError::new(Kind::SessionUnknown, "").into(),
            Err(e) => e.into(),
        }
    }
}
