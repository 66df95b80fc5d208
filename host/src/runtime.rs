//! The wasmtime side: one [`Engine`] and linker for the process ([`GuestHost`]), each guest
//! version compiled once (cached on disk by its SHA-256), checked and pre-instantiated
//! ([`Runtime`]), and a fresh [`Store`] per call with a memory cap and an epoch deadline, so a
//! trapping, looping or hoarding guest costs one request and nothing more.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::guest_exports::{Export, Signature};
use crate::jwt::JwtKey;
use crate::requestors::Requestors;
use crate::schemes::KeyCache;
use crate::slots::{Slot, Slots};

wasmtime::component::bindgen!({ world: "irma-session", path: "../wit" });

pub use exports::irma::session::session::Guest as _GuestExports;
pub use irma::session::keys;
pub use irma::session::requestors as requestor_imports;
pub use irma::session::types;

/// How often the epoch advances; a call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Ticks a single guest call may run (2 s: issuance with 2048-bit keys takes ~30 ms).
pub const CALL_DEADLINE_TICKS: u64 = 200;
/// Instances the pool keeps beyond `--guest-concurrency`, for the checks of candidate guests.
const CHECK_INSTANCES: u32 = 4;
/// Linear memory one guest instance may grow to.
pub const MEMORY_LIMIT: usize = 64 << 20;
/// Bytes of each pooled memory kept resident (and zeroed) between instances.
pub const KEEP_RESIDENT: usize = 2 << 20;

/// What the host answers to the guest's imports: scheme facts and issuer keys, requestor
/// permissions, and JWT signing.
#[derive(Clone)]
pub struct Imports {
    pub keys: Arc<KeyCache>,
    pub requestors: Arc<Requestors>,
    pub jwt: Option<Arc<JwtKey>>,
}

impl Imports {
    /// No keys, no requestors, no JWT key: tools that only check guests.
    pub fn empty() -> Imports {
        Imports {
            keys: Arc::new(KeyCache::default()),
            requestors: Arc::new(Requestors::anonymous(Default::default())),
            jwt: None,
        }
    }
}

/// Per-call host state.
pub struct State {
    /// Built on the guest's first WASI call, if it makes one: most calls make none, and
    /// building it (seeding its random generators) cost a tenth of a status poll's overhead.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: StoreLimits,
    imports: Imports,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            // Our guest imports no WASI (it is `no_std`), but a guest built with Rust's std
            // (an earlier release, another build) imports it for std's sake: it gets no
            // files, no sockets, no environment. Clock and randomness come through `context`.
            ctx: self
                .wasi
                .get_or_insert_with(|| WasiCtxBuilder::new().build()),
            table: &mut self.table,
        }
    }
}

impl keys::Host for State {
    fn get_credential_type(&mut self, id: String) -> Option<keys::CredentialType> {
        self.imports.keys.credential_type(&id)
    }
    fn find_credential_type(&mut self, hash: Vec<u8>) -> Option<String> {
        self.imports.keys.credential_type_by_hash(&hash)
    }
    fn get_public_key(&mut self, issuer: String, counter: u32) -> Option<keys::PublicKey> {
        self.imports.keys.public_key(&issuer, counter)
    }
    fn get_latest_private_key(&mut self, issuer: String) -> Option<keys::PrivateKey> {
        self.imports.keys.latest_private_key(&issuer)
    }
    fn get_scheme(&mut self, id: String) -> Option<keys::Scheme> {
        self.imports.keys.scheme(&id)
    }
    fn issuer_sign(
        &mut self,
        issuer: String,
        counter: u32,
        q: Vec<u8>,
        e: Vec<u8>,
        n2: Vec<u8>,
    ) -> Option<keys::ClSigning> {
        self.imports.keys.sign(&issuer, counter, &q, &e, &n2)
    }
}

impl requestor_imports::Host for State {
    fn get_permissions(&mut self, name: String) -> requestor_imports::Permissions {
        let l = self.imports.requestors.permissions(&name);
        requestor_imports::Permissions {
            disclose: l.disclose,
            sign: l.sign,
            issue: l.issue,
            hosts: l.hosts,
        }
    }

    fn sign_jwt(&mut self, claims: String) -> Option<String> {
        let key = self.imports.jwt.as_ref()?;
        key.sign(&claims)
            .map_err(|e| tracing::error!("cannot sign a JWT: {e:#}"))
            .ok()
    }
}

impl irma::session::arith::Host for State {
    /// Native multi-exponentiation (see [`crate::arith`]).
    fn multi_exp(&mut self, modulus: Vec<u8>, bases: Vec<Vec<u8>>, exps: Vec<Vec<u8>>) -> Vec<u8> {
        crate::arith::multi_exp(&self.imports.keys.fixed_bases, &modulus, &bases, &exps)
    }
}

