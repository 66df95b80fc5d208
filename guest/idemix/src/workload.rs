//! The benchmark workload: the same operations, timed the same way, natively and inside a
//! `wasm32-wasip2` module under wasmtime, so the two can be compared in one run.
//!
//! Keys come from the project's demo scheme (embedded at compile time, so the wasm module needs
//! no file system): issuer `University` (1024-bit) and `Government` (2048-bit), credential types
//! of six attributes each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::bigint::{Int, Modulus, MultiExp, random_bits};
use crate::disclosure::{self, AttributeRequest, Check, ConDisCon, Disclosure};
use crate::holder::{Selection, Wallet};
use crate::issuance::{self, CredentialRequest, IssuanceRequest, IssueCommitmentMessage};
use crate::keys::{PrivateKey, PublicKey};
use crate::proofs::Proof;
use crate::scheme::{Configuration, Scheme, parse_credential_type};
use crate::signature::{self, SignatureRequest, SignedMessage, TimestampPolicy};
use crate::{ProofStatus, Result};

macro_rules! demo_file {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../host/demo/", $p))
    };
}

/// A fixed moment inside the demo keys' validity.
pub const NOW: i64 = 1_795_813_034;

/// The demo scheme, from the embedded files.
pub fn demo_configuration() -> Result<Configuration> {
    let mut c = Configuration::default();
    c.add_scheme(Scheme {
        id: "stateless-demo".into(),
        demo: true,
        distributed: false,
        timestamp_server: None,
    });
    c.add_credential_type(parse_credential_type(demo_file!(
        "irma_configuration/stateless-demo/University/Issues/studentCard/description.xml"
    ))?);
    c.add_credential_type(parse_credential_type(demo_file!(
        "irma_configuration/stateless-demo/Government/Issues/person/description.xml"
    ))?);
    c.add_public_key(PublicKey::from_xml(
        "stateless-demo.University",
        demo_file!("irma_configuration/stateless-demo/University/PublicKeys/0.xml"),
    )?);
    c.add_public_key(PublicKey::from_xml(
        "stateless-demo.Government",
        demo_file!("irma_configuration/stateless-demo/Government/PublicKeys/0.xml"),
    )?);
    c.add_private_key(
        "stateless-demo.University",
        PrivateKey::from_xml(demo_file!("privatekeys/stateless-demo.University.0.xml"))?,
    )?;
    c.add_private_key(
        "stateless-demo.Government",
        PrivateKey::from_xml(demo_file!("privatekeys/stateless-demo.Government.0.xml"))?,
    )?;
    Ok(c)
}

const STUDENT: &str = "stateless-demo.University.studentCard";
const PERSON: &str = "stateless-demo.Government.person";

fn request(credential: &str) -> CredentialRequest {
    let names: &[&str] = if credential == STUDENT {
        &[
            "university",
            "studentCardNumber",
            "studentID",
            "level",
            "email",
            "faculty",
        ]
    } else {
        &[
            "firstname",
            "prefix",
            "familyname",
            "dateofbirth",
            "over18",
            "bsn",
        ]
    };
    CredentialRequest {
        validity: None,
        key_counter: None,
        credential_type: credential.into(),
        attributes: names
            .iter()
            .map(|n| (n.to_string(), format!("value of {n}")))
            .collect(),
        random_blind_ids: None,
    }
}

/// Prepared inputs for every operation, so that a timed call does only the operation.
pub struct Workload {
    conf: Configuration,
    rng: ChaCha20Rng,
    disclosures: Vec<(Disclosure, Int, ConDisCon)>,
    signature: (SignedMessage, Int, ConDisCon),
    issuances: Vec<(IssueCommitmentMessage, Int, Vec<CredentialRequest>)>,
}

impl Workload {
    pub fn new() -> Result<Workload> {
        let conf = demo_configuration()?;
        let mut rng = ChaCha20Rng::seed_from_u64(2026);
        let mut wallet = Wallet::new(&mut rng);
        let mut issuances = Vec::new();
        for cred in [STUDENT, PERSON] {
            let mut cr = request(cred);
            cr.prepare(&conf, NOW)?;
            let nonce = random_bits(&mut rng, 128);
            let (msg, pending) = wallet.start_issuance(
                &conf,
                std::slice::from_ref(&cr),
                &[],
                &[],
                &Int::ONE,
                &nonce,
                &mut rng,
            )?;
            let Proof::U(u) = &msg.combined_proofs[0] else {
                unreachable!("a commitment")
            };
            let sig = issuance::sign(&conf, &cr, &u.u, &msg.n_2, NOW, &mut rng)?;
            wallet.finish_issuance(&conf, pending, &[sig], NOW)?;
            issuances.push((msg, nonce, vec![cr]));
        }
        // Disclose one attribute of the six; the secret key and five attributes stay hidden.
        let mut disclosures = Vec::new();
        for (i, cred) in [STUDENT, PERSON].iter().enumerate() {
            let cdc: ConDisCon = vec![vec![vec![AttributeRequest::Id(format!(
                "{cred}.{}",
                if i == 0 { "studentID" } else { "over18" }
            ))]]];
            let attr = if i == 0 { 4 } else { 6 };
            let nonce = random_bits(&mut rng, 128);
            let sel = [Selection {
                credential: i,
                disclose: vec![attr],
            }];
            let d = wallet.disclose(&sel, &[vec![(0, attr)]], &Int::ONE, &nonce, &mut rng)?;
            disclosures.push((d, nonce, cdc));
        }
        let nonce = random_bits(&mut rng, 128);
        let sel = [Selection {
            credential: 0,
            disclose: vec![4],
        }];
        let sm = wallet.sign(
            &sel,
            &[vec![(0, 4)]],
            "I owe you EUR 10",
            &Int::ONE,
            &nonce,
            None,
            &mut rng,
        )?;
        let signature = (sm, nonce, disclosures[0].2.clone());
        Ok(Workload {
            conf,
            rng,
            disclosures,
            signature,
            issuances,
        })
    }

