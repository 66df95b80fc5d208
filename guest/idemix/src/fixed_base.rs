//! Exponentiation of a base known in advance (an issuer public key's `S`), by precomputed
//! powers: `base^(2^(W·i))` for every window `i` an exponent may have, so that `base^e` needs
//! no squaring at all, one multiplication per non-zero window of `e` and `2^W - 1` more
//! (Brickell, Gordon, McCurley and Wilson's method, in Yao's arrangement).
//!
//! In a proof `S` carries the longest exponent (`v`, thousands of bits): taking it out of the
//! shared multi-exponentiation leaves that one with the squarings of the next longest only.
//! Everything here is public (bases, moduli, exponents of proofs), so variable time is fine.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Limb, Odd};

use crate::bigint::{Int, bit_len, from_be, to_be};

/// Window width: 6 bits makes the `2^W - 1` fixed multiplications small against the
/// `bits / W` per exponent, for exponents of a few thousand bits.
const W: usize = 6;

pub struct FixedBase {
    /// `powers[i] = base^(2^(W·i))` in Montgomery form.
    powers: Vec<BoxedMontyForm>,
    one: BoxedMontyForm,
}

impl FixedBase {
    /// Powers of `base` modulo the odd `n` for exponents of up to `max_bits` bits; `None` for
    /// an even modulus.
    pub fn new(n: &Int, base: &Int, max_bits: usize) -> Option<FixedBase> {
        let precision = (bit_len(n).max(1) as u32).div_ceil(Limb::BITS) * Limb::BITS;
        let modulus = BoxedUint::from_be_slice(&to_be(n), precision).ok()?;
        let modulus: Odd<BoxedUint> = Option::from(Odd::new(modulus))?;
        let params = Arc::new(BoxedMontyParams::new_vartime(modulus));
        let base = BoxedUint::from_be_slice(&to_be(&(base % n)), precision).ok()?;
        let mut power = BoxedMontyForm::new_with_arc(base, params.clone());
        let mut powers = Vec::with_capacity(max_bits.div_ceil(W));
        for _ in 0..max_bits.div_ceil(W) {
            let next = (0..W).fold(power.clone(), |p, _| p.square());
            powers.push(core::mem::replace(&mut power, next));
        }
        Some(FixedBase {
            powers,
            one: BoxedMontyForm::one((*params).clone()),
        })
    }

    /// Whether `base^e` can be taken from these powers.
    pub fn covers(&self, e: &Int) -> bool {
        bit_len(e) <= self.powers.len() * W
    }

    /// `base^e mod n`, for an `e` this covers.
    pub fn pow(&self, e: &Int) -> Int {
        debug_assert!(self.covers(e));
        let bytes = to_be(e);
        let bit = |k: usize| {
            let byte = k / 8;
            byte < bytes.len() && (bytes[bytes.len() - 1 - byte] >> (k % 8)) & 1 == 1
        };
        let digits: Vec<usize> = (0..self.powers.len())
            .map(|i| {
                (0..W)
                    .rev()
                    .fold(0, |d, k| (d << 1) | bit(i * W + k) as usize)
            })
            .collect();
        // Yao: b collects the powers whose digit is at least d; a multiplies each b in, so
        // a power with digit d is counted d times.
        let (mut a, mut b) = (self.one.clone(), self.one.clone());
        for d in (1..1usize << W).rev() {
            for (i, _) in digits.iter().enumerate().filter(|(_, di)| **di == d) {
                b = b.mul(&self.powers[i]);
            }
            a = a.mul(&b);
        }
        from_be(&a.retrieve().to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bigint::{Modulus, random_bits};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn powers_of_a_fixed_base_match_plain_exponentiation() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for bits in [64usize, 521, 1024] {
            let n = random_bits(&mut rng, bits) | Int::ONE | (Int::ONE << (bits - 1));
            let m = Modulus::new(n.clone()).unwrap();
            let base = random_bits(&mut rng, bits + 7);
            let fb = FixedBase::new(&n, &base, 700).unwrap();
            for e in [Int::ZERO, Int::ONE, Int::from(63u8), Int::from(64u8)]
                .into_iter()
                .chain((0..6).map(|i| random_bits(&mut rng, 100 * i + 3)))
                .chain([(Int::ONE << 696) - Int::ONE])
            {
                assert!(fb.covers(&e));
                assert_eq!(fb.pow(&e), m.pow_local(&base, &e), "{bits} bits");
            }
            assert!(!fb.covers(&(Int::ONE << 702)));
        }
        assert!(FixedBase::new(&Int::from(10u8), &Int::from(3u8), 10).is_none());
    }
}
