//! Constant-time arithmetic with the issuer's private key (idemix.md §6.6).
//!
//! Everything that touches `p`, `q`, `p'q'` or a secret exponent (`d = e^-1 mod p'q'`, the
//! ProofS nonce `r`) runs here on `crypto-bigint`'s [`BoxedUint`] at a precision fixed per key:
//! `full` bits for `N`, `p'q'` and exponents, `half` bits for `p` and `q`, both rounded up to
//! whole limbs. A value's own length never picks a code path or a loop count, so timing depends
//! only on the key's size. Public values (`e`, `c`, `Q`, `N`) may enter and leave through dashu.
//!
//! The crate's [`Modulus`](crate::bigint::Modulus) is not used here: its exponentiation skips
//! zero windows and may be routed to a host import, and its inversion is a variable-time gcd.

use alloc::sync::Arc;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::subtle::ConstantTimeLess;
use crypto_bigint::{BoxedUint, Limb, NonZero, Odd};
use rand_core::RngCore;

use crate::bigint::{Int, bit_len};

/// A secret residue or exponent at the key's full precision (`d`, `r`, `c·d`). Not `Debug`, so it
/// cannot end up in a log line by accident.
pub struct Secret(pub(crate) BoxedUint);

impl Secret {
    /// Gives up secrecy: for values the protocol publishes (the ProofS response).
    pub fn into_public(self) -> Int {
        to_int(&self.0)
    }
}

/// `bits` rounded up to whole limbs (64 bits natively, 32 on wasm32).
fn limb_precision(bits: usize) -> u32 {
    (bits.max(1) as u32).div_ceil(Limb::BITS) * Limb::BITS
}

/// `x` at exactly `bits` of precision. Panics when `x` does not fit: callers pass values whose
/// bound is known (reduced public inputs, key factors at load).
fn from_int(x: &Int, bits: u32) -> BoxedUint {
    BoxedUint::from_be_slice(&x.to_be_bytes(), bits).expect("value fits the key's precision")
}

fn to_int(x: &BoxedUint) -> Int {
    Int::from_be_bytes(&x.to_be_bytes())
}

/// One CRT half: an odd prime (`p`, `q`, `p'` or `q'`) with what arithmetic modulo it needs.
#[derive(Clone)]
struct Factor {
    /// The prime at half precision.
    modulus: Odd<BoxedUint>,
    /// Its Montgomery parameters, built once per key.
    params: Arc<BoxedMontyParams>,
    /// The prime at full precision, to reduce a full-size value.
    wide: NonZero<BoxedUint>,
    /// The exponent's reduction: `p-1` at full precision (for `p`, `q`: Fermat-Euler), and
    /// `p-2` at half precision (for `p'`, `q'`: `x^-1 = x^(p-2)`).
    minus_one: NonZero<BoxedUint>,
    minus_two: BoxedUint,
}

impl Factor {
    fn new(p: &Int, half: u32, full: u32) -> Option<Factor> {
        let modulus: Odd<BoxedUint> = Option::from(Odd::new(from_int(p, half)))?;
        let params = Arc::new(BoxedMontyParams::new(modulus.clone()));
        let wide = Option::from(NonZero::new(from_int(p, full)))?;
        let minus_one = Option::from(NonZero::new(from_int(&(p - Int::ONE), full)))?;
        let minus_two = from_int(&(p - Int::from(2u8)), half);
        Some(Factor {
            modulus,
            params,
            wide,
            minus_one,
            minus_two,
        })
    }

    /// A full-precision value modulo this prime, in Montgomery form.
    fn residue(&self, x: &BoxedUint, half: u32) -> BoxedMontyForm {
        BoxedMontyForm::new_with_arc(x.rem(&self.wide).shorten(half), self.params.clone())
    }

    /// `x^d mod p` for `x` and `d` at full precision. The exponent is reduced modulo `p-1` and
    /// then used at the full half precision: the ladder's length and its table look-ups do not
    /// depend on `d`'s value.
    fn pow(&self, x: &BoxedUint, d: &BoxedUint, half: u32) -> BoxedUint {
        let exp = d.rem(&self.minus_one).shorten(half);
        self.residue(x, half).pow(&exp).retrieve()
    }

