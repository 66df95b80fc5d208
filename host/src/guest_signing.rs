//! Signed guests. A guest decides whether a proof is VALID, so whoever can put a guest where
//! replicas pick it up (Redis, `/admin/guest`, the `--guest` file) could otherwise make every
//! replica accept anything. With `--guest-trusted-keys`, a replica runs a guest only if one of
//! those Ed25519 keys signed its hash; the guest built into the binary is trusted as the binary
//! is (so a rollback to it needs no signature).
//!
//! A signature is Ed25519 over `irma-server guest <sha256 hex>` (so a signature over anything
//! else never passes for a guest's), written in standard base64. Keys are 32 bytes in base64:
//! the signing key file holds the private seed, `--guest-trusted-keys` the public keys.
//! `irma-server guest keygen FILE` makes a pair.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// What is signed for a guest whose component hashes to `hash`.
fn message(hash: &str) -> Vec<u8> {
    format!("irma-server guest {hash}").into_bytes()
}

/// 32 bytes from base64 of either alphabet, padded or not.
fn key_bytes(text: &str) -> Result<[u8; 32]> {
    let t = text.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(t)
        .or_else(|_| URL_SAFE_NO_PAD.decode(t))
        .map_err(|_| anyhow!("not base64"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("a key has 32 bytes, this one {}", b.len()))
}

/// The public keys replicas trust (`--guest-trusted-keys`).
pub struct Trust {
    keys: Vec<VerifyingKey>,
    /// The hash of the guest built into this binary: trusted without a signature (a rollback
    /// to the version replicas started with needs none).
    built_in: String,
}

impl Trust {
    /// The keys given, or none at all (every guest runs, as before).
    pub fn parse(values: &[String]) -> Result<Option<Trust>> {
        let mut keys = Vec::new();
        for v in values.iter().filter(|v| !v.trim().is_empty()) {
            let bytes = key_bytes(v).with_context(|| format!("--guest-trusted-keys {v}"))?;
            keys.push(
                VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| anyhow!("--guest-trusted-keys {v}: not an Ed25519 key"))?,
            );
        }
        Ok((!keys.is_empty()).then(|| Trust {
            keys,
            built_in: crate::runtime::guest_hash(crate::embedded::GUEST),
        }))
    }

    /// Whether `signature` (base64) is one of the trusted keys' over the guest `hash`; if not,
    /// why, for logs, metrics and `guest status`.
    pub fn check(&self, hash: &str, signature: Option<&str>) -> Result<(), String> {
        if hash == self.built_in {
            return Ok(());
        }
        let Some(signature) = signature.map(str::trim).filter(|s| !s.is_empty()) else {
            return Err("unsigned, and --guest-trusted-keys requires a signature".into());
        };
        let sig = STANDARD
            .decode(signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or("malformed signature")?;
        let msg = message(hash);
        if self.keys.iter().any(|k| k.verify(&msg, &sig).is_ok()) {
            Ok(())
        } else {
            Err("signed by no trusted key (--guest-trusted-keys)".into())
        }
    }
}

/// Checks against `trust`, if there is one.
pub fn check(trust: Option<&Trust>, hash: &str, signature: Option<&str>) -> Result<(), String> {
    trust.map_or(Ok(()), |t| t.check(hash, signature))
}

/// The signing key in `path` (its base64 seed).
pub fn signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("guest signing key {}", path.display()))?;
    let seed = key_bytes(&text).with_context(|| format!("guest signing key {}", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signature (base64) of the guest whose component hashes to `hash`.
pub fn sign(key: &SigningKey, hash: &str) -> String {
    STANDARD.encode(key.sign(&message(hash)).to_bytes())
}

/// Makes a key pair: the private seed into a new file `path` (readable by its owner only);
/// returns the public key for `--guest-trusted-keys`.
pub fn keygen(path: &Path) -> Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow!("randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{} (it must not exist yet)", path.display()))?;
    writeln!(f, "{}", STANDARD.encode(seed))?;
    Ok(STANDARD.encode(key.verifying_key().to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_keys_signature_over_that_guests_hash_passes() {
        let dir = tempfile_dir();
        let public = keygen(&dir.join("k")).unwrap();
        let key = signing_key(&dir.join("k")).unwrap();
        assert!(keygen(&dir.join("k")).is_err(), "never overwrites a key");
        let trust = Trust::parse(&[public]).unwrap().unwrap();
        let sig = sign(&key, "abc");
        assert_eq!(trust.check("abc", Some(&sig)), Ok(()));
        assert!(
            trust
                .check("abd", Some(&sig))
                .unwrap_err()
                .contains("no trusted key")
        );
        assert!(trust.check("abc", None).unwrap_err().contains("unsigned"));
        assert!(
            trust
                .check("abc", Some("!!"))
                .unwrap_err()
                .contains("malformed")
        );
        let other = SigningKey::from_bytes(&[7; 32]);
        assert!(trust.check("abc", Some(&sign(&other, "abc"))).is_err());
        assert!(Trust::parse(&[String::new()]).unwrap().is_none());
        assert!(Trust::parse(&["AAAA".into()]).is_err());
        assert_eq!(
            check(None, "abc", None),
            Ok(()),
            "no trusted keys: as before"
        );
        let built_in = crate::runtime::guest_hash(crate::embedded::GUEST);
        assert_eq!(trust.check(&built_in, None), Ok(()), "the built-in guest");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).unwrap();
        let d = std::env::temp_dir().join(format!(
            "irma-keys-{}",
            STANDARD_NO_PAD.encode(b).replace('/', "_")
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
