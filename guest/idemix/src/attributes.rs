//! Attribute values as integers, and the metadata attribute (idemix.md §3).

use crate::bigint::{BitTest as _, Int, from_be, to_be};
use crate::hash::sha256;
use alloc::{string::String, vec::Vec};

pub const WEEK: i64 = 604_800;

/// The metadata attribute: base index 1 of every credential, always disclosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub version: u8,
    /// Weeks since the Unix epoch.
    pub signing_week: u16,
    pub validity_weeks: u16,
    pub key_counter: u16,
    /// First 16 bytes of SHA-256 of `scheme.issuer.credtype`.
    pub type_hash: [u8; 16],
}

impl Metadata {
    /// A version-3 metadata attribute as the server issues it: signed this week, valid until
    /// `validity` (unix seconds) rounded down to whole weeks. `None` when that is in the past
    /// or too far away to encode.
    pub fn issue(
        now: i64,
        validity: i64,
        key_counter: u32,
        credential_type: &str,
    ) -> Option<Metadata> {
        let signing_week = now.div_euclid(WEEK);
        let weeks = (validity - signing_week * WEEK).div_euclid(WEEK);
        Some(Metadata {
            version: 3,
            signing_week: u16::try_from(signing_week).ok()?,
            validity_weeks: u16::try_from(weeks).ok()?,
            key_counter: u16::try_from(key_counter).ok()?,
            type_hash: type_hash(credential_type),
        })
    }

    /// Reads the 24 big-endian bytes; `None` when the value does not fit in 24 bytes.
    pub fn from_int(x: &Int) -> Option<Metadata> {
        let b = to_be(x);
        if b.len() > 24 {
            return None;
        }
        let mut buf = [0u8; 24];
        buf[24 - b.len()..].copy_from_slice(&b);
        let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Some(Metadata {
            version: buf[0],
            signing_week: u16_at(2),
            validity_weeks: u16_at(4),
            key_counter: u16_at(6),
            type_hash: buf[8..24].try_into().expect("16 bytes"),
        })
    }

    pub fn to_int(&self) -> Int {
        let mut buf = [0u8; 24];
        buf[0] = self.version;
        buf[2..4].copy_from_slice(&self.signing_week.to_be_bytes());
        buf[4..6].copy_from_slice(&self.validity_weeks.to_be_bytes());
        buf[6..8].copy_from_slice(&self.key_counter.to_be_bytes());
        buf[8..24].copy_from_slice(&self.type_hash);
        from_be(&buf)
    }

    /// Unix seconds of the signing date (a Thursday 00:00 UTC).
    pub fn signing_date(&self) -> i64 {
        self.signing_week as i64 * WEEK
    }

    pub fn expiry(&self) -> i64 {
        self.signing_date() + self.validity_weeks as i64 * WEEK
    }
}

/// The 16-byte credential type hash of the metadata attribute.
pub fn type_hash(credential_type: &str) -> [u8; 16] {
    sha256(credential_type.as_bytes())[..16]
        .try_into()
        .expect("16 bytes")
}

/// Encodes a value for issuance, version 3: `(int(utf8) << 1) + 1`; absent is 0.
pub fn encode(value: Option<&str>) -> Int {
    match value {
        None => Int::ZERO,
        Some(s) => (from_be(s.as_bytes()) << 1) + Int::ONE,
    }
}

/// Decodes a disclosed value. Version 3 values with bit 0 clear are null (absent). Bytes that
/// are not UTF-8 are replaced, as Go's JSON encoder does.
pub fn decode(x: &Int, metadata_version: u8) -> Option<String> {
    let bytes = if metadata_version >= 3 {
        if !x.bit(0) {
            return None;
        }
        to_be(&(x >> 1))
    } else {
        to_be(x)
    };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Random-blind attributes decode as base62 (`0-9a-zA-Z`) of their bytes, leading zero bytes
/// becoming leading `'0'`s.
pub fn decode_random_blind(x: &Int) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let bytes = to_be(x);
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut digits = Vec::new();
    let mut v = x.clone();
    let base = Int::from(62u8);
    while !v.is_zero() {
        let d: u8 = (&v % &base).try_into().expect("below 62");
        digits.push(ALPHABET[d as usize]);
        v /= &base;
    }
    let mut s = "0".repeat(zeros);
    s.extend(digits.iter().rev().map(|&c| c as char));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bigjson::from_base64;

    #[test]
    fn decodes_the_spec_example() {
        let m =
            Metadata::from_int(&from_base64("AwAKOQIBAALWy2qU9p3l52l9LU1rVT4M").unwrap()).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.signing_date(), 1582761600);
        assert_eq!(m.validity_weeks, 513);
        assert_eq!(m.expiry(), 1893024000);
        assert_eq!(m.key_counter, 2);
        assert_eq!(m.type_hash, type_hash("irma-demo.RU.studentCard"));
        assert_eq!(Metadata::from_int(&m.to_int()), Some(m));
    }

    #[test]
    fn issue_rounds_to_weeks() {
        let now = 1795813034; // 2026-11-27
        let m = Metadata::issue(now, 1861920000, 2, "irma-demo.RU.studentCard").unwrap();
        assert_eq!(m.signing_date(), 1795651200);
        assert_eq!(m.expiry(), 1861574400); // 2028-12-28
        assert!(Metadata::issue(now, now - 2 * WEEK, 2, "x").is_none());
    }

    #[test]
    fn attribute_decoding_matches_irmago() {
        assert_eq!(
            decode(&Int::from(3670202571u64), 3).as_deref(),
            Some("male")
        );
        assert_eq!(
            decode(&Int::from(1835101285u64), 2).as_deref(),
            Some("male")
        );
        assert_eq!(decode(&Int::ZERO, 3), None);
        assert_eq!(decode(&encode(Some("")), 3).as_deref(), Some(""));
        assert_eq!(decode(&encode(Some("456")), 3).as_deref(), Some("456"));
        assert_eq!(
            decode(&Int::from(0xffu32 * 2 + 1), 3).as_deref(),
            Some("\u{fffd}")
        );
    }

    #[test]
    fn base62() {
        assert_eq!(decode_random_blind(&Int::from(61u8)), "Z");
        assert_eq!(decode_random_blind(&Int::from(62u8)), "10");
        assert_eq!(decode_random_blind(&Int::ZERO), "");
    }
}
