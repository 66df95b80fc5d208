//! The guest component built into the binary (by `build.rs`), so that `irma-server` needs no
//! file beside it: it serves this guest unless `--guest FILE` names another.

/// The `irma-guest` component this binary was built with.
pub const GUEST: &[u8] = include_bytes!(env!("IRMA_EMBEDDED_GUEST"));