    /// `x^-1 mod p` as `x^(p-2)` (zero when `p` divides `x`): one fixed-length ladder, several
    /// times faster here than crypto-bigint's safegcd on the full `p'q'`.
    fn inverse(&self, x: &BoxedUint, half: u32) -> BoxedUint {
        self.residue(x, half).pow(&self.minus_two).retrieve()
    }
}

/// Two coprime primes `a`, `b` and Garner's recombination of residues modulo them.
#[derive(Clone)]
struct Crt {
    a: Factor,
    b: Factor,
    /// `b` at half precision, for `xb + h·b`.
    b_half: BoxedUint,
    /// `b^-1 mod a` in Montgomery form modulo `a`.
    b_inv_a: BoxedMontyForm,
}

impl Crt {
    fn new(a: &Int, b: &Int, half: u32, full: u32) -> Option<Crt> {
        let a = Factor::new(a, half, full)?;
        let b_half = from_int(b, half);
        let b = Factor::new(b, half, full)?;
        let b_mod_a = b_half.rem(a.modulus.as_nz_ref());
        let b_inv: BoxedUint = Option::from(b_mod_a.inv_odd_mod(&a.modulus))?;
        let b_inv_a = BoxedMontyForm::new_with_arc(b_inv, a.params.clone());
        Some(Crt {
            a,
            b,
            b_half,
            b_inv_a,
        })
    }

    /// The `x < ab` with `x ≡ xa mod a`, `x ≡ xb mod b` (both at half precision), at twice the
    /// half precision: `h = (xa - xb)·b^-1 mod a`, `x = xb + h·b`.
    fn combine(&self, xa: &BoxedUint, xb: &BoxedUint) -> BoxedUint {
        let xb_a = xb.rem(self.a.modulus.as_nz_ref());
        let diff = xa.sub_mod(&xb_a, &self.a.modulus);
        let h = BoxedMontyForm::new_with_arc(diff, self.a.params.clone())
            .mul(&self.b_inv_a)
            .retrieve();
        let hb = h.mul(&self.b_half);
        hb.wrapping_add(&xb.widen(hb.bits_precision()))
    }
}

/// The constant-time view of an issuer private key, built when the key is made and kept.
#[derive(Clone)]
pub(crate) struct CtKey {
    full: u32,
    half: u32,
    /// `N = pq` (public), to reduce an oversized base before it enters fixed precision.
    n: Int,
    /// `p`, `q`: for `x^d mod N`.
    pq: Crt,
    /// `p'`, `q'`: for `e^-1 mod p'q'` and for telling units of `Z_{p'q'}`.
    order_factors: Crt,
    /// `p'q'` at full precision, and its Montgomery parameters.
    order: Odd<BoxedUint>,
    order_params: Arc<BoxedMontyParams>,
    /// Bit length of `p'q'`, fixed per key: how many random bits a candidate nonce takes.
    order_bits: usize,
}

impl CtKey {
    /// `None` when `p`, `q`, `p'` or `q'` is even or `p`, `q` (or `p'`, `q'`) are not coprime.
    pub(crate) fn new(p: &Int, q: &Int, order: &Int) -> Option<CtKey> {
        let n = p * q;
        let full = limb_precision(bit_len(&n));
        let half = limb_precision(bit_len(p).max(bit_len(q)));
        let pq = Crt::new(p, q, half, full)?;
        let p_prime = (p - Int::ONE) >> 1;
        let q_prime = (q - Int::ONE) >> 1;
        let order_factors = Crt::new(&p_prime, &q_prime, half, full)?;
        let order_odd: Odd<BoxedUint> = Option::from(Odd::new(from_int(order, full)))?;
        let order_params = Arc::new(BoxedMontyParams::new(order_odd.clone()));
        Some(CtKey {
            full,
            half,
            n,
            pq,
            order_factors,
            order: order_odd,
            order_params,
            order_bits: bit_len(order),
        })
    }

