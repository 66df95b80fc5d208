//! The holder (app) side: building disclosure proofs, signatures and issuance commitments, and
//! turning an issuance response into credentials. The project's tests use this as their wallet;
//! it follows gabi's prover so that it interoperates with the verifier both ways.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::{boxed::Box, string::String, vec::Vec};

use rand_core::RngCore;

use crate::attributes::Metadata;
use crate::bigint::{Int, random_bits};
use crate::bigjson::Big;
use crate::disclosure::{AttributeIndex, Disclosure};
use crate::error::{Error, Result};
use crate::hash::hash_commit;
use crate::issuance::{CredentialRequest, IssueCommitmentMessage, IssueSignatureMessage};
use crate::keys::PublicKey;
use crate::params::{NONCE_BITS, P1024, SECRET_KEY_BITS};
use crate::proofs::{Proof, ProofD, ProofU, exponent_of_attribute};
use crate::scheme::Configuration;
use crate::signature::{SignedMessage, Timestamp};

/// A credential: a CL signature `(A, e, v)` on attributes `m` (`m[0]` is the secret key).
#[derive(Debug, Clone)]
pub struct Credential {
    pub credential_type: String,
    pub pk: Arc<PublicKey>,
    pub a: Int,
    pub e: Int,
    pub v: Int,
    pub m: Vec<Int>,
}

impl Credential {
    /// Checks the CL relation `Z = A^e · S^v · Π R[i]^m_i`.
    pub fn verify(&self) -> bool {
        let pk = &self.pk;
        if self.m.len() > pk.r.len() {
            return false;
        }
        let exps: Vec<Int> = self
            .m
            .iter()
            .map(|x| exponent_of_attribute(x, pk.params.lm))
            .collect();
        let mut bases: Vec<&Int> = vec![&self.a, &pk.s];
        let mut refs: Vec<&Int> = vec![&self.e, &self.v];
        for (r, x) in pk.r.iter().zip(&exps) {
            bases.push(r);
            refs.push(x);
        }
        pk.n.multi_exp(&bases, &refs) == &pk.z % pk.n.value()
    }

    pub fn metadata(&self) -> Option<Metadata> {
        Metadata::from_int(self.m.get(1)?)
    }
}

/// A secret key and the credentials bound to it.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub secret_key: Int,
    pub credentials: Vec<Credential>,
}

/// Which credential to prove, and which of its base indices (≥ 1) to reveal. Index 1 (the
/// metadata) is always revealed.
#[derive(Debug, Clone)]
pub struct Selection {
    pub credential: usize,
    pub disclose: Vec<usize>,
}

/// A proof under construction: its randomizers and the two integers it contributes.
struct Commitment {
    contribution: [Int; 2],
    finish: Box<dyn Fn(&Int) -> Proof>,
}

impl Wallet {
    pub fn new(rng: &mut dyn RngCore) -> Wallet {
        Wallet {
            secret_key: random_bits(rng, SECRET_KEY_BITS),
            credentials: Vec::new(),
        }
    }

    /// The randomizer of the secret key, shared by every proof of one list.
    fn sk_randomizer(rng: &mut dyn RngCore) -> Int {
        random_bits(rng, P1024.lm_commit)
    }

