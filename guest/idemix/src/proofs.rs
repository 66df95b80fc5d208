//! The zero-knowledge proofs of the protocol and how a list of them is verified together
//! (idemix.md §4.2, §4.3, §6.3, §6.7).
//!
//! Each proof contributes two integers to one shared Fiat–Shamir challenge. Verifying means
//! recomputing those contributions, hashing them with the session's context and nonce, and
//! comparing with the challenge the prover claimed.

use alloc::collections::BTreeMap;
use alloc::{string::ToString, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::bigint::{Int, bit_len, gcd};
use crate::bigjson::Big;
use crate::error::{Result, malformed};
use crate::hash::{hash_commit, hash_int};
use crate::keys::PublicKey;

/// A disclosure proof: knowledge of a CL signature on the credential, some attributes revealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofD {
    pub c: Big,
    #[serde(rename = "A")]
    pub a: Big,
    pub e_response: Big,
    pub v_response: Big,
    /// Responses for the hidden attributes (always including 0, the secret key).
    pub a_responses: BTreeMap<u32, Big>,
    /// Disclosed values (always including 1, the metadata attribute).
    pub a_disclosed: BTreeMap<u32, Big>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonrev_proof: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rangeproofs: Option<serde_json::Value>,
}

/// The commitment proof of issuance: knowledge of the secret key and `v'` inside `U`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofU {
    #[serde(rename = "U")]
    pub u: Big,
    pub c: Big,
    pub v_prime_response: Big,
    pub s_response: Big,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m_user_responses: Option<BTreeMap<u32, Big>>,
}

/// The issuer's proof that `A` is correctly formed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofS {
    pub c: Big,
    pub e_response: Big,
}

/// An element of a proof list: a ProofD if it has a non-null `"A"`, a ProofU if it has `"U"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Proof {
    D(ProofD),
    U(ProofU),
}

impl<'de> Deserialize<'de> for Proof {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Proof, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let has = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
        if has("A") {
            serde_json::from_value(v)
                .map(Proof::D)
                .map_err(D::Error::custom)
        } else if has("U") {
            serde_json::from_value(v)
                .map(Proof::U)
                .map_err(D::Error::custom)
        } else {
            Err(D::Error::custom("proof is neither a ProofD nor a ProofU"))
        }
    }
}

impl Proof {
    /// The challenge the prover claims.
    pub fn challenge(&self) -> &Int {
        match self {
            Proof::D(p) => &p.c,
            Proof::U(p) => &p.c,
        }
    }

    /// The response for the secret key, which must agree across a keyshare group.
    pub fn secret_key_response(&self) -> Option<&Int> {
        match self {
            Proof::D(p) => p.a_responses.get(&0).map(|b| &b.0),
            Proof::U(p) => Some(&p.s_response),
        }
    }

    pub fn as_d(&self) -> Option<&ProofD> {
        match self {
            Proof::D(p) => Some(p),
            Proof::U(_) => None,
        }
    }

    /// The two integers this proof adds to the challenge hash, or `None` when the proof is
    /// structurally unusable (bad indices, non-invertible values): the list is then invalid.
    pub fn contribution(&self, pk: &PublicKey) -> Option<[Int; 2]> {
        match self {
            Proof::D(p) => p.contribution(pk),
            Proof::U(p) => p.contribution(pk),
        }
    }

    /// The per-proof checks once the shared challenge is known.
    fn verify_with_challenge(&self, pk: &PublicKey, c: &Int) -> bool {
        match self {
            Proof::D(p) => p.verify_with_challenge(pk, c),
            Proof::U(p) => p.verify_with_challenge(pk, c),
        }
    }
}

/// `a`, or its hash when it is longer than `Lm` bits (idemix.md §2.3).
pub fn exponent_of_attribute(a: &Int, lm: usize) -> Int {
    if bit_len(a) > lm {
        hash_int(&crate::bigint::to_be(a))
    } else {
        a.clone()
    }
}

