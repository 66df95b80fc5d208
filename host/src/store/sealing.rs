//! Encryption at rest for Redis (`--redis-encryption-key-file`): what holds attribute values,
//! nonces or requests is sealed with AES-256-GCM before it leaves the process.
//!
//! A sealed value is `MAGIC | key id (8) | nonce (12) | ciphertext | tag (16)`. The Redis key
//! name it is stored under is the associated data, so a value copied to another session's key
//! (or an outbox entry copied to another delivery) does not open. The key id is the first 8
//! bytes of the key's SHA-256, so a value sealed with a key this replica does not have is
//! recognised as such (and never overwritten: it cannot be loaded, so no transition runs).
//!
//! Keys rotate by prepending a new line to the key file and restarting replicas one by one:
//! the first key seals, every key opens. Nonces are random; one key should seal fewer than
//! 2^32 values (billions of session writes), so rotate well before that.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// The first bytes of every sealed value. Records and outbox entries are JSON, which never
/// starts with a NUL byte, so a plain value is never mistaken for a sealed one.
const MAGIC: &[u8; 4] = b"\0SL1";
const ID_LEN: usize = 8;
const HEADER: usize = MAGIC.len() + ID_LEN + NONCE_LEN;

/// The keys of one replica: the first seals, all open.
pub struct Sealer {
    keys: Vec<([u8; ID_LEN], LessSafeKey)>,
}

/// Why a value read from Redis cannot be used. Each says what to do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unsealable {
    #[error("sealed with key {0}, which is not in --redis-encryption-key-file")]
    UnknownKey(String),
    #[error("sealed value does not open (tampered with, or moved from another key)")]
    Forged,
    #[error("value is not sealed, but --redis-encryption-key-file is set")]
    Plain,
    #[error("value is sealed, but --redis-encryption-key-file is not set")]
    NoKeys,
}

/// The 32-byte keys of a key file: one base64 key per line (standard or URL alphabet, padded
/// or not); blank lines and lines starting with `#` are skipped.
pub fn parse_key_file(text: &str) -> anyhow::Result<Vec<[u8; 32]>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let unpadded = line.trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(unpadded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
            .map_err(|_| anyhow::anyhow!("line {}: not base64", i + 1))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!("line {}: a key has 32 bytes, this one {}", i + 1, b.len())
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        anyhow::bail!("no key in it (one base64 32-byte key per line)");
    }
    Ok(keys)
}

/// A key's name in logs and errors: the hex of its id, which reveals nothing of the key.
pub fn key_name(key: &[u8; 32]) -> String {
    hex(&key_id(key))
}

fn key_id(key: &[u8; 32]) -> [u8; ID_LEN] {
    let digest = Sha256::digest(key);
    digest[..ID_LEN].try_into().expect("8 bytes")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sealer {
    pub fn new(keys: &[[u8; 32]]) -> Sealer {
        assert!(!keys.is_empty(), "at least one key");
        Sealer {
            keys: keys
                .iter()
                .map(|k| {
                    let unbound = UnboundKey::new(&AES_256_GCM, k).expect("32-byte key");
                    (key_id(k), LessSafeKey::new(unbound))
                })
                .collect(),
        }
    }

    /// `plain` sealed for the Redis key `name`, with the first key.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).expect("the system's randomness");
        let mut out = Vec::with_capacity(HEADER + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(HEADER);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut body,
        )
        .expect("sealing cannot fail for these sizes");
        out.append(&mut body);
        out
    }

    /// The plain value of `sealed`, read from the Redis key `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, Unsealable> {
        if !is_sealed(sealed) {
            return Err(Unsealable::Plain);
        }
        if sealed.len() < HEADER + AES_256_GCM.tag_len() {
            return Err(Unsealable::Forged);
        }
        let id = &sealed[MAGIC.len()..MAGIC.len() + ID_LEN];
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == id) else {
            return Err(Unsealable::UnknownKey(hex(id)));
        };
        let nonce: [u8; NONCE_LEN] = sealed[MAGIC.len() + ID_LEN..HEADER]
            .try_into()
            .expect("12 bytes");
        let mut body = sealed[HEADER..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut body,
            )
            .map_err(|_| Unsealable::Forged)?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }
}

/// Whether a value read from Redis is sealed (by any key).
pub fn is_sealed(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

/// Seals with `sealer`, or leaves the value plain without one.
pub fn seal(sealer: Option<&Sealer>, name: &str, plain: Vec<u8>) -> Vec<u8> {
    match sealer {
        Some(s) => s.seal(name, &plain),
        None => plain,
    }
}

/// Opens with `sealer`; without one, a plain value is taken as it is and a sealed one refused.
pub fn open(sealer: Option<&Sealer>, name: &str, value: Vec<u8>) -> Result<Vec<u8>, Unsealable> {
    match sealer {
        Some(s) => s.open(name, &value),
        None if is_sealed(&value) => Err(Unsealable::NoKeys),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; 32] = [1; 32];
    const K2: [u8; 32] = [2; 32];

    #[test]
    fn a_sealed_value_opens_only_under_its_own_name_and_with_its_key() {
        let one = Sealer::new(&[K1]);
        let sealed = one.seal("session:abc", b"{\"secret\":1}");
        assert!(is_sealed(&sealed));
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "ciphertext shows nothing"
        );
        assert_eq!(one.open("session:abc", &sealed).unwrap(), b"{\"secret\":1}");
        assert_eq!(
            one.open("session:xyz", &sealed),
            Err(Unsealable::Forged),
            "moved to another key"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(one.open("session:abc", &flipped), Err(Unsealable::Forged));
        assert_eq!(
            one.open("session:abc", &sealed[..HEADER + 3]),
            Err(Unsealable::Forged)
        );
        assert_ne!(
            one.seal("session:abc", b"x"),
            one.seal("session:abc", b"x"),
            "fresh nonces"
        );

        let other = Sealer::new(&[K2]);
        assert_eq!(
            other.open("session:abc", &sealed),
            Err(Unsealable::UnknownKey(key_name(&K1)))
        );
        assert_eq!(other.open("session:abc", b"{}"), Err(Unsealable::Plain));
        assert_eq!(
            open(None, "session:abc", sealed.clone()),
            Err(Unsealable::NoKeys)
        );
        assert_eq!(open(None, "session:abc", b"{}".to_vec()).unwrap(), b"{}");
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = Sealer::new(&[K1]).seal("k", b"old");
        let rotated = Sealer::new(&[K2, K1]);
        assert_eq!(rotated.open("k", &old).unwrap(), b"old");
        let new = rotated.seal("k", b"new");
        assert_eq!(new[4..12], key_id(&K2));
        assert_eq!(Sealer::new(&[K2]).open("k", &new).unwrap(), b"new");
    }

    #[test]
    fn key_files_take_base64_of_either_alphabet_padded_or_not() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let k: [u8; 32] = std::array::from_fn(|i| (i * 37 + 250) as u8);
        let text = format!(
            "# newest first\n{}\n\n  {}  \n",
            STANDARD.encode(k),
            URL_SAFE_NO_PAD.encode(K2)
        );
        assert_eq!(parse_key_file(&text).unwrap(), vec![k, K2]);
        for (bad, why) in [
            ("", "no key"),
            ("# only a comment\n", "no key"),
            ("not base64!\n", "line 1: not base64"),
            ("AAAA\n", "32 bytes, this one 3"),
        ] {
            let e = parse_key_file(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