    fn commit_disclosure(
        &self,
        sel: &Selection,
        sk_rand: &Int,
        rng: &mut dyn RngCore,
    ) -> Result<Commitment> {
        let cred = self
            .credentials
            .get(sel.credential)
            .ok_or_else(|| Error::InvalidRequest("no such credential".into()))?
            .clone();
        let pk = cred.pk.clone();
        let p = pk.params;
        let mut disclosed: Vec<usize> = sel.disclose.clone();
        disclosed.push(1);
        disclosed.sort_unstable();
        disclosed.dedup();
        if disclosed.iter().any(|&i| i == 0 || i >= cred.m.len()) {
            return Err(Error::InvalidRequest("cannot disclose that index".into()));
        }
        // Randomize the signature: A' = A·S^r, v' = v − e·r (kept as v + ... below, unsigned).
        let r_a = random_bits(rng, p.ln + p.lstatzk);
        let a_rand = pk.n.mul(&cred.a, &pk.n.pow(&pk.s, &r_a));
        let e_prime = &cred.e - crate::bigint::pow2(p.le - 1);
        let e_tilde = random_bits(rng, p.le_commit);
        let v_tilde = random_bits(rng, p.lv_commit);
        let hidden: Vec<usize> = (0..cred.m.len())
            .filter(|i| !disclosed.contains(i))
            .collect();
        let randomizers: Vec<Int> = hidden
            .iter()
            .map(|&i| {
                if i == 0 {
                    sk_rand.clone()
                } else {
                    random_bits(rng, p.lm_commit)
                }
            })
            .collect();
        let mut bases: Vec<&Int> = vec![&a_rand, &pk.s];
        let mut exps: Vec<&Int> = vec![&e_tilde, &v_tilde];
        for (&i, t) in hidden.iter().zip(&randomizers) {
            bases.push(&pk.r[i]);
            exps.push(t);
        }
        let z_tilde = pk.n.multi_exp(&bases, &exps);
        let contribution = [a_rand.clone(), z_tilde];
        let finish = move |c: &Int| {
            let e_response = &e_tilde + c * &e_prime;
            // v̂ = ṽ + c·(v − e·r_A); negative only with probability ~2^-80.
            let plus = &v_tilde + c * &cred.v;
            let minus = c * &cred.e * &r_a;
            let v_response = if plus >= minus {
                plus - minus
            } else {
                Int::ZERO
            };
            let a_responses = hidden
                .iter()
                .zip(&randomizers)
                .map(|(&i, t)| {
                    (
                        i as u32,
                        Big(t + c * exponent_of_attribute(&cred.m[i], pk.params.lm)),
                    )
                })
                .collect();
            let a_disclosed = disclosed
                .iter()
                .map(|&i| (i as u32, Big(cred.m[i].clone())))
                .collect();
            Proof::D(ProofD {
                c: Big(c.clone()),
                a: Big(a_rand.clone()),
                e_response: Big(e_response),
                v_response: Big(v_response),
                a_responses,
                a_disclosed,
                nonrev_proof: None,
                rangeproofs: None,
            })
        };
        Ok(Commitment {
            contribution,
            finish: Box::new(finish),
        })
    }

    /// Builds proofs sharing one challenge over `context`, the commitments and `nonce`.
    fn prove(commitments: &[Commitment], context: &Int, nonce: &Int, issig: bool) -> Vec<Proof> {
        let mut values: Vec<&Int> = vec![context];
        for c in commitments {
            values.extend(c.contribution.iter());
        }
        values.push(nonce);
        let c = hash_commit(&values, issig);
        commitments.iter().map(|cm| (cm.finish)(&c)).collect()
    }

