//! Round trips between our holder (the test wallet) and our verifier and issuer: credentials
//! issued by us can be disclosed and signed with, on the project's demo keys (1024 and 2048 bits)
//! and on irma-demo's keys, including values longer than Lm bits and random-blind attributes.

mod common;

use std::collections::BTreeMap;

use ed25519_dalek::Signer;
use irma_idemix::bigint::{Int, random_bits};
use irma_idemix::disclosure::{self, AttributeRequest, Check, ConDisCon, Disclosure};
use irma_idemix::holder::{Selection, Wallet};
use irma_idemix::issuance::{
    self, CredentialRequest, IssuanceRequest, IssueCommitmentMessage, IssueSignatureMessage,
};
use irma_idemix::proofs::Proof;
use irma_idemix::signature::{
    self, SignatureRequest, SignedMessage, Timestamp, TimestampPolicy, TimestampSig,
};
use irma_idemix::{Configuration, ProofStatus};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use common::{conf, demo_conf};

const NOW: i64 = 1_795_813_034; // 2026-11-27, when the transcripts were recorded

/// JSON out and back in, as on the wire.
fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(x: &T) -> T {
    serde_json::from_str(&serde_json::to_string(x).unwrap()).unwrap()
}

fn request(credential: &str, attributes: &[(&str, &str)]) -> CredentialRequest {
    CredentialRequest {
        validity: None,
        key_counter: None,
        credential_type: credential.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        random_blind_ids: None,
    }
}

/// Disclosures made in the issuance session: selections, index picks and the request.
type Along<'a> = (&'a [Selection], &'a [Vec<(usize, usize)>], &'a ConDisCon);

/// Runs an issuance session: the server prepares and checks, the wallet commits and stores.
fn issue(
    conf: &Configuration,
    wallet: &mut Wallet,
    mut creds: Vec<CredentialRequest>,
    disclose: Along,
    rng: &mut ChaCha20Rng,
) -> ProofStatus {
    for c in &mut creds {
        c.prepare(conf, NOW).unwrap();
    }
    let creds: Vec<CredentialRequest> = wire(&creds);
    let (context, nonce) = (Int::ONE, random_bits(rng, 128));
    let (msg, pending) = wallet
        .start_issuance(conf, &creds, disclose.0, disclose.1, &context, &nonce, rng)
        .unwrap();
    let msg: IssueCommitmentMessage = wire(&msg);
    let req = IssuanceRequest {
        context: &context,
        nonce: &nonce,
        credentials: &creds,
        disclose: disclose.2,
        revocation: &[],
    };
    let verdict = issuance::verify_commitments(conf, &msg, &req, NOW).unwrap();
    if verdict.status != ProofStatus::Valid {
        return verdict.status;
    }
    let us = &msg.combined_proofs[msg.combined_proofs.len() - creds.len()..];
    let sigs: Vec<IssueSignatureMessage> = creds
        .iter()
        .zip(us)
        .map(|(cr, p)| {
            let Proof::U(u) = p else {
                panic!("not a ProofU")
            };
            issuance::sign(conf, cr, &u.u, &msg.n_2, NOW, rng).unwrap()
        })
        .collect();
    wallet
        .finish_issuance(conf, pending, &wire(&sigs), NOW)
        .unwrap();
    ProofStatus::Valid
}

