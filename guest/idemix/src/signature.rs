//! Attribute-based signatures: a disclosure proof bound to a message and an Atum timestamp
//! (idemix.md §5).

use alloc::{string::String, vec::Vec};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::bigint::Int;
use crate::bigjson::Big;
use crate::disclosure::{self, AttributeIndex, Check, ConDisCon, ProofStatus, Verdict};
use crate::error::Result;
use crate::hash::{
    integer_sequence, push_integer, push_octet_string, sequence, sha256, signature_nonce,
};
use crate::proofs::{Proof, exponent_of_attribute};
use crate::scheme::Configuration;

pub const CONTEXT_V2: &str = "https://irma.app/ld/signature/v2";

/// Base64 of raw bytes, as Go encodes `[]byte`.
mod b64bytes {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        b: &[u8],
        s: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampSig {
    #[serde(rename = "Alg")]
    pub alg: String,
    #[serde(rename = "Data", with = "b64bytes")]
    pub data: Vec<u8>,
    #[serde(rename = "PublicKey", with = "b64bytes")]
    pub public_key: Vec<u8>,
}

/// An Atum timestamp over the signature's proofs and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "Time")]
    pub time: i64,
    #[serde(rename = "ServerUrl", default)]
    pub server_url: String,
    #[serde(rename = "Sig")]
    pub sig: TimestampSig,
    #[serde(rename = "Hashing", default, skip_serializing_if = "Option::is_none")]
    pub hashing: Option<serde_json::Value>,
}

/// What the app posts to `/proofs` in a signing session, and what the requestor receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedMessage {
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub ld_context: Option<String>,
    pub signature: Vec<Proof>,
    #[serde(default)]
    pub indices: Vec<Vec<AttributeIndex>>,
    #[serde(default)]
    pub nonce: Big,
    #[serde(default)]
    pub context: Big,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

impl SignedMessage {
    /// The nonce the proofs are made against: derived from session nonce, message and timestamp.
    pub fn derived_nonce(&self) -> Int {
        signature_nonce(
            &self.nonce,
            &self.message,
            self.timestamp.as_ref().map(|t| t.sig.data.as_slice()),
        )
    }

    fn version(&self) -> u8 {
        if self.ld_context.is_some() { 2 } else { 1 }
    }
}

/// The session's side of a signature request.
pub struct SignatureRequest<'a> {
    pub context: &'a Int,
    pub nonce: &'a Int,
    pub message: &'a str,
    pub disclose: &'a ConDisCon,
    pub revocation: &'a [String],
}

/// Which timestamp keys to believe. The reference asks the timestamp server online; we pin keys.
#[derive(Debug, Clone, Default)]
pub struct TimestampPolicy {
    /// Ed25519 keys whose timestamps are trusted for the signing time.
    pub trusted_keys: Vec<[u8; 32]>,
}

/// Verifies a signed message against the request it answers (`SignedMessage.Verify`).
pub fn verify(
    conf: &Configuration,
    sm: &SignedMessage,
    req: &SignatureRequest,
    policy: &TimestampPolicy,
    now: i64,
) -> Result<Verdict> {
    if sm.signature.is_empty() {
        return Ok(Verdict::invalid(ProofStatus::Invalid));
    }
    if sm.context.0 != *req.context || sm.nonce.0 != *req.nonce || sm.message != req.message {
        return Ok(Verdict::invalid(ProofStatus::UnmatchedRequest));
    }
    let mut valid_at = now;
    if let Some(ts) = &sm.timestamp {
        match verify_timestamp(conf, sm, ts)? {
            false => return Ok(Verdict::invalid(ProofStatus::InvalidTimestamp)),
            // Only a timestamp from a key we trust tells the signing time; else judge at now.
            true if policy
                .trusted_keys
                .iter()
                .any(|k| k[..] == ts.sig.public_key[..]) =>
            {
                valid_at = ts.time
            }
            true => {}
        }
    }
    let nonce = sm.derived_nonce();
    let check = Check {
        context: &sm.context,
        nonce: &nonce,
        issig: true,
        disclose: req.disclose,
        revocation: req.revocation,
        valid_at,
    };
    disclosure::verify(conf, &sm.signature, &sm.indices, &check)
}

/// The 32-byte nonce the timestamp server signed (go-atum's `TimestampRequest`). `None` when a
/// proof is unusable (no metadata, unknown key): the timestamp then cannot be valid.
pub fn timestamp_nonce(conf: &Configuration, sm: &SignedMessage) -> Result<Option<[u8; 32]>> {
    let mut sigs = Vec::new();
    let mut disclosed = Vec::new();
    for proof in &sm.signature {
        let Some(p) = proof.as_d() else {
            return Ok(None);
        };
        let Some(r) = disclosure::resolve(conf, p)? else {
            return Ok(None);
        };
        let n = r.credential_type.attributes.len() + 2;
        let vals: Vec<Int> = (0..n as u32)
            .map(|j| {
                p.a_disclosed
                    .get(&j)
                    .map(|b| b.0.clone())
                    .unwrap_or(Int::ZERO)
            })
            .collect();
        if sm.version() == 1 {
            disclosed.extend(integer_sequence(&vals));
        } else {
            if n > r.pk.r.len() {
                return Ok(None);
            }
            let exps: Vec<Int> = vals
                .iter()
                .map(|v| exponent_of_attribute(v, r.pk.params.lm))
                .collect();
            let bases: Vec<&Int> = r.pk.r[..n].iter().collect();
            let refs: Vec<&Int> = exps.iter().collect();
            push_integer(&mut disclosed, &r.pk.n.multi_exp(&bases, &refs));
        }
        sigs.push(p.a.0.clone());
    }
    let mut content = integer_sequence(&sigs);
    push_octet_string(&mut content, &sha256(sm.message.as_bytes()));
    content.extend(sequence(&disclosed));
    Ok(Some(sha256(&sequence(&content))))
}

/// Checks the Ed25519 signature of the timestamp over `u64_be(Time) ‖ nonce`.
fn verify_timestamp(conf: &Configuration, sm: &SignedMessage, ts: &Timestamp) -> Result<bool> {
    if ts.sig.alg != "ed25519" || ts.hashing.is_some() || ts.time < 0 {
        return Ok(false);
    }
    let Some(nonce) = timestamp_nonce(conf, sm)? else {
        return Ok(false);
    };
    let Ok(pk_bytes) = <[u8; 32]>::try_from(ts.sig.public_key.as_slice()) else {
        return Ok(false);
    };
    let Ok(sig_bytes) = <[u8; 64]>::try_from(ts.sig.data.as_slice()) else {
        return Ok(false);
    };
    let Ok(key) = VerifyingKey::from_bytes(&pk_bytes) else {
        return Ok(false);
    };
    let mut msg = (ts.time as u64).to_be_bytes().to_vec();
    msg.extend_from_slice(&nonce);
    use ed25519_dalek::Verifier as _;
    Ok(key.verify(&msg, &Signature::from_bytes(&sig_bytes)).is_ok())
}