impl types::Host for State {}

/// What loads guests: the process's engine (with its epoch ticker and instance pool), the
/// linker of the host's imports, what those imports answer (shared by every guest), and where
/// compiled guests are kept.
pub struct GuestHost {
    engine: Engine,
    /// The instance pool's slots for calls, shared by every guest version.
    slots: Arc<Slots>,
    linker: Linker<State>,
    imports: Imports,
    cache_dir: Option<PathBuf>,
}

/// SHA-256 of a component, hex: its identity everywhere (registry, cache, status, metrics).
pub fn guest_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl GuestHost {
    /// `concurrency` sizes the instance pool; compiled guests are kept in `cache_dir`.
    pub fn new(
        imports: Imports,
        concurrency: u32,
        cache_dir: Option<PathBuf>,
    ) -> Result<Arc<GuestHost>> {
        // Calls take slots; the checks of a candidate guest (schemas, self-check) run beside
        // them, one activation at a time, in instances of their own.
        let engine = engine(concurrency.max(1) + CHECK_INSTANCES)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        // WASI for guests built with Rust's std (earlier releases among them, which a rollback
        // may bring back); ours imports none, and what a guest does not import costs nothing.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
        IrmaSession::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:?}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        if let Some(dir) = &cache_dir {
            create_private_dir(dir).with_context(|| format!("guest cache {}", dir.display()))?;
        }
        Ok(Arc::new(GuestHost {
            engine,
            slots: Slots::new(concurrency),
            linker,
            imports,
            cache_dir,
        }))
    }

    /// Compiles `bytes` (or takes the compilation cached under its hash), links it against
    /// the WIT world, and runs its checks: it must read the schema it writes, and pass its own
    /// self-check. Any failure refuses the guest, with the reason.
    pub fn load(&self, bytes: &[u8], config: &types::Config) -> Result<Runtime> {
        self.load_hashed(bytes, guest_hash(bytes), config)
    }

    /// [`GuestHost::load`] when the caller has hashed `bytes` already.
    pub fn load_hashed(
        &self,
        bytes: &[u8],
        hash: String,
        config: &types::Config,
    ) -> Result<Runtime> {
        let component = self.compile(bytes, &hash)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("guest does not fit the host: {e:?}"))?;
        // The exports, found and type-checked once (imports were, by `instantiate_pre`).
        let exports = {
            let mut store = new_store(&self.engine, &self.imports);
            let instance = pre
                .instantiate(&mut store)
                .map_err(|e| anyhow!("instantiating the guest: {e:?}"))?;
            Exports::check(&component, &mut store, &instance)?
        };
        let mut runtime = Runtime {
            engine: self.engine.clone(),
            slots: self.slots.clone(),
            pre,
            exports,
            imports: self.imports.clone(),
            hash,
            schemas_read: Vec::new(),
            schema_written: 0,
        };
        let (read, written) = runtime.schemas()?;
        if !read.contains(&written) {
            bail!("guest writes record schema {written} but cannot read it");
        }
        (runtime.schemas_read, runtime.schema_written) = (read, written);
        runtime.self_check(config)?;
        Ok(runtime)
    }

    fn compile(&self, bytes: &[u8], hash: &str) -> Result<Component> {
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{hash}.cwasm")));
        if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
            // SAFETY: the file is this host's own compilation of exactly these bytes (named by
            // their hash, in a directory only this user can write); wasmtime refuses it if it
            // was made by another engine version or configuration, and we then recompile.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(c) => {
                    tracing::info!(guest = %hash, "compiled guest taken from the cache");
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(guest = %hash, "cached compilation unusable ({e}); recompiling")
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| anyhow!("guest does not compile: {e:?}"))?;
        tracing::info!(guest = %hash, ms = started.elapsed().as_millis() as u64, "guest compiled");
        if let Some(path) = cached {
            // Written aside and renamed, so a reader never sees half a file.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let written = component
                .serialize()
                .map_err(|e| anyhow!("{e:?}"))
                .and_then(|b| std::fs::write(&tmp, b).map_err(Into::into))
                .and_then(|()| std::fs::rename(&tmp, &path).map_err(Into::into));
            if let Err(e) = written {
                tracing::warn!(guest = %hash, "cannot cache the compiled guest: {e}");
            }
        }
        Ok(component)
    }
}

/// Creates `dir` readable and writable by this user only (compiled code is loaded from it).
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.permissions().mode() & 0o022 != 0 {
        bail!("must be owned by this user and not writable by others");
    }
    Ok(())
}

