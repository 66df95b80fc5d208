//! Scheme folders (`irma_configuration/<scheme>/...`) as they are on disk: scheme, issuer and
//! credential type descriptions, public keys by counter, issuer private keys, and the signed
//! `index` that vouches for every file (irma-server.md §9, idemix.md §1).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::{borrow::ToOwned, string::String, vec::Vec};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use crate::attributes::type_hash;
use crate::error::{Error, Result, config};
use crate::keys::{PrivateKey, PublicKey};
use crate::xml;

/// Loading scheme folders and key files from disk.
#[cfg(feature = "std")]
mod files;

/// What a scheme's `description.xml` says that the protocol needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    pub id: String,
    pub demo: bool,
    /// Distributed schemes have a keyshare server; their proofs form their own secret-key group.
    pub distributed: bool,
    pub timestamp_server: Option<String>,
}

/// One `<Attribute>` of a credential type, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeType {
    /// Empty for the revocation attribute, which has no id.
    pub id: String,
    pub optional: bool,
    pub random_blind: bool,
    pub revocation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialType {
    /// `scheme.issuer.credential`.
    pub id: String,
    pub scheme: String,
    pub issuer: String,
    pub attributes: Vec<AttributeType>,
    pub singleton: bool,
    /// The description lists revocation servers: issuing it needs revocation support.
    pub supports_revocation: bool,
}

impl CredentialType {
    /// `scheme.issuer`.
    pub fn issuer_id(&self) -> String {
        format!("{}.{}", self.scheme, self.issuer)
    }

    /// The base index of attribute `name` (2 + its position), if the type has it.
    pub fn base_index(&self, name: &str) -> Option<usize> {
        self.attributes
            .iter()
            .position(|a| !a.revocation && a.id == name)
            .map(|j| j + 2)
    }

    /// Full identifier of the attribute at base index `idx`.
    pub fn attribute_id(&self, idx: usize) -> Option<String> {
        let a = self.attributes.get(idx.checked_sub(2)?)?;
        Some(format!("{}.{}", self.id, a.id))
    }
}

/// Everything loaded from `--schemes-path` (and `--privkeys`).
#[derive(Debug, Default, Clone)]
pub struct Configuration {
    pub schemes: BTreeMap<String, Scheme>,
    pub credential_types: BTreeMap<String, CredentialType>,
    by_hash: BTreeMap<[u8; 16], String>,
    public_keys: BTreeMap<String, BTreeMap<u32, Arc<PublicKey>>>,
    private_keys: BTreeMap<String, BTreeMap<u32, Arc<PrivateKey>>>,
}

/// How strictly to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Check `index` against `index.sig`/`pk.pem` and every file read against `index`.
    pub verify_signatures: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            verify_signatures: true,
        }
    }
}

impl Configuration {
    pub fn add_credential_type(&mut self, ct: CredentialType) {
        self.by_hash.insert(type_hash(&ct.id), ct.id.clone());
        self.credential_types.insert(ct.id.clone(), ct);
    }

    pub fn add_public_key(&mut self, pk: PublicKey) {
        self.public_keys
            .entry(pk.issuer.clone())
            .or_default()
            .insert(pk.counter, Arc::new(pk));
    }

    /// Adds a private key after checking that it belongs to the public key of the same counter.
    /// A key held elsewhere ([`PrivateKey::held_elsewhere`]) is taken as its holder checked it.
    pub fn add_private_key(&mut self, issuer: &str, sk: PrivateKey) -> Result<()> {
        let pk = self.public_key(issuer, sk.counter)?;
        if !sk.is_held_elsewhere() && *pk.n.value() != sk.n() {
            return Err(config(format!(
                "private key {issuer}-{} does not match its public key",
                sk.counter
            )));
        }
        self.private_keys
            .entry(issuer.to_owned())
            .or_default()
            .insert(sk.counter, Arc::new(sk));
        Ok(())
    }

    pub fn add_scheme(&mut self, scheme: Scheme) {
        self.schemes.insert(scheme.id.clone(), scheme);
    }

    /// Every public key, of every issuer.
    pub fn public_keys(&self) -> impl Iterator<Item = &Arc<PublicKey>> {
        self.public_keys
            .values()
            .flat_map(|by_counter| by_counter.values())
    }

