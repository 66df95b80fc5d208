# The stateless IRMA server: `just run` starts it, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Build and start the server on 127.0.0.1:8088 (memory store, the project's demo scheme).
run:
    @echo "irma-server does not serve sessions yet: the server is the next issue."
    @echo "What works today is the Idemix crate: 'just test' and 'just bench'."

# Run every test: the Idemix crate natively, and a build of it for the guest target.
test:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cargo build --release -p irma-idemix --target wasm32-wasip2
    cargo test --release --workspace

# Benchmarks: criterion natively, then the same workload natively and under wasmtime, in one run.
bench:
    cargo bench -p irma-idemix --features workload --bench idemix
    cargo build --release -p irma-idemix --features workload --example idemix_bench --target wasm32-wasip2
    cargo bench -p irma-server --bench idemix_wasm

# Formatting and lints, as CI wants them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Regenerate the demo scheme with fresh keys (host/demo). Old credentials stop verifying.
demo-scheme:
    rm -rf host/demo
    cargo run --release -p irma-idemix --bin irma-demo-scheme -- host/demo/irma_configuration host/demo/privatekeys

# Fuzz the message decoders and verifiers for a while (needs cargo-fuzz; not part of CI).
fuzz seconds="300":
    cargo install cargo-fuzz --locked 2>/dev/null || true
    mkdir -p guest/idemix/fuzz/corpus/verify_messages
    # Seeds: the app's recorded POST bodies (read from ../shared, never copied into the repo).
    python3 -c 'import json,glob,hashlib; [open("guest/idemix/fuzz/corpus/verify_messages/"+hashlib.sha1(b).hexdigest(),"wb").write(b) for f in glob.glob("../shared/testdata/transcripts/*.json") if not f.endswith("index.json") for e in json.load(open(f))["exchanges"] if e["request"]["method"]=="POST" and e["request"]["path"].startswith("/irma/") for b in [e["request"]["body"].encode()]]'
    cd guest/idemix && RUSTC_BOOTSTRAP=1 cargo fuzz run verify_messages -- -max_total_time={{seconds}} -max_len=8192