/// A loaded, checked guest version, ready to be called.
pub struct Runtime {
    engine: Engine,
    slots: Arc<Slots>,
    pre: InstancePre<State>,
    exports: Exports,
    imports: Imports,
    /// SHA-256 of the component.
    pub hash: String,
    pub schemas_read: Vec<u32>,
    pub schema_written: u32,
}

impl Runtime {
    /// Loads the component `bytes` in a host of its own (benchmarks and tools), where anyone
    /// may disclose, sign and issue everything, as with a development server's `--no-auth`.
    pub fn load(bytes: &[u8], keys: Arc<KeyCache>, concurrency: u32) -> Result<Runtime> {
        let all = || vec!["*".to_owned()];
        let everything = crate::requestors::Lists {
            disclose: all(),
            sign: all(),
            issue: all(),
            ..Default::default()
        };
        let imports = Imports {
            keys,
            requestors: Arc::new(Requestors::anonymous(everything)),
            ..Imports::empty()
        };
        GuestHost::new(imports, concurrency, None)?.load(
            bytes,
            &types::Config {
                url: "http://127.0.0.1/irma/".into(),
                max_session_lifetime_secs: 900,
                session_result_lifetime_secs: 300,
                production: false,
                augment_client_return_url: false,
                allow_unsigned_callbacks: false,
                timestamp_keys: Vec::new(),
                jwt_key: false,
                jwt_issuer: "irmaserver".into(),
            },
        )
    }

    /// Runs the guest's self-check.
    fn self_check(&self, config: &types::Config) -> Result<()> {
        let (mut store, instance) = self.instance()?;
        let ctx = types::Context {
            now_ms: crate::session::now_ms(),
            random: vec![7; 64],
            config: config.clone(),
        };
        let (checked,) = self
            .exports
            .self_check
            .get(&mut store, &instance)?
            .call(&mut store, (&ctx,))
            .map_err(|e| anyhow!("guest trapped in its self-check: {e:?}"))?;
        checked.map_err(|e| anyhow!("guest failed its self-check: {e}"))
    }

    fn store(&self) -> Store<State> {
        new_store(&self.engine, &self.imports)
    }

    /// Times the phases of one call (store, instantiate, call), for the overhead benchmark.
    pub fn phases(
        &self,
        record: &[u8],
        event: &types::Event,
        ctx: &types::Context,
    ) -> [Duration; 3] {
        let t0 = std::time::Instant::now();
        let mut store = self.store();
        let t1 = std::time::Instant::now();
        let instance = self.pre.instantiate(&mut store).expect("instantiates");
        let t2 = std::time::Instant::now();
        let _ = self
            .exports
            .transition
            .get(&mut store, &instance)
            .and_then(|f| {
                f.call(&mut store, (record, event, ctx))
                    .map_err(|e| anyhow!("{e:?}"))
            });
        let t3 = std::time::Instant::now();
        drop(store);
        [t1 - t0, t2 - t1, t3 - t2]
    }

    fn instance(&self) -> Result<(Store<State>, Instance)> {
        let mut store = self.store();
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("instantiating the guest: {e:?}"))?;
        Ok((store, instance))
    }

    /// Which record schemas the guest reads, and which it writes (as the guest says).
    /// A slot of the instance pool for one call of [`Runtime::start`] or
    /// [`Runtime::transition`]: taken first, held until the call is over.
    pub async fn slot(&self) -> Slot {
        self.slots.take().await
    }

    fn schemas(&self) -> Result<(Vec<u32>, u32)> {
        let (mut store, instance) = self.instance()?;
        let (read,) = self
            .exports
            .schemas_read
            .get(&mut store, &instance)?
            .call(&mut store, ())
            .map_err(|e| anyhow!("guest trapped: {e:?}"))?;
        let (written,) = self
            .exports
            .schema_written
            .get(&mut store, &instance)?
            .call(&mut store, ())
            .map_err(|e| anyhow!("guest trapped: {e:?}"))?;
        Ok((read, written))
    }

    pub fn start(
        &self,
        body: &[u8],
        requestor: &str,
        ctx: &types::Context,
    ) -> Result<Result<types::Started, types::Response>> {
        self.call("start", &self.exports.start, (body, requestor, ctx))
            .map(|(r,)| r)
    }

    pub fn transition(
        &self,
        record: &[u8],
        event: &types::Event,
        ctx: &types::Context,
    ) -> Result<types::Outcome> {
        self.call(
            event_name(event),
            &self.exports.transition,
            (record, event, ctx),
        )
        .map(|(r,)| r)
    }

    /// One call of `export` in a fresh instance, timed for the metrics under `label`.
    fn call<'a, S: Signature>(
        &self,
        label: &'static str,
        export: &Export<S>,
        params: S::Params<'a>,
    ) -> Result<S::Results> {
        let started = std::time::Instant::now();
        let (mut store, instance) = self.instance()?;
        let result = export.get(&mut store, &instance).and_then(|f| {
            f.call(&mut store, params)
                .map_err(|e| anyhow!("guest trapped: {e:?}"))
        });
        crate::metrics::guest_call(label, started.elapsed());
        result
    }
}

