//! Timing spread of the issuer's `A = Q^d mod N` over classes of exponents and bases: the
//! constant-time `PrivateKey::pow_crt` against the former variable-time RSA-CRT with dashu
//! (reimplemented here as it was, for comparison only). Then the cost of a whole issuance.
//!
//! `cargo run --release -p irma-idemix --features workload --example ct_spread [REPS]`
//!
//! Per key and implementation it prints each class's median in µs and the spread
//! `(max median - min median) / min median`. A constant-time implementation should show only
//! noise; a variable-time one shows how much its time tells about the exponent.

use std::hint::black_box;
use std::time::{Duration, Instant};

use irma_idemix::bigint::{Int, Modulus, bit_len, pow2, random_below, random_bits};
use irma_idemix::keys::PrivateKey;
use irma_idemix::workload::{Workload, demo_configuration};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The former `pow_crt` (variable time: dashu's windowed exponentiation skips zero windows, and
/// every reduction and inversion is a variable-time division by a secret). Benchmark only.
struct VarTimeCrt {
    p: Int,
    q: Int,
    p_mod: Modulus,
    q_mod: Modulus,
    q_inv_p: Int,
}

impl VarTimeCrt {
    fn new(sk: &PrivateKey) -> VarTimeCrt {
        let p_mod = Modulus::new(sk.p.clone()).unwrap();
        let q_mod = Modulus::new(sk.q.clone()).unwrap();
        let q_inv_p = p_mod.inv(&(&sk.q % &sk.p)).unwrap();
        VarTimeCrt {
            p: sk.p.clone(),
            q: sk.q.clone(),
            p_mod,
            q_mod,
            q_inv_p,
        }
    }

    fn pow_crt(&self, x: &Int, d: &Int) -> Int {
        let dp = d % (&self.p - Int::ONE);
        let dq = d % (&self.q - Int::ONE);
        let xp = self.p_mod.pow_local(&(x % &self.p), &dp);
        let xq = self.q_mod.pow_local(&(x % &self.q), &dq);
        let diff = (&xp + &self.p - (&xq % &self.p)) % &self.p;
        let h = self.p_mod.mul(&diff, &self.q_inv_p);
        xq + h * &self.q
    }
}

/// One input class: a base and a few exponents cycled through.
struct Class {
    name: String,
    base: Int,
    exps: Vec<Int>,
}

fn ones(bits: usize) -> Int {
    pow2(bits) - Int::ONE
}

fn classes(sk: &PrivateKey, rng: &mut ChaCha20Rng) -> Vec<Class> {
    let n = sk.n();
    let full = bit_len(&n);
    // Below p-1 and q-1, so these survive the CRT reduction unchanged.
    let h = bit_len(&sk.p).min(bit_len(&sk.q)) - 2;
    let q = random_below(rng, &n);
    let random: Vec<Int> = (0..16).map(|_| random_below(rng, &sk.order)).collect();
    let one = |name: String, d: Int| Class {
        name,
        base: q.clone(),
        exps: vec![d],
    };
    vec![
        one("d = 1".into(), Int::ONE),
        one("d short (8 bits)".into(), Int::from(0xb5u8)),
        one(format!("d = 2^{h}"), pow2(h)),
        one(
            format!("d = 2^{h} + 2^{} + 1", h / 2),
            pow2(h) + pow2(h / 2) + Int::ONE,
        ),
        one(format!("d = 2^{h} - 1 (all ones)"), ones(h)),
        one(format!("d = 2^{full} - 1 (all ones)"), ones(full)),
        Class {
            name: "d random < p'q'".into(),
            base: q.clone(),
            exps: random.clone(),
        },
        Class {
            name: "x = 2, d random".into(),
            base: Int::from(2u8),
            exps: random.clone(),
        },
        Class {
            name: "x = N-1, d random".into(),
            base: &n - Int::ONE,
            exps: random.clone(),
        },
        Class {
            name: "x random, d random".into(),
            base: random_bits(rng, full - 1),
            exps: random,
        },
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn spread(medians: &[Duration]) -> f64 {
    let min = medians.iter().min().unwrap().as_secs_f64();
    let max = medians.iter().max().unwrap().as_secs_f64();
    (max - min) / min * 100.0
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let conf = demo_configuration().expect("demo scheme");
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    println!("pow_crt timing per input class, median of {reps} runs (µs)");
    for issuer in ["stateless-demo.University", "stateless-demo.Government"] {
        let sk = conf.latest_private_key(issuer).expect("demo key");
        let vt = VarTimeCrt::new(&sk);
        let classes = classes(&sk, &mut rng);
        let secrets: Vec<Vec<_>> = classes
            .iter()
            .map(|c| c.exps.iter().map(|d| sk.secret(d)).collect())
            .collect();
        // Both agree on every input before anything is timed.
        for (c, s) in classes.iter().zip(&secrets) {
            for (d, sd) in c.exps.iter().zip(s) {
                assert_eq!(
                    sk.pow_crt(&c.base, sd),
                    vt.pow_crt(&c.base, d),
                    "{}",
                    c.name
                );
            }
        }
        let mut ct = vec![Vec::with_capacity(reps); classes.len()];
        let mut var = vec![Vec::with_capacity(reps); classes.len()];
        // Round-robin over classes and implementations, so drift (frequency, other load) falls
        // on all of them alike.
        for rep in 0..reps {
            for (i, (c, s)) in classes.iter().zip(&secrets).enumerate() {
                let k = rep % c.exps.len();
                let t = Instant::now();
                black_box(sk.pow_crt(black_box(&c.base), black_box(&s[k])));
                ct[i].push(t.elapsed());
                let t = Instant::now();
                black_box(vt.pow_crt(black_box(&c.base), black_box(&c.exps[k])));
                var[i].push(t.elapsed());
            }
        }
        let ct: Vec<Duration> = ct.into_iter().map(median).collect();
        let var: Vec<Duration> = var.into_iter().map(median).collect();
        println!("\n{issuer} ({} bits)", bit_len(&sk.n()));
        println!(
            "  {:<34} {:>14} {:>14}",
            "class", "constant-time", "variable-time"
        );
        for (i, c) in classes.iter().enumerate() {
            println!(
                "  {:<34} {:>14.1} {:>14.1}",
                c.name,
                ct[i].as_secs_f64() * 1e6,
                var[i].as_secs_f64() * 1e6
            );
        }
        println!(
            "  {:<34} {:>13.1}% {:>13.1}%",
            "spread (max-min)/min",
            spread(&ct),
            spread(&var)
        );
    }

    let issue_reps = (reps / 4).max(11);
    let mut w = Workload::new().expect("workload");
    println!(
        "\nWorkload::issue (verify commitment + CL-sign + ProofS), median of {issue_reps} runs"
    );
    for (big, label) in [(false, "1024-bit key"), (true, "2048-bit key")] {
        let times = (0..issue_reps)
            .map(|_| {
                let t = Instant::now();
                black_box(w.issue(big));
                t.elapsed()
            })
            .collect();
        println!(
            "  issue({big}) {label}: {:.0} µs",
            median(times).as_secs_f64() * 1e6
        );
    }
}
