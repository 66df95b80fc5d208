//! The driver: every request that touches a session is load → guest transition →
//! compare-and-swap → respond → effects. No session state lives here between requests.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::http::errors::{HttpError, Kind};
use crate::runtime::{Runtime, types};
use crate::store::{Saved, SessionStore, Token};

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

/// A status change, for server-sent events.
#[derive(Debug, Clone)]
pub struct StatusEvent {
    pub ct: String,
    pub status: types::SessionStatus,
}

pub struct Sessions<S> {
    pub runtime: Arc<Runtime>,
    pub store: Arc<S>,
    pub config: types::Config,
    pub events: broadcast::Sender<StatusEvent>,
}

fn context(config: &types::Config) -> types::Context {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut random = vec![0u8; 64];
    getrandom::getrandom(&mut random).expect("the operating system provides randomness");
    types::Context {
        now_ms,
        random,
        config: config.clone(),
    }
}

impl<S: SessionStore> Sessions<S> {
    pub fn new(runtime: Arc<Runtime>, store: Arc<S>, config: types::Config) -> Sessions<S> {
        let (events, _) = broadcast::channel(1024);
        Sessions {
            runtime,
            store,
            config,
            events,
        }
    }

    /// Runs a guest call off the async workers: proofs take milliseconds.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Runtime) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HttpError> {
        let runtime = self.runtime.clone();
        match tokio::task::spawn_blocking(move || f(&runtime)).await {
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
            .blocking(move |rt| rt.start(&body, &requestor, &ctx))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(response)) => return response.into(),
            Err(e) => return e.into(),
        };
        let Some(record) = started.outcome.record else {
            return HttpError::new(Kind::InternalError, "guest created no record").into();
        };
        if let Err(e) = self
            .store
            .create(
                &started.requestor_token,
                &started.client_token,
                record,
                started.outcome.keep_secs,
            )
            .await
        {
            tracing::error!("{e}");
            return HttpError::new(Kind::InternalError, "").into();
        }
        tracing::info!(status = ?started.outcome.status, "session started");
        started.outcome.response.into()
    }

    /// Applies `event` to the session named by `token`.
    pub async fn handle(&self, token: Token<'_>, event: types::Event) -> Reply {
        for _ in 0..MAX_ATTEMPTS {
            let loaded = match self.store.load(token).await {
                Ok(Some(l)) => l,
                Ok(None) => return HttpError::new(Kind::SessionUnknown, "").into(),
                Err(e) => {
                    tracing::error!("{e}");
                    return HttpError::new(Kind::InternalError, "").into();
                }
            };
            let ctx = context(&self.config);
            // Proofs and commitments take milliseconds of cryptography: off the async workers.
            // Everything else is tens of microseconds, cheaper than a thread hand-off.
            let heavy = matches!(
                event,
                types::Event::AppProofs(_) | types::Event::AppCommitments(_)
            );
            let outcome = if heavy {
                let record = loaded.record.clone();
                let ev = event.clone();
                self.blocking(move |rt| rt.transition(&record, &ev, &ctx))
                    .await
            } else {
                self.runtime
                    .transition(&loaded.record, &event, &ctx)
                    .map_err(|e| {
                        tracing::error!("guest call failed: {e:#}");
                        HttpError::new(Kind::InternalError, "")
                    })
            };
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => return e.into(),
            };
            if let Some(new) = outcome.record {
                match self
                    .store
                    .save(&loaded.ct, loaded.version, new, outcome.keep_secs)
                    .await
                {
                    Ok(Saved::Ok) => {}
                    Ok(Saved::Conflict) => continue,
                    Err(e) => {
                        tracing::error!("{e}");
                        return HttpError::new(Kind::InternalError, "").into();
                    }
                }
            }
            self.effects(&loaded.ct, outcome.effects);
            return outcome.response.into();
        }
        tracing::warn!("gave up after {MAX_ATTEMPTS} conflicting attempts");
        HttpError::new(Kind::InternalError, "too much contention on this session").into()
    }

    /// Runs what the guest asked for, after the commit.
    fn effects(&self, ct: &str, effects: Vec<types::Effect>) {
        for e in effects {
            match e {
                types::Effect::StatusChanged(status) => {
                    tracing::info!(?status, "session status changed");
                    let _ = self.events.send(StatusEvent {
                        ct: ct.to_owned(),
                        status,
                    });
                }
                types::Effect::Callback(cb) => {
                    tracing::warn!(url = %cb.url, "result callbacks are not delivered yet");
                }
            }
        }
    }
}

impl<S: SessionStore> Sessions<S> {
    /// Whether a session exists (for routing errors).
    pub async fn store_has(&self, token: Token<'_>) -> Result<bool, HttpError> {
        self.store
            .load(token)
            .await
            .map(|l| l.is_some())
            .map_err(|e| {
                tracing::error!("{e}");
                HttpError::new(Kind::InternalError, "")
            })
    }
}

impl<S: SessionStore> Sessions<S> {
    /// The client token and current status (lazy timeout applied) of a session.
    pub async fn current_status(
        &self,
        token: Token<'_>,
    ) -> Result<Option<(String, types::SessionStatus)>, HttpError> {
        let loaded = match self.store.load(token).await {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::error!("{e}");
                return Err(HttpError::new(Kind::InternalError, ""));
            }
        };
        let reply = self
            .handle(Token::Client(&loaded.ct), types::Event::RequestorStatus)
            .await;
        let status = match serde_json::from_slice::<String>(&reply.body).as_deref() {
            Ok("INITIALIZED") => types::SessionStatus::Initialized,
            Ok("PAIRING") => types::SessionStatus::Pairing,
            Ok("CONNECTED") => types::SessionStatus::Connected,
            Ok("DONE") => types::SessionStatus::Done,
            Ok("CANCELLED") => types::SessionStatus::Cancelled,
            Ok("TIMEOUT") => types::SessionStatus::Timeout,
            _ => return Ok(None),
        };
        Ok(Some((loaded.ct, status)))
    }
}
