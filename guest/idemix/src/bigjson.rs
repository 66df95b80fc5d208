//! gabi's JSON form of big integers (idemix.md §2.1): a base64 string of the minimal big-endian
//! bytes (`""` is zero). Decoding also accepts a plain JSON number, as Go does.

use alloc::string::String;
use core::fmt;
use core::ops::Deref;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bigint::{Int, from_be, to_be};

/// A big integer as it travels in protocol JSON.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Big(pub Int);

impl fmt::Debug for Big {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Deref for Big {
    type Target = Int;
    fn deref(&self) -> &Int {
        &self.0
    }
}

impl From<Int> for Big {
    fn from(x: Int) -> Big {
        Big(x)
    }
}

/// Standard base64 with padding of `bytes(x)`.
pub fn to_base64(x: &Int) -> String {
    STANDARD.encode(to_be(x))
}

pub fn from_base64(s: &str) -> Option<Int> {
    STANDARD.decode(s.trim()).ok().map(|b| from_be(&b))
}

impl Serialize for Big {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_base64(&self.0))
    }
}

struct BigVisitor;

impl Visitor<'_> for BigVisitor {
    type Value = Big;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string or a non-negative integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Big, E> {
        from_base64(v)
            .map(Big)
            .ok_or_else(|| E::custom("invalid base64 big integer"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Big, E> {
        Ok(Big(Int::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Big, E> {
        u64::try_from(v)
            .map(|v| Big(Int::from(v)))
            .map_err(|_| E::custom("negative big integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Big, E> {
        Err(E::custom("big integer given as a fraction or out of range"))
    }
}

impl<'de> Deserialize<'de> for Big {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Big, D::Error> {
        d.deserialize_any(BigVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn round_trip_and_zero() {
        assert_eq!(serde_json::to_string(&Big(Int::ZERO)).unwrap(), "\"\"");
        assert_eq!(serde_json::to_string(&Big(Int::ONE)).unwrap(), "\"AQ==\"");
        let b: Big = serde_json::from_str("\"AQ==\"").unwrap();
        assert_eq!(b.0, Int::ONE);
        let z: Big = serde_json::from_str("\"\"").unwrap();
        assert_eq!(z.0, Int::ZERO);
        let n: Big = serde_json::from_str("1337").unwrap();
        assert_eq!(n.0, Int::from(1337u32));
        assert!(serde_json::from_str::<Big>("-1").is_err());
        assert!(serde_json::from_str::<Big>("\"!!\"").is_err());
        assert!(serde_json::from_str::<Big>("1.5").is_err());
        assert!(serde_json::from_str::<Big>("null").is_err());
    }

    #[test]
    fn integer_keyed_maps() {
        let m: BTreeMap<u32, Big> = serde_json::from_str(r#"{"2":"Ag==","0":""}"#).unwrap();
        assert_eq!(m[&2].0, Int::from(2u8));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"0":"","2":"Ag=="}"#);
        assert!(serde_json::from_str::<BTreeMap<u32, Big>>(r#"{"x":""}"#).is_err());
    }
}