    /// The issuers (`scheme.issuer`) that have at least one private key.
    pub fn issuers_with_private_keys(&self) -> impl Iterator<Item = &str> {
        self.private_keys.keys().map(String::as_str)
    }

    pub fn public_key(&self, issuer: &str, counter: u32) -> Result<Arc<PublicKey>> {
        self.public_keys
            .get(issuer)
            .and_then(|m| m.get(&counter))
            .cloned()
            .ok_or_else(|| Error::UnknownPublicKey {
                issuer: issuer.to_owned(),
                counter,
            })
    }

    /// The private key the server issues with: the highest counter of the issuer.
    pub fn latest_private_key(&self, issuer: &str) -> Result<Arc<PrivateKey>> {
        self.private_keys
            .get(issuer)
            .and_then(|m| m.values().next_back())
            .cloned()
            .ok_or_else(|| Error::UnknownPrivateKey(issuer.to_owned()))
    }

    pub fn credential_type(&self, id: &str) -> Result<&CredentialType> {
        self.credential_types
            .get(id)
            .ok_or_else(|| Error::UnknownCredentialType(id.to_owned()))
    }

    pub fn credential_type_by_hash(&self, hash: &[u8; 16]) -> Result<&CredentialType> {
        self.by_hash
            .get(hash)
            .and_then(|id| self.credential_types.get(id))
            .ok_or_else(|| Error::UnknownCredentialType(hex(hash)))
    }

    /// The secret-key group of an issuer: its scheme id if the scheme is distributed, else `"."`.
    pub fn keyshare_group(&self, issuer: &str) -> String {
        let scheme = issuer.split('.').next().unwrap_or("");
        match self.schemes.get(scheme) {
            Some(s) if s.distributed => s.id.clone(),
            _ => ".".to_owned(),
        }
    }
}

/// Parses `Issues/<cred>/description.xml`.
pub fn parse_credential_type(text: &str) -> Result<CredentialType> {
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    xml::expect_name(root, "IssueSpecification")?;
    let scheme = xml::child_text(root, "SchemeManager")?.to_owned();
    let issuer = xml::child_text(root, "IssuerID")?.to_owned();
    let cred = xml::child_text(root, "CredentialID")?;
    let mut attributes = Vec::new();
    if let Some(list) = xml::find(root, "Attributes") {
        for a in list
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "Attribute")
        {
            let flag = |n: &str| {
                a.attribute(n)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            };
            attributes.push(AttributeType {
                id: a.attribute("id").unwrap_or("").to_owned(),
                optional: flag("optional"),
                random_blind: flag("randomblind"),
                revocation: flag("revocation"),
            });
        }
    }
    Ok(CredentialType {
        id: format!("{scheme}.{issuer}.{cred}"),
        scheme,
        issuer,
        attributes,
        singleton: xml::child_flag(root, "ShouldBeSingleton"),
        supports_revocation: xml::find(root, "RevocationServers").is_some(),
    })
}

/// Checks `index.sig` (DER ECDSA P-256 over SHA-256 of `index`) with the PKIX key in `pk.pem`.
pub fn verify_index_signature(index: &[u8], sig_der: &[u8], pk_pem: &str) -> Result<()> {
    let key =
        VerifyingKey::from_public_key_pem(pk_pem).map_err(|e| config(format!("pk.pem: {e}")))?;
    let sig = Signature::from_der(sig_der).map_err(|e| config(format!("index.sig: {e}")))?;
    key.verify(index, &sig)
        .map_err(|_| config("index.sig does not verify against pk.pem"))
}

/// Parses `index`: lines `<sha256 hex> <scheme>/<path>`, empty lines ignored.
pub fn parse_index(index: &[u8]) -> Result<BTreeMap<String, [u8; 32]>> {
    let text = core::str::from_utf8(index).map_err(|_| config("index is not UTF-8"))?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (h, path) = line
            .split_once(' ')
            .ok_or_else(|| config(format!("index line {line:?}")))?;
        let hash = unhex(h).ok_or_else(|| config(format!("index hash {h:?}")))?;
        out.insert(path.trim().to_owned(), hash);
    }
    Ok(out)
}

fn unhex(h: &str) -> Option<[u8; 32]> {
    if h.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
