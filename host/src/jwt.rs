//! The server's JWT key (`--jwt-privkey[-file]`, RSA, PEM): it signs result JWTs, `/getproof`
//! answers, callbacks and next-session POSTs (RS256), and `/publickey` serves its public half.

use anyhow::{Context, Result, anyhow, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use spki::der::EncodePem;

pub struct JwtKey {
    encoding: EncodingKey,
    /// The public key as a PEM `PUBLIC KEY` block (PKIX), as `/publickey` serves it.
    public_pem: String,
}

// The private key never reaches a log line.
impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey").finish_non_exhaustive()
    }
}

/// `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

impl JwtKey {
    /// An RSA private key in PEM, PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<JwtKey> {
        let block = pem::parse(pem).context("the JWT private key is not PEM")?;
        let pair = match block.tag() {
            "RSA PRIVATE KEY" => ring::signature::RsaKeyPair::from_der(block.contents()),
            "PRIVATE KEY" => ring::signature::RsaKeyPair::from_pkcs8(block.contents()),
            other => bail!("the JWT private key is a PEM {other:?} block, not an RSA private key"),
        }
        .map_err(|e| anyhow!("the JWT private key is not a usable RSA key: {e}"))?;
        let encoding = EncodingKey::from_rsa_pem(pem)
            .map_err(|e| anyhow!("the JWT private key is not a usable RSA key: {e}"))?;
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: RSA_ENCRYPTION,
                parameters: Some(spki::der::asn1::AnyRef::NULL),
            },
            subject_public_key: spki::der::asn1::BitStringRef::from_bytes(
                pair.public_key().as_ref(),
            )?,
        };
        let public_pem = spki
            .to_pem(spki::der::pem::LineEnding::LF)
            .map_err(|e| anyhow!("encoding the JWT public key: {e}"))?;
        Ok(JwtKey {
            encoding,
            public_pem,
        })
    }

    /// `claims` (a JSON object) as a compact RS256 JWT.
    pub fn sign(&self, claims: &str) -> Result<String> {
        let claims: serde_json::Value = serde_json::from_str(claims)?;
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// A 2048-bit RSA key made for these tests (PKCS#8).
    pub const TEST_KEY: &str = include_str!("../tests/data/jwt-test-key.pem");

    #[test]
    fn signs_what_the_public_key_verifies() {
        let key = JwtKey::from_pem(TEST_KEY.as_bytes()).unwrap();
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let jwt = key.sign(r#"{"sub":"disclosing_result","iat":1}"#).unwrap();
        let decoding = DecodingKey::from_rsa_pem(key.public_pem().as_bytes()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let got = jsonwebtoken::decode::<serde_json::Value>(&jwt, &decoding, &v).unwrap();
        assert_eq!(got.claims["sub"], "disclosing_result");
    }

    #[test]
    fn other_pem_is_refused() {
        assert!(JwtKey::from_pem(b"not pem").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = JwtKey::from_pem(cert.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("CERTIFICATE"), "{e}");
    }
}
