//! Shared helpers for the integration tests: the shared test data beside the project.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use irma_idemix::{Configuration, LoadOptions};
use serde_json::Value;

/// `../shared/testdata` from the workspace root.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

/// The irma-demo, test and test2 schemes with their private keys, signatures checked.
pub fn conf() -> &'static Configuration {
    static CONF: OnceLock<Configuration> = OnceLock::new();
    CONF.get_or_init(|| {
        let mut c = Configuration::load(&testdata().join("irma_configuration"), LoadOptions::default())
            .expect("testdata schemes load and verify");
        c.load_private_keys(&testdata().join("privatekeys")).expect("private keys load");
        c
    })
}

pub fn transcript(name: &str) -> Value {
    let path = testdata().join("transcripts").join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(path).expect("transcript exists")).expect("JSON")
}

pub fn transcript_names() -> Vec<String> {
    let index = transcript("index");
    index["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["file"].as_str().unwrap().trim_end_matches(".json").to_owned())
        .filter(|f| !f.starts_with("aux/") && f.as_str() != "setup-issue-fullname")
        .collect()
}

/// The trusted Atum key of the recordings.
pub fn atum_key() -> [u8; 32] {
    let v: Value = serde_json::from_slice(&std::fs::read(testdata().join("atum/atumlite.json")).unwrap()).unwrap();
    let hex = v["public_key_hex"].as_str().unwrap();
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}
