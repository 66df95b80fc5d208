//! Keys and schemes of our own: issuer key pairs (safe-prime RSA moduli, as gabi's keygen) and
//! a small signed scheme folder, so the project never ships anyone else's private keys.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use rand_core::{CryptoRng, RngCore};

use crate::bigint::{
    Int, Modulus, gcd, has_small_factor, is_probable_prime, random_below, random_bits,
};
use crate::error::{Result, config};
use crate::hash::sha256;
use crate::keys::{PrivateKey, PublicKey};
use crate::scheme::hex;

/// A safe prime `p = 2p' + 1` of exactly `bits` bits.
pub fn safe_prime(bits: usize, rng: &mut dyn RngCore) -> Int {
    loop {
        // p' of bits-1 bits, top bit set, odd.
        let pp = random_bits(rng, bits - 1) | (Int::ONE << (bits - 2)) | Int::ONE;
        let p = (&pp << 1) + Int::ONE;
        if has_small_factor(&pp) || has_small_factor(&p) {
            continue;
        }
        // Cheap Fermat test on p first: most candidates die here.
        let m = Modulus::new(p.clone()).expect("odd");
        if m.pow(&Int::from(2u8), &(&p - Int::ONE)) != Int::ONE {
            continue;
        }
        if is_probable_prime(&pp, 30, rng) && is_probable_prime(&p, 30, rng) {
            return p;
        }
    }
}

/// A fresh issuer key pair with `bases` bases `R[0..bases)`.
pub fn key_pair(
    issuer: &str,
    counter: u32,
    bits: usize,
    bases: usize,
    expiry: i64,
    rng: &mut dyn RngCore,
) -> Result<(PublicKey, PrivateKey)> {
    let (p, q) = loop {
        let p = safe_prime(bits / 2, rng);
        let q = safe_prime(bits / 2, rng);
        if p != q && crate::bigint::bit_len(&(&p * &q)) == bits {
            break (p, q);
        }
    };
    let sk = PrivateKey::new(counter, expiry, p, q)?;
    let n = sk.n();
    let nm = Modulus::new(n.clone()).expect("odd");
    // S generates the quadratic residues: a random square coprime to N.
    let s = loop {
        let x = random_below(rng, &n);
        if gcd(&x, &n) == Int::ONE {
            let s = nm.mul(&x, &x);
            if s != Int::ONE {
                break s;
            }
        }
    };
    let mut power_of_s = || {
        let x = random_below(rng, &sk.order) + Int::from(2u8);
        nm.pow(&s, &x)
    };
    let z = power_of_s();
    let r: Vec<Int> = (0..bases).map(|_| power_of_s()).collect();
    let pk = PublicKey::new(issuer, counter, expiry, n, z, s, r)?;
    Ok((pk, sk))
}

/// A credential type of a scheme to write.
pub struct CredentialSpec<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// (attribute id, optional)
    pub attributes: &'a [(&'a str, bool)],
}

/// An issuer of a scheme to write, with its key pair.
pub struct IssuerSpec<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub public_key: &'a PublicKey,
    pub private_key: &'a PrivateKey,
    pub credentials: &'a [CredentialSpec<'a>],
}

