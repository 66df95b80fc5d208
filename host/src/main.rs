//! `irma-server`: start-up and shutdown. Everything else is in the library's modules.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use irma_server::config::{Args, Command, GuestAction, SessionAction, StoreChoice};
use irma_server::drain::Drain;
use irma_server::guest_signing::{self, Trust};
use irma_server::guests::{self, Guests};
use irma_server::http::Routes;
use irma_server::http::{self, AppState};
use irma_server::http_client::HttpClient;
use irma_server::listeners::{self, Listener};
use irma_server::registry::{self, GuestCheck, Registry};
use irma_server::runtime::{GuestHost, Imports, Runtime, guest_hash, types};
use irma_server::schemes::{self, KeyCache};
use irma_server::session::Sessions;
use irma_server::store::memory::MemoryStore;
use irma_server::store::redis::{RedisStore, Tls};
use irma_server::store::{SessionStore, Store, Token};
use irma_server::{callbacks, config_file, embedded, metrics, timeouts};

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&args);
    let run = async {
        args.validate()?;
        match &args.command {
            None => serve(&args).await,
            Some(Command::Guest { action }) => guest_command(&args, action).await,
            Some(Command::Session { action }) => session_command(&args, action).await,
        }
    };
    let done = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run));
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, causes included, as an operator reads it in a log.
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The flags, with the configuration file's settings beneath them: they become the
/// `IRMASERVER_*` variables that are not set already (flag > environment > file > default).
fn parse_args() -> Result<Args> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = config_file::find(&argv) {
        let settings = config_file::read(&path)?;
        let known: Vec<String> = Args::command()
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| l.replace('-', "_"))
            .collect();
        let (env, verbose) = config_file::to_env(&settings, &known)
            .with_context(|| format!("{}", path.display()))?;
        for (k, v) in env {
            if std::env::var_os(&k).is_none() {
                // SAFETY: no other thread runs yet (the runtime starts after this).
                unsafe { std::env::set_var(k, v) };
            }
        }
        let cli_verbose = argv.iter().skip(1).any(|a| {
            let a = a.to_string_lossy();
            a == "--verbose" || (a.starts_with("-v") && a.chars().skip(1).all(|c| c == 'v'))
        });
        if !cli_verbose {
            for _ in 0..verbose {
                argv.insert(1, "-v".into());
            }
        }
    }
    Ok(Args::parse_from(argv))
}

/// What the guest sees of the configuration.
fn guest_config(args: &Args) -> Result<types::Config> {
    Ok(types::Config {
        url: args.app_url(),
        max_session_lifetime_secs: args.max_session_lifetime * 60,
        session_result_lifetime_secs: args.session_result_lifetime * 60,
        production: args.production,
        augment_client_return_url: args.augment_client_return_url,
        allow_unsigned_callbacks: args.allow_unsigned_callbacks,
        timestamp_keys: args.timestamp_keys()?,
        jwt_key: args.jwt_privkey.as_deref().is_some_and(|k| !k.is_empty())
            || args.jwt_privkey_file.is_some(),
        jwt_issuer: args.jwt_issuer.clone(),
    })
}

