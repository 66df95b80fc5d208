//! Issuance on the issuer's side: checking the app's commitments and producing CL signatures
//! with their ProofS (idemix.md §6).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::{
    boxed::Box,
    string::{String, ToString},
    vec::Vec,
};
use once_cell::race::OnceBox;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::attributes::{Metadata, WEEK, encode};
use crate::bigint::{Int, bit_len, pow2, random_bits};
use crate::bigjson::Big;
use crate::disclosure::{self, AttributeIndex, Check, ConDisCon, ProofStatus, Verdict};
use crate::error::{Error, Result};
use crate::hash::hash_commit;
use crate::keys::{PrivateKey, PublicKey};
use crate::proofs::{KeyedProof, Proof, ProofS, exponent_of_attribute, verify_proof_list};
use crate::scheme::{Configuration, CredentialType};

/// Six months, the validity the server fills in when the request gives none.
pub const DEFAULT_VALIDITY: i64 = 183 * 24 * 3600;

/// One credential of an issuance request (`CredentialRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<i64>,
    #[serde(
        rename = "keyCounter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub key_counter: Option<u32>,
    #[serde(rename = "credential")]
    pub credential_type: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(
        rename = "randomblindIDs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub random_blind_ids: Option<Vec<String>>,
}

impl CredentialRequest {
    /// Validates the request as `irma server` does when a session starts, and fills in the
    /// validity (now + 6 months) and key counter (the issuer's latest private key).
    pub fn prepare(&mut self, conf: &Configuration, now: i64) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidRequest(m));
        let ct = conf.credential_type(&self.credential_type)?;
        if ct.supports_revocation {
            return Err(Error::Unsupported(format!("{} supports revocation", ct.id)));
        }
        if conf.keyshare_group(&ct.issuer_id()) != "." {
            return Err(Error::Unsupported(format!(
                "{} is in a keyshare scheme",
                ct.id
            )));
        }
        for name in self.attributes.keys() {
            match ct.attributes.iter().find(|a| a.id == *name) {
                None => return bad(format!("{} has no attribute {name}", ct.id)),
                Some(a) if a.random_blind || a.revocation => {
                    return bad(format!(
                        "attribute {name} of {} cannot be given a value",
                        ct.id
                    ));
                }
                Some(_) => {}
            }
        }
        for a in &ct.attributes {
            if !a.optional
                && !a.random_blind
                && !a.revocation
                && !self.attributes.contains_key(&a.id)
            {
                return bad(format!("attribute {} of {} is missing", a.id, ct.id));
            }
        }
        let validity = *self.validity.get_or_insert(now + DEFAULT_VALIDITY);
        if validity.div_euclid(WEEK) * WEEK < now {
            return bad("validity is in the past".into());
        }
        let sk = conf.latest_private_key(&ct.issuer_id())?;
        let pk = conf.public_key(&ct.issuer_id(), sk.counter)?;
        if now > pk.expiry {
            return bad("cannot issue using expired public key".into());
        }
        if self.key_counter.is_some_and(|c| c != sk.counter) {
            return bad("key counter is not the latest".into());
        }
        self.key_counter = Some(sk.counter);
        let blind: Vec<String> = ct
            .attributes
            .iter()
            .filter(|a| a.random_blind)
            .map(|a| a.id.clone())
            .collect();
        self.random_blind_ids = (!blind.is_empty()).then_some(blind);
        Metadata::issue(now, validity, sk.counter, &ct.id)
            .map(|_| ())
            .ok_or_else(|| Error::InvalidRequest("validity out of range".into()))
    }

    /// The attribute exponents to sign: `m[0] = 0` (the secret key, unknown to the issuer),
    /// `m[1]` the metadata, then the encoded values; `None` marks random-blind positions.
    pub fn attribute_values(&self, ct: &CredentialType, now: i64) -> Result<Vec<Option<Int>>> {
        let counter = self
            .key_counter
            .ok_or_else(|| Error::InvalidRequest("no key counter".into()))?;
        let validity = self
            .validity
            .ok_or_else(|| Error::InvalidRequest("no validity".into()))?;
        let meta = Metadata::issue(now, validity, counter, &ct.id)
            .ok_or_else(|| Error::InvalidRequest("validity out of range".into()))?;
        let mut m = vec![Some(Int::ZERO), Some(meta.to_int())];
        for a in &ct.attributes {
            m.push(if a.random_blind {
                None
            } else if a.revocation {
                Some(Int::ZERO)
            } else {
                Some(encode(self.attributes.get(&a.id).map(String::as_str)))
            });
        }
        Ok(m)
    }
}

/// What the app posts to `/commitments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueCommitmentMessage {
    pub n_2: Big,
    #[serde(rename = "combinedProofs")]
    pub combined_proofs: Vec<Proof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<Vec<AttributeIndex>>>,
    #[serde(
        rename = "proofPJwts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proof_p_jwts: Option<BTreeMap<String, String>>,
}

/// A CL signature `(A, e, v)`; `KeyshareP` is always null from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClSignature {
    #[serde(rename = "A")]
    pub a: Big,
    pub e: Big,
    pub v: Big,
    #[serde(rename = "KeyshareP", default)]
    pub keyshare_p: Option<Big>,
}

