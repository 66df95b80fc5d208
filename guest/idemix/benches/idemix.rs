//! Native criterion benchmarks of the server's Idemix operations on the demo keys.

use criterion::{Criterion, criterion_group, criterion_main};
use irma_idemix::ProofStatus;
use irma_idemix::workload::Workload;

fn idemix(c: &mut Criterion) {
    let mut w = Workload::new().expect("workload");
    let mut g = c.benchmark_group("idemix");
    g.sample_size(30);
    g.bench_function("verify disclosure 1024", |b| {
        b.iter(|| assert_eq!(w.verify_disclosure(false), ProofStatus::Valid))
    });
    g.bench_function("verify disclosure 2048", |b| {
        b.iter(|| assert_eq!(w.verify_disclosure(true), ProofStatus::Valid))
    });
    g.bench_function("verify signature 1024", |b| {
        b.iter(|| assert_eq!(w.verify_signature(), ProofStatus::Valid))
    });
    g.bench_function("issue credential 1024", |b| {
        b.iter(|| assert_eq!(w.issue(false), ProofStatus::Valid))
    });
    g.bench_function("issue credential 2048", |b| {
        b.iter(|| assert_eq!(w.issue(true), ProofStatus::Valid))
    });
    g.finish();
}

criterion_group!(benches, idemix);
criterion_main!(benches);