async fn serve(args: &Args) -> Result<()> {
    // Before anything records a metric (the first guest's activation does).
    metrics::install();
    metrics::spawn_upkeep();
    let schemes_path = args.schemes_path.as_deref().context("--schemes-path")?;
    let conf = schemes::load(schemes_path, args.privkeys.as_deref())?;
    tracing::info!(schemes = ?conf.schemes.keys().collect::<Vec<_>>(), credential_types = conf.credential_types.len(), "schemes loaded");
    let requestors = Arc::new(args.requestors()?);
    requestors.validate(&conf, args.skip_private_keys_check)?;
    args.check_production_exposure(&conf, &requestors)?;
    if args.production && args.url.as_deref().is_none_or(str::is_empty) {
        tracing::warn!("no --url configured: apps are sent to {}", args.app_url());
    }
    let jwt = args.jwt_key()?.map(Arc::new);
    let static_sessions = args.static_sessions()?;
    for name in static_sessions.keys() {
        tracing::info!(
            qr = %serde_json::json!({"irmaqr": "redirect", "u": format!("{}session/{name}", args.app_url())}),
            "static session"
        );
    }
    let imports = Imports {
        keys: Arc::new(KeyCache::from_configuration(&conf)),
        requestors: requestors.clone(),
        jwt: jwt.clone(),
    };
    let config = guest_config(args)?;
    let host = GuestHost::new(imports, args.guest_concurrency, args.guest_cache())?;
    let store = Arc::new(match args.store()? {
        StoreChoice::Memory => Store::Memory(MemoryStore::new()),
        StoreChoice::Redis(options) => {
            let store = RedisStore::connect(&options).await?;
            tracing::info!(endpoint = %options.endpoint_name(), db = options.db, wait_replicas = options.wait_replicas, tls = !matches!(options.tls, Tls::Off), sealing_key = options.encryption_keys.first().map(irma_server::store::sealing::key_name).unwrap_or_default(), "session store: redis");
            Store::Redis(store)
        }
    });
    let guests = Arc::new(first_guest(args, &host, &config, &store).await?);
    let mut registry = None;
    match &*store {
        Store::Memory(_) => {
            let sweeper = store.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    if let Store::Memory(m) = &*sweeper {
                        m.sweep();
                    }
                }
            });
            // `--guest FILE` is followed as it changes (`just run` serves what `just guest`
            // rebuilds); the built-in guest cannot change.
            if let Some(path) = &args.guest {
                guests::watch_file(guests.clone(), path.clone());
            }
        }
        Store::Redis(redis) => {
            registry = Some(Registry::new(redis));
            registry::follow(Registry::new(redis), redis, guests.clone());
        }
    }
    let sessions = Arc::new(Sessions::new(
        guests,
        store.clone(),
        config,
        HttpClient::new()?,
    ));
    // Work no request asks for: callbacks from the outbox, timeouts that owe a callback.
    callbacks::deliver(store, sessions.http.clone(), sessions.callbacks_due.clone());
    timeouts::wake(sessions.clone());
    let drain = Arc::new(Drain::default());
    let state = Arc::new(AppState {
        sessions,
        requestors,
        jwt,
        sse: args.sse,
        registry,
        admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
        static_sessions,
        drain: drain.clone(),
    });
    tracing::info!(url = %args.app_url(), "apps reach this server at");
    listeners::serve(
        listeners(args, state)?,
        drain,
        Duration::from_secs(args.shutdown_grace),
    )
    .await
}

/// The listeners the flags ask for: one for everything, or the app endpoints on
/// `--client-port` apart from the requestor API.
fn listeners(args: &Args, state: Arc<AppState>) -> Result<Vec<Listener>> {
    let statics = args
        .static_path
        .as_deref()
        .map(|p| (p, args.static_prefix.as_str()));
    let main = SocketAddr::new(args.listen_addr, args.port);
    let ops_apart = args.ops_port != 0;
    let ops = ops_apart.then(|| Listener {
        addr: SocketAddr::new(args.listen_addr, args.ops_port),
        tls: None,
        router: http::router(state.clone(), Routes::Ops, true, "", None),
        what: "operations",
    });
    if args.client_port == 0 {
        return Ok([Listener {
            addr: main,
            tls: args.tls()?,
            router: http::router(state, Routes::All, ops_apart, &args.api_prefix, statics),
            what: "requestors and apps",
        }]
        .into_iter()
        .chain(ops)
        .collect());
    }
    let client = SocketAddr::new(
        args.client_listen_addr.unwrap_or(args.listen_addr),
        args.client_port,
    );
    Ok([
        Listener {
            addr: main,
            tls: args.tls()?,
            router: http::router(
                state.clone(),
                Routes::Requestor,
                ops_apart,
                &args.api_prefix,
                None,
            ),
            what: "requestors",
        },
        Listener {
            addr: client,
            tls: args.client_tls()?,
            router: http::router(state, Routes::App, ops_apart, &args.api_prefix, statics),
            what: "apps",
        },
    ]
    .into_iter()
    .chain(ops)
    .collect())
}

