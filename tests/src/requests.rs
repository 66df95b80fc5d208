//! The session requests and scheme the tests use: the project's demo scheme.

use std::path::PathBuf;

use irma_idemix::{Configuration, LoadOptions};
use serde_json::{Value, json};

/// The demo scheme as the test wallet reads it.
pub fn demo_conf() -> Configuration {
    Configuration::load(&demo_schemes(), LoadOptions::default()).expect("demo scheme")
}

pub fn demo_schemes() -> PathBuf {
    crate::root().join("host/demo/irma_configuration")
}

/// Issue a student card whose student ID is `id`.
pub fn student_card(id: &str) -> Value {
    json!({
        "@context": "https://irma.app/ld/request/issuance/v2",
        "credentials": [{
            "credential": "stateless-demo.University.studentCard",
            "attributes": {"university": "Radboud", "studentCardNumber": "2300", "studentID": id, "level": "PhD"}
        }]
    })
}

/// Disclose the student ID.
pub fn disclosure() -> Value {
    json!({
        "@context": "https://irma.app/ld/request/disclosure/v2",
        "disclose": [[["stateless-demo.University.studentCard.studentID"]]]
    })
}

/// Sign "I owe you EUR 10" with the student ID.
pub fn signature() -> Value {
    json!({
        "@context": "https://irma.app/ld/request/signature/v2",
        "message": "I owe you EUR 10",
        "disclose": [[["stateless-demo.University.studentCard.studentID"]]]
    })
}