    /// A secret exponent from an integer below `2^full` (tests and benchmarks pass arbitrary
    /// exponents; the protocol's own come from [`Self::inverse_mod_order`] and
    /// [`Self::random_unit`]).
    pub(crate) fn secret(&self, d: &Int) -> Secret {
        Secret(from_int(d, self.full))
    }

    /// `x^d mod N` by RSA-CRT. `x` is public; `d` is reduced modulo `p-1` and `q-1`, which is
    /// exact for `x` coprime to `N` (as every `Q` is: `Z` times a unit's inverse; an `x` sharing
    /// a factor with `N` would factor it). For such an `x` and `d ≡ 0 mod p-1` the half modulo
    /// `p` comes out 1 instead of 0, as with the former dashu code.
    pub(crate) fn pow_crt(&self, x: &Int, d: &Secret) -> Int {
        let x = if x >= &self.n { x % &self.n } else { x.clone() };
        let x = from_int(&x, self.full);
        let xp = self.pq.a.pow(&x, &d.0, self.half);
        let xq = self.pq.b.pow(&x, &d.0, self.half);
        let sum = self.pq.combine(&xp, &xq);
        to_int(&sum)
    }

    /// A public value (`e`, `c`; both far shorter than `N`) modulo `p'q'`. The divisor is
    /// secret, so not dashu's division but a constant-time one.
    fn reduce_public(&self, x: &Int) -> BoxedUint {
        // x's length is public; widen for a test key smaller than x.
        let bits = self.full.max(limb_precision(bit_len(x)));
        from_int(x, bits)
            .rem(&self.order.as_nz_ref().widen(bits))
            .shorten(self.full)
    }

    /// `e^-1 mod p'q'`, or `None` when `gcd(e, p'q') != 1`: `e^(p'-2) mod p'` and
    /// `e^(q'-2) mod q'` recombined (p' and q' are prime in a safe-prime key), checked by
    /// `e·d ≡ 1`. Should the check fail (a key whose p' or q' is not prime) it falls back on
    /// safegcd, which is constant time too but 5-7 times slower at these sizes.
    pub(crate) fn inverse_mod_order(&self, e: &Int) -> Option<Secret> {
        let e = self.reduce_public(e);
        let f = &self.order_factors;
        let dp = f.a.inverse(&e, self.half);
        let dq = f.b.inverse(&e, self.half);
        let d = f.combine(&dp, &dq).shorten(self.full);
        let monty =
            |x: &BoxedUint| BoxedMontyForm::new_with_arc(x.clone(), self.order_params.clone());
        if bool::from(monty(&e).mul(&monty(&d)).retrieve().is_one()) {
            return Some(Secret(d));
        }
        Option::from(e.inv_odd_mod(&self.order)).map(Secret)
    }

    /// `c·d mod p'q'` for a public `c`, by one Montgomery multiplication.
    pub(crate) fn mul_mod_order(&self, c: &Int, d: &Secret) -> Secret {
        let c = self.reduce_public(c);
        let c = BoxedMontyForm::new_with_arc(c, self.order_params.clone());
        let d = BoxedMontyForm::new_with_arc(d.0.clone(), self.order_params.clone());
        Secret(c.mul(&d).retrieve())
    }

    /// `a - b mod p'q'` for `a, b < p'q'`: a subtraction and a masked add-back.
    pub(crate) fn sub_mod_order(&self, a: &Secret, b: &Secret) -> Secret {
        Secret(a.0.sub_mod(&b.0, &self.order))
    }