/// One element of the `sigs` of the `/commitments` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueSignatureMessage {
    pub proof: ProofS,
    pub signature: ClSignature,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m_issuer: Option<BTreeMap<u32, Big>>,
}

/// The session's side of an issuance: prepared credential requests and the disclosure part.
pub struct IssuanceRequest<'a> {
    pub context: &'a Int,
    pub nonce: &'a Int,
    pub credentials: &'a [CredentialRequest],
    pub disclose: &'a ConDisCon,
    pub revocation: &'a [String],
}

/// Verifies the commitments and any disclosures together (one challenge), then judges the
/// disclosures against the request. Errors are `MALFORMED_INPUT` cases (idemix.md §6.3).
pub fn verify_commitments(
    conf: &Configuration,
    msg: &IssueCommitmentMessage,
    req: &IssuanceRequest,
    now: i64,
) -> Result<Verdict> {
    let proofs = &msg.combined_proofs;
    let disclose_count = proofs
        .len()
        .checked_sub(req.credentials.len())
        .ok_or_else(|| Error::Malformed("fewer proofs than credentials".into()))?;
    let (disclosures, commitments) = proofs.split_at(disclose_count);
    let mut resolved = Vec::with_capacity(disclose_count);
    for proof in disclosures {
        let Proof::D(p) = proof else {
            return Err(Error::Malformed("expected a disclosure proof".into()));
        };
        if p.nonrev_proof.is_some() || p.rangeproofs.is_some() {
            return Err(Error::Unsupported("non-revocation and range proofs".into()));
        }
        match disclosure::resolve(conf, p) {
            Ok(Some(r)) => resolved.push(r),
            Ok(None) => return Ok(Verdict::invalid(ProofStatus::Invalid)),
            Err(e) => return Err(Error::Malformed(e.to_string())),
        }
    }
    let mut keys: Vec<Arc<PublicKey>> = resolved.iter().map(|r| r.pk.clone()).collect();
    for (proof, cr) in commitments.iter().zip(req.credentials) {
        if !matches!(proof, Proof::U(_)) {
            return Err(Error::Malformed("expected a commitment proof".into()));
        }
        let ct = conf.credential_type(&cr.credential_type)?;
        let counter = cr
            .key_counter
            .ok_or_else(|| Error::InvalidRequest("no key counter".into()))?;
        keys.push(
            conf.public_key(&ct.issuer_id(), counter)
                .map_err(|e| Error::Malformed(e.to_string()))?,
        );
    }
    let groups: Vec<String> = keys
        .iter()
        .map(|k| conf.keyshare_group(&k.issuer))
        .collect();
    if groups.iter().any(|g| g != ".") {
        return Err(Error::Unsupported("keyshare proofs".into()));
    }
    let keyed: Vec<KeyedProof> = proofs
        .iter()
        .zip(&keys)
        .zip(&groups)
        .map(|((proof, pk), g)| KeyedProof {
            proof,
            pk,
            group: g,
        })
        .collect();
    if !verify_proof_list(&keyed, req.context, req.nonce, false) {
        return Ok(Verdict::invalid(ProofStatus::Invalid));
    }
    let indices = msg.indices.clone().unwrap_or_default();
    let check = Check {
        context: req.context,
        nonce: req.nonce,
        issig: false,
        disclose: req.disclose,
        revocation: req.revocation,
        valid_at: now,
    };
    disclosure::judge(conf, disclosures, &resolved, &indices, &check)
}

/// Signs credential `cr` on the commitment `u` (from its ProofU), with ProofS bound to `n2`.
pub fn sign(
    conf: &Configuration,
    cr: &CredentialRequest,
    u: &Int,
    n2: &Int,
    now: i64,
    rng: &mut dyn RngCore,
) -> Result<IssueSignatureMessage> {
    let ct = conf.credential_type(&cr.credential_type)?;
    let counter = cr
        .key_counter
        .ok_or_else(|| Error::InvalidRequest("no key counter".into()))?;
    let pk = conf.public_key(&ct.issuer_id(), counter)?;
    let sk = conf.latest_private_key(&ct.issuer_id())?;
    if sk.counter != counter {
        return Err(Error::InvalidRequest(
            "key counter is not the latest".into(),
        ));
    }
    let values = cr.attribute_values(ct, now)?;
    let mut m_issuer = BTreeMap::new();
    let m: Vec<Int> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.unwrap_or_else(|| {
                let share = random_bits(rng, pk.params.lm - 1);
                m_issuer.insert(i as u32, Big(share.clone()));
                share
            })
        })
        .collect();
    if m.len() > pk.r.len() {
        return Err(Error::InvalidRequest(format!(
            "{} has more attributes than its key has bases",
            ct.id
        )));
    }
    let (signature, proof) = sign_commitment(&pk, &sk, &m, u, n2, rng)?;
    Ok(IssueSignatureMessage {
        proof,
        signature,
        m_issuer: (!m_issuer.is_empty()).then_some(m_issuer),
    })
}

