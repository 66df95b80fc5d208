//! Hostile and broken input gives a typed error or an INVALID status, never a panic.

mod common;

use irma_idemix::bigint::Int;
use irma_idemix::bigjson::Big;
use irma_idemix::disclosure::{self, Check, ConDisCon, Disclosure};
use irma_idemix::issuance::{self, CredentialRequest, IssuanceRequest, IssueCommitmentMessage};
use irma_idemix::keys::{PrivateKey, PublicKey};
use irma_idemix::proofs::Proof;
use irma_idemix::signature::SignedMessage;
use irma_idemix::{Configuration, Error, LoadOptions, ProofStatus};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use common::{conf, testdata, transcript};

/// The recorded studentID disclosure: its request and body.
fn recorded() -> (Value, Value) {
    let t = transcript("disclose-studentid");
    let req = t["exchanges"][2]["response"]["body_json"]["request"].clone();
    let body: Value =
        serde_json::from_str(t["exchanges"][3]["request"]["body"].as_str().unwrap()).unwrap();
    (req, body)
}

fn run(body: &Value) -> Result<ProofStatus, Error> {
    let (req, _) = recorded();
    let d: Disclosure =
        serde_json::from_value(body.clone()).map_err(|e| Error::Malformed(e.to_string()))?;
    let ctx = Int::ONE;
    let nonce = serde_json::from_value::<Big>(req["nonce"].clone())
        .unwrap()
        .0;
    let disclose: ConDisCon = serde_json::from_value(req["disclose"].clone()).unwrap();
    let check = Check {
        context: &ctx,
        nonce: &nonce,
        issig: false,
        disclose: &disclose,
        revocation: &[],
        valid_at: 1_795_813_034,
    };
    disclosure::verify(conf(), &d.proofs, &d.indices, &check).map(|v| v.status)
}

fn with(f: impl FnOnce(&mut Value)) -> Result<ProofStatus, Error> {
    let (_, mut body) = recorded();
    f(&mut body);
    run(&body)
}

#[test]
fn the_unmodified_body_is_valid() {
    if !common::have_testdata() {
        return;
    }
    assert_eq!(with(|_| {}), Ok(ProofStatus::Valid));
}

#[test]
fn structural_defects_are_invalid() {
    if !common::have_testdata() {
        return;
    }
    // Out-of-range and missing indices.
    assert_eq!(
        with(|b| b["proofs"][0]["a_responses"]["99"] = json!("AQ==")),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| {
            b["proofs"][0]["a_responses"]
                .as_object_mut()
                .unwrap()
                .remove("0");
        }),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| {
            b["proofs"][0]["a_disclosed"]
                .as_object_mut()
                .unwrap()
                .remove("1");
        }),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| b["proofs"][0]["a_disclosed"]["2"] = b["proofs"][0]["a_responses"]["2"].clone()),
        Ok(ProofStatus::Invalid)
    );
    // A = 0, A = N (not invertible), a metadata attribute longer than 24 bytes.
    assert_eq!(
        with(|b| b["proofs"][0]["A"] = json!("")),
        Ok(ProofStatus::Invalid)
    );
    let n = conf()
        .public_key("irma-demo.RU", 2)
        .unwrap()
        .n
        .value()
        .clone();
    assert_eq!(
        with(|b| b["proofs"][0]["A"] = serde_json::to_value(Big(n)).unwrap()),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| b["proofs"][0]["a_disclosed"]["1"] =
            serde_json::to_value(Big(Int::ONE << 200)).unwrap()),
        Ok(ProofStatus::Invalid)
    );
    // Responses beyond their ranges.
    assert_eq!(
        with(|b| b["proofs"][0]["e_response"] = serde_json::to_value(Big(Int::ONE << 600)).unwrap()),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| b["proofs"][0]["a_responses"]["2"] =
            serde_json::to_value(Big(Int::ONE << 700)).unwrap()),
        Ok(ProofStatus::Invalid)
    );
    // Indices that point nowhere.
    assert_eq!(
        with(|b| b["indices"] = json!([[{"cred": 5, "attr": 4}]])),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| b["indices"] = json!([[{"cred": 0, "attr": 99}]])),
        Ok(ProofStatus::Invalid)
    );
    assert_eq!(
        with(|b| b["indices"] = json!([[{"cred": 0, "attr": 3}]])),
        Ok(ProofStatus::Invalid)
    );
    // Too few indices for the request is a missing disclosure, not an error.
    assert_eq!(
        with(|b| b["indices"] = json!([])),
        Ok(ProofStatus::MissingAttributes)
    );
    // No proofs at all: nothing disclosed.
    assert_eq!(with(|b| b["proofs"] = json!([])), Ok(ProofStatus::Invalid));
}

