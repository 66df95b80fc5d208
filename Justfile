# The stateless IRMA server: `just run` starts it, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Cargo's target directory (CARGO_TARGET_DIR is honoured, as cargo does).
target := env("CARGO_TARGET_DIR", "target")
# Where the guest is built, by `just guest` and by the server's build script (which embeds it).
guest_dir := target / "guest"
guest_build := guest_dir / "wasm32-wasip2/release/irma_guest.wasm"
# The guest `just guest` delivers and `just run` follows: only `just guest` writes it, so the
# test builds of the guest never reach a running `just run`.
guest_wasm := guest_dir / "irma_guest.wasm"
# Test builds of the guest (`just guest-variants`).
variants_dir := target / "guest-variants"

# Build the guest component (wasm32-wasip2) that the server runs.
guest:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cargo build --release --locked -p irma-guest --target wasm32-wasip2 --target-dir {{guest_dir}}
    cmp -s {{guest_build}} {{guest_wasm}} || { cp {{guest_build}} {{guest_wasm}}.new && mv {{guest_wasm}}.new {{guest_wasm}}; }

# It serves the guest `just guest` builds, and swaps in every rebuild without a restart.
# Build and start the server on 127.0.0.1:8088 (memory store, the project's demo scheme).
run: guest
    cargo build --release --locked -p irma-server
    @echo "Start a session from another terminal, for example:"
    @echo "  curl -s -H 'Content-Type: application/json' http://127.0.0.1:8088/session -d '{\"@context\":\"https://irma.app/ld/request/disclosure/v2\",\"disclose\":[[[\"stateless-demo.University.studentCard.studentID\"]]]}'"
    {{target}}/release/irma-server -l 127.0.0.1 -p 8088 --no-auth -s host/demo/irma_configuration -k host/demo/privatekeys --guest {{guest_wasm}}

# Against a running `just run`: requestor and app through issuance, disclosure and a signature.
demo url="http://127.0.0.1:8088":
    cargo run --release --locked -q -p irma-tests --bin irma-demo -- {{url}}

# Unit and property tests, the recorded app sessions, and the real binary driven over HTTP by
# the test wallet and the npm clients. One build: the server binary the tests start is the one
# `cargo test` builds (with the guest built into it), so nothing is compiled twice.
# Run every test.
test: prerequisites
    cd tests/clients && (test -d node_modules || npm ci --no-audit --no-fund)
    cargo test --release --locked --workspace --no-run
    just guest-variants
    cargo test --release --locked --workspace
    @test -d ../shared/testdata || echo "just test: skipped the tests that read the real app's recordings and the irma-demo scheme (idemix transcripts and bad_input, two roundtrips, one session, a signature transition, the key cache): ../shared/testdata is not beside this clone"

# Says what a fresh machine lacks for `just test`, and how to get it.
prerequisites:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || missing+=("rustup target add wasm32-wasip2")
    pkgs=""
    for tool in redis-server:redis-server nginx:nginx-light openssl:openssl node:nodejs npm:npm promtool:prometheus; do
      command -v "${tool%%:*}" >/dev/null || pkgs="$pkgs ${tool##*:}"
    done
    # The irma crate (a third-party requestor client the tests use) links OpenSSL.
    { command -v pkg-config >/dev/null && pkg-config --exists openssl; } || pkgs="$pkgs pkg-config libssl-dev"
    [ -z "$pkgs" ] || missing+=("apt-get install -y$pkgs")
    if [ ${#missing[@]} -gt 0 ]; then
      echo "just test needs first:" >&2
      printf '  %s\n' "${missing[@]}" >&2
      echo "(or run .ci/run, which installs all of it)" >&2
      exit 1
    fi

# Their own target directory: a build of them must never be what the server's build script
# finds where the real guest is built (it embeds what it finds).
# Guest builds the tests swap in and refuse: chaos, next-schema (a migration), broken-self-check.
guest-variants:
    for f in chaos next-schema broken-self-check; do \
      cargo build --release --locked -q -p irma-guest --target wasm32-wasip2 --features $f --target-dir {{variants_dir}} && \
      cp {{variants_dir}}/wasm32-wasip2/release/irma_guest.wasm {{variants_dir}}/irma_guest_${f%-self-check}.wasm; \
    done

# Hot swap in Redis mode, with the Redis flags in IRMASERVER_* variables, e.g.
# IRMASERVER_STORE_TYPE=redis IRMASERVER_REDIS_ADDR=127.0.0.1:6379 IRMASERVER_REDIS_PW=...
# Make a guest every replica's active version (checked first).
guest-publish file=guest_wasm:
    cargo build --release -p irma-server
    {{target}}/release/irma-server guest publish {{file}}

# Every replica back to the previous guest version, if that is safe.
guest-rollback:
    {{target}}/release/irma-server guest rollback

# The active guest version, its history, and what every replica runs.
guest-status:
    {{target}}/release/irma-server guest status

# Benchmarks: criterion natively, then the same workload natively and under wasmtime, in one run.
bench:
    cargo bench -p irma-idemix --features workload --bench idemix
    cargo run --release -p irma-idemix --features workload --example ct_spread
    cargo build --release -p irma-idemix --features workload --example idemix_bench --target wasm32-wasip2
    cargo bench -p irma-server --bench idemix_wasm
    cargo bench -p irma-server --bench guest_overhead
    cargo build --release -p irma-server -p irma-tests
    tests/bench/stateless.sh 10 64
    {{target}}/release/failover-soak 20

# Redis Sentinel, kill-during-load: `rounds` failovers of the master under load, sessions in
# flight; prints recovery times, failed requests, lost sessions (`--accept-risk`: no WAIT).
failover-soak rounds="20" *flags="":
    cargo build --release --locked -p irma-server -p irma-tests
    {{target}}/release/failover-soak {{rounds}} {{flags}}

# Formatting and lints, as CI wants them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --locked --workspace --all-targets --all-features -- -D warnings

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
