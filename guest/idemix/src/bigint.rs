//! The one place that knows which big-integer crate we use.
//!
//! Everything else in the crate speaks [`Int`] (an unsigned arbitrary-precision integer) and
//! [`Modulus`] (a ring modulo an odd number). Swapping the backend, or routing the expensive
//! multi-exponentiation to a native implementation imported from the host, touches only this
//! file: see [`set_multi_exp_backend`].

use alloc::{boxed::Box, vec::Vec};
use once_cell::race::OnceBox;

use dashu_int::monty::{Montgomery, MontgomeryRepr};
pub use dashu_int::ops::BitTest;
use rand_core::RngCore;

/// An unsigned arbitrary-precision integer.
pub type Int = dashu_int::UBig;

/// Reads a big-endian byte string as an unsigned integer.
pub fn from_be(bytes: &[u8]) -> Int {
    Int::from_be_bytes(bytes)
}

/// The minimal big-endian encoding; zero is the empty string (as Go's `big.Int.Bytes()`).
pub fn to_be(x: &Int) -> Vec<u8> {
    if x.is_zero() {
        Vec::new()
    } else {
        x.to_be_bytes().into_vec()
    }
}

/// Number of significant bits; zero has zero bits.
pub fn bit_len(x: &Int) -> usize {
    x.bit_len()
}

/// `2^k`.
pub fn pow2(k: usize) -> Int {
    Int::ONE << k
}

/// A uniformly random integer of at most `bits` bits, i.e. in `[0, 2^bits)`.
pub fn random_bits(rng: &mut dyn RngCore, bits: usize) -> Int {
    let mut buf = vec![0u8; bits.div_ceil(8)];
    rng.fill_bytes(&mut buf);
    let excess = buf.len() * 8 - bits;
    if excess > 0 {
        buf[0] &= 0xff >> excess;
    }
    from_be(&buf)
}

/// A uniformly random integer in `[0, bound)`, by rejection sampling. `bound` must be positive.
pub fn random_below(rng: &mut dyn RngCore, bound: &Int) -> Int {
    let bits = bit_len(bound);
    loop {
        let x = random_bits(rng, bits);
        if &x < bound {
            return x;
        }
    }
}

/// Greatest common divisor.
pub fn gcd(a: &Int, b: &Int) -> Int {
    use dashu_int::ops::Gcd;
    a.gcd(b)
}

/// Computes `Π bases[i]^exps[i] mod n` for an odd modulus (a single base is a plain modular
/// exponentiation). The hook exists so that a guest can hand this, the dominant cost of every
/// proof and signature, to the host's native code.
pub trait MultiExp: Send + Sync {
    fn multi_exp(&self, modulus: &Int, bases: &[&Int], exps: &[&Int]) -> Int;
}

static BACKEND: OnceBox<Box<dyn MultiExp>> = OnceBox::new();

/// Installs another multi-exponentiation (once, before first use). Returns false when one was
/// installed already.
pub fn set_multi_exp_backend(backend: Box<dyn MultiExp>) -> bool {
    BACKEND.set(Box::new(backend)).is_ok()
}

/// Arithmetic modulo an odd modulus `n > 1`, in Montgomery form underneath.
pub struct Modulus {
    n: Int,
    ring: MontgomeryRepr,
}

impl core::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Modulus({} bits)", bit_len(&self.n))
    }
}

impl Clone for Modulus {
    fn clone(&self) -> Self {
        Modulus::new(self.n.clone()).expect("was valid")
    }
}

impl PartialEq for Modulus {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Modulus {
    /// `None` when `n` is even or at most 1: Montgomery arithmetic needs an odd modulus, and
    /// every modulus of this protocol (N, p, q) is odd.
    pub fn new(n: Int) -> Option<Modulus> {
        if n <= Int::ONE || !n.bit(0) {
            return None;
        }
        let ring = MontgomeryRepr::new(n.clone());
        Some(Modulus { n, ring })
    }

