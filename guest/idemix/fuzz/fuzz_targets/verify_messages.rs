//! Feeds arbitrary bytes to every message decoder the server exposes to apps, and whatever
//! decodes to the verifiers, against the irma-demo scheme. Any panic is a finding.
#![no_main]

use std::sync::OnceLock;

use irma_idemix::bigint::Int;
use irma_idemix::disclosure::{self, Check, ConDisCon, Disclosure};
use irma_idemix::issuance::{self, CredentialRequest, IssuanceRequest, IssueCommitmentMessage};
use irma_idemix::keys::PublicKey;
use irma_idemix::signature::{self, SignatureRequest, SignedMessage, TimestampPolicy};
use irma_idemix::{Configuration, LoadOptions};
use libfuzzer_sys::fuzz_target;

fn conf() -> &'static Configuration {
    static CONF: OnceLock<Configuration> = OnceLock::new();
    CONF.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../shared/testdata");
        let mut c = Configuration::load(format!("{root}/irma_configuration").as_ref(), LoadOptions::default()).unwrap();
        c.load_private_keys(format!("{root}/privatekeys").as_ref()).unwrap();
        c
    })
}

fuzz_target!(|data: &[u8]| {
    let c = conf();
    let disclose: ConDisCon = serde_json::from_str(r#"[[["irma-demo.RU.studentCard.studentID"]]]"#).unwrap();
    let nonce = Int::from(42u8);
    if let Ok(d) = serde_json::from_slice::<Disclosure>(data) {
        let check = Check { context: &Int::ONE, nonce: &nonce, issig: false, disclose: &disclose, revocation: &[], valid_at: 1_795_813_034 };
        let _ = disclosure::verify(c, &d.proofs, &d.indices, &check);
    }
    if let Ok(sm) = serde_json::from_slice::<SignedMessage>(data) {
        let req = SignatureRequest { context: &Int::ONE, nonce: &sm.nonce, message: &sm.message, disclose: &disclose, revocation: &[] };
        let _ = signature::verify(c, &sm, &req, &TimestampPolicy::default(), 1_795_813_034);
    }
    if let Ok(msg) = serde_json::from_slice::<IssueCommitmentMessage>(data) {
        let creds: Vec<CredentialRequest> = serde_json::from_str(
            r#"[{"credential":"irma-demo.RU.studentCard","keyCounter":2,"validity":1861920000,"attributes":{"university":"RU","studentCardNumber":"1","studentID":"1","level":"1"}}]"#,
        )
        .unwrap();
        let req = IssuanceRequest { context: &Int::ONE, nonce: &nonce, credentials: &creds, disclose: &disclose, revocation: &[] };
        let _ = issuance::verify_commitments(c, &msg, &req, 1_795_813_034);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::from_xml("irma-demo.RU", text);
        let _ = irma_idemix::scheme::parse_credential_type(text);
    }
});
