//! Scheme folders and issuer private keys, loaded once at start-up and turned into the answers
//! to the guest's key lookups (the `keys` interface of the WIT world), and the issuer's
//! private-key steps, which the host runs for the guest (`issuer-sign`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use irma_idemix::bigint::{from_be, to_be};
use irma_idemix::{Configuration, LoadOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::runtime::keys;

/// Every lookup the guest can make, answered from memory.
#[derive(Default)]
pub struct KeyCache {
    credential_types: HashMap<String, keys::CredentialType>,
    by_hash: HashMap<[u8; 16], String>,
    public_keys: HashMap<(String, u32), keys::PublicKey>,
    /// Each issuer's latest private key, which the host signs with (its constant-time
    /// precomputation, built when the key loaded, kept for the life of the process); the guest
    /// learns only its counter and expiry.
    signing_keys: HashMap<String, Arc<irma_idemix::keys::PrivateKey>>,
    /// Every public key's `S`, for the `arith` import's precomputed powers.
    pub fixed_bases: crate::arith::FixedBases,
    schemes: HashMap<String, keys::Scheme>,
}

impl KeyCache {
    pub fn credential_type(&self, id: &str) -> Option<keys::CredentialType> {
        self.credential_types.get(id).cloned()
    }

    pub fn credential_type_by_hash(&self, hash: &[u8]) -> Option<String> {
        let hash: [u8; 16] = hash.try_into().ok()?;
        self.by_hash.get(&hash).cloned()
    }

    pub fn public_key(&self, issuer: &str, counter: u32) -> Option<keys::PublicKey> {
        self.public_keys.get(&(issuer.to_owned(), counter)).cloned()
    }

    pub fn latest_private_key(&self, issuer: &str) -> Option<keys::PrivateKey> {
        self.signing_keys.get(issuer).map(|sk| keys::PrivateKey {
            counter: sk.counter,
            expiry: sk.expiry,
        })
    }

    pub fn scheme(&self, id: &str) -> Option<keys::Scheme> {
        self.schemes.get(id).cloned()
    }

    /// `issuer-sign`: the private-key steps of issuing (constant time in the key and the
    /// secret exponents, `irma_idemix::ct`), with fresh randomness from the operating system.
    pub fn sign(
        &self,
        issuer: &str,
        counter: u32,
        q: &[u8],
        e: &[u8],
        n2: &[u8],
    ) -> Option<keys::ClSigning> {
        let sk = self
            .signing_keys
            .get(issuer)
            .filter(|k| k.counter == counter)?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).ok()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let (q, e, n2) = (from_be(q), from_be(e), from_be(n2));
        let s = irma_idemix::issuance::sign_with_key(sk, &q, &e, &n2, &mut rng)
            .map_err(|err| tracing::error!(issuer, counter, "cannot sign: {err}"))
            .ok()?;
        Some(keys::ClSigning {
            a: to_be(&s.a),
            c: to_be(&s.c),
            e_response: to_be(&s.e_response),
        })
    }

    /// Builds the cache from a loaded configuration.
    pub fn from_configuration(conf: &Configuration) -> KeyCache {
        let mut cache = KeyCache::default();
        for (id, s) in &conf.schemes {
            cache.schemes.insert(
                id.clone(),
                keys::Scheme {
                    id: id.clone(),
                    distributed: s.distributed,
                    timestamp_server: s.timestamp_server.clone(),
                },
            );
        }
        for (id, ct) in &conf.credential_types {
            cache
                .by_hash
                .insert(irma_idemix::attributes::type_hash(id), id.clone());
            cache.credential_types.insert(
                id.clone(),
                keys::CredentialType {
                    id: id.clone(),
                    attributes: ct
                        .attributes
                        .iter()
                        .map(|a| keys::AttributeType {
                            id: a.id.clone(),
                            optional: a.optional,
                            random_blind: a.random_blind,
                            revocation: a.revocation,
                        })
                        .collect(),
                    singleton: ct.singleton,
                    supports_revocation: ct.supports_revocation,
                },
            );
        }
        for pk in conf.public_keys() {
            cache.public_keys.insert(
                (pk.issuer.clone(), pk.counter),
                keys::PublicKey {
                    issuer: pk.issuer.clone(),
                    counter: pk.counter,
                    expiry: pk.expiry,
                    n: to_be(pk.n.value()),
                    z: to_be(&pk.z),
                    s: to_be(&pk.s),
                    r: pk.r.iter().map(to_be).collect(),
                },
            );
        }
        cache.fixed_bases =
            crate::arith::FixedBases::new(conf.public_keys().map(|pk| (pk.n.value(), &pk.s)));
        for issuer in conf.issuers_with_private_keys() {
            if let Ok(sk) = conf.latest_private_key(issuer) {
                cache.signing_keys.insert(issuer.to_owned(), sk.clone());
            }
        }
        cache
    }
}

/// Loads `--schemes-path` (signatures checked) and, if given, `--privkeys`.
pub fn load(schemes_path: &Path, privkeys: Option<&Path>) -> Result<Configuration> {
    let mut conf = Configuration::load(schemes_path, LoadOptions::default())
        .with_context(|| format!("loading schemes from {}", schemes_path.display()))?;
    if let Some(dir) = privkeys {
        conf.load_private_keys(dir)
            .with_context(|| format!("loading private keys from {}", dir.display()))?;
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_every_key_of_the_testdata_schemes() {
        let root =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
        // Without ../shared beside the project (`just test` says it skips this); CI has it.
        if !root.is_dir() && std::env::var_os("IRMA_TESTDATA_REQUIRED").is_none() {
            return;
        }
        let conf = load(
            &root.join("irma_configuration"),
            Some(&root.join("privatekeys")),
        )
        .unwrap();
        let cache = KeyCache::from_configuration(&conf);
        for counter in 0..=2 {
            assert_eq!(
                cache.public_key("irma-demo.RU", counter).unwrap().counter,
                counter
            );
        }
        assert!(cache.public_key("irma-demo.RU", 3).is_none());
        assert_eq!(cache.latest_private_key("irma-demo.RU").unwrap().counter, 2);
        assert_eq!(
            cache
                .latest_private_key("irma-demo.MijnOverheid")
                .unwrap()
                .counter,
            2
        );
        assert!(cache.latest_private_key("irma-demo.nobody").is_none());
        let hash = irma_idemix::attributes::type_hash("irma-demo.RU.studentCard");
        assert_eq!(
            cache.credential_type_by_hash(&hash).as_deref(),
            Some("irma-demo.RU.studentCard")
        );
        assert!(cache.scheme("test").unwrap().distributed);
        assert!(!cache.scheme("irma-demo").unwrap().distributed);
    }
}
