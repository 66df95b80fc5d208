//! Issuer public and private keys, in the XML of `PublicKeys/<n>.xml` and `PrivateKeys/<n>.xml`
//! (idemix.md §1.2, §1.3).

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use core::fmt::Write as _;

use rand_core::RngCore;

use crate::bigint::{Int, Modulus, bit_len};
use crate::ct::{CtKey, Secret};
use crate::error::{Result, config};
use crate::params::{self, Params};
use crate::xml;

const NAMESPACE: &str = "http://www.zurich.ibm.com/security/idemix";

/// An issuer public key: `N, Z, S` and the bases `R[0..k)`.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// `scheme.issuer`; not in the file, it comes from the folder the file is in.
    pub issuer: String,
    pub counter: u32,
    /// Unix seconds.
    pub expiry: i64,
    pub n: Modulus,
    pub z: Int,
    pub s: Int,
    pub r: Vec<Int>,
    pub params: &'static Params,
}

impl PublicKey {
    pub fn new(
        issuer: &str,
        counter: u32,
        expiry: i64,
        n: Int,
        z: Int,
        s: Int,
        r: Vec<Int>,
    ) -> Result<PublicKey> {
        let bits = bit_len(&n);
        let params = params::for_modulus_bits(bits).ok_or(crate::Error::UnknownKeyLength(bits))?;
        let n = Modulus::new(n).ok_or_else(|| config("public key modulus is even"))?;
        Ok(PublicKey {
            issuer: issuer.to_owned(),
            counter,
            expiry,
            n,
            z,
            s,
            r,
            params,
        })
    }

    /// Parses `IssuerPublicKey` XML. Elements are matched by name in any order, unknown ones
    /// ignored; bases are ordered by the number in their name and must all be present.
    pub fn from_xml(issuer: &str, text: &str) -> Result<PublicKey> {
        let doc = xml::parse(text)?;
        let root = doc.root_element();
        xml::expect_name(root, "IssuerPublicKey")?;
        let counter = xml::child_u64(root, "Counter")? as u32;
        let expiry = xml::child_u64(root, "ExpiryDate")? as i64;
        let elements = xml::child(root, "Elements")?;
        let n = xml::child_int(elements, "n")?;
        let z = xml::child_int(elements, "Z")?;
        let s = xml::child_int(elements, "S")?;
        let bases = xml::child(elements, "Bases")?;
        let num: usize = bases
            .attribute("num")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| config("Bases without a num attribute"))?;
        let mut found: Vec<(usize, Int)> = Vec::new();
        for b in bases.children().filter(|c| c.is_element()) {
            let name = b.tag_name().name();
            let Some(idx) = name
                .strip_prefix("Base_")
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            found.push((idx, xml::int_text(b)?));
        }
        found.sort_by_key(|(i, _)| *i);
        found.truncate(num);
        if found.len() != num || found.iter().enumerate().any(|(i, (j, _))| i != *j) {
            return Err(config(format!(
                "public key of {issuer} lacks some of its {num} bases"
            )));
        }
        let r = found.into_iter().map(|(_, v)| v).collect();
        PublicKey::new(issuer, counter, expiry, n, z, s, r)
    }

    pub fn to_xml(&self) -> String {
        let mut x = String::new();
        let _ = write!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
             <IssuerPublicKey xmlns=\"{NAMESPACE}\">\n  <Counter>{}</Counter>\n  \
             <ExpiryDate>{}</ExpiryDate>\n  <Elements>\n    <n>{}</n>\n    <Z>{}</Z>\n    \
             <S>{}</S>\n    <Bases num=\"{}\">\n",
            self.counter,
            self.expiry,
            self.n.value(),
            self.z,
            self.s,
            self.r.len()
        );
        for (i, r) in self.r.iter().enumerate() {
            let _ = writeln!(x, "      <Base_{i}>{r}</Base_{i}>");
        }
        x.push_str(
            "    </Bases>\n  </Elements>\n  <Features>\n    <Epoch length=\"432000\"></Epoch>\n  \
             </Features>\n</IssuerPublicKey>\n",
        );
        x
    }
}

/// An issuer private key: the safe primes `p = 2p'+1`, `q = 2q'+1` of `N`. Its fields are for
/// reading: signing uses the constant-time view [`PrivateKey::new`] builds from them.
#[derive(Clone)]
pub struct PrivateKey {
    pub counter: u32,
    pub expiry: i64,
    pub p: Int,
    pub q: Int,
    pub p_prime: Int,
    pub q_prime: Int,
    /// `p'q'`, the order of the group of quadratic residues modulo `N`.
    pub order: Int,
    /// The same key for constant-time arithmetic (Montgomery parameters for `p`, `q`, `p'q'`
    /// and `q^-1 mod p`), built when the key is made (building it is the key's check); `None`
    /// for a key held elsewhere ([`PrivateKey::held_elsewhere`]), whose primes are not here.
    ct: Option<CtKey>,
}

impl core::fmt::Debug for PrivateKey {
    // Never print the factors.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PrivateKey(counter {}, {} bits)",
            self.counter,
            bit_len(&(&self.p * &self.q))
        )
    }
}