    /// Disclosure proofs for `selections`, against a session's context and nonce.
    pub fn disclosure_proofs(
        &self,
        selections: &[Selection],
        context: &Int,
        nonce: &Int,
        issig: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<Proof>> {
        let sk_rand = Self::sk_randomizer(rng);
        let commitments = selections
            .iter()
            .map(|s| self.commit_disclosure(s, &sk_rand, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::prove(&commitments, context, nonce, issig))
    }

    /// A `/proofs` body. `picks[i]` lists, for disjunction i, the (selection, base index) pairs
    /// of the chosen conjunction; selections are numbered as given.
    pub fn disclose(
        &self,
        selections: &[Selection],
        picks: &[Vec<(usize, usize)>],
        context: &Int,
        nonce: &Int,
        rng: &mut dyn RngCore,
    ) -> Result<Disclosure> {
        let proofs = self.disclosure_proofs(selections, context, nonce, false, rng)?;
        Ok(Disclosure {
            proofs,
            indices: to_indices(picks),
        })
    }

    /// An attribute-based signature on `message`. `stamp`, if given, plays the timestamp
    /// server: it sees the message with its proofs' `A` and disclosed values fixed (responses not
    /// yet), as the app's timestamp request does, and its signature is bound into the nonce.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        selections: &[Selection],
        picks: &[Vec<(usize, usize)>],
        message: &str,
        context: &Int,
        nonce: &Int,
        stamp: Option<&dyn Fn(&SignedMessage) -> Timestamp>,
        rng: &mut dyn RngCore,
    ) -> Result<SignedMessage> {
        let sk_rand = Self::sk_randomizer(rng);
        let commitments = selections
            .iter()
            .map(|s| self.commit_disclosure(s, &sk_rand, rng))
            .collect::<Result<Vec<_>>>()?;
        let mut sm = SignedMessage {
            ld_context: Some(crate::signature::CONTEXT_V2.into()),
            signature: commitments.iter().map(|c| (c.finish)(&Int::ZERO)).collect(),
            indices: to_indices(picks),
            nonce: Big(nonce.clone()),
            context: Big(context.clone()),
            message: message.into(),
            timestamp: None,
        };
        sm.timestamp = stamp.map(|f| f(&sm));
        sm.signature = Self::prove(&commitments, context, &sm.derived_nonce(), true);
        Ok(sm)
    }

    /// Starts issuance of `requests` (as the server sent them, key counters filled in), with
    /// disclosures in the same proof list. Returns the `/commitments` body and what
    /// [`Wallet::finish_issuance`] needs.
    #[allow(clippy::too_many_arguments)]
    pub fn start_issuance(
        &self,
        conf: &Configuration,
        requests: &[CredentialRequest],
        selections: &[Selection],
        picks: &[Vec<(usize, usize)>],
        context: &Int,
        nonce: &Int,
        rng: &mut dyn RngCore,
    ) -> Result<(IssueCommitmentMessage, PendingIssuance)> {
        let sk_rand = Self::sk_randomizer(rng);
        let mut commitments = selections
            .iter()
            .map(|s| self.commit_disclosure(s, &sk_rand, rng))
            .collect::<Result<Vec<_>>>()?;
        let mut pending = Vec::new();
        for cr in requests {
            let ct = conf.credential_type(&cr.credential_type)?;
            let counter = cr
                .key_counter
                .ok_or_else(|| Error::InvalidRequest("no key counter".into()))?;
            let pk = conf.public_key(&ct.issuer_id(), counter)?;
            let p = pk.params;
            let v_prime = random_bits(rng, p.lv_prime);
            // Random-blind shares m_i' of up to 255 bits.
            let blind: BTreeMap<u32, Int> = ct
                .attributes
                .iter()
                .enumerate()
                .filter(|(_, a)| a.random_blind)
                .map(|(j, _)| ((j + 2) as u32, random_bits(rng, 255)))
                .collect();
            let mut bases: Vec<&Int> = vec![&pk.s, &pk.r[0]];
            let mut exps: Vec<&Int> = vec![&v_prime, &self.secret_key];
            for (i, m) in &blind {
                bases.push(&pk.r[*i as usize]);
                exps.push(m);
            }
            let u = pk.n.multi_exp(&bases, &exps);
            let v_tilde = random_bits(rng, p.lv_prime_commit);
            let blind_tilde: BTreeMap<u32, Int> = blind
                .keys()
                .map(|&i| (i, random_bits(rng, p.lm_commit)))
                .collect();
            let mut bases: Vec<&Int> = vec![&pk.s, &pk.r[0]];
            let mut exps: Vec<&Int> = vec![&v_tilde, &sk_rand];
            for (i, t) in &blind_tilde {
                bases.push(&pk.r[*i as usize]);
                exps.push(t);
            }
            let u_tilde = pk.n.multi_exp(&bases, &exps);
            let sk = self.secret_key.clone();
            let (u2, s_rand, blind2) = (u.clone(), sk_rand.clone(), blind.clone());
            let (vp, vt) = (v_prime.clone(), v_tilde);
            let finish = move |c: &Int| {
                let m_user_responses: BTreeMap<u32, Big> = blind2
                    .iter()
                    .map(|(i, m)| (*i, Big(&blind_tilde[i] + c * m)))
                    .collect();
                Proof::U(ProofU {
                    u: Big(u2.clone()),
                    c: Big(c.clone()),
                    v_prime_response: Big(&vt + c * &vp),
                    s_response: Big(&s_rand + c * &sk),
                    m_user_responses: (!m_user_responses.is_empty()).then_some(m_user_responses),
                })
            };
            commitments.push(Commitment {
                contribution: [u, u_tilde],
                finish: Box::new(finish),
            });
            pending.push(PendingCredential {
                request: cr.clone(),
                pk,
                v_prime,
                blind,
            });
        }
        let proofs = Self::prove(&commitments, context, nonce, false);
        let n2 = random_bits(rng, NONCE_BITS);
        let msg = IssueCommitmentMessage {
            n_2: Big(n2.clone()),
            combined_proofs: proofs,
            indices: (!picks.is_empty()).then(|| to_indices(picks)),
            proof_p_jwts: None,
        };
        Ok((
            msg,
            PendingIssuance {
                n2,
                context: context.clone(),
                credentials: pending,
            },
        ))
    }

    /// Checks the issuer's answer (ProofS and the CL relation) and stores the credentials.
    pub fn finish_issuance(
        &mut self,
        conf: &Configuration,
        pending: PendingIssuance,
        sigs: &[IssueSignatureMessage],
        now: i64,
    ) -> Result<()> {
        if sigs.len() != pending.credentials.len() {
            return Err(Error::Malformed("wrong number of signatures".into()));
        }
        let mut new = Vec::new();
        for (pc, sig) in pending.credentials.into_iter().zip(sigs) {
            let ct = conf.credential_type(&pc.request.credential_type)?;
            let s = &sig.signature;
            if !sig
                .proof
                .verify(&pc.pk, &s.a, &s.e, &pending.context, &pending.n2)
            {
                return Err(Error::Malformed("issuer's ProofS does not verify".into()));
            }
            let mut m: Vec<Int> = Vec::new();
            for (i, v) in pc
                .request
                .attribute_values(ct, now)?
                .into_iter()
                .enumerate()
            {
                m.push(match v {
                    Some(x) if i == 0 => {
                        debug_assert!(x.is_zero());
                        self.secret_key.clone()
                    }
                    Some(x) => x,
                    None => {
                        let issuer = sig
                            .m_issuer
                            .as_ref()
                            .and_then(|mi| mi.get(&(i as u32)))
                            .ok_or_else(|| Error::Malformed("missing m_issuer share".into()))?;
                        &pc.blind[&(i as u32)] + &issuer.0
                    }
                });
            }
            let cred = Credential {
                credential_type: ct.id.clone(),
                pk: pc.pk,
                a: s.a.0.clone(),
                e: s.e.0.clone(),
                v: &s.v.0 + &pc.v_prime,
                m,
            };
            if !cred.verify() {
                return Err(Error::Malformed("issued signature does not verify".into()));
            }
            new.push(cred);
        }
        self.credentials.extend(new);
        Ok(())
    }
}

/// State kept between sending commitments and receiving signatures.
pub struct PendingIssuance {
    n2: Int,
    context: Int,
    credentials: Vec<PendingCredential>,
}

struct PendingCredential {
    request: CredentialRequest,
    pk: Arc<PublicKey>,
    v_prime: Int,
    blind: BTreeMap<u32, Int>,
}

fn to_indices(picks: &[Vec<(usize, usize)>]) -> Vec<Vec<AttributeIndex>> {
    picks
        .iter()
        .map(|con| {
            con.iter()
                .map(|&(cred, attr)| AttributeIndex { cred, attr })
                .collect()
        })
        .collect()
}