impl ProofD {
    /// `Ẑ = known^-c · A^ê · S^v̂ · Π R[i]^â_i` with `known = Z · (A^(2^(Le-1)) · Π R[i]^a_i)^-1`,
    /// computed as one multi-exponentiation: `Z^-c · A^(c·2^(Le-1)+ê) · Π R[i]^(c·a_i) · ...`.
    fn contribution(&self, pk: &PublicKey) -> Option<[Int; 2]> {
        let k = pk.r.len() as u32;
        let d = &self.a_disclosed;
        let h = &self.a_responses;
        if !h.contains_key(&0) || !d.contains_key(&1) {
            return None;
        }
        if d.keys().chain(h.keys()).any(|&i| i >= k) || d.keys().any(|i| h.contains_key(i)) {
            return None;
        }
        let n = pk.n.value();
        let a = &self.a.0;
        if a.is_zero() || gcd(a, n) != Int::ONE {
            return None;
        }
        let c = &self.c.0;
        let z_inv = pk.n.inv(&pk.z)?;
        let a_exp = (c << (pk.params.le - 1)) + &self.e_response.0;
        let mut bases: Vec<&Int> = vec![&z_inv, a, &pk.s];
        let mut owned: Vec<Int> = Vec::with_capacity(d.len());
        for (i, v) in d {
            owned.push(c * exponent_of_attribute(v, pk.params.lm));
            bases.push(&pk.r[*i as usize]);
        }
        let mut exps: Vec<&Int> = vec![c, &a_exp, &self.v_response.0];
        exps.extend(owned.iter());
        for (i, v) in h {
            bases.push(&pk.r[*i as usize]);
            exps.push(&v.0);
        }
        let z_hat = pk.n.multi_exp(&bases, &exps);
        Some([a.clone(), z_hat])
    }

    fn verify_with_challenge(&self, pk: &PublicKey, c: &Int) -> bool {
        let p = pk.params;
        self.c.0 == *c
            && self
                .a_responses
                .values()
                .all(|v| bit_len(v) <= p.lm_commit + 1)
            && bit_len(&self.e_response) <= p.le_commit + 1
    }
}

impl ProofU {
    /// `Û = U^-c · S^v̂' · R[0]^ŝ · Π R[i]^m̂_i`.
    fn contribution(&self, pk: &PublicKey) -> Option<[Int; 2]> {
        let u_inv = pk.n.inv(&self.u.0)?;
        let mut bases: Vec<&Int> = vec![&u_inv, &pk.s, &pk.r[0]];
        let mut exps: Vec<&Int> = vec![&self.c.0, &self.v_prime_response.0, &self.s_response.0];
        for (i, m) in self.m_user_responses.iter().flatten() {
            if *i < 2 || *i as usize >= pk.r.len() {
                return None;
            }
            bases.push(&pk.r[*i as usize]);
            exps.push(&m.0);
        }
        Some([self.u.0.clone(), pk.n.multi_exp(&bases, &exps)])
    }

    fn verify_with_challenge(&self, pk: &PublicKey, c: &Int) -> bool {
        self.c.0 == *c && bit_len(&self.v_prime_response) <= pk.params.lv_prime_commit + 1
    }
}

/// One proof of a list, with the key it is checked against and its secret-key group.
pub struct KeyedProof<'a> {
    pub proof: &'a Proof,
    pub pk: &'a PublicKey,
    /// The keyshare group label: proofs with equal labels must share the secret-key response.
    pub group: &'a str,
}

/// Verifies a list of proofs that share one challenge (`ProofList.Verify`). An empty list is
/// invalid here; callers that accept "nothing disclosed" decide that before calling.
pub fn verify_proof_list(proofs: &[KeyedProof], context: &Int, nonce: &Int, issig: bool) -> bool {
    if proofs.is_empty() {
        return false;
    }
    let mut contribs: Vec<Int> = Vec::with_capacity(2 * proofs.len() + 2);
    contribs.push(context.clone());
    for kp in proofs {
        match kp.proof.contribution(kp.pk) {
            Some([x, y]) => contribs.extend([x, y]),
            None => return false,
        }
    }
    contribs.push(nonce.clone());
    let refs: Vec<&Int> = contribs.iter().collect();
    let c = hash_commit(&refs, issig);
    if !proofs
        .iter()
        .all(|kp| kp.proof.verify_with_challenge(kp.pk, &c))
    {
        return false;
    }
    let mut sk_by_group: BTreeMap<&str, &Int> = BTreeMap::new();
    for kp in proofs {
        let Some(s) = kp.proof.secret_key_response() else {
            return false;
        };
        if *sk_by_group.entry(kp.group).or_insert(s) != s {
            return false;
        }
    }
    true
}

impl ProofS {
    /// Checks the issuer's proof as the app does: `c == HashCommit([ctx, A^e, A, n_2, A^(c+ê·e)])`.
    pub fn verify(&self, pk: &PublicKey, a: &Int, e: &Int, context: &Int, n2: &Int) -> bool {
        let q = pk.n.pow(a, e);
        let exp = &self.c.0 + &self.e_response.0 * e;
        let a_commit = pk.n.pow(a, &exp);
        hash_commit(&[context, &q, a, n2, &a_commit], false) == self.c.0
    }
}

/// Parses a JSON proof list, for callers that take raw bytes.
pub fn parse_proofs(json: &[u8]) -> Result<Vec<Proof>> {
    serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))
}
