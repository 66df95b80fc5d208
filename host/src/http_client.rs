//! The server's own HTTP requests to requestors' servers: next-session requests (answered
//! within the app's request) and callback deliveries (from the outbox). HTTPS with the
//! system's root certificates.

use std::time::Duration;

use anyhow::Result;

use crate::runtime::types;
use crate::store::Delivery;

/// Per attempt of a next-session request, as the reference.
const NEXT_SESSION_ATTEMPT: Duration = Duration::from_secs(5);
/// All attempts of a next-session request together.
const NEXT_SESSION_TOTAL: Duration = Duration::from_secs(10);
/// One callback delivery attempt.
const CALLBACK_ATTEMPT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient> {
        Ok(HttpClient {
            client: reqwest::Client::builder()
                .connect_timeout(NEXT_SESSION_ATTEMPT)
                .user_agent(concat!("irma-server/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    /// A chained session's request for its next session: up to two retries when no
    /// connection can be made, within 10 s in all. Status 0: no answer.
    pub async fn next_session(&self, o: &types::Outgoing) -> types::HttpAnswer {
        let attempts = async {
            let mut last = None;
            for _ in 0..3 {
                let sent = self
                    .client
                    .post(&o.url)
                    .header(reqwest::header::CONTENT_TYPE, &o.content_type)
                    .body(o.body.clone())
                    .timeout(NEXT_SESSION_ATTEMPT)
                    .send()
                    .await;
                match sent {
                    Ok(r) => return Some(r),
                    Err(e) if e.is_connect() => last = Some(e),
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Some(e) = last {
                tracing::warn!("next-session request failed: {e}");
            }
            None
        };
        let Ok(Some(r)) = tokio::time::timeout(NEXT_SESSION_TOTAL, attempts).await else {
            return no_answer();
        };
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        match r.bytes().await {
            Ok(body) => types::HttpAnswer {
                status,
                content_type,
                body: body.to_vec(),
            },
            Err(_) => no_answer(),
        }
    }

    /// One attempt to deliver a callback: the receiver's status, or why there is none.
    pub async fn deliver(&self, d: &Delivery) -> Result<u16, String> {
        self.client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, &d.content_type)
            .header("Idempotency-Key", &d.id)
            .body(d.body.clone())
            .timeout(CALLBACK_ATTEMPT)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }
}

fn no_answer() -> types::HttpAnswer {
    types::HttpAnswer {
        status: 0,
        content_type: String::new(),
        body: Vec::new(),
    }
}