/// The CL signature on `U · Π R[i]^m_i` and its ProofS (gabi's `signMessageBlockAndCommitment`
/// and `proveSignature`). `A = Q^d` is computed by RSA-CRT and checked (`A^e = Q`) before
/// anything is returned.
pub fn sign_commitment(
    pk: &PublicKey,
    sk: &PrivateKey,
    m: &[Int],
    u: &Int,
    n2: &Int,
    rng: &mut dyn RngCore,
) -> Result<(ClSignature, ProofS)> {
    let fail = |m: &str| Error::IssuanceFailed(m.into());
    let p = pk.params;
    let n = &pk.n;
    let v_tilde = random_bits(rng, p.lv - 1);
    let v2 = pow2(p.lv - 1) + v_tilde;
    let e = random_prime_e(p.le, p.le_prime, rng);
    let mut bases: Vec<&Int> = vec![&pk.s, u];
    let mut exps: Vec<Int> = vec![v2.clone(), Int::ONE];
    for (i, mi) in m.iter().enumerate().skip(1) {
        bases.push(&pk.r[i]);
        exps.push(exponent_of_attribute(mi, p.lm));
    }
    let refs: Vec<&Int> = exps.iter().collect();
    let denom = n.multi_exp(&bases, &refs);
    let q = n.mul(
        &pk.z,
        &n.inv(&denom)
            .ok_or_else(|| fail("commitment not invertible"))?,
    );
    let ClSigning { a, c, e_response } = match SIGNER.get() {
        Some(signer) => signer
            .sign(&pk.issuer, sk.counter, &q, &e, n2)
            .ok_or_else(|| fail("the key holder did not sign"))?,
        None => sign_with_key(sk, &q, &e, n2, rng)?,
    };
    // Whoever signed: the signature must verify before it leaves.
    if n.pow(&a, &e) != q {
        return Err(fail("signature self-check failed"));
    }
    Ok((
        ClSignature {
            a: Big(a),
            e: Big(e),
            v: Big(v2),
            keyshare_p: None,
        },
        ProofS {
            c: Big(c),
            e_response: Big(e_response),
        },
    ))
}

/// What only the private key can make: `A = Q^(1/e) mod N` and ProofS's `c` and response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClSigning {
    pub a: Int,
    pub c: Int,
    pub e_response: Int,
}

/// Holds issuer private keys and signs with them. Installed, it takes the private-key steps
/// of issuing out of this process: the server's guest hands them to the host, which keeps
/// the keys and their constant-time precomputation (built once per key) and runs them with
/// native 64-bit arithmetic. Without one, [`sign_with_key`] runs here.
pub trait IssuerSigner: Send + Sync {
    /// Signs `q` with exponent `e` (a prime) under `issuer`'s key `counter`, ProofS bound to
    /// `n2`; `None` when it holds no such key or `e` is not invertible.
    fn sign(&self, issuer: &str, counter: u32, q: &Int, e: &Int, n2: &Int) -> Option<ClSigning>;
}

static SIGNER: OnceBox<Box<dyn IssuerSigner>> = OnceBox::new();

/// Installs an [`IssuerSigner`] (once, before first use). Returns false when one was installed
/// already.
pub fn set_issuer_signer(signer: Box<dyn IssuerSigner>) -> bool {
    SIGNER.set(Box::new(signer)).is_ok()
}

/// The private-key steps of issuing with `sk`, every one constant time in the
/// key and the secret exponents (crate::ct): `d = e^-1 mod p'q'`, `A = Q^d`, the ProofS nonce
/// `r`, `Q^r`, and `r - c·d mod p'q'`. It does not check `A^e = Q`: [`sign_commitment`] does,
/// once, whoever signed.
pub fn sign_with_key(
    sk: &PrivateKey,
    q: &Int,
    e: &Int,
    n2: &Int,
    rng: &mut dyn RngCore,
) -> Result<ClSigning> {
    let fail = |m: &str| Error::IssuanceFailed(m.into());
    if !sk.can_sign() {
        return Err(fail("the private key's primes are unusable"));
    }
    let d = sk
        .inverse_mod_order(e)
        .ok_or_else(|| fail("e not invertible"))?;
    let a = sk.pow_crt(q, &d);
    // ProofS
    let r = sk.random_unit(rng);
    let a_commit = sk.pow_crt(q, &r);
    let c = hash_commit(&[&Int::ONE, q, &a, n2, &a_commit], false);
    let cd = sk.mul_mod_order(&c, &d);
    let e_response = sk.sub_mod_order(&r, &cd).into_public();
    Ok(ClSigning { a, c, e_response })
}

/// A prime in `[2^(le-1), 2^(le-1) + 2^(le_prime-1)]`, drawn as gabi does: a random odd offset
/// of `le_prime - 1` bits above `2^(le-1)`.
pub fn random_prime_e(le: usize, le_prime: usize, rng: &mut dyn RngCore) -> Int {
    let base = pow2(le - 1);
    loop {
        let offset = random_bits(rng, le_prime - 1) | Int::ONE;
        let e = &base + offset;
        if crate::bigint::is_probable_prime(&e, 20, rng) {
            debug_assert!(bit_len(&e) == le);
            return e;
        }
    }
}