    /// Verifies the disclosure made with the 1024-bit (`big = false`) or 2048-bit key.
    pub fn verify_disclosure(&self, big: bool) -> ProofStatus {
        let (d, nonce, cdc) = &self.disclosures[big as usize];
        let check = Check {
            context: &Int::ONE,
            nonce,
            issig: false,
            disclose: cdc,
            revocation: &[],
            valid_at: NOW,
        };
        disclosure::verify(&self.conf, &d.proofs, &d.indices, &check)
            .expect("verifies")
            .status
    }

    pub fn verify_signature(&self) -> ProofStatus {
        let (sm, nonce, cdc) = &self.signature;
        let req = SignatureRequest {
            context: &Int::ONE,
            nonce,
            message: &sm.message,
            disclose: cdc,
            revocation: &[],
        };
        signature::verify(&self.conf, sm, &req, &TimestampPolicy::default(), NOW)
            .expect("verifies")
            .status
    }

    /// Issues one credential: verifies the commitment, then CL-signs with ProofS.
    pub fn issue(&mut self, big: bool) -> ProofStatus {
        let (msg, nonce, creds) = &self.issuances[big as usize];
        let req = IssuanceRequest {
            context: &Int::ONE,
            nonce,
            credentials: creds,
            disclose: &vec![],
            revocation: &[],
        };
        let v = issuance::verify_commitments(&self.conf, msg, &req, NOW).expect("verifies");
        let Proof::U(u) = &msg.combined_proofs[0] else {
            unreachable!("a commitment")
        };
        issuance::sign(&self.conf, &creds[0], &u.u, &msg.n_2, NOW, &mut self.rng).expect("signs");
        v.status
    }
}

/// Nanoseconds spent in multi-exponentiation since start (see [`TimedMultiExp`]).
static MULTI_EXP_NANOS: AtomicU64 = AtomicU64::new(0);

/// A multi-exponentiation backend that counts its own time: it tells how much of each
/// operation a host-native multi-exponentiation would take over.
pub struct TimedMultiExp;

impl MultiExp for TimedMultiExp {
    fn multi_exp(&self, modulus: &Int, bases: &[&Int], exps: &[&Int]) -> Int {
        let t = Instant::now();
        let m = Modulus::new(modulus.clone()).expect("odd modulus");
        let r = match (bases, exps) {
            ([b], [e]) => m.pow_local(b, e),
            _ => m.multi_exp_local(bases, exps),
        };
        MULTI_EXP_NANOS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

/// One measured operation: median time per call, and the share of it in multi-exponentiation.
pub struct Measurement {
    pub name: &'static str,
    pub median: Duration,
    pub multi_exp: Duration,
}

/// Runs every operation `iterations` times and reports medians. Installs [`TimedMultiExp`].
pub fn measure_all(iterations: usize) -> Result<Vec<Measurement>> {
    crate::bigint::set_multi_exp_backend(Box::new(TimedMultiExp));
    let mut w = Workload::new()?;
    let mut out = Vec::new();
    let mut run = |name: &'static str, f: &mut dyn FnMut() -> ProofStatus| {
        assert_eq!(f(), ProofStatus::Valid, "{name}");
        let mut times = Vec::with_capacity(iterations);
        let mut mexp = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let before = MULTI_EXP_NANOS.load(Ordering::Relaxed);
            let t = Instant::now();
            f();
            times.push(t.elapsed());
            mexp.push(Duration::from_nanos(
                MULTI_EXP_NANOS.load(Ordering::Relaxed) - before,
            ));
        }
        times.sort();
        mexp.sort();
        out.push(Measurement {
            name,
            median: times[iterations / 2],
            multi_exp: mexp[iterations / 2],
        });
    };
    run("verify disclosure, 1024-bit key", &mut || {
        w.verify_disclosure(false)
    });
    run("verify disclosure, 2048-bit key", &mut || {
        w.verify_disclosure(true)
    });
    run("verify signature, 1024-bit key", &mut || {
        w.verify_signature()
    });
    run("issue credential, 1024-bit key", &mut || w.issue(false));
    run("issue credential, 2048-bit key", &mut || w.issue(true));
    Ok(out)
}

/// The lines a run prints: `name<TAB>median_us<TAB>multi_exp_us`.
pub fn report(ms: &[Measurement]) -> String {
    ms.iter()
        .map(|m| {
            format!(
                "{}\t{}\t{}\n",
                m.name,
                m.median.as_micros(),
                m.multi_exp.as_micros()
            )
        })
        .collect()
}
