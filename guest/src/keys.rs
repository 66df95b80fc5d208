//! Key material, looked up on demand. In the component the lookups are WIT imports answered by
//! the host; natively (tests, benchmarks) a loaded [`Configuration`] answers them.

use alloc::string::String;
use irma_idemix::Configuration;
use irma_idemix::attributes::Metadata;
use irma_idemix::keys::{PrivateKey, PublicKey};
use irma_idemix::proofs::Proof;
use irma_idemix::scheme::{CredentialType, Scheme};

/// Where the guest gets scheme facts and keys from.
pub trait KeySource {
    fn credential_type(&self, id: &str) -> Option<CredentialType>;
    fn credential_type_by_hash(&self, hash: &[u8; 16]) -> Option<String>;
    fn public_key(&self, issuer: &str, counter: u32) -> Option<PublicKey>;
    fn latest_private_key(&self, issuer: &str) -> Option<PrivateKey>;
    fn scheme(&self, id: &str) -> Option<Scheme>;
}

impl KeySource for Configuration {
    fn credential_type(&self, id: &str) -> Option<CredentialType> {
        Configuration::credential_type(self, id).ok().cloned()
    }
    fn credential_type_by_hash(&self, hash: &[u8; 16]) -> Option<String> {
        Configuration::credential_type_by_hash(self, hash)
            .ok()
            .map(|c| c.id.clone())
    }
    fn public_key(&self, issuer: &str, counter: u32) -> Option<PublicKey> {
        Configuration::public_key(self, issuer, counter)
            .ok()
            .map(|k| (*k).clone())
    }
    fn latest_private_key(&self, issuer: &str) -> Option<PrivateKey> {
        Configuration::latest_private_key(self, issuer)
            .ok()
            .map(|k| (*k).clone())
    }
    fn scheme(&self, id: &str) -> Option<Scheme> {
        self.schemes.get(id).cloned()
    }
}

/// Builds the small [`Configuration`] one transition needs, fetching each item once.
pub struct Loader<'a> {
    src: &'a dyn KeySource,
    pub conf: Configuration,
}

impl<'a> Loader<'a> {
    pub fn new(src: &'a dyn KeySource) -> Loader<'a> {
        Loader {
            src,
            conf: Configuration::default(),
        }
    }

    /// Adds a credential type and its scheme; false if unknown.
    pub fn credential_type(&mut self, id: &str) -> bool {
        if self.conf.credential_types.contains_key(id) {
            return true;
        }
        let Some(ct) = self.src.credential_type(id) else {
            return false;
        };
        if !self.conf.schemes.contains_key(&ct.scheme)
            && let Some(s) = self.src.scheme(&ct.scheme)
        {
            self.conf.add_scheme(s);
        }
        self.conf.add_credential_type(ct);
        true
    }

    pub fn public_key(&mut self, issuer: &str, counter: u32) -> bool {
        if self.conf.public_key(issuer, counter).is_ok() {
            return true;
        }
        match self.src.public_key(issuer, counter) {
            Some(pk) => {
                self.conf.add_public_key(pk);
                true
            }
            None => false,
        }
    }

    /// Adds the issuer's latest private key and its public key; its counter, if any.
    pub fn latest_private_key(&mut self, issuer: &str) -> Option<u32> {
        if let Ok(sk) = self.conf.latest_private_key(issuer) {
            return Some(sk.counter);
        }
        let sk = self.src.latest_private_key(issuer)?;
        if !self.public_key(issuer, sk.counter) {
            return None;
        }
        let counter = sk.counter;
        self.conf.add_private_key(issuer, sk).ok()?;
        Some(counter)
    }

    /// Adds what verifying these proofs needs: for each disclosure proof the credential type
    /// named by its metadata and the public key. Unknown items are left out; verification then
    /// reports them.
    pub fn for_proofs(&mut self, proofs: &[Proof]) {
        for p in proofs.iter().filter_map(Proof::as_d) {
            let Some(meta) = p.a_disclosed.get(&1).and_then(|m| Metadata::from_int(m)) else {
                continue;
            };
            let Some(id) = self.src.credential_type_by_hash(&meta.type_hash) else {
                continue;
            };
            if self.credential_type(&id) {
                let issuer = self.conf.credential_types[&id].issuer_id();
                self.public_key(&issuer, meta.key_counter as u32);
            }
        }
    }
}