/// A fresh store for one call: the memory cap and the call's deadline (a WASI context only if
/// the guest asks for one).
fn new_store(engine: &Engine, imports: &Imports) -> Store<State> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(MEMORY_LIMIT)
        .instances(4)
        .build();
    let mut store = Store::new(
        engine,
        State {
            wasi: None,
            table: ResourceTable::new(),
            limits,
            imports: imports.clone(),
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(CALL_DEADLINE_TICKS);
    store
}

/// The exported session interface (bindgen's name for it, with the WIT package's version).
const SESSION_INTERFACE: &str = "irma:session/session@0.3.0";

/// The session interface's exports, as the host calls them.
struct Exports {
    schemas_read: Export<SchemasRead>,
    schema_written: Export<SchemaWritten>,
    self_check: Export<SelfCheck>,
    start: Export<Start>,
    transition: Export<Transition>,
}

impl Exports {
    /// Finds and type-checks every export, in `instance` of `component`.
    fn check(
        component: &Component,
        store: &mut Store<State>,
        instance: &Instance,
    ) -> Result<Exports> {
        let interface = component
            .get_export_index(None, SESSION_INTERFACE)
            .ok_or_else(|| anyhow!("guest does not export {SESSION_INTERFACE}"))?;
        Ok(Exports {
            schemas_read: Export::check(component, &interface, &mut *store, instance)?,
            schema_written: Export::check(component, &interface, &mut *store, instance)?,
            self_check: Export::check(component, &interface, &mut *store, instance)?,
            start: Export::check(component, &interface, &mut *store, instance)?,
            transition: Export::check(component, &interface, &mut *store, instance)?,
        })
    }
}

struct SchemasRead;
impl Signature for SchemasRead {
    const NAME: &'static str = "schemas-read";
    type Params<'a> = ();
    type Results = (Vec<u32>,);
}

struct SchemaWritten;
impl Signature for SchemaWritten {
    const NAME: &'static str = "schema-written";
    type Params<'a> = ();
    type Results = (u32,);
}

struct SelfCheck;
impl Signature for SelfCheck {
    const NAME: &'static str = "self-check";
    type Params<'a> = (&'a types::Context,);
    type Results = (Result<(), String>,);
}

struct Start;
impl Signature for Start {
    const NAME: &'static str = "start";
    type Params<'a> = (&'a [u8], &'a str, &'a types::Context);
    type Results = (Result<types::Started, types::Response>,);
}

struct Transition;
impl Signature for Transition {
    const NAME: &'static str = "transition";
    type Params<'a> = (&'a [u8], &'a types::Event, &'a types::Context);
    type Results = (types::Outcome,);
}

/// An event as metrics label it.
fn event_name(event: &types::Event) -> &'static str {
    use types::Event::*;
    match event {
        RequestorStatus => "requestor-status",
        RequestorResult => "requestor-result",
        RequestorResultJwt => "requestor-result-jwt",
        RequestorGetproof => "requestor-getproof",
        RequestorCancel => "requestor-cancel",
        AppConnect(_) => "app-connect",
        AppRequest(_) => "app-request",
        AppProofs(_) => "app-proofs",
        AppCommitments(_) => "app-commitments",
        AppCancel => "app-cancel",
        AppStatus => "app-status",
        FrontendStatus(_) => "frontend-status",
        FrontendOptions(_) => "frontend-options",
        FrontendPairingCompleted(_) => "frontend-pairing-completed",
        Tick => "tick",
        NextSessionAnswer(_) => "next-session-answer",
    }
}

/// The process's engine: Cranelift, epoch interruption, and a pooling allocator sized to the
/// expected concurrency (falling back, loudly, to on-demand allocation if the pool cannot be
/// reserved).
fn engine(concurrency: u32) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency * 4)
        .total_memories(concurrency * 4)
        .total_tables(concurrency * 4)
        .max_memory_size(MEMORY_LIMIT)
        // Keep a slot's first pages mapped between instances and zero them instead: a fresh
        // mapping costs a page fault per touched page, which dominated short calls.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        // Linux 6.7+: reset only the pages a call touched (PAGEMAP_SCAN) rather than zeroing
        // the whole kept region after every call; elsewhere the memset above.
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut pooled = config.clone();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(e) => Ok(e),
        Err(e) => {
            tracing::warn!(
                "pooling allocator unavailable ({e}); falling back to on-demand instance allocation"
            );
            Engine::new(&config).map_err(|e| anyhow!("{e:?}"))
        }
    }
}