/// Writes a signed scheme folder `dir/<scheme>` (descriptions, public keys, `timestamp`,
/// `index`, `index.sig`, `pk.pem`) and the private keys into `privkeys_dir` as
/// `<scheme>.<issuer>.<counter>.xml`. The scheme signing key is returned, not written.
pub fn write_scheme<R: RngCore + CryptoRng>(
    dir: &Path,
    privkeys_dir: &Path,
    scheme: &str,
    timestamp: i64,
    issuers: &[IssuerSpec],
    rng: &mut R,
) -> Result<SigningKey> {
    let root = dir.join(scheme);
    let mut files: Vec<(String, String)> = Vec::new();
    files.push((
        "description.xml".into(),
        format!(
            "<SchemeManager version=\"7\">\n\t<Id>{scheme}</Id>\n\t<Url>http://127.0.0.1/{scheme}</Url>\n\t<Demo>true</Demo>\n\t\
             <Name>\n\t\t<en>{scheme}</en>\n\t\t<nl>{scheme}</nl>\n\t</Name>\n\t<Description>\n\t\t<en>Demo scheme generated for the stateless IRMA server</en>\n\t\t\
             <nl>Demoschema voor de stateless IRMA-server</nl>\n\t</Description>\n\t<Contact>http://127.0.0.1/</Contact>\n</SchemeManager>\n"
        ),
    ));
    files.push(("timestamp".into(), timestamp.to_string()));
    for is in issuers {
        files.push((
            format!("{}/description.xml", is.id),
            format!(
                "<Issuer version=\"4\">\n\t<ID>{}</ID>\n\t<Name>\n\t\t<en>{}</en>\n\t\t<nl>{}</nl>\n\t</Name>\n\t\
                 <SchemeManager>{scheme}</SchemeManager>\n\t<ContactEMail>demo@example.com</ContactEMail>\n</Issuer>\n",
                is.id, is.name, is.name
            ),
        ));
        files.push((
            format!("{}/PublicKeys/{}.xml", is.id, is.public_key.counter),
            is.public_key.to_xml(),
        ));
        for c in is.credentials {
            if c.attributes.len() + 2 > is.public_key.r.len() {
                return Err(config(format!(
                    "{} has more attributes than the key has bases",
                    c.id
                )));
            }
            let mut x = format!(
                "<IssueSpecification version=\"4\">\n\t<Name>\n\t\t<en>{0}</en>\n\t\t<nl>{0}</nl>\n\t</Name>\n\t\
                 <SchemeManager>{scheme}</SchemeManager>\n\t<IssuerID>{1}</IssuerID>\n\t<CredentialID>{2}</CredentialID>\n\t\
                 <Description>\n\t\t<en>{0}</en>\n\t\t<nl>{0}</nl>\n\t</Description>\n\t<Attributes>\n",
                c.name, is.id, c.id
            );
            for (a, optional) in c.attributes {
                let opt = if *optional { " optional=\"true\"" } else { "" };
                let _ = writeln!(
                    x,
                    "\t\t<Attribute id=\"{a}\"{opt}>\n\t\t\t<Name>\n\t\t\t\t<en>{a}</en>\n\t\t\t\t<nl>{a}</nl>\n\t\t\t</Name>\n\t\t\t\
                     <Description>\n\t\t\t\t<en>{a}</en>\n\t\t\t\t<nl>{a}</nl>\n\t\t\t</Description>\n\t\t</Attribute>"
                );
            }
            x.push_str("\t</Attributes>\n</IssueSpecification>\n");
            files.push((format!("{}/Issues/{}/description.xml", is.id, c.id), x));
        }
    }
    let mut index = String::new();
    files.sort();
    for (rel, content) in &files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        fs::write(&path, content).map_err(io)?;
        let _ = writeln!(index, "{} {scheme}/{rel}", hex(&sha256(content.as_bytes())));
    }
    let signing_key = SigningKey::random(rng);
    let sig: Signature = signing_key.sign(index.as_bytes());
    let pem = signing_key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| config(e.to_string()))?;
    fs::write(root.join("index"), &index).map_err(io)?;
    fs::write(root.join("index.sig"), sig.to_der().as_bytes()).map_err(io)?;
    fs::write(root.join("pk.pem"), pem).map_err(io)?;
    fs::create_dir_all(privkeys_dir).map_err(io)?;
    for is in issuers {
        let name = format!("{scheme}.{}.{}.xml", is.id, is.private_key.counter);
        fs::write(privkeys_dir.join(name), is.private_key.to_xml()).map_err(io)?;
    }
    Ok(signing_key)
}

fn io(e: std::io::Error) -> crate::Error {
    config(e.to_string())
}

/// The project's own demo scheme: what `just run` serves and the benchmarks use.
pub const DEMO_SCHEME: &str = "stateless-demo";

/// Writes the demo scheme with fresh keys: issuer `University` (1024-bit key, like irma-demo)
/// issuing `studentCard`, and issuer `Government` (2048-bit key, like the production scheme)
/// issuing `person`; six attributes each. Keys expire at `expiry`.
pub fn write_demo_scheme<R: RngCore + CryptoRng>(
    dir: &Path,
    privkeys_dir: &Path,
    now: i64,
    expiry: i64,
    rng: &mut R,
) -> Result<()> {
    let (upk, usk) = key_pair(
        &format!("{DEMO_SCHEME}.University"),
        0,
        1024,
        12,
        expiry,
        rng,
    )?;
    let (gpk, gsk) = key_pair(
        &format!("{DEMO_SCHEME}.Government"),
        0,
        2048,
        12,
        expiry,
        rng,
    )?;
    let student = [
        ("university", false),
        ("studentCardNumber", false),
        ("studentID", false),
        ("level", false),
        ("email", true),
        ("faculty", true),
    ];
    let person = [
        ("firstname", false),
        ("prefix", true),
        ("familyname", false),
        ("dateofbirth", false),
        ("over18", false),
        ("bsn", false),
    ];
    let issuers = [
        IssuerSpec {
            id: "University",
            name: "Demo University",
            public_key: &upk,
            private_key: &usk,
            credentials: &[CredentialSpec {
                id: "studentCard",
                name: "Demo student card",
                attributes: &student,
            }],
        },
        IssuerSpec {
            id: "Government",
            name: "Demo Government",
            public_key: &gpk,
            private_key: &gsk,
            credentials: &[CredentialSpec {
                id: "person",
                name: "Demo personal data",
                attributes: &person,
            }],
        },
    ];
    write_scheme(dir, privkeys_dir, DEMO_SCHEME, now, &issuers, rng)?;
    Ok(())
}
