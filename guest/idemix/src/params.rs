//! System parameters, chosen by the bit length of the issuer's modulus (idemix.md §1.1).

/// Bit lengths used by the proofs and the signature. Only 1024, 2048 and 4096-bit moduli exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Modulus bits.
    pub ln: usize,
    /// Attribute bits.
    pub lm: usize,
    /// Hash (challenge) bits.
    pub lh: usize,
    /// Statistical zero-knowledge parameter.
    pub lstatzk: usize,
    /// Bits of the random part of `e`.
    pub le_prime: usize,
    pub le: usize,
    pub le_commit: usize,
    pub lm_commit: usize,
    pub lv: usize,
    pub lv_commit: usize,
    pub lv_prime: usize,
    pub lv_prime_commit: usize,
}

const fn derive(ln: usize, lm: usize, lstatzk: usize) -> Params {
    let lh = 256;
    let le_prime = 120;
    let lv = ln + 2 * lstatzk + lh + lm + 4;
    Params {
        ln,
        lm,
        lh,
        lstatzk,
        le_prime,
        le: lstatzk + lh + lm + 5,
        le_commit: le_prime + lstatzk + lh,
        lm_commit: lm + lstatzk + lh,
        lv,
        lv_commit: lv + lstatzk + lh,
        lv_prime: ln + lstatzk,
        lv_prime_commit: ln + 2 * lstatzk + lh,
    }
}

pub const P1024: Params = derive(1024, 256, 80);
pub const P2048: Params = derive(2048, 256, 128);
pub const P4096: Params = derive(4096, 512, 128);

/// The parameter set for a modulus of `bits` bits, or `None` for any other length.
pub fn for_modulus_bits(bits: usize) -> Option<&'static Params> {
    match bits {
        1024 => Some(&P1024),
        2048 => Some(&P2048),
        4096 => Some(&P4096),
        _ => None,
    }
}

/// The client's secret key is below 2^256 whatever the key length (`params[1024].Lm`).
pub const SECRET_KEY_BITS: usize = P1024.lm;
/// Session nonces (server nonce and the client's `n_2`) are below 2^128.
pub const NONCE_BITS: usize = P2048.lstatzk;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_match_the_table() {
        let t = |p: &Params| {
            (
                p.le,
                p.le_commit,
                p.lm_commit,
                p.lv,
                p.lv_commit,
                p.lv_prime,
                p.lv_prime_commit,
            )
        };
        assert_eq!(t(&P1024), (597, 456, 592, 1700, 2036, 1104, 1440));
        assert_eq!(t(&P2048), (645, 504, 640, 2820, 3204, 2176, 2560));
        assert_eq!(t(&P4096), (901, 504, 896, 5124, 5508, 4224, 4608));
        assert!(for_modulus_bits(1536).is_none());
    }
}
