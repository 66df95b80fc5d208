//! The `arith` import: multi-exponentiation for the guest, natively. Bases known in advance
//! (every issuer public key's `S`, which carries a proof's longest exponent) are taken from
//! precomputed powers (`irma_idemix::fixed_base`), built at a key's first use and kept; the
//! other bases share one interleaved multi-exponentiation.

use std::collections::HashMap;
use std::sync::OnceLock;

use irma_idemix::bigint::{Int, Modulus, bit_len, from_be, to_be};
use irma_idemix::fixed_base::FixedBase;

/// Exponents shorter than this stay in the shared multi-exponentiation: their squarings are
/// shared with the other bases' anyway, so powers would save little.
const LONG_EXPONENT_BITS: usize = 1024;

/// The fixed bases of the loaded public keys, by their big-endian bytes.
#[derive(Default)]
pub struct FixedBases {
    by_base: HashMap<Vec<u8>, Entry>,
}

struct Entry {
    /// The key's modulus, big-endian: a base counts as fixed only modulo its own key's `N`.
    modulus: Vec<u8>,
    n: Int,
    base: Int,
    powers: OnceLock<Option<FixedBase>>,
}

impl FixedBases {
    /// Every public key's `S` (modulus `n`), the powers to be built when first needed.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a Int, &'a Int)>) -> FixedBases {
        let by_base = keys
            .into_iter()
            .map(|(n, s)| {
                let entry = Entry {
                    modulus: to_be(n),
                    n: n.clone(),
                    base: s.clone(),
                    powers: OnceLock::new(),
                };
                (to_be(s), entry)
            })
            .collect();
        FixedBases { by_base }
    }

    /// The powers of `base` modulo `modulus`, if it is a known key's `S`.
    fn get(&self, modulus: &[u8], base: &[u8]) -> Option<&FixedBase> {
        let e = self.by_base.get(base).filter(|e| e.modulus == modulus)?;
        e.powers
            .get_or_init(|| {
                // v's responses are under 2·bits(N) + 1024 bits at every key size (idemix.md §2).
                FixedBase::new(&e.n, &e.base, 2 * bit_len(&e.n) + 1024)
            })
            .as_ref()
    }
}

/// `Π bases[i]^exps[i] mod modulus`, big-endian; a malformed modulus (even, or at most 1)
/// gives an empty answer rather than a trap, and the guest's proof check then fails.
pub fn multi_exp(
    fixed: &FixedBases,
    modulus: &[u8],
    bases: &[Vec<u8>],
    exps: &[Vec<u8>],
) -> Vec<u8> {
    let Some(m) = Modulus::new(from_be(modulus)) else {
        return Vec::new();
    };
    let mut rest_bases = Vec::with_capacity(bases.len());
    let mut rest_exps = Vec::with_capacity(bases.len());
    let mut product: Option<Int> = None;
    for (b, e) in bases.iter().zip(exps) {
        let e = from_be(e);
        let powers = (bit_len(&e) >= LONG_EXPONENT_BITS)
            .then(|| fixed.get(modulus, b))
            .flatten()
            .filter(|p| p.covers(&e));
        match powers {
            Some(p) => {
                let v = p.pow(&e);
                product = Some(match product {
                    Some(acc) => m.mul(&acc, &v),
                    None => v,
                });
            }
            None => {
                rest_bases.push(from_be(b));
                rest_exps.push(e);
            }
        }
    }
    let br: Vec<&Int> = rest_bases.iter().collect();
    let er: Vec<&Int> = rest_exps.iter().collect();
    let rest = match (br.as_slice(), er.as_slice()) {
        ([], []) => None,
        ([b], [e]) => Some(m.pow_local(b, e)),
        _ => Some(m.multi_exp_local(&br, &er)),
    };
    let result = match (product, rest) {
        (Some(a), Some(b)) => m.mul(&a, &b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => Int::ONE % m.value(),
    };
    to_be(&result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use irma_idemix::bigint::random_bits;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn fixed_bases_give_what_the_plain_multi_exponentiation_gives() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let n = random_bits(&mut rng, 1024) | Int::ONE | (Int::ONE << 1023);
        let s = random_bits(&mut rng, 1020);
        let other_n = &n + Int::from(2u8);
        let fixed = FixedBases::new([(&n, &s)]);
        let m = Modulus::new(n.clone()).unwrap();
        let r = random_bits(&mut rng, 1020);
        for (s_bits, r_bits) in [(2800, 600), (100, 600), (1100, 1500), (4000, 10), (0, 0)] {
            let (es, er) = (random_bits(&mut rng, s_bits), random_bits(&mut rng, r_bits));
            let want = m.multi_exp_local(&[&s, &r], &[&es, &er]);
            let got = multi_exp(
                &fixed,
                &to_be(&n),
                &[to_be(&s), to_be(&r)],
                &[to_be(&es), to_be(&er)],
            );
            assert_eq!(from_be(&got), want, "{s_bits} {r_bits}");
            // S alone, and S under another modulus (not the key's: no powers).
            let got = multi_exp(&fixed, &to_be(&n), &[to_be(&s)], &[to_be(&es)]);
            assert_eq!(from_be(&got), m.pow_local(&s, &es));
            let other = Modulus::new(other_n.clone()).unwrap();
            let got = multi_exp(&fixed, &to_be(&other_n), &[to_be(&s)], &[to_be(&es)]);
            assert_eq!(from_be(&got), other.pow_local(&s, &es));
        }
        assert!(
            fixed.get(&to_be(&n), &to_be(&s)).is_some(),
            "the key's S has powers"
        );
        assert_eq!(
            multi_exp(&fixed, &[4], &[vec![3]], &[vec![5]]),
            Vec::<u8>::new()
        );
    }
}
