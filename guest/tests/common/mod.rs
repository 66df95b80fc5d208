//! What the guest's native tests share: the demo scheme and a context with the clock pinned.

use irma_guest::Config;
use irma_guest::permissions::AllowAll;
use irma_guest::session::Ctx;
use irma_idemix::{Configuration, LoadOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The project's demo scheme (`host/demo`), public keys only.
pub fn conf() -> Configuration {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../host/demo");
    Configuration::load(&root.join("irma_configuration"), LoadOptions::default()).unwrap()
}

/// A context at `now_ms`, its randomness seeded from that instant, every requestor allowed.
pub fn ctx<'a>(now_ms: i64, config: &'a Config, keys: &'a Configuration) -> Ctx<'a> {
    Ctx {
        now_ms,
        rng: ChaCha20Rng::seed_from_u64(now_ms as u64),
        config,
        keys,
        requestors: &AllowAll,
    }
}
