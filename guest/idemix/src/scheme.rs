//! Scheme folders (`irma_configuration/<scheme>/...`) as they are on disk: scheme, issuer and
//! credential type descriptions, public keys by counter, issuer private keys, and the signed
//! `index` that vouches for every file (irma-server.md §9, idemix.md §1).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use crate::attributes::type_hash;
use crate::error::{Error, Result, config};
use crate::hash::sha256;
use crate::keys::{PrivateKey, PublicKey};
use crate::xml;

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
    by_hash: HashMap<[u8; 16], String>,
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
    /// Loads every issuer scheme in `dir` (folders with a `description.xml`; requestor schemes
    /// and other folders are skipped), with the private keys kept inside the schemes.
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<Configuration> {
        let mut conf = Configuration::default();
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(|e| config(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("description.xml").is_file())
            .collect();
        entries.sort();
        for scheme_dir in entries {
            conf.load_scheme(&scheme_dir, opts)?;
        }
        Ok(conf)
    }

    /// Loads one scheme folder.
    pub fn load_scheme(&mut self, dir: &Path, opts: LoadOptions) -> Result<()> {
        let folder = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| config("scheme folder has no name"))?
            .to_owned();
        let files = SchemeFiles::open(dir, &folder, opts.verify_signatures)?;
        let desc = files.read_text("description.xml")?;
        let doc = xml::parse(&desc)?;
        let root = doc.root_element();
        xml::expect_name(root, "SchemeManager")?;
        let id = xml::child_text(root, "Id")?.to_owned();
        if id != folder {
            return Err(config(format!("scheme {id} lives in folder {folder}")));
        }
        let scheme = Scheme {
            id: id.clone(),
            demo: xml::child_flag(root, "Demo"),
            distributed: xml::find(root, "KeyshareServer").is_some(),
            timestamp_server: xml::find(root, "TimestampServer").map(|n| xml::text(n).to_owned()),
        };
        let mut issuers: Vec<_> = fs::read_dir(dir)
            .map_err(|e| config(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("description.xml").is_file())
            .collect();
        issuers.sort();
        for issuer_dir in issuers {
            let issuer = file_name(&issuer_dir)?;
            let issuer_id = format!("{id}.{issuer}");
            let idesc = files.read_text(&format!("{issuer}/description.xml"))?;
            xml::expect_name(xml::parse(&idesc)?.root_element(), "Issuer")?;
            for cred in sorted_dirs(&issuer_dir.join("Issues")) {
                let cred_name = file_name(&cred)?;
                let text =
                    files.read_text(&format!("{issuer}/Issues/{cred_name}/description.xml"))?;
                let ct = parse_credential_type(&text)?;
                if ct.scheme != id
                    || ct.issuer != issuer
                    || ct.id != format!("{issuer_id}.{cred_name}")
                {
                    return Err(config(format!(
                        "credential type {} in folder {issuer_id}.{cred_name}",
                        ct.id
                    )));
                }
                self.add_credential_type(ct);
            }
            for (counter, path) in numbered_xml(&issuer_dir.join("PublicKeys")) {
                let rel = format!("{issuer}/PublicKeys/{}", file_name(&path)?);
                let pk = PublicKey::from_xml(&issuer_id, &files.read_text(&rel)?)?;
                if pk.counter != counter {
                    return Err(config(format!("{rel} holds counter {}", pk.counter)));
                }
                self.add_public_key(pk);
            }
            // Private keys inside the scheme are not covered by the index (irmago's sigExceptions).
            for (_, path) in numbered_xml(&issuer_dir.join("PrivateKeys")) {
                let text = read_to_string(&path)?;
                self.add_private_key(&issuer_id, PrivateKey::from_xml(&text)?)?;
            }
        }
        self.schemes.insert(id, scheme);
        Ok(())
    }

    /// Loads a `--privkeys` folder: `<scheme>.<issuer>.xml` or `<scheme>.<issuer>.<counter>.xml`.
    pub fn load_private_keys(&mut self, dir: &Path) -> Result<()> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .map_err(|e| config(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let name = file_name(&path)?;
            let Some(stem) = name.strip_suffix(".xml") else {
                continue;
            };
            let parts: Vec<&str> = stem.split('.').collect();
            let (issuer, counter) = match parts.as_slice() {
                [s, i] => (format!("{s}.{i}"), None),
                [s, i, c] if c.bytes().all(|b| b.is_ascii_digit()) => {
                    (format!("{s}.{i}"), c.parse::<u32>().ok())
                }
                _ => continue,
            };
            let key = PrivateKey::from_xml(&read_to_string(&path)?)?;
            if counter.is_some_and(|c| c != key.counter) {
                return Err(config(format!("{name} holds counter {}", key.counter)));
            }
            self.add_private_key(&issuer, key)?;
        }
        Ok(())
    }

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

/// The signed file list of one scheme; every read goes through it.
struct SchemeFiles<'a> {
    dir: &'a Path,
    folder: &'a str,
    /// `None` when signatures are not checked.
    index: Option<HashMap<String, [u8; 32]>>,
}

impl<'a> SchemeFiles<'a> {
    fn open(dir: &'a Path, folder: &'a str, verify: bool) -> Result<SchemeFiles<'a>> {
        let index = if verify {
            let index = read_bytes(&dir.join("index"))?;
            let sig = read_bytes(&dir.join("index.sig"))?;
            let pem = read_to_string(&dir.join("pk.pem"))?;
            verify_index_signature(&index, &sig, &pem)
                .map_err(|e| config(format!("scheme {folder}: {e}")))?;
            Some(parse_index(&index)?)
        } else {
            None
        };
        Ok(SchemeFiles { dir, folder, index })
    }

    /// Reads `rel` (relative to the scheme folder) and checks it against the index.
    fn read_text(&self, rel: &str) -> Result<String> {
        let bytes = read_bytes(&self.dir.join(rel))?;
        if let Some(index) = &self.index {
            let key = format!("{}/{rel}", self.folder);
            match index.get(&key) {
                Some(h) if *h == sha256(&bytes) => {}
                Some(_) => return Err(config(format!("{key}: hash does not match the index"))),
                None => return Err(config(format!("{key}: not in the signed index"))),
            }
        }
        String::from_utf8(bytes).map_err(|_| config(format!("{rel} is not UTF-8")))
    }
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
pub fn parse_index(index: &[u8]) -> Result<HashMap<String, [u8; 32]>> {
    let text = std::str::from_utf8(index).map_err(|_| config("index is not UTF-8"))?;
    let mut out = HashMap::new();
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

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| config(format!("{}: {e}", path.display())))
}

fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| config(format!("{}: {e}", path.display())))
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| config(format!("{} has no UTF-8 name", path.display())))
}

fn sorted_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// `<n>.xml` files of a folder, by counter.
fn numbered_xml(dir: &Path) -> BTreeMap<u32, std::path::PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_suffix(".xml")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect()
}