impl PrivateKey {
    /// A key from its primes, checked: `p`, `q`, `p'`, `q'` odd and `p`, `q` coprime (as the
    /// constant-time arithmetic needs; the check is that arithmetic's own set-up).
    pub fn new(counter: u32, expiry: i64, p: Int, q: Int) -> Result<PrivateKey> {
        if p < Int::from(5u8) || q < Int::from(5u8) {
            return Err(config("private key primes out of range"));
        }
        let p_prime = (&p - Int::ONE) >> 1;
        let q_prime = (&q - Int::ONE) >> 1;
        let order = &p_prime * &q_prime;
        let ct = CtKey::new(&p, &q, &order)
            .ok_or_else(|| config("p, q, p' or q' even, or p and q not coprime"))?;
        Ok(PrivateKey {
            counter,
            expiry,
            p,
            q,
            p_prime,
            q_prime,
            order,
            ct: Some(ct),
        })
    }

    /// A key whose primes another party holds and signs with (the server's host, for its
    /// guest, through an [`IssuerSigner`](crate::issuance::IssuerSigner)): its counter and
    /// expiry only. It cannot sign here; its primes read as zero.
    pub fn held_elsewhere(counter: u32, expiry: i64) -> PrivateKey {
        PrivateKey {
            counter,
            expiry,
            p: Int::ZERO,
            q: Int::ZERO,
            p_prime: Int::ZERO,
            q_prime: Int::ZERO,
            order: Int::ZERO,
            ct: None,
        }
    }

    /// Whether the primes are elsewhere ([`PrivateKey::held_elsewhere`]).
    pub fn is_held_elsewhere(&self) -> bool {
        self.ct.is_none()
    }

    pub fn n(&self) -> Int {
        &self.p * &self.q
    }

    /// The constant-time view of the key; `None` for a key held elsewhere.
    pub(crate) fn ct(&self) -> Option<&CtKey> {
        self.ct.as_ref()
    }

    /// The constant-time view of a key that [`PrivateKey::new`] checked.
    fn usable(&self) -> &CtKey {
        self.ct().expect("a key checked by PrivateKey::new")
    }

    /// Whether the key can sign (always, for one made by [`PrivateKey::new`]).
    pub fn can_sign(&self) -> bool {
        self.ct().is_some()
    }

    /// Parses `IssuerPrivateKey` XML and checks `p' = (p-1)/2`, `q' = (q-1)/2`.
    pub fn from_xml(text: &str) -> Result<PrivateKey> {
        let doc = xml::parse(text)?;
        let root = doc.root_element();
        xml::expect_name(root, "IssuerPrivateKey")?;
        let counter = xml::child_u64(root, "Counter")? as u32;
        let expiry = xml::child_u64(root, "ExpiryDate")? as i64;
        let elements = xml::child(root, "Elements")?;
        let p = xml::child_int(elements, "p")?;
        let q = xml::child_int(elements, "q")?;
        let key = PrivateKey::new(counter, expiry, p, q)?;
        if xml::child_int(elements, "pPrime")? != key.p_prime
            || xml::child_int(elements, "qPrime")? != key.q_prime
        {
            return Err(config("private key: p' or q' does not match p or q"));
        }
        Ok(key)
    }

    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
             <IssuerPrivateKey xmlns=\"{NAMESPACE}\">\n  <Counter>{}</Counter>\n  \
             <ExpiryDate>{}</ExpiryDate>\n  <Elements>\n    <p>{}</p>\n    <q>{}</q>\n    \
             <pPrime>{}</pPrime>\n    <qPrime>{}</qPrime>\n  </Elements>\n</IssuerPrivateKey>\n",
            self.counter, self.expiry, self.p, self.q, self.p_prime, self.q_prime
        )
    }

    /// `x^d mod N` by RSA-CRT: `d` is reduced modulo `p-1` and `q-1` (never `p'`, `q'`, which
    /// would leak a factor of N for non-residues, idemix.md §6.6), then the halves recombined.
    /// Constant time in `d` and the key (see [`crate::ct`]); `x` is public.
    pub fn pow_crt(&self, x: &Int, d: &Secret) -> Int {
        self.usable().pow_crt(x, d)
    }

    /// An integer below `2^bits(N)` as a [`Secret`] exponent at this key's precision: for tests
    /// and benchmarks that pick exponents themselves.
    pub fn secret(&self, d: &Int) -> Secret {
        self.usable().secret(d)
    }

    /// `e^-1 mod p'q'` (the signing exponent `d`), or `None` when `e` is not invertible.
    pub fn inverse_mod_order(&self, e: &Int) -> Option<Secret> {
        self.usable().inverse_mod_order(e)
    }

    /// `c·d mod p'q'` for a public `c`.
    pub fn mul_mod_order(&self, c: &Int, d: &Secret) -> Secret {
        self.usable().mul_mod_order(c, d)
    }

    /// `a - b mod p'q'` for `a, b < p'q'`.
    pub fn sub_mod_order(&self, a: &Secret, b: &Secret) -> Secret {
        self.usable().sub_mod_order(a, b)
    }

    /// A uniformly random `r` in `[1, p'q')` with `gcd(r, p'q') = 1` (the ProofS nonce).
    pub fn random_unit(&self, rng: &mut dyn RngCore) -> Secret {
        self.usable().random_unit(rng)
    }
}