#[test]
fn unknown_keys_types_and_features_are_typed_errors() {
    if !common::have_testdata() {
        return;
    }
    use irma_idemix::attributes::{Metadata, type_hash};
    let (_, body) = recorded();
    let meta: Big = serde_json::from_value(body["proofs"][0]["a_disclosed"]["1"].clone()).unwrap();
    let mut m = Metadata::from_int(&meta).unwrap();
    m.key_counter = 7;
    let r = with(|b| {
        b["proofs"][0]["a_disclosed"]["1"] = serde_json::to_value(Big(m.to_int())).unwrap()
    });
    assert_eq!(
        r,
        Err(Error::UnknownPublicKey {
            issuer: "irma-demo.RU".into(),
            counter: 7
        })
    );
    m.type_hash = type_hash("irma-demo.RU.nonexistent");
    let r = with(|b| {
        b["proofs"][0]["a_disclosed"]["1"] = serde_json::to_value(Big(m.to_int())).unwrap()
    });
    assert!(matches!(r, Err(Error::UnknownCredentialType(_))), "{r:?}");
    assert!(matches!(
        with(|b| b["proofs"][0]["nonrev_proof"] = json!({"C_r": ""})),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        with(|b| b["proofs"][0]["rangeproofs"] = json!({})),
        Err(Error::Unsupported(_))
    ));
    // A ProofU where only disclosure proofs belong.
    let u = json!({"U": "AQ==", "c": "AQ==", "v_prime_response": "AQ==", "s_response": "AQ=="});
    assert!(matches!(
        with(|b| b["proofs"][0] = u),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn malformed_json_is_a_decoding_error() {
    if !common::have_testdata() {
        return;
    }
    for bad in [
        "",
        "{",
        "null",
        "[]",
        r#"{"proofs": 5}"#,
        r#"{"proofs": [{}]}"#,
        r#"{"proofs": [{"A": null}]}"#,
        r#"{"proofs": [{"A": "!!!"}]}"#,
        r#"{"proofs": [{"A": -1}]}"#,
        r#"{"proofs": [{"A": 1.5}]}"#,
        r#"{"proofs": [{"A": "AQ==", "c": "AQ=="}]}"#,
        r#"{"proofs": [], "indices": [[{"cred": -1, "attr": 1}]]}"#,
        r#"{"proofs": [{"A":"AQ==","c":"","e_response":"","v_response":"","a_responses":{"x":""},"a_disclosed":{}}]}"#,
    ] {
        assert!(serde_json::from_str::<Disclosure>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<SignedMessage>(r#"{"signature": [], "message": 5}"#).is_err());
    assert!(serde_json::from_str::<SignedMessage>(r#"{"signature": [], "message": "m", "timestamp": {"Time": 1, "Sig": {"Alg": "ed25519", "Data": "%%", "PublicKey": ""}}}"#).is_err());
    assert!(serde_json::from_str::<IssueCommitmentMessage>(r#"{"combinedProofs": []}"#).is_err());
}

#[test]
fn random_corruption_never_panics() {
    if !common::have_testdata() {
        return;
    }
    let (_, body) = recorded();
    let text = serde_json::to_string(&body).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut decoded = 0;
    for _ in 0..3000 {
        let mut bytes = text.clone().into_bytes();
        for _ in 0..1 + rng.next_u32() % 4 {
            let i = rng.next_u32() as usize % bytes.len();
            bytes[i] = b"AQ01{}[]\":,/+=x9"[rng.next_u32() as usize % 16];
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            decoded += 1;
            let _ = run(&v);
        }
    }
    assert!(decoded > 100, "only {decoded} corrupted bodies were JSON");
}

#[test]
fn issuance_messages_of_the_wrong_shape_are_malformed() {
    if !common::have_testdata() {
        return;
    }
    let t = transcript("issue-with-disclose");
    let req = &t["exchanges"][2]["response"]["body_json"]["request"];
    let body: Value =
        serde_json::from_str(t["exchanges"][3]["request"]["body"].as_str().unwrap()).unwrap();
    let creds: Vec<CredentialRequest> = serde_json::from_value(req["credentials"].clone()).unwrap();
    let disclose: ConDisCon = serde_json::from_value(req["disclose"].clone()).unwrap();
    let nonce = serde_json::from_value::<Big>(req["nonce"].clone())
        .unwrap()
        .0;
    let run = |b: Value| {
        let msg: IssueCommitmentMessage = serde_json::from_value(b).unwrap();
        let r = IssuanceRequest {
            context: &Int::ONE,
            nonce: &nonce,
            credentials: &creds,
            disclose: &disclose,
            revocation: &[],
        };
        issuance::verify_commitments(conf(), &msg, &r, 1_795_813_040)
    };
    assert_eq!(run(body.clone()).unwrap().status, ProofStatus::Valid);
    let mut swapped = body.clone();
    swapped["combinedProofs"].as_array_mut().unwrap().reverse();
    assert!(matches!(run(swapped), Err(Error::Malformed(_))));
    let mut empty = body.clone();
    empty["combinedProofs"] = json!([]);
    assert!(matches!(run(empty), Err(Error::Malformed(_))));
    let mut only_u = body.clone();
    only_u["combinedProofs"].as_array_mut().unwrap().remove(0);
    assert_eq!(run(only_u).unwrap().status, ProofStatus::Invalid);
    let parsed: Vec<Proof> = serde_json::from_value(body["combinedProofs"].clone()).unwrap();
    assert!(matches!(parsed[0], Proof::D(_)) && matches!(parsed[1], Proof::U(_)));
}

#[test]
fn broken_keys_and_schemes_are_refused() {
    if !common::have_testdata() {
        return;
    }
    let pk = std::fs::read_to_string(
        testdata().join("irma_configuration/irma-demo/RU/PublicKeys/2.xml"),
    )
    .unwrap();
    assert!(PublicKey::from_xml("irma-demo.RU", &pk).is_ok());
    assert!(PublicKey::from_xml("x.y", "<IssuerPublicKey>").is_err());
    assert!(PublicKey::from_xml("x.y", "<Other/>").is_err());
    // A modulus of an unsupported length.
    let short = pk.replacen("<n>", "<n>1", 1);
    assert!(PublicKey::from_xml("irma-demo.RU", &short).is_err());
    // A missing base.
    assert!(PublicKey::from_xml("irma-demo.RU", &pk.replacen("Base_3>", "Xase_3>", 2)).is_err());
    let sk = std::fs::read_to_string(testdata().join("privatekeys/irma-demo.RU.2.xml")).unwrap();
    assert!(PrivateKey::from_xml(&sk).is_ok());
    assert!(PrivateKey::from_xml(&sk.replacen("<pPrime>", "<pPrime>1", 1)).is_err());
    assert!(
        PrivateKey::from_xml("<IssuerPrivateKey><Counter>x</Counter></IssuerPrivateKey>").is_err()
    );

    // A scheme whose signed file changed, or whose index signature does not verify.
    let dir = std::env::temp_dir().join(format!("idemix-scheme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(
        &testdata().join("irma_configuration/irma-demo"),
        &dir.join("irma-demo"),
    );
    let ok = Configuration::load(&dir, LoadOptions::default());
    assert!(ok.is_ok(), "{:?}", ok.err());
    let desc = dir.join("irma-demo/RU/Issues/studentCard/description.xml");
    let text = std::fs::read_to_string(&desc).unwrap();
    std::fs::write(&desc, text.replace("Student Card", "Stolen Card")).unwrap();
    let err = Configuration::load(&dir, LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("hash does not match"), "{err}");
    assert!(
        Configuration::load(
            &dir,
            LoadOptions {
                verify_signatures: false
            }
        )
        .is_ok()
    );
    std::fs::write(&desc, text).unwrap();
    let index = dir.join("irma-demo/index");
    let itext = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, format!("{itext}\n")).unwrap();
    let err = Configuration::load(&dir, LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not verify"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
            let mut perm = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&target, perm).unwrap();
        }
    }
}
