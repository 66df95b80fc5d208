//! The crate's error type. Proof *outcomes* (valid, invalid, expired, ...) are not errors: they
//! are [`crate::ProofStatus`] values. Errors are inputs we cannot even evaluate.

use alloc::string::String;

/// What went wrong, typed so that a server can map it to an IRMA error name.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Unparsable or structurally wrong input from a client (JSON, wrong proof types, ...).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// A scheme, issuer or key file that cannot be read or does not verify.
    #[error("configuration: {0}")]
    Configuration(String),
    /// A key whose modulus is not 1024, 2048 or 4096 bits.
    #[error("unknown key length {0}")]
    UnknownKeyLength(usize),
    #[error("unknown credential type {0}")]
    UnknownCredentialType(String),
    #[error("unknown public key {issuer}-{counter}")]
    UnknownPublicKey { issuer: String, counter: u32 },
    #[error("no private key for issuer {0}")]
    UnknownPrivateKey(String),
    /// A session request that cannot be served (bad attribute names, expired key, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A feature this implementation refuses (revocation, keyshare, range proofs).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Signing failed a self-check; nothing was sent to the client.
    #[error("issuance failed: {0}")]
    IssuanceFailed(String),
}

pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

pub(crate) fn config(msg: impl Into<String>) -> Error {
    Error::Configuration(msg.into())
}