/// The guest to start with: in Redis mode the registry's active version (the local guest if
/// there is none yet, which then becomes it, or if the active one does not load here); in
/// memory mode the local guest. The local guest is the `--guest` file, else the built-in one.
async fn first_guest(
    args: &Args,
    host: &Arc<GuestHost>,
    config: &types::Config,
    store: &Store,
) -> Result<Guests> {
    let trust = Trust::parse(&args.guest_trusted_keys)?.map(Arc::new);
    // A guest that fails the signature check is refused (logs, metrics, `guest status`) and
    // the built-in guest, trusted as the binary is, serves instead.
    let mut refused = None;
    let built_in = || -> Result<(Vec<u8>, Runtime)> {
        let bytes = embedded::GUEST.to_vec();
        let runtime =
            tokio::task::block_in_place(|| host.load(&bytes, config)).context("built-in guest")?;
        Ok((bytes, runtime))
    };
    let local = |refused: &mut Option<(String, String)>| -> Result<(Vec<u8>, Runtime)> {
        let Some(path) = &args.guest else {
            return built_in();
        };
        let bytes = std::fs::read(path).with_context(|| format!("guest {}", path.display()))?;
        let hash = guest_hash(&bytes);
        let signature = guests::file_signature(path);
        if let Err(e) = guest_signing::check(trust.as_deref(), &hash, signature.as_deref()) {
            *refused = Some((hash, e));
            return built_in();
        }
        let runtime = tokio::task::block_in_place(|| host.load(&bytes, config))
            .with_context(|| format!("guest {}", path.display()))?;
        Ok((bytes, runtime))
    };
    let runtime = match store {
        Store::Memory(_) => local(&mut refused)?.1,
        Store::Redis(redis) => {
            let registry = Registry::new(redis);
            let active = match registry.active().await? {
                Some(hash) => registry.blob(&hash).await?.map(|b| (hash, b)),
                None => None,
            };
            let signature = match &active {
                Some((hash, _)) => registry.signature(hash).await?,
                None => None,
            };
            let loaded = active.map(|(hash, bytes)| {
                let checked = guest_signing::check(trust.as_deref(), &hash, signature.as_deref())
                    .map_err(|e| anyhow::anyhow!(e))
                    .and_then(|()| tokio::task::block_in_place(|| host.load(&bytes, config)));
                (hash, checked)
            });
            match loaded {
                Some((_, Ok(runtime))) => runtime,
                Some((hash, Err(e))) => {
                    refused = Some((hash, format!("{e:#}")));
                    local(&mut refused)?.1
                }
                None => {
                    let (bytes, runtime) = local(&mut refused)?;
                    registry.bootstrap(&bytes, &runtime).await?;
                    runtime
                }
            }
        }
    };
    tracing::info!(guest = %runtime.hash, read = ?runtime.schemas_read, written = runtime.schema_written, "guest loaded");
    let guests = Guests::new(host.clone(), config.clone(), runtime, trust);
    if let Some((hash, error)) = refused {
        // Shown in logs, metrics and `guest status`; this replica serves its local guest.
        guests.refuse(&hash, error);
    }
    Ok(guests)
}

/// `irma-server guest publish|rollback|status`.
async fn guest_command(args: &Args, action: &GuestAction) -> Result<()> {
    if let GuestAction::Sign { file, signing_key } = action {
        let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        let key = guest_signing::signing_key(signing_key)?;
        println!("{}", guest_signing::sign(&key, &guest_hash(&bytes)));
        return Ok(());
    }
    if let GuestAction::Keygen { file } = action {
        let public = guest_signing::keygen(file)?;
        println!("{public}");
        eprintln!(
            "private key in {}; start replicas with --guest-trusted-keys {public}",
            file.display()
        );
        return Ok(());
    }
    let StoreChoice::Redis(options) = args.store()? else {
        bail!(
            "guest versions are kept in Redis: use --store-type redis and the --redis-* flags (in memory mode, replace the --guest file)"
        );
    };
    let registry = Registry::new(&RedisStore::connect(&options).await?);
    let check = || -> Result<GuestCheck> {
        let config = guest_config(args)?;
        Ok(GuestCheck {
            host: GuestHost::new(Imports::empty(), 4, args.guest_cache())?,
            keep_ms: (config.max_session_lifetime_secs as i64
                + config.session_result_lifetime_secs as i64)
                * 1000,
            config,
            trust: Trust::parse(&args.guest_trusted_keys)?.map(Arc::new),
        })
    };
    match action {
        GuestAction::Publish { file, signing_key } => {
            let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
            let signature = match signing_key {
                Some(k) => Some(guest_signing::sign(
                    &guest_signing::signing_key(k)?,
                    &guest_hash(&bytes),
                )),
                None => None,
            };
            let hash = registry
                .publish(&check()?, &bytes, signature.as_deref())
                .await?;
            println!("published {hash}");
        }
        GuestAction::Keygen { .. } | GuestAction::Sign { .. } => unreachable!("handled above"),
        GuestAction::Rollback => {
            let hash = registry.rollback(&check()?).await?;
            println!("rolled back to {hash}");
        }
        GuestAction::Status => {
            println!(
                "{}",
                serde_json::to_string_pretty(&registry.status().await?)?
            );
        }
    }
    Ok(())
}

/// `irma-server session ...`: stored sessions, for operators.
async fn session_command(args: &Args, action: &SessionAction) -> Result<()> {
    let StoreChoice::Redis(options) = args.store()? else {
        bail!("sessions are shown from Redis: use --store-type redis and the --redis-* flags");
    };
    let store = RedisStore::connect(&options).await?;
    match action {
        SessionAction::Show { token } => {
            let mut loaded = store.load(Token::Requestor(token)).await?;
            if loaded.is_none() {
                loaded = store.load(Token::Client(token)).await?;
            }
            let Some(loaded) = loaded else {
                bail!("no session has this token (or it expired)");
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&irma_server::inspect::describe(&loaded)?)?
            );
        }
    }
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