/// Discloses `attrs` (base indices) of credential `cred`, asking for exactly those.
fn disclose(
    conf: &Configuration,
    wallet: &Wallet,
    cred: usize,
    attrs: &[usize],
    rng: &mut ChaCha20Rng,
) -> (ProofStatus, serde_json::Value) {
    let ct = conf
        .credential_type(&wallet.credentials[cred].credential_type)
        .unwrap();
    let id = |i: usize| {
        if i == 1 {
            ct.id.clone()
        } else {
            ct.attribute_id(i).unwrap()
        }
    };
    let con: Vec<AttributeRequest> = attrs.iter().map(|&i| AttributeRequest::Id(id(i))).collect();
    let cdc: ConDisCon = vec![vec![con]];
    let (context, nonce) = (Int::ONE, random_bits(rng, 128));
    let sel = [Selection {
        credential: cred,
        disclose: attrs.to_vec(),
    }];
    let picks = vec![attrs.iter().map(|&a| (0, a)).collect()];
    let d: Disclosure = wire(
        &wallet
            .disclose(&sel, &picks, &context, &nonce, rng)
            .unwrap(),
    );
    let check = Check {
        context: &context,
        nonce: &nonce,
        issig: false,
        disclose: &cdc,
        revocation: &[],
        valid_at: NOW,
    };
    let v = disclosure::verify(conf, &d.proofs, &d.indices, &check).unwrap();
    (v.status, serde_json::to_value(&v.disclosed).unwrap())
}

