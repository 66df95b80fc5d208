//! Every proof the real IRMA app made in the recorded sessions verifies to its recorded outcome,
//! and the same proofs with any single value changed, or against another nonce or context, do not.

mod common;

use std::collections::BTreeMap;

use irma_idemix::bigint::Int;
use irma_idemix::bigjson::{Big, from_base64};
use irma_idemix::disclosure::{self, Check, ConDisCon, Disclosure};
use irma_idemix::issuance::{
    self, CredentialRequest, IssuanceRequest, IssueCommitmentMessage, IssueSignatureMessage,
};
use irma_idemix::proofs::Proof;
use irma_idemix::signature::{self, SignatureRequest, SignedMessage, TimestampPolicy};
use irma_idemix::{Error, ProofStatus, Verdict};
use serde_json::Value;

use common::{atum_key, conf, transcript, transcript_names};

/// One app POST of a transcript, with the request the app saw.
struct Session {
    name: String,
    kind: String,
    request: Value,
    body: String,
    response: Value,
    expected_disclosed: Value,
    now: i64,
}

fn sessions() -> Vec<Session> {
    let mut out = Vec::new();
    for name in transcript_names() {
        let t = transcript(&name);
        let Some(list) = t["verification"]["sessions"].as_array() else {
            continue;
        };
        for (i, s) in list.iter().enumerate() {
            let Some(post) = s["post_seq"].as_u64() else {
                continue;
            };
            let get = s["get_seq"].as_u64().unwrap() as usize;
            let result = if i == 0 {
                &t["result"]
            } else {
                &t["chained_sessions"][i - 1]["result"]
            };
            out.push(Session {
                name: format!("{name}#{i}"),
                kind: s["irmago_replay"]["kind"].as_str().unwrap().to_owned(),
                request: t["exchanges"][get]["response"]["body_json"]["request"].clone(),
                body: t["exchanges"][post as usize]["request"]["body"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                response: t["exchanges"][post as usize]["response"]["body_json"].clone(),
                expected_disclosed: result["disclosed"].clone(),
                now: t["recorded_at_unix"].as_i64().unwrap(),
            });
        }
    }
    assert!(
        out.len() >= 12,
        "expected the recorded sessions, found {}",
        out.len()
    );
    out
}

fn big(v: &Value) -> Int {
    from_base64(v.as_str().unwrap()).unwrap()
}

fn disclose_of(req: &Value) -> ConDisCon {
    serde_json::from_value(req.get("disclose").cloned().unwrap_or(Value::Array(vec![]))).unwrap()
}

/// Verifies a session's POST body, with optional context/nonce overrides.
fn verify(s: &Session, body: &str, context: &Int, nonce: &Int) -> Result<Verdict, Error> {
    let c = conf();
    let disclose = disclose_of(&s.request);
    match s.kind.as_str() {
        "disclosing" => {
            let d: Disclosure = serde_json::from_str(body).unwrap();
            let check = Check {
                context,
                nonce,
                issig: false,
                disclose: &disclose,
                revocation: &[],
                valid_at: s.now,
            };
            disclosure::verify(c, &d.proofs, &d.indices, &check)
        }
        "signing" => {
            let sm: SignedMessage = serde_json::from_str(body).unwrap();
            let req = SignatureRequest {
                context,
                nonce,
                message: s.request["message"].as_str().unwrap(),
                disclose: &disclose,
                revocation: &[],
            };
            let policy = TimestampPolicy {
                trusted_keys: vec![atum_key()],
            };
            signature::verify(c, &sm, &req, &policy, s.now)
        }
        "issuing" => {
            let msg: IssueCommitmentMessage = serde_json::from_str(body).unwrap();
            let creds: Vec<CredentialRequest> =
                serde_json::from_value(s.request["credentials"].clone()).unwrap();
            let req = IssuanceRequest {
                context,
                nonce,
                credentials: &creds,
                disclose: &disclose,
                revocation: &[],
            };
            issuance::verify_commitments(c, &msg, &req, s.now)
        }
        k => panic!("unknown kind {k}"),
    }
}

fn verify_as_recorded(s: &Session, body: &str) -> Result<Verdict, Error> {
    verify(
        s,
        body,
        &big(&s.request["context"]),
        &big(&s.request["nonce"]),
    )
}

/// Compares disclosed attributes with the recorded result (all fields the result has).
fn assert_disclosed(s: &Session, v: &Verdict) {
    let ours = serde_json::to_value(&v.disclosed).unwrap();
    let expected = match &s.expected_disclosed {
        Value::Null => Value::Array(vec![]),
        e => e.clone(),
    };
    let ours = if ours.is_null() {
        Value::Array(vec![])
    } else {
        ours
    };
    assert_eq!(ours, expected, "{}: disclosed attributes", s.name);
}

#[test]
fn every_recorded_proof_verifies_to_its_recorded_outcome() {
    if !common::have_testdata() {
        return;
    }
    for s in sessions() {
        let v = verify_as_recorded(&s, &s.body).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let expected: ProofStatus =
            serde_json::from_value(s.response["proofStatus"].clone()).unwrap();
        assert_eq!(v.status, expected, "{}", s.name);
        assert_disclosed(&s, &v);
    }
}

#[test]
fn another_nonce_or_context_is_rejected() {
    if !common::have_testdata() {
        return;
    }
    for s in sessions() {
        let nonce = big(&s.request["nonce"]);
        let context = big(&s.request["context"]);
        let v = verify(&s, &s.body, &context, &(&nonce + Int::ONE)).unwrap();
        let expected = if s.kind == "signing" {
            ProofStatus::UnmatchedRequest
        } else {
            ProofStatus::Invalid
        };
        assert_eq!(v.status, expected, "{}: nonce+1", s.name);
        let v = verify(&s, &s.body, &(&context + Int::ONE), &nonce).unwrap();
        assert_ne!(v.status, ProofStatus::Valid, "{}: context+1", s.name);
    }
}

/// Every big-integer response of every proof, as JSON paths into the POST body.
fn response_paths(body: &Value) -> Vec<Vec<String>> {
    let (list, key) = if body.get("proofs").is_some() {
        (&body["proofs"], "proofs")
    } else if body.get("signature").is_some() {
        (&body["signature"], "signature")
    } else {
        (&body["combinedProofs"], "combinedProofs")
    };
    let mut out = Vec::new();
    for (i, p) in list.as_array().unwrap().iter().enumerate() {
        for (field, v) in p.as_object().unwrap() {
            let base = vec![key.to_owned(), i.to_string(), field.clone()];
            match v {
                Value::String(_) => out.push(base),
                Value::Object(m) => {
                    for k in m.keys() {
                        let mut path = base.clone();
                        path.push(k.clone());
                        out.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn bump(body: &Value, path: &[String]) -> String {
    let mut b = body.clone();
    let mut v = &mut b;
    for k in path {
        v = if let Ok(i) = k.parse::<usize>() {
            if v.is_array() {
                &mut v[i]
            } else {
                &mut v[k.as_str()]
            }
        } else {
            &mut v[k.as_str()]
        };
    }
    let x = from_base64(v.as_str().unwrap()).unwrap() + Int::ONE;
    *v = serde_json::to_value(Big(x)).unwrap();
    serde_json::to_string(&b).unwrap()
}

#[test]
fn any_single_changed_value_is_rejected() {
    if !common::have_testdata() {
        return;
    }
    let mut checked = 0;
    for s in sessions() {
        let body: Value = serde_json::from_str(&s.body).unwrap();
        for path in response_paths(&body) {
            let tampered = bump(&body, &path);
            match verify_as_recorded(&s, &tampered) {
                // The timestamp covers A and the disclosed values, so a signature may fail there first.
                Ok(v) => assert!(
                    v.status == ProofStatus::Invalid
                        || (s.kind == "signing" && v.status == ProofStatus::InvalidTimestamp),
                    "{}: changing {path:?} gave {:?}",
                    s.name,
                    v.status
                ),
                // Changing the metadata attribute names a credential type or key that does not exist.
                Err(Error::UnknownCredentialType(_) | Error::UnknownPublicKey { .. }) => {
                    assert!(path.last().unwrap() == "1", "{}: {path:?}", s.name)
                }
                Err(Error::Malformed(m)) if s.kind == "issuing" => {
                    assert!(path.last().unwrap() == "1", "{}: {path:?}: {m}", s.name)
                }
                Err(e) => panic!("{}: changing {path:?}: {e}", s.name),
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} values changed");
}

#[test]
fn recorded_issuer_output_verifies_and_our_issuer_signs_the_recorded_commitments() {
    if !common::have_testdata() {
        return;
    }
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    let c = conf();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let mut count = 0;
    for s in sessions().into_iter().filter(|s| s.kind == "issuing") {
        let msg: IssueCommitmentMessage = serde_json::from_str(&s.body).unwrap();
        let creds: Vec<CredentialRequest> =
            serde_json::from_value(s.request["credentials"].clone()).unwrap();
        let recorded: Vec<IssueSignatureMessage> =
            serde_json::from_value(s.response["sigs"].clone()).unwrap();
        let us = &msg.combined_proofs[msg.combined_proofs.len() - creds.len()..];
        for ((cr, sig), proof) in creds.iter().zip(&recorded).zip(us) {
            let Proof::U(pu) = proof else {
                panic!("not a ProofU")
            };
            let ct = c.credential_type(&cr.credential_type).unwrap();
            let pk = c
                .public_key(&ct.issuer_id(), cr.key_counter.unwrap())
                .unwrap();
            let m: Vec<Int> = cr
                .attribute_values(ct, s.now)
                .unwrap()
                .into_iter()
                .map(Option::unwrap)
                .collect();
            let check = |a: &Int, e: &Int, v: &Int| {
                let mut bases = vec![a, &pk.s, &pu.u.0];
                let mut exps = vec![e.clone(), v.clone(), Int::ONE];
                for (i, mi) in m.iter().enumerate().skip(1) {
                    bases.push(&pk.r[i]);
                    exps.push(irma_idemix::proofs::exponent_of_attribute(mi, pk.params.lm));
                }
                let refs: Vec<&Int> = exps.iter().collect();
                pk.n.multi_exp(&bases, &refs) == pk.z
            };
            let g = &sig.signature;
            assert!(
                sig.proof.verify(&pk, &g.a, &g.e, &Int::ONE, &msg.n_2),
                "{}: recorded ProofS",
                s.name
            );
            assert!(
                check(&g.a, &g.e, &g.v),
                "{}: recorded CL relation (our attribute encoding)",
                s.name
            );
            let ours = issuance::sign(c, cr, &pu.u, &msg.n_2, s.now, &mut rng).unwrap();
            let o = &ours.signature;
            assert!(
                ours.proof.verify(&pk, &o.a, &o.e, &Int::ONE, &msg.n_2),
                "{}: our ProofS",
                s.name
            );
            assert!(check(&o.a, &o.e, &o.v), "{}: our CL relation", s.name);
            let p = pk.params;
            assert_eq!(irma_idemix::bigint::bit_len(&o.v), p.lv);
            assert!(o.e.0 > irma_idemix::bigint::pow2(p.le - 1));
            assert!(
                o.e.0
                    <= irma_idemix::bigint::pow2(p.le - 1)
                        + irma_idemix::bigint::pow2(p.le_prime - 1)
            );
            count += 1;
        }
    }
    assert_eq!(count, 3);
}

#[test]
fn the_timestamp_nonce_equals_what_the_app_sent_to_the_timestamp_server() {
    if !common::have_testdata() {
        return;
    }
    let t = transcript("sign-message");
    let s = &t["verification"]["sessions"][0];
    let body = t["exchanges"][s["post_seq"].as_u64().unwrap() as usize]["request"]["body"]
        .as_str()
        .unwrap();
    let sm: SignedMessage = serde_json::from_str(body).unwrap();
    let atum = t["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["channel"] == "atum" && e["request"]["method"] == "POST")
        .unwrap();
    let sent = atum["request"]["body_json"]["Nonce"].as_str().unwrap();
    let ours = signature::timestamp_nonce(conf(), &sm).unwrap().unwrap();
    use base64::Engine as _;
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(ours), sent);
}

#[test]
fn a_signature_against_another_message_is_unmatched_and_a_forged_timestamp_invalid() {
    if !common::have_testdata() {
        return;
    }
    let s = sessions()
        .into_iter()
        .find(|s| s.kind == "signing")
        .unwrap();
    let c = conf();
    let sm: SignedMessage = serde_json::from_str(&s.body).unwrap();
    let disclose = disclose_of(&s.request);
    let (ctx, nonce) = (big(&s.request["context"]), big(&s.request["nonce"]));
    let policy = TimestampPolicy {
        trusted_keys: vec![atum_key()],
    };
    let req = |message| SignatureRequest {
        context: &ctx,
        nonce: &nonce,
        message,
        disclose: &disclose,
        revocation: &[],
    };
    let v = signature::verify(c, &sm, &req("another message"), &policy, s.now).unwrap();
    assert_eq!(v.status, ProofStatus::UnmatchedRequest);
    let mut forged = sm.clone();
    forged.timestamp.as_mut().unwrap().time += 1;
    let v = signature::verify(c, &forged, &req("Hello, stateless world"), &policy, s.now).unwrap();
    assert_eq!(v.status, ProofStatus::InvalidTimestamp);
    // The signature does not age: judged at the timestamp's time, even decades later.
    let v = signature::verify(
        c,
        &sm,
        &req("Hello, stateless world"),
        &policy,
        s.now + 100 * 365 * 86400,
    )
    .unwrap();
    assert_eq!(v.status, ProofStatus::Valid);
    // An untrusted timestamp key: the signature still verifies, but expiry is judged at now.
    let v = signature::verify(
        c,
        &sm,
        &req("Hello, stateless world"),
        &TimestampPolicy::default(),
        s.now + 100 * 365 * 86400,
    )
    .unwrap();
    assert_eq!(v.status, ProofStatus::Expired);
    // Without the issig flag the same proofs do not verify.
    let d = sm.signature.clone();
    let check = Check {
        context: &ctx,
        nonce: &sm.derived_nonce(),
        issig: false,
        disclose: &disclose,
        revocation: &[],
        valid_at: s.now,
    };
    assert_eq!(
        disclosure::verify(c, &d, &sm.indices, &check)
            .unwrap()
            .status,
        ProofStatus::Invalid
    );
}

#[test]
fn disclosures_age_into_expired_and_missing_attributes_are_reported() {
    if !common::have_testdata() {
        return;
    }
    let s = sessions()
        .into_iter()
        .find(|s| s.name.starts_with("disclose-studentid#"))
        .unwrap();
    let c = conf();
    let d: Disclosure = serde_json::from_str(&s.body).unwrap();
    let (ctx, nonce) = (big(&s.request["context"]), big(&s.request["nonce"]));
    let disclose = disclose_of(&s.request);
    let at = |t| Check {
        context: &ctx,
        nonce: &nonce,
        issig: false,
        disclose: &disclose,
        revocation: &[],
        valid_at: t,
    };
    // studentCard expires 2029-12-27T00:00Z (per the transcripts' index).
    let expiry = 1893024000;
    assert_eq!(
        disclosure::verify(c, &d.proofs, &d.indices, &at(expiry - 1))
            .unwrap()
            .status,
        ProofStatus::Valid
    );
    assert_eq!(
        disclosure::verify(c, &d.proofs, &d.indices, &at(expiry + 3600))
            .unwrap()
            .status,
        ProofStatus::Expired
    );
    let other: ConDisCon =
        serde_json::from_str(r#"[[["irma-demo.MijnOverheid.root.BSN"]]]"#).unwrap();
    let check = Check {
        disclose: &other,
        ..at(s.now)
    };
    let v = disclosure::verify(c, &d.proofs, &d.indices, &check).unwrap();
    assert_eq!(v.status, ProofStatus::MissingAttributes);
    // The index still names the studentID, so it is not an extra attribute: nothing is disclosed.
    assert_eq!(
        serde_json::to_value(&v.disclosed).unwrap(),
        serde_json::json!([null])
    );
    // A value constraint that does not hold is missing too.
    let wrong: ConDisCon = serde_json::from_str(
        r#"[[[{"type":"irma-demo.RU.studentCard.studentID","value":"457"}]]]"#,
    )
    .unwrap();
    let check = Check {
        disclose: &wrong,
        ..at(s.now)
    };
    assert_eq!(
        disclosure::verify(c, &d.proofs, &d.indices, &check)
            .unwrap()
            .status,
        ProofStatus::MissingAttributes
    );
    // Asking non-revocation for this credential type makes a proof without one invalid.
    let rev = vec!["irma-demo.RU.studentCard".to_owned()];
    let check = Check {
        revocation: &rev,
        ..at(s.now)
    };
    assert_eq!(
        disclosure::verify(c, &d.proofs, &d.indices, &check)
            .unwrap()
            .status,
        ProofStatus::Invalid
    );
    // Two proofs of one credential in one list must share the secret key, which they do.
    let mut twice = d.proofs.clone();
    twice.push(d.proofs[0].clone());
    assert_eq!(
        disclosure::verify(c, &twice, &d.indices, &at(s.now))
            .unwrap()
            .status,
        ProofStatus::Invalid
    );
    let _ = BTreeMap::<u32, Big>::new();
}
