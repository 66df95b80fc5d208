//! Scheme folders and private-key folders read from disk (`std` only: the guest gets its schemes
//! and keys from the host).

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use std::fs;
use std::path::{Path, PathBuf};

use alloc::collections::BTreeMap;

use super::{
    Configuration, LoadOptions, Scheme, parse_credential_type, parse_index, verify_index_signature,
};
use crate::error::{Result, config};
use crate::hash::sha256;
use crate::keys::{PrivateKey, PublicKey};
use crate::xml;

impl Configuration {
    /// Loads every issuer scheme in `dir` (folders with a `description.xml`; requestor schemes
    /// and other folders are skipped), with the private keys kept inside the schemes.
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<Configuration> {
        let mut conf = Configuration::default();
        for scheme_dir in described_folders(dir)? {
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
        for issuer_dir in described_folders(dir)? {
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
}

/// The signed file list of one scheme; every read goes through it.
struct SchemeFiles<'a> {
    dir: &'a Path,
    folder: &'a str,
    /// `None` when signatures are not checked.
    index: Option<BTreeMap<String, [u8; 32]>>,
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

/// The folders in `dir` that have a `description.xml` (schemes, issuers), sorted.
fn described_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .map_err(|e| config(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("description.xml").is_file())
        .collect();
    out.sort();
    Ok(out)
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

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
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
fn numbered_xml(dir: &Path) -> BTreeMap<u32, PathBuf> {
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