    pub fn value(&self) -> &Int {
        &self.n
    }

    pub fn bits(&self) -> usize {
        bit_len(&self.n)
    }

    pub fn reduce(&self, x: &Int) -> Int {
        x % &self.n
    }

    pub fn mul(&self, a: &Int, b: &Int) -> Int {
        (a * b) % &self.n
    }

    /// `base^exp mod n`, through the installed backend (native by default).
    pub fn pow(&self, base: &Int, exp: &Int) -> Int {
        match BACKEND.get() {
            Some(backend) => backend.multi_exp(&self.n, &[base], &[exp]),
            None => self.pow_local(base, exp),
        }
    }

    /// `base^exp mod n` in this process.
    pub fn pow_local(&self, base: &Int, exp: &Int) -> Int {
        self.ring.reduce(base.clone()).pow(exp).residue()
    }

    /// The inverse of `a`, or `None` when `gcd(a, n) != 1`.
    pub fn inv(&self, a: &Int) -> Option<Int> {
        use dashu_int::fast_div::ConstDivisor;
        let ring = ConstDivisor::new(self.n.clone());
        ring.reduce(a.clone()).inv().map(|r| r.residue())
    }

    /// `Π bases[i]^exps[i] mod n`, through the installed backend (native by default).
    pub fn multi_exp(&self, bases: &[&Int], exps: &[&Int]) -> Int {
        assert_eq!(bases.len(), exps.len(), "one exponent per base");
        match BACKEND.get() {
            Some(backend) => backend.multi_exp(&self.n, bases, exps),
            None => self.multi_exp_local(bases, exps),
        }
    }

    /// Straus' interleaved fixed-window multi-exponentiation: all bases share one run of
    /// squarings, each base costs one multiplication per window of its exponent.
    pub fn multi_exp_local(&self, bases: &[&Int], exps: &[&Int]) -> Int {
        const W: usize = 4;
        let max_bits = exps.iter().map(|e| bit_len(e)).max().unwrap_or(0);
        if max_bits == 0 {
            return Int::ONE % &self.n;
        }
        // tables[i][d] = bases[i]^d for d in 1..2^W.
        let tables: Vec<Vec<Montgomery<'_>>> = bases
            .iter()
            .map(|b| {
                let b = self.ring.reduce((*b).clone());
                let mut t = Vec::with_capacity(1 << W);
                t.push(b.clone());
                for d in 1..(1 << W) - 1 {
                    let next = &t[d - 1] * &b;
                    t.push(next);
                }
                t
            })
            .collect();
        let windows = max_bits.div_ceil(W);
        let mut acc: Option<Montgomery<'_>> = None;
        for w in (0..windows).rev() {
            if let Some(a) = acc.as_mut() {
                for _ in 0..W {
                    *a = a.sqr();
                }
            }
            for (table, exp) in tables.iter().zip(exps) {
                let mut digit = 0usize;
                for bit in (0..W).rev() {
                    digit = (digit << 1) | exp.bit(w * W + bit) as usize;
                }
                if digit != 0 {
                    let f = &table[digit - 1];
                    acc = Some(match acc.take() {
                        None => f.clone(),
                        Some(a) => a * f,
                    });
                }
            }
        }
        acc.map(|a| a.residue())
            .unwrap_or_else(|| Int::ONE % &self.n)
    }
}

/// Odd primes below 2048, for trial division before Miller–Rabin: a candidate for `e` or for a
/// safe prime usually has a small factor, and a division is far cheaper than an exponentiation.
fn small_primes() -> &'static [u32] {
    static PRIMES: OnceBox<Vec<u32>> = OnceBox::new();
    PRIMES.get_or_init(|| {
        const LIMIT: usize = 2048;
        let mut composite = vec![false; LIMIT];
        let mut out = Vec::new();
        for i in 2..LIMIT {
            if !composite[i] {
                if i > 2 {
                    out.push(i as u32);
                }
                for j in (i * i..LIMIT).step_by(i) {
                    composite[j] = true;
                }
            }
        }
        Box::new(out)
    })
}