fn rawvalues(disclosed: &serde_json::Value) -> Vec<Option<String>> {
    disclosed[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rawvalue"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn demo_scheme_issue_disclose_and_sign_with_1024_and_2048_bit_keys() {
    let c = demo_conf();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut w = Wallet::new(&mut rng);
    let student = request(
        "stateless-demo.University.studentCard",
        &[
            ("university", "Radboud"),
            ("studentCardNumber", "0812345673"),
            ("studentID", "s1234567"),
            ("level", "PhD"),
        ],
    );
    let person = request(
        "stateless-demo.Government.person",
        &[
            ("firstname", "Johan"),
            ("familyname", "Stuivezand"),
            ("dateofbirth", "1990-01-01"),
            ("over18", "yes"),
            ("bsn", "999999990"),
        ],
    );
    let none: ConDisCon = vec![];
    assert_eq!(
        issue(
            c,
            &mut w,
            vec![student, person],
            (&[], &[], &none),
            &mut rng
        ),
        ProofStatus::Valid
    );
    assert_eq!(w.credentials.len(), 2);
    assert!(w.credentials.iter().all(|cr| cr.verify()));
    assert_eq!(w.credentials[1].pk.params.ln, 2048);

    let (status, d) = disclose(c, &w, 0, &[4, 6], &mut rng);
    assert_eq!(status, ProofStatus::Valid);
    assert_eq!(rawvalues(&d), vec![Some("s1234567".into()), None]); // faculty was left out: null
    assert_eq!(d[0][1]["status"], "NULL");
    let (status, d) = disclose(c, &w, 1, &[2, 6], &mut rng);
    assert_eq!(status, ProofStatus::Valid);
    assert_eq!(
        rawvalues(&d),
        vec![Some("Johan".into()), Some("yes".into())]
    );
    // The credential itself (index 1) discloses as "present".
    let (status, d) = disclose(c, &w, 1, &[1], &mut rng);
    assert_eq!(status, ProofStatus::Valid);
    assert_eq!(d[0][0]["id"], "stateless-demo.Government.person");
    assert_eq!(d[0][0]["rawvalue"], "present");

    // Both credentials in one proof list share the secret key; a signature over both verifies.
    let cdc: ConDisCon = serde_json::from_str(
        r#"[[["stateless-demo.University.studentCard.studentID"]],[["stateless-demo.Government.person.over18"]]]"#,
    )
    .unwrap();
    let sel = [
        Selection {
            credential: 0,
            disclose: vec![4],
        },
        Selection {
            credential: 1,
            disclose: vec![6],
        },
    ];
    let picks = vec![vec![(0, 4)], vec![(1, 6)]];
    let (ctx, nonce) = (Int::ONE, random_bits(&mut rng, 128));
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let stamp = |sm: &SignedMessage| {
        let n = signature::timestamp_nonce(c, sm).unwrap().unwrap();
        let mut msg = (NOW as u64).to_be_bytes().to_vec();
        msg.extend_from_slice(&n);
        Timestamp {
            time: NOW,
            server_url: "http://127.0.0.1:8091/".into(),
            sig: TimestampSig {
                alg: "ed25519".into(),
                data: key.sign(&msg).to_bytes().to_vec(),
                public_key: key.verifying_key().to_bytes().to_vec(),
            },
            hashing: None,
        }
    };
    let sm = w
        .sign(
            &sel,
            &picks,
            "I owe you EUR 10",
            &ctx,
            &nonce,
            Some(&stamp),
            &mut rng,
        )
        .unwrap();
    let sm: SignedMessage = wire(&sm);
    let policy = TimestampPolicy {
        trusted_keys: vec![key.verifying_key().to_bytes()],
    };
    let req = SignatureRequest {
        context: &ctx,
        nonce: &nonce,
        message: "I owe you EUR 10",
        disclose: &cdc,
        revocation: &[],
    };
    let v = signature::verify(c, &sm, &req, &policy, NOW).unwrap();
    assert_eq!(v.status, ProofStatus::Valid);
    // Without a timestamp too (the server then judges at now).
    let plain = w
        .sign(
            &sel,
            &picks,
            "I owe you EUR 10",
            &ctx,
            &nonce,
            None,
            &mut rng,
        )
        .unwrap();
    assert_eq!(
        signature::verify(c, &wire(&plain), &req, &policy, NOW)
            .unwrap()
            .status,
        ProofStatus::Valid
    );
    let req2 = SignatureRequest {
        message: "I owe you EUR 11",
        ..req
    };
    assert_eq!(
        signature::verify(c, &sm, &req2, &policy, NOW)
            .unwrap()
            .status,
        ProofStatus::UnmatchedRequest
    );
}

#[test]
fn irma_demo_issue_with_disclosure_long_values_and_random_blind() {
    if !common::have_testdata() {
        return;
    }
    let c = conf();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut w = Wallet::new(&mut rng);
    let long = "a-very-long-email-address-of-more-than-32-bytes@example.com";
    let card = request(
        "irma-demo.RU.studentCard",
        &[
            ("university", long),
            ("studentCardNumber", "1"),
            ("studentID", "s1"),
            ("level", "é🎓"),
        ],
    );
    let none: ConDisCon = vec![];
    assert_eq!(
        issue(c, &mut w, vec![card.clone()], (&[], &[], &none), &mut rng),
        ProofStatus::Valid
    );
    let (status, d) = disclose(c, &w, 0, &[2, 5], &mut rng);
    assert_eq!(status, ProofStatus::Valid);
    assert_eq!(rawvalues(&d), vec![Some(long.into()), Some("é🎓".into())]);

    // Issuance with a disclosure in the same proof list (the issue-with-disclose shape).
    let cdc: ConDisCon =
        serde_json::from_str(r#"[[[{"type":"irma-demo.RU.studentCard.studentID","value":"s1"}]]]"#)
            .unwrap();
    let sel = [Selection {
        credential: 0,
        disclose: vec![4],
    }];
    let picks = vec![vec![(0, 4)]];
    let card2 = request(
        "irma-demo.RU.studentCard",
        &[
            ("university", "RU"),
            ("studentCardNumber", "2"),
            ("studentID", "s2"),
            ("level", "x"),
        ],
    );
    assert_eq!(
        issue(
            c,
            &mut w,
            vec![card2.clone()],
            (&sel, &picks, &cdc),
            &mut rng
        ),
        ProofStatus::Valid
    );
    // A disclosure that does not satisfy the request is reported, and nothing is signed.
    let wrong: ConDisCon =
        serde_json::from_str(r#"[[[{"type":"irma-demo.RU.studentCard.studentID","value":"s9"}]]]"#)
            .unwrap();
    assert_eq!(
        issue(c, &mut w, vec![card2], (&sel, &picks, &wrong), &mut rng),
        ProofStatus::MissingAttributes
    );
    assert_eq!(w.credentials.len(), 2);

    // Random-blind: stemmen's 2048-bit key; the value is the sum of both shares, base62.
    let stempas = request("irma-demo.stemmen.stempas", &[("election", "referendum")]);
    assert_eq!(
        issue(c, &mut w, vec![stempas], (&[], &[], &none), &mut rng),
        ProofStatus::Valid
    );
    let (status, d) = disclose(c, &w, 2, &[2, 3], &mut rng);
    assert_eq!(status, ProofStatus::Valid);
    let vals = rawvalues(&d);
    assert_eq!(vals[0].as_deref(), Some("referendum"));
    let blind = vals[1].clone().unwrap();
    assert!(
        blind.len() > 20 && blind.chars().all(|ch| ch.is_ascii_alphanumeric()),
        "{blind}"
    );
}

#[test]
fn issuance_requests_are_validated() {
    if !common::have_testdata() {
        return;
    }
    let c = conf();
    let err = |mut r: CredentialRequest| r.prepare(c, NOW).unwrap_err().to_string();
    let ok = [
        ("university", "RU"),
        ("studentCardNumber", "2"),
        ("studentID", "s2"),
        ("level", "x"),
    ];
    assert!(err(request("irma-demo.RU.studentCard", &ok[..3])).contains("missing"));
    assert!(
        err(request(
            "irma-demo.RU.studentCard",
            &[ok[0], ok[1], ok[2], ok[3], ("shoesize", "44")]
        ))
        .contains("no attribute")
    );
    assert!(err(request("irma-demo.RU.nonexistent", &ok)).contains("unknown credential type"));
    let mut past = request("irma-demo.RU.studentCard", &ok);
    past.validity = Some(NOW - 30 * 86400);
    assert!(err(past).contains("past"));
    // MijnOverheid's latest key (2) expired in 2023.
    assert!(
        err(request(
            "irma-demo.MijnOverheid.fullName",
            &[("firstnames", "a"), ("firstname", "a"), ("familyname", "b")]
        ))
        .contains("expired")
    );
    // Values for random-blind attributes are refused; types with revocation are unsupported.
    assert!(
        err(request(
            "irma-demo.stemmen.stempas",
            &[("election", "e"), ("votingnumber", "1")]
        ))
        .contains("cannot be given")
    );
    let mut r = request("irma-demo.RU.studentCard", &ok);
    r.prepare(c, NOW).unwrap();
    assert_eq!(r.key_counter, Some(2));
    assert_eq!(r.validity, Some(NOW + issuance::DEFAULT_VALIDITY));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random values (empty, unicode, long) and random disclosed subsets round-trip exactly.
    #[test]
    fn random_values_and_subsets_round_trip(
        values in proptest::collection::vec("\\PC{0,50}", 6),
        chosen in proptest::collection::vec(any::<bool>(), 6),
        absent in proptest::collection::vec(any::<bool>(), 2),
        seed in any::<u64>(),
    ) {
        let c = demo_conf();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut w = Wallet::new(&mut rng);
        let names = ["university", "studentCardNumber", "studentID", "level", "email", "faculty"];
        // email and faculty are optional: leave them out sometimes.
        let attrs: BTreeMap<&str, &str> = names
            .iter()
            .zip(&values)
            .enumerate()
            .filter(|(i, _)| *i < 4 || !absent[i - 4])
            .map(|(_, (n, v))| (*n, v.as_str()))
            .collect();
        let pairs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, *v)).collect();
        let none: ConDisCon = vec![];
        let cr = request("stateless-demo.University.studentCard", &pairs);
        prop_assert_eq!(issue(c, &mut w, vec![cr], (&[], &[], &none), &mut rng), ProofStatus::Valid);
        let subset: Vec<usize> = (0..6).filter(|&i| chosen[i]).map(|i| i + 2).collect();
        let (status, d) = disclose(c, &w, 0, &subset, &mut rng);
        prop_assert_eq!(status, ProofStatus::Valid);
        let expected: Vec<Option<String>> = subset.iter().map(|&i| attrs.get(names[i - 2]).map(|v| v.to_string())).collect();
        if subset.is_empty() {
            prop_assert_eq!(d, serde_json::json!([[]]));
        } else {
            prop_assert_eq!(rawvalues(&d), expected);
        }
    }
}
