//! The DER encodings that feed SHA-256 in every challenge (idemix.md §2.2, §5.2, §5.4).
//!
//! Go builds these with `encoding/asn1.Marshal`; the bytes must match exactly, so this is a
//! small hand-written DER writer rather than a general ASN.1 library.

use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use crate::bigint::{Int, from_be, to_be};

/// Appends a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// A non-negative INTEGER: minimal two's complement, so a set top bit gets a `00` in front.
pub fn push_integer(out: &mut Vec<u8>, x: &Int) {
    let mut content = to_be(x);
    if content.is_empty() || content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    push_tlv(out, 0x02, &content);
}

pub fn push_octet_string(out: &mut Vec<u8>, bytes: &[u8]) {
    push_tlv(out, 0x04, bytes);
}

/// Wraps already-encoded elements in a SEQUENCE.
pub fn sequence(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    push_tlv(&mut out, 0x30, content);
    out
}

/// `SEQUENCE OF INTEGER`.
pub fn integer_sequence<'a>(values: impl IntoIterator<Item = &'a Int>) -> Vec<u8> {
    let mut content = Vec::new();
    for v in values {
        push_integer(&mut content, v);
    }
    sequence(&content)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `int(SHA-256(bytes))`.
pub fn hash_int(bytes: &[u8]) -> Int {
    from_be(&sha256(bytes))
}

/// gabi's `HashCommit`: SHA-256 of `DER(SEQUENCE { [BOOLEAN true,] INTEGER m, INTEGER v_1..v_m })`.
/// The leading boolean is present only for attribute-based signatures.
pub fn hash_commit(values: &[&Int], issig: bool) -> Int {
    let mut content = Vec::new();
    if issig {
        content.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    push_integer(&mut content, &Int::from(values.len()));
    for v in values {
        push_integer(&mut content, v);
    }
    hash_int(&sequence(&content))
}

/// The nonce an attribute-based signature is proven against (`ASN1ConvertSignatureNonce`):
/// `SHA-256(DER(SEQUENCE { INTEGER nonce, INTEGER SHA-256(message) [, OCTET STRING tsSig] }))`.
/// Unlike [`hash_commit`] there is no count element.
pub fn signature_nonce(server_nonce: &Int, message: &str, timestamp_sig: Option<&[u8]>) -> Int {
    let mut content = Vec::new();
    push_integer(&mut content, server_nonce);
    push_integer(&mut content, &hash_int(message.as_bytes()));
    if let Some(sig) = timestamp_sig {
        push_octet_string(&mut content, sig);
    }
    hash_int(&sequence(&content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn encode_commit(values: &[u64], issig: bool) -> Vec<u8> {
        let mut content = Vec::new();
        if issig {
            content.extend_from_slice(&[0x01, 0x01, 0xff]);
        }
        push_integer(&mut content, &Int::from(values.len()));
        for v in values {
            push_integer(&mut content, &Int::from(*v));
        }
        sequence(&content)
    }

    #[test]
    fn hash_commit_encoding_matches_the_spec() {
        let vals = [1u64, 0x80, 0x0102, 0];
        assert_eq!(
            hex(&encode_commit(&vals, true)),
            "301401 01ff020104020101020200800202010202 0100".replace(' ', "")
        );
        assert_eq!(
            hex(&encode_commit(&vals, false)),
            "3011020104020101020200800202010202 0100".replace(' ', "")
        );
        let ints: Vec<Int> = vals.iter().map(|&v| Int::from(v)).collect();
        let refs: Vec<&Int> = ints.iter().collect();
        let h = hex(&to_be(&hash_commit(&refs, true)));
        assert!(h.starts_with("c433b949") && h.ends_with("011ba3ed"), "{h}");
    }

    #[test]
    fn long_form_lengths() {
        let mut out = Vec::new();
        push_len(&mut out, 200);
        push_len(&mut out, 300);
        assert_eq!(out, vec![0x81, 0xc8, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn signature_nonce_prefix() {
        let mut content = Vec::new();
        push_integer(&mut content, &Int::from(42u8));
        push_integer(&mut content, &hash_int(b"I owe you everything"));
        push_octet_string(&mut content, &[0u8; 64]);
        let der = sequence(&content);
        assert!(
            hex(&der).starts_with("306802012a022100cb59"),
            "{}",
            hex(&der)
        );
    }
}
