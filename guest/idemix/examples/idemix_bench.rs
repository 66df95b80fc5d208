//! Prints the benchmark workload's medians (`name<TAB>median_us<TAB>multi_exp_us`). Built for
//! `wasm32-wasip2`, it is what the host's `idemix_wasm` benchmark runs under wasmtime.

fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(21);
    let ms = irma_idemix::workload::measure_all(iterations).expect("workload runs");
    print!("{}", irma_idemix::workload::report(&ms));
}
