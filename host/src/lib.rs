//! irma-server: a drop-in replacement for the Go `irma server` whose session logic runs as a
//! WebAssembly component (the guest) inside this native host.
//!
//! The host does all I/O; the guest decides. One module per concern:
//! - [`config`]: the command line and `IRMASERVER_*` environment, as `irma server` has them.
//! - [`config_file`]: the configuration file beneath them.
//! - [`listeners`]: the main and client listeners, plain or TLS.
//! - [`schemes`]: scheme folders and issuer keys, answered to the guest's key lookups.
//! - [`requestors`]: requestor authentication (tokens, JWTs) and permissions.
//! - [`jwt`]: the server's JWT key, which signs results.
//! - [`runtime`]: the wasmtime engine, compiling and checking guests, limits, one `Store` per
//!   call.
//! - [`embedded`]: the guest built into the binary, served unless `--guest` names another.
//! - [`guests`]: hot swap: the active guest version, candidates checked before they serve.
//! - [`registry`]: guest versions in Redis: publish, rollback, every replica's state.
//! - [`store`]: where session records live: [`store::memory`] or [`store::redis`].
//! - [`session`]: the driver: load the record, call the guest, compare-and-swap, effects.
//! - [`http`]: the axum routers for requestors, apps and frontends.
//! - [`http_client`]: the server's own requests: next sessions, callbacks.
//! - [`callbacks`]: delivers the outbox of callbacks, once, with retries.
//! - [`timeouts`]: wakes sessions whose timeout owes a callback.
//! - [`inspect`]: a stored session as JSON (`irma-server session show`).

/// mimalloc instead of glibc malloc: per-request allocations are small and many, across
/// threads (see the README's benchmarks). Here rather than in `main.rs`, so that the benchmarks
/// and tests that link this crate measure the allocator the server runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod arith;
pub mod callbacks;
pub mod config;
pub mod config_file;
pub mod drain;
pub mod embedded;
pub mod guest_exports;
pub mod guest_signing;
pub mod guests;
pub mod http;
pub mod http_client;
pub mod inspect;
pub mod jwt;
pub mod listeners;
pub mod metrics;
pub mod registry;
pub mod requestors;
pub mod runtime;
pub mod schemes;
pub mod session;
pub mod slots;
pub mod store;
pub mod timeouts;
