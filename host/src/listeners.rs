//! The server's listeners (irma-server.md §1.1, §6): one for everything, or with
//! `--client-port` the app endpoints (`/irma`, and static files) on a listener of their own and
//! the requestor API on the main one; each plain or with TLS (rustls: TLS 1.2 and 1.3). All
//! of them stop accepting on SIGTERM or Ctrl-C and finish what is in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::drain::Drain;

/// One listener: where, with what TLS, serving what.
pub struct Listener {
    pub addr: SocketAddr,
    /// Certificate chain and key, PEM.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    pub router: Router,
    /// What it serves, for the log.
    pub what: &'static str,
}

/// A rustls server configuration for a certificate chain and key (PEM): TLS 1.2 and 1.3
/// only, ring's AEAD suites and X25519 first, HTTP/1.1.
fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<RustlsConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow!("TLS certificate: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("TLS certificate: no certificate in the PEM");
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| anyhow!("TLS private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// Binds every listener (so a port in use fails the start), then serves them until the
/// process is asked to stop. At SIGTERM (or Ctrl-C) it drains: `draining` is set (so `/ready`
/// fails and balancers move away) while everything is still served for `grace`, or until a
/// second signal; then the listeners stop accepting, event streams end, and what is in flight
/// gets 10 s to finish.
pub async fn serve(listeners: Vec<Listener>, drain: Arc<Drain>, grace: Duration) -> Result<()> {
    // Installed before anything is served: a SIGTERM that came before the handlers would kill
    // the process outright (resetting the connections it had accepted) instead of draining it.
    let mut stop = StopSignals::install()?;
    let handle = Handle::new();
    let mut bound = Vec::new();
    for l in listeners {
        let std_listener = std::net::TcpListener::bind(l.addr)
            .with_context(|| format!("listening on {}", l.addr))?;
        std_listener.set_nonblocking(true)?;
        let tls = l.tls.as_ref().map(|(c, k)| tls_config(c, k)).transpose()?;
        bound.push((l, std_listener, tls));
    }
    let mut servers = Vec::new();
    for (l, std_listener, tls) in bound {
        tracing::info!(addr = %l.addr, tls = tls.is_some(), serves = l.what, "irma-server listening");
        let app = l.router.into_make_service();
        let handle = handle.clone();
        servers.push(match tls {
            Some(tls) => tokio::spawn(async move {
                axum_server::from_tcp_rustls(std_listener, tls)
                    .handle(handle)
                    .serve(app)
                    .await
            }),
            None => tokio::spawn(async move {
                axum_server::from_tcp(std_listener)
                    .handle(handle)
                    .serve(app)
                    .await
            }),
        });
    }
    tokio::spawn({
        let handle = handle.clone();
        async move {
            stop.next().await;
            drain.start();
            tracing::info!(
                grace_secs = grace.as_secs(),
                "draining: /ready fails, still serving"
            );
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = stop.next() => {}
            }
            tracing::info!("no longer accepting; finishing what is in flight");
            // Event streams end now (they would never finish on their own); other in-flight
            // requests get this long.
            drain.close();
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        }
    });
    for s in servers {
        s.await??;
    }
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from the start and for the process's life, so
/// neither the first nor the second signal can be missed.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! { _ = self.term.recv() => {}, _ = self.interrupt.recv() => {} }
    }
}
