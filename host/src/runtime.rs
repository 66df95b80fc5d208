//! The wasmtime side: one [`Engine`] for the process, the guest component pre-instantiated once
//! ([`IrmaSessionPre`]), and a fresh [`Store`] per call with a memory cap and an epoch
//! deadline, so a trapping, looping or hoarding guest costs one request and nothing more.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::schemes::KeyCache;

wasmtime::component::bindgen!({ world: "irma-session", path: "../wit" });

pub use exports::irma::session::session::Guest as _GuestExports;
pub use irma::session::keys;
pub use irma::session::types;

/// How often the epoch advances; a call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Ticks a single guest call may run (2 s: issuance with 2048-bit keys takes ~30 ms).
pub const CALL_DEADLINE_TICKS: u64 = 200;
/// Linear memory one guest instance may grow to.
pub const MEMORY_LIMIT: usize = 64 << 20;
/// Bytes of each pooled memory kept resident (and zeroed) between instances.
pub const KEEP_RESIDENT: usize = 2 << 20;

/// Per-call host state.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    keys: Arc<KeyCache>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl keys::Host for State {
    fn get_credential_type(&mut self, id: String) -> Option<keys::CredentialType> {
        self.keys.credential_type(&id)
    }
    fn find_credential_type(&mut self, hash: Vec<u8>) -> Option<String> {
        self.keys.credential_type_by_hash(&hash)
    }
    fn get_public_key(&mut self, issuer: String, counter: u32) -> Option<keys::PublicKey> {
        self.keys.public_key(&issuer, counter)
    }
    fn get_latest_private_key(&mut self, issuer: String) -> Option<keys::PrivateKey> {
        self.keys.latest_private_key(&issuer)
    }
    fn get_scheme(&mut self, id: String) -> Option<keys::Scheme> {
        self.keys.scheme(&id)
    }
}

impl irma::session::arith::Host for State {
    /// Native multi-exponentiation; a malformed modulus (even, or at most 1) gives zero rather
    /// than a trap, and the guest's proof check then fails on its own.
    fn multi_exp(&mut self, modulus: Vec<u8>, bases: Vec<Vec<u8>>, exps: Vec<Vec<u8>>) -> Vec<u8> {
        use irma_idemix::bigint::{Int, Modulus, from_be, to_be};
        let Some(m) = Modulus::new(from_be(&modulus)) else {
            return Vec::new();
        };
        let bases: Vec<Int> = bases.iter().map(|b| from_be(b)).collect();
        let exps: Vec<Int> = exps.iter().map(|e| from_be(e)).collect();
        let br: Vec<&Int> = bases.iter().collect();
        let er: Vec<&Int> = exps.iter().take(br.len()).collect();
        let result = match (br.as_slice(), er.as_slice()) {
            ([b], [e]) => m.pow_local(b, e),
            _ => m.multi_exp_local(&br[..er.len()], &er),
        };
        to_be(&result)
    }
}

impl types::Host for State {}

/// A loaded guest, ready to be called.
pub struct Runtime {
    engine: Engine,
    pre: IrmaSessionPre<State>,
    keys: Arc<KeyCache>,
}

impl Runtime {
    /// Compiles the component at `path` and links it. `concurrency` sizes the instance pool.
    pub fn load(path: &Path, keys: Arc<KeyCache>, concurrency: u32) -> Result<Runtime> {
        let engine = engine(concurrency)?;
        let component = Component::from_file(&engine, path)
            .map_err(|e| anyhow!("loading guest {}: {e:?}", path.display()))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
        IrmaSession::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:?}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("guest does not fit the host: {e:?}"))?;
        let pre = IrmaSessionPre::new(pre)
            .map_err(|e| anyhow!("guest does not export irma:session: {e:?}"))?;
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
        Ok(Runtime { engine, pre, keys })
    }

    fn store(&self) -> Store<State> {
        // The guest gets WASI only because Rust's std links against it: no files, no
        // sockets, no environment. Clock and randomness come through `context`.
        let wasi = WasiCtxBuilder::new().build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(MEMORY_LIMIT)
            .instances(4)
            .build();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi,
                table: ResourceTable::new(),
                limits,
                keys: self.keys.clone(),
            },
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(CALL_DEADLINE_TICKS);
        store
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
        let g = self.pre.instantiate(&mut store).expect("instantiates");
        let t2 = std::time::Instant::now();
        let _ = g
            .irma_session_session()
            .call_transition(&mut store, record, event, ctx);
        let t3 = std::time::Instant::now();
        drop(store);
        [t1 - t0, t2 - t1, t3 - t2]
    }

    fn instance(&self) -> Result<(Store<State>, IrmaSession)> {
        let mut store = self.store();
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("instantiating the guest: {e:?}"))?;
        Ok((store, instance))
    }

    /// Which record schemas the guest reads, and which it writes.
    pub fn schemas(&self) -> Result<(Vec<u32>, u32)> {
        let (mut store, g) = self.instance()?;
        let s = g.irma_session_session();
        let read = s
            .call_schemas_read(&mut store)
            .map_err(|e| anyhow!("guest trapped: {e:?}"))?;
        let written = s
            .call_schema_written(&mut store)
            .map_err(|e| anyhow!("guest trapped: {e:?}"))?;
        Ok((read, written))
    }

    pub fn start(
        &self,
        body: &[u8],
        requestor: &str,
        ctx: &types::Context,
    ) -> Result<Result<types::Started, types::Response>> {
        let (mut store, g) = self.instance()?;
        g.irma_session_session()
            .call_start(&mut store, body, requestor, ctx)
            .map_err(|e| anyhow!("guest trapped: {e:?}"))
    }

    pub fn transition(
        &self,
        record: &[u8],
        event: &types::Event,
        ctx: &types::Context,
    ) -> Result<types::Outcome> {
        let (mut store, g) = self.instance()?;
        g.irma_session_session()
            .call_transition(&mut store, record, event, ctx)
            .map_err(|e| anyhow!("guest trapped: {e:?}"))
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
        .table_keep_resident(KEEP_RESIDENT);
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
