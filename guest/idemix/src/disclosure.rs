//! Verifying what an app discloses, and matching it against a condiscon request
//! (idemix.md §4.3 to §4.7).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::{
    string::{String, ToString},
    vec::Vec,
};

use serde::{Deserialize, Serialize};

use crate::attributes::{Metadata, decode, decode_random_blind};
use crate::bigint::Int;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::proofs::{KeyedProof, Proof, ProofD, verify_proof_list};
use crate::scheme::{Configuration, CredentialType};

/// The outcome of checking proofs, as in the session result's `proofStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProofStatus {
    Valid,
    Invalid,
    InvalidTimestamp,
    UnmatchedRequest,
    MissingAttributes,
    Expired,
}

/// One requested attribute: a bare identifier, or `{type, value?, notNull?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeRequest {
    Id(String),
    Full {
        #[serde(rename = "type")]
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(
            default,
            rename = "notNull",
            skip_serializing_if = "core::ops::Not::not"
        )]
        not_null: bool,
    },
}

impl AttributeRequest {
    pub fn id(&self) -> &str {
        match self {
            AttributeRequest::Id(id) | AttributeRequest::Full { id, .. } => id,
        }
    }

    /// Whether a disclosed `(id, value)` satisfies this request.
    pub fn satisfy(&self, id: &str, value: Option<&str>) -> bool {
        match self {
            AttributeRequest::Id(want) => want == id,
            AttributeRequest::Full {
                id: want,
                value: want_value,
                not_null,
            } => {
                want == id
                    && (!not_null || value.is_some())
                    && want_value.as_deref().is_none_or(|w| value == Some(w))
            }
        }
    }
}

/// `disclose`: a conjunction of disjunctions of conjunctions of attribute requests.
pub type ConDisCon = Vec<Vec<Vec<AttributeRequest>>>;

/// Where the j-th attribute of a chosen conjunction is: proof `cred`, base index `attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeIndex {
    pub cred: usize,
    pub attr: usize,
}

/// What the app posts to `/proofs` in a disclosure session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disclosure {
    pub proofs: Vec<Proof>,
    #[serde(default)]
    pub indices: Vec<Vec<AttributeIndex>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttributeStatus {
    Present,
    Extra,
    Null,
}

/// A disclosed attribute in the JSON shape of the session result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosedAttribute {
    pub rawvalue: Option<String>,
    /// `{"": v, "en": v, "nl": v}`, or null for a null value.
    pub value: Option<BTreeMap<String, String>>,
    pub id: String,
    pub status: AttributeStatus,
    pub issuancetime: i64,
}

impl DisclosedAttribute {
    fn new(id: String, raw: Option<String>, issuancetime: i64) -> DisclosedAttribute {
        let value = raw.as_ref().map(|v| {
            ["", "en", "nl"]
                .iter()
                .map(|l| (l.to_string(), v.clone()))
                .collect()
        });
        let status = if raw.is_some() {
            AttributeStatus::Present
        } else {
            AttributeStatus::Null
        };
        DisclosedAttribute {
            rawvalue: raw,
            value,
            id,
            status,
            issuancetime,
        }
    }
}

/// The verdict on a disclosure: its status and, unless invalid, the attributes per disjunction
/// (null where a disjunction is unsatisfied), plus a last group of extra attributes if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: ProofStatus,
    pub disclosed: Option<Vec<Option<Vec<DisclosedAttribute>>>>,
}

impl Verdict {
    pub(crate) fn invalid(status: ProofStatus) -> Verdict {
        Verdict {
            status,
            disclosed: None,
        }
    }
}

/// What to check a list of proofs against.
pub struct Check<'a> {
    pub context: &'a Int,
    pub nonce: &'a Int,
    /// True for attribute-based signatures (`nonce` is then the derived one).
    pub issig: bool,
    pub disclose: &'a ConDisCon,
    /// Credential types for which the request asks non-revocation proofs.
    pub revocation: &'a [String],
    /// The moment credentials must be valid at (now, or the signature's timestamp).
    pub valid_at: i64,
}

