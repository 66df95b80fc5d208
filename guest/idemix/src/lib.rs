//! Idemix, the anonymous-credential cryptography of IRMA/Yivi, byte-compatible with gabi and
//! irmago v0.13.3 (see `shared/spec/idemix.md`). It builds natively and for `wasm32-wasip2`, so
//! the session guest, native tests and benchmarks all use the same code.
//!
//! Map of the crate, from the bottom up:
//! - [`bigint`]: the only module that knows the big-integer backend; multi-exponentiation seam.
//! - [`fixed_base`]: exponentiation of a base known in advance from precomputed powers.
//! - [`params`]: bit lengths per key size. [`hash`]: the DER encodings behind every challenge.
//! - [`bigjson`]: gabi's JSON form of big integers.
//! - [`ct`]: constant-time arithmetic with an issuer's private key (RSA-CRT, `e^-1 mod p'q'`).
//! - [`keys`], [`scheme`]: issuer keys and scheme folders as on disk, signature-checked.
//! - [`attributes`]: attribute encoding and the metadata attribute.
//! - [`proofs`]: ProofD, ProofU, ProofS and verifying a proof list against one challenge.
//! - [`disclosure`]: verifying disclosures and matching a condiscon request.
//! - [`signature`]: attribute-based signatures and Atum timestamps.
//! - [`issuance`]: checking commitments and CL-signing with the issuer's private key.
//! - [`holder`]: the app's side, used by tests as a wallet.
//! - `keygen` (`std`): issuer key pairs and signed demo schemes of our own.
//!
//! Nothing here reads a clock or an entropy source by itself: `now` and a random number
//! generator are parameters, so a guest can take both from its host and tests pin them.
//!
//! Without the `std` feature (on by default) the crate is `no_std` with `alloc`, as the guest
//! builds it: no files (scheme folders and keys come from the host), no key generation.

#![cfg_attr(not(feature = "std"), no_std)]

#[macro_use]
extern crate alloc;

pub mod attributes;
pub mod bigint;
pub mod bigjson;
pub mod ct;
pub mod disclosure;
mod error;
pub mod fixed_base;
pub mod hash;
pub mod holder;
pub mod issuance;
#[cfg(feature = "std")]
pub mod keygen;
pub mod keys;
pub mod params;
pub mod proofs;
pub mod scheme;
pub mod signature;
#[cfg(feature = "workload")]
pub mod workload;
mod xml;

pub use disclosure::{ConDisCon, ProofStatus, Verdict};
pub use error::{Error, Result};
pub use scheme::{Configuration, LoadOptions};