    /// A uniform unit of `Z_{p'q'}` other than zero. Rejection sampling as before (the same
    /// random bytes give the same `r`), but the tests `r < p'q'`, `r != 0` and
    /// `gcd(r, p'q') = 1` (as `p' ∤ r`, `q' ∤ r`: exact for prime p', q') are constant time;
    /// only the verdict on a discarded candidate shows.
    pub(crate) fn random_unit(&self, rng: &mut dyn RngCore) -> Secret {
        let mut buf = vec![0u8; self.order_bits.div_ceil(8)];
        loop {
            rng.fill_bytes(&mut buf);
            let excess = buf.len() * 8 - self.order_bits;
            if excess > 0 {
                buf[0] &= 0xff >> excess;
            }
            let r = BoxedUint::from_be_slice(&buf, self.full).expect("below 2^full");
            let below = r.ct_lt(self.order.as_ref());
            // A unit of Z_{p'q'} is a multiple of neither prime factor.
            let f = &self.order_factors;
            let unit = r.rem(&f.a.wide).is_nonzero() & r.rem(&f.b.wide).is_nonzero();
            if bool::from(below & r.is_nonzero() & unit) {
                buf.fill(0);
                return Secret(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use crate::bigint::{Modulus, gcd, pow2, random_below, random_bits};
    use crate::keygen::safe_prime;
    use crate::keys::PrivateKey;

    use super::*;

    /// Exponents that stress a windowed ladder: zero, one, powers of two, few and all bits set,
    /// short, `p'q' - 1`, and random ones up to the full width.
    fn exponents(sk: &PrivateKey, rng: &mut ChaCha20Rng) -> Vec<Int> {
        let full = bit_len(&sk.n());
        let mut v = vec![
            Int::ZERO,
            Int::ONE,
            Int::from(2u8),
            Int::from(3u8),
            &sk.order - Int::ONE,
            sk.order.clone(),
            &sk.p - Int::ONE,
            &sk.q - Int::ONE,
            pow2(full - 1),
            pow2(full) - Int::ONE,
            pow2(full / 2) + Int::ONE,
            (pow2(full - 1) | pow2(full / 3)) | Int::ONE,
        ];
        for bits in [5, 64, full / 2, full - 2, full] {
            v.push(random_bits(rng, bits));
        }
        v
    }

    fn bases(sk: &PrivateKey, rng: &mut ChaCha20Rng) -> Vec<Int> {
        let n = sk.n();
        // Units only: see pow_crt's precondition.
        vec![
            Int::ONE,
            Int::from(2u8),
            &n - Int::ONE,
            &n + Int::from(5u8), // above N: reduced first
            random_unit_below(rng, &n),
            random_unit_below(rng, &n),
        ]
    }

    fn random_unit_below(rng: &mut ChaCha20Rng, n: &Int) -> Int {
        loop {
            let x = random_below(rng, n);
            if gcd(&x, n) == Int::ONE {
                return x;
            }
        }
    }

    fn check_pow_crt(sk: &PrivateKey, rng: &mut ChaCha20Rng) {
        let n = Modulus::new(sk.n()).unwrap();
        for x in bases(sk, rng) {
            for d in exponents(sk, rng) {
                assert_eq!(
                    sk.pow_crt(&x, &sk.secret(&d)),
                    n.pow_local(&x, &d),
                    "{sk:?}: x^d mod N for a {}-bit d",
                    bit_len(&d)
                );
            }
        }
    }

    fn check_order_arithmetic(sk: &PrivateKey, rng: &mut ChaCha20Rng) {
        let order = Modulus::new(sk.order.clone()).unwrap();
        let mut es = vec![Int::ONE, &sk.order - Int::ONE, Int::from(3u8)];
        for _ in 0..8 {
            es.push(random_below(rng, &sk.order));
        }
        for e in es {
            let ours = sk.inverse_mod_order(&e).map(Secret::into_public);
            assert_eq!(ours, order.inv(&e), "{sk:?}: e^-1 mod p'q'");
            let c = random_bits(rng, 256);
            let d = sk.secret(&(&e % &sk.order));
            let cd = sk.mul_mod_order(&c, &d);
            assert_eq!(to_int(&cd.0), (&c * &e) % &sk.order);
            let r = sk.random_unit(rng);
            let r_int = to_int(&r.0);
            let cd_int = to_int(&cd.0);
            assert_eq!(
                sk.sub_mod_order(&r, &cd).into_public(),
                (&r_int + &sk.order - cd_int) % &sk.order
            );
        }
        // Not invertible: a factor of the order, and zero.
        assert!(sk.inverse_mod_order(&sk.p_prime).is_none());
        assert!(sk.inverse_mod_order(&Int::ZERO).is_none());
        assert!(sk.inverse_mod_order(&sk.order).is_none());
    }

    /// A key of two safe primes of the given sizes (they may differ: `half` is the larger).
    fn fresh_key(p_bits: usize, q_bits: usize, rng: &mut ChaCha20Rng) -> PrivateKey {
        loop {
            let p = safe_prime(p_bits, rng);
            let q = safe_prime(q_bits, rng);
            if p != q {
                return PrivateKey::new(0, 0, p, q).unwrap();
            }
        }
    }

    #[test]
    fn a_key_held_elsewhere_has_no_primes_and_refuses_to_sign_here() {
        let sk = PrivateKey::held_elsewhere(3, 99);
        assert!(sk.is_held_elsewhere() && !sk.can_sign());
        assert_eq!(
            (sk.counter, sk.p.clone(), sk.q.clone()),
            (3, Int::ZERO, Int::ZERO)
        );
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (q, e) = (Int::from(4u8), Int::from(5u8));
        assert!(crate::issuance::sign_with_key(&sk, &q, &e, &Int::ONE, &mut rng).is_err());
    }

    #[test]
    fn pow_crt_matches_plain_exponentiation_on_fresh_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for (pb, qb) in [(128, 128), (96, 160), (160, 96), (64, 64), (40, 70)] {
            let sk = fresh_key(pb, qb, &mut rng);
            check_pow_crt(&sk, &mut rng);
            check_order_arithmetic(&sk, &mut rng);
        }
        // The smallest safe primes the key accepts: one limb, q > p and p > q.
        for (p, q) in [(7u8, 11u8), (11, 7), (23, 47)] {
            let sk = PrivateKey::new(0, 0, Int::from(p), Int::from(q)).unwrap();
            check_pow_crt(&sk, &mut rng);
        }
    }

    #[cfg(feature = "workload")]
    #[test]
    fn pow_crt_and_inverse_match_dashu_on_the_demo_keys() {
        let conf = crate::workload::demo_configuration().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for issuer in ["stateless-demo.University", "stateless-demo.Government"] {
            let sk = conf.latest_private_key(issuer).unwrap();
            check_pow_crt(&sk, &mut rng);
            check_order_arithmetic(&sk, &mut rng);
        }
    }

    /// The nonce takes the same random bytes and accepts the same candidates as the former
    /// variable-time loop, so seeded runs (recorded transcripts) issue the same signatures.
    #[test]
    fn random_unit_draws_what_the_variable_time_loop_drew() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let sk = fresh_key(64, 64, &mut rng);
        for seed in 0..50 {
            let mut a = ChaCha20Rng::seed_from_u64(seed);
            let mut b = ChaCha20Rng::seed_from_u64(seed);
            let old = loop {
                let r = random_below(&mut a, &sk.order);
                if !r.is_zero() && gcd(&r, &sk.order) == Int::ONE {
                    break r;
                }
            };
            let new = sk.random_unit(&mut b).into_public();
            assert_eq!(new, old);
            assert_eq!(a.next_u64(), b.next_u64(), "same amount of randomness");
        }
    }

    /// p = 19 is prime but p' = 9 is not: Fermat's inverse is wrong there, the check catches it
    /// and safegcd answers.
    #[test]
    fn inverse_falls_back_on_safegcd_for_a_composite_p_prime() {
        let sk = PrivateKey::new(0, 0, Int::from(19u8), Int::from(23u8)).unwrap();
        let order = Modulus::new(sk.order.clone()).unwrap();
        for e in 0u8..99 {
            let e = Int::from(e);
            let ours = sk.inverse_mod_order(&e).map(Secret::into_public);
            assert_eq!(ours, order.inv(&e), "{e}^-1 mod 99");
        }
    }

    #[test]
    fn tiny_order_rejects_non_units() {
        // p = 7, q = 11: p'q' = 15; the units are those coprime to 3 and 5.
        let sk = PrivateKey::new(0, 0, Int::from(7u8), Int::from(11u8)).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        for _ in 0..200 {
            let r = sk.random_unit(&mut rng).into_public();
            assert!(!r.is_zero() && r < Int::from(15u8));
            assert_eq!(gcd(&r, &Int::from(15u8)), Int::ONE);
        }
    }
}