/// A ProofD with what its metadata says.
pub(crate) struct Resolved<'c> {
    pub metadata: Metadata,
    pub credential_type: &'c CredentialType,
    pub pk: Arc<PublicKey>,
}

/// Looks up the credential type and public key of a ProofD from its disclosed metadata.
/// `Ok(None)` means the proof has no usable metadata, which makes it invalid.
pub(crate) fn resolve<'c>(conf: &'c Configuration, p: &ProofD) -> Result<Option<Resolved<'c>>> {
    let Some(meta) = p.a_disclosed.get(&1).and_then(|m| Metadata::from_int(m)) else {
        return Ok(None);
    };
    let ct = conf.credential_type_by_hash(&meta.type_hash)?;
    let pk = conf.public_key(&ct.issuer_id(), meta.key_counter as u32)?;
    Ok(Some(Resolved {
        metadata: meta,
        credential_type: ct,
        pk,
    }))
}

/// Verifies disclosure proofs (all must be ProofDs) and matches them against the request.
/// Errors are for inputs that cannot be judged at all (unknown key, unknown type, features we
/// do not support); every other defect is a [`ProofStatus`].
pub fn verify(
    conf: &Configuration,
    proofs: &[Proof],
    indices: &[Vec<AttributeIndex>],
    check: &Check,
) -> Result<Verdict> {
    let mut resolved = Vec::with_capacity(proofs.len());
    for proof in proofs {
        let Proof::D(p) = proof else {
            return Err(Error::Malformed("expected only disclosure proofs".into()));
        };
        if p.rangeproofs.is_some() {
            return Err(Error::Unsupported("range proofs".into()));
        }
        if p.nonrev_proof.is_some() {
            return Err(Error::Unsupported("non-revocation proofs".into()));
        }
        match resolve(conf, p)? {
            Some(r) => resolved.push(r),
            None => return Ok(Verdict::invalid(ProofStatus::Invalid)),
        }
    }
    let groups: Vec<String> = resolved
        .iter()
        .map(|r| conf.keyshare_group(&r.pk.issuer))
        .collect();
    if !proofs.is_empty() {
        let keyed: Vec<KeyedProof> = proofs
            .iter()
            .zip(&resolved)
            .zip(&groups)
            .map(|((proof, r), g)| KeyedProof {
                proof,
                pk: &r.pk,
                group: g,
            })
            .collect();
        if !verify_proof_list(&keyed, check.context, check.nonce, check.issig) {
            return Ok(Verdict::invalid(ProofStatus::Invalid));
        }
    }
    judge(conf, proofs, &resolved, indices, check)
}

/// Everything after the cryptography: singletons, revocation presence, the request, expiry.
pub(crate) fn judge(
    _conf: &Configuration,
    proofs: &[Proof],
    resolved: &[Resolved],
    indices: &[Vec<AttributeIndex>],
    check: &Check,
) -> Result<Verdict> {
    let mut singletons = BTreeSet::new();
    for r in resolved {
        let ct = r.credential_type;
        if ct.singleton && !singletons.insert(ct.id.as_str()) {
            return Ok(Verdict::invalid(ProofStatus::Invalid));
        }
        if check.revocation.contains(&ct.id) {
            // The request wants a non-revocation proof and this one has none.
            return Ok(Verdict::invalid(ProofStatus::Invalid));
        }
    }
    let extractor = Extractor { proofs, resolved };
    let Some((complete, mut list)) = extractor.satisfy(check.disclose, indices) else {
        return Ok(Verdict::invalid(ProofStatus::Invalid));
    };
    let Some(extra) = extractor.extra(indices, check.disclose.len()) else {
        return Ok(Verdict::invalid(ProofStatus::Invalid));
    };
    if !extra.is_empty() {
        list.push(Some(extra));
    }
    let expired = resolved
        .iter()
        .any(|r| r.metadata.expiry() < check.valid_at || r.metadata.signing_date() > r.pk.expiry);
    let status = if !complete {
        ProofStatus::MissingAttributes
    } else if expired {
        ProofStatus::Expired
    } else {
        ProofStatus::Valid
    };
    Ok(Verdict {
        status,
        disclosed: Some(list),
    })
}

