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

use std::sync::Arc;

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

/// One CRT half: a prime factor `p` of `N` with what exponentiation modulo it needs.
#[derive(Clone)]
struct Factor {
    /// `p` at half precision.
    modulus: Odd<BoxedUint>,
    /// Montgomery parameters for `p`, built once per key.
    params: Arc<BoxedMontyParams>,
    /// `p` at full precision, to reduce a base below `N`.
    wide: NonZero<BoxedUint>,
    /// `p - 1` at full precision, to reduce an exponent.
    minus_one: NonZero<BoxedUint>,
}

impl Factor {
    fn new(p: &Int, half: u32, full: u32) -> Option<Factor> {
        let modulus: Odd<BoxedUint> = Option::from(Odd::new(from_int(p, half)))?;
        let params = Arc::new(BoxedMontyParams::new(modulus.clone()));
        let wide = Option::from(NonZero::new(from_int(p, full)))?;
        let minus_one = Option::from(NonZero::new(from_int(&(p - Int::ONE), full)))?;
        Some(Factor {
            modulus,
            params,
            wide,
            minus_one,
        })
    }

    /// `x^d mod p` for `x` and `d` at full precision. The exponent is reduced modulo `p-1` and
    /// then used at the full half precision: the ladder's length and its table look-ups do not
    /// depend on `d`'s value.
    fn pow(&self, x: &BoxedUint, d: &BoxedUint, half: u32) -> BoxedUint {
        let base = x.rem(&self.wide).shorten(half);
        let exp = d.rem(&self.minus_one).shorten(half);
        BoxedMontyForm::new_with_arc(base, self.params.clone())
            .pow(&exp)
            .retrieve()
    }
}

/// The constant-time view of an issuer private key, built once when the key is loaded.
#[derive(Clone)]
pub(crate) struct CtKey {
    full: u32,
    half: u32,
    /// `N = pq` (public), to reduce an oversized base before it enters fixed precision.
    n: Int,
    p: Factor,
    q: Factor,
    /// `q` at half precision, for the recombination `xq + h·q`.
    q_half: BoxedUint,
    /// `q^-1 mod p` in Montgomery form modulo `p`.
    q_inv_p: BoxedMontyForm,
    /// `p'q'` at full precision, and its Montgomery parameters.
    order: Odd<BoxedUint>,
    order_params: Arc<BoxedMontyParams>,
    /// Bit length of `p'q'`, fixed per key: how many random bits a candidate nonce takes.
    order_bits: usize,
}

impl CtKey {
    /// `None` when `p`, `q` or `p'q'` is even or `p`, `q` are not coprime.
    pub(crate) fn new(p: &Int, q: &Int, order: &Int) -> Option<CtKey> {
        let n = p * q;
        let full = limb_precision(bit_len(&n));
        let half = limb_precision(bit_len(p).max(bit_len(q)));
        let fp = Factor::new(p, half, full)?;
        let fq = Factor::new(q, half, full)?;
        let q_half = from_int(q, half);
        let q_mod_p = q_half.rem(fp.modulus.as_nz_ref());
        let q_inv: BoxedUint = Option::from(q_mod_p.inv_odd_mod(&fp.modulus))?;
        let q_inv_p = BoxedMontyForm::new_with_arc(q_inv, fp.params.clone());
        let order_odd: Odd<BoxedUint> = Option::from(Odd::new(from_int(order, full)))?;
        let order_params = Arc::new(BoxedMontyParams::new(order_odd.clone()));
        Some(CtKey {
            full,
            half,
            n,
            p: fp,
            q: fq,
            q_half,
            q_inv_p,
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

    /// `x^d mod N` by RSA-CRT. `x` is public; `d` is reduced modulo `p-1` and `q-1`.
    pub(crate) fn pow_crt(&self, x: &Int, d: &Secret) -> Int {
        let x = if x >= &self.n { x % &self.n } else { x.clone() };
        let x = from_int(&x, self.full);
        let xp = self.p.pow(&x, &d.0, self.half);
        let xq = self.q.pow(&x, &d.0, self.half);
        // h = (xp - xq) · q^-1 mod p; x^d = xq + h·q < N.
        let xq_p = xq.rem(self.p.modulus.as_nz_ref());
        let diff = xp.sub_mod(&xq_p, &self.p.modulus);
        let h = BoxedMontyForm::new_with_arc(diff, self.p.params.clone())
            .mul(&self.q_inv_p)
            .retrieve();
        let hq = h.mul(&self.q_half);
        let sum = hq.wrapping_add(&xq.widen(hq.bits_precision()));
        to_int(&sum)
    }

    /// A public value (`e`, `c`; both far shorter than `N`) modulo `p'q'`. The divisor is
    /// secret, so not dashu's division but a constant-time one.
    fn reduce_public(&self, x: &Int) -> BoxedUint {
        from_int(x, self.full).rem(self.order.as_nz_ref())
    }

    /// `e^-1 mod p'q'` by safegcd (constant time in both `e` and the modulus); `None` when
    /// `gcd(e, p'q') != 1`.
    pub(crate) fn inverse_mod_order(&self, e: &Int) -> Option<Secret> {
        let e = self.reduce_public(e);
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
    /// `gcd(r, p'q') = 1` are constant time; only the verdict on a discarded candidate shows.
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
            let unit = r.inv_odd_mod(&self.order).is_some();
            if bool::from(below & r.is_nonzero() & unit) {
                buf.fill(0);
                return Secret(r);
            }
        }
    }
}
