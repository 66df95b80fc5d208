//! The Idemix workload natively and as a `wasm32-wasip2` component under wasmtime, in one run,
//! with the share of each operation spent in multi-exponentiation: what importing a native
//! multi-exponentiation from the host would save the guest.
//!
//! Run by `just bench` after building the workload for wasm:
//! `cargo build --release -p irma-idemix --features workload --example idemix_bench --target wasm32-wasip2`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

const ITERATIONS: &str = "21";

/// Runs the workload component and returns its report.
fn run_wasm(path: &PathBuf) -> Result<String> {
    run_wasm_inner(path).map_err(|e| anyhow::anyhow!("running {}: {e:?}", path.display()))
}

fn run_wasm_inner(path: &PathBuf) -> wasmtime::Result<String> {
    let engine = Engine::new(&Config::new())?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let ctx = WasiCtxBuilder::new()
        .args(&["idemix_bench", ITERATIONS])
        .stdout(stdout.clone())
        .inherit_stderr()
        .build();
    let mut store = Store::new(
        &engine,
        State {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let command = Command::instantiate(&mut store, &component, &linker)?;
    if command.wasi_cli_run().call_run(&mut store)?.is_err() {
        wasmtime::bail!("workload failed");
    }
    drop(store);
    Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
}

/// `name -> (median us, multi-exp us)`.
fn parse(report: &str) -> BTreeMap<String, (f64, f64)> {
    report
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                (f.next()?.parse().ok()?, f.next()?.parse().ok()?),
            ))
        })
        .collect()
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = root.join("target/wasm32-wasip2/release/examples/idemix_bench.wasm");
    let native = irma_idemix::workload::measure_all(ITERATIONS.parse()?)?;
    let native = parse(&irma_idemix::workload::report(&native));
    let wasm = parse(&run_wasm(&wasm)?);
    println!(
        "| operation | native ms | wasm ms | wasm/native | in multi-exp (wasm) | wasm + native multi-exp ms |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, (n, n_mexp)) in &native {
        let Some((w, w_mexp)) = wasm.get(name) else {
            continue;
        };
        let projected = w - w_mexp + n_mexp;
        println!(
            "| {name} | {:.2} | {:.2} | {:.1}x | {:.0}% | {:.2} |",
            n / 1000.0,
            w / 1000.0,
            w / n,
            100.0 * w_mexp / w,
            projected / 1000.0
        );
    }
    Ok(())
}
