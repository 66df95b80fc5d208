//! Generates the project's demo scheme with fresh keys:
//! `irma-demo-scheme <schemes-dir> <privkeys-dir>`.
//!
//! Native only (it seeds from the operating system's entropy).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, schemes, privkeys] = args.as_slice() else {
        eprintln!("usage: irma-demo-scheme <schemes-dir> <privkeys-dir>");
        std::process::exit(2);
    };
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut seed)?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let expiry = now + 10 * 365 * 86400;
    irma_idemix::keygen::write_demo_scheme(
        &PathBuf::from(schemes),
        &PathBuf::from(privkeys),
        now,
        expiry,
        &mut rng,
    )?;
    println!(
        "wrote scheme {} to {schemes}, private keys to {privkeys}",
        irma_idemix::keygen::DEMO_SCHEME
    );
    Ok(())
}