/// Reads disclosed attributes out of a proof list.
struct Extractor<'a, 'c> {
    proofs: &'a [Proof],
    resolved: &'a [Resolved<'c>],
}

impl Extractor<'_, '_> {
    /// The attribute at `ix`, or `None` when the index points nowhere valid.
    fn extract(&self, ix: AttributeIndex) -> Option<DisclosedAttribute> {
        let p = self.proofs.get(ix.cred)?.as_d()?;
        let r = self.resolved.get(ix.cred)?;
        let ct = r.credential_type;
        let time = r.metadata.signing_date();
        if ix.attr == 1 {
            return Some(DisclosedAttribute::new(
                ct.id.clone(),
                Some("present".into()),
                time,
            ));
        }
        let at = ct.attributes.get(ix.attr.checked_sub(2)?)?;
        let raw = p.a_disclosed.get(&u32::try_from(ix.attr).ok()?)?;
        let value = if at.random_blind {
            Some(decode_random_blind(raw))
        } else {
            decode(raw, r.metadata.version)
        };
        Some(DisclosedAttribute::new(
            format!("{}.{}", ct.id, at.id),
            value,
            time,
        ))
    }

    /// `AttributeConDisCon.Satisfy`: whether every disjunction is satisfied, and per disjunction
    /// the attributes of the first satisfied conjunction (None if unsatisfied). `None` overall
    /// when an index is out of range.
    #[allow(clippy::type_complexity)]
    fn satisfy(
        &self,
        cdc: &ConDisCon,
        indices: &[Vec<AttributeIndex>],
    ) -> Option<(bool, Vec<Option<Vec<DisclosedAttribute>>>)> {
        if indices.len() < cdc.len() {
            return Some((false, Vec::new()));
        }
        let mut complete = true;
        let mut list = Vec::with_capacity(cdc.len());
        for (discon, ind) in cdc.iter().zip(indices) {
            let mut chosen = None;
            'cons: for con in discon {
                if ind.len() < con.len() {
                    continue;
                }
                let mut attrs = Vec::with_capacity(con.len());
                for (req, ix) in con.iter().zip(ind) {
                    let attr = self.extract(*ix)?;
                    if !req.satisfy(&attr.id, attr.rawvalue.as_deref()) {
                        continue 'cons;
                    }
                    attrs.push(attr);
                }
                chosen = Some(attrs);
                break;
            }
            complete &= chosen.is_some();
            list.push(chosen);
        }
        Some((complete, list))
    }

    /// Disclosed attributes (base index ≥ 2) that no index of the first `n` disjunctions names.
    fn extra(&self, indices: &[Vec<AttributeIndex>], n: usize) -> Option<Vec<DisclosedAttribute>> {
        let named: BTreeSet<(usize, usize)> = indices
            .iter()
            .take(n)
            .flatten()
            .map(|ix| (ix.cred, ix.attr))
            .collect();
        let mut out = Vec::new();
        for (cred, proof) in self.proofs.iter().enumerate() {
            let Some(p) = proof.as_d() else { continue };
            for &attr in p.a_disclosed.keys() {
                let attr = attr as usize;
                if attr < 2 || named.contains(&(cred, attr)) {
                    continue;
                }
                let mut a = self.extract(AttributeIndex { cred, attr })?;
                a.status = AttributeStatus::Extra;
                out.push(a);
            }
        }
        Some(out)
    }
}
