//! `irma-server`: start-up and shutdown. Everything else is in the library's modules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use irma_server::config::{Args, StoreChoice};
use irma_server::http::{self, AppState};
use irma_server::runtime::{Runtime, types};
use irma_server::schemes::{self, KeyCache};
use irma_server::session::Sessions;
use irma_server::store::Store;
use irma_server::store::memory::MemoryStore;
use irma_server::store::redis::RedisStore;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging(&args);
    args.validate()?;
    let conf = schemes::load(&args.schemes_path, args.privkeys.as_deref())?;
    tracing::info!(schemes = ?conf.schemes.keys().collect::<Vec<_>>(), credential_types = conf.credential_types.len(), "schemes loaded");
    let keys = Arc::new(KeyCache::from_configuration(&conf));
    let guest = args.guest_path();
    let runtime = Runtime::load(&guest, keys, args.guest_concurrency)
        .with_context(|| format!("guest {}", guest.display()))?;
    let (read, written) = runtime.schemas()?;
    if !read.contains(&written) {
        bail!("guest writes record schema {written} but cannot read it");
    }
    tracing::info!(guest = %guest.display(), ?read, written, "guest loaded");
    let store = Arc::new(match args.store()? {
        StoreChoice::Memory => Store::Memory(MemoryStore::new()),
        StoreChoice::Redis(options) => {
            let store = RedisStore::connect(&options).await?;
            tracing::info!(addr = %format!("{}:{}", options.host, options.port), db = options.db, tls = !matches!(options.tls, irma_server::store::redis::Tls::Off), "session store: redis");
            Store::Redis(store)
        }
    });
    if let Store::Memory(_) = &*store {
        let sweeper = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                if let Store::Memory(m) = &*sweeper {
                    m.sweep();
                }
            }
        });
    }
    let config = types::Config {
        url: args.app_url(),
        max_session_lifetime_secs: args.max_session_lifetime * 60,
        session_result_lifetime_secs: args.session_result_lifetime * 60,
        production: args.production,
        augment_client_return_url: args.augment_client_return_url,
        allow_unsigned_callbacks: args.allow_unsigned_callbacks,
        timestamp_keys: args.timestamp_keys()?,
    };
    let state = Arc::new(AppState {
        sessions: Sessions::new(Arc::new(runtime), store, config),
        requestors: args.requestors()?,
        sse: args.sse,
    });
    let addr = SocketAddr::new(args.listen_addr, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, url = %args.app_url(), "irma-server listening");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

fn init_logging(args: &Args) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| format!("irma_server={level},warn").into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