/// True when `n` has a prime factor below 2048 (other than itself).
pub fn has_small_factor(n: &Int) -> bool {
    if !n.bit(0) {
        return *n != Int::from(2u8);
    }
    small_primes()
        .iter()
        .any(|&p| n % p == 0 && *n != Int::from(p))
}

/// Miller–Rabin with `rounds` random bases, after trial division. The exponentiations go
/// through [`Modulus::pow`], so a host-native backend speeds up prime search too.
pub fn is_probable_prime(n: &Int, rounds: usize, rng: &mut dyn RngCore) -> bool {
    if *n < Int::from(2u8) {
        return false;
    }
    if *n < Int::from(2048u32) {
        let v: u32 = n.try_into().unwrap_or(0);
        return v == 2 || small_primes().contains(&v);
    }
    if has_small_factor(n) {
        return false;
    }
    let n_minus_1 = n - Int::ONE;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    let m = Modulus::new(n.clone()).expect("odd and above 2048");
    let three = Int::from(3u8);
    'rounds: for _ in 0..rounds {
        let a = random_below(rng, &(n - &three)) + Int::from(2u8); // in [2, n-2]
        let mut x = m.pow(&a, &d);
        if x == Int::ONE || x == n_minus_1 {
            continue;
        }
        for _ in 1..s {
            x = m.mul(&x, &x);
            if x == n_minus_1 {
                continue 'rounds;
            }
            if x == Int::ONE {
                return false;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn multi_exp_matches_separate_powers() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = random_bits(&mut rng, 1024) | Int::ONE;
        let m = Modulus::new(n.clone()).unwrap();
        let bases: Vec<Int> = (0..5).map(|_| random_below(&mut rng, &n)).collect();
        let exps: Vec<Int> = [0usize, 1, 17, 600, 2000]
            .iter()
            .map(|&b| random_bits(&mut rng, b))
            .collect();
        let expected = bases
            .iter()
            .zip(&exps)
            .fold(Int::ONE, |acc, (b, e)| m.mul(&acc, &m.pow(b, e)));
        let br: Vec<&Int> = bases.iter().collect();
        let er: Vec<&Int> = exps.iter().collect();
        assert_eq!(m.multi_exp_local(&br, &er), expected);
        assert_eq!(m.multi_exp_local(&[], &[]), Int::ONE);
    }

    #[test]
    fn primality() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let p = (Int::ONE << 127) - Int::ONE; // Mersenne prime
        assert!(is_probable_prime(&p, 20, &mut rng));
        assert!(!is_probable_prime(&(&p * &p), 20, &mut rng));
        assert!(is_probable_prime(&Int::from(251u8), 20, &mut rng));
        assert!(is_probable_prime(&Int::from(2053u32), 20, &mut rng));
        assert!(!is_probable_prime(&Int::from(2047u32), 20, &mut rng));
        assert!(!is_probable_prime(&Int::from(561u32), 20, &mut rng)); // Carmichael
        assert!(!is_probable_prime(&Int::ONE, 20, &mut rng));
    }

    #[test]
    fn even_modulus_is_refused() {
        assert!(Modulus::new(Int::from(10u8)).is_none());
        assert!(Modulus::new(Int::ONE).is_none());
    }

    #[test]
    fn inverse() {
        let m = Modulus::new(Int::from(101u8)).unwrap();
        assert_eq!(
            m.mul(&m.inv(&Int::from(7u8)).unwrap(), &Int::from(7u8)),
            Int::ONE
        );
        let m = Modulus::new(Int::from(15u8)).unwrap();
        assert!(m.inv(&Int::from(5u8)).is_none());
    }
}
